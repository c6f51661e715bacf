"""The reliable queue, free of I/O: keys, argument checks, script calls, reply decoding and
the blocking-pop flow. :mod:`pyredis_atomic.queue` (sync) and
:mod:`pyredis_atomic.asyncio.queue` only perform what this module plans, so the two APIs
cannot drift.

Data model (one hash tag per queue, so every key of a queue sits in one cluster slot):

* ``pending`` (list): entries ``"<id>/<deliveries so far>"`` ready for delivery. Fresh and
  due delayed messages join the tail; messages given back (``nack`` without delay, expired
  leases) go to the front.
* ``pending1`` .. ``pending3`` (lists): the same for priorities 1 to 3 (:data:`PRIORITIES`
  levels in all, 0 the default and lowest). A claim takes from the highest non-empty list
  first (one ``LLEN`` per higher level: a fixed cost, the levels are fixed). A message of
  priority k > 0 has the marker ``p<k>`` at the end of its id (before the dedup marker), so
  every requeue finds its list from the id alone.
* ``inflight`` (zset): entries ``"<id>/<delivery>"`` being worked on, scored by their lease
  deadline (ms, server time). The entry *is* the receipt: an ack is one ``ZREM`` of it
  (O(log n), flat with the in-flight count) and a receipt of an older delivery matches
  nothing.
* ``delayed`` (zset): entries scored by the time they become ready.
* ``dead`` (zset): dead letters scored by the time they died; ``deadinfo`` (hash) holds
  their delivery count and why they died (``"<deliveries> <reason>"``), then, when the last
  nack recorded one, a newline and the failure (JSON, see :class:`Failure`).
* ``payload`` (hash): a message's bytes.
* ``dedup`` / ``dedupof`` (hashes): dedup key <-> id, while the message is queued.
* ``signal`` (list): wake-up tokens for blocked consumers (bounded); ``seq``: id counter.

A message's id is ``"<push ms>-<seq>"``, then the trace marker ``t``
(:data:`~pyredis_atomic._core.wire.TRACE_MARK`) when its stored payload starts with the
producer's W3C ``traceparent`` (55 bytes, split off by consumers), then the priority marker
``p<k>``
(:data:`~pyredis_atomic._core.wire.PRIORITY_MARK`) for a priority k > 0, then the dedup
marker ``k`` (:data:`~pyredis_atomic._core.wire.DEDUP_MARK`) when it was pushed with a dedup
key: only such ids are looked up in ``dedupof`` when they leave the queue. A receipt is
``"<id>/<delivery>"``. The delivery number only grows (but for a give-back that is not an
attempt, ``nack(counted=False)``, which puts it back one), and a redriven dead letter gets
a new id, so an old receipt can never match a newer delivery.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
import traceback as tb
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import EvictionPolicyError
from . import events
from .calls import Call, Flow, Sleep
from .keys import DEFAULT_PREFIX, KeyLayout, check_name, check_prefix
from .replies import as_bytes, as_int, as_list, as_str
from .reports import Report
from .script import keyed
from .validate import check_flag, check_int, check_seconds, to_millis
from .waiting import Deadline, wait_step, wait_then
from .wire import DEDUP_MARK, PRIORITY_MARK, TRACE_MARK, TRACEPARENT_LEN

__all__ = [
    "DEFAULT_MAX_DELIVERIES",
    "DEFAULT_VISIBILITY_TIMEOUT",
    "EVICTING_POLICIES",
    "MAX_BATCH",
    "PRIORITIES",
    "Failure",
    "Message",
    "QueueSpec",
    "QueueStats",
    "check_eviction_policy",
]

DEFAULT_VISIBILITY_TIMEOUT = 30.0
DEFAULT_MAX_DELIVERIES = 5
# Largest batch one script call handles: keeps every call's work (and Lua's unpack stack)
# bounded; longer inputs are split into several calls.
MAX_BATCH = 1000
# Expired leases and due delayed messages moved by one claim/ack call: enough to keep up
# with any realistic expiry rate, small enough to keep each call short.
RECLAIM_BATCH = 100
# Re-claim interval of a blocked consumer in the last ~100 ms before its deadline.
TAIL_POLL = 0.025
# maxmemory policies that may evict keys without a TTL (the queue's keys have none).
EVICTING_POLICIES = frozenset({"allkeys-lru", "allkeys-lfu", "allkeys-random"})

# Priority levels: 0 (the default, lowest) to PRIORITIES - 1 (claimed first). Four, as
# kombu's Redis transport uses: each level is one more list key on every script call.
PRIORITIES = 4
# Longest failure record stored with a dead letter (the traceback is cut to fit).
MAX_FAILURE_BYTES = 4096

_PARTS = ("pending", "inflight", "delayed", "payload", "dead", "deadinfo", "dedup", "dedupof",
          "signal", "seq", "pending1", "pending2", "pending3")


@dataclass(frozen=True)
class Failure:
    """Why a message's last delivery failed, as recorded with its dead letter.

    ``type``: the exception's qualified class name; ``message``: ``str(exc)``;
    ``traceback``: its last frames, formatted (short, may be ``""``); ``at``: when it was
    recorded (client time, seconds since the epoch). Written by :meth:`ReliableQueue.nack`
    with ``failure=`` (the :class:`~pyredis_atomic.Worker` does it for handlers that raise).
    """

    type: str
    message: str
    traceback: str
    at: float

    def to_json(self) -> str:
        """The stored form (one JSON object)."""
        return json.dumps({"type": self.type, "message": self.message,
                           "traceback": self.traceback, "at": self.at}, ensure_ascii=False)

    @classmethod
    def from_text(cls, text: str) -> Failure:
        """Read a stored record; text that is not one (written by another client) is kept
        whole as the message."""
        try:
            d = json.loads(text)
            return cls(str(d["type"]), str(d["message"]), str(d.get("traceback", "")),
                       float(d.get("at", 0.0)))
        except (ValueError, TypeError, KeyError):
            return cls("", text, "", 0.0)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def type_name(kind: type) -> str:
    """How a failure record names an exception class: its qualified name, without the
    module for builtins and ``__main__``."""
    if kind.__module__ in ("builtins", "__main__"):
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def failure_of(exc: BaseException, at: float, limit: int = MAX_FAILURE_BYTES) -> Failure:
    """The record of ``exc``: its type, message and the last frames of its traceback, cut so
    that the JSON stays under ``limit`` bytes (the message first keeps 1 kB)."""
    name = type_name(type(exc))
    message = str(exc)[:1024]
    # The last frames, without the worker's own (where the handler was called from).
    frames = [f for f in tb.extract_tb(exc.__traceback__)
              if not f.filename.startswith(_PACKAGE_DIR)] or tb.extract_tb(exc.__traceback__)
    trace = "".join(tb.format_list(frames[-5:]))
    record = Failure(name, message, trace, at)
    while len(record.to_json().encode()) > limit and trace:
        trace = trace[len(trace) // 4 + 1:]
        record = Failure(name, message, "..." + trace if trace else "", at)
    return record


class Message:
    """One delivery of a queued message.

    ``id``: the message's id (unique in its queue, never reused). ``payload``: its bytes
    (a ``str`` was pushed as UTF-8). ``deliveries``: how many times it has been delivered,
    this delivery included. ``receipt``: names this one delivery; ``ack``/``nack``/``extend``
    act only while it is the current delivery. ``queue``: the queue's key base (messages are
    accepted only by the queue they came from). For dead letters, ``dead_reason``
    (``"expired"``: its last lease ran out, e.g. its worker died; ``"nacked"``: given back
    on its last delivery), ``dead_at`` (server time, seconds) and ``failure`` (a
    :class:`Failure` if the last nack recorded one, else None) tell how it died.
    ``traceparent``: the producer's W3C trace context when it pushed with ``trace=True``
    (else None).
    ``priority``: 0 (default) to 3, from the id. ``lost``: set by a
    :class:`~pyredis_atomic.Worker` when a heartbeat found this delivery gone (its lease ran
    out while the process was paused, or an operator requeued it): stop working on it, its
    ack will be refused.

    Immutable (but for ``lost``); compares by value.
    """

    __slots__ = ("_lost", "dead_at", "dead_reason", "deliveries", "failure", "id", "payload",
                 "queue", "traceparent")

    id: str
    payload: bytes
    deliveries: int
    queue: str
    dead_reason: str | None
    dead_at: float | None
    failure: Failure | None
    traceparent: str | None
    _lost: bool

    def __init__(self, id: str, payload: bytes, deliveries: int, queue: str, *,
                 dead_reason: str | None = None, dead_at: float | None = None,
                 failure: Failure | None = None, traceparent: str | None = None) -> None:
        # object.__setattr__: instances are immutable once built (see __setattr__).
        _set = object.__setattr__
        _set(self, "id", id)
        _set(self, "payload", payload)
        _set(self, "deliveries", deliveries)
        _set(self, "queue", queue)
        _set(self, "dead_reason", dead_reason)
        _set(self, "dead_at", dead_at)
        _set(self, "failure", failure)
        _set(self, "traceparent", traceparent)
        _set(self, "_lost", False)

    @property
    def lost(self) -> bool:
        """True once a worker's heartbeat found this delivery no longer current."""
        return self._lost

    def _mark_lost(self) -> None:
        object.__setattr__(self, "_lost", True)

    @property
    def priority(self) -> int:
        """The message's priority (0 to 3), read from the marker in its id."""
        return priority_of(self.id)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Message is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Message is immutable (cannot delete {name!r})")

    @property
    def receipt(self) -> str:
        """``"<id>/<delivery>"``: identifies this delivery of this message."""
        return f"{self.id}/{self.deliveries}"

    @property
    def pushed_at(self) -> float:
        """When the message was pushed (server time, seconds since the epoch)."""
        return int(self.id.split("-", 1)[0]) / 1000.0

    def _key(self) -> tuple[Any, ...]:
        return (self.id, self.payload, self.deliveries, self.queue, self.dead_reason,
                self.dead_at, self.failure, self.traceparent)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        body = self.payload if len(self.payload) <= 40 else self.payload[:40] + b"..."
        extra = f", dead_reason={self.dead_reason!r}" if self.dead_reason else ""
        return (f"Message(id={self.id!r}, payload={body!r}, deliveries={self.deliveries}"
                f"{extra})")


