"""The I/O-free part of the near cache (``Cache(..., near=NearCache(...))``): the local LRU,
the invalidation bookkeeping, the heartbeat rule and the statistics.

How a local entry stays correct (the shells in ``pyredis_atomic/_near.py`` and
``pyredis_atomic/asyncio/_near.py`` do the I/O):

* **What is kept.** Only an entry's *fresh copy* (see :mod:`pyredis_atomic._core.cache`),
  read together with its remaining life by ``cache_near_read.lua``. The local deadline is
  ``send time + PTTL``, so a local entry ends no later than the copy on the server: while
  it exists every XFetch draw up to ``FAST_GAP`` says "no refresh" (on server time), and a
  draw above it goes to the fetch script as without the near cache. ``NearCache.ttl``
  shortens the deadline further.
* **Invalidation.** One connection per primary node subscribes to
  ``__redis__:invalidate`` and turns on ``CLIENT TRACKING ... REDIRECT <itself> BCAST
  PREFIX <the cache's key head>``: the server sends the name of every key under the prefix
  that any client writes, expires, evicts, and ``None`` on ``FLUSHDB``/``FLUSHALL``. A
  message is mapped back to the user's key by string slicing (:meth:`NearStore.user_key`)
  and removes that one entry: O(1) in the number of local entries.
* **No install of a stale read.** A reader takes a :meth:`NearStore.ticket` (the reset
  epoch and the key's bucket generation) *before* it sends its read; an invalidation
  bumps the bucket's generation, a reset the epoch; :meth:`NearStore.install` keeps the
  value only if neither moved (checked under the store's lock, the same lock the
  invalidation takes). Either the invalidation of a write that followed the read comes
  before the install (then the install is refused) or after it (then it removes it).
* **The staleness bound.** Every ``max_staleness / 4`` the listener sends ``PING`` on the
  tracking connection. Redis answers it after every invalidation it queued before, on the
  same connection, so when the pong of a ping sent at ``t0`` is read, every write
  acknowledged before ``t0`` has been applied locally. Hits are served only while
  ``now < t0 + max_staleness`` (:attr:`NearStore.valid_until`), else they go to Redis.
  So no write is visible in Redis for longer than ``max_staleness`` while a near cache
  still serves the old value (on this host's monotonic clock). A connection that breaks,
  reconnects, answers out of turn, stops being a primary, or stays silent for
  ``2 * max_staleness`` resets the store (cleared, bypassed until tracking is back).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .cache import FAST_GAP
from .serializers import _DIGIT_MAP, _LONG_RUN, JSON, _orjson

__all__ = [
    "BUCKETS",
    "DUE",
    "INVALIDATE_CHANNEL",
    "LISTENER_NAME",
    "MISS",
    "Heartbeat",
    "NearCache",
    "NearStats",
    "NearStore",
    "listener_kwargs",
    "marked",
]

INVALIDATE_CHANNEL = b"__redis__:invalidate"
LISTENER_NAME = "pyredis-atomic-near"
MISS: Any = object()
DUE: Any = object()  # lookup_late: a local value exists, but this draw may refresh it
# Generation counters: a key's bucket is hash(key) & (BUCKETS - 1). More buckets: fewer
# installs refused because another key of the same bucket was written meanwhile.
BUCKETS = 4096
_MASK = BUCKETS - 1
# Decoded values of these types are shared between callers (nobody can change them);
# anything else is kept serialized and decoded per hit, so callers never share a mutable.
_IMMUTABLE = frozenset({str, int, float, bool, bytes, type(None)})
# Python object overhead charged per entry against max_bytes on top of the serialized
# value and the key (bytes and str headers, the entry tuple, the LRU slot: ~250 B measured).
ENTRY_OVERHEAD = 250


def _positive_int(value: object, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"NearCache({argument}=...) must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"NearCache({argument}=...) must be at least 1, got {value}")
    return value


def _seconds(value: object, argument: str, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"NearCache({argument}=...) must be a number of seconds, got "
                        f"{type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds) or seconds < minimum:
        raise ValueError(f"NearCache({argument}=...) must be a finite number of seconds >= "
                         f"{minimum}, got {value!r}")
    return seconds


@dataclass(frozen=True)
class NearCache:
    """Settings of a near cache: ``Cache(client, name, ttl, near=NearCache(...))``.

    ``max_entries``: most values kept in process memory (least recently used go first).
    ``max_bytes``: optionally, most bytes kept (serialized value and key, plus ~250 bytes
    per entry).
    ``ttl``: optionally, the longest a value is served locally (seconds); it is never served
    longer than its fresh copy lives in Redis anyway. ``max_value_bytes``: larger serialized
    values are not kept locally (read from Redis every time). ``max_staleness``: the bound
    on how long after a write is acknowledged its old value may still be served here
    (seconds; default 0.5): hits are served only while the invalidation connection proved
    itself within that time. ``shared``: hand every caller the same decoded object, also for
    mutable values (faster: no decoding per hit; the callers must then never change what
    they get). By default only immutable values are shared and anything else is decoded
    per hit.
    """

    max_entries: int = 10_000
    max_bytes: int | None = None
    ttl: float | None = None
    max_value_bytes: int = 1 << 20
    max_staleness: float = 0.5
    shared: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.shared, bool):
            raise TypeError(f"NearCache(shared=...) must be a bool, got "
                            f"{type(self.shared).__name__}")
        _positive_int(self.max_entries, "max_entries")
        if self.max_bytes is not None:
            _positive_int(self.max_bytes, "max_bytes")
        if self.ttl is not None:
            _seconds(self.ttl, "ttl", 0.001)
        _positive_int(self.max_value_bytes, "max_value_bytes")
        _seconds(self.max_staleness, "max_staleness", 0.05)

    @classmethod
    def resolve(cls, near: object) -> NearCache | None:
        """``Cache(near=...)``: ``None``/``False`` (off), ``True`` (defaults) or a NearCache."""
        if near is None or near is False:
            return None
        if near is True:
            return cls()
        if isinstance(near, cls):
            return near
        raise TypeError(f"near must be a NearCache, True or None, got {type(near).__name__}")


@dataclass(frozen=True)
class NearStats:
    """``Cache.near_stats()``: counters since the cache was made, and the current size.

    ``hits``/``misses``: lookups answered locally / not; ``bypassed``: lookups sent to Redis
    because tracking was not proven within ``max_staleness``; ``invalidations``: local
    entries removed by the server's messages (or this process's own writes); ``evictions``:
    removed for room; ``resets``: times the whole store was cleared (connection trouble,
    FLUSHDB/FLUSHALL, failover); ``refused``: reads not kept (raced an invalidation, or
    oversized); ``size``/``bytes``: entries and charged bytes now; ``tracking``: whether
    hits are being served locally right now. The hit path counts without a lock, so with
    many threads a few increments of ``hits``/``misses``/``bypassed`` may be lost.
    """

    hits: int
    misses: int
    bypassed: int
    invalidations: int
    evictions: int
    resets: int
    refused: int
    size: int
    bytes: int
    tracking: bool


@dataclass
class NearStore:
    """The local entries of one near cache, shared by threads (or tasks) and the listener.

    Hits (:meth:`lookup`) take no lock: each dict operation is atomic under the GIL, and a
    hit only reads. Installs, invalidations, evictions and resets take ``_lock``.
    Entries: ``key -> (deadline, obj, decode, full_only, size, delta)``: ``obj`` is the value
    itself (``decode`` None) or its payload, decoded per hit by ``decode``.
    """

    config: NearCache
    head: str  # every key of this cache starts with it (the BCAST prefix)
    loads: Any  # the serializer's loads
    valid_until: float = 0.0  # monotonic; hits only before it (see the module docstring)
    epoch: int = 0
    hits: int = 0
    misses: int = 0
    bypassed: int = 0
    invalidations: int = 0
    evictions: int = 0
    resets: int = 0
    refused: int = 0
    charged: int = 0  # bytes charged against max_bytes
    _data: OrderedDict[str, tuple[float, Any, Any, bool, int, float]] = field(
        default_factory=OrderedDict)
    _gens: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _nodes: dict[str, float] = field(default_factory=dict)
    flights: dict[str, Any] = field(default_factory=dict)

    # -- the hit path ---------------------------------------------------------------------
    def lookup(self, key: str, full_ok: bool) -> Any:
        """The local value of ``key`` or :data:`MISS`. ``full_ok``: the caller accepts a copy
        written with early refresh off (``get()``, or a cache with ``early_refresh=0``)."""
        # The hit is tested in one condition; a miss is told from a bypass only after it,
        # off the hot path.
        e = self._data.get(key)
        now = time.monotonic()
        if e is not None and now < e[0] and now < self.valid_until and (full_ok or not e[3]):
            try:  # noqa: SIM105 (the hit path: suppress() costs a context manager per hit)
                self._data.move_to_end(key)
            except KeyError:  # removed by another thread just now: the value was still valid
                pass
            self.hits += 1
            decode = e[2]
            return e[1] if decode is None else decode(e[1])
        if now >= self.valid_until:
            self.bypassed += 1
        else:
            self.misses += 1
        return MISS

    def lookup_late(self, key: str, full_ok: bool, draw: float) -> Any:
        """:meth:`lookup` for an XFetch draw above ``FAST_GAP`` (``draw``: ``beta * -ln(1-u)``):
        the local value while ``now + delta * draw`` is still before the logical expiry
        (``deadline + delta * FAST_GAP`` on this host's clock: the copy ends that long before
        it); :data:`DUE` when a refresh may be due (the fetch script then decides on server
        time), MISS when there is no local value."""
        e = self._data.get(key)
        if e is None:
            return self.lookup(key, full_ok)  # a plain miss (counted there)
        if time.monotonic() + e[5] * (draw - FAST_GAP) >= e[0]:
            self.misses += 1
            return DUE
        return self.lookup(key, full_ok)

    # -- installing a value read from Redis ------------------------------------------------
    def ticket(self, key: str) -> tuple[int, int] | None:
        """Taken before a read whose result may be installed; ``None``: do not install."""
        if time.monotonic() >= self.valid_until:
            return None
        return self.epoch, self._gens[hash(key) & _MASK]

    def generation(self, key: str) -> int:
        """The invalidation generation of ``key``'s bucket (see :meth:`settled`)."""
        return self._gens[hash(key) & _MASK]

    def settled(self, key: str, generation: int) -> bool:
        """Whether an invalidation of ``key``'s bucket came since ``generation`` was read
        (a caller that just wrote ``key`` waits for its own write's message, so that its
        next read is not refused because of it)."""
        return self._gens[hash(key) & _MASK] != generation or time.monotonic() >= self.valid_until

    def install(self, key: str, ticket: tuple[int, int] | None, payload: bytes, value: Any,
                deadline: float, full_only: bool, delta: float) -> bool:
        """Keep ``value`` (decoded from ``payload``) until ``deadline`` (monotonic) if no
        invalidation or reset came since ``ticket`` was taken. ``delta``: the entry's
        recompute time in seconds (``inf`` when unknown: late draws then go to Redis)."""
        cfg = self.config
        if cfg.ttl is not None:
            deadline = min(deadline, time.monotonic() + cfg.ttl)
        size = len(payload) + len(key) + ENTRY_OVERHEAD
        if ticket is None or len(payload) > cfg.max_value_bytes or (
                cfg.max_bytes is not None and size > cfg.max_bytes):
            self.refused += 1
            return False
        decode = (None if cfg.shared or type(value) in _IMMUTABLE
                  else decoder_for(self.loads, payload))
        entry = (deadline, payload if decode else value, decode, full_only, size, delta)
        with self._lock:
            if (ticket[0] != self.epoch or ticket[1] != self._gens[hash(key) & _MASK]
                    or deadline <= time.monotonic()):
                self.refused += 1
                return False
            old = self._data.pop(key, None)
            if old is not None:
                self.charged -= old[4]
            self._data[key] = entry
            self.charged += size
            data = self._data
            while len(data) > cfg.max_entries or (
                    cfg.max_bytes is not None and self.charged > cfg.max_bytes):
                _, gone = data.popitem(last=False)
                self.charged -= gone[4]
                self.evictions += 1
        return True

    # -- invalidation ---------------------------------------------------------------------
    def user_key(self, redis_key: bytes | str) -> str | None:
        """The user's key whose fresh copy ``redis_key`` is, or ``None`` (another part of an
        entry, or not this cache's)."""
        if isinstance(redis_key, bytes):
            try:
                redis_key = redis_key.decode("utf-8")
            except UnicodeDecodeError:
                return None
        head = self.head
        if not (redis_key.startswith(head) and redis_key.endswith("}:f")):
            return None
        name = redis_key[len(head) + 1:-3]
        if "%" in name:
            name = name.replace("%7B", "{").replace("%7D", "}").replace("%25", "%")
        return name

    def forget(self, key: str) -> None:
        """Remove ``key``'s local value and refuse installs of reads that began before."""
        with self._lock:
            self._gens[hash(key) & _MASK] += 1
            old = self._data.pop(key, None)
            if old is not None:
                self.charged -= old[4]
                self.invalidations += 1

    def invalidated(self, keys: list[Any] | None) -> None:
        """An invalidation message: the keys written, or ``None`` for a flush of the db."""
        if keys is None:
            self.clear(keep_tracking=True)
            return
        for raw in keys:
            key = self.user_key(raw)
            if key is not None:
                self.forget(key)

    def clear(self, *, keep_tracking: bool = False) -> None:
        """Drop everything and refuse every read in flight; unless ``keep_tracking``, also
        stop serving hits until every node has proven tracking again."""
        with self._lock:
            self.epoch += 1
            self._data.clear()
            self.charged = 0
            self.resets += 1
            if not keep_tracking:
                self._nodes.clear()
                self.valid_until = 0.0

    # -- nodes (one listener connection per primary) ---------------------------------------
    def expect_nodes(self, names: list[str]) -> None:
        """The nodes a session listens to; hits wait for a proof from each."""
        with self._lock:
            self._nodes = dict.fromkeys(names, 0.0)
            self.valid_until = 0.0

    def listened(self) -> dict[str, float]:
        """The nodes of the current session (name -> proven until), for membership tests
        without the lock (each a single dict operation)."""
        return self._nodes

    def covers(self, primaries: Iterable[str]) -> bool:
        """Whether every primary named (the cluster client's view) is listened to. A read
        that the client followed (MOVED) to a primary it just learned of is not kept
        locally until the listener tracks there too: the session restarts within 50 ms of
        the change, but a write there before that would not reach us."""
        known = self._nodes
        return all(name in known for name in primaries)

    def proven(self, node: str, sent: float) -> None:
        """The pong of a ping sent at ``sent`` (monotonic) came back from ``node``."""
        with self._lock:
            if node not in self._nodes:
                return
            self._nodes[node] = max(self._nodes[node], sent + self.config.max_staleness)
            self.valid_until = min(self._nodes.values())

    def stats(self) -> NearStats:
        """The counters now."""
        return NearStats(hits=self.hits, misses=self.misses, bypassed=self.bypassed,
                         invalidations=self.invalidations, evictions=self.evictions,
                         resets=self.resets, refused=self.refused, size=len(self._data),
                         bytes=self.charged, tracking=time.monotonic() < self.valid_until)


