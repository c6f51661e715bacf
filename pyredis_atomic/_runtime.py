"""What the sync API does differently from the asyncio one, below the driver: hand-written.

The generated sync modules (see ``scripts/unasync.py``) import these names ``from
._runtime``; their asyncio sources import the same names from
:mod:`pyredis_atomic.asyncio._runtime`. Keep the two modules' names and signatures alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from redis.cluster import RedisCluster

__all__ = ["check_now", "durable_target", "on_node", "primaries"]


def primaries(client: Any) -> list[Any]:
    """Where a script must be loaded: a connection to every primary of a cluster, else the
    client itself."""
    if isinstance(client, RedisCluster):
        return [client.get_redis_connection(n) for n in client.get_primaries()]
    return [client]


def on_node(client: Any, node: Any, *command: Any) -> Any:
    """Send ``command`` to ``node`` (one of :func:`primaries`)."""
    return node.execute_command(*command)


def durable_target(client: Any, keys: Sequence[Any]) -> Any:
    """The connection a call and its ``WAIT`` go out on: on a cluster, the node that owns
    the keys (``WAIT`` counts the writes of its own connection)."""
    if isinstance(client, RedisCluster):
        node = client.get_node_from_key(keys[0]) if keys else client.get_random_node()
        return client.get_redis_connection(node)
    return client


def check_now(check: Callable[..., Any], *args: Any) -> None:
    """Run ``check(*args)`` now, when an object is built (the asyncio twin cannot await
    there: its objects run the check before their first command instead)."""
    check(*args)
