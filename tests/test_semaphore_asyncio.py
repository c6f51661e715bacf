"""The asyncio Semaphore only: cancellation at every await point leaves no permit without
an owner.

The behaviour both APIs share (limit, wake-ups, async with) is in
``test_semaphore_shared_async.py`` (and its generated sync twin,
``test_semaphore_shared_sync.py``)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio

from pyredis_atomic.asyncio import Semaphore


@pytest.mark.parametrize("delay", [0.0, 0.001, 0.003, 0.01, 0.05, 0.2])
async def test_cancellation_leaves_no_permit_without_owner(redis_url: str,
                                                           delay: float) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        sem = Semaphore(client, "cancel", limit=1, ttl=30)
        holder = await sem.acquire()
        assert holder is not None
        await sem.release(holder)  # free: the waiter's acquire may succeed at any point
        blocker = Semaphore(client, "cancel", limit=1, ttl=30)
        task = asyncio.ensure_future(sem.acquire(timeout=5))
        await asyncio.sleep(delay)
        task.cancel()
        try:
            permit = await task
        except asyncio.CancelledError:
            permit = None
        await asyncio.sleep(0.05)  # let a shielded release finish
        # Either the caller got the permit (it owns it), or nothing is held.
        assert await sem.count() == (0 if permit is None else 1)
        if permit is not None:
            await sem.release(permit)
        # and with the semaphore busy: a cancelled waiter leaves nothing behind
        held = await blocker.acquire()
        assert held is not None
        waiter = asyncio.ensure_future(sem.acquire(timeout=5))
        await asyncio.sleep(delay)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await asyncio.sleep(0.05)
        assert [p for p, _ in await sem.holders()] == [held]
    finally:
        await client.aclose()
