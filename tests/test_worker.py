"""The sync Worker only, against a real Redis: a sync handler is never interrupted (past its
timeout, or after an operator moved its delivery on, it is told through ``msg.lost``, by the
process's one heartbeat renewer, each worker of its own deliveries), and ``async def``
handlers are refused.

The behaviour both APIs share is in ``test_worker_shared_async.py`` (and its generated sync
twin, ``test_worker_shared_sync.py``; the shared heartbeat renewer in
``test_worker_renewer_shared_async.py``); the asyncio API's own cases in
``test_worker_async.py``; child processes, signals and kills in
``test_worker_processes.py``."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from queue_helpers import expire_all
from twin_sync import until

from pyredis_atomic import HandlerTimeoutError, Message, ReliableQueue, Retry, Worker

_names = itertools.count()


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def _queue(r: redis.Redis, **kwargs: Any) -> ReliableQueue:
    return ReliableQueue(r, f"worker-{next(_names)}", **kwargs)


def _start(worker: Worker) -> threading.Thread:
    t = threading.Thread(target=worker.run, daemon=True)
    t.start()
    return t


def test_a_sync_handler_past_its_timeout_counts_as_a_failure(r: redis.Redis) -> None:
    q = _queue(r)
    mid = q.push(b"stuck")
    lost_seen: list[bool] = []

    def stuck(msg: Message) -> None:
        end = time.monotonic() + 5
        while not msg.lost and time.monotonic() < end:
            time.sleep(0.01)
        lost_seen.append(msg.lost)

    w = Worker(q, stuck, retry=Retry(max_attempts=1), handler_timeout=0.2, poll=0.1)
    t = _start(w)
    until(lambda: q.stats()["dead"] == 1)
    until(lambda: bool(lost_seen))
    w.stop()
    t.join(10)
    assert lost_seen == [True]
    [dead] = q.dead_letters()
    assert dead.id == mid
    assert dead.failure is not None
    assert dead.failure.type == f"{HandlerTimeoutError.__module__}.HandlerTimeoutError"
    assert w.counts.snapshot()["timed_out"] == 1


def test_an_operator_requeue_marks_the_running_delivery_lost(r: redis.Redis) -> None:
    q = _queue(r, visibility_timeout=1.0)
    q.push(b"x")
    outcome: list[tuple[bool, bool]] = []
    started = threading.Event()

    def handle(msg: Message) -> None:
        started.set()
        end = time.monotonic() + 10
        while not msg.lost and time.monotonic() < end:
            time.sleep(0.01)
        outcome.append((msg.lost, q.ack(msg)))

    w = Worker(q, handle, poll=0.1)
    t = _start(w)
    started.wait(10)
    # The operator moves the delivery on (as if its lease had run out): a stale receipt.
    expire_all(r, q)
    assert q.requeue_expired() == 1
    until(lambda: bool(outcome))
    w.stop(grace=0.5)
    t.join(10)
    assert outcome[0] == (True, False)  # told, and its ack refused
    assert w.counts.snapshot()["lost"] >= 1


def test_async_handlers_are_refused(r: redis.Redis) -> None:
    async def coro(msg: Message) -> None:
        return None

    with pytest.raises(TypeError, match="asyncio"):
        Worker(_queue(r), coro)


def test_a_lost_delivery_is_reported_to_its_own_worker(r: redis.Redis) -> None:
    q = _queue(r, visibility_timeout=1.0)
    q.push_many([b"a", b"b"])
    outcome: list[tuple[bool, bool]] = []
    guard = threading.Lock()
    started = threading.Semaphore(0)

    def handle(msg: Message) -> None:
        if msg.deliveries > 1:
            return  # the requeued message's new delivery
        started.release()
        end = time.monotonic() + 20
        while not msg.lost and time.monotonic() < end:
            time.sleep(0.01)
        with guard:
            outcome.append((msg.lost, q.ack(msg)))

    workers = [Worker(q, handle, poll=0.1) for _ in range(2)]
    threads = [_start(w) for w in workers]
    for _ in range(2):
        assert started.acquire(timeout=10)
    expire_all(r, q)  # the operator moves both deliveries on: their receipts are stale
    assert q.requeue_expired() == 2
    until(lambda: len(outcome) == 2)
    for w in workers:
        w.stop(grace=0.5)
    for t in threads:
        t.join(10)
    assert outcome == [(True, False), (True, False)]  # told, and the acks refused
    assert [w.counts.snapshot()["lost"] >= 1 for w in workers] == [True, True]
