"""The asyncio near cache on a real Redis: the twins of tests/test_cache_near.py (local
hits, writes seen within the bound, CLIENT KILL, FLUSHALL, a racing read, a stampede of
tasks), plus what only asyncio has (a listener task per loop, close)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
import redis
import redis.asyncio

from pyredis_atomic._core.near import LISTENER_NAME
from pyredis_atomic.asyncio import Cache, NearCache

BOUND = NearCache().max_staleness


async def read_until(read: Callable[[], Awaitable[Any]], want: Any, since: float,
                     limit: float) -> None:
    """As in tests/test_cache_near.py: a read that began ``limit`` after ``since`` or later
    must return ``want``."""
    while True:
        began = time.monotonic()
        got = await read()
        if got == want:
            return
        assert began - since < limit, (got, want, began - since)
        await asyncio.sleep(0)  # let the listener task run


async def wait_tracking(cache: Cache, timeout: float = 10.0) -> None:
    await cache.get("__start__")
    end = time.monotonic() + timeout
    while not cache.near_stats().tracking:
        assert time.monotonic() < end, f"tracking not back: {cache.near_stats()}"
        await asyncio.sleep(0.005)


async def warm(cache: Cache, key: str, value: Any, ttl: float | None = None) -> None:
    await cache.set(key, value, ttl)
    end = time.monotonic() + 10
    while True:
        got = await cache.get_or_set(key, lambda: value)
        if got == value and key in cache._near._data:  # type: ignore[union-attr]
            return
        assert time.monotonic() < end
        await asyncio.sleep(0.005)


@pytest_asyncio.fixture
async def aclients(redis_url: str) -> AsyncIterator[list[redis.asyncio.Redis]]:
    made = [redis.asyncio.Redis.from_url(redis_url) for _ in range(2)]
    yield made
    for c in made:
        await c.aclose()


@pytest_asyncio.fixture
async def near(aclients: list[redis.asyncio.Redis]) -> AsyncIterator[Cache]:
    cache = Cache(aclients[0], "near", ttl=60, near=True)
    await wait_tracking(cache)
    yield cache
    await cache.close()


@pytest_asyncio.fixture
async def steady(aclients: list[redis.asyncio.Redis]) -> AsyncIterator[Cache]:
    """Tracking proofs that last 5 s: a starved listener task does not send the hits of the
    tests that count requests to Redis."""
    cache = Cache(aclients[0], "near", ttl=60, near=NearCache(max_staleness=5.0))
    await wait_tracking(cache)
    yield cache
    await cache.close()


async def test_a_warm_hit_sends_nothing(steady: Cache, redis_client: redis.Redis) -> None:
    near = steady
    await warm(near, "k", {"a": 1})
    redis_client.config_resetstat()
    for _ in range(200):
        assert await near.get_or_set("k", lambda: {"a": 2}) == {"a": 1}
        assert await near.get("k") == {"a": 1}
    stats = redis_client.info("commandstats")
    assert not {"cmdstat_evalsha", "cmdstat_get", "cmdstat_eval"} & set(stats)


@pytest.mark.parametrize("kind", ["set", "delete", "fill", "expire", "flushdb"])
async def test_another_clients_write_is_seen_within_the_bound(
        near: Cache, aclients: list[redis.asyncio.Redis], kind: str) -> None:
    other = Cache(aclients[1], "near", ttl=60)
    for i in range(10):
        key = f"k{i}"
        await warm(near, key, "old", 0.3 if kind == "expire" else None)
        began = time.monotonic()
        if kind == "set":
            await other.set(key, "new")
        elif kind == "delete":
            await other.delete(key)
        elif kind == "fill":
            await other.delete(key)
            assert await other.get_or_set(key, lambda: "new") == "new"
        elif kind == "flushdb":
            await aclients[1].flushdb()
        acked = time.monotonic()
        since, limit = (began, 0.3 + BOUND) if kind == "expire" else (acked, BOUND)
        await read_until(functools.partial(near.get_or_set, key, lambda: "new"), "new", since,
                         limit)


async def test_killing_the_invalidation_connection(
        near: Cache, aclients: list[redis.asyncio.Redis], redis_client: redis.Redis) -> None:
    other = Cache(aclients[1], "near", ttl=60)
    for round_ in range(3):
        await warm(near, "k", f"old{round_}")
        ids = [c["id"] for c in redis_client.client_list() if c.get("name") == LISTENER_NAME]
        assert ids
        for cid in ids:
            redis_client.client_kill_filter(_id=str(cid))
        await other.set("k", f"new{round_}")
        await read_until(lambda: near.get_or_set("k", str), f"new{round_}", time.monotonic(),
                         BOUND)
        await wait_tracking(near)
    assert near.near_stats().resets >= 3


async def test_flushall_clears(near: Cache, redis_client: redis.Redis) -> None:
    for i in range(10):
        await warm(near, f"f{i}", i)
    redis_client.flushall()
    acked = time.monotonic()
    for i in range(10):
        await read_until(functools.partial(near.get, f"f{i}"), None, acked, BOUND)


async def test_a_read_racing_an_invalidation_is_not_installed(
        near: Cache, aclients: list[redis.asyncio.Redis]) -> None:
    other = Cache(aclients[1], "near", ttl=60)
    await other.set("k", "old")
    real = near._near_read
    store = near._near
    assert store is not None

    async def racing(keys: tuple[Any, ...], args: tuple[Any, ...]) -> Any:
        reply = await real(keys, args)
        gen = list(store._gens)
        await other.set("k", "new")
        end = time.monotonic() + 5
        while store._gens == gen:
            assert time.monotonic() < end
            await asyncio.sleep(0.001)
        return reply

    near._near_read = racing  # type: ignore[assignment]
    assert await near.get("k") == "old"
    near._near_read = real
    assert "k" not in store._data
    assert await near.get("k") == "new"


async def test_sixteen_tasks_one_loader_one_request(steady: Cache,
                                                    redis_client: redis.Redis) -> None:
    near = steady
    calls = []

    async def loader() -> str:
        calls.append(1)
        await asyncio.sleep(0.2)
        return "v"

    await near.get_or_set("other", lambda: 1)  # the scripts are loaded: no NOSCRIPT re-sends
    redis_client.config_resetstat()
    out = await asyncio.gather(*(near.get_or_set("s", loader) for _ in range(16)))
    assert out == ["v"] * 16
    assert len(calls) == 1
    # as in the sync twin: the one caller's 4 scripts, at most one waiter's re-read
    stats = redis_client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] <= 5, (stats, near.near_stats())


async def test_a_cancelled_leader_lets_the_others_through(near: Cache) -> None:
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(10)
        return "slow"

    leader = asyncio.ensure_future(near.get_or_set("c", slow))
    await started.wait()
    follower = asyncio.ensure_future(near.get_or_set("c", lambda: "fast"))
    await asyncio.sleep(0.05)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert await asyncio.wait_for(follower, 5) == "fast"


async def test_close_stops_the_listener(aclients: list[redis.asyncio.Redis],
                                        redis_client: redis.Redis) -> None:
    cache = Cache(aclients[0], "closing", ttl=60, near=True)
    await wait_tracking(cache)
    await cache.close()
    assert not cache.near_stats().tracking
    end = time.monotonic() + 5
    while any(c.get("name") == LISTENER_NAME for c in redis_client.client_list()):
        assert time.monotonic() < end
        await asyncio.sleep(0.01)
    await cache.set("k", 1)
    assert await cache.get_or_set("k", int) == 1  # still works, through Redis
