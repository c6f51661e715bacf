"""The asyncio Semaphore: limit, wake-ups, async with, and cancellation at every await
point leaving no permit without an owner."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio

from pyredis_atomic import SemaphoreLostError, SemaphoreTimeoutError
from pyredis_atomic.asyncio import Semaphore


async def test_acquire_release_count(aclient: Any) -> None:
    sem = Semaphore(aclient, "a", limit=2, ttl=10)
    p1 = await sem.acquire()
    p2 = await sem.acquire(blocking=False)
    assert p1 is not None
    assert p2 is not None
    assert await sem.acquire(blocking=False) is None
    assert await sem.count() == 2
    assert len(await sem.holders()) == 2
    assert await sem.release(p1) is True
    assert await sem.release(p1) is False
    assert await sem.extend(p2, ttl=20) is True
    assert await sem.acquire(permit="again") == "again"
    assert await sem.acquire(permit="again", blocking=False) == "again"
    assert await sem.count() == 2


async def test_tasks_never_exceed_the_limit_and_are_woken(aclient: Any) -> None:
    sem = Semaphore(aclient, "tasks", limit=3, ttl=30)
    inside = 0
    most = 0

    async def work() -> None:
        nonlocal inside, most
        async with sem:
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    started = time.monotonic()
    await asyncio.gather(*(work() for _ in range(12)))
    assert most == 3
    assert await sem.count() == 0
    # 4 rounds of 20 ms, woken by releases: nowhere near the 30 s lease
    assert time.monotonic() - started < 10


async def test_async_with_timeout_and_lost(aclient: Any) -> None:
    sem = Semaphore(aclient, "ctx", limit=1, timeout=0.2)
    async with sem:
        with pytest.raises(SemaphoreTimeoutError):
            async with sem:
                pass
    short = Semaphore(aclient, "short", limit=1, ttl=0.1)
    with pytest.raises(SemaphoreLostError):
        async with short:
            await asyncio.sleep(0.2)


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
