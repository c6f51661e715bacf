"""The sync Worker in this process, against a real Redis: acks, retries spaced by the
backoff, dead letters with the failure recorded, heartbeats past the visibility timeout,
graceful shutdown, prefetch, handler timeouts. (The asyncio twin: test_worker_async.py;
child processes, signals and kills: test_worker_processes.py.)"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from queue_helpers import expire_all

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


def _wait(cond: Callable[[], bool], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


def _drained(q: ReliableQueue) -> bool:
    s = q.stats()
    return bool(s["pending"] == s["in_flight"] == s["delayed"] == 0)


@pytest.mark.parametrize("prefetch", [None, 16])
def test_every_message_is_handled_and_acked(r: redis.Redis, prefetch: int | None) -> None:
    q = _queue(r)
    ids = set(q.push_many([b"%d" % i for i in range(300)]))
    seen: list[str] = []
    lock = threading.Lock()

    def handle(msg: Message) -> None:
        with lock:
            seen.append(msg.id)

    w = Worker(q, handle, concurrency=4, prefetch=prefetch, poll=0.1)
    t = _start(w)
    _wait(lambda: _drained(q))
    w.stop()
    t.join(10)
    assert not t.is_alive()
    assert set(seen) == ids
    assert len(seen) == len(ids)
    counts = w.counts.snapshot()
    assert counts["acked"] == 300, counts
    assert counts["in_flight"] == 0, counts
    assert q.stats()["dead"] == 0


def test_higher_priorities_are_handled_first(r: redis.Redis) -> None:
    q = _queue(r)
    order = {p: q.push_many([b"%d" % p] * 5, priority=p) for p in (0, 3, 1, 2)}
    seen: list[int] = []
    w = Worker(q, lambda m: seen.append(m.priority), concurrency=1, poll=0.1)
    t = _start(w)
    _wait(lambda: len(seen) == 20)
    w.stop()
    t.join(10)
    assert seen == [3] * 5 + [2] * 5 + [1] * 5 + [0] * 5
    assert all(len(v) == 5 for v in order.values())


def test_a_failing_message_is_retried_with_backoff_then_dead_lettered(r: redis.Redis) -> None:
    q = _queue(r)
    mid = q.push(b"poison")
    times: list[float] = []

    def always_fails(msg: Message) -> None:
        times.append(time.monotonic())
        raise ValueError(f"cannot handle {msg.payload!r}")

    retry = Retry(max_attempts=4, backoff=0.3, max_backoff=0.6, jitter=False)
    w = Worker(q, always_fails, retry=retry, poll=0.1)
    t = _start(w)
    _wait(lambda: q.stats()["dead"] == 1)
    w.stop()
    t.join(10)
    assert len(times) == 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 0.3, 0.6, then capped at 0.6: never early (the delay is server-side); late only by
    # scheduling (generous for a loaded 2-core machine).
    for gap, want in zip(gaps, [0.3, 0.6, 0.6], strict=True):
        assert want - 0.02 <= gap <= want + 1.5, gaps
    [dead] = q.dead_letters()
    assert (dead.id, dead.deliveries, dead.dead_reason) == (mid, 4, "nacked")
    assert dead.failure is not None
    assert dead.failure.type == "ValueError"
    assert dead.failure.message == "cannot handle b'poison'"
    assert "always_fails" in dead.failure.traceback
    assert "pyredis_atomic" not in dead.failure.traceback  # the handler's frames, not ours
    assert abs(dead.failure.at - time.time()) < 60
    assert w.counts.snapshot()["retried"] == 3
    assert w.counts.snapshot()["dead"] == 1


def test_jittered_backoff_stays_within_its_cap() -> None:
    retry = Retry(backoff=1.0, max_backoff=5.0)
    delays = [retry.delay(a) for a in range(1, 10) for _ in range(50)]
    assert all(0.0 <= d <= 5.0 for d in delays)
    assert len({round(d, 3) for d in delays}) > 100  # spread out, not lockstep
    assert Retry(jitter=False, backoff=1.0, max_backoff=5.0).delay(2) == 2.0
    assert Retry(jitter=False, backoff=1.0, max_backoff=5.0).delay(30) == 5.0


def test_a_handler_far_longer_than_the_lease_is_not_redelivered(r: redis.Redis) -> None:
    # Leases far shorter than the work, but long enough for a heartbeat on a loaded machine.
    q = _queue(r, visibility_timeout=1.0)
    mid = q.push(b"long")
    done = threading.Event()
    seen: list[Message] = []

    def slow(msg: Message) -> None:
        seen.append(msg)
        time.sleep(10.0)  # 10x the visibility timeout
        done.set()

    w = Worker(q, slow, poll=0.1)
    t = _start(w)
    _wait(lambda: bool(seen))
    # Another consumer of the same queue keeps trying: it never gets the message.
    twin = ReliableQueue(r, q.name, visibility_timeout=1.0)
    while not done.is_set():
        assert twin.pop() is None
        time.sleep(0.05)
    _wait(lambda: _drained(q))
    w.stop()
    t.join(10)
    assert [m.id for m in seen] == [mid]
    assert seen[0].deliveries == 1
    assert not seen[0].lost
    assert w.counts.snapshot()["acked"] == 1


def test_stop_lets_running_handlers_finish_within_grace(r: redis.Redis) -> None:
    q = _queue(r)
    q.push_many([b"a", b"b"])
    started = threading.Event()

    def handle(msg: Message) -> None:
        started.set()
        time.sleep(0.5)

    w = Worker(q, handle, concurrency=1, poll=0.1)
    t = _start(w)
    started.wait(10)
    w.stop(grace=10)
    t.join(15)
    # The running one finished and was acked; the other was never claimed.
    assert w.counts.snapshot()["acked"] == 1
    s = q.stats()
    assert (s["pending"], s["in_flight"]) == (1, 0)


def test_handlers_past_the_grace_give_their_message_back_uncounted(r: redis.Redis) -> None:
    q = _queue(r)
    mid = q.push(b"slow")
    started = threading.Event()
    release = threading.Event()

    def handle(msg: Message) -> None:
        started.set()
        release.wait(10)

    w = Worker(q, handle, poll=0.1)
    t = _start(w)
    started.wait(10)
    begin = time.monotonic()
    w.stop(grace=0.3)
    t.join(10)
    assert time.monotonic() - begin < 3.0
    release.set()
    assert w.counts.snapshot()["given_back"] == 1
    again = q.pop()
    assert again is not None
    assert again.id == mid
    assert again.deliveries == 1  # the given-back delivery was not an attempt


def test_prefetched_messages_are_given_back_at_shutdown(r: redis.Redis) -> None:
    q = _queue(r)
    q.push_many([b"x"] * 50)
    started = threading.Event()

    def handle(msg: Message) -> None:
        started.set()
        time.sleep(0.3)

    w = Worker(q, handle, concurrency=1, prefetch=20, poll=0.1)
    t = _start(w)
    started.wait(10)
    w.stop(grace=5)
    t.join(10)
    counts = w.counts.snapshot()
    assert counts["acked"] >= 1, counts
    assert counts["given_back"] >= 1, counts
    s = q.stats()
    assert s["in_flight"] == 0, (s, counts)
    assert s["pending"] == 50 - counts["acked"], (s, counts)
    # None of the given-back deliveries counted as an attempt.
    assert all(m.deliveries == 1 for m in q.pop_many(50))


def test_prefetched_messages_keep_their_leases(r: redis.Redis) -> None:
    q = _queue(r, visibility_timeout=1.5)
    q.push_many([b"x"] * 6)
    handled: list[Message] = []

    def handle(msg: Message) -> None:
        time.sleep(0.7)  # the last of the batch starts ~3.5 s after it was claimed
        handled.append(msg)

    w = Worker(q, handle, concurrency=1, prefetch=6, poll=0.1)
    t = _start(w)
    _wait(lambda: _drained(q))
    w.stop()
    t.join(10)
    assert len(handled) == 6
    assert all(m.deliveries == 1 for m in handled)
    assert w.counts.snapshot()["lost"] == 0


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
    _wait(lambda: q.stats()["dead"] == 1)
    _wait(lambda: bool(lost_seen))
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
    _wait(lambda: bool(outcome))
    w.stop(grace=0.5)
    t.join(10)
    assert outcome[0] == (True, False)  # told, and its ack refused
    assert w.counts.snapshot()["lost"] >= 1


def test_bad_arguments_are_refused_before_anything_is_sent(r: redis.Redis) -> None:
    q = _queue(r)
    with pytest.raises(TypeError, match="queue"):
        Worker(object(), print)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="handler"):
        Worker(q, 42)  # type: ignore[arg-type]

    async def coro(msg: Message) -> None:
        return None

    with pytest.raises(TypeError, match="asyncio"):
        Worker(q, coro)
    with pytest.raises(ValueError, match="concurrency"):
        Worker(q, print, concurrency=0)
    with pytest.raises(TypeError, match="concurrency"):
        Worker(q, print, concurrency=True)
    with pytest.raises(ValueError, match="prefetch"):
        Worker(q, print, prefetch=0)
    with pytest.raises(TypeError, match="retry"):
        Worker(q, print, retry=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_attempts"):
        Retry(max_attempts=0)
    with pytest.raises(TypeError, match="jitter"):
        Retry(jitter=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="priority"):
        q.push(b"x", priority=4)
    with pytest.raises(TypeError, match="priority"):
        q.push(b"x", priority=True)
    assert r.exists(q.keys["pending"]) == 0
