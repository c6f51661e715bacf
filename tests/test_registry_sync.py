# GENERATED from tests/test_registry_async.py by scripts/unasync.py: do not edit.
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
from redis.backoff import NoBackoff
from redis.retry import Retry

from pyredis_atomic import ConnectionLostError, DurabilityError, ScriptError, WrongTypeError
from pyredis_atomic._core.calls import Call
from pyredis_atomic._core.replies import as_int, as_optional_str
from pyredis_atomic.registry import ScriptRegistry, default_registry
from pyredis_atomic.testing import RedisServer

TEST_LUA = Path(__file__).parent / "lua"


@pytest.fixture(scope="module")
def registry() -> ScriptRegistry:
    return ScriptRegistry([TEST_LUA])


def _calls(client: Any, command: str) -> int:
    stats = client.info("commandstats")
    entry = stats.get(f"cmdstat_{command}")
    return int(entry["calls"]) if entry else 0


def test_unknown_script_names_the_known_ones(registry: ScriptRegistry,
                                                  client: Any) -> None:
    with pytest.raises(KeyError, match=r"no script named 'nope'.*bump"):
        registry.call(client, "nope", [], [])


def test_arity_errors_are_raised_before_anything_is_sent(
    registry: ScriptRegistry, client: Any
) -> None:
    client.config_resetstat()
    with pytest.raises(ValueError, match=r"'bump' takes 1 KEYS, got 0: missing KEYS\[1\] counter"):
        registry.call(client, "bump", [], [1])
    with pytest.raises(ValueError, match=r"'bump' takes 1 ARGV, got 2"):
        registry.call(client, "bump", ["k"], [1, 2])
    with pytest.raises(ValueError, match=r"'append_all' takes at least 1 ARGV, got 0"):
        registry.call(client, "append_all", ["log"], [])
    with pytest.raises(TypeError, match=r"ARGV\[1\] must be str, bytes, int or float"):
        registry.call(client, "bump", ["k"], [None])
    assert _calls(client, "evalsha") == 0
    assert _calls(client, "eval") == 0
    assert client.exists("k", "log") == 0


