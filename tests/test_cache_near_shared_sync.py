# GENERATED from tests/test_cache_near_shared_async.py by scripts/unasync.py: do not edit.
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
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from near_helpers_sync import BOUND, copy_of, listener_ids, read_until, wait_tracking, warm
from twin_sync import Event, sleep, spawn

from pyredis_atomic import Cache, NearCache


@pytest.fixture
def near(make_client: Callable[..., Any]) -> Iterator[Cache]:
    cache = Cache(make_client(), "near", ttl=60, near=True)
    wait_tracking(cache)
    yield cache
    cache.close()


@pytest.fixture
def steady(make_client: Callable[..., Any]) -> Iterator[Cache]:
    """A near cache whose proof of tracking lasts 5 s, so a listener starved by a loaded
    machine does not make a test's hits fall back to Redis (the tests that count requests)."""
    cache = Cache(make_client(), "near", ttl=60, near=NearCache(max_staleness=5.0))
    wait_tracking(cache)
    yield cache
    cache.close()


def test_a_warm_hit_sends_nothing(steady: Cache, redis_client: Any) -> None:
    near = steady
    # A listener that misses a heartbeat under load clears the near cache and reads go to
    # Redis until it is back (never silently stale): such a window proves nothing about
    # hits, so it is measured again (at most 5 times).
    for _ in range(5):
        warm(near, "k", {"a": 1})
        redis_client.config_resetstat()
        before = near.near_stats()
        for _ in range(200):
            assert near.get_or_set("k", lambda: {"a": 2}) == {"a": 1}
            assert near.get("k") == {"a": 1}
        stats = redis_client.info("commandstats")
        after = near.near_stats()
        if after.resets == before.resets:
            break
    assert after.resets == before.resets, "the listener reset in every window"
    assert not {"cmdstat_evalsha", "cmdstat_get", "cmdstat_eval"} & set(stats)
    assert after.hits >= before.hits + 390  # a draw above FAST_GAP may go to Redis


def test_mutable_values_are_not_shared(near: Cache) -> None:
    warm(near, "k", {"a": [1]})
    near.get_or_set("k", dict)["a"].append(2)
    assert near.get_or_set("k", dict) == {"a": [1]}


@pytest.mark.parametrize("kind", ["set", "delete", "fill", "expire", "flushdb"])
def test_another_clients_write_is_seen_within_the_bound(
        near: Cache, make_client: Callable[..., Any], kind: str) -> None:
    other_client = make_client()
    other = Cache(other_client, "near", ttl=60)
    for i in range(15):
        key = f"k{i}"
        warm(near, key, "old", 0.3 if kind == "expire" else None)
        began = time.monotonic()
        if kind == "set":
            other.set(key, "new")
        elif kind == "delete":
            other.delete(key)
        elif kind == "fill":
            other.delete(key)
            assert other.get_or_set(key, lambda: "new") == "new"
        elif kind == "flushdb":
            other_client.flushdb()
        acked = time.monotonic()
        # after the bound the old value is never returned (an expiry: after the ttl)
        if kind == "expire":
            read_until(functools.partial(near.get_or_set, key, lambda: "new"), "new",
                       began, 0.3 + BOUND)
        else:
            read_until(functools.partial(near.get_or_set, key, lambda: "new"), "new",
                       acked, BOUND)
    assert near.near_stats().tracking


def test_eviction_by_the_server_removes_the_local_copy(
        near: Cache, redis_client: Any) -> None:
    admin = redis_client
    for i in range(100):
        warm(near, f"e{i}", "x" * 1000)
    admin.config_set("maxmemory-policy", "allkeys-random")
    try:
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory", used - 50_000)
        admin.set("filler", b"x")  # over maxmemory: keys are evicted first
    finally:
        admin.config_set("maxmemory", 0)
        admin.config_set("maxmemory-policy", "noeviction")
    sleep(BOUND)
    gone = [i for i in range(100) if not admin.exists(copy_of(near, f"e{i}"))]
    assert gone, "nothing was evicted"
    assert not {f"e{i}" for i in gone} & set(near._near._data)  # type: ignore[union-attr]


