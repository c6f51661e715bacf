# GENERATED from tests/test_semaphore_shared_async.py by scripts/unasync.py: do not edit.
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
from twin_sync import sleep, spawn

from pyredis_atomic import Semaphore, SemaphoreLostError, SemaphoreTimeoutError, WrongTypeError
from pyredis_atomic._core.replies import as_str


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


def test_limit_permits_then_none(client: Any) -> None:
    sem = Semaphore(client, "pdf-workers", limit=2, ttl=30.0)
    a = sem.acquire()
    b = sem.acquire(blocking=False)
    assert isinstance(a, str)
    assert isinstance(b, str)
    assert a != b
    assert sem.acquire(blocking=False) is None
    assert sem.count() == 2
    assert {p for p, _ in sem.holders()} == {a, b}
    assert all(29 < left <= 30 for _, left in sem.holders())
    assert sem.release(a) is True
    assert sem.count() == 1
    assert sem.acquire(blocking=False) is not None


def test_double_release_is_harmless(client: Any) -> None:
    sem = Semaphore(client, "twice", limit=1)
    permit = sem.acquire()
    assert permit is not None
    assert sem.release(permit) is True
    assert sem.release(permit) is False
    assert sem.count() == 0
    other = sem.acquire(blocking=False)
    assert other is not None
    assert sem.release(permit) is False  # must not free someone else's slot
    assert sem.count() == 1
    # the stale wake-up tokens stay bounded by the limit
    assert client.llen("atomic:semaphore:{twice}:signal") <= 1


def test_retried_acquire_with_the_same_permit_counts_once(client: Any) -> None:
    sem = Semaphore(client, "retry", limit=2)
    assert sem.acquire(permit="p-1") == "p-1"
    assert sem.acquire(permit="p-1") == "p-1"  # a re-send after a lost reply
    assert sem.count() == 1
    assert sem.acquire(blocking=False) is not None
    assert sem.acquire(blocking=False, permit="p-2") is None


def test_timeout_is_honoured(client: Any) -> None:
    sem = Semaphore(client, "busy", limit=1, ttl=30)
    assert sem.acquire() is not None
    started = time.monotonic()
    assert sem.acquire(timeout=0.4) is None
    waited = time.monotonic() - started
    assert 0.4 <= waited < 0.4 + 0.3
    assert sem.acquire(timeout=0) is None


def test_release_wakes_a_waiter_through_redis(redis_client: Any,
                                              make_client: Any) -> None:
    sem = Semaphore(redis_client, "wake", limit=1, ttl=60)
    permit = sem.acquire()
    assert permit is not None
    got: list[tuple[str | None, float]] = []

    def waiter() -> None:
        other = Semaphore(make_client(), "wake", limit=1, ttl=60)
        got.append((other.acquire(timeout=20), time.monotonic()))

    redis_client.config_resetstat()
    waiting = spawn(waiter)
    sleep(0.5)  # the waiter is blocked (the lease has ~60 s left)
    released_at = time.monotonic()
    assert sem.release(permit)
    waiting.result(10)
    assert got
    assert got[0][0] is not None
    assert got[0][1] - released_at < 1.0  # woken by the signal, not by the lease's end
    # It waited on the signal list, it did not poll: its first attempt, the release, the
    # attempt after the wake-up (and at most one more after a cut-short BLPOP).
    assert redis_client.info("commandstats")["cmdstat_evalsha"]["calls"] <= 4


def test_extend_keeps_a_permit_past_its_ttl(redis_client: Any) -> None:
    sem = Semaphore(redis_client, "long-job", limit=1, ttl=0.4)
    permit = sem.acquire()
    assert permit is not None
    sleep(0.25)
    assert sem.extend(permit) is True
    assert sem.extend(permit, ttl=5) is True
    sleep(0.3)
    assert sem.count() == 1
    assert sem.acquire(blocking=False) is None
    assert sem.release(permit) is True
    assert sem.extend(permit) is False


def test_expired_permit_cannot_be_extended_or_released(redis_client: Any) -> None:
    sem = Semaphore(redis_client, "late", limit=1, ttl=0.1)
    permit = sem.acquire()
    assert permit is not None
    sleep(0.2)
    assert sem.count() == 0
    assert sem.extend(permit) is False
    assert sem.release(permit) is False


def test_context_manager(redis_client: Any) -> None:
    sem = Semaphore(redis_client, "ctx", limit=1, timeout=0.2)
    with sem as permit:
        assert sem.count() == 1
        assert [p for p, _ in sem.holders()] == [permit]
        with pytest.raises(SemaphoreTimeoutError, match="no permit of semaphore 'ctx'") as info:
            with sem:
                pass
        assert info.value.key == sem.key
    assert sem.count() == 0
    short = Semaphore(redis_client, "ctx-short", limit=1, ttl=0.1)
    with pytest.raises(SemaphoreLostError, match="expired while held"):
        with short:
            sleep(0.2)


