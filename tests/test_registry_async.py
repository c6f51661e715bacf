"""The asyncio registry against a real redis-server, in the same four client modes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from pyredis_atomic import ConnectionLostError, DurabilityError, ScriptError, WrongTypeError
from pyredis_atomic._core.calls import Call
from pyredis_atomic._core.replies import as_optional_str
from pyredis_atomic.asyncio import AsyncScriptRegistry
from pyredis_atomic.asyncio.registry import default_registry
from pyredis_atomic.testing import RedisServer

TEST_LUA = Path(__file__).parent / "lua"


@pytest.fixture(scope="module")
def registry() -> AsyncScriptRegistry:
    return AsyncScriptRegistry([TEST_LUA])


async def _calls(client: Any, command: str) -> int:
    stats = await client.info("commandstats")
    entry = stats.get(f"cmdstat_{command}")
    return int(entry["calls"]) if entry else 0


async def test_load_missing_and_evalsha(registry: AsyncScriptRegistry, aclient: Any) -> None:
    assert await registry.missing(aclient) == registry.names()
    loaded = await registry.load(aclient)
    assert loaded["bump"] == registry.get("bump").sha1
    assert await registry.missing(aclient) == []
    await aclient.config_resetstat()
    assert await registry.call(aclient, "bump", ["n"], [3]) == 3
    assert await registry.run(aclient, Call("bump", ("n",), (2,))) == 5
    assert await _calls(aclient, "evalsha") == 2
    assert await _calls(aclient, "eval") == 0


async def test_noscript_recovery(registry: AsyncScriptRegistry, aclient: Any) -> None:
    await registry.load(aclient)
    await aclient.script_flush()
    assert await registry.call(aclient, "bump", ["n"], [4]) == 4
    assert await registry.call(aclient, "bump", ["n"], [1]) == 5
    assert "bump" not in await registry.missing(aclient)


async def test_arity_error_sends_nothing(registry: AsyncScriptRegistry, aclient: Any) -> None:
    await aclient.config_resetstat()
    with pytest.raises(ValueError, match=r"missing KEYS\[1\] counter"):
        await registry.call(aclient, "bump", [], [1])
    assert await _calls(aclient, "evalsha") == 0


@pytest.mark.parametrize("transaction", [True, False])
async def test_pipeline_survives_a_flush(registry: AsyncScriptRegistry, aclient: Any,
                                         transaction: bool) -> None:
    await registry.load(aclient)
    pipe = aclient.pipeline(transaction=transaction)
    await registry.call(pipe, "bump", ["n"], [2])
    registry.queue(pipe, Call("peek", ("n",), ()))
    await aclient.script_flush()
    results = await pipe.execute()
    assert results[0] == 2
    assert as_optional_str(results[1]) == "2"


async def test_wrong_type_and_script_errors(registry: AsyncScriptRegistry, aclient: Any) -> None:
    await aclient.sadd("n", "x")
    with pytest.raises(WrongTypeError) as info:
        await registry.call(aclient, "bump", ["n"], [1])
    assert (info.value.key, info.value.expected, info.value.actual) == ("n", "string", "set")
    with pytest.raises(ScriptError, match="'thing:1' is not acceptable"):
        await registry.call(aclient, "refuse", ["thing:1"], [])


async def test_connection_refused(registry: AsyncScriptRegistry) -> None:
    server = RedisServer()
    port = server.port
    server.cleanup()
    dead = redis.asyncio.Redis(port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    try:
        with pytest.raises(ConnectionLostError) as info:
            await registry.call(dead, "bump", ["n"], [1])
        assert isinstance(info.value, redis.ConnectionError)
    finally:
        await dead.aclose()


async def test_default_registry_runs_builtin_scripts(aclient: Any) -> None:
    seconds, micros = await default_registry().call(aclient, "server_time")
    assert isinstance(seconds, int)
    assert isinstance(micros, int)


async def test_run_durable_without_replicas_raises_but_applies(
    registry: AsyncScriptRegistry, aclient: Any,
) -> None:
    with pytest.raises(DurabilityError) as info:
        await registry.run_durable(aclient, Call("bump", ("n",), (5,)), 1, 0.1)
    assert info.value.acknowledged == 0
    assert await registry.call(aclient, "bump", ["n"], [0]) == 5


async def test_raw_calls_return_bytes(registry: AsyncScriptRegistry, redis_url: str) -> None:
    binary = bytes(range(256))
    c = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        raw_client = redis.asyncio.Redis.from_url(redis_url)
        await raw_client.set("blob", binary)
        await raw_client.aclose()
        assert await registry.run(c, Call("peek", ("blob",), (), raw=True)) == binary
    finally:
        await c.aclose()


async def test_bound_scripts(registry: AsyncScriptRegistry, aclient: Any) -> None:
    bump = registry.bind(aclient, "bump")
    assert await bump(("n",), (2,)) == 2
    await aclient.script_flush()
    assert await bump(("n",), (3,)) == 5
    await aclient.rpush("l", "x")
    with pytest.raises(WrongTypeError):
        await bump(("l",), (1,))