@dataclass
class Heartbeat:
    """The ping rule of one tracking connection: one ping in flight at a time, sent every
    ``max_staleness / 4``; a pong later than ``2 * max_staleness`` breaks the connection."""

    max_staleness: float
    sent: float | None = None  # send time of the ping in flight
    seq: int = 0
    last: float = field(default_factory=time.monotonic)

    def due(self, now: float) -> bool:
        """Whether to send a ping now."""
        return self.sent is None and now - self.last >= self.max_staleness / 4

    def ping(self, now: float) -> bytes:
        """Record a ping sent now; its payload."""
        self.seq += 1
        self.sent = now
        return b"hb%d" % self.seq

    def pong(self, payload: Any) -> float:
        """A pong arrived: the send time of its ping. ``ValueError`` if it is not ours."""
        if self.sent is None or payload != b"hb%d" % self.seq:
            raise ValueError(f"unexpected pong {payload!r}")
        sent, self.sent = self.sent, None
        self.last = sent
        return sent

    def late(self, now: float) -> bool:
        """The ping in flight is overdue: treat the connection as broken."""
        return self.sent is not None and now - self.sent > 2 * self.max_staleness

    def wait(self, now: float) -> float:
        """How long the listener may block reading before it has something to do."""
        if self.sent is None:
            return max(0.0, self.last + self.max_staleness / 4 - now)
        return max(0.0, self.sent + 2 * self.max_staleness - now)


