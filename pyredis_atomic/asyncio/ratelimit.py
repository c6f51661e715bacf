"""``RateLimiter``: GCRA (generic cell rate algorithm) in one script, on the server's clock.

The racy recipes it replaces: ``INCR`` + ``EXPIRE`` fixed windows (twice the rate at a
window edge, and a crash between the two commands leaves a window that never expires),
and client-side token buckets read and written in two round trips (both clients spend the
same token).
"""

from __future__ import annotations

from .._core.keys import DEFAULT_PREFIX
from .._core.ratelimit import RateLimitConfig, RateLimiterSpec, RateLimitResult
from ._runtime import Client, check_client
from .registry import AsyncScriptRegistry, default_registry

__all__ = ["RateLimitConfig", "RateLimitResult", "RateLimiter"]


class RateLimiter:
    """Allow ``rate`` hits per ``period`` seconds, with bursts of up to ``burst``.

    From a full limiter ``burst`` hits are allowed at once (``remaining`` counts down
    ``burst-1 ... 0``), then one every ``period / rate`` seconds; unused capacity refills
    at that pace up to ``burst``. ``burst`` defaults to ``rate`` rounded up. Time comes from
    the Redis server (``TIME``, microseconds), so clients' clocks do not matter.

    Stored configuration: the first hit stores ``(period / rate, burst)`` next to the
    state (``<prefix>ratelimit:{<name>}:config``, kept for good) and every later hit or
    peek, from any client in any language, is checked against it inside the script: a
    limiter built with another rate or burst raises
    :class:`~pyredis_atomic.ConfigMismatchError` and spends nothing (so no caller can
    allow more than the stored rate). :meth:`reconfigure` changes it. Rates of one ratio
    (10 per second, 600 per minute) with one burst are the same configuration.

    Key: ``<prefix>ratelimit:{<name>}`` (one string, gone once the limiter is full again).
    ``registry``: the script registry to run on (default: the package's).
    """


    def __init__(self, client: Client, name: str, rate: float, period: float = 1.0,
                 burst: int | None = None, *, prefix: str = DEFAULT_PREFIX,
                 registry: AsyncScriptRegistry | None = None) -> None:
        client = check_client(client)
        spec = RateLimiterSpec(name, rate, period, burst, prefix=prefix)
        self._client = client
        self._registry = registry or default_registry()
        self._hit = self._registry.bind(client, "ratelimit_hit")
        self._use(spec)

    def _use(self, spec: RateLimiterSpec) -> None:
        # Everything the hot path sends, precomputed from the spec.
        self._spec = spec
        self._hit_keys = tuple(k.encode() for k in spec.keys)
        self._hit_args = (spec.interval_arg, str(spec.burst).encode(), b"1")
        self._peek1 = spec.peek_call(1)
        self._reset = spec.reset_call()


    @property
    def name(self) -> str:
        """The limiter's name."""
        return self._spec.name

    @property
    def rate(self) -> float:
        """Hits allowed per period (sustained)."""
        return self._spec.rate

    @property
    def period(self) -> float:
        """The period in seconds."""
        return self._spec.period

    @property
    def burst(self) -> int:
        """Hits allowed at once from a full limiter."""
        return self._spec.burst

    @property
    def key(self) -> str:
        """The Redis key of the limiter's state."""
        return self._spec.key

    def __repr__(self) -> str:
        return f"asyncio.RateLimiter{self._spec.describe()}"

    async def hit(self, n: int = 1) -> RateLimitResult:
        """Spend ``n`` (1 to ``burst``) if allowed now; a refused hit spends nothing.

        Re-sending: a hit whose reply was lost and that is sent again may be counted twice
        (the limiter errs on the side of limiting).
        """
        if n == 1 and n.__class__ is int:
            r = await self._hit(self._hit_keys, self._hit_args)
            return self._spec.decode(r)
        return await self._registry.run(self._client, self._spec.hit_call(n))

    async def peek(self, n: int = 1) -> RateLimitResult:
        """Exactly the answer ``hit(n)`` would get now, spending nothing (read-only; runs
        on replicas where the client routes reads there)."""
        call = self._peek1 if n == 1 and n.__class__ is int else self._spec.peek_call(n)
        return await self._registry.run(self._client, call)

    async def reset(self) -> None:
        """Forget all hits: the limiter is full again (the stored configuration stays).
        Re-sending is harmless."""
        await self._registry.run(self._client, self._reset)

    @property
    def config(self) -> RateLimitConfig:
        """This limiter's configuration (what its calls send; see :meth:`stored_config`
        for what the server holds)."""
        return self._spec.config

    async def stored_config(self) -> RateLimitConfig | None:
        """The configuration stored with the limiter (None: none stored yet; the next hit
        or :meth:`reconfigure` stores one). Read-only."""
        return await self._registry.run(self._client, self._spec.config_call())

    async def reconfigure(self, rate: float, period: float = 1.0,
                          burst: int | None = None) -> RateLimitConfig | None:
        """Replace the stored configuration with ``(rate, period, burst)`` (the
        constructor's rules: ``burst`` defaults to ``rate`` rounded up) and use it from
        now on; return the previous stored one (None if there was none).

        Units already spent stay spent: the backlog drains at the new rate from now on (a
        backlog above the new burst refuses hits until it has drained below it), so the
        new rate holds from this instant. Other clients still built with the old
        configuration get :class:`~pyredis_atomic.ConfigMismatchError` from then on.
        Re-sending is harmless (up to the time that passed in between).
        """
        spec = RateLimiterSpec(self._spec.name, rate, period, burst, prefix=self._spec.prefix)
        previous = await self._registry.run(self._client, spec.reconfigure_call())
        self._use(spec)
        return previous
