"""The asyncio Worker against a real Redis: the sync suite's cases that apply (acks,
backoff, dead letters with the failure, heartbeats, shutdown, prefetch), plus what only
asyncio has: a handler cancelled on a lost lease or a timeout, and ``run()`` cancelled
giving back every message it holds."""

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


def _drained(q: ReliableQueue) -> Callable[[], Any]:
    async def check() -> bool:
        s = await q.stats()
        return bool(s["pending"] == s["in_flight"] == s["delayed"] == 0)
    return check


@pytest.mark.parametrize("prefetch", [None, 16])
async def test_every_message_is_handled_and_acked(ar: Any, prefetch: int | None) -> None:
    q = _queue(ar)
    ids = set(await q.push_many([b"%d" % i for i in range(300)]))
    seen: list[str] = []

    async def handle(msg: Message) -> None:
        seen.append(msg.id)

    w = Worker(q, handle, concurrency=8, prefetch=prefetch, poll=0.1)
    task = asyncio.create_task(w.run())
    await _wait(_drained(q))
    w.stop()
    await asyncio.wait_for(task, 10)
    assert set(seen) == ids
    assert len(seen) == len(ids)
    assert w.counts.snapshot()["acked"] == 300


async def test_a_failing_message_is_retried_with_backoff_then_dead_lettered(ar: Any) -> None:
    q = _queue(ar)
    mid = await q.push(b"poison")
    times: list[float] = []

    async def always_fails(msg: Message) -> None:
        times.append(time.monotonic())
        raise KeyError("missing")

    w = Worker(q, always_fails, retry=Retry(max_attempts=3, backoff=0.3, jitter=False),
               poll=0.1)
    task = asyncio.create_task(w.run())

    async def dead() -> bool:
        return bool((await q.stats())["dead"] == 1)

    await _wait(dead)
    w.stop()
    await asyncio.wait_for(task, 10)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for gap, want in zip(gaps, [0.3, 0.6], strict=True):
        assert want - 0.02 <= gap <= want + 1.5, gaps
    [letter] = await q.dead_letters()
    assert letter.id == mid
    assert letter.failure is not None
    assert (letter.failure.type, letter.failure.message) == ("KeyError", "'missing'")
    assert "always_fails" in letter.failure.traceback


async def test_a_handler_far_longer_than_the_lease_is_not_redelivered(ar: Any) -> None:
    q = _queue(ar, visibility_timeout=1.0)
    await q.push(b"long")
    seen: list[Message] = []

    async def slow(msg: Message) -> None:
        seen.append(msg)
        await asyncio.sleep(10.0)  # 10x the visibility timeout

    w = Worker(q, slow, poll=0.1)
    task = asyncio.create_task(w.run())
    twin = ReliableQueue(ar, q.name, visibility_timeout=1.0)
    await _wait(lambda: _true(bool(seen)))
    end = time.monotonic() + 9.5
    while time.monotonic() < end:
        assert await twin.pop() is None
        await asyncio.sleep(0.05)
    await _wait(_drained(q))
    w.stop()
    await asyncio.wait_for(task, 10)
    assert len(seen) == 1
    assert seen[0].deliveries == 1
    assert w.counts.snapshot()["acked"] == 1


async def _true(value: bool) -> bool:
    return value


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


async def test_stop_lets_running_handlers_finish_within_grace(ar: Any) -> None:
    q = _queue(ar)
    await q.push_many([b"a", b"b"])
    started = asyncio.Event()

    async def handle(msg: Message) -> None:
        started.set()
        await asyncio.sleep(0.5)

    w = Worker(q, handle, poll=0.1)
    task = asyncio.create_task(w.run())
    await asyncio.wait_for(started.wait(), 10)
    w.stop(grace=10)
    await asyncio.wait_for(task, 15)
    assert w.counts.snapshot()["acked"] == 1
    s = await q.stats()
    assert (s["pending"], s["in_flight"]) == (1, 0)


async def test_a_plain_function_is_refused(ar: Any) -> None:
    with pytest.raises(TypeError, match="coroutine function"):
        Worker(_queue(ar), print)
