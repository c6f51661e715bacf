"""Auto-pipelining of the asyncio API (``pyredis_atomic/asyncio/_pipelining.py``): the
script calls that tasks make on one client in one turn of the event loop go out as one
pipeline, each caller still getting its own reply or error.

Every primitive under many concurrent tasks on one client (the results are those of the
calls made one by one, and the client needs a handful of connections, not one per task),
NOSCRIPT in the middle of batches (SCRIPT FLUSH), an error in one reply of a batch,
cancellation of some callers (before and after their batch is sent), and the switch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio
import redis.asyncio.cluster

from pyredis_atomic import CounterResult, ServerVersionError, WrongTypeError
from pyredis_atomic._core.servers import ServerVersion, has_feature
from pyredis_atomic.asyncio import (
    AsyncScriptRegistry,
    BoundedCounter,
    Cache,
    Lock,
    RateLimiter,
    ReliableQueue,
    Semaphore,
    _pipelining,
    auto_pipelining,
    set_auto_pipelining,
)
from pyredis_atomic.testing import RedisServer

TASKS = 64


@pytest.fixture(autouse=True)
def _default_on() -> Iterator[None]:
    # Every test starts (and leaves) with the default: on.
    set_auto_pipelining(True)
    yield
    set_auto_pipelining(True)


def _connections(client: Any) -> int:
    pool = client.connection_pool
    return len(pool._available_connections) + len(pool._in_use_connections)


class _Batches:
    """Counts the pipelines the batcher sends, and their sizes (by wrapping its sender)."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    @contextlib.contextmanager
    def watching(self) -> Iterator[_Batches]:
        send = _pipelining._send

        async def counted(client: Any, batch: Any) -> None:
            self.sizes.append(len(batch))
            await send(client, batch)

        _pipelining._send = counted
        try:
            yield self
        finally:
            _pipelining._send = send


@contextlib.asynccontextmanager
async def _round_trip_in_flight(client: Any) -> AsyncIterator[None]:
    """Keep a round trip in flight on ``client`` (a BLPOP of a key nobody pushes to, sent
    through the batcher, alone): the calls made meanwhile are all batched, none of them
    goes out at once on its own (what a call does when nothing is in flight)."""
    blocker = asyncio.ensure_future(_pipelining.executor(client)("BLPOP", "ap:never", 1))
    await asyncio.sleep(0)
    try:
        yield
    finally:
        await blocker


async def test_counter_many_tasks_one_client(aclient: Any) -> None:
    c = BoundedCounter(aclient, "ap:counter", max=10**9)
    await c.incr(0)  # the first call checks the server; then every call is a script call

    async def work() -> list[int]:
        return [(await c.incr()).value for _ in range(20)]

    with _Batches().watching() as batches:
        per_task = await asyncio.gather(*(work() for _ in range(TASKS)))
    values = sorted(v for task in per_task for v in task)
    assert values == list(range(1, TASKS * 20 + 1))  # each increment applied once
    assert await c.get() == TASKS * 20
    assert max(batches.sizes) > 1  # the calls did share pipelines
    assert _connections(aclient) < TASKS // 4


async def test_cache_many_tasks_one_client(aclient: Any) -> None:
    cache = Cache(aclient, "ap:cache", ttl=60.0)
    loads: list[str] = []

    async def loader(key: str) -> dict[str, str]:
        loads.append(key)
        await asyncio.sleep(0.01)
        return {"key": key}

    async def get(i: int) -> Any:
        key = f"k{i % 8}"
        return await cache.get_or_set(key, lambda: loader(key))

    # (cold keys: the callers that wait for a load block in BLPOP, a connection each)
    results = await asyncio.gather(*(get(i) for i in range(32)))
    assert results == [{"key": f"k{i % 8}"} for i in range(32)]
    assert sorted(loads) == sorted(f"k{i}" for i in range(8))  # each key loaded once
    # hits, batched: the fresh copy's GET shares the pipelines too
    with _Batches().watching() as batches:
        hits = await asyncio.gather(*(get(i) for i in range(TASKS)))
    assert hits == [{"key": f"k{i % 8}"} for i in range(TASKS)]
    assert batches.sizes
    assert max(batches.sizes) > 1


