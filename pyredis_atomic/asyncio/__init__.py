"""The asyncio API of pyredis-atomic: the same primitives for ``redis.asyncio`` clients."""

from __future__ import annotations

from .lock import Lock, LockInfo
from .registry import AsyncScriptRegistry

__all__ = ["AsyncScriptRegistry", "Lock", "LockInfo"]
