"""The sync Workers' shared heartbeat renewer: a delivery found gone is reported to its own
worker through ``msg.lost`` (a sync handler is never interrupted). Real Redis.

What both APIs share (one renewer for every worker, one extend call for their messages, the
renewer ending and starting again) is in ``test_worker_renewer_shared_async.py`` and its
generated sync twin; the asyncio case of a lost delivery (the handler cancelled) is in
``test_worker_renewer_async.py``."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from queue_helpers import expire_all

from pyredis_atomic import Message, ReliableQueue, Worker

_names = itertools.count()


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def _queue(r: redis.Redis, **kwargs: Any) -> ReliableQueue:
    return ReliableQueue(r, f"renewer-{next(_names)}", **kwargs)


def _start(worker: Worker) -> threading.Thread:
    t = threading.Thread(target=worker.run, daemon=True)
    t.start()
    return t


def _wait(cond: Callable[[], bool], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


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
    _wait(lambda: len(outcome) == 2)
    for w in workers:
        w.stop(grace=0.5)
    for t in threads:
        t.join(10)
    assert outcome == [(True, False), (True, False)]  # told, and the acks refused
    assert [w.counts.snapshot()["lost"] >= 1 for w in workers] == [True, True]
