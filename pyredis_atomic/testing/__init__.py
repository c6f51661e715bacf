"""Real Redis servers for tests: :class:`RedisServer`, :class:`RedisClusterHarness`, and
the pytest fixtures in :mod:`pyredis_atomic.testing.pytest_plugin` (registered
automatically through a ``pytest11`` entry point)."""

from __future__ import annotations

from .cluster import RedisClusterHarness
from .server import (
    RedisServer,
    RedisServerError,
    ServerBinary,
    find_redis_server,
    find_server,
    free_port,
    server_version,
)

__all__ = [
    "RedisClusterHarness",
    "RedisServer",
    "RedisServerError",
    "ServerBinary",
    "find_redis_server",
    "find_server",
    "free_port",
    "server_version",
]
