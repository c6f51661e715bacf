"""The exception hierarchy of pyredis-atomic.

Convention for the whole package:

* ``TypeError`` for an argument of the wrong type and ``ValueError`` for a bad value, each
  naming the argument. They are raised before anything is sent, so a rejected call writes
  nothing.
* Failures at run time raise a subclass of :class:`AtomicError`, naming the key at fault.
  Connection failures and timeouts are also instances of redis-py's own
  ``ConnectionError`` / ``TimeoutError``, so existing ``except`` clauses keep working.
"""

from __future__ import annotations

from redis import exceptions as redis_exc

__all__ = [
    "AtomicError",
    "CacheError",
    "ConfigMismatchError",
    "ConnectionLostError",
    "DecodeError",
    "DurabilityError",
    "EncodeError",
    "EvictionPolicyError",
    "LibraryNotLoadedError",
    "LockError",
    "LockLostError",
    "LockNotOwnedError",
    "LockTimeoutError",
    "QueueError",
    "ReplyTimeoutError",
    "ScriptError",
    "SemaphoreError",
    "SemaphoreLostError",
    "SemaphoreTimeoutError",
    "ServerVersionError",
    "WrongTypeError",
]


class AtomicError(Exception):
    """Root of every run-time error raised by pyredis-atomic.

    ``key`` is the Redis key at fault when there is one.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class ScriptError(AtomicError):
    """A script failed inside Redis for a reason not covered by a more specific error."""

    def __init__(
        self, message: str, *, script: str, key: str | None = None, code: str = ""
    ) -> None:
        super().__init__(message, key=key)
        self.script = script
        self.code = code  # the first word of the script's error reply, e.g. "NOTINT"


class ConfigMismatchError(ScriptError):
    """A call's configuration differs from the one stored with the primitive's state
    (a :class:`~pyredis_atomic.BoundedCounter`'s bounds and mode, a
    :class:`~pyredis_atomic.RateLimiter`'s rate and burst, a
    :class:`~pyredis_atomic.Semaphore`'s limit): the script changed nothing.

    ``key``: the configuration key. ``stored`` / ``given``: the two configurations as the
    script compared them (their packed text, e.g. ``"0 100 reject"``); the message shows
    both readably. Use the stored configuration, or change it explicitly with the
    primitive's ``reconfigure()`` (CLI: ``pyredis-atomic <kind> reconfigure``).
    """

    def __init__(self, message: str, *, script: str, key: str | None, stored: str,
                 given: str) -> None:
        super().__init__(message, script=script, key=key, code="CONFIGMISMATCH")
        self.stored = stored
        self.given = given


class WrongTypeError(AtomicError):
    """A key used by a primitive holds another Redis type (for example a list, not a string)."""

    def __init__(self, message: str, *, key: str, expected: str | None, actual: str | None):
        super().__init__(message, key=key)
        self.expected = expected
        self.actual = actual


class ServerVersionError(AtomicError):
    """The server is older than a script's header (``Redis:``) asks for; nothing was sent."""

    def __init__(self, message: str, *, script: str, required: tuple[int, ...],
                 server: tuple[int, ...]) -> None:
        super().__init__(message)
        self.script = script
        self.required = required
        self.server = server


class LibraryNotLoadedError(AtomicError):
    """Functions mode: the server (``node``) lacks the package's Functions library of this
    version (``FCALL`` answered ``Function not found``); nothing ran. Load it with
    ``pyredis-atomic functions load`` (the registry never loads it by itself)."""

    def __init__(self, message: str, *, script: str, function: str, library: str,
                 node: str | None, key: str | None = None) -> None:
        super().__init__(message, key=key)
        self.script = script
        self.function = function
        self.library = library
        self.node = node


class DecodeError(AtomicError):
    """A stored value could not be decoded (corrupt, or written by something else)."""


class ConnectionLostError(AtomicError, redis_exc.ConnectionError):
    """The server could not be reached, or the connection broke during a call.

    For a mutating operation the reply may have been lost after the server applied it:
    each operation documents what re-sending it does.
    """


class ReplyTimeoutError(AtomicError, redis_exc.TimeoutError):
    """No reply within the client's socket timeout; the operation may or may not have run."""


class DurabilityError(AtomicError):
    """A write was applied on the primary but fewer replicas than asked acknowledged it in
    time (``WAIT``): it may be lost if the primary fails before replicating it."""

    def __init__(self, message: str, *, key: str | None, wanted: int, acknowledged: int):
        super().__init__(message, key=key)
        self.wanted = wanted
        self.acknowledged = acknowledged


class LockError(AtomicError):
    """Base of the lock errors."""


class LockNotOwnedError(LockError):
    """Release or extend of a lock that this lock object no longer holds."""


class LockLostError(LockError):
    """The lock was lost while held (lease expired or broken): the critical section may
    have overlapped with another holder's."""


class LockTimeoutError(LockError):
    """The lock could not be acquired within the timeout."""


class QueueError(AtomicError):
    """Base of the reliable queue's errors."""


class EvictionPolicyError(QueueError):
    """The server's ``maxmemory-policy`` may evict keys without a TTL (``allkeys-*``), so a
    queue on it could lose messages silently under memory pressure. ``policy`` is the
    offending policy; pass ``allow_eviction=True`` to the queue to accept the risk."""

    def __init__(self, message: str, *, key: str | None = None, policy: str = "") -> None:
        super().__init__(message, key=key)
        self.policy = policy


class CacheError(AtomicError):
    """Base of the errors raised by :class:`~pyredis_atomic.Cache`."""


class EncodeError(CacheError, TypeError):
    """A value could not be serialized (it is not JSON, not bytes for ``raw``, ...).

    Raised before anything is written: the entry is left as it was (a loader's lease is
    released so a waiting caller takes over). Also a ``TypeError``.
    """


class SemaphoreError(AtomicError):
    """Base of the semaphore errors."""


class SemaphoreTimeoutError(SemaphoreError):
    """No permit of the semaphore could be acquired within the timeout (``with sem:``)."""


class SemaphoreLostError(SemaphoreError):
    """A permit's lease ended while it was held (``with sem:``): another holder may have
    taken its slot, so more than ``limit`` holders may have overlapped."""