async def test_lock_many_tasks_one_client(aclient: Any) -> None:
    held: list[int] = []
    inside = [0]

    async def work() -> None:
        for _ in range(3):
            lock = Lock(aclient, "ap:lock", ttl=10.0)
            async with lock:
                inside[0] += 1
                assert inside[0] == 1  # mutual exclusion
                held.append(lock.fence)
                await asyncio.sleep(0)
                inside[0] -= 1

    await asyncio.wait_for(asyncio.gather(*(work() for _ in range(16))), 120)
    assert held == list(range(1, 16 * 3 + 1))  # fences 1..N, strictly increasing


async def test_queue_many_tasks_one_client(aclient: Any) -> None:
    q = ReliableQueue(aclient, "ap:queue", visibility_timeout=30.0)
    n = TASKS * 10
    # (the first push of a queue reads the server's policies: one push first)
    ids = [await q.push(b"%d" % n)]
    ids += await asyncio.gather(*(q.push(b"%d" % i) for i in range(n)))
    assert len(set(ids)) == n + 1
    got: list[bytes] = []

    async def consume() -> None:
        msg = await q.pop()
        while msg is not None:
            got.append(msg.payload)
            acked, msg = await q.ack_and_pop(msg)
            assert acked

    await asyncio.gather(*(consume() for _ in range(TASKS)))
    assert sorted(got) == sorted(b"%d" % i for i in range(n + 1))  # each delivered once
    stats = await q.stats()
    assert (stats["pending"], stats["in_flight"]) == (0, 0)


async def test_queue_blocking_pops_do_not_hold_up_other_calls(aclient: Any) -> None:
    # Consumers waiting in BLPOP (never batched) while other tasks push and count.
    q = ReliableQueue(aclient, "ap:blocking", visibility_timeout=30.0)
    c = BoundedCounter(aclient, "ap:beside", max=10**9)
    await c.incr(0)
    await q.push(b"first")
    assert (await q.pop()) is not None
    waiting = [asyncio.ensure_future(q.pop(timeout=30.0)) for _ in range(8)]
    await asyncio.sleep(0.2)
    await asyncio.gather(*(c.incr() for _ in range(TASKS)))
    assert await c.get() == TASKS
    await asyncio.gather(*(q.push(b"m%d" % i) for i in range(8)))
    popped = await asyncio.wait_for(asyncio.gather(*waiting), 30)
    assert sorted(m.payload for m in popped if m is not None) == sorted(
        b"m%d" % i for i in range(8))


async def test_semaphore_and_rate_limiter_many_tasks(aclient: Any) -> None:
    sem = Semaphore(aclient, "ap:sem", limit=5, ttl=30.0)
    holders = [0]
    most = [0]

    async def work() -> None:
        permit = await sem.acquire(timeout=60.0)
        assert permit is not None
        holders[0] += 1
        most[0] = max(most[0], holders[0])
        await asyncio.sleep(0.001)
        holders[0] -= 1
        assert await sem.release(permit)

    await asyncio.wait_for(asyncio.gather(*(work() for _ in range(TASKS))), 120)
    assert 1 <= most[0] <= 5
    limiter = RateLimiter(aclient, "ap:rate", rate=100, period=3600.0, burst=100)
    results = await asyncio.gather(*(limiter.hit() for _ in range(150)))
    assert sum(r.allowed for r in results) == 100  # each hit counted once


async def test_noscript_in_the_middle_of_batches(aclient: Any, redis_server: RedisServer) -> None:
    # SCRIPT FLUSH between and during batches: each call that meets NOSCRIPT is re-sent
    # alone (EVAL), none is lost or applied twice.
    c = BoundedCounter(aclient, "ap:flush", max=10**9)
    q = ReliableQueue(aclient, "ap:flushq", visibility_timeout=30.0)
    await q.push(b"first")
    admin = redis.asyncio.Redis.from_url(redis_server.url)
    stop = asyncio.Event()

    async def flusher() -> int:
        flushes = 0
        while not stop.is_set():
            await admin.script_flush()
            flushes += 1
            await asyncio.sleep(0.002)
        return flushes

    async def work(i: int) -> None:
        for j in range(25):
            assert (await c.incr()).applied
            await q.push(b"%d-%d" % (i, j))

    flushing = asyncio.ensure_future(flusher())
    try:
        with _Batches().watching() as batches:
            await asyncio.gather(*(work(i) for i in range(TASKS)))
    finally:
        stop.set()
        flushes = await flushing
        await admin.aclose()
    assert flushes > 0
    assert max(batches.sizes) > 1
    assert await c.get() == TASKS * 25
    assert (await q.stats())["pending"] == TASKS * 25 + 1


