"""Lock (asyncio API) against a real redis-server: the same contract as the sync API, plus
cancellation at every await point and the per-loop renewer task."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
import redis
import redis.asyncio
from faults.fault_proxy import FaultProxy
from hypothesis import given, settings
from hypothesis import strategies as st

from pyredis_atomic import (
    LockLostError,
    LockNotOwnedError,
    LockTimeoutError,
    WrongTypeError,
)
from pyredis_atomic._core.lock import release_call
from pyredis_atomic.asyncio import Lock
from pyredis_atomic.asyncio.registry import default_registry
from pyredis_atomic.testing import RedisServer

KEY = "atomic:lock:{jobs}"


@pytest_asyncio.fixture
async def make_aclient(redis_url: str) -> AsyncIterator[Callable[..., Any]]:
    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        c = redis.asyncio.Redis.from_url(redis_url, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.aclose()


async def test_acquire_release_fence_owned_locked(aclient: Any) -> None:
    a = Lock(aclient, "jobs", ttl=10.0)
    b = Lock(aclient, "jobs", ttl=10.0)
    assert not await a.locked()
    assert await a.acquire()
    assert a.fence == 1
    assert await a.owned()
    assert await b.locked()
    assert not await b.owned()
    assert not await b.acquire(blocking=False)
    await a.release()
    assert not await a.locked()
    assert await b.acquire(blocking=False)
    assert b.fence == 2
    info = await Lock.inspect(aclient, "jobs")
    assert info is not None
    assert info.held
    assert info.fence == 2
    assert info.released_fence == 1
    await b.release()


async def test_stale_release_and_extend_raise_and_spare_the_new_holder(aclient: Any) -> None:
    old = Lock(aclient, "jobs", ttl=0.05)
    new = Lock(aclient, "jobs", ttl=10.0)
    await old.acquire()
    await asyncio.sleep(0.1)
    assert await new.acquire(blocking=False)
    with pytest.raises(LockNotOwnedError):
        await old.extend()
    with pytest.raises(LockNotOwnedError):
        await old.release()
    assert await new.owned()
    await new.extend(5.0)
    await new.release()


async def test_context_manager_timeout_and_lost(async_redis_client: Any) -> None:
    async with Lock(async_redis_client, "jobs", ttl=5.0) as lock:
        assert await lock.owned()
        started = time.monotonic()
        with pytest.raises(LockTimeoutError):
            await Lock(async_redis_client, "jobs", timeout=0.2).__aenter__()
        assert 0.2 <= time.monotonic() - started < 0.6

    async def overrun() -> None:
        async with Lock(async_redis_client, "jobs", ttl=0.05):
            await asyncio.sleep(0.15)

    with pytest.raises(LockLostError):
        await overrun()


async def test_release_from_another_task(async_redis_client: Any) -> None:
    lock = Lock(async_redis_client, "jobs")
    await asyncio.create_task(lock.acquire())
    await asyncio.create_task(lock.release())  # the token lives on the object
    assert not await async_redis_client.exists(KEY)


async def test_re_sent_release_and_dropped_replies(
    redis_server: RedisServer, async_redis_client: Any,
) -> None:
    lock = Lock(async_redis_client, "jobs")
    await lock.acquire()
    raw = await async_redis_client.get(KEY)
    await default_registry().run(async_redis_client,
                                 release_call(lock.keys, raw.decode().split(":")[0],
                                              lock.fence, 1000))
    await lock.release()  # its first send "went through": no error

    proxy = FaultProxy(redis_server.host, redis_server.port)
    client = redis.asyncio.Redis(host="127.0.0.1", port=proxy.port)  # retries by default
    try:
        await default_registry().load(client)
        lock = Lock(client, "jobs")
        proxy.drop_next_reply()
        assert await lock.acquire()
        assert proxy.dropped == 1
        assert lock.fence == 2
        assert int(await async_redis_client.hget(f"{KEY}:fences", "fence")) == 2
        proxy.drop_next_reply()
        await lock.release()
        assert proxy.dropped == 2
    finally:
        await client.aclose()
        proxy.close()


async def test_bad_input_and_wrong_type(async_redis_client: Any) -> None:
    with pytest.raises(ValueError, match="ttl must be at least"):
        Lock(async_redis_client, "jobs", ttl=0)
    with pytest.raises(TypeError, match="name must be a str"):
        Lock(async_redis_client, 7)  # type: ignore[arg-type]
    lock = Lock(async_redis_client, "jobs")
    with pytest.raises(ValueError, match="timeout must be at least"):
        await lock.acquire(timeout=-1)
    await async_redis_client.rpush(KEY, "x")
    with pytest.raises(WrongTypeError) as info:
        await lock.acquire()
    assert info.value.key == KEY
    assert await async_redis_client.type(KEY) == b"list"


async def test_a_blocked_waiter_wakes_within_milliseconds_of_release(
    make_aclient: Callable[..., Any],
) -> None:
    holder_client, waiter_client = make_aclient(), make_aclient()
    delays = []
    for _ in range(5):
        holder = Lock(holder_client, "jobs", ttl=30.0)
        await holder.acquire()
        waiter = Lock(waiter_client, "jobs", ttl=30.0)
        task = asyncio.create_task(waiter.acquire())
        await asyncio.sleep(0.15)
        released = time.monotonic()
        await holder.release()
        assert await asyncio.wait_for(task, 5)
        delays.append(time.monotonic() - released)
        await waiter.release()
    assert statistics.median(delays) < 0.1, delays
    assert max(delays) < 1.0, delays


async def test_a_timeout_is_respected(async_redis_client: Any) -> None:
    await Lock(async_redis_client, "jobs", ttl=30.0).acquire()
    waiter = Lock(async_redis_client, "jobs")
    for timeout in (0.0, 0.05, 0.4):
        started = time.monotonic()
        assert not await waiter.acquire(timeout=timeout)
        took = time.monotonic() - started
        assert timeout <= took < timeout + 0.25, (timeout, took)


async def test_an_expired_lease_ends_the_wait(async_redis_client: Any) -> None:
    await Lock(async_redis_client, "jobs", ttl=0.4).acquire()  # a holder that died
    waiter = Lock(async_redis_client, "jobs")
    started = time.monotonic()
    assert await waiter.acquire(timeout=5.0)
    assert 0.3 < time.monotonic() - started < 0.75
    await waiter.release()


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
