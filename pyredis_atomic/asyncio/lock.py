"""The distributed lock for ``redis.asyncio`` clients: the same API and semantics as
:class:`pyredis_atomic.Lock`, awaited. Both drive :mod:`pyredis_atomic._core.lock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import inspect as _inspect
import itertools
import logging
import time
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from .._core.calls import Durability, check_durability
from .._core.keys import DEFAULT_PREFIX
from .._core.lock import (
    _UNSET,
    ACQUIRED,
    LockCore,
    LockInfo,
    Renewal,
    acquire_call,
    check_ttl,
    decode_info,
    extend_call,
    inspect_call,
    lock_keys,
    release_call,
    wait_flow,
)
from .._core.validate import to_millis
from .._core.waiting import Deadline
from ..errors import DurabilityError, LockNotOwnedError, LockTimeoutError
from ..lock import _note
from ._driver import CancelWatch, drive, shielded
from .registry import default_registry

__all__ = ["Lock", "LockInfo"]

log = logging.getLogger("pyredis_atomic.lock")

T = TypeVar("T")


class Lock(LockCore):
    """A distributed lock named ``name`` on a ``redis.asyncio`` client (standalone or
    Cluster). Arguments as for :class:`pyredis_atomic.Lock`; ``on_lost`` may be a plain
    function or a coroutine function. One renewer task per event loop serves every
    auto-renewed lock of that loop.

    Cancellation: a cancelled ``acquire`` gives back a lock its interrupted call may have
    taken and passes on a wake-up it may have consumed; a cancelled ``async with`` body
    releases on exit as usual. Whatever cannot be cleaned up is bounded by the lease.

    ::

        async with Lock(client, "orders:42", ttl=10.0, timeout=5.0) as lock:
            await write_somewhere(fence=lock.fence)
    """

    __slots__ = ("_client", "_durability", "_renewal")

    def __init__(
        self,
        client: Any,
        name: str,
        ttl: float = 10.0,
        *,
        timeout: float | None = None,
        auto_renew: bool = False,
        on_lost: Callable[[Lock], object] | None = None,
        prefix: str = DEFAULT_PREFIX,
        durability: Durability | None = None,
    ) -> None:
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost,
                         prefix=prefix)
        self._durability = check_durability(durability)
        self._client = client
        self._renewal: Renewal | None = None

    @property
    def client(self) -> Any:
        """The ``redis.asyncio`` client the lock talks to."""
        return self._client

    async def acquire(self, blocking: bool = True, timeout: float | None = _UNSET) -> bool:
        """Take the lock; True when acquired. Same semantics as
        :meth:`pyredis_atomic.Lock.acquire`."""
        wait = self._resolve_timeout(blocking, timeout)
        token = self._start()
        if self._renewal is not None:
            await self._stop_renewal()
        since = time.monotonic()
        watch = CancelWatch()
        try:
            ok, value = await default_registry().run(
                self._client, acquire_call(self.keys, token, self.ttl_ms))
            if watch.requested():  # redis.asyncio swallowed it (see CancelWatch)
                raise asyncio.CancelledError
            if ok != ACQUIRED:
                if not blocking or wait == 0:
                    self._not_acquired()
                    return False
                left = None if wait is None else wait - (time.monotonic() - since)
                got = await drive(self._client, wait_flow(self.keys, token, self.ttl_ms,
                                                           Deadline(left), value))
                if got is None:
                    self._not_acquired()
                    return False
                value, since = got
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # Cancelled: the interrupted call may have taken the lock or consumed a
                # wake-up. Clean up in a task of its own, so a second cancellation cannot
                # cut it short.
                await shielded(self._abandon(token))
            raise
        self._acquired(token, value, since)
        if self._durability is not None:
            await self._confirm_durable(token)
        if self.auto_renew:
            self._start_renewal(token, since)
        return True

    async def __aenter__(self) -> Lock:
        if not await self.acquire():
            raise LockTimeoutError(
                f"lock {self.name!r} not acquired within {self.timeout} s", key=self.keys.lock)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        """Release; raise :class:`LockLostError` if the lock was lost during the block
        (a body's own exception propagates instead, with a note)."""
        try:
            if isinstance(exc, asyncio.CancelledError):
                await shielded(self.release())
            else:
                await self.release()
        except LockNotOwnedError as err:
            if exc is None:
                raise self._lost_error() from err
            _note(exc, str(self._lost_error()))
            return
        if self._lost:
            if exc is None:
                raise self._lost_error()
            _note(exc, str(self._lost_error()))

    async def release(self) -> None:
        """Release the lock and wake one waiter; :class:`LockNotOwnedError` if it is no
        longer ours. Safe to re-send (see :meth:`pyredis_atomic.Lock.release`)."""
        token = self._require_token()
        await self._stop_renewal()
        result = await default_registry().run(
            self._client, release_call(self.keys, token, self._fence or 0, self.wake_ms))
        self._ended()
        if not result:
            raise self._not_owned("release")

    async def _confirm_durable(self, token: str) -> None:
        """WAIT until the lock is on enough replicas: a token-checked extend (same lease)
        sent with ``WAIT`` on one connection; replication is ordered, so the acquisition
        before it is there too. If too few replicas confirm, release and re-raise."""
        assert self._durability is not None
        d = self._durability
        try:
            owned = await default_registry().run_durable(
                self._client, extend_call(self.keys, token, self.ttl_ms), d.replicas, d.timeout)
        except DurabilityError:
            with contextlib.suppress(Exception):
                await self.release()
            raise
        if not owned:
            raise self._not_owned("extend")

    async def extend(self, ttl: float | None = None) -> None:
        """Reset the remaining lease to ``ttl`` seconds (default: the lock's ``ttl``);
        :class:`LockNotOwnedError` if it is no longer ours. Never revives an expired lock."""
        ttl_ms = self.ttl_ms if ttl is None else to_millis(check_ttl(ttl))
        token = self._require_token()
        sent = time.monotonic()
        if not await default_registry().run(self._client,
                                            extend_call(self.keys, token, ttl_ms)):
            raise self._not_owned("extend")
        renewal = self._renewal
        if renewal is not None:
            renewal.expires_at = max(renewal.expires_at, sent + ttl_ms / 1000)

    async def owned(self) -> bool:
        """Ask the server whether this object's acquisition still holds the lock."""
        token = self._token
        if token is None:
            return False
        raw = await default_registry().run(self._client, inspect_call(self.keys, token))
        return raw[0] == 2

    async def locked(self) -> bool:
        """Ask the server whether anyone holds the lock."""
        return (await default_registry().run(self._client, inspect_call(self.keys)))[0] != 0

    @staticmethod
    async def inspect(client: Any, name: str, *,
                      prefix: str = DEFAULT_PREFIX) -> LockInfo | None:
        """The lock's state, read-only; None if the lock was never acquired."""
        keys = lock_keys(name, prefix)
        return decode_info(keys.name, await default_registry().run(client, inspect_call(keys)))

    # -- internals ------------------------------------------------------------------------
    async def _abandon(self, token: str) -> None:
        try:
            await default_registry().run(self._client,
                                         release_call(self.keys, token, 0, self.wake_ms))
            self._pending = None
        except Exception:  # best effort: the lease bounds whatever is left
            log.debug("could not abandon lock %r", self.name, exc_info=True)

    def _start_renewal(self, token: str, since: float) -> None:
        renewal = Renewal(self, self._client, token, since, asyncio.Lock())
        self._renewal = renewal
        _renewer().add(renewal, renewal.first_due(self))

    async def _stop_renewal(self) -> None:
        renewal = self._renewal
        if renewal is not None:
            async with renewal.mutex:  # waits for a renewal in flight
                renewal.active = False
            self._renewal = None


class _AsyncRenewer:
    """The one task per event loop that renews every auto-renewed asyncio lock. It exits
    when nothing is left to renew, so no task outlives the last ``release()``."""

    def __init__(self) -> None:
        # No reference to the loop: the registry below is keyed weakly by it.
        self._heap: list[tuple[float, int, Renewal]] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, renewal: Renewal, due: float) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), renewal))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="pyredis-atomic-lock-renewer")
        else:
            self._wakeup.set()

    async def _run(self) -> None:
        heap = self._heap
        while True:
            while heap and not heap[0][2].active:
                heapq.heappop(heap)
            if not heap:
                return
            delay = heap[0][0] - time.monotonic()
            if delay > 0:
                self._wakeup.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), delay)
                continue
            renewal = heapq.heappop(heap)[2]
            due = await self._renew(renewal)
            if due is not None:
                heapq.heappush(heap, (due, next(self._seq), renewal))

    async def _renew(self, renewal: Renewal) -> float | None:
        lock = renewal.lock_ref()
        if lock is None:
            renewal.active = False
            return None
        async with renewal.mutex:
            if not renewal.active:
                return None
            sent = time.monotonic()
            result: int | None = None
            error: BaseException | None = None
            try:
                result = await default_registry().run(
                    renewal.client, extend_call(lock.keys, renewal.token, lock.ttl_ms))
            except Exception as exc:
                error = exc
            due = renewal.outcome(lock, sent, result, error)
        if due is None:
            log.warning("lock %r (fence %s) was lost while auto-renewed%s", lock.name,
                        lock._fence, f": {error}" if error else "")
            if lock.on_lost is not None:
                try:
                    outcome = lock.on_lost(lock)
                    if _inspect.isawaitable(outcome):
                        await outcome
                except Exception:
                    log.exception("on_lost callback of lock %r failed", lock.name)
        return due


_RENEWERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AsyncRenewer] = (
    weakref.WeakKeyDictionary()
)


def _renewer() -> _AsyncRenewer:
    loop = asyncio.get_running_loop()
    renewer = _RENEWERS.get(loop)
    if renewer is None:
        renewer = _RENEWERS[loop] = _AsyncRenewer()
    return renewer
