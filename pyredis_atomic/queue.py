# GENERATED from pyredis_atomic/asyncio/queue.py by scripts/unasync.py: do not edit.
"""``ReliableQueue``: at-least-once delivery with leases, acks, redelivery and dead letters.

Replaces the ``RPUSH`` + ``LPOP`` recipe, where a consumer that dies after ``LPOP`` loses
the message for good. Each operation is one Lua script (``lua/queue_*.lua``); the logic
both APIs share lives in :mod:`pyredis_atomic._core.queue`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from redis import exceptions as redis_exc

from . import otel as _otel
from ._core.calls import Call, Durability, check_durability
from ._core.keys import DEFAULT_PREFIX
from ._core.queue import (
    DEFAULT_MAX_DELIVERIES,
    DEFAULT_VISIBILITY_TIMEOUT,
    MAX_BATCH,
    Claim,
    Failure,
    Message,
    QueueSpec,
    QueueStats,
    check_eviction_policy,
    check_limit,
    policies_from_reply,
)
from ._core.validate import check_timeout
from ._core.waiting import Deadline
from ._runtime import Client, check_client
from ._sync import Cancelled, CancelWatch, drive
from .registry import ScriptRegistry, default_registry

__all__ = ["Message", "ReliableQueue"]

T = TypeVar("T")

# maxmemory-policy per client, read once (None: CONFIG GET refused or renamed).
_POLICIES: weakref.WeakKeyDictionary[Any, list[str] | None] = weakref.WeakKeyDictionary()


def server_policies(client: Any) -> list[str] | None:
    """The client's server(s) ``maxmemory-policy``, cached per client; None if unknown."""
    try:
        return _POLICIES[client]
    except KeyError:
        pass
    try:
        policies: list[str] | None = policies_from_reply(
            client.config_get("maxmemory-policy"))
    except (redis_exc.ConnectionError, redis_exc.TimeoutError):
        return None  # not cached: ask again on the next queue operation's first use
    except redis_exc.RedisError:
        policies = None  # CONFIG disabled, renamed or denied by an ACL: cannot tell
    _POLICIES[client] = policies
    return policies


def _traceparent(trace: object) -> str | None:
    if not isinstance(trace, bool):
        raise TypeError(f"trace must be a bool, got {type(trace).__name__}")
    return _otel.traceparent() if trace else None


