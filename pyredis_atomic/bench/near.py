"""Benchmark cases of the near cache (issue 18): a warm hit against a plain GET (and
redis-py's own client-side cache where it can run), the cost of one invalidation at 1k and
100k local entries, the invalidation delay (median and p99), memory per 100k entries."""

from __future__ import annotations

import contextlib
import gc
import json
import statistics
import time
import tracemalloc
from typing import Any

import redis

from .timing import Result, Stat

__all__ = ["near_hit", "near_invalidation", "near_memory", "near_staleness"]

VALUE = {"id": 42, "name": "widget", "price": 9.99, "tags": ["a", "b", "c"]}


def _rows(b: Any, group: str, stats: dict[str, Stat], baseline: str,
          notes: dict[str, str] | None = None) -> list[Result]:
    from .cases import _rows as rows

    return rows(group, stats, baseline, notes)


def _tracking(cache: Any, timeout: float = 10.0) -> None:
    cache.get("__start__")
    end = time.monotonic() + timeout
    while not cache.near_stats().tracking:
        if time.monotonic() > end:
            raise RuntimeError("the near cache's tracking did not come up")
        time.sleep(0.005)


def _warm(cache: Any, key: str, value: Any) -> None:
    cache.set(key, value)
    end = time.monotonic() + 10
    while not (cache.get_or_set(key, lambda: value) == value and key in cache._near._data):
        if time.monotonic() > end:
            raise RuntimeError("the near cache did not keep the benchmark's key")
        time.sleep(0.005)


def _csc_client(url: str) -> Any:
    """redis-py's client-side cache, its 7.4 version check lowered in this process (tracking
    itself works on 6.0+); None when this redis-py has none."""
    try:
        from redis.cache import CacheConfig
        from redis.connection import CacheProxyConnection
    except ImportError:
        return None
    CacheProxyConnection.MIN_ALLOWED_VERSION = "6.0.0"
    try:
        client = redis.Redis.from_url(url, protocol=3, cache_config=CacheConfig())
        client.ping()
    except Exception:
        return None
    return client


def near_hit(b: Any) -> list[Result]:
    """A warm near-cache hit against a plain GET (one round trip) in the same run."""
    from pyredis_atomic import Cache, NearCache

    c = b.client
    name = b.fresh()
    near = Cache(redis.Redis.from_url(b.url), name, ttl=600.0, near=True)
    shared = Cache(redis.Redis.from_url(b.url), name, ttl=600.0, near=NearCache(shared=True))
    remote = Cache(c, name, ttl=600.0)
    _tracking(near)
    _tracking(shared)
    _warm(near, "p42", VALUE)
    _warm(shared, "p42", VALUE)
    _warm(near, "s42", "widget-42")
    plain = b.fresh()
    c.set(plain, json.dumps(VALUE))

    def loader() -> Any:
        raise AssertionError("the benchmark's key must be a hit")

    variants = {
        "redis-py GET (no decoding)": lambda: c.get(plain),
        "Cache get_or_set, no near (1 round trip)": lambda: remote.get_or_set("p42", loader),
        "near get_or_set (dict value, decoded per hit)": lambda: near.get_or_set("p42", loader),
        "near get_or_set (str value, shared)": lambda: near.get_or_set("s42", loader),
        "near get_or_set (dict value, NearCache(shared=True))":
            lambda: shared.get_or_set("p42", loader),
    }
    notes = {"near get_or_set (dict value, decoded per hit)":
             "the default: a mutable value is decoded per hit (callers never share it)",
             "near get_or_set (dict value, NearCache(shared=True))":
             "one decoded object for all callers (they must not change it)"}
    csc = _csc_client(b.url)
    if csc is not None:
        csc.set(plain, json.dumps(VALUE))
        csc.get(plain)
        variants["redis-py client-side cache GET (no decoding)"] = lambda: csc.get(plain)
        notes["redis-py client-side cache GET (no decoding)"] = (
            "redis-py's CacheConfig(), its >= 7.4 check lowered in-process")
    try:
        stats = b.time(variants, ops=b.ops * 5)
    finally:
        for cache in (near, shared):
            cache.close()
            cache.client.close()
        if csc is not None:
            csc.close()
    rows = _rows(b, "near cache, warm hit", stats, "redis-py GET (no decoding)", notes)
    for r in rows:
        r.extra["hit_us"] = 1e6 / r.value
    return rows


