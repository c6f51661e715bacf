"""Semaphore against a real redis-server: the limit, leases, wake-ups, re-sent acquires,
callers sharing one object, bad input, wrong types, prefixes and brace names.

Shared by the two APIs: ``scripts/unasync.py`` writes ``test_semaphore_shared_sync.py`` from
``test_semaphore_shared_async.py`` (concurrent callers: tasks here, threads there, through
``twin_async``/``twin_sync``). What only one API has is hand-written:
``test_semaphore.py`` (crashed and concurrent processes, the CLI) and
``test_semaphore_asyncio.py`` (cancellation).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from twin_async import sleep, spawn

from pyredis_atomic import SemaphoreLostError, SemaphoreTimeoutError, WrongTypeError
from pyredis_atomic._core.replies import as_str
from pyredis_atomic.asyncio import Semaphore


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """How many of the (start, end) intervals overlap at most (the processes test of
    ``test_semaphore.py`` uses it too)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                    key=lambda ev: (ev[0], ev[1]))
    depth = best = 0
    for _, step in events:
        depth += step
        best = max(best, depth)
    return best


def test_max_overlap_detects_a_violation() -> None:
    assert max_overlap([(0, 2), (1, 3), (1.5, 4)]) == 3
    assert max_overlap([(0, 1), (1, 2)]) == 1


async def test_limit_permits_then_none(aclient: Any) -> None:
    sem = Semaphore(aclient, "pdf-workers", limit=2, ttl=30.0)
    a = await sem.acquire()
    b = await sem.acquire(blocking=False)
    assert isinstance(a, str)
    assert isinstance(b, str)
    assert a != b
    assert await sem.acquire(blocking=False) is None
    assert await sem.count() == 2
    assert {p for p, _ in await sem.holders()} == {a, b}
    assert all(29 < left <= 30 for _, left in await sem.holders())
    assert await sem.release(a) is True
    assert await sem.count() == 1
    assert await sem.acquire(blocking=False) is not None


async def test_double_release_is_harmless(aclient: Any) -> None:
    sem = Semaphore(aclient, "twice", limit=1)
    permit = await sem.acquire()
    assert permit is not None
    assert await sem.release(permit) is True
    assert await sem.release(permit) is False
    assert await sem.count() == 0
    other = await sem.acquire(blocking=False)
    assert other is not None
    assert await sem.release(permit) is False  # must not free someone else's slot
    assert await sem.count() == 1
    # the stale wake-up tokens stay bounded by the limit
    assert await aclient.llen("atomic:semaphore:{twice}:signal") <= 1


async def test_retried_acquire_with_the_same_permit_counts_once(aclient: Any) -> None:
    sem = Semaphore(aclient, "retry", limit=2)
    assert await sem.acquire(permit="p-1") == "p-1"
    assert await sem.acquire(permit="p-1") == "p-1"  # a re-send after a lost reply
    assert await sem.count() == 1
    assert await sem.acquire(blocking=False) is not None
    assert await sem.acquire(blocking=False, permit="p-2") is None


async def test_timeout_is_honoured(aclient: Any) -> None:
    sem = Semaphore(aclient, "busy", limit=1, ttl=30)
    assert await sem.acquire() is not None
    started = time.monotonic()
    assert await sem.acquire(timeout=0.4) is None
    waited = time.monotonic() - started
    assert 0.4 <= waited < 0.4 + 0.3
    assert await sem.acquire(timeout=0) is None


