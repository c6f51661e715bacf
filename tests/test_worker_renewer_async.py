"""The asyncio Workers' shared heartbeat renewer task: a delivery found gone cancels the
handler of its own worker, and a handler that swallows that cancellation does not stop the
worker. Real Redis.

What both APIs share (one renewer for every worker, one extend call for their messages, the
renewer ending and starting again) is in ``test_worker_renewer_shared_async.py`` and its
generated sync twin; the sync case of a lost delivery (``msg.lost``) is in
``test_worker_renewer.py``."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
import redis.asyncio

from pyredis_atomic.asyncio import Message, ReliableQueue, Worker

_names = itertools.count()


@pytest_asyncio.fixture
async def ar(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    c = redis.asyncio.Redis.from_url(redis_url)
    yield c
    await c.aclose()


def _queue(r: Any, **kwargs: Any) -> ReliableQueue:
    return ReliableQueue(r, f"arenewer-{next(_names)}", **kwargs)


async def _until(cond: Any, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out waiting"
        await asyncio.sleep(0.02)


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
    await _until(lambda: len(started) == 2)
    for receipt in await ar.zrange(q.keys["inflight"], 0, -1):
        await ar.zadd(q.keys["inflight"], {receipt: 0}, xx=True)
    assert await q.requeue_expired() == 2  # an operator requeued both
    await _until(lambda: len(cancelled) == 2, timeout=20)
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
    await _until(lambda: len(swallowed) == 1, timeout=20)
    await q.push(b"second")
    # The same worker slot goes on: the requeued delivery and the next message.
    await _until(lambda: sorted(handled) == [b"first", b"second"], timeout=20)
    w.stop()
    await asyncio.wait_for(task, 10)
    assert swallowed[0].lost
    assert w.counts.snapshot()["lost"] == 1
    assert w.counts.snapshot()["acked"] == 2
