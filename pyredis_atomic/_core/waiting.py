"""How a flow waits for a wake-up signal without busy polling and without overrunning.

Waiters block on a per-primitive signal list (``BLPOP``) that the releasing script pushes
to. Two facts shape the plan:

* Redis 7.0 checks blocking timeouts on its 10 Hz cron, so a ``BLPOP`` with timeout t may
  return up to ~100 ms after t. To honour the caller's deadline, a flow blocks only until
  ``CRON_SLACK`` before it and covers the rest with short sleeps and re-checks.
* A signal can be lost (its holder crashed, a waiter timed out after taking it), so every
  block is also bounded by a *hint*: the time until the holder's lease runs out, after which
  the resource is free whether anyone signalled or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from .calls import Block, Call, Effect, Sleep

__all__ = ["CRON_SLACK", "Deadline", "wait_step", "wait_then"]

T = TypeVar("T")

CRON_SLACK = 0.11
TAIL_POLL = 0.005
MIN_BLOCK = 0.01


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


def wait_then(step: Block | Sleep, call: Call[T]) -> Generator[Effect, Any, T]:
    """Perform the wait ``step``, then ``call``; the call's reply. After a ``BLPOP`` the
    call rides behind it (``Block.then``: one round trip, run the moment the wait ends);
    after a sleep it is sent on its own. Flows use it as ``reply = yield from ...``."""
    if isinstance(step, Block):
        reply: T = yield Block(step.key, step.seconds, then=call)
        return reply
    yield step
    reply = yield call
    return reply
