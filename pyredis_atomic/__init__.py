"""pyredis-atomic: atomic Redis primitives, each operation one Lua script run inside Redis.

The public surface: the primitives (coming per issue), the error hierarchy rooted at
:class:`AtomicError`, and the :class:`ScriptRegistry` that loads and runs the scripts.
The asyncio API is :mod:`pyredis_atomic.asyncio`; test fixtures are in
:mod:`pyredis_atomic.testing`.
"""

from __future__ import annotations

from .errors import (
    AtomicError,
    ConnectionLostError,
    DecodeError,
    LockError,
    LockLostError,
    LockNotOwnedError,
    LockTimeoutError,
    ReplyTimeoutError,
    ScriptError,
    WrongTypeError,
)
from .lock import Lock, LockInfo
from .registry import ScriptRegistry, default_registry

__version__ = "0.1.0.dev0"

__all__ = [
    "AtomicError",
    "ConnectionLostError",
    "DecodeError",
    "Lock",
    "LockError",
    "LockInfo",
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
