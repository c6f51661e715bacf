"""pytest fixtures that give tests a real Redis (registered through the ``pytest11`` entry
point, so installing pyredis-atomic makes them available to any test suite).

Fixtures:

``redis_server``
    session-scoped :class:`~pyredis_atomic.testing.RedisServer` started on a free loopback
    port. Not started when ``REDIS_URL`` is set.
``redis_url``
    URL of a freshly emptied (``FLUSHALL``, ``SCRIPT FLUSH``, ``FUNCTION FLUSH``) database:
    ``$REDIS_URL`` if set, else the ``redis_server``'s.
``redis_client`` / ``async_redis_client``
    a ``redis.Redis`` / ``redis.asyncio.Redis`` on ``redis_url`` (closed afterwards).
``redis_server_version``
    ``(name, version)`` of the server the tests use, read from its ``INFO server``:
    ``("redis", (6, 2, 14))``, ``("valkey", (8, 1, 8))``. Tests that need a newer server
    check the fallback or error of an older one instead of skipping
    (:func:`pyredis_atomic._core.servers.has_feature`).
``redis_server_factory``
    call it to start more servers (replicas, AOF servers, servers to restart or kill);
    all are stopped when the test ends. Keyword arguments go to ``RedisServer``.
``redis_cluster`` / ``redis_cluster_client``
    a session-scoped 3-primary cluster with one replica each
    (:class:`~pyredis_atomic.testing.RedisClusterHarness`), and a ``RedisCluster`` client on
    it after ``FLUSHALL`` of every primary.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from .._core.servers import ServerVersion, parse_server_version
from .cluster import RedisClusterHarness
from .server import ENV_BINARY, RedisServer, RedisServerError, find_server

ENV_URL = "REDIS_URL"


def pytest_report_header(config: pytest.Config) -> str:
    """Say which server the tests start (or use), so a run's log names it."""
    if os.environ.get(ENV_URL):
        return f"pyredis-atomic test server: ${ENV_URL}={os.environ[ENV_URL]}"
    try:
        return f"pyredis-atomic test server: {find_server().describe()}"
    except RedisServerError as exc:
        return f"pyredis-atomic test server: none ({exc}; set ${ENV_BINARY})"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the whole session (not started when ``REDIS_URL`` is set)."""
    if os.environ.get(ENV_URL):
        pytest.skip("REDIS_URL is set: tests use that server, not a spawned one")
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """URL of an emptied database on a real server."""
    url = os.environ.get(ENV_URL) or request.getfixturevalue("redis_server").url
    with contextlib.closing(redis.Redis.from_url(url)) as c:
        c.flushall()
        c.script_flush()
        with contextlib.suppress(redis.ResponseError):  # no Functions before Redis 7.0
            c.function_flush()
    return url


@pytest.fixture(scope="session")
def redis_server_version(request: pytest.FixtureRequest) -> ServerVersion:
    """``(name, version)`` of the server under test, from its ``INFO server``."""
    url = os.environ.get(ENV_URL) or request.getfixturevalue("redis_server").url
    with contextlib.closing(redis.Redis.from_url(url)) as c:
        return parse_server_version(c.info("server"))


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A sync client on ``redis_url``."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[..., RedisServer]]:
    """Start extra servers for one test: ``redis_server_factory(appendonly=True)``."""
    started: list[RedisServer] = []

    def make(**kwargs: Any) -> RedisServer:
        server = RedisServer(**kwargs).start()
        started.append(server)
        return server

    try:
        yield make
    finally:
        for s in reversed(started):
            s.cleanup()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterHarness]:
    """A 3-primary Redis Cluster with one replica per primary, for the whole session."""
    harness = RedisClusterHarness(primaries=3, replicas=1).start()
    try:
        yield harness
    finally:
        harness.cleanup()


@pytest.fixture
def redis_cluster_client(redis_cluster: RedisClusterHarness) -> Iterator[Any]:
    """A ``redis.cluster.RedisCluster`` on the session cluster, every primary emptied."""
    redis_cluster.wait_ok()
    redis_cluster.flushall()
    client = redis_cluster.client()
    try:
        yield client
    finally:
        client.close()


try:
    import pytest_asyncio
except ImportError:  # the async fixture needs pytest-asyncio
    pass
else:

    @pytest_asyncio.fixture
    async def async_redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
        """A ``redis.asyncio.Redis`` on ``redis_url``."""
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            yield client
        finally:
            await client.aclose()
