"""Lock on a Redis Cluster: the three keys of a lock share a slot, so every script runs on
one node; names spread over the nodes; waiting and wake-ups work through cluster routing."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis.asyncio.cluster

from pyredis_atomic import Lock, LockNotOwnedError
from pyredis_atomic._core.lock import lock_keys
from pyredis_atomic.asyncio import Lock as AsyncLock
from pyredis_atomic.testing import RedisClusterHarness

pytestmark = pytest.mark.cluster

NAMES = [f"order:{i}" for i in range(12)] + ["a{b}", "}{"]


def test_locks_on_a_cluster(redis_cluster_client: Any) -> None:
    slots = set()
    for name in NAMES:
        keys = lock_keys(name)
        node_slots = {redis_cluster_client.keyslot(k)
                      for k in (keys.lock, keys.fences, keys.signal)}
        assert len(node_slots) == 1
        slots |= node_slots
        a = Lock(redis_cluster_client, name, ttl=10.0)
        b = Lock(redis_cluster_client, name, ttl=10.0)
        assert a.acquire()
        assert not b.acquire(blocking=False)
        assert a.owned()
        a.extend(20.0)
        info = Lock.inspect(redis_cluster_client, name)
        assert info is not None
        assert info.held
        assert info.fence == 1
        a.release()
        assert b.acquire(blocking=False)
        assert b.fence == 2
        b.release()
    assert len({redis_cluster_client.nodes_manager.get_node_from_slot(s).name
                for s in slots}) > 1  # the names really spread over several nodes


def test_waiting_and_stale_release_on_a_cluster(redis_cluster_client: Any) -> None:
    holder = Lock(redis_cluster_client, "order:1", ttl=30.0)
    holder.acquire()
    got: dict[str, Any] = {}

    def wait() -> None:
        lock = Lock(redis_cluster_client, "order:1", ttl=30.0)
        got["ok"] = lock.acquire(timeout=10.0)
        got["at"] = time.monotonic()
        got["lock"] = lock

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.2)
    released = time.monotonic()
    holder.release()
    thread.join(10)
    assert got["ok"]
    assert got["at"] - released < 1.0  # woken, not the 30 s lease
    with pytest.raises(LockNotOwnedError):
        holder.release()
    got["lock"].release()


async def test_async_locks_on_a_cluster(redis_cluster: RedisClusterHarness) -> None:
    redis_cluster.wait_ok()
    redis_cluster.flushall()
    client = redis.asyncio.cluster.RedisCluster(startup_nodes=[
        redis.asyncio.cluster.ClusterNode(s.host, s.port) for s in redis_cluster.primaries])
    try:
        holder = AsyncLock(client, "order:7", ttl=30.0)
        assert await holder.acquire()
        waiter = AsyncLock(client, "order:7", ttl=30.0)
        task = asyncio.create_task(waiter.acquire(timeout=10.0))
        await asyncio.sleep(0.2)
        released = time.monotonic()
        await holder.release()
        assert await task
        assert time.monotonic() - released < 1.0
        assert waiter.fence == 2
        info = await AsyncLock.inspect(client, "order:7")
        assert info is not None
        assert info.released_fence == 1
        await waiter.release()
    finally:
        await client.aclose()
