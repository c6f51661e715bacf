"""Shared test set-up: hypothesis profiles and client fixtures over RESP2/RESP3.

The real-Redis fixtures (``redis_server``, ``redis_url``, ``redis_cluster``, ...) come from
the package's own pytest plugin, ``pyredis_atomic.testing.pytest_plugin``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis
import redis.asyncio
from hypothesis import HealthCheck, settings

from pyredis_atomic.registry import ScriptRegistry

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TEST_LUA = Path(__file__).parent / "lua"

# Every client-facing test runs on both protocols, with and without decode_responses.
CLIENT_MODES = [
    pytest.param({"protocol": 2}, id="resp2"),
    pytest.param({"protocol": 3}, id="resp3"),
    pytest.param({"protocol": 2, "decode_responses": True}, id="resp2-decoded"),
    pytest.param({"protocol": 3, "decode_responses": True}, id="resp3-decoded"),
]


@pytest.fixture(params=CLIENT_MODES)
def client_kwargs(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Keyword arguments for a client: protocol and decode_responses."""
    return dict(request.param)


@pytest.fixture
def make_client(redis_url: str) -> Iterator[Callable[..., redis.Redis]]:
    """Build sync clients on ``redis_url`` (closed at teardown)."""
    made: list[redis.Redis] = []

    def make(**kwargs: Any) -> redis.Redis:
        c = redis.Redis.from_url(redis_url, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def client(make_client: Callable[..., redis.Redis], client_kwargs: dict[str, Any]) -> redis.Redis:
    """A sync client in each of the four modes."""
    return make_client(**client_kwargs)


@pytest_asyncio.fixture
async def aclient(redis_url: str, client_kwargs: dict[str, Any]) -> AsyncIterator[Any]:
    """An asyncio client in each of the four modes."""
    c = redis.asyncio.Redis.from_url(redis_url, **client_kwargs)
    yield c
    await c.aclose()


@pytest_asyncio.fixture
async def make_aclient(redis_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Build asyncio clients on ``redis_url`` (closed at teardown); ``make_client``'s twin."""
    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        c = redis.asyncio.Redis.from_url(redis_url, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.aclose()


@pytest.fixture(scope="session")
def test_registry() -> ScriptRegistry:
    """The package's scripts plus the test-only scripts in tests/lua."""
    return ScriptRegistry([TEST_LUA])
