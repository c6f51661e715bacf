"""The I/O-free core of :class:`~pyredis_atomic.Semaphore`: validation, keys, calls and the
one blocking-acquire flow that the sync and asyncio front ends both drive.

Layout: ``<prefix>semaphore:{<name>}:holders`` is a sorted set of permit ids scored by the
end of their lease (server time, ms); ``<prefix>semaphore:{<name>}:signal`` is the list a
release pushes a wake-up token to, which waiters ``BLPOP``.
"""

from __future__ import annotations

import contextvars
import secrets
from typing import Any

from .calls import Call, Flow
from .configs import SemaphoreConfig
from .keys import DEFAULT_PREFIX, KeyLayout, check_name, check_prefix
from .replies import as_int, as_list, as_str
from .reports import SemaphoreHolder
from .script import keyed
from .validate import check_flag, check_int, check_seconds, check_timeout, to_millis
from .waiting import Deadline, wait_step, wait_then

__all__ = [
    "DEFAULT_TTL",
    "MAX_LIMIT",
    "SemaphoreConfig",
    "SemaphoreSpec",
    "acquire_flow",
    "check_permit",
    "new_permit",
]

DEFAULT_TTL = 30.0
MAX_LIMIT = 1_000_000
MAX_PERMIT_BYTES = 256


def new_permit() -> str:
    """A fresh random permit id (128 bits)."""
    return secrets.token_hex(16)


def check_permit(permit: object, argument: str = "permit") -> str:
    """A permit id: a non-empty ``str`` of at most 256 UTF-8 bytes."""
    return check_name(permit, argument, max_bytes=MAX_PERMIT_BYTES,
                      hint=" (a permit id from acquire())")


def _acquired(reply: Any) -> tuple[bool, float]:
    items = as_list(reply)
    return as_int(items[0]) == 1, as_int(items[1]) / 1000


def _flag(reply: Any) -> bool:
    return as_int(reply) == 1


def decode_holders(reply: Any) -> list[SemaphoreHolder]:
    """``{permit, remaining_ms, ...}`` as ``[(permit, seconds left), ...]``."""
    items = as_list(reply)
    # Read raw: a member written by something else may not be UTF-8; show it escaped.
    return [SemaphoreHolder(_permit_text(items[i]), as_int(items[i + 1]) / 1000)
            for i in range(0, len(items), 2)]


def _permit_text(value: Any) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else as_str(value)


SCRIPTS = ("semaphore_acquire", "semaphore_release", "semaphore_extend", "semaphore_count",
           "semaphore_holders", "semaphore_config", "semaphore_reconfigure")