@dataclass(frozen=True, eq=False)
class QueueStats(Report):
    """What :meth:`ReliableQueue.stats` reports: messages by state, the seconds since the
    message at the front of pending was pushed (None when nothing is pending), and the
    pending count of each priority level (0 first). Also a read-only mapping
    (``stats["pending"]``), as the dict it replaced."""

    pending: int
    in_flight: int
    delayed: int
    dead: int
    oldest_pending_age: float | None
    pending_by_priority: list[int]


def priority_of(mid: str) -> int:
    """The priority encoded in a message id (``...p<k>`` or ``...p<k>k``; none: 0)."""
    end = mid[:-1] if mid.endswith(DEDUP_MARK) else mid
    if len(end) >= 2 and end[-2] == PRIORITY_MARK and end[-1].isdigit():
        return int(end[-1])
    return 0


def check_priority(priority: object) -> int:
    """A priority level: an int from 0 to PRIORITIES - 1 (bool refused)."""
    return check_int(priority, "priority", minimum=0, maximum=PRIORITIES - 1)


def check_eviction_policy(policies: Iterable[str], *, allow: bool, key: str) -> None:
    """Raise :class:`EvictionPolicyError` if a server may evict the queue's keys."""
    bad = sorted({p for p in policies if p in EVICTING_POLICIES})
    if bad and not allow:
        raise EvictionPolicyError(
            f"the Redis server's maxmemory-policy is {', '.join(bad)}: under memory pressure "
            f"it may evict the queue's keys ({key!r}...) and lose messages silently. Use "
            f"'noeviction' (or a volatile-* policy: the queue's keys have no TTL), or pass "
            f"allow_eviction=True to accept the risk",
            key=key,
            policy=bad[0],
        )
    if bad:
        events.emit("queue.eviction_policy", "the Redis server's maxmemory-policy is %s: it "
                    "may evict the keys of queue %r and lose messages (allow_eviction=True "
                    "accepted the risk)", ", ".join(bad), key, key=key, policy=bad[0])


