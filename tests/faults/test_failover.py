"""Failover of a standalone primary to its replica (``REPLICAOF NO ONE``).

Invariant: after promotion, clients moved to the new primary run every script with no
action by the user (the new primary never loaded them: NOSCRIPT is recovered), and the
state that had reached the replica is intact and usable: the lock is still held (nobody
else gets it, the next fence follows), queued and in-flight messages are delivered and
acked, the counter goes on from its value, the semaphore holder still counts.

Durability: a write followed by ``WAIT`` (``ScriptRegistry.run_durable``) that returned
is on the replica, so it survives the primary's death even with no other sync.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from pyredis_atomic import BoundedCounter, Lock, ReliableQueue, Semaphore
from pyredis_atomic._core.lock import acquire_call, new_token
from pyredis_atomic._core.queue import QueueSpec
from pyredis_atomic.registry import default_registry
from pyredis_atomic.testing import RedisServer


def _pair(factory: Callable[..., RedisServer]) -> tuple[RedisServer, RedisServer]:
    primary = factory()
    replica = factory(replica_of=primary)
    with primary.client() as c:
        c.set("sync-probe", 1)
        assert c.wait(1, 5000) == 1, "the replica did not come up"
    return primary, replica


def _promote(primary: RedisServer, replica: RedisServer) -> redis.Redis:
    primary.kill()
    client = redis.Redis(host=replica.host, port=replica.port)
    client.execute_command("REPLICAOF", "NO", "ONE")
    return client


def test_scripts_and_state_work_on_the_promoted_replica(
        redis_server_factory: Callable[..., RedisServer]) -> None:
    primary, replica = _pair(redis_server_factory)
    old = redis.Redis(host=primary.host, port=primary.port)
    q = ReliableQueue(old, "fo")
    ids = [q.push(f"m{i}") for i in range(3)]
    leased = q.pop()
    assert leased is not None
    counter = BoundedCounter(old, "fo", max=10)
    counter.incr(7)
    lock = Lock(old, "fo", ttl=60)
    assert lock.acquire(blocking=False)
    sem = Semaphore(old, "fo", 1, ttl=60)
    permit = sem.acquire(blocking=False)
    assert permit is not None
    assert old.wait(1, 5000) == 1
    old.close()

    new = _promote(primary, replica)
    new.script_flush()  # whatever the replica may hold, it never loaded our scripts
    assert default_registry().missing(new) == default_registry().names()

    q2 = ReliableQueue(new, "fo")
    assert q2.stats()["in_flight"] == 1
    got = []
    while (msg := q2.pop()) is not None:
        got.append(msg.id)
        assert q2.ack(msg)
    assert got == ids[1:]
    counter2 = BoundedCounter(new, "fo", max=10)
    assert counter2.incr(3).value == 10
    assert not counter2.incr().applied  # the bound still holds
    contender = Lock(new, "fo", ttl=60)
    assert not contender.acquire(blocking=False)
    assert contender.locked()
    sem2 = Semaphore(new, "fo", 1, ttl=60)
    assert sem2.acquire(blocking=False) is None
    assert sem2.release(permit)
    assert sem2.acquire(blocking=False) is not None
    # The scripts used are now cached on the new primary (loaded, not only EVAL'd).
    assert "counter_add" not in default_registry().missing(new)
    new.close()


def test_a_durable_push_and_acquire_survive_the_primary_dying_at_once(
        redis_server_factory: Callable[..., RedisServer]) -> None:
    primary, replica = _pair(redis_server_factory)
    old = redis.Redis(host=primary.host, port=primary.port)
    registry = default_registry()
    core = QueueSpec("fo-durable")
    ids = [registry.run_durable(old, core.push_call(f"d{i}".encode()), replicas=1,
                                timeout=5.0)[0] for i in range(20)]
    lock = Lock(old, "fo-durable", ttl=60)
    acquired, fence = registry.run_durable(old, acquire_call(lock.keys, new_token(), 60_000),
                                           replicas=1, timeout=5.0)
    assert acquired == 1
    old.close()
    new = _promote(primary, replica)  # killed right after the last reply: no grace
    q = ReliableQueue(new, "fo-durable")
    got = []
    while (msg := q.pop()) is not None:
        got.append(msg.id)
        q.ack(msg)
    assert got == ids
    info = Lock.inspect(new, "fo-durable")
    assert info is not None
    assert info.held
    assert info.fence == fence
    new.close()
