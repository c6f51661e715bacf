"""pyredis-atomic: atomic Redis primitives, each operation one Lua script run inside Redis.

The public surface: the primitives (:class:`Lock`, :class:`Cache`, :class:`ReliableQueue`,
:class:`BoundedCounter`, :class:`Semaphore`, :class:`RateLimiter`), the queue consumer
:class:`Worker` (with :class:`Retry`), the error hierarchy
rooted at :class:`AtomicError`, and the :class:`ScriptRegistry` that loads and runs the
scripts. The asyncio API is :mod:`pyredis_atomic.asyncio`; test fixtures are in
:mod:`pyredis_atomic.testing`.
"""

from __future__ import annotations

from ._core.cache import CacheEntryInfo
from ._core.calls import Durability
from ._core.configs import CounterConfig, RateLimitConfig, SemaphoreConfig
from ._core.counter import MAX_VALUE, MIN_VALUE, CounterResult
from ._core.near import NearCache, NearStats
from ._core.queue import Failure, QueueStats
from ._core.ratelimit import RateLimitResult
from ._core.reports import SemaphoreHolder, SemaphoreInfo
from ._core.worker import HandlerTimeoutError, Retry
from .cache import Cache
from .counter import BoundedCounter
from .errors import (
    AtomicError,
    CacheError,
    ConfigMismatchError,
    ConnectionLostError,
    DecodeError,
    DurabilityError,
    EncodeError,
    EvictionPolicyError,
    LibraryNotLoadedError,
    LockError,
    LockLostError,
    LockNotOwnedError,
    LockTimeoutError,
    QueueError,
    ReplyTimeoutError,
    ScriptError,
    SemaphoreError,
    SemaphoreLostError,
    SemaphoreTimeoutError,
    ServerVersionError,
    WrongTypeError,
)
from .lock import Lock, LockInfo
from .queue import Message, ReliableQueue
from .ratelimit import RateLimiter
from .registry import ScriptRegistry, default_registry
from .semaphore import Semaphore
from .worker import Worker

__version__ = "0.1.0.dev0"

__all__ = [
    "MAX_VALUE",
    "MIN_VALUE",
    "AtomicError",
    "BoundedCounter",
    "Cache",
    "CacheEntryInfo",
    "CacheError",
    "ConfigMismatchError",
    "ConnectionLostError",
    "CounterConfig",
    "CounterResult",
    "DecodeError",
    "Durability",
    "DurabilityError",
    "EncodeError",
    "EvictionPolicyError",
    "Failure",
    "HandlerTimeoutError",
    "LibraryNotLoadedError",
    "Lock",
    "LockError",
    "LockInfo",
    "LockLostError",
    "LockNotOwnedError",
    "LockTimeoutError",
    "Message",
    "NearCache",
    "NearStats",
    "QueueError",
    "QueueStats",
    "RateLimitConfig",
    "RateLimitResult",
    "RateLimiter",
    "ReliableQueue",
    "ReplyTimeoutError",
    "Retry",
    "ScriptError",
    "ScriptRegistry",
    "Semaphore",
    "SemaphoreConfig",
    "SemaphoreError",
    "SemaphoreHolder",
    "SemaphoreInfo",
    "SemaphoreLostError",
    "SemaphoreTimeoutError",
    "ServerVersionError",
    "Worker",
    "WrongTypeError",
    "__version__",
    "default_registry",
]
