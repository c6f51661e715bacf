"""The I/O-free core of :class:`pyredis_atomic.Cache` and its asyncio twin.

Layout of one entry (``KeyLayout("cache", prefix).key(key, part, scope=cache_name)``, so
both keys of an entry share the entry's hash tag and every entry may live on another
cluster slot):

``...:{<key>}:e`` (hash)
    the value ``p`` (serialized; empty for a stored ``None``, flagged by ``n``), the
    serializer name ``f``, the loader's duration ``d`` (ms, for XFetch), the logical expiry
    ``e`` and the end of the stale window ``s`` (absolute server ms), the writer's token
    ``wt``; and the fill lease: holder token ``lt``, lease end ``lx``, waiter count ``w``.
    One hash, so a hit reads one key and the lease can never outlive or miss its value.
``...:{<key>}:wake`` (list)
    wake-up signals: a fill pushes one per waiter, a failed loader one (for its successor).
``...:{<key>}:f`` (string, with ``fast_hits``)
    the fresh copy: ``<tag><kind><payload>``, where ``tag`` names the serializer
    (:func:`copy_tag`) and ``kind`` is one byte (:data:`COPY_VALUE` and friends). The
    scripts that change the value (fill, set, delete) rewrite or delete it in the same
    script, so it is never newer or older than the hash. It expires ``delta * FAST_GAP`` ms
    before the logical expiry ``e`` (``delta``: the recompute time), so while it exists
    ``now + delta * x < e`` for every XFetch draw ``x <= FAST_GAP``: the rule says "no
    refresh", and a hit is one native ``GET`` instead of a script. A draw above
    ``FAST_GAP`` (probability ``exp(-FAST_GAP / beta)``) or a missing copy runs the fetch
    script with the same draw, which decides exactly as without the copy.

The flow of ``get_or_set`` is written once here; the front ends only perform its effects,
including :class:`RunLoader` (call the user's loader: plain call or ``await``).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from hashlib import sha256
from itertools import count
from typing import Any, TypeVar

from ..errors import (
    ConnectionLostError,
    DecodeError,
    EncodeError,
    ReplyTimeoutError,
    WrongTypeError,
)
from . import events, wire
from .calls import Call, Effect, is_redis_error
from .keys import DEFAULT_PREFIX, KeyLayout, check_name, check_prefix
from .replies import as_int
from .reports import Report
from .script import keyed
from .serializers import Serializer, resolve_serializer
from .servers import is_wrong_type
from .validate import check_flag, check_seconds, check_timeout, to_millis
from .waiting import Deadline, wait_step

__all__ = [
    "FAST_GAP",
    "FETCH",
    "HIT",
    "LOAD",
    "NEAR_READ",
    "REFRESH",
    "STALE",
    "UNSET",
    "WAIT",
    "CacheEntryInfo",
    "CacheFlow",
    "CacheSpec",
    "Options",
    "RunLoader",
    "build_key",
    "copy_read_error",
    "copy_tag",
    "new_token",
]

log = logging.getLogger("pyredis_atomic.cache")

FETCH = "cache_fetch"
FILL = "cache_fill"
RELEASE = "cache_release"
SET = "cache_set"
DELETE = "cache_delete"
PEEK = "cache_peek"
NEAR_READ = "cache_near_read"
INSPECT = "cache_inspect"
#: Each script's KEYS by the names its header gives them, as indexes into (entry, wake,
#: copy): calls are built by key name, not by a hand-ordered tuple.
_ROLES: dict[str, tuple[int, ...]] = {
    script: keyed(script, {"entry": 0, "wake": 1, "copy": 2})
    for script in (FETCH, RELEASE, FILL, SET, DELETE, PEEK, INSPECT, NEAR_READ)
}

# Reply kinds of cache_fetch.lua
HIT, LOAD, REFRESH, WAIT, MISMATCH, STALE = 0, 1, 2, 3, 4, 5

# The fresh copy (see the module docstring): it ends FAST_GAP recompute times before the
# logical expiry. Larger: fewer hits fall back to the script (exp(-G / beta) of them), but
# the copy vanishes earlier (delta * G ms before expiry, all hits then use the script).
FAST_GAP = 5
# Kinds of copy: a value / a stored None, readable with any XFetch draw up to FAST_GAP
# (written with that margin, or with no recompute time); or with early refresh off only
# (written by a load with early refresh off: the copy lasts until the logical expiry).
# The kinds are wire constants (defined once, in _core/wire.py, for Lua and Python alike).
COPY_VALUE, COPY_NONE, COPY_VALUE_FULL, COPY_NONE_FULL = (
    k.encode() for k in (wire.COPY_VALUE, wire.COPY_NONE, wire.COPY_VALUE_FULL,
                         wire.COPY_NONE_FULL))

UNSET: Any = object()
_UNSET = UNSET
KEY_MEMO = 4096
T = TypeVar("T")


# Tokens: unique per get_or_set call across processes and hosts, and cheap (the hit path
# makes one): a random per-process prefix and a counter; a forked child draws a new prefix.
def _new_prefix() -> str:
    return os.urandom(9).hex() + ":"


_token_state: list[Any] = [_new_prefix(), count(1)]


def _reseed() -> None:
    _token_state[0] = _new_prefix()
    _token_state[1] = count(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def new_token() -> str:
    """A lease token no other call anywhere uses."""
    return f"{_token_state[0]}{next(_token_state[1])}"


@dataclass(frozen=True)
class RunLoader:
    """Effect: call the user's loader (awaiting it in asyncio); its value is sent back, its
    exception thrown in. ``release`` is the call that frees the lease if the loader is
    abandoned (cancelled); ``None`` when the caller loads without a lease."""

    release: Call[Any] | None


CacheEffect = Effect | RunLoader
CacheFlow = Generator[CacheEffect, Any, T]


@dataclass(frozen=True)
class Options:
    """Resolved per-call settings, in the units the scripts take."""

    ttl_ms: int
    stale_ms: int
    lease_ms: int
    wait_timeout: float | None
    beta: float
    none_ms: int | None  # None: a None result is not stored
    fast: float = 0.0  # read the fresh copy when the uniform draw u < fast (0: never)
    copy_gap: int = -1  # ARGV copy_gap of cache_fill: FAST_GAP, 0 (until expiry), -1 (none)


def _check_beta(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"early_refresh must be a number (XFetch beta), got "
                        f"{type(value).__name__}")
    beta = float(value)
    if math.isnan(beta) or math.isinf(beta) or beta < 0:
        raise ValueError(f"early_refresh must be a finite number >= 0, got {value!r}")
    return beta


def _check_stale(value: object) -> int:
    if isinstance(value, bool):
        raise TypeError("stale_ttl must be a number of seconds, got bool")
    if value == 0:
        return 0
    return to_millis(check_seconds(value, "stale_ttl"))


def _check_none(value: object, ttl_ms: int) -> int | None:
    """``cache_none``: False (do not store None), True (store it for ttl), or seconds."""
    if value is False:
        return None
    if value is True:
        return ttl_ms
    return to_millis(check_seconds(value, "cache_none"))


def _fast(beta: float, fast_hits: bool) -> tuple[float, int]:
    """``(fast, copy_gap)``: read the copy when ``u < fast``, i.e. when the XFetch draw
    ``beta * -ln(1 - u)`` is at most FAST_GAP (always when early refresh is off)."""
    if not fast_hits:
        return 0.0, -1
    if beta == 0:
        return 1.0, 0
    return -math.expm1(-FAST_GAP / beta), FAST_GAP


def copy_tag(name: str) -> bytes:
    """The serializer tag that starts a fresh copy: length-prefixed, so no tag is a prefix
    of another (a ``raw`` cache never takes a ``pickle`` copy for its own)."""
    data = name.encode("utf-8")
    return b"%d:%s" % (len(data), data)


def _describe(key: str) -> str:
    return key if len(key) <= 200 else key[:200] + "..."


class CacheSpec:
    """Keys, options, calls, value coding and the get_or_set flow of one named cache."""

    def __init__(
        self,
        name: object,
        *,
        ttl: object,
        serializer: object = "json",
        prefix: object = DEFAULT_PREFIX,
        lock_ttl: object = 10.0,
        wait_timeout: object = 10.0,
        early_refresh: object = 1.0,
        stale_ttl: object = 0,
        cache_none: object = False,
        fast_hits: object = True,
    ) -> None:
        self.name = check_name(name, "name")
        self.fast_hits = check_flag(fast_hits, "fast_hits")
        self.layout = KeyLayout("cache", check_prefix(prefix))
        self.serializer: Serializer = resolve_serializer(serializer)
        self.format = self.serializer.name
        self._dumps = self.serializer.dumps
        self._loads = self.serializer.loads
        self.tag = copy_tag(self.format)
        self.hit_prefix = self.tag + COPY_VALUE
        self.hit_len = len(self.hit_prefix)
        ttl_ms = to_millis(check_seconds(ttl, "ttl"))
        beta = _check_beta(early_refresh)
        fast, copy_gap = _fast(beta, self.fast_hits)
        self.defaults = Options(
            ttl_ms=ttl_ms,
            stale_ms=_check_stale(stale_ttl),
            lease_ms=to_millis(check_seconds(lock_ttl, "lock_ttl")),
            wait_timeout=check_timeout(wait_timeout, "wait_timeout"),
            beta=beta,
            none_ms=_check_none(cache_none, ttl_ms),
            fast=fast,
            copy_gap=copy_gap,
        )
        self._cache_none = cache_none
        self._keys: dict[str, tuple[str, str]] = {}
        # every key of this cache starts with it (a near cache's BCAST tracking prefix)
        self.head = self.layout.key("", scope=self.name)[:-2]
        self._lease_arg = str(self.defaults.lease_ms)

    # -- keys -----------------------------------------------------------------------------
    def keys_of(self, key: object) -> tuple[str, str]:
        """``(entry, copy)``: the hash holding ``key``'s value and fill lease, and the
        string holding its fresh copy (same hash tag)."""
        # Hot keys are looked up again and again: remember recent ones (bounded).
        known = self._keys.get(key) if type(key) is str else None
        if known is not None:
            return known
        entry = self.layout.key(check_name(key, "key"), "e", scope=self.name)
        if len(self._keys) >= KEY_MEMO:
            self._keys.clear()
        pair = (entry, self.copy_key(entry))
        self._keys[key] = pair  # type: ignore[index]
        return pair

    def entry_key(self, key: object) -> str:
        """The hash holding ``key``'s value and fill lease."""
        return self.keys_of(key)[0]

    def call_keys(self, script: str, entry: str) -> tuple[str, ...]:
        """The ``KEYS`` of ``script`` for the entry hash ``entry``, in the order its header
        names them (``entry``, ``wake``, ``copy``: see :data:`_ROLES`)."""
        order = _ROLES[script]
        if order == (0,):  # the hit path's read: nothing else to build
            return (entry,)
        keys = (entry, self.wake_key(entry), self.copy_key(entry))
        return tuple(keys[i] for i in order)

    def wake_key(self, entry: str) -> str:
        """The wake-up list next to an entry hash (same hash tag)."""
        return entry[:-1] + "wake"

    def copy_key(self, entry: str) -> str:
        """The fresh copy next to an entry hash (same hash tag)."""
        return entry[:-1] + "f"

    # -- options --------------------------------------------------------------------------
    def options(
        self,
        ttl: object = None,
        *,
        lock_ttl: object = _UNSET,
        wait_timeout: object = _UNSET,
        early_refresh: object = _UNSET,
        stale_ttl: object = _UNSET,
        cache_none: object = _UNSET,
    ) -> Options:
        """The cache's defaults with the given per-call overrides (validated)."""
        d = self.defaults
        if (ttl is None and lock_ttl is _UNSET and wait_timeout is _UNSET
                and early_refresh is _UNSET and stale_ttl is _UNSET and cache_none is _UNSET):
            return d
        ttl_ms = d.ttl_ms if ttl is None else to_millis(check_seconds(ttl, "ttl"))
        none = self._cache_none if cache_none is _UNSET else cache_none
        beta = d.beta if early_refresh is _UNSET else _check_beta(early_refresh)
        fast, copy_gap = _fast(beta, self.fast_hits)
        return Options(
            ttl_ms=ttl_ms,
            stale_ms=d.stale_ms if stale_ttl is _UNSET else _check_stale(stale_ttl),
            lease_ms=(d.lease_ms if lock_ttl is _UNSET
                      else to_millis(check_seconds(lock_ttl, "lock_ttl"))),
            wait_timeout=(d.wait_timeout if wait_timeout is _UNSET
                          else check_timeout(wait_timeout, "wait_timeout")),
            beta=beta,
            none_ms=_check_none(none, ttl_ms),
            fast=fast,
            copy_gap=copy_gap,
        )

    # -- values ---------------------------------------------------------------------------
    def encode(self, entry: str, value: Any, argument: str = "value") -> tuple[bytes, str]:
        """``(payload, none_flag)``; :class:`EncodeError` (a ``TypeError``) naming the key."""
        if value is None:
            return b"", "1"
        try:
            return self._dumps(value), "0"
        except Exception as exc:
            raise EncodeError(
                f"cannot store {argument} of type {type(value).__name__} under "
                f"{_describe(entry)!r} with the {self.format!r} serializer: {exc}",
                key=entry,
            ) from exc

    def decode(self, entry: str, payload: Any, none: Any) -> Any:
        """A stored value; :class:`DecodeError` naming the key if it does not decode."""
        if none == 1:
            return None
        try:
            return self._loads(payload)
        except Exception as exc:
            raise DecodeError(
                f"the value under {_describe(entry)!r} does not decode with the "
                f"{self.format!r} serializer: {exc}",
                key=entry,
            ) from exc

    def read_copy(self, entry: str, copy: Any, full: bool) -> Any:
        """The value in a fresh copy (the front ends check the common kind inline first), or
        :data:`UNSET` if the script must decide: no copy, another serializer's, or one
        written with early refresh off while this read has it on (``full`` False)."""
        if copy is None or not copy.startswith(self.tag):
            return _UNSET
        kind = copy[len(self.tag):len(self.tag) + 1]
        if kind == COPY_VALUE or (full and kind == COPY_VALUE_FULL):
            return self.decode(entry, copy[len(self.tag) + 1:], 0)
        if kind == COPY_NONE or (full and kind == COPY_NONE_FULL):
            return None
        return _UNSET

    def copy_parts(self, entry: str, copy: Any) -> tuple[Any, bytes, bool] | None:
        """``(value, payload, full_only)`` of a fresh copy of this cache's serializer, or
        ``None``; ``full_only``: written with early refresh off (readable only by a caller
        whose early refresh is off too, or by ``get()``)."""
        if copy is None or not copy.startswith(self.tag):
            return None
        start = len(self.tag)
        kind = copy[start:start + 1]
        if kind in (COPY_VALUE, COPY_VALUE_FULL):
            payload = copy[start + 1:]
            return self.decode(entry, payload, 0), payload, kind == COPY_VALUE_FULL
        if kind in (COPY_NONE, COPY_NONE_FULL):
            return None, b"", kind == COPY_NONE_FULL
        return None

    def mismatch(self, entry: str, other: Any) -> DecodeError:
        """The entry was written with another serializer."""
        fmt = other.decode("utf-8", "replace") if isinstance(other, bytes) else str(other)
        return DecodeError(
            f"the value under {_describe(entry)!r} was written with the {fmt!r} serializer; "
            f"this cache uses {self.format!r} (two caches share a name with different "
            f"serializers?)",
            key=entry,
        )

    # -- calls ----------------------------------------------------------------------------
    def fetch_spec(self, token: str, opts: Options, u: float | None = None) -> str:
        """ARGV[1] of cache_fetch: ``"<gap> <lease_ms> <token> <format>"``; ``u`` is the
        uniform draw in [0, 1) the caller already made (for the fresh copy), else a new one."""
        beta = opts.beta
        # XFetch: refresh when now - delta * beta * ln(u) >= expiry. The draw is made here:
        # a script's random numbers are not independent per call.
        if u is None:
            u = random.random()
        gap = repr(beta * -math.log(1.0 - u)) if beta else "0"
        lease = self._lease_arg if opts is self.defaults else str(opts.lease_ms)
        return f"{gap} {lease} {token} {self.format}"

    def fetch_call(self, entry: str, token: str, opts: Options) -> Call[Any]:
        """The get_or_set read (may take the lease or register a waiter)."""
        return Call(FETCH, self.call_keys(FETCH, entry), (self.fetch_spec(token, opts),), raw=True)

    def release_call(self, entry: str, token: str, opts: Options) -> Call[int]:
        """Free our lease and wake one waiter."""
        return Call(RELEASE, self.call_keys(RELEASE, entry), (token, opts.lease_ms), as_int)

    def fill_call(self, entry: str, token: str, payload: bytes, none: str, *, opts: Options,
                  delta_ms: int) -> Call[int]:
        """Store the loaded value if our lease still holds (fenced); wake every waiter."""
        ttl_ms = opts.ttl_ms if none == "0" else (opts.none_ms or opts.ttl_ms)
        return Call(FILL, self.call_keys(FILL, entry),
                    (token, payload, none, self.format, ttl_ms, opts.stale_ms, delta_ms,
                     opts.lease_ms, self.tag, opts.copy_gap), as_int)

    def set_call(self, entry: str, payload: bytes, none: str, opts: Options) -> Call[int]:
        """Store unconditionally, revoking any lease."""
        ttl_ms = opts.ttl_ms if none == "0" else (opts.none_ms or opts.ttl_ms)
        return Call(SET, self.call_keys(SET, entry),
                    (payload, none, self.format, ttl_ms, opts.stale_ms, opts.lease_ms,
                     self.tag, 1 if self.fast_hits else 0), as_int)

    def delete_call(self, entry: str) -> Call[bool]:
        """Remove value and lease; wake the waiters."""
        return Call(DELETE, self.call_keys(DELETE, entry),
                    (self.defaults.lease_ms,),
                    lambda r: as_int(r) == 1)

    def peek_call(self, entry: str) -> Call[Any]:
        """Read a fresh value without loading."""
        return Call(PEEK, self.call_keys(PEEK, entry), (self.format,), raw=True)

    def inspect_call(self, entry: str) -> Call[Any]:
        """Describe an entry for operators."""
        return Call(INSPECT, self.call_keys(INSPECT, entry), (), raw=True)

    def peek_result(self, entry: str, reply: Any, default: Any) -> Any:
        """Decode cache_peek's reply."""
        kind = reply[0]
        if kind == 1:
            return self.decode(entry, reply[1], reply[2])
        if kind == MISMATCH:
            raise self.mismatch(entry, reply[1])
        return default

    # -- the get_or_set flow --------------------------------------------------------------
    def get_or_set_flow(self, entry: str, token: str, opts: Options, reply: Any) -> CacheFlow[Any]:
        """Everything after the first fetch (which the front ends send themselves, so a hit
        costs no generator): wait for another loader, or load, fill and wake."""
        deadline: Deadline | None = None
        wake = self.wake_key(entry)
        release = self.release_call(entry, token, opts)
        while True:
            if isinstance(reply, bytes):
                return self.decode(entry, reply, 0)
            kind = reply[0]
            if kind == HIT:
                return self.decode(entry, reply[1], reply[2])
            if kind == STALE:
                # Past its logical expiry, within stale_ttl, while another caller refreshes.
                events.emit("cache.stale_served", "cache %r: served a stale value of %r "
                            "while another caller refreshes it", self.name, entry,
                            cache=self.name, key=entry)
                return self.decode(entry, reply[1], reply[2])
            if kind == LOAD:
                return (yield from self._load(entry, token, opts, release, None))
            if kind == REFRESH:
                return (yield from self._load(entry, token, opts, release, reply))
            if kind == MISMATCH:
                raise self.mismatch(entry, reply[1])
            if kind != WAIT:
                raise DecodeError(f"unexpected reply from {FETCH}: {reply!r}", key=entry)
            if deadline is None:
                deadline = Deadline(opts.wait_timeout)
                events.emit("cache.stampede_wait", "cache %r: waiting for another caller's "
                            "loader of %r", self.name, entry, cache=self.name, key=entry)
            # Bounded by the lease: if its holder dies, the lease ends and we take over.
            step = wait_step(deadline, wake, as_int(reply[1]) / 1000.0)
            if step is None:
                # wait_timeout is over: load for ourselves, without the lease; the holder's
                # fill still stores its value (ours is returned, not stored).
                events.emit("cache.wait_timeout", "cache %r: waited wait_timeout for the "
                            "loader of %r; loading without the lease", self.name, entry,
                            cache=self.name, key=entry)
                return (yield RunLoader(None))
            yield step
            try:
                reply = yield self.fetch_call(entry, token, opts)
            except (GeneratorExit, Exception):
                raise
            except BaseException:
                # Cancelled while the fetch was in flight: it may have given us the lease.
                yield from _quietly(release)
                raise

    def _load(self, entry: str, token: str, opts: Options, release: Call[int],
              current: Any) -> CacheFlow[Any]:
        started = time.monotonic()
        try:
            value = yield RunLoader(release)
        except GeneratorExit:
            raise
        except BaseException as exc:
            yield from _quietly(release)
            if current is not None and isinstance(exc, Exception):
                # An early refresh failed, but the cached value is still fresh: serve it.
                events.emit("cache.refresh_failed", "cache %r: early refresh of %r failed "
                            "(%r); serving the cached value", self.name, entry, exc,
                            cache=self.name, key=entry, error=type(exc).__name__)
                return self.decode(entry, current[1], current[2])
            raise
        delta_ms = max(1, round((time.monotonic() - started) * 1000))
        if value is None and opts.none_ms is None:
            # Not stored: the next waiter (if any) loads for itself.
            yield from _quietly(release)
            return None
        try:
            payload, none = self.encode(entry, value, "the loader's result")
        except EncodeError:
            yield from _quietly(release)
            raise
        try:
            stored = yield self.fill_call(entry, token, payload, none, opts=opts,
                                          delta_ms=delta_ms)
        except Exception:
            # The fill refused (e.g. the fresh copy's key holds another type, checked before
            # any write): free the lease at once rather than leave it until it runs out.
            yield from _quietly(release)
            raise
        if not stored:
            events.emit("cache.fill_lost", "cache %r: the value loaded for %r was not "
                        "stored: the lease (lock_ttl=%.3fs) ended after %d ms of loading, or "
                        "set/delete replaced it", self.name, entry, opts.lease_ms / 1000,
                        delta_ms, cache=self.name, key=entry)
        return value


