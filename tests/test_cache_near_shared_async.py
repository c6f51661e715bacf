"""The near cache on a real Redis: hits from memory, every kind of write seen within the
bound, no stale read after the invalidation connection is killed, the server restarts, a
failover, an eviction or FLUSHALL, reads that race an invalidation, a stampede of callers,
bounded memory, early refresh, close.

Shared by the two APIs: ``scripts/unasync.py`` writes ``test_cache_near_shared_sync.py``
from ``test_cache_near_shared_async.py`` (the listener: a task of the loop here, a thread
there; concurrent callers through ``twin_async``/``twin_sync``; the helpers in
``near_helpers_async.py``, its sync twin generated too). What only one API has is
hand-written: ``test_cache_near.py`` (processes, the stateful models, redis-py's own
client-side cache, which its asyncio client lacks) and ``test_cache_near_async.py``
(a cancelled leader).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
import redis
import redis.asyncio
from near_helpers_async import BOUND, copy_of, listener_ids, read_until, wait_tracking, warm
from twin_async import Event, sleep, spawn

from pyredis_atomic.asyncio import Cache, NearCache


@pytest_asyncio.fixture
async def near(make_aclient: Callable[..., Any]) -> AsyncIterator[Cache]:
    cache = Cache(make_aclient(), "near", ttl=60, near=True)
    await wait_tracking(cache)
    yield cache
    await cache.close()


@pytest_asyncio.fixture
async def steady(make_aclient: Callable[..., Any]) -> AsyncIterator[Cache]:
    """A near cache whose proof of tracking lasts 5 s, so a listener starved by a loaded
    machine does not make a test's hits fall back to Redis (the tests that count requests)."""
    cache = Cache(make_aclient(), "near", ttl=60, near=NearCache(max_staleness=5.0))
    await wait_tracking(cache)
    yield cache
    await cache.close()


async def test_a_warm_hit_sends_nothing(steady: Cache, async_redis_client: Any) -> None:
    near = steady
    # A listener that misses a heartbeat under load clears the near cache and reads go to
    # Redis until it is back (never silently stale): such a window proves nothing about
    # hits, so it is measured again (at most 5 times).
    for _ in range(5):
        await warm(near, "k", {"a": 1})
        await async_redis_client.config_resetstat()
        before = near.near_stats()
        for _ in range(200):
            assert await near.get_or_set("k", lambda: {"a": 2}) == {"a": 1}
            assert await near.get("k") == {"a": 1}
        stats = await async_redis_client.info("commandstats")
        after = near.near_stats()
        if after.resets == before.resets:
            break
    assert after.resets == before.resets, "the listener reset in every window"
    assert not {"cmdstat_evalsha", "cmdstat_get", "cmdstat_eval"} & set(stats)
    assert after.hits >= before.hits + 390  # a draw above FAST_GAP may go to Redis


async def test_mutable_values_are_not_shared(near: Cache) -> None:
    await warm(near, "k", {"a": [1]})
    (await near.get_or_set("k", dict))["a"].append(2)
    assert await near.get_or_set("k", dict) == {"a": [1]}


@pytest.mark.parametrize("kind", ["set", "delete", "fill", "expire", "flushdb"])
async def test_another_clients_write_is_seen_within_the_bound(
        near: Cache, make_aclient: Callable[..., Any], kind: str) -> None:
    other_client = make_aclient()
    other = Cache(other_client, "near", ttl=60)
    for i in range(15):
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
            await other_client.flushdb()
        acked = time.monotonic()
        # after the bound the old value is never returned (an expiry: after the ttl)
        if kind == "expire":
            await read_until(functools.partial(near.get_or_set, key, lambda: "new"), "new",
                             began, 0.3 + BOUND)
        else:
            await read_until(functools.partial(near.get_or_set, key, lambda: "new"), "new",
                             acked, BOUND)
    assert near.near_stats().tracking


async def test_eviction_by_the_server_removes_the_local_copy(
        near: Cache, async_redis_client: Any) -> None:
    admin = async_redis_client
    for i in range(100):
        await warm(near, f"e{i}", "x" * 1000)
    await admin.config_set("maxmemory-policy", "allkeys-random")
    try:
        used = int((await admin.info("memory"))["used_memory"])
        await admin.config_set("maxmemory", used - 50_000)
        await admin.set("filler", b"x")  # over maxmemory: keys are evicted first
    finally:
        await admin.config_set("maxmemory", 0)
        await admin.config_set("maxmemory-policy", "noeviction")
    await sleep(BOUND)
    gone = [i for i in range(100) if not await admin.exists(copy_of(near, f"e{i}"))]
    assert gone, "nothing was evicted"
    assert not {f"e{i}" for i in gone} & set(near._near._data)  # type: ignore[union-attr]


