"""asyncio cancellation at every await point of a blocking pop, a blocking acquire and
get_or_set (loader and waiter sides).

Systematic: a client whose every command offers two cancellation points (before it is
sent: nothing ran; after its reply arrived: it ran, the caller never sees the answer),
plus the points inside the loader. For k = 1, 2, ... the operation is cancelled at point
k, until an operation finishes before point k. After each cancellation:

Invariant: no message, lock or fill lease is left without an owner beyond its lease, and
nothing is lost (a message claimed by the cancelled pop is delivered again after its
lease; the lock and the cache fill can be taken again once the lease ends).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import pytest_asyncio
import redis.asyncio

from pyredis_atomic.asyncio import Cache, Lock, ReliableQueue
from pyredis_atomic.testing import RedisServer

MAX_POINTS = 80


class CancellingRedis(redis.asyncio.Redis):
    """Cancels the running task at cancellation point number ``cancel_at``."""

    cancel_at = 0
    points = 0
    fired = False

    async def point(self) -> None:
        self.points += 1
        if self.points == self.cancel_at:
            self.fired = True
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            await asyncio.sleep(0)  # CancelledError is raised here

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        await self.point()
        reply = await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        await self.point()
        return reply

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        # A wait with the next call pipelined behind it (BLPOP + EVALSHA) is one round
        # trip: the same two points around it.
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        async def with_points(raise_on_error: bool = True) -> Any:
            await self.point()
            reply = await execute(raise_on_error=raise_on_error)
            await self.point()
            return reply

        pipe.execute = with_points  # type: ignore[method-assign]
        return pipe


@pytest_asyncio.fixture
async def clients(redis_server: RedisServer,
                  redis_url: str) -> AsyncIterator[tuple[CancellingRedis, redis.asyncio.Redis]]:
    victim = CancellingRedis(host=redis_server.host, port=redis_server.port)
    plain = redis.asyncio.Redis(host=redis_server.host, port=redis_server.port)
    yield victim, plain
    await victim.aclose()
    await plain.aclose()


async def _every_point(victim: CancellingRedis, setup: Callable[[], Awaitable[Any]],
                       op: Callable[[], Coroutine[Any, Any, Any]],
                       check: Callable[[bool], Awaitable[None]]) -> int:
    """Run ``op`` cancelled at point k for every k; ``check(cancelled)`` after each."""
    for k in range(1, MAX_POINTS):
        await setup()
        victim.cancel_at, victim.points, victim.fired = k, 0, False
        task = asyncio.create_task(op())
        await asyncio.wait([task], timeout=10)
        assert task.done(), f"hung when cancelled at point {k}"
        if victim.fired:
            assert task.cancelled(), f"the cancellation at point {k} was swallowed"
        else:
            task.result()  # finished before point k: no error
        await check(victim.fired)
        if not victim.fired:
            return k
    raise AssertionError("the operation never finished")


async def test_cancelled_blocking_pop_loses_nothing(
        clients: tuple[CancellingRedis, redis.asyncio.Redis]) -> None:
    victim, plain = clients
    lease = 0.3
    q = ReliableQueue(victim, "cancel", visibility_timeout=lease)
    checker = ReliableQueue(plain, "cancel", visibility_timeout=5)
    acking = [False]

    async def setup() -> None:
        await checker.purge()
        acking[0] = False

    async def op() -> None:
        async def produce() -> None:
            await asyncio.sleep(0.05)
            await checker.push(b"job")

        producer = asyncio.create_task(produce())
        try:
            msg = await q.pop(timeout=2.0)
            assert msg is not None
            acking[0] = True  # from here a cancelled ack may have been applied
            assert await q.ack(msg)
        finally:
            await producer

    async def check(cancelled: bool) -> None:
        if not cancelled:
            assert (await checker.stats())["pending"] == 0
            return
        started = time.monotonic()
        msg = await checker.pop(timeout=2.0)  # pending, or redelivered after the lease
        if msg is None and acking[0]:
            return  # the ack went through before the cancellation: done, not lost
        assert msg is not None, "the message was lost"
        assert time.monotonic() - started < lease + 1.0
        assert await checker.ack(msg)
        assert await checker.pop() is None  # exactly one

    points = await _every_point(victim, setup, op, check)
    assert points > 6


async def test_cancelled_blocking_acquire_leaves_no_orphan_lock(
        clients: tuple[CancellingRedis, redis.asyncio.Redis]) -> None:
    victim, plain = clients
    lease = 0.4

    async def setup() -> None:
        await plain.flushall()
        holder = Lock(plain, "cancel", ttl=0.15)  # never released: its lease ends
        assert await holder.acquire(blocking=False)

    async def op() -> None:
        lock = Lock(victim, "cancel", ttl=lease)
        assert await lock.acquire(timeout=3.0)
        await lock.release()

    async def check(cancelled: bool) -> None:
        started = time.monotonic()
        fresh = Lock(plain, "cancel", ttl=1.0)
        assert await fresh.acquire(timeout=3.0)
        # Held by nobody, or by the cancelled attempt for at most its own lease.
        assert time.monotonic() - started < lease + 0.5
        await fresh.release()

    points = await _every_point(victim, setup, op, check)
    assert points > 4


async def test_cancelled_get_or_set_loader_side(
        clients: tuple[CancellingRedis, redis.asyncio.Redis]) -> None:
    victim, plain = clients
    lease = 0.4
    cache = Cache(victim, "cancel", ttl=60, lock_ttl=lease)
    other = Cache(plain, "cancel", ttl=60, lock_ttl=5)

    async def loader() -> str:
        await victim.point()
        await asyncio.sleep(0.01)
        await victim.point()
        return "loaded"

    async def setup() -> None:
        await plain.flushall()

    async def op() -> None:
        assert await cache.get_or_set("k", loader) == "loaded"

    async def check(cancelled: bool) -> None:
        started = time.monotonic()

        async def fallback() -> str:
            return "fallback"

        value = await other.get_or_set("k", fallback, wait_timeout=3.0)
        assert value in ("loaded", "fallback")
        assert time.monotonic() - started < lease + 0.5  # the lease did not outlive itself
        if not cancelled:
            assert value == "loaded"

    points = await _every_point(victim, setup, op, check)
    assert points > 4


async def test_cancelled_get_or_set_waiter_side(
        clients: tuple[CancellingRedis, redis.asyncio.Redis]) -> None:
    victim, plain = clients
    waiter = Cache(victim, "cancel", ttl=60, wait_timeout=3.0)
    owner = Cache(plain, "cancel", ttl=60, lock_ttl=5)
    gate: list[asyncio.Event] = []
    loading: list[asyncio.Task[Any]] = []

    async def setup() -> None:
        await plain.flushall()
        gate[:] = [asyncio.Event()]
        started = asyncio.Event()

        async def slow() -> str:
            started.set()
            await gate[0].wait()
            return "owner's"

        loading[:] = [asyncio.create_task(owner.get_or_set("k", slow))]
        await started.wait()  # the owner holds the fill lease

    async def op() -> None:
        async def never() -> str:
            raise AssertionError("the waiter ran the loader while the owner held the lease")

        task = asyncio.create_task(waiter.get_or_set("k", never))
        await asyncio.sleep(0.05)
        gate[0].set()
        assert await task == "owner's"

    async def check(cancelled: bool) -> None:
        gate[0].set()
        assert await loading[0] == "owner's"  # the owner was not disturbed
        assert await owner.get("k") == "owner's"

    # The waiter runs in its own task: cancel that one (the points are on its client).
    points = await _every_point(victim, setup, op, check)
    assert points > 2
