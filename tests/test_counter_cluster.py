"""BoundedCounter on a Redis Cluster (sync and asyncio): routing by the hash tag."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio.cluster

from pyredis_atomic import BoundedCounter, CounterResult
from pyredis_atomic.asyncio import BoundedCounter as AsyncBoundedCounter
from pyredis_atomic.testing import RedisClusterHarness

pytestmark = pytest.mark.cluster


def test_counter_on_a_cluster(redis_cluster_client: Any) -> None:
    names = [f"sku-{i}" for i in range(12)]  # spread over the three primaries
    for name in names:
        c = BoundedCounter(redis_cluster_client, name, min=0, max=2)
        assert c.incr() == CounterResult(True, 1, 1)
        assert c.incr(5, clamp=True) == CounterResult(False, 2, 1)
        assert c.incr(1, request_id="r") == c.incr(1, request_id="r")
        assert c.get() == 2
    redis_cluster_client.script_flush()
    brace = BoundedCounter(redis_cluster_client, "a}{b", max=3)
    assert brace.incr(3).value == 3
    assert brace.get() == 3
    brace.reset()
    assert brace.get() == 0


async def test_async_counter_on_a_cluster(redis_cluster: RedisClusterHarness,
                                          redis_cluster_client: Any) -> None:
    client = redis.asyncio.cluster.RedisCluster(startup_nodes=[
        redis.asyncio.cluster.ClusterNode(s.host, s.port) for s in redis_cluster.primaries])
    try:
        for i in range(6):
            c = AsyncBoundedCounter(client, f"n-{i}", max=1)
            assert (await c.incr()).applied
            assert not (await c.incr()).applied
            assert (await c.incr(1, request_id="q")).value == 1
            assert await c.get() == 1
    finally:
        await client.aclose()