async def test_noscript_in_one_reply_of_a_batch(aclient: Any, redis_server: RedisServer) -> None:
    # One batch whose replies are all NOSCRIPT (the cache was flushed just before it): every
    # call recovers on its own.
    c = BoundedCounter(aclient, "ap:noscript", max=10**9)
    await c.incr(0)
    admin = redis.asyncio.Redis.from_url(redis_server.url)
    await admin.script_flush()
    await admin.aclose()
    async with _round_trip_in_flight(aclient):
        with _Batches().watching() as batches:
            results = await asyncio.gather(*(c.incr() for _ in range(TASKS)))
    # the EVALSHAs in one pipeline, every reply NOSCRIPT; then their EVALs, batched too
    assert batches.sizes == [TASKS, TASKS]
    assert sorted(r.value for r in results) == list(range(1, TASKS + 1))


async def test_an_error_in_one_reply_reaches_its_caller_only(aclient: Any) -> None:
    good = BoundedCounter(aclient, "ap:good", max=10**9)
    bad = BoundedCounter(aclient, "ap:bad", max=10**9)
    await good.incr(0)
    await bad.incr(0)
    await aclient.delete(bad.key)
    await aclient.rpush(bad.key, "not a counter")
    calls = [good.incr() for _ in range(10)] + [bad.incr()] + [good.incr() for _ in range(10)]
    async with _round_trip_in_flight(aclient):
        with _Batches().watching() as batches:
            results = await asyncio.gather(*calls, return_exceptions=True)
    assert batches.sizes == [21]
    assert isinstance(results[10], WrongTypeError)
    values = sorted(r.value for i, r in enumerate(results) if i != 10)  # type: ignore[union-attr]
    assert values == list(range(1, 21))


async def test_a_connection_failure_reaches_every_caller_of_the_batch(
        redis_server: RedisServer) -> None:
    # A client whose server is gone: every caller of the batch gets the error (the package's
    # ConnectionError-derived one), nobody hangs.
    server = RedisServer()
    server.start()
    client = redis.asyncio.Redis.from_url(server.url, retry_on_error=[])
    c = BoundedCounter(client, "ap:gone", max=10**9)
    await c.incr(0)
    server.stop()
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(c.incr() for _ in range(8)), return_exceptions=True), 60)
        assert all(isinstance(r, Exception) for r in results), results
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()