def policies_from_reply(reply: Any) -> list[str]:
    """Every ``maxmemory-policy`` value in a CONFIG GET reply (a cluster's is per node)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if as_str(k) == "maxmemory-policy":
                    found.append(as_str(v))
                else:
                    walk(v)
        elif isinstance(value, (list, tuple)):
            items = list(value)
            for i in range(0, len(items) - 1, 2):
                if isinstance(items[i], (bytes, str)) and as_str(items[i]) == "maxmemory-policy":
                    found.append(as_str(items[i + 1]))
            for item in items:
                if isinstance(item, (dict, list, tuple)):
                    walk(item)

    walk(reply)
    return found


def _payload(value: object, argument: str = "payload") -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{argument} is not valid Unicode (lone surrogate)") from None
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{argument} must be bytes or str, got {type(value).__name__}")


def _dedup_key(value: object, argument: str = "dedup_key") -> str:
    if not isinstance(value, str):
        raise TypeError(f"{argument} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{argument} must not be empty")
    _check_unicode(value, argument)
    return value


def _check_unicode(value: str, argument: str) -> None:
    # redis-py would raise a bare UnicodeEncodeError while packing the command.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{argument} is not valid Unicode (lone surrogate)") from None


def _delay_ms(delay: object) -> int:
    seconds = check_seconds(delay, "delay", minimum=0.0)
    return 0 if seconds == 0 else to_millis(seconds)


def _traced(mid: str, body: bytes, deliveries: int, queue: str, **extra: Any) -> Message:
    """A message whose stored payload starts with its producer's trace context."""
    return Message(mid, body[TRACEPARENT_LEN:], deliveries, queue,
                   traceparent=body[:TRACEPARENT_LEN].decode("ascii", "replace"), **extra)


