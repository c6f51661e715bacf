"""The asyncio API of pyredis-atomic: the same primitives for ``redis.asyncio`` clients.

Every class here is the source of its sync namesake in :mod:`pyredis_atomic`, which
``scripts/unasync.py`` generates from it (CI fails on any difference), so the two cannot
drift apart.

Auto-pipelining (asyncio only): the script calls that tasks make on one client in the same
turn of the event loop go out as one pipeline. It is on by default;
:func:`set_auto_pipelining` turns it off (for every client, or one) and
:func:`auto_pipelining` tells whether it is on. See ``docs/asyncio.md``.
"""

from __future__ import annotations

from .._core.cache import CacheEntryInfo
from .._core.calls import Durability
from .._core.configs import CounterConfig, RateLimitConfig, SemaphoreConfig
from .._core.counter import CounterResult
from .._core.near import NearCache, NearStats
from .._core.queue import Failure, QueueStats
from .._core.ratelimit import RateLimitResult
from .._core.reports import SemaphoreHolder, SemaphoreInfo
from .._core.worker import HandlerTimeoutError, Retry
from ._pipelining import auto_pipelining, set_auto_pipelining
from .cache import Cache
from .counter import BoundedCounter
from .lock import Lock, LockInfo
from .queue import Message, ReliableQueue
from .ratelimit import RateLimiter
from .registry import AsyncScriptRegistry
from .semaphore import Semaphore
from .worker import Worker

__all__ = [
    "AsyncScriptRegistry",
    "BoundedCounter",
    "Cache",
    "CacheEntryInfo",
    "CounterConfig",
    "CounterResult",
    "Durability",
    "Failure",
    "HandlerTimeoutError",
    "Lock",
    "LockInfo",
    "Message",
    "NearCache",
    "NearStats",
    "QueueStats",
    "RateLimitConfig",
    "RateLimitResult",
    "RateLimiter",
    "ReliableQueue",
    "Retry",
    "Semaphore",
    "SemaphoreConfig",
    "SemaphoreHolder",
    "SemaphoreInfo",
    "Worker",
    "auto_pipelining",
    "set_auto_pipelining",
]