async def test_cancelled_before_the_batch_is_sent_runs_nothing(aclient: Any) -> None:
    c = BoundedCounter(aclient, "ap:cancel", max=10**9)
    await c.incr(0)
    async with _round_trip_in_flight(aclient):
        tasks = [asyncio.ensure_future(c.incr()) for _ in range(TASKS)]
        await asyncio.sleep(0)  # every task has queued its call; the batch is not sent yet
        for t in tasks[::2]:
            t.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
    kept = [r for r in done if not isinstance(r, BaseException)]
    assert all(isinstance(r, asyncio.CancelledError) for r in done[::2])
    assert sorted(r.value for r in kept) == list(range(1, TASKS // 2 + 1))
    assert await c.get() == TASKS // 2  # the cancelled calls were left out of the pipeline


async def test_cancelled_after_the_batch_is_sent_disturbs_nobody(aclient: Any) -> None:
    c = BoundedCounter(aclient, "ap:cancel-late", max=10**9)
    await c.incr(0)
    with _Batches().watching() as batches:
        tasks = [asyncio.ensure_future(c.incr()) for _ in range(TASKS)]
        for _ in range(3):  # the batch goes out; its replies are not read yet
            await asyncio.sleep(0)
        for t in tasks[::3]:
            t.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
    kept = [r for r in done if isinstance(r, CounterResult)]
    assert len(kept) >= TASKS - len(tasks[::3])
    assert len({r.value for r in kept}) == len(kept)  # each its own reply
    # the cancelled calls may or may not have run (as for a call cancelled mid-read)
    assert len(kept) <= await c.get() <= TASKS
    assert sum(batches.sizes) <= TASKS
    # and the client still works, batched
    more = await asyncio.gather(*(c.incr() for _ in range(8)))
    assert all(r.applied for r in more)


async def test_one_task_sends_no_pipeline(aclient: Any) -> None:
    c = BoundedCounter(aclient, "ap:solo", max=10**9)
    with _Batches().watching() as batches:
        for _ in range(20):
            await c.incr()
    assert batches.sizes == []
    assert await c.get() == 20


async def test_the_switch(make_aclient: Any) -> None:
    client = make_aclient()
    other = make_aclient()
    assert auto_pipelining()
    assert auto_pipelining(client)
    set_auto_pipelining(False, client)
    assert not auto_pipelining(client)
    assert auto_pipelining(other)
    c = BoundedCounter(client, "ap:off", max=10**9)
    with _Batches().watching() as batches:
        await asyncio.gather(*(c.incr() for _ in range(16)))
    assert batches.sizes == []  # one round trip per call, on its own connection
    assert _connections(client) > 1
    set_auto_pipelining(True, client)
    with _Batches().watching() as batches:
        await asyncio.gather(*(c.incr() for _ in range(16)))
    # the first goes at once (nothing was in flight), the 15 made in the same turn together
    assert batches.sizes == [15]
    # the default, for every client without a choice of its own
    set_auto_pipelining(False)
    assert not auto_pipelining(other)
    assert auto_pipelining(client)
    d = BoundedCounter(other, "ap:off-default", max=10**9)
    with _Batches().watching() as batches:
        await asyncio.gather(*(d.incr() for _ in range(16)))
    assert batches.sizes == []
    assert await d.get() == 16
    assert await c.get() == 32
    for wrong in (1, 0, None):  # a bool only, as every flag of the package (issue 14)
        with pytest.raises(TypeError, match="enabled"):
            set_auto_pipelining(wrong)  # type: ignore[arg-type]


async def test_pipelines_are_never_batched_cluster_clients_are(aclient: Any) -> None:
    assert not auto_pipelining(aclient.pipeline())
    cluster = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=1)
    assert auto_pipelining(cluster)  # per node: tests/test_auto_pipelining_cluster.py
    assert not auto_pipelining(cluster.pipeline())



async def test_functions_mode_is_batched_too(aclient: Any,
                                            redis_server_version: ServerVersion) -> None:
    registry = AsyncScriptRegistry(mode="functions")
    if not has_feature(redis_server_version, "functions"):
        # Redis 6.2: the mode refuses clearly, before anything is sent, batched or not
        c = BoundedCounter(aclient, "ap:fcall", max=10**9, registry=registry)
        refused = await asyncio.gather(*(c.incr() for _ in range(4)), return_exceptions=True)
        assert all(isinstance(r, ServerVersionError) for r in refused), refused
        return
    await registry.load_library(aclient)
    c = BoundedCounter(aclient, "ap:fcall", max=10**9, registry=registry)
    q = ReliableQueue(aclient, "ap:fcallq", registry=registry)
    await c.incr(0)
    await q.push(b"first")
    async with _round_trip_in_flight(aclient):
        with _Batches().watching() as batches:
            results = await asyncio.gather(*(c.incr() for _ in range(TASKS)),
                                           *(q.push(b"x") for _ in range(TASKS)))
    assert batches.sizes == [2 * TASKS]
    assert sorted(r.value for r in results[:TASKS]) == list(range(1, TASKS + 1))  # type: ignore[attr-defined]
    assert (await q.stats())["pending"] == TASKS + 1


async def test_a_batch_left_by_a_stopped_loop_is_not_joined(aclient: Any) -> None:
    # A loop that stopped before its flush ran leaves its pending batch behind: a call on
    # another loop starts a batch of its own instead of waiting for that one for ever.
    c = BoundedCounter(aclient, "ap:stale", max=10**9)
    await c.incr(0)
    batcher = _pipelining._BATCHERS[aclient]
    other = asyncio.new_event_loop()
    try:
        batcher._pending = []
        batcher._loop = other
        results = await asyncio.wait_for(asyncio.gather(*(c.incr() for _ in range(4))), 30)
    finally:
        other.close()
    assert sorted(r.value for r in results) == [1, 2, 3, 4]