def _decode_claim(reply: list[Any], queue: str, name: str) -> Claim:
    # {"acked reclaimed wait_ms dead id1 deliveries1 ...", payload1, ...}: see
    # queue_claim.lua.
    head = reply[0]
    parts = (head.decode() if isinstance(head, bytes) else head).split(" ")
    wait_ms = int(parts[2])
    dead = int(parts[3])
    if dead:
        events.emit("queue.expired_dead_lettered", "queue %r: %d message(s) dead-lettered: "
                    "the lease of their last allowed delivery ran out", name, dead,
                    queue=name, count=dead)
    messages = [(Message if TRACE_MARK not in parts[j] else _traced)(
                    parts[j], as_bytes(reply[i]), int(parts[j + 1]), queue)
                for i, j in enumerate(range(4, len(parts), 2), start=1)]
    return Claim(int(parts[0]), int(parts[1]), messages,
                 None if wait_ms < 0 else wait_ms / 1000.0, dead)


@dataclass(frozen=True)
class Claim:
    """A decoded claim reply: acks matched, leases reclaimed, messages, and how long to
    wait (seconds) before something may become ready (None: nothing scheduled)."""

    acked: int
    reclaimed: int
    messages: list[Message]
    wait: float | None
    #: how many of the reclaimed leases were dead-lettered (their last delivery expired)
    dead: int = 0