async def test_killing_the_invalidation_connection(
        near: Cache, async_redis_client: Any, make_aclient: Callable[..., Any]) -> None:
    other = Cache(make_aclient(), "near", ttl=60)
    for round_ in range(3):
        await warm(near, "k", f"old{round_}")
        ids = await listener_ids(async_redis_client)
        assert ids
        for cid in ids:
            await async_redis_client.client_kill_filter(_id=str(cid))
        await other.set("k", f"new{round_}")  # its invalidation has nowhere to go
        await read_until(lambda: near.get_or_set("k", str), f"new{round_}", time.monotonic(),
                         BOUND)
        await wait_tracking(near)
    assert near.near_stats().resets >= 3


async def test_server_restart(redis_server_factory: Callable[..., Any]) -> None:
    server = redis_server_factory()
    client = redis.asyncio.Redis(host=server.host, port=server.port)
    cache = Cache(client, "near", ttl=60, near=True)
    try:
        await wait_tracking(cache)
        await warm(cache, "k", "before")
        server.restart(kill=True)  # nothing persisted: the value is gone
        await read_until(lambda: cache.get_or_set("k", lambda: "after"), "after",
                         time.monotonic(), BOUND)
        await wait_tracking(cache)
        assert cache.near_stats().resets >= 1
        assert await cache.get_or_set("k", lambda: "x") == "after"
    finally:
        await cache.close()
        await client.aclose()


async def test_failover_to_a_replica(redis_server_factory: Callable[..., Any]) -> None:
    primary = redis_server_factory()
    replica = redis_server_factory()
    pc = redis.asyncio.Redis(host=primary.host, port=primary.port)
    rc = redis.asyncio.Redis(host=replica.host, port=replica.port)
    await rc.replicaof(primary.host, primary.port)
    cache = Cache(pc, "near", ttl=60, near=True)
    try:
        await wait_tracking(cache)
        await warm(cache, "k", "old")
        end = time.monotonic() + 10
        while await rc.get(copy_of(cache, "k")) is None:
            assert time.monotonic() < end
            await sleep(0.01)
        # the replica is promoted; the old primary follows it (what Sentinel would do)
        await rc.replicaof("NO", "ONE")
        await pc.replicaof(replica.host, replica.port)
        await Cache(rc, "near", ttl=60).set("k", "new")
        # the old value may be read until the new one has replicated to the demoted server
        # (a plain GET there reads the same), then never again
        copy_key = copy_of(cache, "k")
        end = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.RedisError):  # it drops connections to resync
                if b"new" in ((await pc.get(copy_key)) or b""):
                    break
            assert time.monotonic() < end
            await sleep(0.01)
        await read_until(lambda: cache.get_or_set("k", str), "new", time.monotonic(), BOUND)
        # the near cache stops serving from a server that is no longer a primary
        end = time.monotonic() + 10
        while cache.near_stats().tracking or cache.near_stats().resets < 1:
            assert time.monotonic() < end
            await sleep(0.01)
        for _ in range(20):  # and keeps bypassing (every read goes to the server)
            assert await cache.get_or_set("k", str) == "new"
        assert cache.near_stats().size == 0
    finally:
        await cache.close()
        await pc.aclose()
        await rc.aclose()


async def test_flushall_clears(near: Cache, async_redis_client: Any) -> None:
    for i in range(10):
        await warm(near, f"f{i}", i)
    await async_redis_client.flushall()
    acked = time.monotonic()
    for i in range(10):
        await read_until(functools.partial(near.get, f"f{i}"), None, acked, BOUND)