def near_invalidation(b: Any) -> list[Result]:
    """One invalidation message processed (and the entry put back) with 1k, 10k and 100k
    local entries: the cost must not grow with the number of entries."""
    from pyredis_atomic import NearCache
    from pyredis_atomic._core.cache import CacheCore
    from pyredis_atomic._core.near import NearStore

    core = CacheCore("bench", ttl=600)
    payload = json.dumps(VALUE).encode()
    far = time.monotonic() + 3600
    variants = {}
    for n in (1_000, 10_000, 100_000):
        store = NearStore(NearCache(max_entries=n), core.head, core.serializer.loads)
        store.expect_nodes(["n"])
        store.proven("n", far)
        for i in range(n):
            store.install(f"k{i}", store.ticket(f"k{i}"), payload, VALUE, far, False, 0.0)
        # the same 1000 keys at every size (as the server names them, and the user's key):
        # what differs is only how many other entries the store holds
        pairs = [(core.keys_of(f"k{i}")[1].encode(), f"k{i}") for i in range(1000)]
        position = [0]

        def cycle(store: NearStore = store, pairs: list[tuple[bytes, str]] = pairs,
                  position: list[int] = position) -> None:
            i = position[0] = (position[0] + 1) % len(pairs)
            raw, key = pairs[i]
            store.invalidated([raw])
            store.install(key, store.ticket(key), payload, VALUE, far, False, 0.0)

        variants[f"{n:,} local entries"] = cycle
    # the sizes are timed in turns (interleaved), so they see the same machine load; an
    # invalidation takes microseconds, so many make one timed slice
    stats = b.time(variants, ops=b.ops * 50)
    return _rows(b, "near cache, invalidation + re-install vs local entries", stats,
                 "1,000 local entries")


def near_staleness(b: Any) -> list[Result]:
    """The invalidation delay: from another client's write acknowledged until the near cache
    returns the new value (median and p99); the bound is max_staleness."""
    from pyredis_atomic import Cache

    name = b.fresh()
    reader_client = redis.Redis.from_url(b.url)
    near = Cache(reader_client, name, ttl=600.0, near=True)
    writer = Cache(b.client, name, ttl=600.0)
    _tracking(near)
    delays: list[float] = []
    trials = 20 if b.quick else 500
    try:
        for i in range(trials):
            key = f"k{i % 20}"
            _warm(near, key, ["old", i])
            writer.set(key, ["new", i])
            acked = time.perf_counter()
            while near.get_or_set(key, list) != ["new", i]:
                pass
            delays.append((time.perf_counter() - acked) * 1000)
    finally:
        near.close()
        reader_client.close()
    delays.sort()
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    med = statistics.median(delays)
    bound = near._near.config.max_staleness * 1000  # type: ignore[union-attr]
    return [
        Result(group="near cache, invalidation delay (write acked -> new value read)",
               case="median", value=med, unit="ms", low=delays[0], high=delays[-1],
               note=f"{trials} trials; bound (max_staleness) {bound:.0f} ms",
               extra={"p99_ms": p99, "max_ms": delays[-1]}),
        Result(group="near cache, invalidation delay (write acked -> new value read)",
               case="p99", value=p99, unit="ms", note=f"max {delays[-1]:.2f} ms"),
    ]


def near_memory(b: Any) -> list[Result]:
    """Process memory held by 100k local entries of ~200 serialized bytes each."""
    from pyredis_atomic import NearCache
    from pyredis_atomic._core.cache import CacheCore
    from pyredis_atomic._core.near import NearStore

    core = CacheCore("bench", ttl=600)
    n = 100_000
    value = {"id": 0, "name": "x" * 150, "tags": ["a", "b"]}
    if b.quick:  # a smoke run measures 20k entries and scales (the full run measures 100k)
        n = 20_000
    size = len(core.serializer.dumps(value))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = NearStore(NearCache(max_entries=n), core.head, core.serializer.loads)
        store.expect_nodes(["n"])
        store.proven("n", time.monotonic() + 3600)
        far = time.monotonic() + 3600
        for i in range(n):
            v = dict(value, id=i)
            payload = core.serializer.dumps(v)
            store.install(f"product:{i}", store.ticket(f"product:{i}"), payload, v, far,
                          False, 0.0)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    with contextlib.suppress(Exception):
        del store
    per_100k = used / n * 100_000
    return [Result(group="near cache, memory", case=f"100,000 entries of ~{size} B",
                   value=per_100k / 1e6, unit="MB",
                   note=f"{used / n:.0f} B per entry (serialized value, key, entry, LRU); "
                        f"measured over {n:,}",
                   extra={"bytes_per_entry": used / n})]
