"""How a flow waits for a wake-up signal without busy polling and without overrunning.

Waiters block on a per-primitive signal list (``BLPOP``) that the releasing script pushes
to. Two facts shape the plan:

* Redis 7.0 checks blocking timeouts on its 10 Hz cron, so a ``BLPOP`` with timeout t may
  return up to ~100 ms after t. To honour the caller's deadline, a flow blocks only until
  ``CRON_SLACK`` before it and covers the rest with short sleeps and re-checks.
* A signal can be lost (its holder crashed, a waiter timed out after taking it), so every
  block is also bounded by a *hint*: the time until the holder's lease runs out, after which
  the resource is free whether anyone signalled or not.

A wait also outlives a dropped connection (a failover, a server restart, a short
partition): a wait that fails on the connection is retried within the caller's timeout,
with short pauses, the same for the lock, the semaphore and the queue's blocking pop
(issue 14). The call sent behind a failed wait may or may not have run; each is safe to
re-send (a lock or semaphore attempt re-sends its token or permit id; a claim whose reply
was lost leaves its messages leased, delivered again when the lease runs out).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from ..errors import ConnectionLostError, ReplyTimeoutError
from .calls import Block, Call, Effect, Sleep

__all__ = ["CRON_SLACK", "OUTAGE_LIMIT", "Deadline", "wait_step", "wait_then"]

T = TypeVar("T")

CRON_SLACK = 0.11
TAIL_POLL = 0.005
MIN_BLOCK = 0.01
# Pauses between attempts while the connection is down: from RECONNECT_FIRST, doubling,
# to RECONNECT_MAX (a failover takes a few seconds; retrying faster only adds load).
RECONNECT_FIRST = 0.05
RECONNECT_MAX = 0.5
# A wait with no deadline gives up after this long without a working connection (the
# caller learns the server is gone instead of hanging on for ever).
OUTAGE_LIMIT = 30.0


class Deadline:
    """A point in time on the monotonic clock, or none (wait forever)."""

    def __init__(self, timeout: float | None, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self.at = None if timeout is None else clock() + timeout

    def remaining(self) -> float | None:
        """Seconds left (may be negative), or None when there is no deadline."""
        return None if self.at is None else self.at - self._clock()

    def expired(self) -> bool:
        """True once the deadline has passed."""
        left = self.remaining()
        return left is not None and left <= 0


def wait_step(deadline: Deadline, signal_key: str, hint: float | None) -> Block | Sleep | None:
    """The next wait for a flow that found its resource busy; None if the deadline passed.

    ``hint``: seconds until the resource frees itself (a lease's remaining time), if known.
    """
    remaining = deadline.remaining()
    if remaining is not None and remaining <= 0:
        return None
    limits = [x for x in (hint, None if remaining is None else remaining - CRON_SLACK)
              if x is not None]
    span = min(limits) if limits else None
    if span is None:
        return Block(signal_key, 3600.0)  # drivers cut it to their slice
    if span >= MIN_BLOCK:
        return Block(signal_key, span)
    # Inside the last ~100 ms before the deadline (or the lease's end): short sleeps.
    tail = TAIL_POLL if remaining is None else min(TAIL_POLL, max(remaining, 0.0))
    if hint is not None:
        tail = min(tail, max(hint, 0.001))
    return Sleep(tail)


def wait_then(step: Block | Sleep, call: Call[T],
              deadline: Deadline | None = None) -> Generator[Effect, Any, T]:
    """Perform the wait ``step``, then ``call``; the call's reply. After a ``BLPOP`` the
    call rides behind it (``Block.then``: one round trip, run the moment the wait ends);
    after a sleep it is sent on its own. Flows use it as ``reply = yield from ...``.

    With ``deadline``: a wait or call that fails on the connection is re-sent (the call
    alone, after a pause) until it answers, the deadline passes or ``OUTAGE_LIMIT`` of
    failures without a deadline; then the last error is raised. Without it, the first
    error is raised."""
    try:
        if isinstance(step, Block):
            reply: T = yield Block(step.key, step.seconds, then=call)
            return reply
        yield step
        reply = yield call
        return reply
    except (ConnectionLostError, ReplyTimeoutError) as exc:
        if deadline is None:
            raise
        first = exc
    reply = yield from _reconnect(call, deadline, first)
    return reply


def _reconnect(call: Call[T], deadline: Deadline,
               error: Exception) -> Generator[Effect, Any, T]:
    """Re-send ``call`` after pauses until it answers (see :func:`wait_then`); a give-up
    raises the latest connection error."""
    pause = RECONNECT_FIRST
    outage = Deadline(OUTAGE_LIMIT) if deadline.at is None else deadline
    while True:
        left = outage.remaining()
        if left is not None and left <= 0:
            raise error
        yield Sleep(max(0.001, min(pause, left)) if left is not None else pause)
        pause = min(pause * 2, RECONNECT_MAX)
        try:
            reply: T = yield call
        except (ConnectionLostError, ReplyTimeoutError) as exc:
            error = exc
            continue
        return reply
