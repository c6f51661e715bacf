"""The near cache on a real Redis: hits from memory, every kind of write seen within the
bound, no stale read after the invalidation connection is killed, the server restarts, a
failover or FLUSHALL, reads that race an invalidation, stampedes across threads and
processes, redis-py clients with their own client-side cache."""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from pyredis_atomic import Cache, NearCache
from pyredis_atomic._core.near import LISTENER_NAME

BOUND = NearCache().max_staleness


def wait_tracking(cache: Cache, timeout: float = 10.0) -> None:
    """Start the listener (any near read does) and wait until hits are served locally."""
    cache.get("__start__")
    end = time.monotonic() + timeout
    while not cache.near_stats().tracking:
        assert time.monotonic() < end, f"tracking not back: {cache.near_stats()}"
        time.sleep(0.005)


def warm(cache: Cache, key: str, value: Any, ttl: float | None = None) -> None:
    """Store ``value`` under ``key`` and make it a local hit."""
    cache.set(key, value, ttl)
    end = time.monotonic() + 10
    while True:
        got = cache.get_or_set(key, lambda: value)
        if got == value and key in cache._near._data:  # type: ignore[union-attr]
            return
        assert time.monotonic() < end
        time.sleep(0.005)


def read_until(read: Callable[[], Any], want: Any, since: float, limit: float) -> None:
    """Read until ``want`` comes back; a read that *began* ``limit`` or more after ``since``
    must not return anything else (a read that began earlier may, however late it returns:
    a loaded machine can hold a thread between its lookup and its return)."""
    while True:
        began = time.monotonic()
        try:
            got = read()
        except redis.RedisError:
            got = "(error)"  # the pool reconnecting: not a stale read
            assert began - since < limit + 10, "the server did not come back"
            continue
        if got == want:
            return
        assert began - since < limit, (got, want, began - since)


def copy_of(cache: Cache, key: str) -> str:
    """The Redis key of ``key``'s fresh copy (next to its entry hash)."""
    return cache.key_of(key)[:-1] + "f"


def listener_ids(client: redis.Redis) -> list[Any]:
    return [c["id"] for c in client.client_list() if c.get("name") == LISTENER_NAME]


@pytest.fixture
def near(make_client: Callable[..., redis.Redis]) -> Iterator[Cache]:
    cache = Cache(make_client(), "near", ttl=60, near=True)
    wait_tracking(cache)
    yield cache
    cache.close()


@pytest.fixture
def steady(make_client: Callable[..., redis.Redis]) -> Iterator[Cache]:
    """A near cache whose proof of tracking lasts 5 s, so a listener starved by a loaded
    machine does not make a test's hits fall back to Redis (the tests that count requests)."""
    cache = Cache(make_client(), "near", ttl=60, near=NearCache(max_staleness=5.0))
    wait_tracking(cache)
    yield cache
    cache.close()


def test_a_warm_hit_sends_nothing(steady: Cache, redis_client: redis.Redis) -> None:
    near = steady
    warm(near, "k", {"a": 1})
    redis_client.config_resetstat()
    before = near.near_stats().hits
    for _ in range(200):
        assert near.get_or_set("k", lambda: {"a": 2}) == {"a": 1}
        assert near.get("k") == {"a": 1}
    stats = redis_client.info("commandstats")
    assert not {"cmdstat_evalsha", "cmdstat_get", "cmdstat_eval"} & set(stats)
    assert near.near_stats().hits >= before + 390  # a draw above FAST_GAP may go to Redis


def test_mutable_values_are_not_shared(near: Cache) -> None:
    warm(near, "k", {"a": [1]})
    near.get_or_set("k", dict)["a"].append(2)
    assert near.get_or_set("k", dict) == {"a": [1]}


@pytest.mark.parametrize("kind", ["set", "delete", "fill", "expire", "flushdb"])
def test_another_clients_write_is_seen_within_the_bound(
        near: Cache, make_client: Callable[..., redis.Redis], kind: str) -> None:
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
            read_until(functools.partial(near.get_or_set, key, lambda: "new"), "new", began,
                       0.3 + BOUND)
        else:
            read_until(functools.partial(near.get_or_set, key, lambda: "new"), "new", acked,
                       BOUND)
    assert near.near_stats().tracking


