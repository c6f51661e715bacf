"""Durability (WAIT for N replicas) on lock acquire and queue push, on a real primary and
replica."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
import redis.asyncio

from pyredis_atomic import Durability, DurabilityError, Lock, ReliableQueue
from pyredis_atomic import asyncio as aio
from pyredis_atomic.testing import RedisServer


@pytest.fixture
def pair(redis_server_factory: Callable[..., RedisServer]) -> tuple[RedisServer, RedisServer]:
    primary = redis_server_factory()
    replica = redis_server_factory(replica_of=primary)
    with primary.client() as c:
        deadline = time.monotonic() + 10
        while c.info("replication")["connected_slaves"] < 1:
            assert time.monotonic() < deadline, "replica did not connect"
            time.sleep(0.01)
    return primary, replica


def test_bad_durability_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="replicas must be at least 1"):
        Durability(0)
    with pytest.raises(TypeError, match="replicas must be an int"):
        Durability(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="durability timeout"):
        Durability(1, timeout=0)
    with redis.Redis() as c:  # never connected: the checks come first
        with pytest.raises(TypeError, match="durability must be a Durability"):
            Lock(c, "x", durability=1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="durability must be a Durability"):
            ReliableQueue(c, "x", durability=(1, 1.0))  # type: ignore[arg-type]


def test_lock_acquire_waits_for_the_replica(pair: tuple[RedisServer, RedisServer]) -> None:
    primary, replica = pair
    with primary.client() as pc, replica.client() as rc:
        lock = Lock(pc, "orders:1", ttl=10.0, durability=Durability(1, timeout=2.0))
        assert lock.acquire(blocking=False)
        # WAIT returned: the replica has the lock already, no polling needed.
        assert rc.get(lock.keys.lock) is not None
        lock.release()


def test_lock_acquire_without_enough_replicas_raises_and_releases(
    pair: tuple[RedisServer, RedisServer],
) -> None:
    primary, _ = pair
    with primary.client() as pc:
        lock = Lock(pc, "orders:2", ttl=10.0, durability=Durability(2, timeout=0.2))
        with pytest.raises(DurabilityError) as info:
            lock.acquire(blocking=False)
        assert info.value.wanted == 2
        assert info.value.acknowledged < 2  # the one replica, if it was quick enough
        assert not lock.locked()  # given back, so nobody waits for a lease nobody uses
        other = Lock(pc, "orders:2", ttl=10.0)
        assert other.acquire(blocking=False)


def test_queue_push_waits_for_the_replica(pair: tuple[RedisServer, RedisServer]) -> None:
    primary, replica = pair
    with primary.client() as pc, replica.client() as rc:
        q = ReliableQueue(pc, "mail", durability=Durability(1, timeout=2.0))
        ids = [q.push(b"one"), *q.push_many([b"two", b"three"])]
        replica_view = ReliableQueue(rc, "mail", allow_eviction=True)
        assert replica_view.stats()["pending"] == 3
        strict = ReliableQueue(pc, "mail", durability=Durability(2, timeout=0.2))
        with pytest.raises(DurabilityError):
            strict.push(b"four", dedup_key="k4")
        # Still queued on the primary; a retry with the same dedup_key adds nothing.
        assert q.push(b"four", dedup_key="k4") not in ids
        assert q.stats()["pending"] == 4


async def test_async_lock_and_queue(pair: tuple[RedisServer, RedisServer]) -> None:
    primary, replica = pair
    client = redis.asyncio.Redis(host=primary.host, port=primary.port)
    try:
        lock = aio.Lock(client, "a", ttl=5.0, durability=Durability(1, timeout=2.0))
        assert await lock.acquire(blocking=False)
        await lock.release()
        strict = aio.Lock(client, "b", ttl=5.0, durability=Durability(3, timeout=0.1))
        with pytest.raises(DurabilityError):
            await strict.acquire(blocking=False)
        assert not await strict.locked()
        q = aio.ReliableQueue(client, "q", durability=Durability(1, timeout=2.0))
        await q.push(b"x")
        with replica.client() as rc:
            assert ReliableQueue(rc, "q", allow_eviction=True).stats()["pending"] == 1
    finally:
        await client.aclose()


def test_a_durable_call_answered_by_a_replica_raises_durability_error(
        pair: tuple[RedisServer, RedisServer]) -> None:
    """After a failover a connection may still reach the demoted primary, now a replica.
    A script that writes nothing there (a re-sent increment whose request id is already
    recorded) still answers, but the WAIT behind it is refused on a replica: that is a
    DurabilityError to retry, not a TypeError from reading WAIT's error as a count."""
    from pyredis_atomic import BoundedCounter
    from pyredis_atomic.registry import default_registry

    primary, replica = pair
    with primary.client() as pc, replica.client() as rc:
        counter = BoundedCounter(pc, "durable-replica", max=100)
        assert counter.incr(1, request_id="r1").value == 1
        spec = counter._spec
        call = spec.add_call(1, False, "r1")
        deadline = time.monotonic() + 10
        while rc.get(counter.key) is None:  # the replica has the increment and its id
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with pytest.raises(DurabilityError, match=r"WAIT .* failed") as info:
            default_registry().run_durable(rc, call, 1, 0.5)
        assert info.value.acknowledged == 0
        assert counter.get() == 1  # nothing applied twice
