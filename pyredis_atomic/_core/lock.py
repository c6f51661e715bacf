"""The I/O-free core of the Lock: keys, argument checks, script calls (:class:`LockSpec`),
the waiting flow, the renewal schedule and the holder state (:class:`LockHolding`) that
the sync and asyncio front ends share.

Keys of the lock called ``name`` (all in one hash tag, so one Cluster slot)::

    <prefix>lock:{name}          string  "<token>:<fence>" of the holder; expiry = the lease
    <prefix>lock:{name}:fences   hash    fence (last issued), released, lost; never expires
    <prefix>lock:{name}:signal   list    at most one wake-up; waiters BLPOP it

A blocked waiter ``BLPOP``\\s the signal list for at most the holder's remaining lease (the
acquire script returns it), so a release wakes it at once and a crashed holder's expiry
wakes it when the lease ends.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import DurabilityError, LockLostError, LockNotOwnedError
from . import events
from .calls import Block, Call, Flow, Sleep, is_redis_error
from .keys import DEFAULT_PREFIX, KeyLayout, check_name, check_prefix
from .replies import as_int, as_list
from .reports import Report
from .script import keyed
from .validate import check_flag, check_seconds, check_timeout, to_millis
from .waiting import Deadline, wait_step, wait_then

__all__ = [
    "ACQUIRED",
    "ON_LOST_MARGIN",
    "LockHolding",
    "LockInfo",
    "LockKeys",
    "LockSpec",
    "Renewal",
    "acquire_call",
    "break_call",
    "check_on_lost",
    "check_ttl",
    "decode_info",
    "extend_call",
    "inspect_call",
    "lock_keys",
    "new_token",
    "release_call",
    "renew_interval",
    "renewal_timeout",
    "renewal_wait",
    "retry_interval",
    "wait_flow",
]

ACQUIRED = 1
SCRIPTS = ("lock_acquire", "lock_release", "lock_extend", "lock_inspect", "lock_break")

# The shortest pause between renewal attempts after a failed one.
MIN_RETRY = 0.05


@dataclass(frozen=True)
class LockKeys:
    """The three keys of one lock (they share a hash tag)."""

    name: str
    lock: str
    fences: str
    signal: str

    # Each script's KEYS, built once by the names its header gives them (not by a
    # hand-ordered tuple), pre-encoded: spares redis-py an encode per key per call on the
    # acquire/release hot path.
    wire: dict[str, tuple[bytes, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        roles = {"lock": self.lock.encode(), "fences": self.fences.encode(),
                 "signal": self.signal.encode()}
        object.__setattr__(self, "wire", {script: keyed(script, roles) for script in SCRIPTS})


def lock_keys(name: object, prefix: object = DEFAULT_PREFIX) -> LockKeys:
    """Validate ``name`` and ``prefix`` and build the lock's keys."""
    checked = check_name(name)
    layout = KeyLayout("lock", check_prefix(prefix))
    return LockKeys(checked, layout.key(checked), layout.key(checked, "fences"),
                    layout.key(checked, "signal"))


def check_ttl(ttl: object, argument: str = "ttl") -> float:
    """A lease in seconds: finite, at least 1 ms, at most a year."""
    return check_seconds(ttl, argument)


def check_on_lost(on_lost: object) -> Callable[[Any], object] | None:
    """``None`` or a callable taking the lock."""
    if on_lost is not None and not callable(on_lost):
        raise TypeError(f"on_lost must be callable or None, got {type(on_lost).__name__}")
    return on_lost


def new_token() -> str:
    """A fresh random token for one acquisition (128 bits, hex: never contains ':')."""
    return os.urandom(16).hex()


# -- calls ----------------------------------------------------------------------------------
def _pair(reply: Any) -> tuple[int, int]:
    return as_int(reply[0]), as_int(reply[1])


def _acquired_or_pttl(reply: Any) -> tuple[int, int]:
    # The script answers one integer (see lua/lock_acquire.lua).
    r = as_int(reply)
    if r > 0:
        return ACQUIRED, r
    return 0, -1 if r == 0 else -1 - r


def acquire_call(keys: LockKeys, token: str, ttl_ms: int) -> Call[tuple[int, int]]:
    """``(1, fence)`` when acquired, ``(0, pttl_ms)`` when held by another (pttl_ms -1:
    the lock key has no expiry)."""
    return Call("lock_acquire", keys.wire["lock_acquire"], (token, ttl_ms), _acquired_or_pttl)


def release_call(keys: LockKeys, token: str, fence: int, wake_ms: int) -> Call[int]:
    """1 released, 2 released by an earlier send of the same release, 0 not held."""
    return Call("lock_release", keys.wire["lock_release"], (token, fence, wake_ms), as_int)


