"""What the front ends send and how they read the answer: effects, flows and error mapping.

An operation of a primitive is described by a :class:`Call` (script name, keys, arguments
and a function that decodes the reply). Operations that take several steps (a blocking
acquire, a pop that waits) are *flows*: generators that yield effects (:class:`Call`,
:class:`Block`, :class:`Sleep`) and receive their results. The sync driver
(``pyredis_atomic._sync``) and the asyncio driver (``pyredis_atomic.asyncio._driver``)
perform the effects; the logic lives once, here and in the primitives' core modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..errors import (
    AtomicError,
    ConnectionLostError,
    DurabilityError,
    ReplyTimeoutError,
    ScriptError,
    WrongTypeError,
)
from .configs import config_mismatch_error
from .script import Script
from .servers import is_wrong_type, parse_error_reply

__all__ = [
    "Arg",
    "Block",
    "Call",
    "Durability",
    "Effect",
    "Flow",
    "Key",
    "Sleep",
    "check_durability",
    "check_wait_error",
    "connection_error",
    "durability_error",
    "encode_args",
    "key_names",
    "script_error",
    "timeout_error",
    "wait_failed",
    "wait_millis",
    "wrong_type_error",
]

T = TypeVar("T")
Arg = str | bytes | int | float
# A key as sent: hot paths pass keys pre-encoded (bytes), which spares redis-py an encode per
# key per call; error messages always show them as text (see key_names).
Key = str | bytes


def key_names(keys: Sequence[Key]) -> tuple[str, ...]:
    """Keys as text, for messages and error attributes."""
    return tuple(k.decode("utf-8", "replace") if isinstance(k, bytes) else k for k in keys)


def _identity(reply: Any) -> Any:
    return reply


@dataclass(frozen=True)
class Call(Generic[T]):
    """Run script ``script`` with ``keys`` and ``args``; ``decode`` turns the reply into T.

    ``raw``: read the reply's strings as ``bytes`` even on a ``decode_responses=True``
    client (payloads that need not be UTF-8: queue messages, pickled cache values).
    """

    script: str
    keys: tuple[Key, ...]
    args: tuple[Arg, ...]
    decode: Callable[[Any], T] = field(default=_identity)
    raw: bool = False


@dataclass(frozen=True)
class Block:
    """Wait on list ``key`` (``BLPOP``) for at most ``seconds``.

    The result sent back into the flow is the popped value, or ``None`` when the wait
    timed out (or, with ``then``, that call's reply). Drivers may cut the wait shorter (to
    stay inside the client's socket timeout); flows always re-check their own deadline
    after a ``Block``.
    """

    key: str
    seconds: float
    # A call to run the moment the wait ends, in the same round trip: drivers pipeline it
    # behind the BLPOP, so Redis runs it right after the wake-up (or the lapse) instead of
    # one network round trip later. The effect's result is then the call's decoded reply.
    then: Call[Any] | None = None


@dataclass(frozen=True)
class Sleep:
    """Pause for ``seconds`` (used only for the last few milliseconds before a deadline)."""

    seconds: float


Effect = Call[Any] | Block | Sleep
Flow = Generator[Effect, Any, T]


def encode_args(args: Sequence[object]) -> tuple[Arg, ...]:
    """Check that every argument is something Redis takes as a bulk string."""
    out: list[Arg] = []
    for i, a in enumerate(args, start=1):
        if isinstance(a, bool) or not isinstance(a, (str, bytes, int, float)):
            raise TypeError(f"ARGV[{i}] must be str, bytes, int or float, got {type(a).__name__}")
        out.append(a)
    return tuple(out)


def is_redis_error(exc: BaseException, name: str) -> bool:
    """``isinstance(exc, redis.exceptions.<name>)``, decided by the classes' names: ``_core``
    imports nothing of redis-py (the sync and asyncio clients raise the same classes)."""
    return any(c.__name__ == name and c.__module__ == "redis.exceptions"
               for c in type(exc).__mro__)


_KEY_REF = re.compile(r"KEYS\[(\d+)\]")


def _describe(message: str, keys: Sequence[str]) -> tuple[str, str | None]:
    """Replace ``KEYS[n]`` in a script's error text with the key's name."""
    first: list[str] = []

    def sub(m: re.Match[str]) -> str:
        i = int(m.group(1))
        if 1 <= i <= len(keys):
            first.append(keys[i - 1])
            return repr(keys[i - 1])
        return m.group(0)

    text = _KEY_REF.sub(sub, message)
    return text, (first[0] if first else None)


def script_error(script: Script, keys: Sequence[Key], exc: Exception) -> AtomicError:
    """Turn an error reply of a script into a :class:`ScriptError` naming the key.

    Scripts report their own errors as ``redis.error_reply('CODE text with KEYS[n]')``; the
    ``KEYS[n]`` reference becomes the key's name.
    """
    keys = key_names(keys)
    message = str(exc)
    if is_redis_error(exc, "NoPermissionError") or message.startswith("NOPERM"):
        return _no_permission(script, keys, message)
    # One text on every server: Redis 6.2 wraps the error of a command run by the script
    # ("Error running script (call to f_<sha>): @user_script:9: ..."), 7.0+ appends where.
    reply = parse_error_reply(message, _stripped_code(exc))
    text, key = _describe(reply.message, keys)
    if key is None and len(keys) == 1:
        key = keys[0]
    if reply.code == "CONFIGMISMATCH":
        return config_mismatch_error(script.name, key, reply.message)
    return ScriptError(f"script {script.name!r} failed: {text}", script=script.name, key=key,
                       code=reply.code)


# Error codes that redis-py removes from the message and turns into an exception class
# (named here, not imported: _core imports nothing of redis-py). Newer redis-py versions
# also keep the code in ``status_code``.
_CODE_OF_CLASS = {
    "NoPermissionError": "NOPERM",
    "ReadOnlyError": "READONLY",
    "NoScriptError": "NOSCRIPT",
    "BusyLoadingError": "LOADING",
    "ExecAbortError": "EXECABORT",
    "OutOfMemoryError": "OOM",
}


def _stripped_code(exc: Exception) -> str:
    """The error code redis-py took off ``str(exc)`` ("" when the message still has it)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, str):
        return status
    for cls in type(exc).__mro__:
        if cls.__module__ == "redis.exceptions" and cls.__name__ in _CODE_OF_CLASS:
            return _CODE_OF_CLASS[cls.__name__]
    return ""