def copy_read_error(entry: str, copy: str, exc: Exception) -> Exception | None:
    """The package's error for a failed ``GET`` of a fresh copy, or ``None`` when the fetch
    script should run instead (another error reply, e.g. an ACL that allows scripts only)."""
    if is_redis_error(exc, "ResponseError") and is_wrong_type(str(exc)):
        return WrongTypeError(f"key {copy!r} (the fresh copy of a cache entry) holds "
                              f"another Redis type than string; it was left unchanged",
                              key=copy, expected="string", actual=None)
    if is_redis_error(exc, "TimeoutError"):
        return ReplyTimeoutError(f"no reply from Redis in time reading the cached value of "
                                 f"{_describe(entry)!r}: {exc}", key=entry)
    if is_redis_error(exc, "ConnectionError"):
        return ConnectionLostError(f"lost the connection to Redis reading the cached value "
                                   f"of {_describe(entry)!r}: {exc}", key=entry)
    if is_redis_error(exc, "ResponseError"):
        return None
    return exc


def _quietly(call: Call[Any]) -> CacheFlow[None]:
    """Send ``call``; a failure is ignored (the lease then simply runs out)."""
    try:
        yield call
    except Exception as exc:
        log.debug("ignored failure of %s: %r", call.script, exc)


# -- decorator keys -----------------------------------------------------------------------