class QueueSpec:
    """Everything about one queue that does not need I/O. Built by the front ends."""

    __slots__ = (
        "_claim_head",
        "_claim_keys",
        "_dead_keys",
        "_decode_ack1",
        "_decode_claim",
        "_extend_keys",
        "_nack_keys",
        "_purge_keys",
        "_push_keys",
        "_redrive_keys",
        "_stats_keys",
        "base",
        "keys",
        "lease_ms",
        "max_deliveries",
        "name",
        "prefix",
        "visibility_timeout",
    )

    def __init__(self, name: str, *, visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
                 max_deliveries: int = DEFAULT_MAX_DELIVERIES,
                 prefix: str = DEFAULT_PREFIX) -> None:
        self.name = check_name(name)
        self.prefix = check_prefix(prefix)
        self.visibility_timeout = check_seconds(visibility_timeout, "visibility_timeout")
        self.max_deliveries = check_int(max_deliveries, "max_deliveries", minimum=1,
                                        maximum=1_000_000)
        self.lease_ms = to_millis(self.visibility_timeout)
        layout = KeyLayout("queue", self.prefix)
        self.base = layout.key(self.name)
        self.keys = {part: layout.key(self.name, part) for part in _PARTS}
        # The hot calls' keys and fixed arguments go out pre-encoded: redis-py then skips
        # an encode per argument per call, a measurable share of a push or a claim.
        k = {part: key.encode() for part, key in self.keys.items()}
        # Each script's KEYS, picked by the names its header gives them.
        self._push_keys = keyed("queue_push", k)
        self._claim_keys = keyed("queue_claim", k)
        self._nack_keys = keyed("queue_nack", k)
        self._extend_keys = keyed("queue_extend", k)
        self._stats_keys = keyed("queue_stats", self.keys)
        self._dead_keys = keyed("queue_dead", self.keys)
        self._redrive_keys = keyed("queue_redrive", self.keys)
        self._purge_keys = keyed("queue_purge", self.keys)
        self._claim_head = (b"%d" % self.lease_ms, b"%d" % self.max_deliveries)
        self._decode_claim = functools.partial(_decode_claim, queue=self.base,
                                              name=self.name)
        self._decode_ack1 = functools.partial(_decode_acked, queue=self.base, name=self.name,
                                              sent=1)

    @property
    def signal_key(self) -> str:
        """The list blocked consumers wait on."""
        return self.keys["signal"]

    # -- argument checks -----------------------------------------------------------------
    def check_message(self, msg: object, argument: str = "msg") -> Message:
        """A :class:`Message` delivered by this queue (same name and prefix)."""
        if not isinstance(msg, Message):
            raise TypeError(f"{argument} must be a Message, got {type(msg).__name__}")
        # A forged receipt must not reach the wire: ids the queue hands out are ASCII with
        # no space (receipts travel space-separated), deliveries an int.
        mid = msg.id
        if type(mid) is not str or type(msg.deliveries) is not int:
            raise TypeError(f"{argument} is not a delivery of a queue (id {mid!r}, "
                            f"deliveries {msg.deliveries!r})")
        if not mid.isascii() or " " in mid or "/" in mid:
            raise ValueError(f"{argument} has an id no queue hands out: {mid!r}")
        if msg.queue != self.base:
            raise ValueError(f"{argument} {msg.id!r} belongs to queue {msg.queue!r}, "
                             f"not to {self.base!r}")
        if msg.dead_reason is not None:
            raise ValueError(f"{argument} {msg.id!r} is a dead letter, not a delivery; "
                             f"use redrive()")
        return msg

    def check_messages(self, msgs: object, argument: str = "msgs") -> list[Message]:
        """A sequence of this queue's messages."""
        if isinstance(msgs, (str, bytes, Message)) or not isinstance(msgs, Iterable):
            raise TypeError(f"{argument} must be an iterable of Message, "
                            f"got {type(msgs).__name__}")
        return [self.check_message(m, f"{argument}[{i}]") for i, m in enumerate(msgs)]

    @staticmethod
    def check_count(n: object, argument: str = "n") -> int:
        """A positive number of messages."""
        return check_int(n, argument, minimum=1)

    # -- calls ---------------------------------------------------------------------------
    def push_calls(self, payloads: Sequence[object], *, delay: object = 0.0,
                   dedup_keys: Sequence[object] | None = None,
                   priority: object = 0,
                   traceparent: str | None = None) -> list[Call[list[str]]]:
        """The push calls (one per batch of at most MAX_BATCH) for these payloads;
        ``traceparent``: the producer's trace context, stored with every message."""
        delay_ms = _delay_ms(delay)
        prio = _PRIO[check_priority(priority)]
        if isinstance(payloads, (str, bytes, bytearray, memoryview)) or not isinstance(
                payloads, Iterable):
            raise TypeError(f"payloads must be an iterable of bytes or str, "
                            f"got {type(payloads).__name__}")
        bodies = [_payload(p, f"payloads[{i}]") for i, p in enumerate(payloads)]
        head = _trace_head(traceparent)
        if head:
            bodies = [head + b for b in bodies]
        items: list[str | bytes]
        if dedup_keys is None:
            paired = "2" if head else "0"
            items = list(bodies)
            step = 1
        else:
            if isinstance(dedup_keys, (str, bytes)) or not isinstance(dedup_keys, Iterable):
                raise TypeError(f"dedup_keys must be an iterable of str, "
                                f"got {type(dedup_keys).__name__}")
            keys = [_dedup_key(d, f"dedup_keys[{i}]") for i, d in enumerate(dedup_keys)]
            if len(keys) != len(bodies):
                raise ValueError(f"dedup_keys has {len(keys)} entries for {len(bodies)} "
                                 f"payloads")
            paired = "3" if head else "1"
            items = [x for pair in zip(keys, bodies, strict=True) for x in pair]
            step = 2
        chunk = MAX_BATCH * step
        return [Call("queue_push", self._push_keys,
                     (delay_ms, paired, prio, *items[i:i + chunk]), _decode_ids, raw=True)
                for i in range(0, len(items), chunk)]

    def push_call(self, payload: object, *, delay: object = 0.0,
                  dedup_key: object = None, priority: object = 0,
                  traceparent: str | None = None) -> Call[list[str]]:
        """The call that pushes one message (``traceparent``: see :meth:`push_calls`)."""
        body = _payload(payload)
        delay_ms = _delay_ms(delay)
        prio = _PRIO[0] if priority == 0 and type(priority) is int else _PRIO[
            check_priority(priority)]
        mode = (b"1", b"0")
        if traceparent is not None:
            body = _trace_head(traceparent) + body
            mode = (b"3", b"2")
        if dedup_key is None:
            return Call("queue_push", self._push_keys, (delay_ms, mode[1], prio, body),
                        _decode_ids, raw=True)
        return Call("queue_push", self._push_keys,
                    (delay_ms, mode[0], prio, _dedup_key(dedup_key), body), _decode_ids,
                    raw=True)

    def claim_call(self, n: int, acks: Sequence[Message] = (),
                   reclaim: int = RECLAIM_BATCH, lease_ms: int | None = None,
                   max_deliveries: int | None = None) -> Call[Claim]:
        """Ack ``acks`` (already checked), housekeeping, then claim up to ``n`` (0: none).
        ``lease_ms`` / ``max_deliveries``: instead of the queue's (a worker's own)."""
        receipts = " ".join([m.receipt for m in acks])
        head = (self._claim_head if lease_ms is None and max_deliveries is None
                else (lease_ms or self.lease_ms, max_deliveries or self.max_deliveries))
        decode = self._decode_claim
        if acks:
            decode = self._decode_ack1 if len(acks) == 1 else functools.partial(
                _decode_acked, queue=self.base, name=self.name, sent=len(acks))
        return Call("queue_claim", self._claim_keys, (*head, n, reclaim, receipts),
                    decode, raw=True)

    def nack_call(self, msg: Message, delay: object = 0.0, *, counted: object = True,
                  failure: object = None, max_deliveries: int | None = None) -> Call[int]:
        """Give a delivery back (now, after ``delay`` seconds, or to the dead letters).

        ``counted=False``: the delivery is not an attempt (it never dead-letters the
        message; the next delivery has the same number). ``failure``: a :class:`Failure`,
        an exception (recorded now) or a str, stored with the dead letter if this nack
        buries the message. ``max_deliveries``: instead of the queue's."""
        delay_ms = _delay_ms(delay)
        if not isinstance(counted, bool):
            raise TypeError(f"counted must be a bool, got {type(counted).__name__}")
        record = _failure_text(failure)
        return Call("queue_nack", self._nack_keys,
                    (msg.receipt, delay_ms, max_deliveries or self.max_deliveries,
                     b"1" if counted else b"0", record),
                    functools.partial(_decode_nack, name=self.name, msg=msg,
                                      failure_type=_failure_type(failure)), raw=True)

    def extend_call(self, msg: Message, visibility_timeout: object = None) -> Call[bool]:
        """Extend a delivery's lease to ``visibility_timeout`` (default: the queue's) from
        now."""
        lease_ms = (self.lease_ms if visibility_timeout is None
                    else to_millis(check_seconds(visibility_timeout, "visibility_timeout")))
        return Call("queue_extend", self._extend_keys, (msg.receipt, lease_ms),
                    functools.partial(_decode_extended, name=self.name), raw=True)

    def extend_many_call(self, msgs: Sequence[Message],
                         lease_ms: int | None = None) -> Call[list[bool]]:
        """Extend the leases of several deliveries (at most MAX_BATCH, already checked) in
        one call: one bool per delivery, True if it was still current."""
        if not msgs or len(msgs) > MAX_BATCH:
            raise ValueError(f"extend_many_call takes 1 to {MAX_BATCH} messages, "
                             f"got {len(msgs)}")
        receipts = " ".join([m.receipt for m in msgs])
        one = len(msgs) == 1

        def decode(reply: Any) -> list[bool]:
            if one:
                return [as_int(reply) == 1]
            return [c == "1" for c in as_str(reply)]

        return Call("queue_extend", self._extend_keys,
                    (receipts, self.lease_ms if lease_ms is None else lease_ms), decode,
                    raw=True)

    def stats_call(self) -> Call[QueueStats]:
        """Counts by state and the age of the oldest pending message."""
        return Call("queue_stats", self._stats_keys, (), _decode_stats, raw=True)

    def dead_call(self, limit: object = 100, offset: object = 0) -> Call[list[Message]]:
        """List dead letters, oldest death first."""
        limit = check_int(limit, "limit", minimum=1, maximum=MAX_BATCH * 10)
        offset = check_int(offset, "offset", minimum=0)
        base = self.base

        def decode(reply: Any) -> list[Message]:
            items = as_list(reply)
            out = []
            for i in range(0, len(items), 4):
                head, _, record = as_str(items[i + 2]).partition("\n")
                count, _, reason = head.partition(" ")
                mid = as_str(items[i])
                out.append((Message if TRACE_MARK not in mid else _traced)(
                    mid, as_bytes(items[i + 1]), int(count), base,
                    dead_reason=reason or "unknown",
                    dead_at=int(float(as_str(items[i + 3]))) / 1000.0,
                    failure=Failure.from_text(record) if record else None))
            return out

        return Call("queue_dead", self._dead_keys, (offset, limit), decode, raw=True)

    def redrive_calls(self, ids: Iterable[object] | None) -> list[Call[int]] | None:
        """Calls that redrive the given ids, or None for 'all' (see :meth:`redrive_all`)."""
        if ids is None:
            return None
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise TypeError(f"ids must be an iterable of str, got {type(ids).__name__}")
        checked = []
        for i, x in enumerate(ids):
            if not isinstance(x, str):
                raise TypeError(f"ids[{i}] must be a str, got {type(x).__name__}")
            if not x or x == "*":
                raise ValueError(f"ids[{i}] is not a message id: {x!r}")
            _check_unicode(x, f"ids[{i}]")
            checked.append(x)
        return [Call("queue_redrive", self._redrive_keys, (1, *checked[i:i + MAX_BATCH]),
                     as_int, raw=True) for i in range(0, len(checked), MAX_BATCH)]

    def redrive_all_call(self) -> Call[int]:
        """Redrive the oldest MAX_BATCH dead letters."""
        return Call("queue_redrive", self._redrive_keys, (MAX_BATCH, "*"), as_int, raw=True)

    def purge_call(self, dead_only: bool) -> Call[tuple[int, int]]:
        """Delete a batch; the reply says how many went and how many are left."""
        check_flag(dead_only, "dead_only")

        def decode(reply: Any) -> tuple[int, int]:
            items = as_list(reply)
            return as_int(items[0]), as_int(items[1])

        return Call("queue_purge", self._purge_keys, (MAX_BATCH, "1" if dead_only else "0"),
                    decode, raw=True)

    # -- flows ---------------------------------------------------------------------------
    def claim_flow(self, n: int, deadline: Deadline, acks: Sequence[Message] = (),
                   first: Claim | None = None) -> Flow[Claim]:
        """Claim up to ``n`` messages, waiting until ``deadline`` for the first one.

        No gap: a message never leaves Redis while a consumer waits. The claim script
        either moves messages to ``inflight`` (with a lease) and returns them, or returns
        nothing and clears the stale wake-up tokens; the consumer then ``BLPOP``\\s the
        signal list, which every push (and every requeue) feeds, bounded by the time until
        the next delayed message is due or lease expires, and claims again.
        ``first``: the reply of a claim already made (the fast path of the front ends).
        """
        claim = first if first is not None else (yield self.claim_call(n, acks))
        acked = claim.acked
        while not claim.messages:
            step = wait_step(deadline, self.signal_key, claim.wait)
            if step is None:
                break
            if isinstance(step, Sleep):
                # The last ~100 ms before the deadline (where BLPOP's timeout is too coarse):
                # re-claim every TAIL_POLL instead of every 5 ms, so an idle consumer stays
                # quiet; a sleep never runs past the deadline.
                left = deadline.remaining()
                step = Sleep(max(step.seconds, min(TAIL_POLL, left if left is not None
                                                   else TAIL_POLL, claim.wait or TAIL_POLL)))
            claim = yield from wait_then(step, self.claim_call(n), deadline)
        return Claim(acked, claim.reclaimed, claim.messages, claim.wait, claim.dead)