def extend_call(keys: LockKeys, token: str, ttl_ms: int) -> Call[int]:
    """1 extended, 0 not held by ``token``."""
    return Call("lock_extend", keys.wire["lock_extend"], (token, ttl_ms), as_int)


def inspect_call(keys: LockKeys, token: str = "") -> Call[list[int]]:
    """The raw state: ``[state, pttl_ms, holder_fence, last, released, lost]``."""
    return Call("lock_inspect", keys.wire["lock_inspect"], (token,),
                lambda r: [as_int(x) for x in as_list(r)])


def break_call(keys: LockKeys, wake_ms: int = 10_000) -> Call[tuple[int, int]]:
    """``(1, holder_fence)`` when a holder was removed, ``(0, 0)`` when it was free."""
    return Call("lock_break", keys.wire["lock_break"], (wake_ms,), _pair)


# -- inspection -----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LockInfo(Report):
    """What :meth:`Lock.inspect` reports about a lock (for operators and monitoring).

    ``held``: someone holds it now. ``ttl``: the holder's remaining lease in seconds (None
    when free, or when the key has no expiry because something else wrote it). ``fence``:
    the holder's fencing token (None when free or unknown). ``last_fence``: the last fencing
    token issued. ``released_fence``: the last acquisition ended by its holder's release.
    ``lost_fence``: the last acquisition known to have ended without a release (its lease
    ran out or it was broken); 0 when none.
    """

    name: str
    held: bool
    ttl: float | None
    fence: int | None
    last_fence: int
    released_fence: int
    lost_fence: int


def decode_info(name: str, raw: list[int]) -> LockInfo | None:
    """A :class:`LockInfo`, or None for a lock that was never acquired (no keys at all)."""
    state, pttl, holder, last, released, lost = raw
    if state == 0 and last == 0:
        return None
    if state == 0 and last not in (released, lost):
        lost = last  # the last holder's key is gone without a release: it was lost
    return LockInfo(
        name=name,
        held=state != 0,
        ttl=pttl / 1000 if state and pttl >= 0 else None,
        fence=holder or None,
        last_fence=last,
        released_fence=released,
        lost_fence=lost,
    )


# -- waiting --------------------------------------------------------------------------------
def _lease_hint(pttl_ms: int) -> float | None:
    if pttl_ms == -1:
        return None  # no expiry (not written by a Lock): no bound but the driver's slice
    return max(pttl_ms, 0) / 1000


def wait_flow(keys: LockKeys, token: str, ttl_ms: int, deadline: Deadline,
              pttl_ms: int) -> Flow[tuple[int, float] | None]:
    """Wait for a lock that was found held (its holder's lease had ``pttl_ms`` left).

    Blocks on the signal list, bounded by that lease and by the deadline, and retries the
    acquire after every wake-up or lapse. Returns the fence and when (monotonic clock) the
    attempt that got it was sent, which is no later than the lease's start even if the
    client re-sent it; None once the deadline has passed. After a wake-up the acquire is
    always retried, even at the deadline: a wake-up that was taken is used, never dropped.
    """
    call = acquire_call(keys, token, ttl_ms)
    while True:
        step: Block | Sleep | None = wait_step(deadline, keys.signal, _lease_hint(pttl_ms))
        if step is None:
            return None
        sent = time.monotonic()
        reply: tuple[int, int] = yield from wait_then(step, call, deadline)
        ok, value = reply
        if ok == ACQUIRED:
            return value, sent
        pttl_ms = value


# -- renewal --------------------------------------------------------------------------------
def renew_interval(ttl: float) -> float:
    """Renew at about a third of the lease: two more tries fit before it runs out."""
    return ttl / 3


# A renewal call is cut at the end of the lease it protects (its socket timeout, no
# retries), so on_lost fires at most this long after that end on an idle machine: the
# timeout's expiry plus the renewer's bookkeeping. (A loaded machine adds its scheduling
# delay; the fault suite allows a second on a busy 2-core CI box.)
ON_LOST_MARGIN = 0.1


def renewal_wait(left: float, timeout: float) -> float:
    """The ``WAIT`` timeout of a durable lock's renewal with ``left`` seconds of lease left:
    the durability timeout, cut to half the time left so the reply still fits in it."""
    return max(0.001, min(timeout, left / 2))


def renewal_timeout(left: float, socket_timeout: float | None) -> float:
    """The socket and connect timeout of a renewal sent with ``left`` seconds of lease
    left: that (a reply after it would come too late to count: the lease is over by our
    conservative reckoning), and no more than the client's own socket timeout. Nothing
    shorter: on a loaded machine a renewal that is slow but inside the lease still saves
    the lock."""
    wanted = left if socket_timeout is None else min(left, socket_timeout)
    return max(0.001, wanted)