async def test_a_read_racing_an_invalidation_is_not_installed(
        near: Cache, make_aclient: Callable[..., Any]) -> None:
    other = Cache(make_aclient(), "near", ttl=60)
    await other.set("k", "old")
    real = near._near_read
    store = near._near
    assert store is not None

    async def racing(keys: tuple[Any, ...], args: tuple[Any, ...]) -> Any:
        reply = await real(keys, args)  # reads "old"...
        gen = list(store._gens)
        await other.set("k", "new")  # ...then a write lands before the install
        end = time.monotonic() + 5
        while store._gens == gen:  # wait for its invalidation to be processed
            assert time.monotonic() < end
            await sleep(0.001)
        return reply

    near._near_read = racing  # type: ignore[assignment]
    assert await near.get("k") == "old"  # the read's own answer
    near._near_read = real
    assert "k" not in store._data
    assert await near.get("k") == "new"


async def test_own_writes_are_read_at_once(near: Cache) -> None:
    await warm(near, "k", 1)
    await near.set("k", 2)
    assert await near.get_or_set("k", lambda: 3) == 2
    await near.delete("k")
    assert await near.get("k") is None


async def test_sixteen_callers_one_loader_one_request(steady: Cache,
                                                      async_redis_client: Any) -> None:
    near = steady
    calls = []
    go = Event()

    async def loader() -> str:
        calls.append(1)
        await sleep(0.2)
        return "v"

    async def run() -> Any:
        assert await go.wait(30)  # all 16 start together
        return await near.get_or_set("s", loader)

    await near.get_or_set("other", lambda: 1)  # the scripts are loaded: no NOSCRIPT re-sends
    await async_redis_client.config_resetstat()
    callers = [spawn(run) for _ in range(16)]
    await sleep(0.1)  # (sync: the threads are all waiting by now)
    go.set()
    out = [await c.result(30) for c in callers]
    assert out == ["v"] * 16
    assert len(calls) == 1
    stats = await async_redis_client.info("commandstats")
    # the one caller: near read, fetch (lease), fill, near read again; and at most one
    # waiter reads once more (when the invalidation of that fill landed after the last read
    # began, so it was not kept); not one request per caller
    assert stats["cmdstat_evalsha"]["calls"] <= 5, (stats, near.near_stats())


async def test_near_needs_fast_hits(async_redis_client: Any) -> None:
    with pytest.raises(ValueError, match="fast_hits"):
        Cache(async_redis_client, "x", ttl=1, fast_hits=False, near=True)
    with pytest.raises(TypeError, match="near"):
        Cache(async_redis_client, "x", ttl=1, near="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no near cache"):
        Cache(async_redis_client, "x", ttl=1).near_stats()


async def test_bounded_memory(make_aclient: Callable[..., Any]) -> None:
    cache = Cache(make_aclient(), "lru", ttl=60, near=NearCache(max_entries=50,
                                                                 max_value_bytes=1000))
    try:
        await wait_tracking(cache)
        for i in range(120):
            await cache.get_or_set(f"k{i}", functools.partial(int, i))
        await cache.get_or_set("big", lambda: "x" * 5000)
        await cache.get_or_set("big", lambda: "x")
        stats = cache.near_stats()
        assert stats.size <= 50
        # (not every read is kept: one right after the caller's own fill may be refused,
        # the fill's invalidation arriving after the read began)
        assert stats.evictions > 0
        assert "big" not in cache._near._data  # type: ignore[union-attr]
    finally:
        await cache.close()


async def test_early_refresh_still_happens(make_aclient: Callable[..., Any]) -> None:
    """A local value ends with the fresh copy, so XFetch refreshes as without the near cache."""
    cache = Cache(make_aclient(), "xf", ttl=0.6, near=True)
    try:
        await wait_tracking(cache)
        loads = []

        async def loader() -> int:
            loads.append(1)
            await sleep(0.05)
            return len(loads)

        end = time.monotonic() + 2.5
        seen = set()
        while time.monotonic() < end:
            seen.add(await cache.get_or_set("k", loader))
            await sleep(0.002)
        assert len(loads) >= 3  # the value was reloaded about every 0.6 s
        assert len(seen) == len(loads)
    finally:
        await cache.close()


async def test_close_stops_the_listener(make_aclient: Callable[..., Any],
                                        async_redis_client: Any) -> None:
    cache = Cache(make_aclient(), "closing", ttl=60, near=True)
    await wait_tracking(cache)
    await cache.close()
    assert not cache.near_stats().tracking
    end = time.monotonic() + 5
    while await listener_ids(async_redis_client):
        assert time.monotonic() < end
        await sleep(0.01)
    await cache.set("k", 1)
    assert await cache.get_or_set("k", int) == 1  # still works, through Redis
