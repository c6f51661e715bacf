"""The asyncio API of pyredis-atomic: the same primitives for ``redis.asyncio`` clients."""

from __future__ import annotations

from .cache import Cache
from .queue import Message, ReliableQueue
from .registry import AsyncScriptRegistry

__all__ = ["AsyncScriptRegistry", "Cache", "Message", "ReliableQueue"]
