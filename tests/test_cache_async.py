"""The asyncio Cache: API on every client mode, stampede, hand-over, cancellation during a
wait and during a load, and the async decorator."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from typing import Any

import pytest
import redis.asyncio

from pyredis_atomic import DecodeError, EncodeError, WrongTypeError
from pyredis_atomic.asyncio import Cache


async def test_api(aclient: Any) -> None:
    cache = Cache(aclient, "a", ttl=30)
    calls: list[int] = []

    async def loader() -> dict[str, Any]:
        calls.append(1)
        return {"x": [1, "é"]}

    assert await cache.get_or_set("k", loader) == {"x": [1, "é"]}
    assert await cache.get_or_set("k", loader) == {"x": [1, "é"]}
    assert calls == [1]
    assert await cache.get("k") == {"x": [1, "é"]}
    assert await cache.get("nope", 3) == 3
    await cache.set("k2", None)
    assert await cache.get("k2", 3) is None
    assert await cache.delete("k2") is True
    assert await cache.delete("k2") is False
    assert await cache.get_or_set("sync-loader", lambda: 5) == 5
    assert (await cache.inspect("k"))["value"] == {"x": [1, "é"]}


async def test_binary_values_on_any_client(aclient: Any) -> None:
    raw = Cache(aclient, "raw", ttl=30, serializer="raw")
    await raw.set("k", b"\xff\x00\x80")
    assert await raw.get("k") == b"\xff\x00\x80"
    pickled = Cache(aclient, "pk", ttl=30, serializer="pickle")
    assert await pickled.get_or_set("k", lambda: {1, 2}) == {1, 2}
    assert await pickled.get("k") == {1, 2}
    with pytest.raises(DecodeError):
        await Cache(aclient, "pk", ttl=30).get("k")


async def test_errors(aclient: Any) -> None:
    cache = Cache(aclient, "e", ttl=30)
    with pytest.raises(TypeError, match="loader"):
        await cache.get_or_set("k", None)  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        await cache.set("k", object())
    await aclient.set(cache.key_of("w"), "string")
    with pytest.raises(WrongTypeError) as info:
        await cache.get_or_set("w", lambda: 1)
    assert info.value.key == cache.key_of("w")

    async def boom() -> int:
        raise RuntimeError("db")

    with pytest.raises(RuntimeError):
        await cache.get_or_set("k", boom)
    assert (await cache.inspect("k"))["lease"] is None


async def test_stampede_and_hand_over(async_redis_client: Any) -> None:
    cache = Cache(async_redis_client, "s", ttl=30, lock_ttl=20, wait_timeout=10)
    calls: list[int] = []

    async def loader() -> str:
        calls.append(1)
        await asyncio.sleep(0.3)
        if len(calls) == 1:
            raise RuntimeError("first load fails")
        return "v"

    began = time.monotonic()
    results = await asyncio.gather(*(cache.get_or_set("k", loader) for _ in range(20)),
                                   return_exceptions=True)
    assert len(calls) == 2
    assert sum(isinstance(r, RuntimeError) for r in results) == 1
    assert results.count("v") == 19
    assert time.monotonic() - began < 0.6 + 1.5  # woken, never left to lock_ttl


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


async def test_async_decorator(async_redis_client: Any) -> None:
    cache = Cache(async_redis_client, "fn", ttl=30)
    calls: list[int] = []

    @cache.cached(ttl=5)
    async def product(pid: int) -> dict[str, int]:
        calls.append(pid)
        return {"pid": pid}

    assert await product(1) == {"pid": 1}
    assert await product(pid=1) == {"pid": 1}
    assert calls == [1]
    assert await product.invalidate(1) is True  # type: ignore[attr-defined]
    await product(1)
    assert calls == [1, 1]


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


async def test_decoding_client_reads_bytes(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True, protocol=3)
    try:
        cache = Cache(client, "d", ttl=30, serializer="raw")
        assert await cache.get_or_set("k", lambda: b"\x80\xff") == b"\x80\xff"
        assert await cache.get_or_set("k", lambda: b"") == b"\x80\xff"
        assert await client.ping()  # the connection is still healthy
    finally:
        await client.aclose()