class SemaphoreSpec:
    """A validated semaphore definition and the calls that operate on it."""

    __slots__ = ("_keys", "config_key", "holders_key", "limit", "name", "prefix",
                 "signal_key", "timeout", "ttl", "ttl_ms")

    def __init__(self, name: object, limit: object, ttl: object = DEFAULT_TTL, *,
                 timeout: object = None, prefix: object = DEFAULT_PREFIX) -> None:
        self.name = check_name(name)
        self.prefix = check_prefix(prefix)
        self.limit = check_int(limit, "limit", minimum=1, maximum=MAX_LIMIT)
        self.ttl = check_seconds(ttl, "ttl")
        self.ttl_ms = to_millis(self.ttl)
        self.timeout = check_timeout(timeout)
        layout = KeyLayout("semaphore", self.prefix)
        self.holders_key = layout.key(self.name, "holders")
        self.signal_key = layout.key(self.name, "signal")
        self.config_key = layout.key(self.name, "config")
        # Each script's KEYS, picked by the names its header gives them.
        roles = {"holders": self.holders_key, "signal": self.signal_key,
                 "config": self.config_key}
        self._keys = {script: keyed(script, roles) for script in SCRIPTS}

    def acquire_call(self, permit: str) -> Call[tuple[bool, float]]:
        """``semaphore_acquire``: (held, seconds until the earliest lease ends if not)."""
        return Call("semaphore_acquire", self._keys["semaphore_acquire"],
                    (permit, self.limit, self.ttl_ms), _acquired)

    def release_call(self, permit: object) -> Call[bool]:
        """``semaphore_release``: True if the permit was held (and is now released)."""
        return Call("semaphore_release", self._keys["semaphore_release"],
                    (check_permit(permit), self.limit, self.ttl_ms), _flag)

    def extend_call(self, permit: object, ttl: object = None) -> Call[bool]:
        """``semaphore_extend``: True if the permit was held; its lease now ends ``ttl``
        (default: the semaphore's) from now."""
        checked = check_permit(permit)
        ttl_ms = self.ttl_ms if ttl is None else to_millis(check_seconds(ttl, "ttl"))
        return Call("semaphore_extend", self._keys["semaphore_extend"], (checked, ttl_ms), _flag)

    def count_call(self) -> Call[int]:
        """``semaphore_count``: live permits now."""
        return Call("semaphore_count", self._keys["semaphore_count"], (), as_int)

    def holders_call(self) -> Call[list[SemaphoreHolder]]:
        """``semaphore_holders``: live permits and their remaining lease in seconds."""
        return Call("semaphore_holders", self._keys["semaphore_holders"], (), decode_holders,
                    raw=True)

    @property
    def config(self) -> SemaphoreConfig:
        """The configuration this semaphore's acquires send (compared with the stored one)."""
        return SemaphoreConfig(self.limit)

    def config_call(self) -> Call[SemaphoreConfig | None]:
        """``semaphore_config``: the stored configuration, or None."""
        return Call("semaphore_config", self._keys["semaphore_config"], (), SemaphoreConfig.parse,
                    raw=True)

    def reconfigure_call(self) -> Call[SemaphoreConfig | None]:
        """``semaphore_reconfigure`` to this spec's limit: the previous stored one."""
        return Call("semaphore_reconfigure", self._keys["semaphore_reconfigure"],
                    (self.limit, self.ttl_ms), SemaphoreConfig.parse, raw=True)

    def reconfigured(self, limit: object) -> SemaphoreSpec:
        """This semaphore with another limit."""
        return SemaphoreSpec(self.name, limit, self.ttl, timeout=self.timeout,
                             prefix=self.prefix)

    def acquire_args(self, blocking: object, timeout: object,
                     permit: object) -> tuple[bool, float | None, str]:
        """Check ``acquire``'s arguments; a fresh permit id when none is given."""
        flag = check_flag(blocking, "blocking")
        checked_timeout = check_timeout(timeout)
        if not flag and checked_timeout is not None:
            raise ValueError("timeout makes no sense with blocking=False (one attempt only)")
        return flag, checked_timeout, new_permit() if permit is None else check_permit(permit)

    def describe(self) -> str:
        """``('name', limit=.., ttl=..)`` for reprs."""
        return f"({self.name!r}, limit={self.limit}, ttl={self.ttl}, prefix={self.prefix!r})"


def acquire_flow(spec: SemaphoreSpec, permit: str, blocking: bool,
                 timeout: float | None) -> Flow[str | None]:
    """Take a permit: one attempt, then (blocking) wait for a release signal, bounded by
    the earliest lease end (a crashed holder never signals) and by the caller's timeout.

    Every attempt sends the same permit id, so an attempt whose reply was lost and is
    re-sent counts once.
    """
    deadline = Deadline(timeout)
    call = spec.acquire_call(permit)
    reply = yield call
    while True:
        held, wait = reply
        if held:
            return permit
        if not blocking:
            return None
        step = wait_step(deadline, spec.signal_key, max(wait, 0.001))
        if step is None:
            return None
        reply = yield from wait_then(step, call, deadline)


# Permits taken by ``with sem:`` in this thread or task: ((id(semaphore), permit), ...).
# A context variable, so threads and asyncio tasks sharing one Semaphore object never
# release each other's permits.
HELD: contextvars.ContextVar[tuple[tuple[int, str], ...]] = contextvars.ContextVar(
    "pyredis_atomic_semaphore_held", default=())


def push_held(owner: object, permit: str) -> None:
    """Remember a permit taken by ``with`` in the current context."""
    HELD.set((*HELD.get(), (id(owner), permit)))


def pop_held(owner: object) -> str:
    """The permit of the innermost ``with`` of ``owner`` in the current context."""
    stack = HELD.get()
    for i in range(len(stack) - 1, -1, -1):
        if stack[i][0] == id(owner):
            HELD.set(stack[:i] + stack[i + 1:])
            return stack[i][1]
    raise RuntimeError("__exit__ of a semaphore that this thread or task did not enter")
