"""The Worker on a Redis Cluster client (sync and asyncio): claims, batched acks with
prefetch, the heartbeat's batched extends past the visibility timeout, and a dead letter
with its failure recorded; every key of a queue in one hash slot. Kept light: one small
queue per case on the session's 3-primary cluster."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis.asyncio.cluster

from pyredis_atomic import Message, ReliableQueue, Retry, Worker
from pyredis_atomic.asyncio import Message as AsyncMessage
from pyredis_atomic.asyncio import ReliableQueue as AsyncReliableQueue
from pyredis_atomic.asyncio import Worker as AsyncWorker
from pyredis_atomic.testing import RedisClusterHarness

pytestmark = pytest.mark.cluster


def _wait(cond: Any, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


@pytest.mark.parametrize("prefetch", [None, 8])
def test_worker_on_a_cluster(redis_cluster_client: Any, prefetch: int | None) -> None:
    q = ReliableQueue(redis_cluster_client, f"cw-{prefetch}", visibility_timeout=1.5,
                      max_deliveries=2)
    assert len({redis_cluster_client.keyslot(k) for k in q.keys.values()}) == 1
    ids = set(q.push_many([b"%d" % i for i in range(60)]))
    slow = q.push(b"slow")
    bad = q.push(b"bad")
    seen: dict[str, int] = {}
    guard = threading.Lock()

    def handle(msg: Message) -> None:
        if msg.payload == b"bad":
            raise ValueError("bad payload")
        if msg.payload == b"slow":
            time.sleep(5.0)  # over 3x the visibility timeout: the heartbeat must extend it
        with guard:
            seen[msg.id] = seen.get(msg.id, 0) + 1

    w = Worker(q, handle, concurrency=4, prefetch=prefetch, poll=0.1, signals=False,
               retry=Retry(max_attempts=2, backoff=0.0, jitter=False))
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    _wait(lambda: len(seen) == 61 and q.stats()["dead"] == 1)
    w.stop()
    t.join(20)
    assert not t.is_alive()
    assert set(seen) == ids | {slow}
    assert set(seen.values()) == {1}  # the slow one too: never redelivered
    [dead] = q.dead_letters()
    assert dead.id == bad
    assert dead.failure is not None
    assert dead.failure.type == "ValueError"
    s = q.stats()
    assert (s["pending"], s["in_flight"], s["delayed"]) == (0, 0, 0)
    assert w.counts.snapshot()["acked"] == 61


async def test_asyncio_worker_on_a_cluster(redis_cluster: RedisClusterHarness) -> None:
    node = redis_cluster.primaries[0]
    client = redis.asyncio.cluster.RedisCluster(host=node.host, port=node.port)
    try:
        q = AsyncReliableQueue(client, "cw-async", visibility_timeout=1.5)
        await q.purge()
        ids = set(await q.push_many([b"%d" % i for i in range(40)]))
        slow = await q.push(b"slow")
        seen: dict[str, int] = {}

        async def handle(msg: AsyncMessage) -> None:
            if msg.payload == b"slow":
                await asyncio.sleep(5.0)  # over 3x the visibility timeout
            seen[msg.id] = seen.get(msg.id, 0) + 1

        w = AsyncWorker(q, handle, concurrency=4, prefetch=8, poll=0.1, signals=False)
        task = asyncio.create_task(w.run())
        end = time.monotonic() + 60
        while len(seen) < 41:
            assert time.monotonic() < end, len(seen)
            await asyncio.sleep(0.05)
        w.stop()
        await asyncio.wait_for(task, 20)
        assert set(seen) == ids | {slow}
        assert set(seen.values()) == {1}
        assert (await q.stats())["in_flight"] == 0
    finally:
        await client.aclose()
