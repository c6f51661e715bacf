"""The asyncio Worker only, against a real Redis: a handler cancelled on a lost lease or a
timeout, ``run()`` cancelled giving back every message it holds, plain functions refused.

The behaviour both APIs share (acks, backoff, dead letters with the failure, heartbeats,
shutdown, prefetch) is in ``test_worker_shared_async.py`` (and its generated sync twin,
``test_worker_shared_sync.py``)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio

from pyredis_atomic.asyncio import Message, ReliableQueue, Retry, Worker

_names = itertools.count()


@pytest_asyncio.fixture
async def ar(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    c = redis.asyncio.Redis.from_url(redis_url)
    yield c
    await c.aclose()


def _queue(r: Any, **kwargs: Any) -> ReliableQueue:
    return ReliableQueue(r, f"aworker-{next(_names)}", **kwargs)


async def _wait(cond: Callable[[], Any], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not await cond():
        assert time.monotonic() < end, "timed out waiting"
        await asyncio.sleep(0.02)


async def test_a_lost_lease_cancels_the_handler(ar: Any) -> None:
    q = _queue(ar, visibility_timeout=1.0)
    await q.push(b"x")
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def handle(msg: Message) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    w = Worker(q, handle, poll=0.1)
    task = asyncio.create_task(w.run())
    await asyncio.wait_for(started.wait(), 10)
    for receipt in await ar.zrange(q.keys["inflight"], 0, -1):
        await ar.zadd(q.keys["inflight"], {receipt: 0}, xx=True)
    assert await q.requeue_expired() == 1  # an operator requeued it
    await asyncio.wait_for(cancelled.wait(), 5)
    w.stop(grace=0.5)
    await asyncio.wait_for(task, 10)
    assert w.counts.snapshot()["lost"] == 1


async def test_a_handler_past_its_timeout_is_cancelled_and_counts_as_failure(ar: Any) -> None:
    q = _queue(ar)
    await q.push(b"stuck")
    cancelled = asyncio.Event()

    async def stuck(msg: Message) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    w = Worker(q, stuck, retry=Retry(max_attempts=1), handler_timeout=0.2, poll=0.1)
    task = asyncio.create_task(w.run())
    await asyncio.wait_for(cancelled.wait(), 10)

    async def dead() -> bool:
        return bool((await q.stats())["dead"] == 1)

    await _wait(dead)
    w.stop()
    await asyncio.wait_for(task, 10)
    [letter] = await q.dead_letters()
    assert letter.failure is not None
    assert letter.failure.type.endswith("HandlerTimeoutError")


@pytest.mark.parametrize("prefetch", [None, 10])
async def test_cancelling_run_gives_back_every_message_held(ar: Any,
                                                            prefetch: int | None) -> None:
    q = _queue(ar)
    await q.push_many([b"x"] * 20)
    started = asyncio.Event()

    async def handle(msg: Message) -> None:
        started.set()
        await asyncio.sleep(30)

    w = Worker(q, handle, concurrency=3, prefetch=prefetch, poll=0.1)
    task = asyncio.create_task(w.run())
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    s = await q.stats()
    assert (s["pending"], s["in_flight"]) == (20, 0), s
    # Given back uncounted: every message's next delivery is its first.
    assert all(m.deliveries == 1 for m in await q.pop_many(20))
    assert w.counts.snapshot()["given_back"] >= 3


async def test_a_plain_function_is_refused(ar: Any) -> None:
    with pytest.raises(TypeError, match="coroutine function"):
        Worker(_queue(ar), print)
