# GENERATED from pyredis_atomic/asyncio/cache.py by scripts/unasync.py: do not edit.
"""Read-through cache with stampede protection: :class:`Cache`.

The racy recipe it replaces::

    value = r.get(key)
    if value is None:                  # every caller that misses at the same moment...
        value = query_database()       # ...queries the database (a stampede)
        r.set(key, value, ex=60)

With ``Cache.get_or_set`` exactly one caller (cluster-wide) runs the loader; the others wait
for its value, woken through Redis. See the README section "Cache get-or-set".
"""

from __future__ import annotations

import contextlib
import functools
import time
import weakref
from collections.abc import Callable
from math import log
from random import random
from typing import Any, TypeVar, overload

from redis.client import NEVER_DECODE
from redis.exceptions import RedisError

from ._core.cache import (
    FETCH,
    NEAR_READ,
    UNSET,
    CacheEntryInfo,
    CacheSpec,
    RunLoader,
    copy_read_error,
    inspect_result,
    key_builder,
    new_token,
)
from ._core.calls import Call
from ._core.keys import DEFAULT_PREFIX
from ._core.near import DUE, MISS, NearCache, NearStats, NearStore, marked
from ._core.serializers import Serializer, SerializerLike
from ._near import Flight, Tracker, settle, wait_flight
from ._runtime import Client, check_cached, check_client, executor, run_loader
from ._sync import Cancelled, CancelWatch, drive, perform, shielded
from .registry import ScriptRegistry, default_registry

