"""What the Prometheus exporter measures, free of I/O: the targets an operator names, the
read-only calls that measure them, and the parsing of key names found by ``SCAN``.

:mod:`pyredis_atomic.exporter` runs these calls and turns the samples into metrics. Every
call here is a read-only script whose work is bounded whatever the size of the primitive
(``queue_metrics``, ``lock_inspect``, ``counter_get``, ``semaphore_count``), so one scrape
costs the server a bounded time.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .calls import Call
from .counter import CounterSpec
from .keys import DEFAULT_PREFIX, check_name, check_prefix
from .lock import LockInfo, decode_info, inspect_call, lock_keys
from .queue import QueueCore
from .replies import as_int, as_list
from .semaphore import SemaphoreSpec

__all__ = [
    "KINDS",
    "OTHER_FAILURE",
    "FailureTypes",
    "QueueSample",
    "Targets",
    "counter_spec",
    "dead_failures",
    "dead_sample_call",
    "discovery_pattern",
    "lock_call",
    "parse_bounds",
    "parse_key",
    "parse_lease",
    "parse_limit",
    "queue_call",
]

# The kinds the exporter measures, in the order their metrics are written.
KINDS = ("queue", "lock", "counter", "semaphore")


@dataclass(frozen=True)
class QueueSample:
    """One measurement of a queue (see ``lua/queue_metrics.lua``); times in seconds.

    ``lag``: how long the oldest message a claim could take now has been claimable (0 when
    none; delayed messages that are not yet due never count). ``inflight_age``: age since
    its push of the message whose lease ends first (None when nothing is in flight).
    ``lease_overdue``: how long ago that lease ended (0 while it runs): leases that ran out
    and no consumer requeued. ``lease_left``: that lease's deadline minus now (negative once
    it ended; None when nothing is in flight).
    """

    pending: int
    in_flight: int
    delayed: int
    dead: int
    lag: float
    inflight_age: float | None
    lease_overdue: float
    lease_left: float | None = None

    def lease_age(self, lease: float) -> float | None:
        """How long ago the lease that ends first began (its claim or last extension),
        for a queue whose deliveries are leased for ``lease`` seconds: ``lease -
        lease_left``. The queue stores each lease's deadline, not its start, so this is
        exact for a delivery leased (claimed or extended) for ``lease`` seconds, and that
        lease is then the oldest one too; None when nothing is in flight."""
        if self.lease_left is None:
            return None
        return max(0.0, lease - self.lease_left)


# Failure types as metric labels: bounded, so a handler raising ever new exception classes
# cannot grow a metric's series without bound.
MAX_FAILURE_TYPES = 10
OTHER_FAILURE = "_OTHER"   # the types past the cap (OpenTelemetry's error.type convention)
NO_FAILURE = "none"        # a dead letter without a failure record (e.g. its lease ran out)


class FailureTypes:
    """Label values for failure types: the first ``cap`` distinct types seen keep their
    name (the recorded :attr:`Failure.type`, a qualified class name), later ones become
    :data:`OTHER_FAILURE`. Thread-safe; one per process for the OpenTelemetry counters."""

    def __init__(self, cap: int = 20) -> None:
        self._cap = cap
        self._seen: set[str] = set()
        self._guard = threading.Lock()

    def label(self, kind: str) -> str:
        """``kind`` as a label value."""
        if kind in self._seen:
            return kind
        with self._guard:
            if len(self._seen) < self._cap:
                self._seen.add(kind)
                return kind
        return OTHER_FAILURE


def dead_sample_call(name: str, dead: int, limit: int,
                     prefix: str = DEFAULT_PREFIX) -> Call[list[Any]]:
    """The ``queue_dead`` call reading the newest ``limit`` of the ``dead`` dead letters of
    queue ``name`` (bounded: at most ``limit`` entries, whatever the count)."""
    return QueueCore(name, prefix=prefix).dead_call(limit, max(0, dead - limit))


def dead_failures(letters: Iterable[Any],
                  cap: int = MAX_FAILURE_TYPES) -> dict[tuple[str, str], int]:
    """Dead letters counted by ``(dead_reason, failure type)``: the ``cap`` most frequent
    types by name, the others as :data:`OTHER_FAILURE`, :data:`NO_FAILURE` for a letter
    without a failure record."""
    found = Counter((m.dead_reason or "unknown",
                     (m.failure.type or OTHER_FAILURE) if m.failure else NO_FAILURE)
                    for m in letters)
    by_type: Counter[str] = Counter()
    for (_, kind), n in found.items():
        if kind != NO_FAILURE:
            by_type[kind] += n
    kept = {kind for kind, _ in by_type.most_common(cap)}
    out: Counter[tuple[str, str]] = Counter()
    for (reason, kind), n in found.items():
        out[(reason, kind if kind in kept or kind == NO_FAILURE else OTHER_FAILURE)] += n
    return dict(out)


def _decode_queue(reply: Any) -> QueueSample:
    v = [as_int(x) for x in as_list(reply)]
    return QueueSample(v[0], v[1], v[2], v[3], v[4] / 1000, None if v[5] < 0 else v[5] / 1000,
                       v[6] / 1000, None if v[5] < 0 else v[7] / 1000)


def queue_call(name: str, prefix: str = DEFAULT_PREFIX) -> Call[QueueSample]:
    """The ``queue_metrics`` call for queue ``name``."""
    k = QueueCore(name, prefix=prefix).keys
    return Call("queue_metrics", (k["pending"], k["inflight"], k["delayed"], k["dead"],
                                   k["pending1"], k["pending2"], k["pending3"]), (),
                _decode_queue)


def lock_call(name: str, prefix: str = DEFAULT_PREFIX) -> Call[LockInfo | None]:
    """The ``lock_inspect`` call for lock ``name`` (None: never acquired)."""
    keys = lock_keys(name, prefix)
    raw = inspect_call(keys)
    return Call(raw.script, raw.keys, raw.args, lambda r: decode_info(keys.name, raw.decode(r)))


def _split(spec: str, what: str) -> tuple[str, str | None]:
    # The last "=" separates the name from its settings: "a=b=" is the name "a=b" with none.
    if "=" not in spec:
        return check_name(spec, what), None
    name, _, rest = spec.rpartition("=")
    return check_name(name, what), rest or None


def _bound(text: str, spec: str) -> int | None:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"counter {spec!r}: bound {text!r} is not an integer") from None


def parse_bounds(spec: str) -> tuple[str, int | None, int | None]:
    """``NAME``, ``NAME=MIN:MAX``, ``NAME=:MAX`` or ``NAME=MIN:`` -> (name, min, max)."""
    name, rest = _split(spec, "counter")
    if rest is None:
        return name, None, None
    low, sep, high = rest.partition(":")
    if not sep:
        raise ValueError(f"counter {spec!r}: bounds are written MIN:MAX (either may be empty)")
    lo, hi = _bound(low, spec), _bound(high, spec)
    counter_spec(name, lo, hi)  # validates the range (min <= max, within 2^53)
    return name, lo, hi


def counter_spec(name: str, low: int | None, high: int | None,
                 prefix: str = DEFAULT_PREFIX) -> CounterSpec:
    """A counter's spec for reading it: an absent counter reads as 0, or as the nearest
    bound when 0 lies outside the bounds (the applications' ``initial`` is not stored)."""
    initial = 0
    if low is not None and low > 0:
        initial = low
    elif high is not None and high < 0:
        initial = high
    return CounterSpec(name, min=low, max=high, initial=initial, prefix=prefix)


def parse_lease(spec: str) -> tuple[str, float | None]:
    """``NAME`` or ``NAME=SECONDS`` (the queue's lease, its ``visibility_timeout``) ->
    (name, lease)."""
    name, rest = _split(spec, "queue")
    if rest is None:
        return name, None
    try:
        lease = float(rest)
    except ValueError:
        raise ValueError(f"queue {spec!r}: lease {rest!r} is not a number of seconds") from None
    try:
        QueueCore(name, visibility_timeout=lease)  # validates the lease
    except ValueError as exc:
        raise ValueError(f"queue {spec!r}: {exc}") from None
    return name, lease


def parse_limit(spec: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME=LIMIT`` -> (name, limit)."""
    name, rest = _split(spec, "semaphore")
    if rest is None:
        return name, None
    try:
        limit = int(rest)
    except ValueError:
        raise ValueError(f"semaphore {spec!r}: limit {rest!r} is not an integer") from None
    SemaphoreSpec(name, limit)  # validates the limit
    return name, limit


@dataclass
class Targets:
    """The primitives one exporter measures: names, and for counters and semaphores the
    bounds and limit that live in the applications' configuration (None: not known); for
    queues, their lease (``visibility_timeout``, seconds) where given (``leases``)."""

    queues: set[str]
    locks: set[str]
    counters: dict[str, tuple[int | None, int | None]]
    semaphores: dict[str, int | None]
    leases: dict[str, float] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Targets:
        """No targets."""
        return cls(set(), set(), {}, {})

    def add(self, kind: str, name: str) -> None:
        """Add a discovered primitive (settings unknown; a configured one keeps its own)."""
        if kind == "queue":
            self.queues.add(name)
        elif kind == "lock":
            self.locks.add(name)
        elif kind == "counter":
            self.counters.setdefault(name, (None, None))
        elif kind == "semaphore":
            self.semaphores.setdefault(name, None)
        else:
            raise ValueError(f"unknown kind {kind!r}")

    def merged(self, other: Targets) -> Targets:
        """The union; settings given in ``self`` win."""
        out = Targets(set(self.queues), set(self.locks), dict(self.counters),
                      dict(self.semaphores), dict(self.leases))
        for name, lease in other.leases.items():
            out.leases.setdefault(name, lease)
        out.queues |= other.queues
        out.locks |= other.locks
        for name, bounds in other.counters.items():
            out.counters.setdefault(name, bounds)
        for name, limit in other.semaphores.items():
            out.semaphores.setdefault(name, limit)
        return out

    def count(self, kind: str) -> int:
        """How many targets of ``kind``."""
        return len({"queue": self.queues, "lock": self.locks, "counter": self.counters,
                    "semaphore": self.semaphores}[kind])


_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_UNESCAPE = re.compile(r"%(25|7B|7D)")
_UNESCAPED = {"25": "%", "7B": "{", "7D": "}"}


def discovery_pattern(prefix: str) -> str:
    """The ``SCAN MATCH`` pattern of every key under ``prefix`` (glob characters escaped)."""
    return _GLOB_SPECIAL.sub(r"\\\1", check_prefix(prefix)) + "*"


def parse_key(key: bytes | str, prefix: str) -> tuple[str, str] | None:
    """``(kind, name)`` of a primitive's key (see ``_core/keys.py``), or None for a key of
    another kind (caches, rate limiters) or one that no primitive writes."""
    text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
    if not text.startswith(prefix):
        return None
    kind, sep, rest = text[len(prefix):].partition(":")
    if not sep or kind not in KINDS or not rest.startswith("{"):
        return None
    end = rest.find("}")
    if end < 1:
        return None
    tail = rest[end + 1:]
    # The parts each kind writes (a lock also leaves its fences and its signal list).
    if tail and not tail.startswith(":"):
        return None
    part = tail[1:]
    if kind == "counter" and part and not part.startswith("request:"):
        return None
    if kind == "semaphore" and part not in ("holders", "signal"):
        return None
    if kind == "lock" and part not in ("", "fences", "signal"):
        return None
    if kind == "queue" and not part:
        return None
    name = _UNESCAPE.sub(lambda m: _UNESCAPED[m[1]], rest[1:end])
    return kind, name