def test_killing_the_invalidation_connection(
        near: Cache, redis_client: Any, make_client: Callable[..., Any]) -> None:
    other = Cache(make_client(), "near", ttl=60)
    for round_ in range(3):
        warm(near, "k", f"old{round_}")
        ids = listener_ids(redis_client)
        assert ids
        for cid in ids:
            redis_client.client_kill_filter(_id=str(cid))
        other.set("k", f"new{round_}")  # its invalidation has nowhere to go
        read_until(lambda: near.get_or_set("k", str), f"new{round_}", time.monotonic(),
                   BOUND)
        wait_tracking(near)
    assert near.near_stats().resets >= 3


def test_server_restart(redis_server_factory: Callable[..., Any]) -> None:
    server = redis_server_factory()
    client = redis.Redis(host=server.host, port=server.port)
    cache = Cache(client, "near", ttl=60, near=True)
    try:
        wait_tracking(cache)
        warm(cache, "k", "before")
        server.restart(kill=True)  # nothing persisted: the value is gone
        read_until(lambda: cache.get_or_set("k", lambda: "after"), "after",
                   time.monotonic(), BOUND)
        wait_tracking(cache)
        assert cache.near_stats().resets >= 1
        assert cache.get_or_set("k", lambda: "x") == "after"
    finally:
        cache.close()
        client.close()


def test_failover_to_a_replica(redis_server_factory: Callable[..., Any]) -> None:
    primary = redis_server_factory()
    replica = redis_server_factory()
    pc = redis.Redis(host=primary.host, port=primary.port)
    rc = redis.Redis(host=replica.host, port=replica.port)
    rc.replicaof(primary.host, primary.port)
    cache = Cache(pc, "near", ttl=60, near=True)
    try:
        wait_tracking(cache)
        warm(cache, "k", "old")
        end = time.monotonic() + 10
        while rc.get(copy_of(cache, "k")) is None:
            assert time.monotonic() < end
            sleep(0.01)
        # the replica is promoted; the old primary follows it (what Sentinel would do)
        rc.replicaof("NO", "ONE")
        pc.replicaof(replica.host, replica.port)
        Cache(rc, "near", ttl=60).set("k", "new")
        # the old value may be read until the new one has replicated to the demoted server
        # (a plain GET there reads the same), then never again
        copy_key = copy_of(cache, "k")
        end = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.RedisError):  # it drops connections to resync
                if b"new" in (pc.get(copy_key) or b""):
                    break
            assert time.monotonic() < end
            sleep(0.01)
        read_until(lambda: cache.get_or_set("k", str), "new", time.monotonic(), BOUND)
        # the near cache stops serving from a server that is no longer a primary
        end = time.monotonic() + 10
        while cache.near_stats().tracking or cache.near_stats().resets < 1:
            assert time.monotonic() < end
            sleep(0.01)
        for _ in range(20):  # and keeps bypassing (every read goes to the server)
            assert cache.get_or_set("k", str) == "new"
        assert cache.near_stats().size == 0
    finally:
        cache.close()
        pc.close()
        rc.close()


def test_flushall_clears(near: Cache, redis_client: Any) -> None:
    for i in range(10):
        warm(near, f"f{i}", i)
    redis_client.flushall()
    acked = time.monotonic()
    for i in range(10):
        read_until(functools.partial(near.get, f"f{i}"), None, acked, BOUND)


def test_a_read_racing_an_invalidation_is_not_installed(
        near: Cache, make_client: Callable[..., Any]) -> None:
    other = Cache(make_client(), "near", ttl=60)
    other.set("k", "old")
    real = near._near_read
    store = near._near
    assert store is not None

    def racing(keys: tuple[Any, ...], args: tuple[Any, ...]) -> Any:
        reply = real(keys, args)  # reads "old"...
        gen = list(store._gens)
        other.set("k", "new")  # ...then a write lands before the install
        end = time.monotonic() + 5
        while store._gens == gen:  # wait for its invalidation to be processed
            assert time.monotonic() < end
            sleep(0.001)
        return reply

    near._near_read = racing  # type: ignore[assignment]
    assert near.get("k") == "old"  # the read's own answer
    near._near_read = real
    assert "k" not in store._data
    assert near.get("k") == "new"