def retry_interval(ttl: float, left: float) -> float:
    """Pause before retrying a renewal that failed on the connection, with ``left``
    seconds of lease remaining (by the client's conservative reckoning)."""
    return max(MIN_RETRY, min(ttl / 10, left / 3, 1.0))


class Renewal:
    """One auto-renewed acquisition in a renewer's schedule (sync thread or asyncio task).

    Holds the lock object weakly: a lock that is dropped without ``release()`` is no longer
    renewed, and its lease runs out. ``mutex`` (a ``threading.Lock`` or ``asyncio.Lock``)
    is held around each renewal and by ``release()`` while it stops the renewal, so no
    renewal is in flight once ``release()`` proceeds.
    """

    __slots__ = ("active", "client", "expires_at", "hold", "lock_ref", "mutex", "token")

    def __init__(self, lock: object, hold: LockHolding, client: Any, token: str,
                 since: float, mutex: Any) -> None:
        self.lock_ref: weakref.ref[Any] = weakref.ref(lock)
        self.hold = hold
        self.client = client
        self.token = token
        self.mutex = mutex
        self.active = True
        # Conservative: the lease started no earlier than the acquire was sent.
        self.expires_at = since + hold.spec.ttl

    def first_due(self) -> float:
        """When the first renewal is due."""
        ttl = self.hold.spec.ttl
        return self.expires_at - ttl + renew_interval(ttl)

    def outcome(self, sent: float, result: int | None,
                error: BaseException | None) -> float | None:
        """Digest one renewal attempt: the next due time, or None when the lock is lost
        (then the renewal is inactive and the lock is marked lost; the caller fires
        ``on_lost``)."""
        hold = self.hold
        ttl = hold.spec.ttl
        if error is None and result == 1:
            self.expires_at = sent + ttl
            return sent + renew_interval(ttl)
        # A renewal of a durable lock that too few replicas confirmed is retried like one
        # that failed on the connection: a master cut off from its replicas (a Sentinel
        # split brain) must not keep the lock alive on its own past the lease.
        if error is not None and (is_redis_error(error, "ConnectionError")
                                  or is_redis_error(error, "TimeoutError")
                                  or isinstance(error, DurabilityError)):
            left = self.expires_at - time.monotonic()
            if left > 0:
                name = hold.spec.name
                events.emit("lock.renewal_failed", "lock %r (fence %s): renewal failed "
                            "(%s), retrying while the lease lasts (%.3f s)", name,
                            hold.fence, error, left, lock=name, fence=hold.fence,
                            error=type(error).__name__)
                return time.monotonic() + retry_interval(ttl, left)
        # Not ours any more, or the lease has run out while Redis was unreachable (we can
        # no longer tell whether someone else holds it), or a refusal such as a wrong type.
        self.active = False
        hold.mark_lost("renew", error)
        return None


# -- one lock object: its settings and calls, and its holder state -----------------------
_UNSET: Any = object()


class LockSpec:
    """The I/O-free half of one ``Lock``: its validated settings, keys and calls (nothing
    here changes after construction; the holder state is :class:`LockHolding`)."""

    __slots__ = ("auto_renew", "keys", "on_lost", "timeout", "ttl", "ttl_ms", "wake_ms")

    def __init__(self, name: object, ttl: object, *, timeout: object = None,
                 auto_renew: object = False, on_lost: object = None,
                 prefix: object = DEFAULT_PREFIX) -> None:
        self.keys = lock_keys(name, prefix)
        self.ttl = check_ttl(ttl)
        self.ttl_ms = to_millis(self.ttl)
        # An untaken wake-up lives one lease: a waiter never waits longer than that anyway.
        self.wake_ms = max(self.ttl_ms, 1000)
        self.timeout = check_timeout(timeout)
        self.auto_renew = check_flag(auto_renew, "auto_renew")
        self.on_lost = check_on_lost(on_lost)

    @property
    def name(self) -> str:
        """The lock's name."""
        return self.keys.name

    def resolve_timeout(self, blocking: bool, timeout: object) -> float | None:
        """The wait of one ``acquire(blocking, timeout)`` (``_UNSET``: the lock's own)."""
        check_flag(blocking, "blocking")
        if timeout is _UNSET:
            return self.timeout
        if not blocking and timeout is not None:
            raise ValueError("timeout cannot be used with blocking=False")
        return check_timeout(timeout)

    def acquire_call(self, token: str) -> Call[tuple[int, int]]:
        """See :func:`acquire_call`."""
        return acquire_call(self.keys, token, self.ttl_ms)

    def wait_flow(self, token: str, deadline: Deadline,
                  pttl_ms: int) -> Flow[tuple[int, float] | None]:
        """See :func:`wait_flow`."""
        return wait_flow(self.keys, token, self.ttl_ms, deadline, pttl_ms)

    def release_call(self, token: str, fence: int) -> Call[int]:
        """See :func:`release_call` (an untaken wake-up lives ``wake_ms``)."""
        return release_call(self.keys, token, fence, self.wake_ms)

    def lease_ms(self, ttl: object = None) -> int:
        """A lease given in seconds (checked), in ms; None: the lock's own."""
        return self.ttl_ms if ttl is None else to_millis(check_ttl(ttl))

    def extend_call(self, token: str, ttl_ms: int | None = None) -> Call[int]:
        """See :func:`extend_call`; default lease: the lock's."""
        return extend_call(self.keys, token, self.ttl_ms if ttl_ms is None else ttl_ms)

    def inspect_call(self, token: str = "") -> Call[list[int]]:
        """See :func:`inspect_call`."""
        return inspect_call(self.keys, token)


