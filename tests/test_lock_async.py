"""Lock (asyncio API only) against a real redis-server: cancellation at every await point,
the per-loop renewer task, and sync and asyncio locks on the same keys.

The contract both APIs share is in ``test_lock_shared_async.py`` (and its generated sync
twin, ``test_lock_shared_sync.py``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from pyredis_atomic import LockLostError
from pyredis_atomic.asyncio import Lock

KEY = "atomic:lock:{jobs}"


# -- cancellation ---------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(delay=st.floats(0.0, 0.002) | st.floats(0.0, 0.02), contended=st.booleans())
def test_a_cancelled_acquire_leaves_nothing_held_and_no_waiter_stranded(
    redis_url: str, delay: float, contended: bool,
) -> None:
    """Cancel acquire at a random await point: afterwards the lock is not held by the
    cancelled object, and a waiter queued behind it still gets the lock promptly."""

    async def scenario() -> None:
        clients = [redis.asyncio.Redis.from_url(redis_url) for _ in range(3)]
        try:
            await clients[0].flushall()
            holder = Lock(clients[0], "jobs", ttl=30.0)
            if contended:
                await holder.acquire()
            victim = Lock(clients[1], "jobs", ttl=30.0)
            task = asyncio.create_task(victim.acquire())
            await asyncio.sleep(delay)
            task.cancel()
            try:
                got = await task
            except asyncio.CancelledError:
                got = False
            if got:  # it finished before the cancel: an ordinary holder
                assert await victim.owned()
                await victim.release()
            assert not await victim.owned()
            if not contended:
                assert not await Lock(clients[2], "jobs").locked()
                return
            assert await holder.owned()
            # A waiter behind the cancelled one is woken by the holder's release
            # (the lease, 30 s, would be far too late).
            waiter = Lock(clients[2], "jobs", ttl=30.0)
            wait = asyncio.create_task(waiter.acquire(timeout=10.0))
            await asyncio.sleep(0.05)
            started = time.monotonic()
            await holder.release()
            assert await wait
            assert time.monotonic() - started < 1.0
            await waiter.release()
        finally:
            for c in clients:
                await c.aclose()

    asyncio.run(scenario())


async def test_a_cancelled_async_with_body_releases(async_redis_client: Any) -> None:
    lock = Lock(async_redis_client, "jobs", ttl=30.0)

    async def body() -> None:
        async with lock:
            await asyncio.sleep(10)

    task = asyncio.create_task(body())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await async_redis_client.exists(KEY)


# -- auto-renew -----------------------------------------------------------------------------
def _renewer_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "pyredis-atomic-lock-renewer"]


async def test_auto_renew_keeps_a_long_hold_and_stops_at_release(
    async_redis_client: Any,
) -> None:
    # A 1 s lease: each renewal must answer within the lease's time left (issue 14).
    locks = [Lock(async_redis_client, f"jobs{i}", ttl=1.0, auto_renew=True) for i in range(3)]
    for lock in locks:
        await lock.acquire()
    await asyncio.sleep(2.5)
    assert all([await lock.owned() for lock in locks])
    assert len(_renewer_tasks()) == 1  # one task for the loop
    for lock in locks:
        await lock.release()
    await asyncio.sleep(0.2)
    assert _renewer_tasks() == []  # it ends with the last release


async def test_auto_renew_notices_a_deleted_key(async_redis_client: Any) -> None:
    fired = asyncio.Event()
    seen: list[Lock] = []

    async def on_lost(lock: Lock) -> None:
        seen.append(lock)
        fired.set()

    lock = Lock(async_redis_client, "jobs", ttl=0.3, auto_renew=True, on_lost=on_lost)

    async def hold() -> None:
        async with lock:
            await async_redis_client.delete(KEY)
            await asyncio.wait_for(fired.wait(), 2.0)
            assert lock.lost

    with pytest.raises(LockLostError):
        await hold()
    assert seen == [lock]


def test_sync_and_async_locks_share_keys_and_fences(
    redis_client: redis.Redis, redis_url: str,
) -> None:
    from pyredis_atomic import Lock as SyncLock

    sync_lock = SyncLock(redis_client, "jobs")
    sync_lock.acquire()

    async def contend() -> bool:
        c = redis.asyncio.Redis.from_url(redis_url)
        try:
            return await Lock(c, "jobs").acquire(blocking=False)
        finally:
            await c.aclose()

    assert not asyncio.run(contend())
    sync_lock.release()
    assert asyncio.run(contend())
