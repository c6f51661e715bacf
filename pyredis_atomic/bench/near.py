"""Benchmark cases of the near cache (issue 18): a warm hit against a plain GET (and
redis-py's own client-side cache where it can run), the cost of one invalidation at 1k and
100k local entries, the invalidation delay (median and p99), memory per 100k entries, and
the server's cost of BCAST against default-mode tracking."""

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

__all__ = ["near_hit", "near_invalidation", "near_memory", "near_staleness",
           "near_tracking_mode"]

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


def _conn(url: str) -> Any:
    """One raw connection (no pool; RESP2, where invalidations are pub/sub messages, as
    the near cache's listener has them): the tracking state belongs to the connection."""
    pool = redis.ConnectionPool.from_url(url, protocol=2)
    conn = pool.make_connection()
    conn.connect()
    return conn


def _pipe(conn: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    conn.send_packed_command(conn.pack_commands(commands))
    return [conn.read_response() for _ in commands]


def _server_cpu(c: redis.Redis) -> float:
    """Seconds of CPU the server's main thread has used (the whole process before 6.2)."""
    info = c.info("cpu")
    if "used_cpu_user_main_thread" in info:
        return float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"])
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _tracking_run(b: Any, mode: str, share: float, n: int, writes: int,
                  readers: int = 4) -> dict[str, float]:
    """One measured run: ``n`` keys under a prefix, the process holds ``share`` of them
    (read once on its pooled connections, re-read after each invalidation, as a near cache
    refills), another connection writes ``writes`` random keys of the ``n`` in pipelines
    of 100. ``mode``: ``bcast`` (one listener, BCAST PREFIX), ``default`` (every reading
    connection CLIENT TRACKING ON REDIRECT the listener), ``bcast4`` (four BCAST
    listeners: what four processes cost) or ``none`` (no tracking)."""
    import random

    c = b.client
    prefix = b.fresh() + ":"
    keys = [f"{prefix}{i}".encode() for i in range(n)]
    for i in range(0, n, 1000):
        c.mset(dict.fromkeys(keys[i:i + 1000], b"x" * 100))
    rnd = random.Random(7)
    held = set(rnd.sample(range(n), max(1, int(n * share))))
    listeners = [_conn(b.url) for _ in range(4 if mode == "bcast4" else 1)]
    lid = None
    for listener in listeners:  # bcast4: four processes listening, one measured
        listener.send_command("CLIENT", "ID")
        lid = listener.read_response()
        if mode.startswith("bcast"):
            listener.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", lid, "BCAST",
                                  "PREFIX", prefix)
            listener.read_response()
        listener.send_command("SUBSCRIBE", "__redis__:invalidate")
        listener.read_response()
    conns = [_conn(b.url) for _ in range(readers)]
    writer = _conn(b.url)
    messages = [0, 0]  # messages, keys named (by the last listener)

    def drain() -> None:
        for listener in listeners:
            listener.send_command("PING", b"m")
        for listener in listeners:
            count = listener is listeners[-1]
            while True:
                reply = listener.read_response()
                if reply[0] == b"pong":
                    break
                if count:
                    messages[0] += 1
                    messages[1] += len(reply[2]) if reply[2] is not None else 0

    try:
        if mode == "default":
            for conn in conns:
                _pipe(conn, [("CLIENT", "TRACKING", "ON", "REDIRECT", lid)])
        info = c.info("stats")
        tracked0 = int(info.get("tracking_total_keys", 0))
        mem0 = int(c.info("memory")["used_memory"])
        order = sorted(held)
        for j, conn in enumerate(conns):
            part = order[j::readers]
            for i in range(0, len(part), 500):
                _pipe(conn, [("GET", keys[k]) for k in part[i:i + 500]])
        tracked = int(c.info("stats").get("tracking_total_keys", 0)) - tracked0
        memory = int(c.info("memory")["used_memory"]) - mem0
        drain()
        messages[:] = [0, 0]
        cpu0 = _server_cpu(c)
        done = 0
        turn = 0
        while done < writes:
            batch = [rnd.randrange(n) for _ in range(min(100, writes - done))]
            _pipe(writer, [("SET", keys[k], b"y" * 100) for k in batch])
            refill = [k for k in batch if k in held]
            if refill:  # the near cache reads a held key again on its next access
                turn = (turn + 1) % readers
                _pipe(conns[turn], [("GET", keys[k]) for k in refill])
            drain()
            done += len(batch)
        cpu = _server_cpu(c) - cpu0
    finally:
        for conn in [*listeners, writer, *conns]:
            conn.disconnect()
        for i in range(0, n, 1000):  # a deleted key leaves the tracking table too
            c.delete(*keys[i:i + 1000])
    return {"cpu_us": cpu / writes * 1e6, "messages": messages[0] / writes,
            "keys": messages[1] / writes, "tracked": tracked, "memory": memory}


def near_tracking_mode(b: Any) -> list[Result]:
    """BCAST with the cache's prefix (what the near cache does) against default-mode
    tracking (every pooled reading connection ``CLIENT TRACKING ON REDIRECT`` the
    listener), on one server in one run: server CPU per write (the main thread's, from
    ``INFO cpu``, minus the same run without tracking), invalidation messages the process
    receives per write, and the tracking table (``tracking_total_keys``, ``used_memory``
    after the reads; the latter moves by some 20 KiB on its own), when the process holds
    1% or all of the keys."""
    n = 2_000 if b.quick else 20_000
    writes = 4_000 if b.quick else 40_000
    rounds = 1 if b.quick else 3
    modes = ("none", "bcast", "bcast4", "default")
    configs = [(mode, share) for share in (0.01, 1.0) for mode in modes]
    runs: dict[tuple[str, float], list[dict[str, float]]] = {k: [] for k in configs}
    for _ in range(rounds):  # in turns: every configuration sees the same machine load
        for mode, share in configs:
            runs[(mode, share)].append(_tracking_run(b, mode, share, n, writes))
    rows = []
    group = f"near cache, tracking mode: server cost per write ({n:,} keys)"
    for share in (0.01, 1.0):
        base = statistics.median(r["cpu_us"] for r in runs[("none", share)])
        for mode in modes:
            rs = runs[(mode, share)]
            cpu = [r["cpu_us"] for r in rs]
            med = statistics.median(cpu)
            held = f"holds {share:.0%} of the keys"
            label = {"none": "no tracking", "bcast": "BCAST PREFIX (1 listener)",
                     "bcast4": "BCAST PREFIX (4 listeners: 4 processes)",
                     "default": "default mode (4 pooled connections REDIRECT)"}[mode]
            msgs = statistics.median(r["messages"] for r in rs)
            named = statistics.median(r["keys"] for r in rs)
            tracked = statistics.median(r["tracked"] for r in rs)
            memory = statistics.median(r["memory"] for r in rs)
            # BCAST sends the keys of one event-loop turn in one message: the listener's
            # work is the keys named, the messages only its reads
            note = (f"{named:.3f} keys invalidated per write (in {msgs:.3f} messages); "
                    f"tracking table {tracked:,.0f} keys, {memory / 1024:,.0f} KiB")
            if mode != "none":
                note = f"+{med - base:.2f} us over no tracking; " + note
            rows.append(Result(group=group, case=f"{label}, {held}", value=med,
                               unit="us CPU/write", low=min(cpu), high=max(cpu), note=note,
                               extra={"messages_per_write": msgs, "keys_per_write": named,
                                      "tracked_keys": tracked,
                                      "table_bytes": memory, "overhead_us": med - base}))
    return rows