def check_limit(limit: object, argument: str = "limit") -> int:
    """A positive batch limit."""
    return check_int(limit, argument, minimum=1, maximum=1_000_000)


def _decode_ids(reply: Any) -> list[str]:
    return (reply.decode() if isinstance(reply, bytes) else reply).split(" ")


_TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def _trace_head(traceparent: str | None) -> bytes:
    """What a traced payload starts with (b"" for none); refuses anything but a version-00
    W3C traceparent, whose fixed length is what lets consumers split it off."""
    if traceparent is None:
        return b""
    if not isinstance(traceparent, str) or not _TRACEPARENT.fullmatch(traceparent):
        raise ValueError(f"traceparent must be a W3C version-00 traceparent "
                         f"(00-<32 hex>-<16 hex>-<2 hex>), got {traceparent!r}")
    return traceparent.encode("ascii")


def _lease_lost(name: str, action: str, count: int, sent: int) -> None:
    events.emit("queue.lease_lost", "queue %r: %s found %d of %d deliveries no longer "
                "current (their lease ran out and they were requeued or redelivered)", name,
                action, count, sent, queue=name, action=action, count=count)


def _decode_acked(reply: list[Any], queue: str, name: str, sent: int) -> Claim:
    claim = _decode_claim(reply, queue, name)
    if claim.acked < sent:
        _lease_lost(name, "ack", sent - claim.acked, sent)
    return claim


