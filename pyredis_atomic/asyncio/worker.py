"""``Worker``: the consumer loop around a :class:`ReliableQueue`, written once.

A worker claims messages, runs the handler on each (``concurrency`` at a time), acks the
ones it handled, retries the ones that failed with an exponential, capped, jittered
backoff (:class:`Retry`), dead-letters them with the failure recorded after
``max_attempts``, keeps every lease it holds alive (one heartbeat renewer per process, as
the lock's auto-renew: one batched extend per queue and client for the messages of every
worker), and shuts down gracefully on SIGTERM / SIGINT / :meth:`stop`.

The asyncio module is the source of both APIs; the sync module is generated from it by
``scripts/unasync.py``. What differs (tasks vs threads, cancelling a handler vs setting
``msg.lost``, signal handling, sleeping) lives in the hand-written runtime pair, the
``_worker_runtime`` module next to each driver.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import otel as _otel
from .._core.queue import MAX_BATCH, Message, QueueCore
from .._core.validate import check_int, check_seconds
from .._core.worker import Counts, HandlerTimeoutError, Retry
from . import _worker_runtime as rt
from ._runtime import Background
from .queue import ReliableQueue

__all__ = ["HandlerTimeoutError", "Retry", "Worker"]

log = logging.getLogger("pyredis_atomic.worker")

# Acks of a prefetching worker wait at most this long for more acks to share their call.
ACK_INTERVAL = 0.02
# Pause after a failed claim (the server is unreachable, say) before trying again.
ERROR_PAUSE = 0.5


class _Delivery:
    """One claimed message while this worker holds it. ``settled`` is set exactly once, by
    whoever ends the delivery first: the handler's outcome, the heartbeat (lease lost,
    handler timeout) or the shutdown (given back). Scheduled on the renewer at its
    ``deadline`` when the worker has a ``handler_timeout``."""

    __slots__ = ("deadline", "interrupt", "msg", "settled", "worker")

    def __init__(self, msg: Message, worker: Worker) -> None:
        self.msg = msg
        self.worker = worker
        self.deadline: float | None = None
        self.interrupt: Callable[[], object] = _nothing
        self.settled = False

    @property
    def active(self) -> bool:
        """Whether the renewer still has to look at it (its handler timeout)."""
        return not self.settled


def _nothing() -> None:
    return None


class Worker:
    """Consume ``queue`` with ``handler``: the consumer loop, with its hard parts done.

    ``handler(msg)`` gets each :class:`Message`; returning normally acks it, raising gives
    it back for a retry (see ``retry``). For the asyncio worker the handler is a coroutine
    function and each running handler a task; for the sync worker a plain function and a
    thread.

    - ``concurrency``: handlers running at once.
    - ``retry``: a :class:`Retry` (default ``Retry()``: 5 attempts, 1 s doubling to at most
      300 s, full jitter). ``max_attempts`` counts every delivery, including those that
      ended because a worker died (its lease ran out), so a message that kills its worker
      ends in the dead letters, not in a loop. The last failure is recorded with the dead
      letter (type, message, short traceback, time: ``Message.failure``).
    - ``prefetch``: None claims one message per free handler, acking it in the same call
      as the next claim (``ack_and_pop``). An int N claims up to N messages ahead in one
      call and acks in batches (ack-and-claim in one call): about one round trip per batch.
      Prefetched messages have their leases kept alive, and are given back at shutdown.
    - ``handler_timeout``: seconds a handler may run. asyncio: the handler is cancelled.
      sync: a thread cannot be stopped, so the message is given back at once as a failed
      attempt (with the retry delay), ``msg.lost`` becomes True, and the thread stays busy
      until the handler returns (its result is ignored; it may check ``msg.lost`` to stop
      early). Either way it counts as a failure (``HandlerTimeoutError``).
    - ``grace``: seconds running handlers get to finish at shutdown (``stop(grace=)``
      overrides it).
    - ``poll``: longest wait for a message in one blocking claim; a stopping worker notices
      within it.
    - ``signals``: True (default) installs SIGTERM / SIGINT handlers while :meth:`run`
      runs in the main thread: the first signal stops gracefully, a second exits at once
      (exit code 128 + signal; the leases bring the messages back).

    Heartbeat: one renewer per process (sync: a thread; asyncio: a task per event loop),
    shared by every running worker as the lock's auto-renew is: every ``visibility_timeout
    / 3`` one call extends the leases of every message the workers on this queue and client
    hold (running, prefetched), so a handler may run far longer than the queue's
    ``visibility_timeout``. When an extend finds a delivery gone (the lease ran
    out while the process was paused, or an operator requeued it), the worker logs it, sets
    ``msg.lost`` and (asyncio) cancels the handler; that delivery's ack would be refused.

    Graceful shutdown (first SIGTERM/SIGINT, or :meth:`stop`): claiming stops at once;
    prefetched messages are given back at once; running handlers get ``grace`` seconds;
    then their messages are given back (``nack`` without delay, not counted as attempts)
    and :meth:`run` returns. Nothing is lost in any case: what the worker cannot give back
    returns when its lease runs out.
    """

    def __init__(
        self,
        queue: ReliableQueue,
        handler: Callable[[Message], Any],
        *,
        concurrency: int = 1,
        retry: Retry | None = None,
        prefetch: int | None = None,
        handler_timeout: float | None = None,
        grace: float = 30.0,
        poll: float = 1.0,
        signals: bool = True,
    ) -> None:
        if not isinstance(queue, ReliableQueue):
            raise TypeError(f"queue must be a {ReliableQueue.__module__}.ReliableQueue, "
                            f"got {type(queue).__name__}")
        rt.check_handler(handler)
        self.concurrency = check_int(concurrency, "concurrency", minimum=1, maximum=10_000)
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(f"retry must be a Retry, got {type(retry).__name__}")
        self.retry = retry or Retry()
        self.prefetch = (None if prefetch is None
                         else check_int(prefetch, "prefetch", minimum=1, maximum=MAX_BATCH))
        self.handler_timeout = (None if handler_timeout is None
                                else check_seconds(handler_timeout, "handler_timeout"))
        self.grace = check_seconds(grace, "grace", minimum=0.0)
        self.poll = check_seconds(poll, "poll", minimum=0.01, maximum=60.0)
        if not isinstance(signals, bool):
            raise TypeError(f"signals must be a bool, got {type(signals).__name__}")
        self._signals = signals
        self.queue = queue
        self._q = _with_attempts(queue, self.retry.max_attempts)
        self._core: QueueCore = self._q._spec
        self._handler = handler
        self.counts = Counts()
        self._held: dict[str, _Delivery] = {}
        self._guard = threading.Lock()
        self._stop = rt.Notice()        # stop() or a signal asked for the shutdown
        self._stopping = rt.Notice()    # the shutdown has begun: claim nothing more
        self._fetch_wake = rt.Notice()
        self._buffer = rt.Channel()
        self._acks: list[Message] = []
        self._first_ack = 0.0
        self._running = False
        self._signalled = 0

    def __repr__(self) -> str:
        return (f"Worker(queue={self.queue.name!r}, concurrency={self.concurrency}, "
                f"prefetch={self.prefetch}, retry={self.retry!r})")

    # -- control -------------------------------------------------------------------------
    def stop(self, grace: float | None = None) -> None:
        """Ask :meth:`run` to stop: claiming stops at once, running handlers get ``grace``
        seconds (default: the worker's ``grace``), then their messages are given back.
        Returns at once; safe to call from any thread or a signal handler."""
        if grace is not None:
            self.grace = check_seconds(grace, "grace", minimum=0.0)
        self._stop.set()

    def _on_signal(self, signum: int) -> None:
        self._signalled += 1
        if self._signalled > 1:
            # The second signal: exit now; leases bring the messages back.
            log.warning("second signal %d: exiting at once", signum)
            os._exit(128 + signum)
        log.info("signal %d: stopping (grace %.1f s)", signum, self.grace)
        self._stop.set()

    async def run(self) -> None:
        """Consume until :meth:`stop` (or a signal); return after the graceful shutdown.

        Interrupted (asyncio: the task cancelled; sync: a ``KeyboardInterrupt`` when the
        signal handlers are off), the worker gives back every message it holds at once, then
        re-raises.
        """
        if self._running:
            raise RuntimeError("this Worker is already running")
        self._running = True
        for notice in (self._stop, self._stopping, self._fetch_wake):
            notice.bind()
        restore = rt.install_signals(self._on_signal) if self._signals else _nothing
        tasks: list[Any] = []
        beat = None
        try:
            beat = _Beat.join(self)
            if self.prefetch is None:
                tasks = [rt.spawn(self._consume, name=f"pyredis-atomic-worker-{i}")
                         for i in range(self.concurrency)]
            else:
                tasks = [rt.spawn(self._work, name=f"pyredis-atomic-worker-{i}")
                         for i in range(self.concurrency)]
                tasks.append(rt.spawn(self._fetch, name="pyredis-atomic-worker-fetch"))
            log.info("worker started on queue %r (concurrency %d, prefetch %s)",
                     self.queue.name, self.concurrency, self.prefetch)
            await self._stop.wait(None)
            await self._shutdown(tasks, self.grace)
        except rt.Cancelled:
            await self._shutdown(tasks, 0.0)
            raise
        finally:
            if beat is not None:
                beat.leave(self)
            restore()
            self._running = False
            log.info("worker stopped on queue %r: %s", self.queue.name,
                     self.counts.snapshot())

    async def _shutdown(self, tasks: list[Any], grace: float) -> None:
        self._stopping.set()
        self._stop.set()
        self._buffer.wake()
        self._fetch_wake.set()
        # Prefetched messages that have not started go back at once.
        await self._give_back(self._buffer.take_all())
        still = await rt.join(tasks, grace)
        # Handlers still running past the grace period: their messages go back now.
        with self._guard:
            running = list(self._held.values())
        await self._give_back(running)
        for d in running:
            d.interrupt()
        await rt.abandon(still)
        await self._give_back(self._buffer.take_all())
        await self._flush_acks()

    # -- settling ------------------------------------------------------------------------
    def _hold(self, msg: Message) -> _Delivery:
        d = _Delivery(msg, self)
        with self._guard:
            self._held[msg.receipt] = d
        self.counts.add("claimed")
        return d

    def _hold_many(self, msgs: list[Message]) -> list[_Delivery]:
        """:meth:`_hold` for a claimed batch: one lock and one count for all."""
        ds = [_Delivery(m, self) for m in msgs]
        if ds:
            with self._guard:
                held = self._held
                for d in ds:
                    held[d.msg.receipt] = d
            self.counts.add("claimed", len(ds))
        return ds

    def _settle(self, d: _Delivery) -> bool:
        """Claim the right to end ``d`` (True once, for the first caller)."""
        with self._guard:
            if d.settled:
                return False
            d.settled = True
            self._held.pop(d.msg.receipt, None)
            return True

    async def _give_back(self, ds: list[_Delivery]) -> None:
        for d in ds:
            if not self._settle(d):
                continue
            try:
                await self._q.nack(d.msg, 0.0, counted=False)
            except Exception as exc:  # its lease brings it back
                log.warning("could not give back message %s: %s", d.msg.id, exc)
            self.counts.add("given_back")

    async def _fail(self, d: _Delivery, exc: BaseException) -> None:
        """The handler failed (raised or timed out): retry later, or bury on the last
        attempt with the failure recorded."""
        msg = d.msg
        last = msg.deliveries >= self.retry.max_attempts
        delay = 0.0 if last else self.retry.delay(msg.deliveries)
        try:
            await self._q.nack(msg, delay, failure=exc)
        except Exception as err:  # its lease brings it back, counted as an attempt
            log.warning("could not nack message %s: %s", msg.id, err)
        if isinstance(exc, HandlerTimeoutError):
            self.counts.add("timed_out")
        else:
            self.counts.add("dead" if last else "retried")
        if last:
            log.warning("message %s failed on its last attempt (%d): dead-lettered: %s: %s",
                        msg.id, msg.deliveries, type(exc).__name__, exc)
        else:
            log.info("message %s failed (attempt %d of %d), retry in %.2f s: %s: %s",
                     msg.id, msg.deliveries, self.retry.max_attempts, delay,
                     type(exc).__name__, exc)

    async def _handle(self, d: _Delivery) -> bool:
        """Run the handler on ``d``; True if it succeeded and the delivery is ours to ack."""
        if self.handler_timeout is not None:
            d.deadline = time.monotonic() + self.handler_timeout
            _RENEWER.add(d, d.deadline)
        try:
            with _otel.process_span(self.queue.name, d.msg):
                await rt.run_handler(self._handler, d.msg, d)
        except rt.Interrupted:
            return False  # settled by whoever interrupted it
        except Exception as exc:
            if self._settle(d):
                await self._fail(d, exc)
            return False
        return self._settle(d)  # False: lost or timed out meanwhile (its ack is refused)

    def _acked(self, sent: int, acked: int) -> None:
        if acked:
            self.counts.add("acked", acked)
        if sent > acked:
            # Handled, but the lease had run out before the ack: another delivery exists.
            self.counts.add("lost", sent - acked)
            log.warning("%d ack(s) refused: their leases had run out", sent - acked)

    # -- consuming without prefetch: one claim (with the previous ack) per message --------
    async def _consume(self) -> None:
        ack: Message | None = None
        while not self._stopping.is_set():
            acks = [ack] if ack is not None else None
            try:
                claim = await self._q._claim(1, self.poll, acks)
            except Exception as exc:
                log.warning("claim on queue %r failed: %s", self.queue.name, exc)
                ack = None  # unknown whether it was applied; if not, its lease runs out
                await rt.sleep(ERROR_PAUSE)
                continue
            self._acked(len(acks or ()), claim.acked)
            ack = None
            if not claim.messages:
                continue
            d = self._hold(claim.messages[0])
            if self._stopping.is_set():
                await self._give_back([d])
                break
            if await self._handle(d):
                ack = d.msg
        if ack is not None:
            await self._flush([ack])

    # -- consuming with prefetch: one fetcher claims and acks in batches -----------------
    async def _work(self) -> None:
        # The fetcher is woken only when it has something to do (room for a batch, a batch
        # of acks, the first ack it must send within ACK_INTERVAL), not once per message: a
        # wake-up per message cost a thread (or task) switch per message.
        prefetch = self.prefetch or 1
        threshold = _threshold(prefetch)
        buffer = self._buffer
        while not self._stopping.is_set():
            d = await buffer.get(self.poll)
            if d is None:
                continue
            if prefetch - len(buffer) >= threshold:
                self._fetch_wake.set()  # room for a batch
            if self._stopping.is_set():
                await self._give_back([d])
                break
            if await self._handle(d):
                with self._guard:
                    acks = self._acks
                    if not acks:
                        self._first_ack = time.monotonic()
                    acks.append(d.msg)
                    pending = len(acks)
                if pending == 1 or pending >= threshold:
                    self._fetch_wake.set()

    def _take_acks(self) -> list[Message]:
        with self._guard:
            acks, self._acks = self._acks, []
        return acks

    def _due(self, threshold: int) -> tuple[bool, float | None]:
        """Whether the fetcher should call now, else how long it may wait."""
        room = (self.prefetch or 0) - len(self._buffer)
        with self._guard:
            pending_acks = len(self._acks)
            first = self._first_ack
        if room >= threshold or pending_acks >= threshold:
            return True, None
        if pending_acks:
            left = first + ACK_INTERVAL - time.monotonic()
            return left <= 0, max(0.0, left)
        return False, self.poll

    async def _fetch(self) -> None:
        prefetch = self.prefetch or 1
        threshold = _threshold(prefetch)
        while not self._stopping.is_set():
            self._fetch_wake.clear()
            now, wait = self._due(threshold)
            if not now:
                await self._fetch_wake.wait(wait)
                continue
            acks = self._take_acks()
            room = prefetch - len(self._buffer)
            n = room if room >= threshold else 0
            # Block for new messages only when nothing is buffered (else come back soon).
            timeout = self.poll if n and not len(self._buffer) else None
            try:
                claim = await self._q._claim(n, timeout, acks) if n or acks else None
            except Exception as exc:
                log.warning("claim on queue %r failed: %s", self.queue.name, exc)
                await rt.sleep(ERROR_PAUSE)
                continue
            if claim is None:
                continue
            self._acked(len(acks), claim.acked)
            ds = self._hold_many(claim.messages)
            if self._stopping.is_set():
                await self._give_back(ds)
                break
            self._buffer.put_many(ds)

    async def _flush_acks(self) -> None:
        acks = self._take_acks()
        if acks:
            await self._flush(acks)

    async def _flush(self, acks: list[Message]) -> None:
        try:
            for i in range(0, len(acks), MAX_BATCH):
                batch = acks[i:i + MAX_BATCH]
                claim = await self._q._claim(0, None, batch)
                self._acked(len(batch), claim.acked)
        except Exception as exc:  # not acked: their leases bring them back
            log.warning("could not ack %d message(s): %s", len(acks), exc)

    # -- heartbeat: the process's renewer (see _Beat) calls these ----------------------
    def _holding(self) -> list[_Delivery]:
        with self._guard:
            return [d for d in self._held.values() if not d.settled]

    async def _time_out(self, d: _Delivery) -> None:
        if not self._settle(d):
            return
        d.msg._mark_lost()
        d.interrupt()
        log.warning("handler of message %s ran past handler_timeout (%.1f s)", d.msg.id,
                    self.handler_timeout or 0.0)
        await self._fail(d, HandlerTimeoutError(
            f"handler ran past handler_timeout={self.handler_timeout} s"))

    def _lost(self, d: _Delivery) -> None:
        if not self._settle(d):
            return
        d.msg._mark_lost()
        self.counts.add("lost")
        log.warning("message %s (delivery %d) was lost: its lease ran out or it was "
                    "requeued; its ack will be refused", d.msg.id, d.msg.deliveries)
        d.interrupt()


class _Beat:
    """The heartbeat of every running :class:`Worker` of this process (of this event loop,
    for the asyncio API) on one queue through one client: every ``visibility_timeout / 3``
    one script call per :data:`MAX_BATCH` messages extends the leases of every message those
    workers hold (running and prefetched). Each is an item of :data:`_RENEWER`, the
    process's one renewer (as the lock's auto-renew: one thread per process, one task per
    event loop), which also times out handlers at their deadline."""

    __slots__ = ("active", "interval", "key", "queue", "workers")

    def __init__(self, key: tuple[Any, ...], queue: ReliableQueue, interval: float) -> None:
        self.key = key
        self.queue = queue
        self.interval = interval
        self.workers: list[Worker] = []
        self.active = True

    @staticmethod
    def join(worker: Worker) -> _Beat:
        """The beat ``worker`` joins (created and scheduled if it is the first)."""
        q, core = worker._q, worker._core
        key = (rt.scope(), id(q._client), id(q._registry), core._extend_keys, core.lease_ms)
        with _BEATS_GUARD:
            beat = _BEATS.get(key)
            fresh = beat is None
            if beat is None:
                interval = max(0.01, core.visibility_timeout / 3.0)
                beat = _BEATS[key] = _Beat(key, q, interval)
            beat.workers.append(worker)
        if fresh:
            _RENEWER.add(beat, time.monotonic() + beat.interval)
        return beat

    def leave(self, worker: Worker) -> None:
        """``worker`` stopped: its messages are no longer extended."""
        with _BEATS_GUARD:
            if worker in self.workers:
                self.workers.remove(worker)
            if not self.workers:
                self._end()

    def _end(self) -> None:
        # Under _BEATS_GUARD. A worker joining from now on starts a new beat.
        self.active = False
        if _BEATS.get(self.key) is self:
            del _BEATS[self.key]

    def _members(self) -> list[Worker]:
        with _BEATS_GUARD:
            if not self.workers:
                self._end()
            return list(self.workers)

    async def beat(self) -> float | None:
        """Extend every held lease; the next due time, or None when no worker is left."""
        workers = self._members()
        if not workers:
            return None
        live = [d for w in workers for d in w._holding()]
        q = self.queue
        core = workers[0]._core
        for i in range(0, len(live), MAX_BATCH):
            batch = live[i:i + MAX_BATCH]
            try:
                current = await q._run(q._client, core.extend_many_call([d.msg for d in batch]))
            except Exception as exc:  # tried again at the next beat, well inside the lease
                log.warning("heartbeat on queue %r failed: %s", q.name, exc)
                continue
            for d, ok in zip(batch, current, strict=True):
                if not ok:
                    d.worker._lost(d)
        return time.monotonic() + self.interval


async def _renew(item: _Beat | _Delivery) -> float | None:
    """One step of the renewer: a beat, or a handler's deadline. Never raises (a failure
    must not stop the renewer, which serves every worker of the process)."""
    try:
        if isinstance(item, _Delivery):
            await item.worker._time_out(item)
            return None
        return await item.beat()
    except Exception:
        log.exception("worker heartbeat step failed")
        return time.monotonic() + item.interval if isinstance(item, _Beat) else None


# Every running Worker of the process is kept alive by one renewer (see _Beat).
_BEATS: dict[tuple[Any, ...], _Beat] = {}
_BEATS_GUARD = threading.Lock()
_RENEWER = Background(_renew, "pyredis-atomic-worker-renewer")


def _threshold(prefetch: int) -> int:
    """How many free places in the buffer (or acks waiting) make a prefetching worker's
    fetcher call: half the prefetch, so one batch is claimed while the other is handled."""
    return max(1, prefetch // 2)


def _with_attempts(queue: ReliableQueue, max_attempts: int) -> ReliableQueue:
    """``queue``, or a copy of it whose calls bury messages after ``max_attempts``
    deliveries (the claim's expired-lease check and the nack use the queue's setting)."""
    if queue.max_deliveries == max_attempts:
        return queue
    twin = copy.copy(queue)
    twin._spec = QueueCore(queue.name, visibility_timeout=queue.visibility_timeout,
                           max_deliveries=max_attempts, prefix=queue.prefix)
    return twin