async def test_release_wakes_a_waiter_through_redis(async_redis_client: Any,
                                                    make_aclient: Any) -> None:
    sem = Semaphore(async_redis_client, "wake", limit=1, ttl=60)
    permit = await sem.acquire()
    assert permit is not None
    got: list[tuple[str | None, float]] = []

    async def waiter() -> None:
        other = Semaphore(make_aclient(), "wake", limit=1, ttl=60)
        got.append((await other.acquire(timeout=20), time.monotonic()))

    await async_redis_client.config_resetstat()
    waiting = spawn(waiter)
    await sleep(0.5)  # the waiter is blocked (the lease has ~60 s left)
    released_at = time.monotonic()
    assert await sem.release(permit)
    await waiting.result(10)
    assert got
    assert got[0][0] is not None
    assert got[0][1] - released_at < 1.0  # woken by the signal, not by the lease's end
    # It waited on the signal list, it did not poll: its first attempt, the release, the
    # attempt after the wake-up (and at most one more after a cut-short BLPOP).
    assert (await async_redis_client.info("commandstats"))["cmdstat_evalsha"]["calls"] <= 4


async def test_extend_keeps_a_permit_past_its_ttl(async_redis_client: Any) -> None:
    sem = Semaphore(async_redis_client, "long-job", limit=1, ttl=0.4)
    permit = await sem.acquire()
    assert permit is not None
    await sleep(0.25)
    assert await sem.extend(permit) is True
    assert await sem.extend(permit, ttl=5) is True
    await sleep(0.3)
    assert await sem.count() == 1
    assert await sem.acquire(blocking=False) is None
    assert await sem.release(permit) is True
    assert await sem.extend(permit) is False


async def test_expired_permit_cannot_be_extended_or_released(async_redis_client: Any) -> None:
    sem = Semaphore(async_redis_client, "late", limit=1, ttl=0.1)
    permit = await sem.acquire()
    assert permit is not None
    await sleep(0.2)
    assert await sem.count() == 0
    assert await sem.extend(permit) is False
    assert await sem.release(permit) is False


async def test_context_manager(async_redis_client: Any) -> None:
    sem = Semaphore(async_redis_client, "ctx", limit=1, timeout=0.2)
    async with sem as permit:
        assert await sem.count() == 1
        assert [p for p, _ in await sem.holders()] == [permit]
        with pytest.raises(SemaphoreTimeoutError, match="no permit of semaphore 'ctx'") as info:
            async with sem:
                pass
        assert info.value.key == sem.key
    assert await sem.count() == 0
    short = Semaphore(async_redis_client, "ctx-short", limit=1, ttl=0.1)
    with pytest.raises(SemaphoreLostError, match="expired while held"):
        async with short:
            await sleep(0.2)


