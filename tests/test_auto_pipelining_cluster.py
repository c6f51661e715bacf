"""Auto-pipelining on a ``redis.asyncio.cluster.RedisCluster`` (``_pipelining._send_cluster``):
the calls of one loop turn are grouped by node, one pipeline per node, each caller getting its
own reply or error. Real 3-primary cluster (the session ``redis_cluster``); few tests (slow VM).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.cluster

from pyredis_atomic import CounterResult, ServerVersionError, WrongTypeError
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
from pyredis_atomic.testing import RedisClusterHarness

TASKS = 48


@pytest.fixture(autouse=True)
def _default_on() -> Iterator[None]:
    set_auto_pipelining(True)
    yield
    set_auto_pipelining(True)


@pytest.fixture
async def acluster(redis_cluster: RedisClusterHarness,
                   redis_cluster_client: Any) -> AsyncIterator[Any]:
    client = redis.asyncio.cluster.RedisCluster(startup_nodes=[
        redis.asyncio.cluster.ClusterNode(s.host, s.port) for s in redis_cluster.primaries])
    await client.initialize()
    try:
        yield client
    finally:
        await client.aclose()


class _Nodes:
    """The per-node pipelines the cluster batcher sends: (node name, size)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []

    @contextlib.contextmanager
    def watching(self) -> Iterator[_Nodes]:
        send = _pipelining._send_node

        async def counted(client: Any, node: Any, calls: Any, redirected: bool = False) -> None:
            self.sent.append((node.name, len(calls)))
            await send(client, node, calls, redirected)

        _pipelining._send_node = counted
        try:
            yield self
        finally:
            _pipelining._send_node = send


@contextlib.asynccontextmanager
async def _round_trip_in_flight(client: Any) -> AsyncIterator[None]:
    # a BLPOP through the batcher, alone: the calls made meanwhile are all batched
    blocker = asyncio.ensure_future(_pipelining.executor(client)("BLPOP", "apc:never", 1))
    await asyncio.sleep(0)
    try:
        yield
    finally:
        await blocker


def _node_names(client: Any, names: list[str], key: Any) -> set[str]:
    return {client.nodes_manager.get_node_from_slot(client.keyslot(key(n))).name
            for n in names}


async def test_every_primitive_on_every_primary_through_script_flushes(
        acluster: Any, redis_cluster: RedisClusterHarness) -> None:
    assert auto_pipelining(acluster)
    names = [f"apc-{i}" for i in range(6)]
    counters = [BoundedCounter(acluster, n, max=10**9) for n in names]
    queues = [ReliableQueue(acluster, n, visibility_timeout=30.0) for n in names]
    caches = [Cache(acluster, n, ttl=60.0) for n in names]
    sems = [Semaphore(acluster, n, limit=3, ttl=30.0) for n in names]
    limiters = [RateLimiter(acluster, n, rate=50, period=3600.0, burst=50) for n in names]
    assert len(_node_names(acluster, names, lambda n: counters[names.index(n)].key)) == 3
    for c in counters:
        await c.incr(0)
    for q in queues:
        await q.push(b"first")
    for cache in caches:
        await cache.set("k", {"v": 1})
    admins = [redis.Redis(host=s.host, port=s.port) for s in redis_cluster.primaries]
    stop = asyncio.Event()

    async def flusher() -> int:
        flushes = 0
        while not stop.is_set():
            for admin in admins:  # SCRIPT FLUSH on every primary, mid-run
                await asyncio.to_thread(admin.script_flush)
            flushes += 1
            await asyncio.sleep(0.01)
        return flushes

    fences: dict[int, list[int]] = {i: [] for i in range(len(names))}
    inside = dict.fromkeys(range(len(names)), 0)
    holders = dict.fromkeys(range(len(names)), 0)

    async def work(t: int) -> None:
        i = t % len(names)
        for j in range(6):
            assert (await counters[i].incr()).applied
            await queues[i].push(b"%d-%d" % (t, j))
            assert await caches[i].get("k") == {"v": 1}
            assert (await limiters[i].hit()).allowed  # 48 of the burst of 50
        lock = Lock(acluster, names[i], ttl=30.0)
        async with lock:
            inside[i] += 1
            assert inside[i] == 1
            fences[i].append(lock.fence)
            await asyncio.sleep(0)
            inside[i] -= 1
        permit = await sems[i].acquire(timeout=60.0)
        assert permit is not None
        holders[i] += 1
        assert holders[i] <= 3
        await asyncio.sleep(0)
        holders[i] -= 1
        assert await sems[i].release(permit)

    flushing = asyncio.ensure_future(flusher())
    try:
        with _Nodes().watching() as nodes:
            await asyncio.wait_for(asyncio.gather(*(work(t) for t in range(TASKS))), 300)
    finally:
        stop.set()
        flushes = await flushing
        for admin in admins:
            admin.close()
    assert flushes > 0
    assert len({name for name, _ in nodes.sent}) == 3  # every primary got pipelines
    assert max(size for _, size in nodes.sent) > 1
    per = TASKS // len(names)
    for i in range(len(names)):
        assert await counters[i].get() == per * 6  # each increment applied once
        assert (await queues[i].stats())["pending"] == per * 6 + 1
        assert fences[i] == list(range(1, per + 1))
        assert [(await limiters[i].hit()).allowed for _ in range(3)] == [True, True, False]