class LockHolding:
    """The holder state of one ``Lock`` object and its transitions (no I/O).

    The token lives on the object, never in thread-local storage: any thread or task may
    release what another acquired through the same object.
    """

    __slots__ = ("fence", "held_since", "lost", "pending", "spec", "token")

    def __init__(self, spec: LockSpec) -> None:
        self.spec = spec
        self.token: str | None = None
        self.fence: int | None = None
        self.lost = False
        # The token of an acquire that failed on the connection: it may hold the lock, so
        # the next acquire re-sends it (and then counts as acquired, not as a wait on itself).
        self.pending: str | None = None
        self.held_since = 0.0

    def known_fence(self) -> int:
        """The fence of the current (or last) acquisition; raises if there was none."""
        fence = self.fence
        if fence is None:
            raise LockNotOwnedError(
                f"lock {self.spec.name!r} was never acquired by this object",
                key=self.spec.keys.lock)
        return fence

    def start(self) -> str:
        """The token of a new acquire (the pending one, if a lost attempt may hold)."""
        if self.token is not None and not self.lost:
            raise RuntimeError(f"lock {self.spec.name!r} is already held by this Lock "
                               "object (locks are not reentrant): release() it first")
        token = self.pending or new_token()
        self.pending = token
        return token

    def forget(self, token: str) -> None:
        """Stop counting this object the holder of ``token`` without knowing that the lock
        was released: the next acquire re-sends the token (recognised if it still holds)."""
        self.token = None
        self.fence = None
        self.pending = token

    def acquired(self, token: str, fence: int, since: float) -> None:
        """``token`` holds the lock with ``fence``, its lease counted from ``since``."""
        self.pending = None
        self.token = token
        self.fence = fence
        self.lost = False
        self.held_since = since

    def not_acquired(self) -> None:
        """The attempt was refused: the script checks our token first, so "not acquired"
        proves it holds nothing."""
        self.pending = None

    def require_token(self) -> str:
        """The holder's token; raises when this object does not hold the lock."""
        token = self.token
        if token is None:
            raise LockNotOwnedError(f"lock {self.spec.name!r} is not held by this Lock "
                                    "object", key=self.spec.keys.lock)
        return token

    def ended(self) -> None:
        """The acquisition is over (released, or found gone)."""
        self.token = None

    def mark_lost(self, action: str, error: BaseException | None = None) -> None:
        """The lock is known lost; report it once per acquisition (``lock.lost``)."""
        if self.lost:
            return
        self.lost = True
        name = self.spec.name
        events.emit("lock.lost", "lock %r (fence %s) was lost (found on %s%s): its lease ran "
                    "out or it was broken", name, self.fence, action,
                    f": {error}" if error else "", lock=name, fence=self.fence,
                    action=action)

    def not_owned(self, action: str) -> LockNotOwnedError:
        """Mark the lock lost and build the error ``action`` raises."""
        self.mark_lost(action)
        return LockNotOwnedError(
            f"cannot {action} lock {self.spec.name!r}: it is no longer held by this Lock "
            f"object (fence {self.fence}); its lease ran out or it was broken",
            key=self.spec.keys.lock,
        )

    def lost_error(self) -> LockLostError:
        """The error a ``with`` block whose lock was lost ends with."""
        return LockLostError(
            f"lock {self.spec.name!r} (fence {self.fence}) was lost while held: its lease "
            "ran out or it was broken, so the critical section may have overlapped another "
            "holder's",
            key=self.spec.keys.lock,
        )

    def describe(self, kind: str) -> str:
        """The ``repr`` of the lock object of class ``kind``."""
        state = "lost" if self.lost else ("held" if self.token else "unlocked")
        return (f"<{kind} {self.spec.name!r} ttl={self.spec.ttl:g} {state} "
                f"fence={self.fence}>")
