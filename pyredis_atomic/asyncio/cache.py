"""The asyncio :class:`Cache`: the same entries, scripts and flow as
:class:`pyredis_atomic.Cache` (both drive :mod:`pyredis_atomic._core.cache`), for
``redis.asyncio`` clients and async loaders.

Cancellation: a caller cancelled while it holds the fill lease (during the load, or while
the read that took the lease was in flight) frees the lease before the cancellation
propagates (shielded), so a waiting caller takes over at once instead of after
``lock_ttl``. A caller cancelled while waiting owns nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import Callable
from random import random
from typing import Any, TypeVar, overload

from redis.client import NEVER_DECODE
from redis.exceptions import RedisError

from .._core.cache import (
    FETCH,
    UNSET,
    CacheCore,
    RunLoader,
    copy_read_error,
    key_builder,
    new_token,
)
from .._core.calls import Call
from .._core.keys import DEFAULT_PREFIX
from .._core.serializers import Serializer, SerializerLike
from ..cache import inspect_result
from ._driver import CancelWatch, drive, perform, shielded
from .registry import default_registry

__all__ = ["Cache"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_UNSET: Any = UNSET
_RAW: dict[str, Any] = {NEVER_DECODE: True}


class Cache:
    """A named read-through cache on a ``redis.asyncio`` client (standalone or cluster).

    Same options and semantics as :class:`pyredis_atomic.Cache`; loaders are zero-argument
    callables returning an awaitable (an ``async def`` function) or a plain value.
    """

    def __init__(
        self,
        client: Any,
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
    ) -> None:
        self.client = client
        self._core = CacheCore(name, ttl=ttl, serializer=serializer, prefix=prefix,
                               lock_ttl=lock_ttl, wait_timeout=wait_timeout,
                               early_refresh=early_refresh, stale_ttl=stale_ttl,
                               cache_none=cache_none, fast_hits=fast_hits)
        self._registry = default_registry()
        self._fetch = self._registry.bind(client, FETCH, raw=True)
        self._execute = client.execute_command  # bind() above checked it is a client

    @property
    def name(self) -> str:
        """The cache's name (entries are scoped by it)."""
        return self._core.name

    def __repr__(self) -> str:
        return (f"asyncio.Cache({self._core.name!r}, ttl={self._core.defaults.ttl_ms / 1000:g}, "
                f"serializer={self._core.format!r})")

    def key_of(self, key: str) -> str:
        """The Redis key (a hash) holding ``key``'s entry, for inspection."""
        return self._core.entry_key(key)

    async def _run(self, call: Call[T]) -> T:
        return await self._registry.run(self.client, call)

    async def get_or_set(
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
        """The cached value of ``key``, or the loader's result (awaited), stored for
        ``ttl``. See :meth:`pyredis_atomic.Cache.get_or_set`."""
        if not callable(loader):
            raise TypeError(f"loader must be a zero-argument callable, got "
                            f"{type(loader).__name__}")
        core = self._core
        entry, copy_key = core.keys_of(key)
        opts = (core.defaults if ttl is None and lock_ttl is _UNSET and wait_timeout is _UNSET
                and early_refresh is _UNSET and stale_ttl is _UNSET and cache_none is _UNSET
                else core.options(ttl, lock_ttl=lock_ttl, wait_timeout=wait_timeout,
                                  early_refresh=early_refresh, stale_ttl=stale_ttl,
                                  cache_none=cache_none))
        u = random()
        watch = CancelWatch()
        if u < opts.fast:
            # one native GET is the whole hit (see pyredis_atomic.Cache.get_or_set); a
            # cancelled GET owns nothing
            copy = await self._get_copy(entry, copy_key)
            if watch.requested():  # redis.asyncio swallowed it (see CancelWatch)
                raise asyncio.CancelledError
            if copy is not None:
                if copy.startswith(core.hit_prefix):
                    return core.decode(entry, copy[core.hit_len:], 0)
                value = core.read_copy(entry, copy, opts.beta == 0)
                if value is not UNSET:
                    return value
        token = new_token()
        spec = core.fetch_spec(token, opts, u)
        try:
            reply = await self._fetch((entry,), (spec,))
            if watch.requested():  # redis.asyncio swallowed it (see CancelWatch)
                raise asyncio.CancelledError
        except asyncio.CancelledError:
            # The script may have run and given us the lease: free it (a no-op otherwise).
            with contextlib.suppress(Exception):
                await shielded(self._run, core.release_call(entry, token, opts))
            raise
        if type(reply) is bytes:
            return core.decode(entry, reply, 0)
        return await drive(self.client, core.get_or_set_flow(entry, token, opts, reply),
                           effects=functools.partial(self._perform, loader), watch=watch)

    async def _get_copy(self, entry: str, copy_key: str) -> Any:
        """The fresh copy (one native GET), or None (as the sync ``Cache._get_copy``)."""
        try:
            return await self._execute("GET", copy_key, **_RAW)
        except RedisError as exc:
            error = copy_read_error(entry, copy_key, exc)
            if error is not None:
                raise error from exc
            return None

    async def _perform(self, loader: Callable[[], Any], effect: Any) -> Any:
        if isinstance(effect, RunLoader):
            result = loader()
            return (await result) if inspect.isawaitable(result) else result
        if isinstance(effect, Call):
            return await self._run(effect)
        return await perform(self.client, effect)

    async def get(self, key: str, default: Any = None) -> Any:
        """The fresh value of ``key``, or ``default`` (never loads, never waits)."""
        core = self._core
        entry, copy_key = core.keys_of(key)
        if core.fast_hits:
            value = core.read_copy(entry, await self._get_copy(entry, copy_key), True)
            if value is not UNSET:
                return value
        reply = await self._run(core.peek_call(entry))
        return core.peek_result(entry, reply, default)

    async def set(self, key: str, value: Any, ttl: float | None = None, *,
                  stale_ttl: float = _UNSET) -> None:
        """Store ``value`` for ``ttl``, replacing the entry and fencing off a load in
        progress (its waiters get this value). A re-send stores it again."""
        core = self._core
        entry = core.entry_key(key)
        opts = core.options(ttl, stale_ttl=stale_ttl, cache_none=True)
        payload, none = core.encode(entry, value)
        await self._run(core.set_call(entry, payload, none, opts))

    async def delete(self, key: str) -> bool:
        """Remove ``key``'s value (True if there was one), fencing off a load in progress and
        waking its waiters. A re-send returns False and changes nothing."""
        entry = self._core.entry_key(key)
        return await self._run(self._core.delete_call(entry))

    async def inspect(self, key: str) -> dict[str, Any]:
        """What Redis holds for ``key``; see :meth:`pyredis_atomic.Cache.inspect`."""
        entry = self._core.entry_key(key)
        return inspect_result(self._core, entry, await self._run(self._core.inspect_call(entry)))

    @overload
    def cached(self, func: F, /) -> F: ...

    @overload
    def cached(self, func: None = None, /, *, ttl: float | None = None,
               key: Callable[..., str] | None = None,
               **options: Any) -> Callable[[F], F]: ...

    def cached(self, func: F | None = None, /, *, ttl: float | None = None,
               key: Callable[..., str] | None = None,
               **options: Any) -> F | Callable[[F], F]:
        """Decorator for ``async def`` functions (plain functions work too; the wrapper is
        always a coroutine function). Keys as in :meth:`pyredis_atomic.Cache.cached`; the
        wrapper gains ``.cache_key(...)`` and ``await .invalidate(...)``."""
        if func is not None:
            return self.cached()(func)
        self._core.options(ttl, **options)

        def decorate(f: F) -> F:
            make_key = key_builder(f, key)

            @functools.wraps(f)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.get_or_set(make_key(*args, **kwargs),
                                             functools.partial(f, *args, **kwargs), ttl,
                                             **options)

            async def invalidate(*args: Any, **kwargs: Any) -> bool:
                return await self.delete(make_key(*args, **kwargs))

            wrapper.cache_key = make_key  # type: ignore[attr-defined]
            wrapper.invalidate = invalidate  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return decorate