def test_own_writes_are_read_at_once(near: Cache) -> None:
    warm(near, "k", 1)
    near.set("k", 2)
    assert near.get_or_set("k", lambda: 3) == 2
    near.delete("k")
    assert near.get("k") is None


def test_sixteen_callers_one_loader_one_request(steady: Cache,
                                                redis_client: Any) -> None:
    near = steady
    calls = []
    go = Event()

    def loader() -> str:
        calls.append(1)
        sleep(0.2)
        return "v"

    def run() -> Any:
        assert go.wait(30)  # all 16 start together
        return near.get_or_set("s", loader)

    near.get_or_set("other", lambda: 1)  # the scripts are loaded: no NOSCRIPT re-sends
    redis_client.config_resetstat()
    callers = [spawn(run) for _ in range(16)]
    sleep(0.1)  # (sync: the threads are all waiting by now)
    go.set()
    out = [c.result(30) for c in callers]
    assert out == ["v"] * 16
    assert len(calls) == 1
    stats = redis_client.info("commandstats")
    # the one caller: near read, fetch (lease), fill, near read again; and at most one
    # waiter reads once more (when the invalidation of that fill landed after the last read
    # began, so it was not kept); not one request per caller
    assert stats["cmdstat_evalsha"]["calls"] <= 5, (stats, near.near_stats())


def test_near_needs_fast_hits(redis_client: Any) -> None:
    with pytest.raises(ValueError, match="fast_hits"):
        Cache(redis_client, "x", ttl=1, fast_hits=False, near=True)
    with pytest.raises(TypeError, match="near"):
        Cache(redis_client, "x", ttl=1, near="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no near cache"):
        Cache(redis_client, "x", ttl=1).near_stats()


def test_bounded_memory(make_client: Callable[..., Any]) -> None:
    cache = Cache(make_client(), "lru", ttl=60, near=NearCache(max_entries=50,
                                                                 max_value_bytes=1000))
    try:
        wait_tracking(cache)
        for i in range(120):
            cache.get_or_set(f"k{i}", functools.partial(int, i))
        cache.get_or_set("big", lambda: "x" * 5000)
        cache.get_or_set("big", lambda: "x")
        stats = cache.near_stats()
        assert stats.size <= 50
        # (not every read is kept: one right after the caller's own fill may be refused,
        # the fill's invalidation arriving after the read began)
        assert stats.evictions > 0
        assert "big" not in cache._near._data  # type: ignore[union-attr]
    finally:
        cache.close()


def test_early_refresh_still_happens(make_client: Callable[..., Any]) -> None:
    """A local value ends with the fresh copy, so XFetch refreshes as without the near cache."""
    cache = Cache(make_client(), "xf", ttl=0.6, near=True)
    try:
        wait_tracking(cache)
        loads = []

        def loader() -> int:
            loads.append(1)
            sleep(0.05)
            return len(loads)

        end = time.monotonic() + 2.5
        seen = set()
        while time.monotonic() < end:
            seen.add(cache.get_or_set("k", loader))
            sleep(0.002)
        assert len(loads) >= 3  # the value was reloaded about every 0.6 s
        assert len(seen) == len(loads)
    finally:
        cache.close()


def test_close_stops_the_listener(make_client: Callable[..., Any],
                                  redis_client: Any) -> None:
    cache = Cache(make_client(), "closing", ttl=60, near=True)
    wait_tracking(cache)
    cache.close()
    assert not cache.near_stats().tracking
    end = time.monotonic() + 5
    while listener_ids(redis_client):
        assert time.monotonic() < end
        sleep(0.01)
    cache.set("k", 1)
    assert cache.get_or_set("k", int) == 1  # still works, through Redis
