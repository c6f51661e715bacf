"""The asyncio Worker only, against a real Redis: a handler cancelled on a lost lease or a
timeout (a delivery found gone by the loop's one heartbeat renewer cancels the handler of
its own worker; one that swallows that does not stop the worker), ``run()`` cancelled
giving back every message it holds, plain functions refused.

The behaviour both APIs share (acks, backoff, dead letters with the failure, heartbeats,
shutdown, prefetch) is in ``test_worker_shared_async.py`` (and its generated sync twin,
``test_worker_shared_sync.py``), the shared heartbeat renewer in
``test_worker_renewer_shared_async.py``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio
from twin_async import until

from pyredis_atomic.asyncio import Message, ReliableQueue, Retry, Worker

_names = itertools.count()


@pytest_asyncio.fixture
async def ar(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    c = redis.asyncio.Redis.from_url(redis_url)
    yield c
    await c.aclose()


def _queue(r: Any, **kwargs: Any) -> ReliableQueue:
    return ReliableQueue(r, f"aworker-{next(_names)}", **kwargs)


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

    await until(dead)
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


async def test_a_lost_delivery_cancels_the_handler_of_its_own_worker(ar: Any) -> None:
    q = _queue(ar, visibility_timeout=1.0)
    await q.push_many([b"a", b"b"])
    started: list[Message] = []
    cancelled: list[Message] = []

    async def handle(msg: Message) -> None:
        if msg.deliveries > 1:
            return  # the requeued message's new delivery
        started.append(msg)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(msg)
            raise

    workers = [Worker(q, handle, poll=0.1) for _ in range(2)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    await until(lambda: len(started) == 2)
    for receipt in await ar.zrange(q.keys["inflight"], 0, -1):
        await ar.zadd(q.keys["inflight"], {receipt: 0}, xx=True)
    assert await q.requeue_expired() == 2  # an operator requeued both
    await until(lambda: len(cancelled) == 2, timeout=20)
    for w in workers:
        w.stop(grace=0.5)
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert all(m.lost for m in cancelled)
    assert [w.counts.snapshot()["lost"] >= 1 for w in workers] == [True, True]
    # The acks of those deliveries are refused: the requeued messages are new deliveries.
    assert [await q.ack(m) for m in cancelled] == [False, False]


async def test_a_handler_that_swallows_its_interruption_does_not_stop_the_worker(
        ar: Any) -> None:
    q = _queue(ar, visibility_timeout=1.0)
    await q.push(b"first")
    started = asyncio.Event()
    swallowed: list[Message] = []
    handled: list[bytes] = []

    async def handle(msg: Message) -> None:
        if msg.payload == b"first" and msg.deliveries == 1:
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                swallowed.append(msg)  # and returns normally: its outcome is ignored
                return
        handled.append(msg.payload)

    w = Worker(q, handle, poll=0.1)
    task = asyncio.create_task(w.run())
    await asyncio.wait_for(started.wait(), 10)
    for receipt in await ar.zrange(q.keys["inflight"], 0, -1):
        await ar.zadd(q.keys["inflight"], {receipt: 0}, xx=True)
    assert await q.requeue_expired() == 1
    await until(lambda: len(swallowed) == 1, timeout=20)
    await q.push(b"second")
    # The same worker slot goes on: the requeued delivery and the next message.
    await until(lambda: sorted(handled) == [b"first", b"second"], timeout=20)
    w.stop()
    await asyncio.wait_for(task, 10)
    assert swallowed[0].lost
    assert w.counts.snapshot()["lost"] == 1
    assert w.counts.snapshot()["acked"] == 2
