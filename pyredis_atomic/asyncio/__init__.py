"""The asyncio API of pyredis-atomic: the same primitives for ``redis.asyncio`` clients."""

from __future__ import annotations

from .registry import AsyncScriptRegistry

__all__ = ["AsyncScriptRegistry"]

# -- Reliable queue (issue #4) ----------------------------------------------------------
from .queue import Message, ReliableQueue

__all__ += ["Message", "ReliableQueue"]
