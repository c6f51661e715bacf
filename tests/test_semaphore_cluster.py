"""Semaphore on a Redis Cluster: both keys share a slot; blocking waits route there too."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis.asyncio.cluster

from pyredis_atomic import Semaphore
from pyredis_atomic.asyncio import Semaphore as AsyncSemaphore
from pyredis_atomic.testing import RedisClusterHarness

pytestmark = pytest.mark.cluster


def test_semaphore_on_a_cluster(redis_cluster: RedisClusterHarness,
                                redis_cluster_client: Any) -> None:
    for i in range(6):
        sem = Semaphore(redis_cluster_client, f"pool-{i}", limit=1, ttl=20)
        permit = sem.acquire()
        assert permit is not None
        assert sem.acquire(blocking=False) is None
        got: list[str | None] = []
        waiter_client = redis_cluster.client()

        def wait(client: Any, name: str, out: list[str | None]) -> None:
            out.append(Semaphore(client, name, limit=1, ttl=20).acquire(timeout=10))

        t = threading.Thread(target=wait, args=(waiter_client, f"pool-{i}", got))
        t.start()
        assert sem.release(permit)
        t.join(15)
        waiter_client.close()
        assert got
        assert got[0] is not None
        assert sem.count() == 1
        assert sem.holders()[0][0] == got[0]


async def test_async_semaphore_on_a_cluster(redis_cluster: RedisClusterHarness,
                                            redis_cluster_client: Any) -> None:
    client = redis.asyncio.cluster.RedisCluster(startup_nodes=[
        redis.asyncio.cluster.ClusterNode(s.host, s.port) for s in redis_cluster.primaries])
    try:
        sem = AsyncSemaphore(client, "apool", limit=2, ttl=10)
        async with sem, sem:
            assert await sem.count() == 2
            assert await sem.acquire(blocking=False) is None
        assert await sem.count() == 0
    finally:
        await client.aclose()
