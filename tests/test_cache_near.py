"""The near cache on a real Redis, the tests that are not shared twins: a stampede across
processes and the stateful model of processes (each with sync or asyncio near caches), redis-py
clients with their own client-side cache (sync only: redis-py's asyncio client has none),
and the stateful model of threads, checking every read against the write history.

The behaviour both APIs share is in ``test_cache_near_shared_async.py`` (and its generated
sync twin, ``test_cache_near_shared_sync.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from near_helpers_async import wait_tracking as wait_tracking_asyncio
from near_helpers_sync import BOUND, read_until, wait_tracking

from pyredis_atomic import Cache, NearCache
from pyredis_atomic import asyncio as aio


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


def _process_reader_asyncio(url: str, key: str, started: Any, go: Any) -> None:
    async def main() -> None:
        client = redis.asyncio.Redis.from_url(url)
        cache = aio.Cache(client, "near", ttl=60, near=True)

        async def loader() -> str:
            await client.incr("loader-calls")
            await asyncio.sleep(0.3)
            return "v"

        started.release()
        await asyncio.to_thread(go.wait)
        assert await cache.get_or_set(key, loader) == "v"
        await cache.close()
        await client.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("reader", [_process_reader, _process_reader_asyncio],
                         ids=["sync", "asyncio"])
def test_sixteen_processes_one_loader(redis_url: str, redis_client: redis.Redis,
                                      reader: Callable[..., None]) -> None:
    ctx: Any = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    started = ctx.Semaphore(0)
    go = ctx.Event()
    procs = [ctx.Process(target=reader, args=(redis_url, "p", started, go))
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


def _model_worker_asyncio(url: str, conn: Any) -> None:
    """:func:`_model_worker` with an asyncio near cache (its listener a task of the loop,
    which waits for the next command in a thread so that the task keeps running)."""
    async def main() -> None:
        client = redis.asyncio.Redis.from_url(url)
        cache = aio.Cache(client, "pmodel", ttl=60,
                          near=aio.NearCache(max_staleness=MODEL_BOUND))
        await wait_tracking_asyncio(cache)

        async def server_ms() -> int:
            seconds, micros = await client.time()
            return int(seconds) * 1000 + int(micros) // 1000

        conn.send("ready")
        while True:
            msg = await asyncio.to_thread(conn.recv)
            if msg is None:
                break
            op, key, value = msg
            before = await server_ms()
            got = None
            if op == "get":
                got = await cache.get(key)
            elif op == "set":
                await cache.set(key, value)
            else:
                await cache.delete(key)
            conn.send((before, got, await server_ms()))
        await cache.close()
        await client.aclose()

    asyncio.run(main())


class NearProcessModel(RuleBasedStateMachine):
    """Two processes with near caches and this process's plain cache write and read the
    same keys; write times are taken on the server's clock, and every read returns a value
    that was current at some moment no earlier than ``MODEL_BOUND`` before the read
    began."""

    url = ""
    worker: Callable[[str, Any], None] = _model_worker

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
            p = ctx.Process(target=type(self).worker, args=(self.url, theirs), daemon=True)
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


@pytest.mark.parametrize("worker", [_model_worker, _model_worker_asyncio],
                         ids=["sync", "asyncio"])
def test_process_model(redis_url: str, worker: Callable[[str, Any], None]) -> None:
    model = type("Model", (NearProcessModel,), {"url": redis_url,
                                                "worker": staticmethod(worker)})
    run_state_machine_as_test(model, settings=settings(
        max_examples=8, stateful_step_count=25, deadline=None))
