"""Argument checks shared by the primitives. ``TypeError`` for a wrong type, ``ValueError``
for a bad value; every message names the argument. Nothing here touches Redis."""

from __future__ import annotations

import math

__all__ = ["MAX_SECONDS", "ClientKinds", "bad_client", "check_flag", "check_int",
           "check_seconds", "check_timeout", "to_millis"]

# Longer leases than a year are a bug in the caller, not a wish.
MAX_SECONDS = 365 * 24 * 3600.0
# Lua numbers are doubles: integers are exact up to 2**53.
MAX_EXACT_INT = 2**53


def check_seconds(
    value: object,
    argument: str,
    *,
    minimum: float = 0.001,
    maximum: float = MAX_SECONDS,
) -> float:
    """A positive duration in seconds (int or float, finite, within [minimum, maximum])."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{argument} must be a number of seconds, got {type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"{argument} must be finite, got {value!r}")
    if seconds < minimum:
        raise ValueError(f"{argument} must be at least {minimum} seconds, got {value!r}")
    if seconds > maximum:
        raise ValueError(f"{argument} must be at most {maximum:g} seconds, got {value!r}")
    return seconds


def check_timeout(value: object, argument: str = "timeout") -> float | None:
    """A wait limit: ``None`` (wait forever) or a finite number of seconds >= 0."""
    if value is None:
        return None
    return check_seconds(value, argument, minimum=0.0)


def check_int(
    value: object,
    argument: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """An ``int`` (``bool`` refused) within the given bounds and within Lua's exact range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be an int, got {type(value).__name__}")
    low = -MAX_EXACT_INT if minimum is None else minimum
    high = MAX_EXACT_INT if maximum is None else maximum
    if value < low or value > high:
        raise ValueError(f"{argument} must be between {low} and {high}, got {value}")
    return value


def check_flag(value: object, argument: str) -> bool:
    """A ``bool`` flag: ``True`` or ``False`` only. ``1``/``0`` are refused like ``True`` is
    refused where an int is expected, so the two mistakes fail the same way everywhere."""
    if not isinstance(value, bool):
        raise TypeError(f"{argument} must be a bool, got {type(value).__name__}")
    return value


def to_millis(seconds: float) -> int:
    """Seconds to whole milliseconds, never below 1."""
    return max(1, round(seconds * 1000))


def bad_client(client: object, *, wanted: str, asyncio: bool) -> TypeError:
    """The ``TypeError`` for a ``client`` that the API (``asyncio`` or sync) cannot use:
    what was wanted, what was given, and which API fits it. Decided by the class's module
    and name only, so nothing of redis-py is imported here."""
    cls = type(client)
    module = cls.__module__
    given = f"{module}.{cls.__qualname__}" if module != "builtins" else cls.__qualname__
    if module.startswith("redis") and "Pipeline" in cls.__name__:
        hint = ("a pipeline, not a client: primitives send their own commands (queue a "
                "script call on a pipeline with the registry's queue())")
    elif module.startswith("redis.asyncio") and not asyncio:
        hint = "an asyncio client: use the same class from pyredis_atomic.asyncio"
    elif module.startswith("redis") and asyncio and hasattr(client, "execute_command"):
        hint = "a sync client: use the same class from pyredis_atomic"
    else:
        hint = "not a redis-py client"
    return TypeError(f"client must be {wanted}, got {given} ({hint})")


class ClientKinds:
    """Which classes an API takes as ``client``: subclasses of ``clients`` that are not
    subclasses of ``pipelines``. ``ok(client)`` is kept per class: redis-py's classes have
    a Protocol metaclass, so a failing ``isinstance`` takes microseconds, and the answer
    depends on the class alone."""

    __slots__ = ("_known", "clients", "pipelines")

    def __init__(self, clients: tuple[type, ...], pipelines: tuple[type, ...]) -> None:
        self.clients = clients
        self.pipelines = pipelines
        self._known: dict[type, bool] = {}

    def ok(self, client: object) -> bool:
        """True when the API can use ``client``."""
        kind = type(client)
        found = self._known.get(kind)
        if found is None:
            found = self._known[kind] = (issubclass(kind, self.clients)
                                         and not issubclass(kind, self.pipelines))
        return found

