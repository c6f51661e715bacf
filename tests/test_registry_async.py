"""The registry against a real redis-server, on RESP2/RESP3, decoded or not.

Shared by the two APIs: ``scripts/unasync.py`` writes ``test_registry_sync.py`` from
``test_registry_async.py``. Sync-only cases are in ``test_registry.py``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from pyredis_atomic import ConnectionLostError, DurabilityError, ScriptError, WrongTypeError
from pyredis_atomic._core.calls import Call
from pyredis_atomic._core.replies import as_int, as_optional_str
from pyredis_atomic.asyncio.registry import AsyncScriptRegistry, default_registry
from pyredis_atomic.testing import RedisServer

TEST_LUA = Path(__file__).parent / "lua"


@pytest.fixture(scope="module")
def registry() -> AsyncScriptRegistry:
    return AsyncScriptRegistry([TEST_LUA])


async def _calls(client: Any, command: str) -> int:
    stats = await client.info("commandstats")
    entry = stats.get(f"cmdstat_{command}")
    return int(entry["calls"]) if entry else 0


async def test_unknown_script_names_the_known_ones(registry: AsyncScriptRegistry,
                                                  aclient: Any) -> None:
    with pytest.raises(KeyError, match=r"no script named 'nope'.*bump"):
        await registry.call(aclient, "nope", [], [])


async def test_arity_errors_are_raised_before_anything_is_sent(
    registry: AsyncScriptRegistry, aclient: Any
) -> None:
    await aclient.config_resetstat()
    with pytest.raises(ValueError, match=r"'bump' takes 1 KEYS, got 0: missing KEYS\[1\] counter"):
        await registry.call(aclient, "bump", [], [1])
    with pytest.raises(ValueError, match=r"'bump' takes 1 ARGV, got 2"):
        await registry.call(aclient, "bump", ["k"], [1, 2])
    with pytest.raises(ValueError, match=r"'append_all' takes at least 1 ARGV, got 0"):
        await registry.call(aclient, "append_all", ["log"], [])
    with pytest.raises(TypeError, match=r"ARGV\[1\] must be str, bytes, int or float"):
        await registry.call(aclient, "bump", ["k"], [None])
    assert await _calls(aclient, "evalsha") == 0
    assert await _calls(aclient, "eval") == 0
    assert await aclient.exists("k", "log") == 0


@pytest.mark.parametrize("transaction", [True, False])
async def test_queue_checks_and_encodes_arguments_like_call(
    registry: AsyncScriptRegistry, aclient: Any, transaction: bool
) -> None:
    # Drift between the two APIs (issue 13): the asyncio queue() sent call.args unchecked.
    pipe = aclient.pipeline(transaction=transaction)
    for bad in (None, True):
        with pytest.raises(TypeError, match=r"ARGV\[1\] must be str, bytes, int or float"):
            registry.queue(pipe, Call("bump", ("n",), (bad,)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'bump' takes 1 ARGV, got 0"):
        registry.queue(pipe, Call("bump", ("n",), ()))
    assert len(pipe) == 0  # nothing was queued
    with pytest.raises(TypeError, match=r"queue\(\) wants a redis-py pipeline"):
        registry.queue(aclient, Call("bump", ("n",), (1,)))
    registry.queue(pipe, Call("bump", ("n",), (3,)))
    assert await pipe.execute() == [3]


async def test_load_missing_and_evalsha(registry: AsyncScriptRegistry, aclient: Any) -> None:
    assert await registry.missing(aclient) == registry.names()
    loaded = await registry.load(aclient)
    assert loaded["bump"] == registry.get("bump").sha1
    assert await registry.missing(aclient) == []
    await aclient.config_resetstat()
    assert await registry.call(aclient, "bump", ["n"], [5]) == 5
    assert await registry.call(aclient, "bump", ["n"], [-2]) == 3
    assert await registry.run(aclient, Call("bump", ("n",), (2,))) == 5
    assert await _calls(aclient, "evalsha") == 3
    assert await _calls(aclient, "eval") == 0


async def test_replies_decode_the_same_in_every_mode(registry: AsyncScriptRegistry,
                                                    aclient: Any) -> None:
    assert await registry.call(aclient, "bump", ["n"], [41]) == 41
    assert as_optional_str(await registry.call(aclient, "peek", ["n"], [])) == "41"
    assert as_optional_str(await registry.call(aclient, "peek", ["absent"], [])) is None
    assert as_int(await registry.call(aclient, "append_all", ["log"], ["a", b"b", 3, 1.5])) == 4
    seconds, micros = await registry.call(aclient, "server_time")
    assert isinstance(seconds, int)
    assert isinstance(micros, int)
    assert abs(seconds - time.time()) < 60


async def test_read_only_scripts_use_evalsha_ro_where_the_server_has_it(
    registry: AsyncScriptRegistry, aclient: Any, redis_server: RedisServer
) -> None:
    await registry.load(aclient)
    await aclient.config_resetstat()
    await registry.call(aclient, "peek", ["n"], [])
    if redis_server.version >= (7, 0):
        assert await _calls(aclient, "evalsha_ro") == 1
    else:
        assert await _calls(aclient, "evalsha") == 1


async def test_noscript_is_recovered_and_the_script_reloaded(
    registry: AsyncScriptRegistry, aclient: Any
) -> None:
    await registry.load(aclient)
    await aclient.script_flush()
    assert await registry.missing(aclient) == registry.names()
    await aclient.config_resetstat()
    assert await registry.call(aclient, "bump", ["n"], [7]) == 7  # applied exactly once
    assert await _calls(aclient, "eval") == 1
    assert "bump" not in await registry.missing(aclient)  # SCRIPT LOAD followed the EVAL
    assert await registry.call(aclient, "bump", ["n"], [1]) == 8
    assert await _calls(aclient, "evalsha") == 2  # the failed one, then the one after reload


@pytest.mark.parametrize("transaction", [True, False])
async def test_pipeline_survives_a_flush_between_queueing_and_execute(
    registry: AsyncScriptRegistry, aclient: Any, transaction: bool
) -> None:
    await registry.load(aclient)
    pipe = aclient.pipeline(transaction=transaction)
    assert await registry.call(pipe, "bump", ["n"], [2]) is pipe
    await registry.call(pipe, "peek", ["n"], [])
    registry.queue(pipe, Call("append_all", ("log",), ("a", "b")))
    await aclient.script_flush()  # from the same server, between queueing and execute
    results = await pipe.execute()
    assert results[0] == 2
    assert as_optional_str(results[1]) == "2"
    assert results[2] == 2


async def test_wrong_type_names_the_key_and_leaves_it_unchanged(
    registry: AsyncScriptRegistry, aclient: Any
) -> None:
    await aclient.rpush("n", "x")
    with pytest.raises(WrongTypeError) as info:
        await registry.call(aclient, "bump", ["n"], [1])
    err = info.value
    assert (err.key, err.expected, err.actual) == ("n", "string", "list")
    assert "'n'" in str(err)
    assert "bump" in str(err)
    assert await aclient.lrange("n", 0, -1) in ([b"x"], ["x"])


async def test_script_error_replies_name_the_key(registry: AsyncScriptRegistry,
                                                aclient: Any) -> None:
    with pytest.raises(ScriptError) as info:
        await registry.call(aclient, "refuse", ["orders:1"], [])
    assert info.value.code == "BADTHING"
    assert info.value.key == "orders:1"
    assert "'orders:1' is not acceptable" in str(info.value)


async def test_connection_refused_is_a_clear_connection_error(
    registry: AsyncScriptRegistry,
) -> None:
    server = RedisServer()
    port = server.port  # never started: nothing listens there
    server.cleanup()
    dead = redis.asyncio.Redis(port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    try:
        with pytest.raises(ConnectionLostError) as info:
            await registry.call(dead, "bump", ["n"], [1])
        assert isinstance(info.value, redis.ConnectionError)
        assert "'bump' on 'n'" in str(info.value)
    finally:
        await dead.aclose()


async def test_default_registry_runs_builtin_scripts(aclient: Any) -> None:
    assert default_registry().get("server_time").read_only
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


async def test_raw_calls_return_bytes_on_a_decoding_client(
    registry: AsyncScriptRegistry, redis_url: str, client_kwargs: dict[str, Any],
) -> None:
    binary = bytes(range(256))
    c = redis.asyncio.Redis.from_url(redis_url, **{**client_kwargs, "decode_responses": True})
    raw = redis.asyncio.Redis.from_url(redis_url, **client_kwargs)
    try:
        assert await registry.call(c, "append_all", ["log"], [binary]) == 1
        await raw.set("blob", binary)
        assert await registry.run(c, Call("peek", ("blob",), (), raw=True)) == binary
        with pytest.raises(UnicodeDecodeError):
            await registry.run(c, Call("peek", ("blob",), ()))
    finally:
        await c.aclose()
        await raw.aclose()


async def test_bound_scripts_recover_and_translate_like_the_registry(
    registry: AsyncScriptRegistry, aclient: Any,
) -> None:
    bump = registry.bind(aclient, "bump")
    assert await bump(("n",), (2,)) == 2
    await aclient.script_flush()
    assert await bump(("n",), (3,)) == 5  # NOSCRIPT: EVAL, then SCRIPT LOAD
    assert "bump" not in await registry.missing(aclient)
    await aclient.rpush("l", "x")
    with pytest.raises(WrongTypeError) as info:
        await bump(("l",), (1,))
    assert info.value.key == "l"
    peek = registry.bind(aclient, "peek", raw=True)
    await aclient.set("blob", b"\xff\x00")
    assert await peek(("blob",), ()) == b"\xff\x00"
