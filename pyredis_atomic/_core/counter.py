"""The I/O-free core of :class:`~pyredis_atomic.BoundedCounter`: validation, keys, calls.

Both front ends (sync and asyncio) build their calls here, so they cannot drift. The hot
path (``incr``/``decr``) precomputes everything that does not change between calls.

Range: Lua numbers are doubles, exact for integers up to 2**53. Bounds, the initial value,
deltas and every stored value stay within ``±(2**53 - 1)`` (:data:`MAX_VALUE`); a side
whose bound is ``None`` is bounded by that range (an increment past it is rejected or
clamped like one past a bound).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .calls import Call, Key
from .configs import CounterConfig
from .keys import DEFAULT_PREFIX, KeyLayout, check_name, check_prefix
from .replies import as_int
from .script import keyed
from .validate import check_flag, check_seconds

__all__ = [
    "DEFAULT_REQUEST_TTL",
    "MAX_VALUE",
    "MIN_VALUE",
    "CounterConfig",
    "CounterResult",
    "CounterSpec",
    "bad_delta",
    "check_request_id",
    "decode_result",
]

MAX_VALUE = 2**53 - 1
MIN_VALUE = -MAX_VALUE
# How long a request id's reply is remembered: long enough for any sane retry loop.
DEFAULT_REQUEST_TTL = 3600.0
MAX_REQUEST_ID_BYTES = 256


class CounterResult:
    """What one ``incr``/``decr`` did.

    ``applied``: the whole requested change was made. ``value``: the counter after the call.
    ``delta``: the signed change actually made (the full delta, 0 when rejected, or the part
    a clamp let through). Truthy exactly when ``applied``, so ``if not stock.decr(): ...``
    reads naturally.
    """

    __slots__ = ("applied", "delta", "value")

    def __init__(self, applied: bool, value: int, delta: int) -> None:
        self.applied = applied
        self.value = value
        self.delta = delta

    def __bool__(self) -> bool:
        return self.applied

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CounterResult):
            return NotImplemented
        return (self.applied, self.value, self.delta) == (other.applied, other.value,
                                                          other.delta)

    def __hash__(self) -> int:
        return hash((self.applied, self.value, self.delta))

    def __repr__(self) -> str:
        return f"CounterResult(applied={self.applied}, value={self.value}, delta={self.delta})"


def decode_result(n: int) -> Callable[[Any], CounterResult]:
    """The decoder of ``counter_add``'s reply to a change of ``n``."""

    def decode(reply: Any) -> CounterResult:
        return decode_add(reply, n)

    return decode


def decode_add(reply: Any, n: int) -> CounterResult:
    """``counter_add`` replies with the new value when all of ``n`` was made, else with
    ``{value, delta made}`` (Lua integers: ``int`` in every protocol and decoding mode)."""
    if reply.__class__ is int:
        return CounterResult(True, reply, n)
    return CounterResult(False, reply[0], reply[1])


def bad_delta(n: object, argument: str = "n") -> Exception:
    """The error for a delta that is not an int within the exact range."""
    if isinstance(n, bool) or not isinstance(n, int):
        return TypeError(f"{argument} must be an int, got {type(n).__name__}")
    return ValueError(f"{argument} must be between {MIN_VALUE} and {MAX_VALUE} "
                      f"(the exact integer range of Redis Lua), got {n}")


