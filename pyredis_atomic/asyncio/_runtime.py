"""What the asyncio API does differently from the sync one, below the driver: hand-written.

The sync twin is :mod:`pyredis_atomic._runtime` (same names, same signatures); see
``scripts/unasync.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster

__all__ = ["check_now", "durable_target", "on_node", "primaries"]


async def primaries(client: Any) -> list[Any]:
    """Where a script must be loaded: every primary node of a cluster, else the client."""
    if isinstance(client, RedisCluster):
        await client.initialize()  # a fresh cluster client knows no nodes yet; no-op after
        return list(client.get_primaries())
    return [client]


async def on_node(client: Any, node: Any, *command: Any) -> Any:
    """Send ``command`` to ``node`` (one of :func:`primaries`)."""
    if node is client:
        return await client.execute_command(*command)
    return await client.execute_command(*command, target_nodes=node)


def durable_target(client: Any, keys: Sequence[Any]) -> Any:
    """The connection a call and its ``WAIT`` go out on (the client itself)."""
    if isinstance(client, RedisCluster):
        # WAIT counts the writes of its own connection, and redis.asyncio's cluster
        # client cannot pin a pipeline to one node's connection.
        raise TypeError("durability (WAIT) is not supported on redis.asyncio cluster "
                        "clients; use a sync RedisCluster or a standalone client")
    return client


def check_now(check: Callable[..., Any], *args: Any) -> None:
    """Nothing: an asyncio check cannot be awaited while an object is built, so the object
    runs it before its first command (the sync twin runs ``check(*args)`` here)."""
