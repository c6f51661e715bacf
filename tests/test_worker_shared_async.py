"""The Worker in this process, against a real Redis: acks, priorities, retries spaced by the
backoff, dead letters with the failure recorded, heartbeats past the visibility timeout,
graceful shutdown, prefetch, bad arguments.

Shared by the two APIs: ``scripts/unasync.py`` writes ``test_worker_shared_sync.py`` from
``test_worker_shared_async.py`` (handlers: ``async def`` here, plain functions there;
``run()``: a task here, a thread there, through ``twin_async``/``twin_sync``). What truly
differs is hand-written: ``test_worker.py`` (a sync handler is never interrupted: it is
told through ``msg.lost``), ``test_worker_async.py`` (handlers cancelled, ``run()``
cancelled), ``test_worker_processes.py`` (child processes, signals and kills).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from twin_async import Event, sleep, spawn, until

from pyredis_atomic.asyncio import Message, ReliableQueue, Retry, Worker

_names = itertools.count()


def _queue(r: Any, **kwargs: Any) -> ReliableQueue:
    return ReliableQueue(r, f"worker-{next(_names)}", **kwargs)


async def _drained(q: ReliableQueue) -> bool:
    s = await q.stats()
    return bool(s["pending"] == s["in_flight"] == s["delayed"] == 0)


async def _dead(q: ReliableQueue) -> int:
    return int((await q.stats())["dead"])


async def _ignore(msg: Message) -> None:
    """A valid handler of the API under test."""


@pytest.mark.parametrize("concurrency", [4, 8])
@pytest.mark.parametrize("prefetch", [None, 16])
async def test_every_message_is_handled_and_acked(async_redis_client: Any, prefetch: int | None,
                                                  concurrency: int) -> None:
    q = _queue(async_redis_client)
    ids = set(await q.push_many([b"%d" % i for i in range(300)]))
    seen: list[str] = []

    async def handle(msg: Message) -> None:
        seen.append(msg.id)  # (list.append is atomic: no lock needed between threads)

    w = Worker(q, handle, concurrency=concurrency, prefetch=prefetch, poll=0.1)
    running = spawn(w.run)
    await until(lambda: _drained(q))
    w.stop()
    await running.result(10)  # run() returned
    assert set(seen) == ids
    assert len(seen) == len(ids)
    counts = w.counts.snapshot()
    assert counts["acked"] == 300, counts
    assert counts["in_flight"] == 0, counts
    assert (await q.stats())["dead"] == 0


async def test_higher_priorities_are_handled_first(async_redis_client: Any) -> None:
    q = _queue(async_redis_client)
    order = {p: await q.push_many([b"%d" % p] * 5, priority=p) for p in (0, 3, 1, 2)}
    seen: list[int] = []

    async def handle(msg: Message) -> None:
        seen.append(msg.priority)

    w = Worker(q, handle, concurrency=1, poll=0.1)
    running = spawn(w.run)
    await until(lambda: len(seen) == 20)
    w.stop()
    await running.result(10)
    assert seen == [3] * 5 + [2] * 5 + [1] * 5 + [0] * 5
    assert all(len(v) == 5 for v in order.values())


@pytest.mark.parametrize(
    ("error", "attempts", "gaps", "failure"),
    [
        (ValueError("cannot handle b'poison'"), 4, [0.3, 0.6, 0.6],
         ("ValueError", "cannot handle b'poison'")),
        (KeyError("missing"), 3, [0.3, 0.6], ("KeyError", "'missing'")),
    ],
)
async def test_a_failing_message_is_retried_with_backoff_then_dead_lettered(
    async_redis_client: Any, error: Exception, attempts: int, gaps: list[float],
    failure: tuple[str, str],
) -> None:
    q = _queue(async_redis_client)
    mid = await q.push(b"poison")
    times: list[float] = []

    async def always_fails(msg: Message) -> None:
        times.append(time.monotonic())
        raise type(error)(*error.args)  # a new one each time: its own traceback

    retry = Retry(max_attempts=attempts, backoff=0.3, max_backoff=0.6, jitter=False)
    w = Worker(q, always_fails, retry=retry, poll=0.1)
    running = spawn(w.run)
    await until(lambda: _dead(q))
    w.stop()
    await running.result(10)
    assert len(times) == attempts
    seen_gaps = [b - a for a, b in itertools.pairwise(times)]
    # 0.3, 0.6, then capped at 0.6: never early (the delay is server-side); late only by
    # scheduling (generous for a loaded 2-core machine).
    for gap, want in zip(seen_gaps, gaps, strict=True):
        assert want - 0.02 <= gap <= want + 1.5, seen_gaps
    [dead] = await q.dead_letters()
    assert (dead.id, dead.deliveries, dead.dead_reason) == (mid, attempts, "nacked")
    assert dead.failure is not None
    assert (dead.failure.type, dead.failure.message) == failure
    assert "always_fails" in dead.failure.traceback
    assert "pyredis_atomic" not in dead.failure.traceback  # the handler's frames, not ours
    assert abs(dead.failure.at - time.time()) < 60
    assert w.counts.snapshot()["retried"] == attempts - 1
    assert w.counts.snapshot()["dead"] == 1


def test_jittered_backoff_stays_within_its_cap() -> None:
    retry = Retry(backoff=1.0, max_backoff=5.0)
    delays = [retry.delay(a) for a in range(1, 10) for _ in range(50)]
    assert all(0.0 <= d <= 5.0 for d in delays)
    assert len({round(d, 3) for d in delays}) > 100  # spread out, not lockstep
    assert Retry(jitter=False, backoff=1.0, max_backoff=5.0).delay(2) == 2.0
    assert Retry(jitter=False, backoff=1.0, max_backoff=5.0).delay(30) == 5.0


async def test_a_handler_far_longer_than_the_lease_is_not_redelivered(
    async_redis_client: Any,
) -> None:
    # Leases far shorter than the work (1/5), but long enough for a heartbeat on a loaded
    # machine: 2 s, a heartbeat every 0.67 s (with 1 s, a 0.67 s stall of the event loop
    # on the loaded 2-core CI machine lost the lease, ~1 run in 5).
    q = _queue(async_redis_client, visibility_timeout=2.0)
    mid = await q.push(b"long")
    done = Event()
    seen: list[Message] = []

    async def slow(msg: Message) -> None:
        seen.append(msg)
        await sleep(10.0)  # 5x the visibility timeout
        done.set()

    w = Worker(q, slow, poll=0.1)
    running = spawn(w.run)
    await until(lambda: bool(seen))
    # Another consumer of the same queue keeps trying: it never gets the message.
    twin = ReliableQueue(async_redis_client, q.name, visibility_timeout=2.0)
    while not done.is_set():
        assert await twin.pop() is None
        await sleep(0.05)
    await until(lambda: _drained(q))
    w.stop()
    await running.result(10)
    assert [m.id for m in seen] == [mid]
    assert seen[0].deliveries == 1
    assert not seen[0].lost
    assert w.counts.snapshot()["acked"] == 1


async def test_stop_lets_running_handlers_finish_within_grace(async_redis_client: Any) -> None:
    q = _queue(async_redis_client)
    await q.push_many([b"a", b"b"])
    started = Event()

    async def handle(msg: Message) -> None:
        started.set()
        await sleep(0.5)

    w = Worker(q, handle, concurrency=1, poll=0.1)
    running = spawn(w.run)
    assert await started.wait(10)
    w.stop(grace=10)
    await running.result(15)
    # The running one finished and was acked; the other was never claimed.
    assert w.counts.snapshot()["acked"] == 1
    s = await q.stats()
    assert (s["pending"], s["in_flight"]) == (1, 0)


async def test_handlers_past_the_grace_give_their_message_back_uncounted(
    async_redis_client: Any,
) -> None:
    q = _queue(async_redis_client)
    mid = await q.push(b"slow")
    started = Event()
    release = Event()

    async def handle(msg: Message) -> None:
        started.set()
        await release.wait(10)

    w = Worker(q, handle, poll=0.1)
    running = spawn(w.run)
    assert await started.wait(10)
    begin = time.monotonic()
    w.stop(grace=0.3)
    await running.result(10)
    assert time.monotonic() - begin < 3.0
    release.set()
    assert w.counts.snapshot()["given_back"] == 1
    again = await q.pop()
    assert again is not None
    assert again.id == mid
    assert again.deliveries == 1  # the given-back delivery was not an attempt


async def test_prefetched_messages_are_given_back_at_shutdown(async_redis_client: Any) -> None:
    q = _queue(async_redis_client)
    await q.push_many([b"x"] * 50)
    started = Event()

    async def handle(msg: Message) -> None:
        started.set()
        await sleep(0.3)

    w = Worker(q, handle, concurrency=1, prefetch=20, poll=0.1)
    running = spawn(w.run)
    assert await started.wait(10)
    w.stop(grace=5)
    await running.result(10)
    counts = w.counts.snapshot()
    assert counts["acked"] >= 1, counts
    assert counts["given_back"] >= 1, counts
    s = await q.stats()
    assert s["in_flight"] == 0, (s, counts)
    assert s["pending"] == 50 - counts["acked"], (s, counts)
    # None of the given-back deliveries counted as an attempt.
    assert all(m.deliveries == 1 for m in await q.pop_many(50))


async def test_prefetched_messages_keep_their_leases(async_redis_client: Any) -> None:
    q = _queue(async_redis_client, visibility_timeout=1.5)
    await q.push_many([b"x"] * 6)
    handled: list[Message] = []

    async def handle(msg: Message) -> None:
        await sleep(0.7)  # the last of the batch starts ~3.5 s after it was claimed
        handled.append(msg)

    w = Worker(q, handle, concurrency=1, prefetch=6, poll=0.1)
    running = spawn(w.run)
    await until(lambda: _drained(q))
    w.stop()
    await running.result(10)
    assert len(handled) == 6
    assert all(m.deliveries == 1 for m in handled)
    assert w.counts.snapshot()["lost"] == 0


async def test_bad_arguments_are_refused_before_anything_is_sent(
    async_redis_client: Any,
) -> None:
    q = _queue(async_redis_client)
    with pytest.raises(TypeError, match="queue"):
        Worker(object(), _ignore)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="handler"):
        Worker(q, 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="concurrency"):
        Worker(q, _ignore, concurrency=0)
    with pytest.raises(TypeError, match="concurrency"):
        Worker(q, _ignore, concurrency=True)
    with pytest.raises(ValueError, match="prefetch"):
        Worker(q, _ignore, prefetch=0)
    with pytest.raises(TypeError, match="retry"):
        Worker(q, _ignore, retry=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_attempts"):
        Retry(max_attempts=0)
    with pytest.raises(TypeError, match="jitter"):
        Retry(jitter=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="priority"):
        await q.push(b"x", priority=4)
    with pytest.raises(TypeError, match="priority"):
        await q.push(b"x", priority=True)
    assert await async_redis_client.exists(q.keys["pending"]) == 0
