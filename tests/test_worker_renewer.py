"""The sync Workers of one process share one heartbeat renewer (one thread, as the lock's
auto-renew), which extends the leases of every worker's messages on a queue in one call;
a delivery found gone is still reported to its own worker (``msg.lost``). Real Redis.
(The asyncio twin: test_worker_renewer_async.py.)"""

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
RENEWER = "pyredis-atomic-worker-renewer"


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


def _renewers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == RENEWER]


def _heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "heartbeat" in t.name]


@pytest.fixture
def slowlog(r: redis.Redis) -> Iterator[Callable[[], list[bytes]]]:
    """Every command the server runs from now on, as its space-joined arguments."""
    old = r.config_get("slowlog-*")
    r.config_set("slowlog-log-slower-than", 0)
    r.config_set("slowlog-max-len", 100000)
    r.slowlog_reset()

    def read() -> list[bytes]:
        return [e["command"] for e in r.slowlog_get(100000)]

    try:
        yield read
    finally:
        for name, value in old.items():
            r.config_set(str(name), str(value))
        r.slowlog_reset()


def test_two_workers_share_one_renewer_and_one_extend_call(
        r: redis.Redis, slowlog: Callable[[], list[bytes]]) -> None:
    q = _queue(r, visibility_timeout=2.0)
    q.push_many([b"a", b"b"])
    seen: list[Message] = []
    guard = threading.Lock()
    release = threading.Event()

    def handle(msg: Message) -> None:
        with guard:
            seen.append(msg)
        release.wait(30)

    workers = [Worker(q, handle, poll=0.1) for _ in range(2)]
    threads = [_start(w) for w in workers]
    _wait(lambda: len(seen) == 2)
    twin = ReliableQueue(r, q.name, visibility_timeout=2.0)
    # 3x the visibility timeout (a 2 s lease: the loaded machine's stalls stay well inside
    # it): both leases must be renewed several times meanwhile.
    end = time.monotonic() + 6.0
    while time.monotonic() < end:
        assert twin.pop() is None
        assert len(_renewers()) == 1
        time.sleep(0.05)
    assert _heartbeat_threads() == []
    receipts = [m.receipt.encode() for m in seen]
    both = [c for c in slowlog() if all(rc in c for rc in receipts)]
    # The extends of both workers' messages went out together, at every beat.
    assert len(both) >= 2, both
    release.set()
    _wait(lambda: sum(w.counts.snapshot()["acked"] for w in workers) == 2)
    for w in workers:
        w.stop()
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    assert [m.deliveries for m in seen] == [1, 1]
    assert not any(m.lost for m in seen)
    assert q.stats()["in_flight"] == 0


def test_workers_on_two_queues_share_the_renewer_too(r: redis.Redis) -> None:
    queues = [_queue(r, visibility_timeout=2.0) for _ in range(2)]
    release = threading.Event()
    started: list[Message] = []

    def handle(msg: Message) -> None:
        started.append(msg)
        release.wait(30)

    for q in queues:
        q.push(b"x")
    workers = [Worker(q, handle, poll=0.1) for q in queues]
    threads = [_start(w) for w in workers]
    _wait(lambda: len(started) == 2)
    twins = [ReliableQueue(r, q.name, visibility_timeout=2.0) for q in queues]
    end = time.monotonic() + 5.0
    while time.monotonic() < end:
        assert all(t.pop() is None for t in twins)
        assert len(_renewers()) == 1
        time.sleep(0.05)
    release.set()
    for w in workers:
        _wait(lambda w=w: w.counts.snapshot()["acked"] == 1)  # type: ignore[misc]
        w.stop()
    for t in threads:
        t.join(10)
    assert [m.deliveries for m in started] == [1, 1]


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


def test_the_renewer_thread_ends_when_no_worker_is_left(r: redis.Redis) -> None:
    q = _queue(r, visibility_timeout=0.5)
    w = Worker(q, lambda msg: None, poll=0.1)
    t = _start(w)
    _wait(lambda: len(_renewers()) == 1)
    w.stop()
    t.join(10)
    # It idles a few seconds (pyredis_atomic._runtime.IDLE), then exits.
    _wait(lambda: not _renewers(), timeout=60)
    # A new worker starts it again.
    w2 = Worker(q, lambda msg: None, poll=0.1)
    t2 = _start(w2)
    q.push(b"y")
    _wait(lambda: w2.counts.snapshot()["acked"] == 1)
    _wait(lambda: len(_renewers()) == 1)
    w2.stop()
    t2.join(10)
