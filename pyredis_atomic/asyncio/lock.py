"""The distributed lock: ``SET NX PX`` with a random token, fencing tokens, token-checked
release and extend, wake-up through Redis, optional auto-renew.

Cancellation: a cancelled ``acquire`` gives back a lock its interrupted call may have taken
and passes on a wake-up it may have consumed; a cancelled ``async with`` body releases on
exit as usual. Whatever cannot be cleaned up is bounded by the lease.

The logic both APIs share lives in :mod:`pyredis_atomic._core.lock`; this module only
performs the I/O.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import cast

from .._core.calls import Durability, check_durability
from .._core.keys import DEFAULT_PREFIX
from .._core.lock import (
    _UNSET,
    ACQUIRED,
    LockHolding,
    LockInfo,
    LockKeys,
    LockSpec,
    Renewal,
    decode_info,
    inspect_call,
    lock_keys,
    renew_interval,
)
from .._core.waiting import Deadline
from ..errors import LockNotOwnedError, LockTimeoutError
from ._driver import Cancelled, CancelWatch, drive, run_bounded, shielded, warm_bounded
from ._runtime import Background, Client, Mutex, check_client, settle
from .registry import AsyncScriptRegistry, default_registry

__all__ = ["Lock", "LockInfo"]

log = logging.getLogger("pyredis_atomic.lock")


class Lock:
    """A distributed lock named ``name`` on a ``redis.asyncio`` client (standalone or Cluster).

    ``ttl``: the lease in seconds (millisecond precision): a holder that crashes keeps the
    lock at most that long. ``timeout``: the default wait of :meth:`acquire` and of the
    ``async with`` statement (None: wait forever).
    ``auto_renew``: a background task (one per event loop for all its locks) extends the
    lease at about a third of ``ttl`` until :meth:`release`; if a renewal finds the lock
    gone, :attr:`lost` becomes True and ``on_lost(lock)`` is called (in the renewer task;
    a coroutine function is awaited).
    ``prefix``: the key namespace. ``durability``: a :class:`~pyredis_atomic.Durability`;
    ``acquire`` then also waits until that many replicas have the lock, or releases it and
    raises :class:`~pyredis_atomic.DurabilityError` (one more round trip per acquisition).
    ``registry``: the script registry to run on (default: the package's).

    One object stands for one holder: share it between tasks only if they take turns;
    give each concurrent contender its own object. The lock is not reentrant.

    ::

        async with Lock(client, "orders:42", ttl=10.0, timeout=5.0) as lock:
            await write_somewhere(fence=lock.fence)
    """

    __slots__ = ("__weakref__", "_client", "_durability", "_hold", "_registry", "_renewal",
                 "_spec")

    def __init__(
        self,
        client: Client,
        name: str,
        ttl: float = 10.0,
        *,
        timeout: float | None = None,
        auto_renew: bool = False,
        on_lost: Callable[[Lock], object] | None = None,
        prefix: str = DEFAULT_PREFIX,
        durability: Durability | None = None,
        registry: AsyncScriptRegistry | None = None,
    ) -> None:
        client = check_client(client)
        self._spec = spec = LockSpec(name, ttl, timeout=timeout, auto_renew=auto_renew,
                                     on_lost=on_lost, prefix=prefix)
        self._hold = LockHolding(spec)
        self._durability = check_durability(durability)
        self._client = client
        self._registry = registry or default_registry()
        self._renewal: Renewal | None = None

    @property
    def client(self) -> Client:
        """The ``redis.asyncio`` client the lock talks to."""
        return self._client

    @property
    def name(self) -> str:
        """The lock's name."""
        return self._spec.name

    @property
    def keys(self) -> LockKeys:
        """The lock's Redis keys (``lock``, ``fences``, ``signal``; one hash tag)."""
        return self._spec.keys

    @property
    def ttl(self) -> float:
        """The lease in seconds."""
        return self._spec.ttl

    @property
    def timeout(self) -> float | None:
        """The default wait of :meth:`acquire` in seconds (None: forever)."""
        return self._spec.timeout

    @property
    def auto_renew(self) -> bool:
        """Whether acquisitions are renewed in the background until released."""
        return self._spec.auto_renew

    @property
    def on_lost(self) -> Callable[[Lock], object] | None:
        """Called with the lock when a renewal finds it lost (auto-renew only)."""
        return self._spec.on_lost

    @property
    def fence(self) -> int:
        """The fencing token of the current (or last) acquisition: strictly increasing per
        lock name across all clients. Pass it to the resource you guard, which should refuse
        writes carrying a lower fence than one it has seen."""
        return self._hold.known_fence()

    @property
    def lost(self) -> bool:
        """True when this acquisition is known to be lost: a renewal, ``extend`` or
        ``release`` found the lock no longer ours (lease expired or broken)."""
        return self._hold.lost

    @property
    def held(self) -> bool:
        """True between a successful ``acquire`` and ``release`` (client-side view; see
        :meth:`owned` for the server's)."""
        return self._hold.token is not None

    def __repr__(self) -> str:
        return self._hold.describe(f"{type(self).__module__}.{type(self).__qualname__}")

    # -- acquire --------------------------------------------------------------------------
    async def acquire(self, blocking: bool = True, timeout: float | None = _UNSET) -> bool:
        """Take the lock; True when acquired.

        ``blocking=False``: one attempt. Otherwise wait up to ``timeout`` seconds (default:
        the lock's ``timeout``; None: forever) without polling: a release wakes the waiter
        through Redis, and a crashed holder's lease expiry ends the wait too. The wait never
        overruns ``timeout`` by more than a few milliseconds.

        Retry safety: redis-py may re-send the script after a timeout; an acquire whose
        token already holds the lock counts as acquired with the same fence. If this call
        raises a connection error, the next ``acquire()`` on this object re-sends the same
        token, so a lock taken by the lost attempt is recognised as ours.
        """
        spec, hold = self._spec, self._hold
        wait = spec.resolve_timeout(blocking, timeout)
        token = hold.start()
        if self._renewal is not None:
            await self._stop_renewal()
        since = time.monotonic()
        watch = CancelWatch()
        try:
            ok, value = await self._registry.run(self._client, spec.acquire_call(token))
            if watch.requested():  # a cancellation the client swallowed (see CancelWatch)
                raise Cancelled
            if ok != ACQUIRED:
                if not blocking or wait == 0:
                    hold.not_acquired()
                    return False
                left = None if wait is None else wait - (time.monotonic() - since)
                flow = spec.wait_flow(token, Deadline(left), value)
                got = await drive(self._client, flow, self._registry)
                if got is None:
                    hold.not_acquired()
                    return False
                value, since = got
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # Interrupted (cancelled):
                # give back what the interrupted call may have taken, and pass on a wake-up
                # it may have consumed, where a second interruption cannot cut it short.
                # (After a connection error the token stays pending for the next acquire.)
                await shielded(self._abandon, token)
            raise
        hold.acquired(token, value, since)
        if self._durability is not None:
            await self._confirm_durable(token)
        if spec.auto_renew:
            # Within the time to the first renewal (a third of the lease).
            await warm_bounded(self._client, renew_interval(spec.ttl))
            self._start_renewal(token, since)
        return True

    async def __aenter__(self) -> Lock:
        if not await self.acquire():
            raise LockTimeoutError(
                f"lock {self.name!r} not acquired within {self.timeout} s", key=self.keys.lock)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        """Release; raise :class:`LockLostError` if the lock was lost during the block.

        If the block itself raised, that exception propagates (with a note saying the lock
        was lost, where notes exist) rather than being replaced.
        """
        try:
            if isinstance(exc, Cancelled):
                await shielded(self.release)
            else:
                await self.release()
        except LockNotOwnedError as err:
            if exc is None:
                raise self._hold.lost_error() from err
            _note(exc, str(self._hold.lost_error()))
            return
        if self._hold.lost:
            if exc is None:
                raise self._hold.lost_error()
            _note(exc, str(self._hold.lost_error()))

    # -- release / extend -----------------------------------------------------------------
    async def release(self) -> None:
        """Release the lock and wake one waiter.

        Raises :class:`LockNotOwnedError` if the lock is no longer ours (its lease ran out,
        or it was broken); another holder's lock is never touched. Retry safety: a re-sent
        release whose first send went through is recognised (the fence history says so)
        and succeeds; after a connection error, calling ``release()`` again is safe.
        """
        hold = self._hold
        token = hold.require_token()
        await self._stop_renewal()
        result = await self._registry.run(self._client,
                                          self._spec.release_call(token, hold.fence or 0))
        hold.ended()
        if not result:
            raise hold.not_owned("release")

    async def _confirm_durable(self, token: str) -> None:
        """WAIT until the lock is on enough replicas: a token-checked extend (same lease)
        sent with ``WAIT`` on one connection; replication is ordered, so the acquisition
        before it is there too. If too few replicas confirm (or the confirmation fails on
        the connection), release and re-raise; if the release fails too, the object stops
        counting itself the holder and keeps the token pending: the next acquire re-sends
        it (the lease frees the lock meanwhile), instead of refusing as "already held"."""
        assert self._durability is not None
        d = self._durability
        try:
            owned = await self._registry.run_durable(
                self._client, self._spec.extend_call(token), d.replicas, d.timeout)
        except Exception:
            try:
                await self.release()
            except Exception:
                self._hold.forget(token)
            raise
        if not owned:
            raise self._hold.not_owned("extend")

    async def extend(self, ttl: float | None = None) -> None:
        """Reset the remaining lease to ``ttl`` seconds (default: the lock's ``ttl``).

        Raises :class:`LockNotOwnedError` if the lock is no longer ours; an expired lock is
        never brought back. Re-sending is harmless: it resets the lease again.
        """
        ttl_ms = self._spec.lease_ms(ttl)
        token = self._hold.require_token()
        sent = time.monotonic()
        if not await self._registry.run(self._client, self._spec.extend_call(token, ttl_ms)):
            raise self._hold.not_owned("extend")
        renewal = self._renewal
        if renewal is not None:
            renewal.expires_at = max(renewal.expires_at, sent + ttl_ms / 1000)

    # -- queries --------------------------------------------------------------------------
    async def owned(self) -> bool:
        """Ask the server whether this object's acquisition still holds the lock."""
        token = self._hold.token
        if token is None:
            return False
        reply = await self._registry.run(self._client, self._spec.inspect_call(token))
        return reply[0] == 2

    async def locked(self) -> bool:
        """Ask the server whether anyone holds the lock."""
        reply = await self._registry.run(self._client, self._spec.inspect_call())
        return reply[0] != 0

    @staticmethod
    async def inspect(client: Client, name: str, *, prefix: str = DEFAULT_PREFIX,
                      registry: AsyncScriptRegistry | None = None) -> LockInfo | None:
        """The lock's state (holder present, remaining lease, fences), read-only; None if
        the lock was never acquired. ``registry``: as for :class:`Lock`."""
        client = check_client(client)
        keys = lock_keys(name, prefix)
        reply = await (registry or default_registry()).run(client, inspect_call(keys))
        return decode_info(keys.name, reply)

    # -- internals ------------------------------------------------------------------------
    async def _abandon(self, token: str) -> None:
        try:
            await self._registry.run(self._client, self._spec.release_call(token, 0))
            self._hold.pending = None
        except Exception:  # best effort: the lease bounds whatever is left
            log.debug("could not abandon lock %r", self.name, exc_info=True)

    def _start_renewal(self, token: str, since: float) -> None:
        renewal = Renewal(self, self._hold, self._client, token, since, Mutex())
        self._renewal = renewal
        _RENEWER.add(renewal, renewal.first_due())

    async def _stop_renewal(self) -> None:
        renewal = self._renewal
        if renewal is not None:
            async with renewal.mutex:  # waits for a renewal in flight
                renewal.active = False
            self._renewal = None


def _note(exc: BaseException, text: str) -> None:
    add_note = getattr(exc, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(text)


async def _renew(renewal: Renewal) -> float | None:
    """One renewal of an auto-renewed lock: its next due time, or None when it is done (the
    lock was released, dropped, or lost: then ``on_lost`` is called)."""
    lock = cast("Lock | None", renewal.lock_ref())
    if lock is None:
        renewal.active = False
        return None
    async with renewal.mutex:
        if not renewal.active:
            return None
        sent = time.monotonic()
        result: int | None = None
        error: BaseException | None = None
        left = renewal.expires_at - sent
        try:
            # Never wait past the lease this renewal protects (issue 14); once it has run
            # out nothing is sent (the outcome is "lost").
            if left > 0:
                # A durable lock's renewals are confirmed by WAIT like its acquisition.
                result = await run_bounded(
                    renewal.client, lock._spec.extend_call(renewal.token),
                    left, lock._registry, lock._durability)
        except Exception as exc:
            error = exc
        due = renewal.outcome(sent, result, error)
    # due None: lost (the outcome logged the lock.lost event).
    if due is None and lock.on_lost is not None:
        try:
            await settle(lock.on_lost(lock))
        except Exception:
            log.exception("on_lost callback of lock %r failed", lock.name)
    return due


# Every auto-renewed lock is renewed by one background worker (see Background).
_RENEWER = Background(_renew, "pyredis-atomic-lock-renewer")