async def test_a_wrong_type_key_on_one_node_fails_its_callers_only(acluster: Any) -> None:
    counters = [BoundedCounter(acluster, f"apw-{i}", max=10**9) for i in range(6)]
    for c in counters:
        await c.incr(0)
    bad = counters[0]
    await acluster.delete(bad.key)
    await acluster.rpush(bad.key, "not a counter")
    calls = [c.incr() for _ in range(8) for c in counters]
    async with _round_trip_in_flight(acluster):
        with _Nodes().watching() as nodes:
            results = await asyncio.gather(*calls, return_exceptions=True)
    assert len(nodes.sent) == 3
    assert sum(size for _, size in nodes.sent) == len(calls)
    for i, r in enumerate(results):
        if i % 6 == 0:
            assert isinstance(r, WrongTypeError), r
        else:
            assert isinstance(r, CounterResult), r
            assert r.applied
    for c in counters[1:]:
        assert await c.get() == 8


async def test_a_stale_slot_cache_is_followed_per_call(acluster: Any) -> None:
    # The client believes the counter's slot is on another primary: that node answers
    # MOVED (nothing ran) for each call of its pipeline; they are re-sent in one pipeline to
    # the node named, each applied once (redis-py's own path, unbatched, ran one twice here:
    # its slot-cache rebuild after reinitialize_steps MOVEDs drops a connection in use and
    # it retries that call).
    c = BoundedCounter(acluster, "apm", max=10**9)
    await c.incr(0)
    slot = acluster.keyslot(c.key)
    manager = acluster.nodes_manager
    right = manager.get_node_from_slot(slot)
    wrong = next(n for n in acluster.get_primaries() if n.name != right.name)
    manager.slots_cache[slot] = [wrong]
    async with _round_trip_in_flight(acluster):
        with _Nodes().watching() as nodes:
            results = await asyncio.gather(*(c.incr() for _ in range(16)))
    assert nodes.sent == [(wrong.name, 16), (right.name, 16)]
    assert sorted(r.value for r in results) == list(range(1, 17)), (results, await c.get())
    assert await c.get() == 16
    assert manager.get_node_from_slot(slot).name == right.name  # the slot cache patched


async def test_cancellation_before_and_after_the_send(acluster: Any) -> None:
    counters = [BoundedCounter(acluster, f"apx-{i}", max=10**9) for i in range(3)]
    for c in counters:
        await c.incr(0)
    # cancelled before the per-node pipelines go out: left out, nothing of them runs
    async with _round_trip_in_flight(acluster):
        tasks = [asyncio.ensure_future(counters[i % 3].incr()) for i in range(TASKS)]
        await asyncio.sleep(0)
        for t in tasks[::2]:
            t.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in done[::2])
    assert all(isinstance(r, CounterResult) for r in done[1::2])
    assert sum([await c.get() for c in counters]) == TASKS // 2
    # cancelled after: each other caller still gets its own reply
    before = sum([await c.get() for c in counters])
    tasks = [asyncio.ensure_future(counters[i % 3].incr()) for i in range(TASKS)]
    for _ in range(3):
        await asyncio.sleep(0)
    for t in tasks[::3]:
        t.cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    kept = [r for r in done if isinstance(r, CounterResult)]
    assert len(kept) >= TASKS - len(tasks[::3])
    after = sum([await c.get() for c in counters])
    assert len(kept) <= after - before <= TASKS
    more = await asyncio.gather(*(c.incr() for c in counters for _ in range(8)))
    assert all(r.applied for r in more)


async def test_functions_mode_is_batched_per_node(acluster: Any) -> None:
    # FCALL on a cluster client names its node (target_nodes): batched by that node too.
    registry = AsyncScriptRegistry(mode="functions")
    try:
        await registry.load_library(acluster)
    except ServerVersionError:
        # Redis 6.2 has no Functions: the mode refuses clearly, batched calls too
        c = BoundedCounter(acluster, "apf-old", max=10**9, registry=registry)
        refused = await asyncio.gather(*(c.incr() for _ in range(4)), return_exceptions=True)
        assert all(isinstance(r, ServerVersionError) for r in refused), refused
        return
    counters = [BoundedCounter(acluster, f"apf-{i}", max=10**9, registry=registry)
                for i in range(6)]
    for c in counters:
        await c.incr(0)
    async with _round_trip_in_flight(acluster):
        with _Nodes().watching() as nodes:
            results = await asyncio.gather(*(c.incr() for c in counters for _ in range(8)))
    assert len(nodes.sent) == 3
    assert sum(size for _, size in nodes.sent) == 48
    assert all(r.applied for r in results)
    for c in counters:
        assert await c.get() == 8