@pytest.mark.parametrize("transaction", [True, False])
def test_queue_checks_and_encodes_arguments_like_call(
    registry: ScriptRegistry, client: Any, transaction: bool
) -> None:
    # Drift between the two APIs (issue 13): the asyncio queue() sent call.args unchecked.
    pipe = client.pipeline(transaction=transaction)
    for bad in (None, True):
        with pytest.raises(TypeError, match=r"ARGV\[1\] must be str, bytes, int or float"):
            registry.queue(pipe, Call("bump", ("n",), (bad,)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'bump' takes 1 ARGV, got 0"):
        registry.queue(pipe, Call("bump", ("n",), ()))
    assert len(pipe) == 0  # nothing was queued
    with pytest.raises(TypeError, match=r"queue\(\) wants a redis-py pipeline"):
        registry.queue(client, Call("bump", ("n",), (1,)))
    registry.queue(pipe, Call("bump", ("n",), (3,)))
    assert pipe.execute() == [3]


def test_load_missing_and_evalsha(registry: ScriptRegistry, client: Any) -> None:
    assert registry.missing(client) == registry.names()
    loaded = registry.load(client)
    assert loaded["bump"] == registry.get("bump").sha1
    assert registry.missing(client) == []
    client.config_resetstat()
    assert registry.call(client, "bump", ["n"], [5]) == 5
    assert registry.call(client, "bump", ["n"], [-2]) == 3
    assert registry.run(client, Call("bump", ("n",), (2,))) == 5
    assert _calls(client, "evalsha") == 3
    assert _calls(client, "eval") == 0


def test_replies_decode_the_same_in_every_mode(registry: ScriptRegistry,
                                                    client: Any) -> None:
    assert registry.call(client, "bump", ["n"], [41]) == 41
    assert as_optional_str(registry.call(client, "peek", ["n"], [])) == "41"
    assert as_optional_str(registry.call(client, "peek", ["absent"], [])) is None
    assert as_int(registry.call(client, "append_all", ["log"], ["a", b"b", 3, 1.5])) == 4
    seconds, micros = registry.call(client, "server_time")
    assert isinstance(seconds, int)
    assert isinstance(micros, int)
    assert abs(seconds - time.time()) < 60


def test_read_only_scripts_use_evalsha_ro_where_the_server_has_it(
    registry: ScriptRegistry, client: Any, redis_server: RedisServer
) -> None:
    registry.load(client)
    client.config_resetstat()
    registry.call(client, "peek", ["n"], [])
    if redis_server.version >= (7, 0):
        assert _calls(client, "evalsha_ro") == 1
    else:
        assert _calls(client, "evalsha") == 1


def test_noscript_is_recovered_and_the_script_reloaded(
    registry: ScriptRegistry, client: Any
) -> None:
    registry.load(client)
    client.script_flush()
    assert registry.missing(client) == registry.names()
    client.config_resetstat()
    assert registry.call(client, "bump", ["n"], [7]) == 7  # applied exactly once
    assert _calls(client, "eval") == 1
    assert "bump" not in registry.missing(client)  # SCRIPT LOAD followed the EVAL
    assert registry.call(client, "bump", ["n"], [1]) == 8
    assert _calls(client, "evalsha") == 2  # the failed one, then the one after reload


@pytest.mark.parametrize("transaction", [True, False])
def test_pipeline_survives_a_flush_between_queueing_and_execute(
    registry: ScriptRegistry, client: Any, transaction: bool
) -> None:
    registry.load(client)
    pipe = client.pipeline(transaction=transaction)
    assert registry.call(pipe, "bump", ["n"], [2]) is pipe
    registry.call(pipe, "peek", ["n"], [])
    registry.queue(pipe, Call("append_all", ("log",), ("a", "b")))
    client.script_flush()  # from the same server, between queueing and execute
    results = pipe.execute()
    assert results[0] == 2
    assert as_optional_str(results[1]) == "2"
    assert results[2] == 2


def test_wrong_type_names_the_key_and_leaves_it_unchanged(
    registry: ScriptRegistry, client: Any
) -> None:
    client.rpush("n", "x")
    with pytest.raises(WrongTypeError) as info:
        registry.call(client, "bump", ["n"], [1])
    err = info.value
    assert (err.key, err.expected, err.actual) == ("n", "string", "list")
    assert "'n'" in str(err)
    assert "bump" in str(err)
    assert client.lrange("n", 0, -1) in ([b"x"], ["x"])


def test_script_error_replies_name_the_key(registry: ScriptRegistry,
                                                client: Any) -> None:
    with pytest.raises(ScriptError) as info:
        registry.call(client, "refuse", ["orders:1"], [])
    assert info.value.code == "BADTHING"
    assert info.value.key == "orders:1"
    assert "'orders:1' is not acceptable" in str(info.value)


def test_connection_refused_is_a_clear_connection_error(
    registry: ScriptRegistry,
) -> None:
    server = RedisServer()
    port = server.port  # never started: nothing listens there
    server.cleanup()
    dead = redis.Redis(port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    try:
        with pytest.raises(ConnectionLostError) as info:
            registry.call(dead, "bump", ["n"], [1])
        assert isinstance(info.value, redis.ConnectionError)
        assert "'bump' on 'n'" in str(info.value)
    finally:
        dead.close()


def test_default_registry_runs_builtin_scripts(client: Any) -> None:
    assert default_registry().get("server_time").read_only
    seconds, micros = default_registry().call(client, "server_time")
    assert isinstance(seconds, int)
    assert isinstance(micros, int)


def test_run_durable_without_replicas_raises_but_applies(
    registry: ScriptRegistry, client: Any,
) -> None:
    with pytest.raises(DurabilityError) as info:
        registry.run_durable(client, Call("bump", ("n",), (5,)), 1, 0.1)
    assert info.value.acknowledged == 0
    assert registry.call(client, "bump", ["n"], [0]) == 5


def test_raw_calls_return_bytes_on_a_decoding_client(
    registry: ScriptRegistry, redis_url: str, client_kwargs: dict[str, Any],
) -> None:
    binary = bytes(range(256))
    c = redis.Redis.from_url(redis_url, **{**client_kwargs, "decode_responses": True})
    raw = redis.Redis.from_url(redis_url, **client_kwargs)
    try:
        assert registry.call(c, "append_all", ["log"], [binary]) == 1
        raw.set("blob", binary)
        assert registry.run(c, Call("peek", ("blob",), (), raw=True)) == binary
        with pytest.raises(UnicodeDecodeError):
            registry.run(c, Call("peek", ("blob",), ()))
    finally:
        c.close()
        raw.close()


def test_bound_scripts_recover_and_translate_like_the_registry(
    registry: ScriptRegistry, client: Any,
) -> None:
    bump = registry.bind(client, "bump")
    assert bump(("n",), (2,)) == 2
    client.script_flush()
    assert bump(("n",), (3,)) == 5  # NOSCRIPT: EVAL, then SCRIPT LOAD
    assert "bump" not in registry.missing(client)
    client.rpush("l", "x")
    with pytest.raises(WrongTypeError) as info:
        bump(("l",), (1,))
    assert info.value.key == "l"
    peek = registry.bind(client, "peek", raw=True)
    client.set("blob", b"\xff\x00")
    assert peek(("blob",), ()) == b"\xff\x00"
