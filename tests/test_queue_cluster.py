"""ReliableQueue on a Redis Cluster (sync and asyncio): one hash slot per queue."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio.cluster

from pyredis_atomic import ReliableQueue
from pyredis_atomic.asyncio import ReliableQueue as AsyncReliableQueue
from pyredis_atomic.testing import RedisClusterHarness

pytestmark = pytest.mark.cluster


def test_queue_on_a_cluster(redis_cluster_client: Any) -> None:
    for name in ("c-one", "c-two", "c{three}"):
        q = ReliableQueue(redis_cluster_client, name, visibility_timeout=5)
        slots = {redis_cluster_client.keyslot(k) for k in q.keys.values()}
        assert len(slots) == 1
        q.push_many([bytes(range(256)), b"b"], dedup_keys=["x", "y"])
        a = q.pop()
        assert a is not None
        assert a.payload == bytes(range(256))
        assert q.ack(a) is True
        b = q.pop()
        assert b is not None
        q.nack(b)
        assert q.stats()["pending"] == 1
        assert q.purge() == 1
        assert q.dead_letters() == []


def test_queue_on_a_decoding_cluster_client(redis_cluster: RedisClusterHarness) -> None:
    node = redis_cluster.primaries[0]
    client = redis.cluster.RedisCluster(host=node.host, port=node.port,
                                        decode_responses=True)
    try:
        q = ReliableQueue(client, "c-decoded")
        q.push(b"\xff\x00 not utf-8")
        m = q.pop(timeout=1)
        assert m is not None
        assert m.payload == b"\xff\x00 not utf-8"
        assert q.ack(m)
    finally:
        client.close()


async def test_async_queue_on_a_cluster(redis_cluster: RedisClusterHarness,
                                        redis_cluster_client: Any) -> None:
    client = redis.asyncio.cluster.RedisCluster(startup_nodes=[
        redis.asyncio.cluster.ClusterNode(s.host, s.port) for s in redis_cluster.primaries])
    try:
        q = AsyncReliableQueue(client, "ac-jobs")
        await q.push_many([b"1", b"2"])
        m = await q.pop(timeout=1)
        assert m is not None
        acked, nxt = await q.ack_and_pop(m)
        assert acked
        assert nxt is not None
        assert nxt.payload == b"2"
        assert await q.ack(nxt)
        assert (await q.stats())["in_flight"] == 0
    finally:
        await client.aclose()