class ReliableQueue:
    """A reliable FIFO queue: every pushed message is delivered until it is acknowledged,
    or until it has been delivered ``max_deliveries`` times without an ack, when it moves
    to the dead letters.

    ``client``: a ``redis.Redis`` or ``redis.RedisCluster`` (any protocol,
    with or without ``decode_responses``). ``name``: the queue's name. ``visibility_timeout``:
    seconds a delivery is leased to its consumer; if it is neither acked nor extended by
    then, the message is delivered again. ``max_deliveries``: deliveries before a message is
    dead-lettered. ``prefix``: key namespace. ``allow_eviction``: by default the first
    operation raises :class:`~pyredis_atomic.EvictionPolicyError` if the server's
    ``maxmemory-policy`` may evict the queue's keys (``allkeys-*``); True accepts the risk.
    ``durability``: a :class:`~pyredis_atomic.Durability`; pushes then wait until that many
    replicas have the message, or raise :class:`~pyredis_atomic.DurabilityError`.
    ``registry``: the script registry to run on (default: the package's).

    Settings are per object: consumers of one queue should agree on ``max_deliveries``.
    """

    def __init__(
        self,
        client: Client,
        name: str,
        *,
        visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
        max_deliveries: int = DEFAULT_MAX_DELIVERIES,
        prefix: str = DEFAULT_PREFIX,
        allow_eviction: bool = False,
        durability: Durability | None = None,
        registry: ScriptRegistry | None = None,
    ) -> None:
        client = check_client(client)
        self._spec = QueueSpec(name, visibility_timeout=visibility_timeout,
                               max_deliveries=max_deliveries, prefix=prefix)
        if not isinstance(allow_eviction, bool):
            raise TypeError(f"allow_eviction must be a bool, got {type(allow_eviction).__name__}")
        self._allow_eviction = allow_eviction
        self._durability = check_durability(durability)
        self._client = client
        self._registry = registry or default_registry()
        self._run = self._registry.run
        self._checked = False

    # -- properties ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The queue's name."""
        return self._spec.name

    @property
    def prefix(self) -> str:
        """The key prefix (namespace)."""
        return self._spec.prefix

    @property
    def visibility_timeout(self) -> float:
        """Seconds a delivery is leased before the message is delivered again."""
        return self._spec.visibility_timeout

    @property
    def max_deliveries(self) -> int:
        """Deliveries without an ack before a message goes to the dead letters."""
        return self._spec.max_deliveries

    @property
    def keys(self) -> dict[str, str]:
        """The queue's Redis keys by role (all in one hash slot)."""
        return dict(self._spec.keys)

    def __repr__(self) -> str:
        return (f"ReliableQueue(name={self.name!r}, prefix={self.prefix!r}, "
                f"visibility_timeout={self.visibility_timeout}, "
                f"max_deliveries={self.max_deliveries})")

    def _check_server(self) -> None:
        policies = server_policies(self._client)
        if policies is not None:
            check_eviction_policy(policies, allow=self._allow_eviction, key=self._spec.base)
        self._checked = True

    # -- producing -----------------------------------------------------------------------
    def push(self, payload: bytes | str, *, delay: float = 0.0, priority: int = 0,
             dedup_key: str | None = None, trace: bool = False) -> str:
        """Push one message; return its id.

        ``payload``: bytes (a str is stored as UTF-8). ``delay``: seconds before it can be
        delivered. ``dedup_key``: while a message pushed with this key is still queued
        (pending, delayed or in flight), pushing again with the key pushes nothing and
        returns the queued message's id; this also makes a re-sent push idempotent (the
        queued message keeps its own priority and delay). ``priority``: 0 (the default,
        lowest) to 3; a ready message of a higher priority is always claimed before one of
        a lower priority, FIFO within a priority (given-back messages go to the front of
        their priority). Delays, dedup, retries, dead letters and redrive keep it.
        ``trace``: store the current OpenTelemetry trace context (W3C ``traceparent``) with
        the message, so the consumer's span links to the producer's (with
        :func:`pyredis_atomic.otel.instrument` on; otherwise nothing is stored). The
        consumer gets it as :attr:`Message.traceparent`; ``payload`` is unchanged.
        """
        call = self._spec.push_call(payload, delay=delay, dedup_key=dedup_key,
                                    priority=priority, traceparent=_traceparent(trace))
        if not self._checked:
            self._check_server()
        return self._write(call)[0]

    def push_many(self, payloads: Iterable[bytes | str], *, delay: float = 0.0,
                  priority: int = 0, dedup_keys: Iterable[str] | None = None,
                  trace: bool = False) -> list[str]:
        """Push several messages in order (one script call per 1000); return their ids.

        ``dedup_keys``: one per payload, as for :meth:`push`; ``priority``: of every message;
        ``trace``: as for :meth:`push` (one trace context for them all).
        """
        calls = self._spec.push_calls(list(payloads), delay=delay,
                                      dedup_keys=None if dedup_keys is None
                                      else list(dedup_keys), priority=priority,
                                      traceparent=_traceparent(trace))
        if not self._checked:
            self._check_server()
        ids: list[str] = []
        for call in calls:
            batch: list[str] = self._write(call)
            ids.extend(batch)
        return ids

    def _write(self, call: Call[T]) -> T:
        """A push: through ``WAIT`` for the replicas when the queue has a durability
        setting (a DurabilityError leaves the message queued on the primary: push again
        with the same ``dedup_key`` to retry without a duplicate)."""
        d = self._durability
        if d is None:
            return self._run(self._client, call)
        return self._registry.run_durable(self._client, call, d.replicas, d.timeout)

    # -- consuming -----------------------------------------------------------------------
    def _claim(self, n: int, timeout: float | None,
               acks: list[Message] | None = None) -> Claim:
        watch = CancelWatch()
        if not self._checked:
            self._check_server()
        deadline = Deadline(timeout) if timeout else None
        claim = self._run(self._client, self._spec.claim_call(n, acks or ()))
        if watch.requested():  # a cancellation the client swallowed (see CancelWatch)
            raise Cancelled
        if claim.messages or deadline is None:
            return claim
        flow = self._spec.claim_flow(n, deadline, acks or (), first=claim)
        return drive(self._client, flow, self._registry, watch=watch)

    def pop(self, timeout: float | None = None) -> Message | None:
        """Claim the next message, leased for ``visibility_timeout`` seconds.

        ``timeout``: None or 0 returns None at once when nothing is ready; a number of
        seconds waits up to that long (woken by a push within milliseconds).
        """
        timeout = check_timeout(timeout)
        messages = self._claim(1, timeout).messages
        return messages[0] if messages else None

    def pop_many(self, n: int, timeout: float | None = None) -> list[Message]:
        """Claim up to ``n`` messages (FIFO); wait up to ``timeout`` for the first one."""
        n = QueueSpec.check_count(n)
        timeout = check_timeout(timeout)
        messages = self._claim(min(n, MAX_BATCH), timeout).messages
        while len(messages) < n and len(messages) % MAX_BATCH == 0 and messages:
            more = (self._claim(min(n - len(messages), MAX_BATCH), None)).messages
            if not more:
                break
            messages.extend(more)
        return messages

    def ack(self, msg: Message) -> bool:
        """Acknowledge a delivery: the message is done and deleted.

        False if this delivery is no longer current (its lease expired and the message was
        requeued or redelivered, or it was already acked): a stale ack never removes a
        newer delivery. Re-sending an ack that was applied returns False and changes
        nothing.
        """
        self._spec.check_message(msg)
        return self._claim(0, None, [msg]).acked == 1

    def ack_many(self, msgs: Iterable[Message]) -> int:
        """Acknowledge several deliveries; return how many were current."""
        checked = self._spec.check_messages(msgs)
        if not self._checked:
            self._check_server()
        acked = 0
        for i in range(0, len(checked), MAX_BATCH):
            call = self._spec.claim_call(0, checked[i:i + MAX_BATCH])
            claim = self._run(self._client, call)
            acked += claim.acked
        return acked

    def ack_and_pop(self, msg: Message,
                    timeout: float | None = None) -> tuple[bool, Message | None]:
        """Acknowledge ``msg`` and claim the next message in the same script call (one
        round trip per message in a consumer loop). Returns ``(acked, next_message)``;
        ``timeout`` as for :meth:`pop`.
        """
        self._spec.check_message(msg)
        timeout = check_timeout(timeout)
        claim = self._claim(1, timeout, [msg])
        return claim.acked == 1, (claim.messages[0] if claim.messages else None)

    def nack(self, msg: Message, delay: float = 0.0, *,
             failure: BaseException | Failure | str | None = None,
             counted: bool = True) -> None:
        """Give a delivery back: ready again at once (front of the queue) or after
        ``delay`` seconds. The delivery counts: on its ``max_deliveries``-th delivery the
        message goes to the dead letters instead. A stale receipt (or a re-send of an
        applied nack) changes nothing.

        ``failure``: an exception (recorded with its type, message, last frames and the
        time), a :class:`Failure` or a str, stored with the dead letter if this nack buries
        the message (see :meth:`dead_letters`). ``counted=False``: this delivery is not an
        attempt (a consumer that stops gives back work it did not do): the message is never
        dead-lettered by it and its next delivery has the same number.
        """
        self._spec.check_message(msg)
        call = self._spec.nack_call(msg, delay, counted=counted, failure=failure)
        if not self._checked:
            self._check_server()
        self._run(self._client, call)

    def extend(self, msg: Message, visibility_timeout: float | None = None) -> bool:
        """Renew the lease of a delivery to ``visibility_timeout`` seconds from now (default:
        the queue's). False if the delivery is no longer current (the work was lost)."""
        self._spec.check_message(msg)
        call = self._spec.extend_call(msg, visibility_timeout)
        if not self._checked:
            self._check_server()
        return self._run(self._client, call)

    # -- operations ----------------------------------------------------------------------
    def requeue_expired(self, limit: int = 10_000) -> int:
        """Move up to ``limit`` expired leases back to pending (or to the dead letters past
        ``max_deliveries``); return how many moved. Consumers do this on their own with
        every claim and ack; this is for operators (a queue with no consumers left)."""
        limit = check_limit(limit)
        if not self._checked:
            self._check_server()
        moved = 0
        while moved < limit:
            batch = min(limit - moved, MAX_BATCH)
            claim = self._run(self._client, self._spec.claim_call(0, (), reclaim=batch))
            moved += claim.reclaimed
            if claim.reclaimed < batch:
                break
        return moved

    def stats(self) -> QueueStats:
        """``{"pending", "in_flight", "delayed", "dead", "oldest_pending_age",
        "pending_by_priority"}``: counts by state (pending: every priority), the seconds
        since the oldest message at the front of a priority's pending list was pushed (None
        when nothing is pending), and the pending count of each priority, 0 first."""
        return self._run(self._client, self._spec.stats_call())

    def dead_letters(self, limit: int = 100, offset: int = 0) -> list[Message]:
        """Dead letters, oldest death first, with their delivery counts, ``dead_reason``,
        ``dead_at`` and ``failure`` (the last failure recorded, or None)."""
        return self._run(self._client, self._spec.dead_call(limit, offset))

    def redrive(self, ids: Iterable[str] | None = None) -> int:
        """Move dead letters (all, or those with the given ids) back to the tail of pending
        as new messages: new ids, delivery count zero. Returns how many moved; ids that are
        not dead letters are skipped, so a re-send moves nothing twice."""
        calls = self._spec.redrive_calls(ids)
        if not self._checked:
            self._check_server()
        if calls is not None:
            moved = 0
            for call in calls:
                moved += self._run(self._client, call)
            return moved
        moved = 0
        while True:
            got = self._run(self._client, self._spec.redrive_all_call())
            moved += got
            if got < MAX_BATCH:
                return moved

    def purge(self, *, dead_only: bool = False,
              on_batch: Callable[[int, int], object] | None = None) -> int:
        """Delete every message (pending, in flight, delayed and dead), or only the dead
        letters; return how many were deleted. In-flight deliveries' acks then return
        False. Works in batches, so it never blocks Redis for long; ``on_batch(deleted,
        left)``, if given, is called after each batch with the running count and what is
        still to delete (the CLI's progress line)."""
        if on_batch is not None and not callable(on_batch):
            raise TypeError(f"on_batch must be callable, got {type(on_batch).__name__}")
        call = self._spec.purge_call(dead_only)
        deleted = 0
        while True:
            gone, left = self._run(self._client, call)
            deleted += gone
            if on_batch is not None:
                on_batch(deleted, left)
            if left == 0 or gone == 0:
                return deleted