def _decode_nack(reply: Any, name: str, msg: Message, failure_type: str = "") -> int:
    outcome = as_int(reply)
    if outcome == 0:
        _lease_lost(name, "nack", 1, 1)
    elif outcome == 3:
        events.emit("queue.dead_lettered", "queue %r: message %s dead-lettered after %d "
                    "deliveries (nacked on its last; failure %s)", name, msg.id,
                    msg.deliveries, failure_type or "none", queue=name, message_id=msg.id,
                    deliveries=msg.deliveries, failure_type=failure_type)
    return outcome


def _decode_extended(reply: Any, name: str) -> bool:
    extended = as_int(reply) == 1
    if not extended:
        _lease_lost(name, "extend", 1, 1)
    return extended


def _decode_stats(reply: Any) -> QueueStats:
    raw = as_list(reply)
    items = [as_int(x) for x in raw[:5]]
    return QueueStats(pending=items[0], in_flight=items[1], delayed=items[2], dead=items[3],
                      oldest_pending_age=None if items[4] < 0 else items[4] / 1000.0,
                      pending_by_priority=[int(x) for x in as_str(raw[5]).split(" ")])


_PRIO = tuple(b"%d" % i for i in range(PRIORITIES))


def _failure_type(failure: object) -> str:
    """The recorded type of a nack's ``failure=`` ("" for none or a plain str)."""
    if isinstance(failure, Failure):
        return failure.type
    if isinstance(failure, BaseException):
        return type_name(type(failure))
    return ""


def _failure_text(failure: object) -> str | bytes:
    """The stored form of a nack's ``failure=``."""
    if failure is None:
        return b""
    if isinstance(failure, Failure):
        text = failure.to_json()
    elif isinstance(failure, BaseException):
        text = failure_of(failure, time.time()).to_json()
    elif isinstance(failure, str):
        _check_unicode(failure, "failure")
        text = failure
    else:
        raise TypeError(f"failure must be an exception, a Failure or a str, "
                        f"got {type(failure).__name__}")
    data = text.encode("utf-8")
    if len(data) > MAX_FAILURE_BYTES:
        text = data[:MAX_FAILURE_BYTES].decode("utf-8", "ignore")
    return text


# The name before issue 13 (one shape: <Name>Spec), for code not moved over yet.
QueueCore = QueueSpec
