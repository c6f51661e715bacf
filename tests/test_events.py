"""Structured log events against a real server: each event under its stable name, with its
fields as record attributes, at its level; and nothing at INFO or above on the hot path."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from redis import exceptions as redis_exc

import pyredis_atomic.asyncio as aio
from pyredis_atomic import (
    BoundedCounter,
    Cache,
    Lock,
    LockLostError,
    LockNotOwnedError,
    RateLimiter,
    ReliableQueue,
    Semaphore,
    default_registry,
)
from pyredis_atomic._core import events
from pyredis_atomic._core.lock import Renewal

ROOT = Path(__file__).resolve().parent.parent


def records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == event]


def only(caplog: pytest.LogCaptureFixture, event: str) -> logging.LogRecord:
    found = records(caplog, event)
    assert len(found) == 1, [(r.name, r.getMessage()) for r in caplog.records]
    return found[0]


def test_lock_lost_on_extend_and_release(caplog: pytest.LogCaptureFixture,
                                         redis_client: redis.Redis) -> None:
    caplog.set_level(logging.DEBUG, logger="pyredis_atomic")
    lock = Lock(redis_client, "jobs", ttl=0.05)
    assert lock.acquire()
    time.sleep(0.15)
    with pytest.raises(LockNotOwnedError):
        lock.extend()
    with pytest.raises(LockNotOwnedError):
        lock.release()
    rec = only(caplog, "lock.lost")  # once per acquisition, not once per discovery
    assert rec.levelno == logging.WARNING
    assert rec.name == "pyredis_atomic.lock"
    assert (rec.lock, rec.fence, rec.action) == ("jobs", 1, "extend")  # type: ignore[attr-defined]
    assert "'jobs'" in rec.getMessage()
    assert rec.pathname.endswith("lock.py")  # points at the library, not at events.py

    assert lock.acquire()  # a new acquisition, lost again: a new event
    time.sleep(0.15)
    with pytest.raises(LockNotOwnedError):
        lock.release()
    assert [r.action for r in records(caplog, "lock.lost")] == ["extend", "release"]  # type: ignore[attr-defined]


def test_lock_lost_by_the_renewer(caplog: pytest.LogCaptureFixture,
                                  redis_client: redis.Redis) -> None:
    caplog.set_level(logging.WARNING, logger="pyredis_atomic")
    lock = Lock(redis_client, "renewed", ttl=0.3, auto_renew=True)

    def hold() -> None:
        with lock:
            redis_client.delete(lock.keys.lock)  # stands for the lock being broken
            for _ in range(100):
                if lock.lost:
                    break
                time.sleep(0.02)

    with pytest.raises(LockLostError):
        hold()
    rec = only(caplog, "lock.lost")
    assert (rec.lock, rec.action) == ("renewed", "renew")  # type: ignore[attr-defined]


async def test_lock_lost_asyncio(caplog: pytest.LogCaptureFixture,
                                 async_redis_client: Any) -> None:
    caplog.set_level(logging.WARNING, logger="pyredis_atomic")
    lock = aio.Lock(async_redis_client, "alock", ttl=0.05)
    assert await lock.acquire()
    await asyncio.sleep(0.15)
    with pytest.raises(LockNotOwnedError):
        await lock.release()
    assert only(caplog, "lock.lost").action == "release"  # type: ignore[attr-defined]


def test_renewal_failure_on_the_connection_is_reported_and_retried(
        caplog: pytest.LogCaptureFixture, redis_client: redis.Redis) -> None:
    caplog.set_level(logging.WARNING, logger="pyredis_atomic")
    lock = Lock(redis_client, "flaky", ttl=10)  # nothing sent: the outcome is I/O-free
    renewal = Renewal(lock, lock._hold, redis_client, "token", time.monotonic(),
                      threading.Lock())
    due = renewal.outcome(time.monotonic(), None, redis_exc.ConnectionError("reset"))
    assert due is not None
    rec = only(caplog, "lock.renewal_failed")
    assert (rec.lock, rec.error) == ("flaky", "ConnectionError")  # type: ignore[attr-defined]
    assert not records(caplog, "lock.lost")


def test_queue_lease_lost_and_dead_letter(caplog: pytest.LogCaptureFixture,
                                          redis_client: redis.Redis) -> None:
    caplog.set_level(logging.DEBUG, logger="pyredis_atomic")
    q = ReliableQueue(redis_client, "jobs", visibility_timeout=0.05, max_deliveries=2)
    q.push(b"x")
    first = q.pop()
    assert first is not None
    time.sleep(0.15)
    second = q.pop()  # the lease ran out: redelivered
    assert second is not None
    assert second.deliveries == 2
    assert not q.ack(first)
    assert not q.extend(first)
    q.nack(first)
    assert [(r.action, r.count) for r in records(caplog, "queue.lease_lost")] == [  # type: ignore[attr-defined]
        ("ack", 1), ("extend", 1), ("nack", 1)]
    rec = records(caplog, "queue.lease_lost")[0]
    assert (rec.levelno, rec.name, rec.queue) == (logging.WARNING, "pyredis_atomic.queue", "jobs")  # type: ignore[attr-defined]
    assert q.ack_many([first, second]) == 1
    assert records(caplog, "queue.lease_lost")[-1].count == 1  # type: ignore[attr-defined]

    q.push(b"y")
    msg = q.pop()
    assert msg is not None
    q.nack(msg)
    again = q.pop()
    assert again is not None
    q.nack(again)  # its second delivery of two: dead
    dead = only(caplog, "queue.dead_lettered")
    assert dead.levelno == logging.DEBUG
    assert (dead.message_id, dead.deliveries) == (again.id, 2)  # type: ignore[attr-defined]


def test_eviction_policy_warning(caplog: pytest.LogCaptureFixture,
                                 redis_server_factory: Any) -> None:
    caplog.set_level(logging.WARNING, logger="pyredis_atomic")
    server = redis_server_factory()
    client = redis.Redis.from_url(server.url)
    try:
        client.config_set("maxmemory-policy", "allkeys-lru")
        ReliableQueue(client, "risky", allow_eviction=True).push(b"x")
        rec = only(caplog, "queue.eviction_policy")
        assert rec.policy == "allkeys-lru"  # type: ignore[attr-defined]
        assert rec.key == "atomic:queue:{risky}"  # type: ignore[attr-defined]
    finally:
        client.close()


def test_noscript_recovery_is_reported(caplog: pytest.LogCaptureFixture,
                                       redis_client: redis.Redis) -> None:
    caplog.set_level(logging.INFO, logger="pyredis_atomic")
    default_registry().load(redis_client)
    counter = BoundedCounter(redis_client, "c")
    counter.incr()
    assert not records(caplog, "script.noscript")
    redis_client.script_flush()
    counter.incr()
    rec = only(caplog, "script.noscript")
    assert (rec.levelno, rec.name, rec.script) == (logging.INFO, "pyredis_atomic.registry",  # type: ignore[attr-defined]
                                                   "counter_add")
    counter.incr()  # loaded again: no more recoveries
    assert len(records(caplog, "script.noscript")) == 1


def test_cache_stampede_wait_and_fill_lost(caplog: pytest.LogCaptureFixture,
                                           redis_client: redis.Redis) -> None:
    caplog.set_level(logging.DEBUG, logger="pyredis_atomic")
    cache = Cache(redis_client, "users", ttl=60)
    started = threading.Event()

    def slow() -> int:
        started.set()
        time.sleep(1.0)  # long enough for the second caller to find the lease held
        return 1

    loader = threading.Thread(target=cache.get_or_set, args=("k", slow))
    loader.start()
    assert started.wait(5)
    assert cache.get_or_set("k", lambda: 2) == 1  # waited for the other loader's value
    loader.join()
    rec = only(caplog, "cache.stampede_wait")
    assert (rec.levelno, rec.cache) == (logging.DEBUG, "users")  # type: ignore[attr-defined]

    def too_slow() -> int:
        time.sleep(0.2)
        return 3

    assert cache.get_or_set("late", too_slow, lock_ttl=0.05) == 3
    assert only(caplog, "cache.fill_lost").levelno == logging.WARNING


def test_the_hot_path_logs_nothing_at_info_or_above(caplog: pytest.LogCaptureFixture,
                                                     redis_client: redis.Redis) -> None:
    caplog.set_level(logging.DEBUG, logger="pyredis_atomic")
    c = redis_client
    default_registry().load(c)  # the fixture flushed them: no NOSCRIPT recovery here
    lock = Lock(c, "hot", ttl=5)
    q = ReliableQueue(c, "hot")
    cache = Cache(c, "hot", ttl=60)
    counter = BoundedCounter(c, "hot", max=10_000)
    sem = Semaphore(c, "hot", limit=2)
    limiter = RateLimiter(c, "hot", rate=10_000, period=1)
    for i in range(50):
        with lock:
            pass
        q.push(b"m")
        msg = q.pop()
        assert msg is not None
        q.ack(msg)
        cache.get_or_set(f"k{i % 5}", lambda: 1)
        counter.incr()
        permit = sem.acquire()
        assert permit is not None
        sem.release(permit)
        limiter.hit()
    loud = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert loud == []


def test_every_emitted_event_is_declared_and_documented() -> None:
    emitted: set[str] = set()
    for path in (ROOT / "pyredis_atomic").rglob("*.py"):
        emitted |= set(re.findall(r'events\.emit\(\s*"([a-z_.]+)"', path.read_text()))
    assert emitted, "no events found"
    assert emitted <= set(events.EVENTS), emitted - set(events.EVENTS)
    assert set(events.EVENTS) <= emitted, set(events.EVENTS) - emitted  # none declared idle
    page = (ROOT / "docs" / "observability.md").read_text()
    for name in events.EVENTS:
        assert f"`{name}`" in page, name


def test_listeners_get_every_event_whatever_the_level() -> None:
    got: list[tuple[str, dict[str, Any]]] = []

    def listen(event: str, fields: dict[str, Any]) -> None:
        got.append((event, fields))

    events.add_listener(listen)
    try:
        events.emit("queue.dead_lettered", "m", queue="q", message_id="1-1", deliveries=3)
    finally:
        events.remove_listener(listen)
    events.emit("queue.dead_lettered", "m", queue="q", message_id="1-2", deliveries=3)
    assert got == [("queue.dead_lettered", {"queue": "q", "message_id": "1-1",
                                            "deliveries": 3})]
