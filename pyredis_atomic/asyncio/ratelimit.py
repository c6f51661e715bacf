"""The asyncio ``RateLimiter``: same core, same scripts, awaited I/O."""

from __future__ import annotations

from typing import Any

from .._core.keys import DEFAULT_PREFIX
from .._core.ratelimit import RateLimiterSpec, RateLimiterView, RateLimitResult
from .registry import default_registry

__all__ = ["RateLimitResult", "RateLimiter"]


class RateLimiter(RateLimiterView):
    """The asyncio twin of :class:`pyredis_atomic.RateLimiter` (same arguments and
    semantics; operations are coroutines)."""

    _repr_prefix = "asyncio."

    def __init__(self, client: Any, name: str, rate: float, period: float = 1.0,
                 burst: int | None = None, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._spec = RateLimiterSpec(name, rate, period, burst, prefix=prefix)
        self._client = client
        self._registry = default_registry()
        self._hit = self._registry.bind(client, "ratelimit_hit")
        self._hit_keys = (self._spec.key,)
        self._hit_args = (self._spec.interval_arg, str(self._spec.burst).encode(), b"1")
        self._peek1 = self._spec.peek_call(1)
        self._reset = self._spec.reset_call()


    async def hit(self, n: int = 1) -> RateLimitResult:
        """See :meth:`pyredis_atomic.RateLimiter.hit`."""
        if n == 1 and n.__class__ is int:
            r = await self._hit(self._hit_keys, self._hit_args)
            return self._spec.decode(r)
        return await self._registry.run(self._client, self._spec.hit_call(n))

    async def peek(self, n: int = 1) -> RateLimitResult:
        """See :meth:`pyredis_atomic.RateLimiter.peek`."""
        call = self._peek1 if n == 1 and n.__class__ is int else self._spec.peek_call(n)
        return await self._registry.run(self._client, call)

    async def reset(self) -> None:
        """See :meth:`pyredis_atomic.RateLimiter.reset`."""
        await self._registry.run(self._client, self._reset)