def _no_permission(script: Script, keys: Sequence[str], message: str) -> ScriptError:
    # redis-py strips the NOPERM code, and Redis does not say which key it refused: name
    # them all, so an operator can compare them with the ACL user's key patterns.
    text = message.removeprefix("NOPERM ").strip()
    named = ", ".join(repr(k) for k in keys) or "(none)"
    return ScriptError(
        f"script {script.name!r} was refused by the server's ACL: {text}. Keys: {named}; "
        f"the ACL user's key patterns (~...) must cover them (check the primitive's prefix) "
        f"and its commands must include what the scripts run (see the README)",
        script=script.name, key=keys[0] if keys else None, code="NOPERM")


def wrong_type_error(
    script: Script, keys: Sequence[Key], actual_types: Sequence[str | None]
) -> AtomicError:
    """Name the key whose Redis type differs from the one its script header declares."""
    keys = key_names(keys)
    for position, (key, actual) in enumerate(zip(keys, actual_types, strict=False), start=1):
        expected = script.key_type(position)
        if expected in (None, "any") or actual in (None, "none", expected):
            continue
        return WrongTypeError(
            f"key {key!r} holds a Redis {actual}, but script {script.name!r} needs a "
            f"{expected} there (KEYS[{position}]); it was left unchanged",
            key=key,
            expected=expected,
            actual=actual,
        )
    return WrongTypeError(
        f"script {script.name!r} met a key of the wrong Redis type among {list(keys)!r}",
        key=keys[0] if keys else "",
        expected=None,
        actual=None,
    )


def connection_error(script: Script, keys: Sequence[Key], exc: Exception) -> AtomicError:
    """A connection failure while running ``script``; says whether it may have run."""
    keys = key_names(keys)
    where = f" on {keys[0]!r}" if keys else ""
    maybe = "" if script.read_only else " (it may or may not have been applied)"
    return ConnectionLostError(
        f"lost the connection to Redis running {script.name!r}{where}{maybe}: {exc}",
        key=keys[0] if keys else None,
    )


