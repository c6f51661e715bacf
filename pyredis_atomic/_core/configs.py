"""Configurations stored with the data (issue 16): the first writer of a counter, rate
limiter or semaphore stores its configuration in a string key next to the state (same hash
tag, ``<prefix><kind>:{<name>}:config``); every later call sends its own and the script
compares the two before it touches the state, so no caller, in any language, can move the
state outside the stored configuration. :meth:`reconfigure` on each primitive (and the CLI's
``reconfigure`` commands) is the one way to change it.

The stored text is what the Python core sends (the "packed" ``ARGV``), compared byte for
byte on the hot path:

* counter: ``"<min> <max> <mode>"``: decimal integers, ``±(2**53 - 1)`` for no bound, mode
  ``reject`` or ``clamp``;
* rate limiter: ``"<interval_us> <burst>"``: the emission interval ``period / rate`` in
  microseconds (a decimal) and the burst;
* semaphore: ``"<limit>"``.

This module parses and describes them (for reports and for
:class:`~pyredis_atomic.ConfigMismatchError`'s message); it does no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigMismatchError
from .reports import Report

__all__ = [
    "CounterConfig",
    "RateLimitConfig",
    "SemaphoreConfig",
    "config_mismatch_error",
    "describe_config",
    "parse_config",
]

_LIMIT = 2**53 - 1


def _text(raw: Any) -> str | None:
    if raw is None or raw in (b"", ""):
        return None
    return raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else str(raw)


@dataclass(frozen=True, eq=False)
class CounterConfig(Report):
    """The stored configuration of a :class:`~pyredis_atomic.BoundedCounter`: its bounds
    (``None``: unbounded on that side, within ``±(2**53 - 1)``) and whether a change that
    would cross a bound is clamped (``clamp=True``) or rejected by default."""

    min: int | None
    max: int | None
    clamp: bool

    def packed(self) -> bytes:
        """The text stored and sent (``"<min> <max> <mode>"``)."""
        low = -_LIMIT if self.min is None else self.min
        high = _LIMIT if self.max is None else self.max
        return f"{low} {high} {'clamp' if self.clamp else 'reject'}".encode()

    @classmethod
    def parse(cls, raw: Any) -> CounterConfig | None:
        """The configuration in a stored text (None when there is none or it is not one)."""
        text = _text(raw)
        m = re.fullmatch(r"(-?\d+) (-?\d+) (reject|clamp)", text or "")
        if m is None:
            return None
        low, high = int(m[1]), int(m[2])
        return cls(None if low == -_LIMIT else low, None if high == _LIMIT else high,
                   m[3] == "clamp")

    def describe(self) -> str:
        """``min=0 max=100 reject``."""
        return f"min={self.min} max={self.max} {'clamp' if self.clamp else 'reject'}"


@dataclass(frozen=True, eq=False)
class RateLimitConfig(Report):
    """The stored configuration of a :class:`~pyredis_atomic.RateLimiter`: ``interval``,
    the seconds one unit takes to refill (``period / rate``), and ``burst``. Limiters
    built with ``(rate, period)`` pairs of one ratio (10 per second, 600 per minute) and
    one burst have the same configuration."""

    interval: float
    burst: int

    @property
    def per_second(self) -> float:
        """The sustained rate, in units per second."""
        return 1.0 / self.interval

    @classmethod
    def parse(cls, raw: Any) -> RateLimitConfig | None:
        """The configuration in a stored text (None when there is none or it is not one)."""
        parts = (_text(raw) or "").split(" ")
        try:
            interval_us, burst = float(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            return None
        if len(parts) != 2:
            return None
        return cls(interval_us / 1e6, burst)

    def describe(self) -> str:
        """``rate=10/s (one unit every 0.1 s) burst=10``."""
        return (f"rate={self.per_second:g}/s (one unit every {self.interval:g} s) "
                f"burst={self.burst}")


@dataclass(frozen=True, eq=False)
class SemaphoreConfig(Report):
    """The stored configuration of a :class:`~pyredis_atomic.Semaphore`: its ``limit``."""

    limit: int

    @classmethod
    def parse(cls, raw: Any) -> SemaphoreConfig | None:
        """The configuration in a stored text (None when there is none or it is not one)."""
        text = _text(raw) or ""
        return cls(int(text)) if re.fullmatch(r"[1-9]\d*", text) else None

    def describe(self) -> str:
        """``limit=3``."""
        return f"limit={self.limit}"


_KINDS: dict[str, Any] = {"counter": CounterConfig, "ratelimit": RateLimitConfig,
                          "semaphore": SemaphoreConfig}


def parse_config(kind: str, raw: Any) -> Any:
    """The configuration object of primitive ``kind`` in a stored text, or None."""
    return _KINDS[kind].parse(raw) if kind in _KINDS else None


def describe_config(kind: str, raw: str) -> str:
    """A stored or sent configuration as a reader wants it: ``min=0 max=100 reject
    ("0 100 reject")``; the raw text alone when it does not parse."""
    parsed = parse_config(kind, raw)
    return f"{parsed.describe()} ({raw!r})" if parsed is not None else repr(raw)


_MISMATCH = re.compile(r'stores "(?P<stored>.*)", the call gives "(?P<given>.*)"$')


def config_mismatch_error(script: str, key: str | None, message: str) -> ConfigMismatchError:
    """The :class:`~pyredis_atomic.ConfigMismatchError` of a ``CONFIGMISMATCH`` reply."""
    kind = script.split("_", 1)[0]
    m = _MISMATCH.search(message)
    stored, given = (m["stored"], m["given"]) if m else ("?", "?")
    where = f" {key!r}" if key else ""
    return ConfigMismatchError(
        f"the {kind} configuration stored in{where} is {describe_config(kind, stored)}; "
        f"this call ({script!r}) gives {describe_config(kind, given)}: nothing was changed. "
        f"Use the stored configuration, or change it with reconfigure() (CLI: "
        f"pyredis-atomic {kind} reconfigure)",
        script=script, key=key, stored=stored, given=given)