def _check_value(value: object, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be an int, got {type(value).__name__}")
    if not MIN_VALUE <= value <= MAX_VALUE:
        raise ValueError(f"{argument} must be between {MIN_VALUE} and {MAX_VALUE} "
                         f"(the exact integer range of Redis Lua), got {value}")
    return value


def _check_bound(value: object, argument: str) -> int | None:
    return None if value is None else _check_value(value, argument)


def check_request_id(request_id: object) -> str:
    """A request id: a non-empty ``str`` of at most 256 UTF-8 bytes."""
    if not isinstance(request_id, str):
        raise TypeError(f"request_id must be a str, got {type(request_id).__name__}")
    if not request_id:
        raise ValueError("request_id must not be empty")
    try:
        size = len(request_id.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("request_id is not valid Unicode (lone surrogate)") from None
    if size > MAX_REQUEST_ID_BYTES:
        raise ValueError(f"request_id is {size} bytes long; at most {MAX_REQUEST_ID_BYTES}")
    return request_id


def _millis(seconds: float) -> int:
    return max(1, round(seconds * 1000))


SCRIPTS = ("counter_add", "counter_get", "counter_set", "counter_reset", "counter_config",
           "counter_reconfigure")


class CounterSpec:
    """A validated counter definition and the calls that operate on it.

    ``config``: the configuration the counter's calls send and the scripts compare with
    the stored one (bounds and mode); ``initial``, ``ttl`` and ``request_ttl`` are the
    caller's own settings (not stored: the scripts check that ``initial`` lies within the
    stored bounds).
    """

    __slots__ = ("_keys", "_options", "_roles", "clamp", "config", "config_arg", "config_key",
                 "initial", "key", "keys", "max", "min", "name", "prefix", "request_base",
                 "request_ttl", "ttl", "wire_config_key")

    def __init__(
        self,
        name: object,
        *,
        min: object = None,
        max: object = None,
        clamp: object = False,
        initial: object = 0,
        ttl: object = None,
        prefix: object = DEFAULT_PREFIX,
        request_ttl: object = DEFAULT_REQUEST_TTL,
    ) -> None:
        self.name = check_name(name)
        self.prefix = check_prefix(prefix)
        self.min = _check_bound(min, "min")
        self.max = _check_bound(max, "max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must not be greater than max ({self.max})")
        self.clamp = check_flag(clamp, "clamp")
        self.initial = _check_value(initial, "initial")
        self.check_in_bounds(self.initial, "initial")
        self.ttl = None if ttl is None else check_seconds(ttl, "ttl")
        self.request_ttl = check_seconds(request_ttl, "request_ttl")
        layout = KeyLayout("counter", self.prefix)
        self.key = layout.key(self.name)
        self.config_key = layout.key(self.name, "config")
        self.request_base = layout.key(self.name, "request:")
        self.config = CounterConfig(self.min, self.max, self.clamp)
        # ARGV[2] of counter_add and counter_set, compared byte for byte with the stored text.
        self.config_arg = self.config.packed()
        # KEYS[3] == KEYS[1] tells counter_add that there is no request id. Pre-encoded,
        # like ARGV[2]: the hot path spares redis-py an encode per key per call.
        wire = self.key.encode()
        self.wire_config_key = self.config_key.encode()
        self._roles = {"counter": wire, "config": self.wire_config_key, "request": wire}
        # Each script's KEYS, picked by the names its header gives them.
        self._keys = {script: keyed(script, self._roles) for script in SCRIPTS}
        self.keys = self._keys["counter_add"]
        ttl_ms = 0 if self.ttl is None else _millis(self.ttl)
        request_ttl_ms = _millis(self.request_ttl)
        # clamp -> ARGV[3] of counter_add.
        self._options = {
            clamp: f"{int(clamp)} {self.initial} {ttl_ms} {request_ttl_ms}".encode()
            for clamp in (False, True)
        }

    def options(self, clamp: bool | None) -> bytes:
        """ARGV[3] of ``counter_add`` (``clamp=None``: the counter's mode)."""
        return self._options[self.clamp if clamp is None else bool(clamp)]

    def check_in_bounds(self, value: int, argument: str) -> None:
        """``ValueError`` when ``value`` lies outside ``[min, max]``."""
        if (self.min is not None and value < self.min) or (
                self.max is not None and value > self.max):
            raise ValueError(f"{argument} ({value}) is outside the counter's bounds "
                             f"[{self.min}, {self.max}]")

    def add_call(self, n: object, clamp: object = None,
                 request_id: object = None) -> Call[CounterResult]:
        """The ``counter_add`` call (validates ``n``, ``clamp`` and ``request_id``)."""
        if isinstance(n, bool) or not isinstance(n, int) or not MIN_VALUE <= n <= MAX_VALUE:
            raise bad_delta(n)
        n = int(n)
        per_call = None if clamp is None else check_flag(clamp, "clamp")
        keys: tuple[Key, ...] = self.keys
        if request_id is not None:
            request = self.request_base + check_request_id(request_id)
            keys = keyed("counter_add", {**self._roles, "request": request})
        return Call("counter_add", keys, (n, self.config_arg, self.options(per_call)),
                    decode_result(n))

    def get_call(self) -> Call[int]:
        """``counter_get``: the value, or the initial value of an absent counter."""
        return Call("counter_get", self._keys["counter_get"], (self.initial,), as_int)

    def set_call(self, value: object) -> Call[None]:
        """``counter_set`` (``ValueError`` outside the bounds, before anything is sent; the
        script checks the value against the stored bounds again)."""
        checked = _check_value(value, "value")
        self.check_in_bounds(checked, "value")
        ttl_ms = 0 if self.ttl is None else _millis(self.ttl)
        return Call("counter_set", self._keys["counter_set"],
                    (checked, self.config_arg, ttl_ms), _none)

    def reset_call(self) -> Call[None]:
        """``counter_reset``: delete the counter (it reads as initial again)."""
        return Call("counter_reset", self._keys["counter_reset"], (), _none)

    def config_call(self) -> Call[CounterConfig | None]:
        """``counter_config``: the stored configuration, or None."""
        return Call("counter_config", self._keys["counter_config"], (), CounterConfig.parse,
                    raw=True)

    def reconfigured(self, min: object, max: object, clamp: object) -> CounterSpec:
        """This counter with another configuration (``clamp=None``: keep the mode)."""
        return CounterSpec(self.name, min=min, max=max,
                           clamp=self.clamp if clamp is None else clamp,
                           initial=self.initial, ttl=self.ttl,
                           prefix=self.prefix, request_ttl=self.request_ttl)

    def reconfigure_call(self, clamp_value: object) -> Call[tuple[CounterConfig | None,
                                                                  int | None, bool]]:
        """``counter_reconfigure`` to this spec's configuration: (the previous stored
        configuration, the value after, whether it was moved into the new bounds)."""
        fit = check_flag(clamp_value, "clamp_value")
        return Call("counter_reconfigure", self._keys["counter_reconfigure"],
                    (int(fit), self.config_arg), _reconfigured, raw=True)

    def describe(self) -> str:
        """``BoundedCounter('name', min=.., max=.., ...)`` for reprs."""
        return (f"({self.name!r}, min={self.min}, max={self.max}, clamp={self.clamp}, "
                f"initial={self.initial}, ttl={self.ttl}, prefix={self.prefix!r})")


def _reconfigured(reply: Any) -> tuple[CounterConfig | None, int | None, bool]:
    previous, value, moved = reply
    text = value.decode() if isinstance(value, bytes) else str(value)
    return CounterConfig.parse(previous), (int(text) if text else None), int(moved) == 1


def _none(reply: Any) -> None:
    return None