def durability_error(script: Script, keys: Sequence[Key], wanted: int, acknowledged: int,
                     timeout: float) -> AtomicError:
    """Fewer replicas than asked acknowledged a write within ``timeout`` seconds."""
    keys = key_names(keys)
    where = f" on {keys[0]!r}" if keys else ""
    return DurabilityError(
        f"{script.name!r}{where} was applied on the primary, but only {acknowledged} of "
        f"{wanted} replicas acknowledged it within {timeout:g} s: it may be lost if the "
        f"primary fails now",
        key=keys[0] if keys else None, wanted=wanted, acknowledged=acknowledged,
    )


def wait_failed(script: Script, keys: Sequence[Key], wanted: int,
                error: BaseException) -> AtomicError:
    """The script answered but the ``WAIT`` behind it failed (it is refused on a replica:
    a connection still on a demoted primary after a failover, where a script that wrote
    nothing, such as a re-sent increment found already applied, still runs)."""
    keys = key_names(keys)
    where = f" on {keys[0]!r}" if keys else ""
    return DurabilityError(
        f"{script.name!r}{where} ran, but the WAIT for {wanted} replica(s) behind it failed "
        f"({error}): the node may no longer be the primary, so the write is not known to be "
        f"on any replica; retry it (on the current primary)",
        key=keys[0] if keys else None, wanted=wanted, acknowledged=0,
    )


def wait_millis(replicas: int, timeout: float) -> int:
    """Validate a durability request; the ``WAIT`` timeout in ms (never 0: 0 blocks forever)."""
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise TypeError(f"replicas must be an int, got {type(replicas).__name__}")
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"durability timeout must be a number of seconds, "
                        f"got {type(timeout).__name__}")
    if not 0 < timeout < 3600:
        raise ValueError(f"durability timeout must be a number of seconds in (0, 3600), "
                         f"got {timeout!r}")
    return max(1, round(timeout * 1000))


@dataclass(frozen=True)
class Durability:
    """Wait after a write until ``replicas`` replicas have it (Redis ``WAIT``), at most
    ``timeout`` seconds; fewer acknowledgements raise :class:`~pyredis_atomic.DurabilityError`.

    Replication in Redis is asynchronous: without this, a write acknowledged by the
    primary can be lost if the primary fails before its replicas received it. With it, a
    write that returned normally is on ``replicas`` replicas (still not fsynced there, and
    a failover may still promote a replica that lacks it unless your failover picks the
    most up-to-date one, as Sentinel and Cluster do).
    """

    replicas: int
    timeout: float = 1.0

    def __post_init__(self) -> None:
        wait_millis(self.replicas, self.timeout)


def check_durability(value: object) -> Durability | None:
    """The ``durability`` option of a primitive: None or a :class:`Durability`."""
    if value is not None and not isinstance(value, Durability):
        raise TypeError(f"durability must be a Durability, got {type(value).__name__}")
    return value


def timeout_error(script: Script, keys: Sequence[Key], exc: Exception) -> AtomicError:
    """No reply in time while running ``script``."""
    keys = key_names(keys)
    where = f" on {keys[0]!r}" if keys else ""
    return ReplyTimeoutError(
        f"no reply from Redis in time for {script.name!r}{where} (it may or may not have "
        f"been applied): {exc}",
        key=keys[0] if keys else None,
    )


def check_wait_error(exc: Exception, key: str, then: str | None = None) -> None:
    """Raise the package's error for a failed wait on ``key`` (``then``: the script sent
    behind it, if any), or return for ``UNBLOCKED``: a failover turned the node into a
    replica and Redis ended the wait early, nothing popped; the flow re-checks and re-sends
    its call, which cluster routing takes to the new primary. A signal key of another type
    is a :class:`WrongTypeError` naming it."""
    behind = (f" (with {then!r} sent behind the wait: it may or may not have been applied)"
              if then else "")
    if is_redis_error(exc, "TimeoutError"):
        raise ReplyTimeoutError(f"waiting on {key!r}{behind} timed out: {exc}",
                                key=key) from exc
    if is_redis_error(exc, "ConnectionError"):
        raise ConnectionLostError(f"lost the connection waiting on {key!r}{behind}: {exc}",
                                  key=key) from exc
    message = str(exc)
    if is_redis_error(exc, "ResponseError") and message.startswith("UNBLOCKED"):
        return
    if is_redis_error(exc, "ResponseError") and is_wrong_type(message):
        raise WrongTypeError(f"key {key!r} holds another Redis type, but waiters block on it "
                             f"as a list (BLPOP); it was left unchanged", key=key,
                             expected="list", actual=None) from exc
    raise exc
