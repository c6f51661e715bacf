"""pyredis-atomic: atomic Redis primitives, each operation one Lua script run inside Redis.

The public surface: the primitives (coming per issue), the error hierarchy rooted at
:class:`AtomicError`, and the :class:`ScriptRegistry` that loads and runs the scripts.
The asyncio API is :mod:`pyredis_atomic.asyncio`; test fixtures are in
:mod:`pyredis_atomic.testing`.
"""

from __future__ import annotations

from .cache import Cache
from .errors import (
    AtomicError,
    CacheError,
    ConnectionLostError,
    DecodeError,
    DurabilityError,
    EncodeError,
    LockError,
    LockLostError,
    LockNotOwnedError,
    LockTimeoutError,
    ReplyTimeoutError,
    ScriptError,
    WrongTypeError,
)
from .registry import ScriptRegistry, default_registry

__version__ = "0.1.0.dev0"

__all__ = [
    "AtomicError",
    "Cache",
    "CacheError",
    "ConnectionLostError",
    "DecodeError",
    "DurabilityError",
    "EncodeError",
    "LockError",
    "LockLostError",
    "LockNotOwnedError",
    "LockTimeoutError",
    "ReplyTimeoutError",
    "ScriptError",
    "ScriptRegistry",
    "WrongTypeError",
    "__version__",
    "default_registry",
]

# -- Reliable queue (issue #4) ----------------------------------------------------------
from .errors import EvictionPolicyError, QueueError
from .queue import Message, ReliableQueue

__all__ += ["EvictionPolicyError", "Message", "QueueError", "ReliableQueue"]