async def test_callers_sharing_one_object_never_exceed_the_limit_and_are_woken(
    async_redis_client: Any,
) -> None:
    # (asyncio: 12 tasks; sync: 12 threads) on one Semaphore object
    sem = Semaphore(async_redis_client, "shared", limit=3, ttl=30)
    held: list[tuple[float, float]] = []

    async def work() -> None:
        for _ in range(2):
            async with sem:
                start = time.monotonic()
                await sleep(0.05)
                held.append((start, time.monotonic()))

    started = time.monotonic()
    callers = [spawn(work) for _ in range(12)]
    for caller in callers:
        await caller.result(60)
    assert len(held) == 24
    assert max_overlap(held) <= 3
    assert max_overlap(held) == 3  # the check can fail: they did overlap up to the limit
    assert await sem.count() == 0
    # 8 rounds of 50 ms, woken by releases: nowhere near the 30 s lease
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"limit": 0}, ValueError, "limit must be between 1"),
        ({"limit": -1}, ValueError, "limit must be between 1"),
        ({"limit": 1.5}, TypeError, "limit must be an int"),
        ({"limit": True}, TypeError, "limit must be an int"),
        ({"limit": 1, "ttl": 0}, ValueError, "ttl must be at least"),
        ({"limit": 1, "ttl": -3}, ValueError, "ttl must be at least"),
        ({"limit": 1, "timeout": -1}, ValueError, "timeout must be at least 0"),
        ({"limit": 1, "prefix": "}"}, ValueError, "prefix must not contain"),
    ],
)
async def test_bad_settings(async_redis_client: Any, kwargs: dict[str, Any],
                            error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Semaphore(async_redis_client, "bad", **kwargs)


async def test_bad_arguments_are_refused_before_anything_is_sent(async_redis_client: Any) -> None:
    sem = Semaphore(async_redis_client, "args", limit=1)
    await async_redis_client.config_resetstat()
    with pytest.raises(TypeError, match="permit must be a str"):
        await sem.release(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="permit must not be empty"):
        await sem.extend("")
    with pytest.raises(ValueError, match="ttl must be at least"):
        await sem.extend("p", ttl=0)
    with pytest.raises(ValueError, match="timeout makes no sense"):
        await sem.acquire(blocking=False, timeout=1)
    with pytest.raises(TypeError, match="blocking must be a bool"):
        await sem.acquire(blocking=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be at least 0"):
        await sem.acquire(timeout=-1)
    assert "cmdstat_evalsha" not in await async_redis_client.info("commandstats")


async def test_wrong_type_names_the_key(async_redis_client: Any) -> None:
    sem = Semaphore(async_redis_client, "typed", limit=1)
    await async_redis_client.set(sem.key, "x")
    for op in (sem.acquire, sem.count, sem.holders, lambda: sem.release("p")):
        with pytest.raises(WrongTypeError) as info:
            await op()
        assert info.value.key == sem.key
    assert await async_redis_client.get(sem.key) == b"x"
    other = Semaphore(async_redis_client, "typed-signal", limit=1)
    permit = await other.acquire()
    assert permit is not None
    await async_redis_client.set("atomic:semaphore:{typed-signal}:signal", "x")
    with pytest.raises(WrongTypeError) as info:
        await other.release(permit)
    assert info.value.key == "atomic:semaphore:{typed-signal}:signal"
    assert await other.count() == 1  # the failed release left the permit in place


async def test_prefix_and_brace_names(async_redis_client: Any) -> None:
    a = Semaphore(async_redis_client, "w}:holders:{x", limit=1, prefix="app:")
    b = Semaphore(async_redis_client, "w", limit=1, prefix="app:")
    assert await a.acquire(blocking=False) is not None
    assert await b.acquire(blocking=False) is not None  # no collision
    assert a.key != b.key
    assert a.key.startswith("app:semaphore:{")
    assert a.key.count("{") == 1
    assert all(as_str(k).startswith("app:") for k in await async_redis_client.keys("*"))


async def test_a_waiter_fails_at_once_on_a_signal_key_of_another_type(aclient: Any) -> None:
    # The wait and the next attempt go out in one pipeline: an error on the BLPOP must end
    # the wait with a clear error, not loop on the attempt's "still full" reply.
    sem = Semaphore(aclient, "typed-signal", limit=1, ttl=30.0)
    assert await sem.acquire() is not None
    signal_key = sem._spec.signal_key
    await aclient.set(signal_key, "not a list")
    start = time.monotonic()
    with pytest.raises(WrongTypeError) as info:
        await sem.acquire(timeout=5.0)
    assert time.monotonic() - start < 2.0
    assert info.value.key == signal_key
    assert await sem.count() == 1


async def test_inspect_reports_the_stored_limit_and_the_holders(aclient: Any) -> None:
    from pyredis_atomic import SemaphoreInfo

    sem = Semaphore(aclient, "inspected", 3, ttl=30)
    empty = await sem.inspect()
    assert empty == SemaphoreInfo("inspected", None, 0, ())  # nothing stored, nobody holds
    a = await sem.acquire(blocking=False, permit="a")
    b = await sem.acquire(blocking=False, permit="b")
    assert (a, b) == ("a", "b")
    info = await sem.inspect()
    assert (info.name, info.limit, info.count) == ("inspected", 3, 2)
    assert [h.permit for h in info.holders] == ["a", "b"]
    assert all(0 < h.ttl <= 30 for h in info.holders)
    doc = info.as_dict()
    assert (doc["holders"][0]["permit"], doc["limit"], doc["count"]) == ("a", 3, 2)
    await sem.release("a")
    await sem.release("b")
    assert (await sem.inspect()).count == 0