def test_eviction_by_the_server_removes_the_local_copy(
        near: Cache, redis_client: redis.Redis) -> None:
    for i in range(100):
        warm(near, f"e{i}", "x" * 1000)
    redis_client.config_set("maxmemory-policy", "allkeys-random")
    try:
        used = int(redis_client.info("memory")["used_memory"])
        redis_client.config_set("maxmemory", used - 50_000)
        redis_client.set("filler", b"x")  # over maxmemory: keys are evicted first
    finally:
        redis_client.config_set("maxmemory", 0)
        redis_client.config_set("maxmemory-policy", "noeviction")
    time.sleep(BOUND)
    gone = [i for i in range(100) if not redis_client.exists(copy_of(near, f"e{i}"))]
    assert gone, "nothing was evicted"
    assert not {f"e{i}" for i in gone} & set(near._near._data)  # type: ignore[union-attr]


def test_killing_the_invalidation_connection(near: Cache, redis_client: redis.Redis,
                                             make_client: Callable[..., redis.Redis]) -> None:
    other = Cache(make_client(), "near", ttl=60)
    for round_ in range(3):
        warm(near, "k", f"old{round_}")
        ids = listener_ids(redis_client)
        assert ids
        for cid in ids:
            redis_client.client_kill_filter(_id=str(cid))
        other.set("k", f"new{round_}")  # its invalidation has nowhere to go
        read_until(lambda: near.get_or_set("k", str), f"new{round_}", time.monotonic(), BOUND)
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
        read_until(lambda: cache.get_or_set("k", lambda: "after"), "after", time.monotonic(),
                   BOUND)
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
            time.sleep(0.01)
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
            time.sleep(0.01)
        read_until(lambda: cache.get_or_set("k", str), "new", time.monotonic(), BOUND)
        # the near cache stops serving from a server that is no longer a primary
        end = time.monotonic() + 10
        while cache.near_stats().tracking or cache.near_stats().resets < 1:
            assert time.monotonic() < end
            time.sleep(0.01)
        for _ in range(20):  # and keeps bypassing (every read goes to the server)
            assert cache.get_or_set("k", str) == "new"
        assert cache.near_stats().size == 0
    finally:
        cache.close()
        pc.close()
        rc.close()


def test_flushall_clears(near: Cache, redis_client: redis.Redis) -> None:
    for i in range(10):
        warm(near, f"f{i}", i)
    redis_client.flushall()
    acked = time.monotonic()
    for i in range(10):
        read_until(functools.partial(near.get, f"f{i}"), None, acked, BOUND)


def test_a_read_racing_an_invalidation_is_not_installed(
        near: Cache, make_client: Callable[..., redis.Redis]) -> None:
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
            time.sleep(0.001)
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