__all__ = ["Cache"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_UNSET: Any = UNSET
# execute_command options: the reply as bytes whatever the client's decode_responses
_RAW: dict[str, Any] = {NEVER_DECODE: True}


class Cache:
    """A named read-through cache on a redis-py client (standalone or ``RedisCluster``).

    ``ttl``: how long a value stays fresh (seconds). ``serializer``: ``"json"`` (default),
    ``"raw"`` (bytes), ``"pickle"`` (explicit opt-in: never chosen for you), or any object
    with ``dumps``/``loads``. ``lock_ttl``: the longest one loader may hold the fill lease
    (default 10 s; a loader that takes longer loses the right to store its value).
    ``wait_timeout``: how long other callers wait for that loader (default 10 s; ``None``
    waits while loads go on) before running the loader themselves. ``early_refresh``: the
    XFetch beta (default 1.0; 0 turns early refresh off). ``stale_ttl``: serve a value this
    long past its expiry while one caller refreshes it (default 0: off). ``cache_none``:
    store a ``None`` result (``True``: for ``ttl``; a number: for that many seconds; default
    ``False``: not stored). ``prefix``: key namespace (default ``"atomic:"``).
    ``fast_hits``: keep a plain-string copy of each fresh value next to its entry, so a hit
    is one native ``GET`` instead of a script (default ``True``; it doubles the memory of
    each cached value: see the README). ``registry``: the script registry to run on
    (default: the package's). ``near``: also keep fresh values in this process's memory
    (``True`` or a :class:`~pyredis_atomic.NearCache`), invalidated by the server through
    client tracking, so a warm hit costs no round trip (see ``docs/near-cache.md``); its
    listener stops with :meth:`close`.

    The options other than ``serializer``, ``prefix`` and ``fast_hits`` can be overridden
    per call of :meth:`get_or_set`.
    """

    def __init__(
        self,
        client: Client,
        name: str,
        ttl: float,
        serializer: str | Serializer | SerializerLike = "json",
        *,
        prefix: str = DEFAULT_PREFIX,
        lock_ttl: float = 10.0,
        wait_timeout: float | None = 10.0,
        early_refresh: float = 1.0,
        stale_ttl: float = 0,
        cache_none: bool | float = False,
        fast_hits: bool = True,
        registry: ScriptRegistry | None = None,
        near: NearCache | bool | None = None,
    ) -> None:
        self.client = check_client(client)
        self._spec = CacheSpec(name, ttl=ttl, serializer=serializer, prefix=prefix,
                               lock_ttl=lock_ttl, wait_timeout=wait_timeout,
                               early_refresh=early_refresh, stale_ttl=stale_ttl,
                               cache_none=cache_none, fast_hits=fast_hits)
        self._registry = registry or default_registry()
        # Replies are read as bytes on every client: values may be arbitrary bytes (pickle,
        # raw) that a decode_responses=True client would fail to decode.
        self._fetch = self._registry.bind(client, FETCH, raw=True)
        # The hit's native GET: auto-pipelined with the other calls of the loop turn.
        self._execute: Callable[..., Any] = executor(self.client)
        config = NearCache.resolve(near)
        if config is not None and not fast_hits:
            raise ValueError("near needs fast_hits=True: a local value lives only as long as "
                             "the entry's fresh copy in Redis")
        # redis-py's own client-side cache (sync clients built with cache_config=...) caches
        # a plain GET without knowing the copy's expiry, and refuses one sent without
        # keys=: such clients read the copy in a pipeline, which it never caches.
        get_cache = getattr(client, "get_cache", None)
        self._csc = callable(get_cache) and get_cache() is not None
        self._near: NearStore | None = None
        if config is not None:
            self._near = NearStore(config, self._spec.head, self._spec.serializer.loads)
            self._tracker = Tracker(client, self._near)
            self._near_read = self._registry.bind(client, NEAR_READ, raw=True)
            weakref.finalize(self, self._tracker.abandon)

    @property
    def name(self) -> str:
        """The cache's name (entries are scoped by it)."""
        return self._spec.name

    def __repr__(self) -> str:
        return (f"Cache({self._spec.name!r}, ttl={self._spec.defaults.ttl_ms / 1000:g}, "
                f"serializer={self._spec.format!r})")

    def key_of(self, key: str) -> str:
        """The Redis key (a hash) holding ``key``'s entry, for inspection."""
        return self._spec.entry_key(key)

    def _run(self, call: Call[T]) -> T:
        return self._registry.run(self.client, call)

    # -- reading and writing --------------------------------------------------------------
    def get_or_set(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: float | None = None,
        *,
        lock_ttl: float = _UNSET,
        wait_timeout: float | None = _UNSET,
        early_refresh: float = _UNSET,
        stale_ttl: float = _UNSET,
        cache_none: bool | float = _UNSET,
    ) -> Any:
        """The cached value of ``key``, or ``loader()``'s result, stored for ``ttl``.

        A hit is one round trip. On a miss exactly one caller (across processes and hosts)
        runs ``loader``; the others wait for its value (woken through Redis), at most
        ``wait_timeout``, after which they run ``loader`` themselves (not storing it). If
        the loader raises, its lease is freed at once, the error goes to its caller only and
        one waiting caller takes over. Errors are never cached. The loader's own caller gets
        the loader's object; everyone else gets the deserialized copy.
        """
        if not callable(loader):
            raise TypeError(f"loader must be a zero-argument callable, got "
                            f"{type(loader).__name__}")
        core = self._spec
        u = random()
        if (ttl is None and lock_ttl is _UNSET and wait_timeout is _UNSET
                and early_refresh is _UNSET and stale_ttl is _UNSET and cache_none is _UNSET):
            opts = core.defaults
            near = self._near
            if near is not None and type(key) is str:
                # A local value ends when the fresh copy does (on server time): the XFetch
                # decision of reading the copy, without the round trip (nor an await). A
                # rarer draw above FAST_GAP is answered locally only when the recompute
                # time shows the refresh is clearly not due; else the fetch script decides.
                if u < opts.fast:
                    value = near.lookup(key, opts.beta == 0)
                else:
                    value = near.lookup_late(key, False, opts.beta * -log(1.0 - u))
                if value is MISS:
                    return self._near_miss(key, loader, opts, u)
                if value is not DUE:
                    return value
        else:
            # Per-call options never use the near cache (its entries follow the defaults).
            opts = core.options(ttl, lock_ttl=lock_ttl, wait_timeout=wait_timeout,
                                early_refresh=early_refresh, stale_ttl=stale_ttl,
                                cache_none=cache_none)
        return self._remote(key, loader, opts, u)

    def _remote(self, key: str, loader: Callable[[], Any], opts: Any, u: float) -> Any:
        """get_or_set through Redis: the fresh copy, else the fetch script and its flow."""
        core = self._spec
        entry, copy_key = core.keys_of(key)
        watch = CancelWatch()
        if u < opts.fast:
            # The fresh copy exists only while the XFetch rule says "no refresh" for this
            # draw: one native GET is the whole hit (see _core/cache.py). An interrupted
            # GET owns nothing.
            copy = self._get_copy(entry, copy_key)
            if watch.requested():  # a cancellation the client swallowed (see CancelWatch)
                raise Cancelled
            if copy is not None:
                if copy.startswith(core.hit_prefix):
                    return core.decode(entry, copy[core.hit_len:], 0)
                value = core.read_copy(entry, copy, opts.beta == 0)
                if value is not UNSET:
                    return value
        token = new_token()
        spec = core.fetch_spec(token, opts, u)
        try:
            reply = self._fetch((entry,), (spec,))
            if watch.requested():  # a cancellation the client swallowed (see CancelWatch)
                raise Cancelled
        except Cancelled:
            # Interrupted: the script may have run and given us the lease. Free it (a no-op
            # otherwise), so a waiting caller takes over now rather than after lock_ttl.
            with contextlib.suppress(Exception):
                shielded(self._run, core.release_call(entry, token, opts))
            raise
        if type(reply) is bytes:
            return core.decode(entry, reply, 0)
        return drive(self.client, core.get_or_set_flow(entry, token, opts, reply),
                     self._registry, effects=functools.partial(self._perform, loader),
                     watch=watch)

    def _near_miss(self, key: str, loader: Callable[[], Any], opts: Any,
                   u: float) -> Any:
        """A local miss: one caller per key in this process reads (and loads if need be)
        through Redis and keeps the result; the others wait for it, then read it locally."""
        near = self._near
        assert near is not None
        self._tracker.ensure_started()
        for _ in range(3):
            flight = Flight()
            ahead = near.flights.setdefault(key, flight)
            if ahead is flight:
                break  # this caller reads for the process
            finished = wait_flight(ahead, opts.wait_timeout)
            value = near.lookup(key, opts.beta == 0)
            if value is not MISS:
                return value
            if not finished:  # the reader is still at it after wait_timeout: go alone
                return self._remote(key, loader, opts, u)
            # it finished without keeping the value (a raced read, an oversized value):
            # one of the waiters reads next, not all of them at once
        else:
            return self._remote(key, loader, opts, u)
        try:
            entry, copy_key = self._spec.keys_of(key)
            value = self._near_fill(key, entry, copy_key, opts.beta == 0)
            if value is not MISS:
                return value
            generation = near.generation(key)
            ran: list[bool] = []
            value = self._remote(key, functools.partial(marked, loader, ran), opts, u)
            if ran:  # our fill's invalidation is on its way: a read before it is not kept
                settle(near, key, generation)
            # keep what the load (or another caller's) left in Redis, for the next hits
            self._near_fill(key, entry, copy_key, opts.beta == 0)
            return value
        finally:
            near.flights.pop(key, None)
            flight.set()

    def _near_fill(self, key: str, entry: str, copy_key: str, full: bool) -> Any:
        """Read the fresh copy with its remaining life and keep it locally (unless an
        invalidation raced the read); its value, or MISS (none, or not for this caller)."""
        near = self._near
        assert near is not None
        ticket = near.ticket(key)  # before the read: see NearStore.install
        sent = time.monotonic()
        try:
            copy, pttl, delta = self._near_read(self._spec.call_keys(NEAR_READ, entry), ())
        except RedisError as exc:
            error = copy_read_error(entry, copy_key, exc)
            if error is not None:
                raise error from exc
            return MISS
        parts = self._spec.copy_parts(entry, copy)
        if parts is None:
            return MISS
        value, payload, full_only = parts
        if pttl > 0:
            if not self._tracker.covers():  # read from a primary nobody listens to yet
                ticket = None
            near.install(key, ticket, payload, value, sent + pttl / 1000.0, full_only,
                         float("inf") if delta is None else int(delta) / 1000.0)
        return value if full or not full_only else MISS

    def _get_copy(self, entry: str, copy_key: str) -> Any:
        """The fresh copy (one native GET), or None: absent, or unreadable in a way the
        script path can handle (see ``copy_read_error``)."""
        try:
            if self._csc:
                pipe = self.client.pipeline(transaction=False)
                pipe.execute_command("GET", copy_key, **_RAW)
                return pipe.execute()[0]
            return self._execute("GET", copy_key, **_RAW)
        except RedisError as exc:
            error = copy_read_error(entry, copy_key, exc)
            if error is not None:
                raise error from exc
            return None

    def _perform(self, loader: Callable[[], Any], effect: Any) -> Any:
        if isinstance(effect, RunLoader):
            return run_loader(loader)
        if isinstance(effect, Call):
            return self._run(effect)
        return perform(self.client, effect, self._registry)

    def get(self, key: str, default: Any = None) -> Any:
        """The fresh value of ``key``, or ``default`` (never loads, never waits; a stored
        ``None`` is returned as ``None``)."""
        core = self._spec
        near = self._near
        if near is not None and type(key) is str:
            value = near.lookup(key, True)
            if value is not MISS:
                return value
            self._tracker.ensure_started()
            entry, copy_key = core.keys_of(key)
            value = self._near_fill(key, entry, copy_key, True)
            if value is not MISS:
                return value
            return core.peek_result(entry, self._run(core.peek_call(entry)), default)
        entry, copy_key = core.keys_of(key)
        if core.fast_hits:
            # any copy is a fresh value (get() does not take part in early refresh)
            value = core.read_copy(entry, self._get_copy(entry, copy_key), True)
            if value is not UNSET:
                return value
        reply = self._run(core.peek_call(entry))
        return core.peek_result(entry, reply, default)

    def set(self, key: str, value: Any, ttl: float | None = None, *,
            stale_ttl: float = _UNSET) -> None:
        """Store ``value`` for ``ttl`` (default: the cache's), replacing the entry.

        A load in progress is fenced off (its result is not stored) and its waiters are
        woken with this value. Re-sending (after a lost reply) stores it again.
        """
        core = self._spec
        entry = core.entry_key(key)
        opts = core.options(ttl, stale_ttl=stale_ttl, cache_none=True)
        payload, none = core.encode(entry, value)
        try:
            self._run(core.set_call(entry, payload, none, opts))
        finally:
            if self._near is not None:  # read your own write at once, not at the message
                self._near.forget(key)

    def delete(self, key: str) -> bool:
        """Remove ``key``'s value; True if there was one (fresh or stale).

        A load in progress is fenced off (a value loaded from data older than this delete
        is never stored) and its waiters are woken so one of them loads afresh. A re-send
        after a lost reply returns False and changes nothing.
        """
        entry = self._spec.entry_key(key)
        try:
            return self._run(self._spec.delete_call(entry))
        finally:
            if self._near is not None:
                self._near.forget(key)

    def near_stats(self) -> NearStats:
        """The near cache's counters and size (``ValueError`` if ``near`` is off)."""
        if self._near is None:
            raise ValueError(f"cache {self.name!r} has no near cache (pass near=True or "
                             f"near=NearCache(...))")
        return self._near.stats()

    def close(self) -> None:
        """Stop the near cache's invalidation listener and drop its values (no-op without
        ``near``). The cache still works, through Redis only."""
        if self._near is not None:
            self._tracker.close()

    def inspect(self, key: str) -> CacheEntryInfo:
        """What Redis holds for ``key`` (for operators): ``exists``, ``value`` (decoded,
        or the :class:`DecodeError`), ``expires_in``/``stale_until`` (seconds, negative
        when past), ``recompute`` (seconds the last load took), ``lease`` (seconds left,
        or None) and ``waiters``."""
        entry = self._spec.entry_key(key)
        reply = self._run(self._spec.inspect_call(entry))
        return inspect_result(self._spec, entry, reply)

    # -- decorator --------------------------------------------------------------------------
    @overload
    def cached(self, func: F, /) -> F: ...

    @overload
    def cached(self, func: None = None, /, *, ttl: float | None = None,
               key: Callable[..., str] | None = None,
               **options: Any) -> Callable[[F], F]: ...

    def cached(self, func: F | None = None, /, *, ttl: float | None = None,
               key: Callable[..., str] | None = None,
               **options: Any) -> F | Callable[[F], F]:
        """Decorator: cache a function's results with :meth:`get_or_set`.

        The key is ``module.qualname:`` plus the JSON of the bound arguments (defaults
        applied); arguments JSON cannot encode raise ``TypeError``: pass ``key=`` (a
        function of the same arguments returning a str). The wrapper gains
        ``.cache_key(*args, **kw)`` and ``.invalidate(*args, **kw)``. ``options`` are the
        per-call options of :meth:`get_or_set`.
        """
        if func is not None:
            return self.cached()(func)
        self._spec.options(ttl, **options)  # validate now, not at the first call

        def decorate(f: F) -> F:
            check_cached(f)
            make_key = key_builder(f, key)

            @functools.wraps(f)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return self.get_or_set(make_key(*args, **kwargs),
                                       functools.partial(f, *args, **kwargs), ttl,
                                       **options)

            def invalidate(*args: Any, **kwargs: Any) -> bool:
                return self.delete(make_key(*args, **kwargs))

            wrapper.cache_key = make_key  # type: ignore[attr-defined]
            wrapper.invalidate = invalidate  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return decorate

