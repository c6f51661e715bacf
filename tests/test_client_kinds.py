"""Every primitive checks the kind of its client when it is built (issue 14, defect 2): a
sync client given to the asyncio API (or the reverse), a pipeline, or something that is not
a client at all raises ``TypeError`` naming ``client`` before any command is sent. And
``mypy --strict`` refuses a sync client for the asyncio API."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from primitives import CATALOG, Primitive

import pyredis_atomic
import pyredis_atomic.asyncio


def _builder(primitive: Primitive) -> Callable[[Any, Any], Any]:
    return lambda api, c: primitive.build(api, c, "x", "atomic:")


# name -> how to build the primitive of one API (the module) on a client: every primitive
# of the catalog, and the static helpers that take a client.
BUILDERS: dict[str, Callable[[Any, Any], Any]] = {
    **{p.name: _builder(p) for p in CATALOG},
    "Lock.inspect": lambda api, c: api.Lock.inspect(c, "l"),
}


def _build(api: Any, primitive: str, client: Any) -> None:
    result = BUILDERS[primitive](api, client)
    if inspect.iscoroutine(result):  # the asyncio Lock.inspect: checked when awaited
        asyncio.run(result)


def _sent(client: redis.Redis) -> dict[str, int]:
    """Commands run on the server since the last CONFIG RESETSTAT, but this INFO's."""
    stats = client.info("commandstats")
    return {k: v["calls"] for k, v in stats.items() if k not in ("cmdstat_info",)}


@pytest.fixture
def sync_and_async(redis_url: str) -> Iterator[tuple[redis.Redis, Any]]:
    s = redis.Redis.from_url(redis_url)
    a = redis.asyncio.Redis.from_url(redis_url)
    yield s, a
    s.close()


def _wrong_clients(api: Any, s: redis.Redis, a: Any) -> list[tuple[str, Any, str]]:
    """(what, object, the words the error must contain) for the API ``api``."""
    other, mine = (s, a) if api is pyredis_atomic.asyncio else (a, s)
    hint = "a sync client" if api is pyredis_atomic.asyncio else "an asyncio client"
    return [
        ("the other API's client", other, hint),
        ("a pipeline", mine.pipeline(), "a pipeline, not a client"),
        ("a transaction", mine.pipeline(transaction=True), "a pipeline, not a client"),
        ("an object", object(), "not a redis-py client"),
        ("a URL", "redis://localhost:6379", "not a redis-py client"),
        ("None", None, "not a redis-py client"),
    ]


@pytest.mark.parametrize("api", [pyredis_atomic, pyredis_atomic.asyncio],
                         ids=["sync", "asyncio"])
@pytest.mark.parametrize("primitive", sorted(BUILDERS))
def test_a_wrong_client_is_refused_before_anything_is_sent(
    api: Any, primitive: str, sync_and_async: tuple[redis.Redis, Any],
) -> None:
    s, a = sync_and_async
    s.config_resetstat()
    for what, wrong, hint in _wrong_clients(api, s, a):
        with pytest.raises(TypeError, match=r"^client must be a redis") as info:
            _build(api, primitive, wrong)
        assert hint in str(info.value), (what, str(info.value))
    # only the CONFIG RESETSTAT above (Redis 6.2 counts subcommands under their command)
    assert _sent(s) in ({"cmdstat_config|resetstat": 1}, {"cmdstat_config": 1})


@pytest.mark.parametrize("api", [pyredis_atomic, pyredis_atomic.asyncio],
                         ids=["sync", "asyncio"])
def test_the_right_client_is_taken(api: Any, sync_and_async: tuple[redis.Redis, Any]) -> None:
    s, a = sync_and_async
    client = a if api is pyredis_atomic.asyncio else s
    for name, build in BUILDERS.items():
        if name != "Lock.inspect":
            build(api, client)


def test_mypy_refuses_a_sync_client_for_the_asyncio_api(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import redis
        import pyredis_atomic
        import pyredis_atomic.asyncio

        sync = redis.Redis()
        pyredis_atomic.Lock(sync, "fine")
        pyredis_atomic.asyncio.Lock(sync, "wrong")
        pyredis_atomic.asyncio.BoundedCounter(sync, "wrong")
        pyredis_atomic.asyncio.Cache(sync, "wrong", ttl=1)
    """)
    path = tmp_path / "kinds.py"
    path.write_text(code)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent",
         "--cache-dir", str(tmp_path / "cache"), str(path)],
        capture_output=True, text=True, check=False)
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert [e.split(":")[1] for e in errors] == ["8", "9", "10"], done.stdout
    assert all('incompatible type "redis.client.Redis"' in e for e in errors), done.stdout