def test_sixteen_threads_one_loader_one_request(steady: Cache,
                                                redis_client: redis.Redis) -> None:
    near = steady
    calls = []
    barrier = threading.Barrier(16)
    out: list[Any] = []

    def loader() -> str:
        calls.append(1)
        time.sleep(0.2)
        return "v"

    def run() -> None:
        barrier.wait()
        out.append(near.get_or_set("s", loader))

    near.get_or_set("other", lambda: 1)  # the scripts are loaded: no NOSCRIPT re-sends below
    redis_client.config_resetstat()
    threads = [threading.Thread(target=run) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert out == ["v"] * 16
    assert len(calls) == 1
    stats = redis_client.info("commandstats")
    # the one caller: near read, fetch (lease), fill, near read again; and at most one
    # waiter reads once more (when the invalidation of that fill landed after the last read
    # began, so it was not kept); not one request per caller
    assert stats["cmdstat_evalsha"]["calls"] <= 5


def _process_reader(url: str, key: str, started: Any, go: Any) -> None:
    client = redis.Redis.from_url(url)
    cache = Cache(client, "near", ttl=60, near=True)

    def loader() -> str:
        client.incr("loader-calls")
        time.sleep(0.3)
        return "v"

    started.release()
    go.wait()
    assert cache.get_or_set(key, loader) == "v"
    cache.close()


def test_sixteen_processes_one_loader(redis_url: str, redis_client: redis.Redis) -> None:
    ctx: Any = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    started = ctx.Semaphore(0)
    go = ctx.Event()
    procs = [ctx.Process(target=_process_reader, args=(redis_url, "p", started, go))
             for _ in range(16)]
    for p in procs:
        p.start()
    for _ in procs:
        assert started.acquire(timeout=60)
    go.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 16
    assert int(redis_client.get("loader-calls") or 0) == 1


def test_near_needs_fast_hits(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="fast_hits"):
        Cache(redis_client, "x", ttl=1, fast_hits=False, near=True)
    with pytest.raises(TypeError, match="near"):
        Cache(redis_client, "x", ttl=1, near="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no near cache"):
        Cache(redis_client, "x", ttl=1).near_stats()


def test_bounded_memory(make_client: Callable[..., redis.Redis]) -> None:
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


def test_early_refresh_still_happens(make_client: Callable[..., redis.Redis]) -> None:
    """A local value ends with the fresh copy, so XFetch refreshes as without the near cache."""
    cache = Cache(make_client(), "xf", ttl=0.6, near=True)
    try:
        wait_tracking(cache)
        loads = []

        def loader() -> int:
            loads.append(1)
            time.sleep(0.05)
            return len(loads)

        end = time.monotonic() + 2.5
        seen = set()
        while time.monotonic() < end:
            seen.add(cache.get_or_set("k", loader))
            time.sleep(0.002)
        assert len(loads) >= 3  # the value was reloaded about every 0.6 s
        assert len(seen) == len(loads)
    finally:
        cache.close()


def test_a_client_side_caching_client_works(redis_url: str, monkeypatch: Any,
                                            make_client: Callable[..., redis.Redis]) -> None:
    from redis.cache import CacheConfig
    from redis.connection import CacheProxyConnection

    # redis-py refuses servers older than 7.4 (and Valkey) for its cache; tracking itself
    # works on 6.0+ and on Valkey
    monkeypatch.setattr(CacheProxyConnection, "MIN_ALLOWED_VERSION", "6.0.0")
    with redis.Redis.from_url(redis_url) as probe:
        server = probe.info("server").get("server_name", "redis")
    monkeypatch.setattr(CacheProxyConnection, "DEFAULT_SERVER_NAME", server)
    csc = redis.Redis.from_url(redis_url, protocol=3, cache_config=CacheConfig())
    try:
        other = Cache(make_client(), "csc", ttl=60)
        for near in (None, True):
            cache = Cache(csc, "csc", ttl=60, near=near)
            assert cache.get_or_set("k", lambda: "one") == "one"
            for _ in range(3):  # hits read the copy: no "Cannot create cache key"
                assert cache.get_or_set("k", lambda: "x") == "one"
                assert cache.get("k") == "one"
            other.set("k", "two")
            read_until(functools.partial(cache.get_or_set, "k", str), "two", time.monotonic(),
                       BOUND)
            other.set("short", "s", ttl=0.2)
            assert cache.get("short") == "s"
            time.sleep(0.25)  # redis-py's cache would keep it past its expiry
            assert cache.get("short") is None
            cache.close()
            other.delete("k")
    finally:
        csc.close()


# The models' bound: short, so that an example can step past it (a 0.5 s bound would let
# every stale read of a fast example pass as "within the bound").
MODEL_BOUND = 0.05


class NearModel(RuleBasedStateMachine):
    """Two near caches (each with its own connection and listener, as two processes would
    have) and a plain cache write and read the same keys; every read returns a value that
    was current at some moment no earlier than ``MODEL_BOUND`` before the read began."""

    url = ""

    def __init__(self) -> None:
        super().__init__()
        self.clients = [redis.Redis.from_url(self.url) for _ in range(3)]
        self.clients[0].flushall()
        self.near = [Cache(c, "model", ttl=60, near=NearCache(max_staleness=MODEL_BOUND))
                     for c in self.clients[:2]]
        self.plain = Cache(self.clients[2], "model", ttl=60)
        for n in self.near:
            wait_tracking(n)
        # key -> [(sent, acked, value)]: every write, in order
        self.history: dict[str, list[tuple[float, float, Any]]] = {}

    def _write(self, key: str, value: Any, action: Callable[[], Any]) -> None:
        sent = time.monotonic()
        action()
        self.history.setdefault(key, []).append((sent, time.monotonic(), value))

    def _check(self, key: str, got: Any, began: float, ended: float) -> None:
        writes = self.history.get(key, [])
        ok = False
        for i, (sent, _, value) in enumerate([(0.0, 0.0, None), *writes]):
            if value != got or sent > ended:
                continue
            following = writes[i] if i < len(writes) else None
            if following is None or following[1] + MODEL_BOUND >= began:
                ok = True
        assert ok, (key, got, writes[-3:], began)

    @rule(key=st.sampled_from("abc"), value=st.integers(0, 3), who=st.integers(0, 2))
    def write(self, key: str, value: int, who: int) -> None:
        cache = self.plain if who == 2 else self.near[who]
        self._write(key, value, lambda: cache.set(key, value))

    @rule(key=st.sampled_from("abc"), who=st.integers(0, 2))
    def delete(self, key: str, who: int) -> None:
        cache = self.plain if who == 2 else self.near[who]
        self._write(key, None, lambda: cache.delete(key))

    @rule()
    def pause(self) -> None:
        time.sleep(MODEL_BOUND * 1.2)  # past the bound: old values must be gone

    @rule(key=st.sampled_from("abc"), who=st.integers(0, 1))
    def read(self, key: str, who: int) -> None:
        began = time.monotonic()
        got = self.near[who].get(key)
        self._check(key, got, began, time.monotonic())

    @invariant()
    def tracking_is_up_or_bypassed(self) -> None:
        for n in self.near:
            stats = n.near_stats()
            assert stats.size <= NearCache().max_entries

    def teardown(self) -> None:
        for n in self.near:
            n.close()
        for c in self.clients:
            c.close()


def test_model(redis_url: str) -> None:
    NearModel.url = redis_url
    run_state_machine_as_test(NearModel, settings=settings(
        max_examples=15, stateful_step_count=30, deadline=None))


def _server_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


def _model_worker(url: str, conn: Any) -> None:
    """One process with a near cache: runs ("get"|"set"|"delete", key, value) commands and
    answers with the server's clock (ms) around each."""
    client = redis.Redis.from_url(url)
    cache = Cache(client, "pmodel", ttl=60, near=NearCache(max_staleness=MODEL_BOUND))
    wait_tracking(cache)
    conn.send("ready")
    while True:
        msg = conn.recv()
        if msg is None:
            break
        op, key, value = msg
        before = _server_ms(client)
        if op == "get":
            got = cache.get(key)
        elif op == "set":
            cache.set(key, value)
            got = None
        else:
            cache.delete(key)
            got = None
        conn.send((before, got, _server_ms(client)))
    cache.close()
    client.close()


class NearProcessModel(RuleBasedStateMachine):
    """Two processes with near caches and this process's plain cache write and read the
    same keys; write times are taken on the server's clock, and every read returns a value
    that was current at some moment no earlier than ``MODEL_BOUND`` before the read
    began."""

    url = ""

    def __init__(self) -> None:
        super().__init__()
        self.client = redis.Redis.from_url(self.url)
        self.client.flushall()
        self.plain = Cache(self.client, "pmodel", ttl=60)
        ctx: Any = multiprocessing.get_context("fork")
        self.pipes = []
        self.procs = []
        for _ in range(2):
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=_model_worker, args=(self.url, theirs), daemon=True)
            p.start()
            self.pipes.append(mine)
            self.procs.append(p)
        for pipe in self.pipes:
            assert pipe.poll(30)
            assert pipe.recv() == "ready"
        # key -> [(sent_ms, acked_ms, value)]: every write, in order (server clock)
        self.history: dict[str, list[tuple[int, int, Any]]] = {}

    def _ask(self, who: int, op: str, key: str, value: Any = None) -> tuple[int, Any, int]:
        self.pipes[who].send((op, key, value))
        assert self.pipes[who].poll(60)
        reply: tuple[int, Any, int] = self.pipes[who].recv()
        return reply

    def _write(self, who: int, op: str, key: str, value: Any) -> None:
        if who == 2:
            sent = _server_ms(self.client)
            if op == "set":
                self.plain.set(key, value)
            else:
                self.plain.delete(key)
            acked = _server_ms(self.client)
        else:
            sent, _, acked = self._ask(who, op, key, value)
        self.history.setdefault(key, []).append((sent, acked, value if op == "set" else None))

    @rule(key=st.sampled_from("ab"), value=st.integers(0, 3), who=st.integers(0, 2))
    def write(self, key: str, value: int, who: int) -> None:
        self._write(who, "set", key, value)

    @rule(key=st.sampled_from("ab"), who=st.integers(0, 2))
    def delete(self, key: str, who: int) -> None:
        self._write(who, "delete", key, None)

    @rule()
    def pause(self) -> None:
        time.sleep(MODEL_BOUND * 1.2)

    @rule(key=st.sampled_from("ab"), who=st.integers(0, 1))
    def read(self, key: str, who: int) -> None:
        began, got, ended = self._ask(who, "get", key)
        writes = self.history.get(key, [])
        bound_ms = MODEL_BOUND * 1000 + 1  # + the clock's millisecond resolution
        ok = False
        for i, (sent, _, value) in enumerate([(0, 0, None), *writes]):
            if value != got or sent > ended:
                continue
            following = writes[i] if i < len(writes) else None
            if following is None or following[1] + bound_ms >= began:
                ok = True
        assert ok, (key, got, writes[-3:], began)

    def teardown(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(Exception):
                pipe.send(None)
        for p in self.procs:
            p.join(10)
            if p.is_alive():
                p.kill()
        self.client.close()


def test_process_model(redis_url: str) -> None:
    NearProcessModel.url = redis_url
    run_state_machine_as_test(NearProcessModel, settings=settings(
        max_examples=8, stateful_step_count=25, deadline=None))