MAX_READABLE_KEY = 200


def build_key(func: Callable[..., Any], signature: inspect.Signature | None,
              args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The default key of ``@cached``: ``module.qualname`` and the JSON of the bound
    arguments (defaults applied, so ``f(1)`` and ``f(x=1)`` share an entry). Arguments that
    JSON cannot encode raise ``TypeError``: pass ``key=`` then. Long keys are hashed."""
    name = f"{func.__module__}.{func.__qualname__}"
    if signature is None:
        bound: dict[str, Any] = {"args": list(args), "kwargs": kwargs}
    else:
        b = signature.bind(*args, **kwargs)
        b.apply_defaults()
        bound = dict(b.arguments)
    try:
        text = json.dumps(bound, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"@cached({name}): cannot build a cache key from the arguments "
                        f"({exc}); pass key=callable returning a str") from exc
    key = f"{name}:{text}"
    if len(key) > MAX_READABLE_KEY:
        key = f"{name}:sha256:{sha256(text.encode('utf-8')).hexdigest()}"
    return key


def key_builder(func: Callable[..., Any],
                key: Callable[..., str] | None) -> Callable[..., str]:
    """The function that maps a call's arguments to its cache key."""
    if key is not None:
        if not callable(key):
            raise TypeError(f"key must be a callable returning str, got {type(key).__name__}")
        return key
    try:
        signature: inspect.Signature | None = inspect.signature(func)
    except (TypeError, ValueError):
        signature = None
    return functools.partial(_default_key, func, signature)


def _default_key(func: Callable[..., Any], signature: inspect.Signature | None,
                 *args: Any, **kwargs: Any) -> str:
    return build_key(func, signature, args, kwargs)


@dataclass(frozen=True, eq=False)
class CacheEntryInfo(Report):
    """What :meth:`Cache.inspect` reports about one entry (for operators): ``key`` (the
    entry's Redis key), ``exists``, ``serializer``, ``value`` (decoded, or the
    :class:`DecodeError`), ``expires_in``/``stale_until`` (seconds, negative when past),
    ``recompute`` (seconds the last load took), ``lease`` (seconds left, or None) and
    ``waiters``. Also a read-only mapping, as the dict it replaced: without a value, the
    mapping has no ``value``, ``expires_in``, ``stale_until`` or ``recompute`` keys."""

    key: str
    exists: bool
    serializer: str | None
    value: Any = None
    expires_in: float | None = None
    stale_until: float | None = None
    recompute: float | None = None
    lease: float | None = None
    waiters: int = 0

    def _present(self) -> list[str]:
        names = super()._present()
        if self.exists:
            return names
        return [n for n in names if n not in ("value", "expires_in", "stale_until",
                                              "recompute")]


def inspect_result(core: CacheSpec, entry: str, reply: Any) -> CacheEntryInfo:
    """Decode cache_inspect's reply."""
    exists, payload, none, fmt, to_expiry, to_stale, delta, lease, waiters = reply
    fmt = fmt.decode("utf-8", "replace") if isinstance(fmt, bytes) else fmt
    left = lease / 1000 if lease >= 0 else None
    if exists != 1:
        return CacheEntryInfo(entry, False, fmt or None, lease=left, waiters=waiters)
    if fmt != core.format:
        value: Any = core.mismatch(entry, fmt)
    else:
        try:
            value = core.decode(entry, payload, none)
        except Exception as exc:
            value = exc
    return CacheEntryInfo(entry, True, fmt or None, value, to_expiry / 1000, to_stale / 1000,
                          delta / 1000 if delta >= 0 else None, left, waiters)


# The name before issue 13 (one shape: <Name>Spec), for code not moved over yet.
CacheCore = CacheSpec
