"""The asyncio Cache only: cancellation during a wait and during a load, and the asyncio
cluster client.

The behaviour both APIs share (the API on every client mode, the stampede and hand-over,
the decorator) is in ``test_cache_shared_async.py`` (and its generated sync twin,
``test_cache_shared_sync.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from typing import Any

import pytest

from pyredis_atomic.asyncio import Cache


async def test_cancel_during_load_frees_the_lease(async_redis_client: Any) -> None:
    cache = Cache(async_redis_client, "c", ttl=30, lock_ttl=30, wait_timeout=20)
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(30)
        return "never"

    loader_task = asyncio.create_task(cache.get_or_set("k", slow))
    await started.wait()
    waiter = asyncio.create_task(cache.get_or_set("k", lambda: "waiter"))
    await asyncio.sleep(0.2)
    began = time.monotonic()
    loader_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loader_task
    # The cancelled loader freed its lease and woke the waiter, which took over at once
    # (not after lock_ttl = 30 s).
    assert await asyncio.wait_for(waiter, 5) == "waiter"
    assert time.monotonic() - began < 2
    assert (await cache.inspect("k"))["lease"] is None


async def test_cancel_during_wait_owns_nothing(async_redis_client: Any) -> None:
    cache = Cache(async_redis_client, "c", ttl=30, lock_ttl=30, wait_timeout=20)
    go = asyncio.Event()
    started = asyncio.Event()

    async def loader() -> str:
        started.set()
        await go.wait()
        return "v"

    loading = asyncio.create_task(cache.get_or_set("k", loader))
    await started.wait()
    waiters = [asyncio.create_task(cache.get_or_set("k", lambda: "x")) for _ in range(3)]
    await asyncio.sleep(0.2)
    waiters[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiters[0]
    assert (await cache.inspect("k"))["lease"] is not None  # the loader's lease is intact
    go.set()
    assert await loading == "v"
    assert await asyncio.wait_for(asyncio.gather(*waiters[1:]), 5) == ["v", "v"]


async def test_cancel_at_every_point_leaves_no_orphan_lease(async_redis_client: Any) -> None:
    """Cancel a caller after a varying delay (during the first read, the load, the fill):
    afterwards the entry holds either the value or no lease at all."""
    cache = Cache(async_redis_client, "c", ttl=30, lock_ttl=30)
    for i, delay in enumerate([0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02]):
        async def loader() -> int:
            await asyncio.sleep(0.01)
            return 1

        task = asyncio.create_task(cache.get_or_set(f"k{i}", loader))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)  # the shielded release completes in the background
        info = await cache.inspect(f"k{i}")
        assert info["lease"] is None, (delay, info)


async def test_async_cluster(redis_cluster: Any) -> None:
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    redis_cluster.flushall()
    client = RedisCluster(startup_nodes=[ClusterNode(s.host, s.port)
                                         for s in redis_cluster.primaries])
    try:
        cache = Cache(client, "cl", ttl=30, serializer="pickle")
        calls: list[str] = []

        async def loader(k: str) -> tuple[str, bytes]:
            calls.append(k)
            await asyncio.sleep(0.1)
            return (k, b"\xff")

        keys = [f"key{i}" for i in range(6)]
        # redis-py 8.1's async cluster client fails ('NoneType' has no 'writelines') when
        # its very first connections to a node are opened concurrently; warm it up.
        for k in keys:
            assert await cache.get(k) is None
        results = await asyncio.gather(*(cache.get_or_set(k, functools.partial(loader, k))
                                         for k in keys for _ in range(4)))
        assert sorted(calls) == keys
        assert results == [(k, b"\xff") for k in keys for _ in range(4)]
        assert await cache.delete("key0") is True
    finally:
        await client.aclose()