# Pool settings that must not reach a tracking connection: it is never retried or
# health-checked behind our back (a silent reconnect would lose the subscription).
_DROP = ("retry", "retry_on_error", "retry_on_timeout", "health_check_interval",
         "redis_connect_func", "cache", "cache_config", "maint_notifications_config",
         "maint_notifications_pool_handler", "orig_host_address", "orig_socket_timeout",
         "orig_socket_connect_timeout", "himport_registry", "legacy_responses")


def decoder_for(loads: Any, payload: bytes) -> Any:
    """The function that decodes ``payload`` per hit: ``loads``, or for the json serializer
    with orjson, ``orjson.loads`` itself when ``loads`` would choose it for this payload
    anyway (no run of 19 digits, orjson reads it): the check is made once, not per hit."""
    if loads is not JSON.loads or _orjson is None:
        return loads
    if _LONG_RUN in payload.translate(_DIGIT_MAP):
        return loads
    try:
        _orjson.loads(payload)
    except _orjson.JSONDecodeError:
        return loads
    return _orjson.loads


def marked(loader: Any, ran: list[bool]) -> Any:
    """Call ``loader``, noting in ``ran`` that it ran (so a fill was sent)."""
    ran.append(True)
    return loader()


def listener_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Connection arguments for a tracking connection, from a pool's: RESP2 (the
    invalidations arrive as pub/sub messages, the same on every redis-py version and
    parser), bytes replies, no retries, no client-side cache."""
    out = {k: v for k, v in kwargs.items() if k not in _DROP}
    out["protocol"] = 2
    out["decode_responses"] = False
    out["health_check_interval"] = 0
    out["client_name"] = LISTENER_NAME  # so operators (and tests) can find it in CLIENT LIST
    return out


def pong_payload(reply: Any) -> Any:
    """The payload of a subscribed-mode pong (``[b"pong", payload]``), else MISS."""
    if type(reply) is list and len(reply) == 2 and reply[0] == b"pong":
        return reply[1]
    return MISS


def invalidation(reply: Any) -> tuple[bool, list[Any] | None]:
    """``(True, keys)`` for an invalidation message (keys ``None``: flush), else
    ``(False, None)``."""
    if (type(reply) is list and len(reply) == 3 and reply[0] == b"message"
            and reply[1] == INVALIDATE_CHANNEL):
        keys = reply[2]
        return True, (None if keys is None else list(keys))
    return False, None
