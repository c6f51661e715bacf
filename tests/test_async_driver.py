"""The shared asyncio driver: a cancellation of a task blocked in a flow reaches the flow at
every point (even when redis.asyncio swallows it), the flow's clean-up runs, and the
primitives built on it leave nothing owned beyond its lease."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Generator
from typing import Any

import pytest
import redis.asyncio

from pyredis_atomic._core.calls import Block, Call
from pyredis_atomic.asyncio import ReliableQueue
from pyredis_atomic.asyncio._driver import CancelWatch, drive

AsyncRedis = redis.asyncio.Redis
needs_cancelling = pytest.mark.skipif(sys.version_info < (3, 11),
                                      reason="Task.cancelling() is 3.11+")

# Cancel before the first command is sent, while it is in flight, and during the wait.
DELAYS = [0.0, 0.0005, 0.003, 0.02, 0.15]


def waiting_flow(log: list[str]) -> Generator[Any, Any, str]:
    """Blocks on an empty list; on cancellation sends one clean-up call, then re-raises."""
    try:
        yield Call("server_time", (), ())
        log.append("asked")
        yield Block("driver:never", 3.0)
        log.append("woke")
        return "done"
    except asyncio.CancelledError:
        log.append("cancelled")
        yield Call("server_time", (), ())  # clean-up effect: must still run
        log.append("cleaned")
        raise


@pytest.mark.parametrize("delay", DELAYS)
async def test_cancellation_reaches_the_flow_and_its_clean_up_runs(
        async_redis_client: AsyncRedis, delay: float) -> None:
    log: list[str] = []
    task = asyncio.ensure_future(drive(async_redis_client, waiting_flow(log)))
    await asyncio.sleep(delay)
    began = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Not the full 3 s BLPOP (nor its 2 s slice): the cancellation was not lost.
    assert time.monotonic() - began < 1.0
    if log:  # cancelled after the flow started: it saw the cancellation and cleaned up
        assert log[-2:] == ["cancelled", "cleaned"]
        assert "woke" not in log


@needs_cancelling
async def test_a_cancellation_swallowed_during_an_effect_is_thrown_in_after_it(
        async_redis_client: AsyncRedis) -> None:
    # What redis.asyncio does when the cancellation arrives before it sends the command:
    # the effect finishes normally. The driver must not carry on as if nothing happened.
    log: list[str] = []

    async def swallowing(effect: Any) -> Any:
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            log.append("swallowed")
        return None

    flow = waiting_flow(log)
    task = asyncio.ensure_future(drive(async_redis_client, flow, effects=swallowing))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["swallowed", "cancelled", "cleaned"]


@needs_cancelling
async def test_an_old_suppressed_cancellation_does_not_cancel_later_flows(
        async_redis_client: AsyncRedis) -> None:
    def quick() -> Generator[Any, Any, str]:
        yield Call("server_time", (), ())
        return "ran"

    async def body() -> str:
        # Suppressed without uncancel(): the task's cancelling() count stays 1.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(1)
        assert CancelWatch().requested() is False
        return await drive(async_redis_client, quick())

    task = asyncio.ensure_future(body())
    await asyncio.sleep(0.01)
    task.cancel()
    assert await task == "ran"


@pytest.mark.parametrize("delay", DELAYS)
async def test_cancelled_pop_leaves_no_message_owned_beyond_its_lease(
        async_redis_client: AsyncRedis, delay: float) -> None:
    queue = ReliableQueue(async_redis_client, f"cancel-{delay}", visibility_timeout=0.3)
    task = asyncio.ensure_future(queue.pop(timeout=3))
    await asyncio.sleep(delay)
    await queue.push(b"m")  # may be claimed by the pop just before it is cancelled
    task.cancel()
    try:
        got = await task
    except asyncio.CancelledError:
        got = None
    stats = await queue.stats()
    assert stats["pending"] + stats["in_flight"] == 1
    if got is None:
        # Whatever the cancelled pop took comes back once its lease ends.
        again = await queue.pop(timeout=2)
        assert again is not None
        assert again.payload == b"m"
        await queue.ack(again)
    else:
        await queue.ack(got)
    assert (await queue.stats())["in_flight"] == 0


async def test_a_wait_ended_by_a_failover_is_a_wait_that_ended_early(
    redis_server_factory: Any,
) -> None:
    """Redis answers a BLPOP on a primary turned replica with UNBLOCKED: the driver reports
    an empty wait, so the flow re-checks instead of failing."""
    from pyredis_atomic._core.calls import Block
    from pyredis_atomic.asyncio._driver import perform

    primary = redis_server_factory()
    other = redis_server_factory()
    client = redis.asyncio.Redis(host=primary.host, port=primary.port)
    try:
        waiting = asyncio.ensure_future(perform(client, Block("signal", 5.0)))
        await asyncio.sleep(0.2)
        with primary.client() as c:
            c.execute_command("REPLICAOF", other.host, other.port)
        assert await asyncio.wait_for(waiting, 5) is None
    finally:
        await client.aclose()


class SwallowingRedis(redis.asyncio.Redis):
    """Swallows a cancellation that lands before a command is sent, as redis.asyncio
    itself sometimes does, then sends the command anyway."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.05)
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


@needs_cancelling
async def test_a_pop_cancelled_before_its_first_claim_is_sent_stops_at_once(
        redis_url: str) -> None:
    # The cancellation is swallowed by the first command (the server check or the first
    # claim), before the wait even starts: the queue must notice it then, not block for
    # the rest of its timeout.
    client = SwallowingRedis.from_url(redis_url)
    try:
        q = ReliableQueue(client, "swallowed")
        task = asyncio.ensure_future(q.pop(timeout=3.0))
        await asyncio.sleep(0.01)
        began = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - began < 1.0
    finally:
        await client.aclose()
