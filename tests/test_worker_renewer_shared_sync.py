# GENERATED from tests/test_worker_renewer_shared_async.py by scripts/unasync.py: do not edit.
"""The Workers of one process share one heartbeat renewer (sync: one thread per process;
asyncio: one task per event loop, as the lock's auto-renew), which extends the leases of
every worker's messages on a queue in one call, and ends when no worker is left. Real Redis.

Shared by the two APIs: ``scripts/unasync.py`` writes ``test_worker_renewer_shared_sync.py``
from ``test_worker_renewer_shared_async.py`` (workers run in tasks here, threads there, the
renewer found by name among them, through ``twin_async``/``twin_sync``). What a lost
delivery does to its handler truly differs: ``test_worker.py`` (a sync handler is told
through ``msg.lost``), ``test_worker_async.py`` (its handler is cancelled).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twin_sync import Event, running, sleep, spawn, until

from pyredis_atomic import Message, ReliableQueue, Worker

_names = itertools.count()
RENEWER = "pyredis-atomic-worker-renewer"


def _queue(r: Any, **kwargs: Any) -> ReliableQueue:
    return ReliableQueue(r, f"renewer-{next(_names)}", **kwargs)


@pytest.fixture  # asyncio_mode = auto: an async fixture here
def slowlog(redis_client: Any) -> Iterator[Callable[[], Any]]:
    """Every command the server runs from now on, as its space-joined arguments."""
    r = redis_client
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
        redis_client: Any, slowlog: Callable[[], Any]) -> None:
    r = redis_client
    q = _queue(r, visibility_timeout=2.0)
    q.push_many([b"a", b"b"])
    seen: list[Message] = []
    release = Event()

    def handle(msg: Message) -> None:
        seen.append(msg)
        release.wait(30)

    workers = [Worker(q, handle, poll=0.1) for _ in range(2)]
    runs = [spawn(w.run) for w in workers]
    until(lambda: len(seen) == 2)
    twin = ReliableQueue(r, q.name, visibility_timeout=2.0)
    # 3x the visibility timeout (a 2 s lease: the loaded machine's stalls stay well inside
    # it): both leases must be renewed several times meanwhile.
    end = time.monotonic() + 6.0
    while time.monotonic() < end:
        assert twin.pop() is None
        assert len(running(RENEWER)) == 1
        sleep(0.05)
    assert running("heartbeat") == []
    receipts = [m.receipt.encode() for m in seen]
    both = [c for c in slowlog() if all(rc in c for rc in receipts)]
    # The extends of both workers' messages went out together, at every beat.
    assert len(both) >= 2, both
    release.set()
    until(lambda: sum(w.counts.snapshot()["acked"] for w in workers) == 2)
    for w in workers:
        w.stop()
    for run in runs:
        run.result(10)
    assert [m.deliveries for m in seen] == [1, 1]
    assert not any(m.lost for m in seen)
    assert q.stats()["in_flight"] == 0


def test_workers_on_two_queues_share_the_renewer_too(redis_client: Any) -> None:
    r = redis_client
    queues = [_queue(r, visibility_timeout=2.0) for _ in range(2)]
    release = Event()
    started: list[Message] = []

    def handle(msg: Message) -> None:
        started.append(msg)
        release.wait(30)

    for q in queues:
        q.push(b"x")
    workers = [Worker(q, handle, poll=0.1) for q in queues]
    runs = [spawn(w.run) for w in workers]
    until(lambda: len(started) == 2)
    twins = [ReliableQueue(r, q.name, visibility_timeout=2.0) for q in queues]
    end = time.monotonic() + 5.0
    while time.monotonic() < end:
        for t in twins:
            assert t.pop() is None
        assert len(running(RENEWER)) == 1
        sleep(0.05)
    release.set()
    for w in workers:
        until(lambda w=w: w.counts.snapshot()["acked"] == 1)  # type: ignore[misc]
        w.stop()
    for run in runs:
        run.result(10)
    assert [m.deliveries for m in started] == [1, 1]


def test_the_renewer_ends_when_no_worker_is_left_and_starts_again(
        redis_client: Any) -> None:
    q = _queue(redis_client, visibility_timeout=0.5)

    def handle(msg: Message) -> None:
        return None

    w = Worker(q, handle, poll=0.1)
    run = spawn(w.run)
    until(lambda: len(running(RENEWER)) == 1)
    w.stop()
    run.result(10)
    # It idles a few seconds (the runtimes' IDLE) or until its next due time, then ends.
    until(lambda: not running(RENEWER), timeout=60)
    # A new worker starts it again.
    w2 = Worker(q, handle, poll=0.1)
    run2 = spawn(w2.run)
    q.push(b"y")
    until(lambda: w2.counts.snapshot()["acked"] == 1)
    until(lambda: len(running(RENEWER)) == 1)
    w2.stop()
    run2.result(10)
