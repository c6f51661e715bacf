"""The asyncio API of pyredis-atomic: the same primitives for ``redis.asyncio`` clients."""

from __future__ import annotations

from .._core.counter import CounterResult
from .._core.ratelimit import RateLimitResult
from .counter import BoundedCounter
from .ratelimit import RateLimiter
from .registry import AsyncScriptRegistry
from .semaphore import Semaphore

__all__ = [
    "AsyncScriptRegistry",
    "BoundedCounter",
    "CounterResult",
    "RateLimitResult",
    "RateLimiter",
    "Semaphore",
]