def test_callers_sharing_one_object_never_exceed_the_limit_and_are_woken(
    redis_client: Any,
) -> None:
    # (asyncio: 12 tasks; sync: 12 threads) on one Semaphore object
    sem = Semaphore(redis_client, "shared", limit=3, ttl=30)
    held: list[tuple[float, float]] = []

    def work() -> None:
        for _ in range(2):
            with sem:
                start = time.monotonic()
                sleep(0.05)
                held.append((start, time.monotonic()))

    started = time.monotonic()
    callers = [spawn(work) for _ in range(12)]
    for caller in callers:
        caller.result(60)
    assert len(held) == 24
    assert max_overlap(held) <= 3
    assert max_overlap(held) == 3  # the check can fail: they did overlap up to the limit
    assert sem.count() == 0
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
def test_bad_settings(redis_client: Any, kwargs: dict[str, Any],
                      error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Semaphore(redis_client, "bad", **kwargs)


def test_bad_arguments_are_refused_before_anything_is_sent(redis_client: Any) -> None:
    sem = Semaphore(redis_client, "args", limit=1)
    redis_client.config_resetstat()
    with pytest.raises(TypeError, match="permit must be a str"):
        sem.release(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="permit must not be empty"):
        sem.extend("")
    with pytest.raises(ValueError, match="ttl must be at least"):
        sem.extend("p", ttl=0)
    with pytest.raises(ValueError, match="timeout makes no sense"):
        sem.acquire(blocking=False, timeout=1)
    with pytest.raises(TypeError, match="blocking must be a bool"):
        sem.acquire(blocking=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be at least 0"):
        sem.acquire(timeout=-1)
    assert "cmdstat_evalsha" not in redis_client.info("commandstats")


def test_wrong_type_names_the_key(redis_client: Any) -> None:
    sem = Semaphore(redis_client, "typed", limit=1)
    redis_client.set(sem.key, "x")
    for op in (sem.acquire, sem.count, sem.holders, lambda: sem.release("p")):
        with pytest.raises(WrongTypeError) as info:
            op()
        assert info.value.key == sem.key
    assert redis_client.get(sem.key) == b"x"
    other = Semaphore(redis_client, "typed-signal", limit=1)
    permit = other.acquire()
    assert permit is not None
    redis_client.set("atomic:semaphore:{typed-signal}:signal", "x")
    with pytest.raises(WrongTypeError) as info:
        other.release(permit)
    assert info.value.key == "atomic:semaphore:{typed-signal}:signal"
    assert other.count() == 1  # the failed release left the permit in place


def test_prefix_and_brace_names(redis_client: Any) -> None:
    a = Semaphore(redis_client, "w}:holders:{x", limit=1, prefix="app:")
    b = Semaphore(redis_client, "w", limit=1, prefix="app:")
    assert a.acquire(blocking=False) is not None
    assert b.acquire(blocking=False) is not None  # no collision
    assert a.key != b.key
    assert a.key.startswith("app:semaphore:{")
    assert a.key.count("{") == 1
    assert all(as_str(k).startswith("app:") for k in redis_client.keys("*"))


def test_a_waiter_fails_at_once_on_a_signal_key_of_another_type(client: Any) -> None:
    # The wait and the next attempt go out in one pipeline: an error on the BLPOP must end
    # the wait with a clear error, not loop on the attempt's "still full" reply.
    sem = Semaphore(client, "typed-signal", limit=1, ttl=30.0)
    assert sem.acquire() is not None
    signal_key = sem._spec.signal_key
    client.set(signal_key, "not a list")
    start = time.monotonic()
    with pytest.raises(WrongTypeError) as info:
        sem.acquire(timeout=5.0)
    assert time.monotonic() - start < 2.0
    assert info.value.key == signal_key
    assert sem.count() == 1


def test_inspect_reports_the_stored_limit_and_the_holders(client: Any) -> None:
    from pyredis_atomic import SemaphoreInfo

    sem = Semaphore(client, "inspected", 3, ttl=30)
    empty = sem.inspect()
    assert empty == SemaphoreInfo("inspected", None, 0, ())  # nothing stored, nobody holds
    a = sem.acquire(blocking=False, permit="a")
    b = sem.acquire(blocking=False, permit="b")
    assert (a, b) == ("a", "b")
    info = sem.inspect()
    assert (info.name, info.limit, info.count) == ("inspected", 3, 2)
    assert [h.permit for h in info.holders] == ["a", "b"]
    assert all(0 < h.ttl <= 30 for h in info.holders)
    doc = info.as_dict()
    assert (doc["holders"][0]["permit"], doc["limit"], doc["count"]) == ("a", 3, 2)
    sem.release("a")
    sem.release("b")
    assert sem.inspect().count == 0
