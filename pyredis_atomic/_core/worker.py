"""The queue worker's I/O-free parts: the retry policy and the worker's counters.

The consumer loop itself is :mod:`pyredis_atomic.asyncio.worker` (the source) and its
generated sync twin :mod:`pyredis_atomic.worker`.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from .validate import check_int, check_seconds

__all__ = ["Counts", "HandlerTimeoutError", "Retry"]


class HandlerTimeoutError(TimeoutError):
    """A handler ran past the worker's ``handler_timeout`` (recorded as its failure)."""


@dataclass(frozen=True)
class Retry:
    """How a :class:`~pyredis_atomic.Worker` retries a message whose handler raised.

    ``max_attempts``: deliveries of a message before it goes to the dead letters, whatever
    ended them (a handler that raised, or a worker that died: its lease expired), so a
    poison message that kills its worker ends dead too. ``backoff``: the delay before the
    second delivery, in seconds; it doubles with each attempt (exponential), capped at
    ``max_backoff``. ``jitter=True`` (full jitter): the delay is drawn uniformly between 0
    and that value, so failed messages of many workers do not come back in lockstep.
    """

    max_attempts: int = 5
    backoff: float = 1.0
    max_backoff: float = 300.0
    jitter: bool = True

    def __post_init__(self) -> None:
        check_int(self.max_attempts, "max_attempts", minimum=1, maximum=1_000_000)
        check_seconds(self.backoff, "backoff", minimum=0.0)
        check_seconds(self.max_backoff, "max_backoff", minimum=0.0)
        if not isinstance(self.jitter, bool):
            raise TypeError(f"jitter must be a bool, got {type(self.jitter).__name__}")

    def delay(self, attempt: int, rand: random.Random | None = None) -> float:
        """Seconds before the delivery after failed attempt number ``attempt`` (1-based)."""
        check_int(attempt, "attempt", minimum=1)
        cap = min(self.max_backoff, self.backoff * 2.0 ** min(attempt - 1, 64))
        if not self.jitter:
            return cap
        return (rand or random).uniform(0.0, cap)


@dataclass
class Counts:
    """A worker's counters since it started (thread-safe increments).

    ``claimed``: deliveries received; ``acked``: handled and acknowledged; ``retried``:
    handler failures given back with a delay; ``dead``: failures on the last attempt
    (dead-lettered with the failure recorded); ``lost``: deliveries whose lease was found
    gone by the heartbeat (their ack is refused); ``timed_out``: handlers past
    ``handler_timeout``; ``given_back``: deliveries returned unfinished at shutdown (not
    counted as attempts); ``in_flight``: claimed and not yet settled.
    """

    claimed: int = 0
    acked: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0
    timed_out: int = 0
    given_back: int = 0
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name``."""
        with self._guard:
            setattr(self, name, getattr(self, name) + n)

    @property
    def in_flight(self) -> int:
        """Claimed and not settled yet (running, prefetched or waiting for its ack)."""
        return self.claimed - self.acked - self.retried - self.dead - self.lost \
            - self.timed_out - self.given_back

    def snapshot(self) -> dict[str, int]:
        """The counters as a dict (in_flight included)."""
        with self._guard:
            out = {k: getattr(self, k) for k in ("claimed", "acked", "retried", "dead", "lost",
                                                 "timed_out", "given_back")}
        out["in_flight"] = (out["claimed"] - sum(v for k, v in out.items() if k != "claimed"))
        return out
