"""The I/O-free core of :class:`~pyredis_atomic.RateLimiter` (GCRA): validation, keys,
calls and the result type.

GCRA (the generic cell rate algorithm) keeps one number per limiter: how far ahead of now
its "theoretical arrival time" is, counted here in emission intervals (``period / rate``).
A hit of cost n is allowed when that backlog plus n stays within ``burst``. So from a full
limiter ``burst`` hits pass at once, then one per interval; the state is one small string
key that expires when the limiter is full again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .calls import Call
from .configs import RateLimitConfig
from .keys import DEFAULT_PREFIX, KeyLayout, check_name, check_prefix
from .script import keyed
from .validate import MAX_SECONDS, check_int, check_seconds

__all__ = [
    "MAX_BURST",
    "RateLimitConfig",
    "RateLimitResult",
    "RateLimiterSpec",
]

MAX_BURST = 10**9


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """The answer of a rate limiter.

    ``allowed``: the hit was allowed (and spent). ``remaining``: hits of cost 1 still
    allowed right after this one (for a refused hit: right now). ``retry_after``: seconds
    until this hit would be allowed (0 when allowed). ``reset_after``: seconds until the
    limiter is full again. ``limit``: the burst (the most hits allowed at once). Truthy
    exactly when ``allowed``.
    """

    allowed: bool
    remaining: int
    retry_after: float
    reset_after: float
    limit: int

    def __bool__(self) -> bool:
        return self.allowed

    def headers(self) -> dict[str, str]:
        """HTTP headers for this answer: ``X-RateLimit-Limit`` (burst),
        ``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` (whole seconds until full again,
        rounded up) and, when the hit was refused, ``Retry-After`` (whole seconds, rounded
        up, so a client that waits that long is allowed)."""
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_after)),
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return out


def _check_rate(rate: object) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise TypeError(f"rate must be a number of hits per period, got {type(rate).__name__}")
    value = float(rate)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"rate must be a positive finite number, got {rate!r}")
    return value


SCRIPTS = ("ratelimit_hit", "ratelimit_peek", "ratelimit_reset", "ratelimit_config",
           "ratelimit_reconfigure")


class RateLimiterSpec:
    """A validated GCRA limiter definition and the calls that operate on it."""

    __slots__ = ("_keys", "burst", "config_key", "interval", "interval_arg", "key", "keys", "name",
                 "period", "prefix", "rate")

    def __init__(self, name: object, rate: object, period: object = 1.0,
                 burst: object = None, *, prefix: object = DEFAULT_PREFIX) -> None:
        self.name = check_name(name)
        self.prefix = check_prefix(prefix)
        self.rate = _check_rate(rate)
        self.period = check_seconds(period, "period", minimum=1e-6)
        if burst is None:
            burst = min(MAX_BURST, max(1, math.ceil(self.rate)))
        self.burst = check_int(burst, "burst", minimum=1, maximum=MAX_BURST)
        self.interval = self.period / self.rate  # seconds per unit
        if self.interval * 1e6 < 1e-3:
            raise ValueError(f"rate / period is {self.rate / self.period:g} per second; at "
                             f"most 1e9 per second can be told apart")
        if self.interval * self.burst > MAX_SECONDS:
            raise ValueError("burst * period / rate must be at most a year (the time an "
                             "empty limiter takes to refill)")
        # Sent as a string: Lua keeps the fraction (numbers sent as ints would be truncated).
        self.interval_arg = repr(self.interval * 1e6).encode()
        layout = KeyLayout("ratelimit", self.prefix)
        self.key = layout.key(self.name)
        self.config_key = layout.key(self.name, "config")
        # Each script's KEYS, picked by the names its header gives them.
        roles = {"state": self.key, "config": self.config_key}
        self._keys = {script: keyed(script, roles) for script in SCRIPTS}
        self.keys = self._keys["ratelimit_hit"]

    def decode(self, reply: Any) -> RateLimitResult:
        """``"allowed remaining retry_after_us reset_after_us"`` as a result."""
        allowed, remaining, retry_us, reset_us = map(
            int, (reply.decode() if isinstance(reply, bytes) else reply).split(" "))
        return RateLimitResult(allowed == 1, remaining, retry_us / 1e6, reset_us / 1e6,
                               self.burst)

    def check_cost(self, n: object) -> int:
        """The cost of a hit: an int from 1 to ``burst``."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, got {type(n).__name__}")
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if n > self.burst:
            raise ValueError(f"n ({n}) exceeds burst ({self.burst}): such a hit could never "
                             f"be allowed")
        return n

    def hit_call(self, n: object = 1) -> Call[RateLimitResult]:
        """``ratelimit_hit`` of cost ``n``."""
        return Call("ratelimit_hit", self._keys["ratelimit_hit"],
                    (self.interval_arg, self.burst, self.check_cost(n)), self.decode)

    def peek_call(self, n: object = 1) -> Call[RateLimitResult]:
        """``ratelimit_peek``: the answer a hit of cost ``n`` would get now, spending
        nothing."""
        return Call("ratelimit_peek", self._keys["ratelimit_peek"],
                    (self.interval_arg, self.burst, self.check_cost(n)), self.decode)

    def reset_call(self) -> Call[None]:
        """``ratelimit_reset``: forget the state (the limiter is full)."""
        return Call("ratelimit_reset", self._keys["ratelimit_reset"], (), _none)

    @property
    def config(self) -> RateLimitConfig:
        """The configuration this limiter's calls send (compared with the stored one)."""
        return RateLimitConfig(float(self.interval_arg) / 1e6, self.burst)

    def config_call(self) -> Call[RateLimitConfig | None]:
        """``ratelimit_config``: the stored configuration, or None."""
        return Call("ratelimit_config", self._keys["ratelimit_config"], (), RateLimitConfig.parse,
                    raw=True)

    def reconfigure_call(self) -> Call[RateLimitConfig | None]:
        """``ratelimit_reconfigure`` to this spec's configuration: the previous stored one."""
        return Call("ratelimit_reconfigure", self._keys["ratelimit_reconfigure"],
                    (self.interval_arg, self.burst),
                    RateLimitConfig.parse, raw=True)

    def describe(self) -> str:
        """``('name', rate=.., period=.., burst=..)`` for reprs."""
        return (f"({self.name!r}, rate={self.rate:g}, period={self.period:g}, "
                f"burst={self.burst}, prefix={self.prefix!r})")


def _none(reply: Any) -> None:
    return None
