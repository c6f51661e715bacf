"""The sync registry against a real redis-server, on RESP2/RESP3, decoded or not."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pyredis_atomic import (
    ConnectionLostError,
    DurabilityError,
    ScriptError,
    ScriptRegistry,
    WrongTypeError,
    default_registry,
)
from pyredis_atomic._core.calls import Call
from pyredis_atomic._core.replies import as_int, as_optional_str
from pyredis_atomic.testing import RedisServer


def _calls(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats")
    entry = stats.get(f"cmdstat_{command}")
    return int(entry["calls"]) if entry else 0


def test_default_registry_has_the_package_scripts() -> None:
    registry = default_registry()
    assert "server_time" in registry.names()
    assert registry.get("server_time").read_only


def test_unknown_script_names_the_known_ones(test_registry: ScriptRegistry,
                                            client: redis.Redis) -> None:
    with pytest.raises(KeyError, match=r"no script named 'nope'.*bump"):
        test_registry.call(client, "nope", [], [])


def test_arity_errors_are_raised_before_anything_is_sent(
    test_registry: ScriptRegistry, client: redis.Redis
) -> None:
    client.config_resetstat()
    with pytest.raises(ValueError, match=r"'bump' takes 1 KEYS, got 0: missing KEYS\[1\] counter"):
        test_registry.call(client, "bump", [], [1])
    with pytest.raises(ValueError, match=r"'bump' takes 1 ARGV, got 2"):
        test_registry.call(client, "bump", ["k"], [1, 2])
    with pytest.raises(ValueError, match=r"'append_all' takes at least 1 ARGV, got 0"):
        test_registry.call(client, "append_all", ["log"], [])
    with pytest.raises(TypeError, match=r"ARGV\[1\] must be str, bytes, int or float"):
        test_registry.call(client, "bump", ["k"], [None])
    assert _calls(client, "evalsha") == 0
    assert _calls(client, "eval") == 0
    assert client.exists("k", "log") == 0


def test_calls_use_evalsha_once_loaded(test_registry: ScriptRegistry, client: redis.Redis) -> None:
    test_registry.load(client)
    client.config_resetstat()
    assert test_registry.call(client, "bump", ["n"], [5]) == 5
    assert test_registry.call(client, "bump", ["n"], [-2]) == 3
    assert _calls(client, "evalsha") == 2
    assert _calls(client, "eval") == 0


def test_replies_decode_the_same_in_every_mode(test_registry: ScriptRegistry,
                                               client: redis.Redis) -> None:
    assert test_registry.call(client, "bump", ["n"], [41]) == 41
    assert as_optional_str(test_registry.call(client, "peek", ["n"], [])) == "41"
    assert as_optional_str(test_registry.call(client, "peek", ["absent"], [])) is None
    assert as_int(test_registry.call(client, "append_all", ["log"], ["a", b"b", 3, 1.5])) == 4
    seconds, micros = test_registry.call(client, "server_time")
    assert isinstance(seconds, int)
    assert isinstance(micros, int)
    assert abs(seconds - time.time()) < 60


def test_read_only_scripts_use_evalsha_ro_where_the_server_has_it(
    test_registry: ScriptRegistry, client: redis.Redis, redis_server: RedisServer
) -> None:
    test_registry.load(client)
    client.config_resetstat()
    test_registry.call(client, "peek", ["n"], [])
    if redis_server.version >= (7, 0):
        assert _calls(client, "evalsha_ro") == 1
    else:
        assert _calls(client, "evalsha") == 1


def test_noscript_is_recovered_and_the_script_reloaded(
    test_registry: ScriptRegistry, client: redis.Redis
) -> None:
    test_registry.load(client)
    client.script_flush()
    assert test_registry.missing(client) == test_registry.names()
    client.config_resetstat()
    assert test_registry.call(client, "bump", ["n"], [7]) == 7  # applied exactly once
    assert _calls(client, "eval") == 1
    assert "bump" not in test_registry.missing(client)  # SCRIPT LOAD followed the EVAL
    assert test_registry.call(client, "bump", ["n"], [1]) == 8
    assert _calls(client, "evalsha") == 2  # the failed one, then the one after reload


def test_calls_survive_a_script_cache_flushed_every_few_milliseconds(
    test_registry: ScriptRegistry, make_client: Callable[..., redis.Redis],
    client_kwargs: dict[str, Any],
) -> None:
    worker = make_client(**client_kwargs)
    flusher = make_client()
    stop = threading.Event()
    flushes = 0

    def flush() -> None:
        nonlocal flushes
        while not stop.is_set():
            flusher.script_flush()
            flushes += 1
            time.sleep(0.002)

    t = threading.Thread(target=flush)
    t.start()
    try:
        for _ in range(300):
            test_registry.call(worker, "bump", ["n"], [1])
            pipe = worker.pipeline(transaction=True)
            test_registry.call(pipe, "bump", ["n"], [1])
            test_registry.call(pipe, "append_all", ["log"], ["x"])
            pipe.execute()
    finally:
        stop.set()
        t.join()
    assert flushes > 10
    assert int(worker.get("n") or 0) == 600  # nothing lost, nothing applied twice
    assert worker.llen("log") == 300


@pytest.mark.parametrize("transaction", [True, False])
def test_pipeline_survives_a_flush_between_queueing_and_execute(
    test_registry: ScriptRegistry, client: redis.Redis, transaction: bool
) -> None:
    test_registry.load(client)
    pipe = client.pipeline(transaction=transaction)
    assert test_registry.call(pipe, "bump", ["n"], [2]) is pipe
    test_registry.call(pipe, "peek", ["n"], [])
    test_registry.call(pipe, "append_all", ["log"], ["a", "b"])
    client.script_flush()  # from the same server, between queueing and execute
    results = pipe.execute()
    assert results[0] == 2
    assert as_optional_str(results[1]) == "2"
    assert results[2] == 2


def test_wrong_type_names_the_key_and_leaves_it_unchanged(
    test_registry: ScriptRegistry, client: redis.Redis
) -> None:
    client.rpush("n", "x")
    with pytest.raises(WrongTypeError) as info:
        test_registry.call(client, "bump", ["n"], [1])
    err = info.value
    assert err.key == "n"
    assert err.expected == "string"
    assert err.actual == "list"
    assert "'n'" in str(err)
    assert "bump" in str(err)
    assert client.lrange("n", 0, -1) in ([b"x"], ["x"])


def test_script_error_replies_name_the_key(test_registry: ScriptRegistry,
                                           client: redis.Redis) -> None:
    with pytest.raises(ScriptError) as info:
        test_registry.call(client, "refuse", ["orders:1"], [])
    assert info.value.code == "BADTHING"
    assert info.value.key == "orders:1"
    assert "'orders:1' is not acceptable" in str(info.value)


def test_connection_refused_is_a_clear_connection_error(test_registry: ScriptRegistry) -> None:
    server = RedisServer()
    port = server.port  # never started: nothing listens there
    server.cleanup()
    dead = redis.Redis(port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    with pytest.raises(ConnectionLostError) as info:
        test_registry.call(dead, "bump", ["n"], [1])
    assert isinstance(info.value, redis.ConnectionError)
    assert "'bump' on 'n'" in str(info.value)


def test_recovers_on_a_promoted_replica_that_never_loaded_the_scripts(
    test_registry: ScriptRegistry, redis_server_factory: Callable[..., RedisServer],
    client_kwargs: dict[str, Any],
) -> None:
    primary = redis_server_factory()
    replica = redis_server_factory(replica_of=primary)
    pc = primary.client(**client_kwargs)
    rc = replica.client(**client_kwargs)
    try:
        test_registry.load(pc)
        assert test_registry.call(pc, "bump", ["n"], [10]) == 10
        deadline = time.monotonic() + 10
        while rc.get("n") is None and time.monotonic() < deadline:
            time.sleep(0.01)
        rc.script_flush()  # whatever replication brought, this server now has no scripts
        rc.execute_command("REPLICAOF", "NO", "ONE")
        assert test_registry.call(rc, "bump", ["n"], [1]) == 11
        assert test_registry.missing(rc) == sorted(set(test_registry.names()) - {"bump"})
    finally:
        pc.close()
        rc.close()


def test_extra_directories_and_manifest(test_registry: ScriptRegistry) -> None:
    manifest = test_registry.manifest()
    entries = {e["name"]: e for e in manifest["scripts"]}
    assert entries["bump"]["keys"] == [
        {"index": 1, "name": "counter", "doc": "the counter", "type": "string"}
    ]
    assert entries["append_all"]["args"][0]["variadic"] is True
    assert entries["peek"]["flags"] == ["read-only"]
    assert entries["bump"]["sha1"] == test_registry.get("bump").sha1


def test_run_durable_waits_for_replicas(
    test_registry: ScriptRegistry, redis_server_factory: Callable[..., RedisServer],
) -> None:
    primary = redis_server_factory()
    replica = redis_server_factory(replica_of=primary)
    with primary.client() as pc, replica.client() as rc:
        deadline = time.monotonic() + 10
        while pc.info("replication")["connected_slaves"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert test_registry.run_durable(pc, Call("bump", ("n",), (2,)), 1, 2.0) == 2
        assert rc.get("n") == b"2"  # WAIT returned: the replica has it
        pc.script_flush()  # the EVAL fallback keeps the pair on one connection
        assert test_registry.run_durable(pc, Call("bump", ("n",), (1,)), 1, 2.0) == 3
        started = time.monotonic()
        with pytest.raises(DurabilityError) as info:
            test_registry.run_durable(pc, Call("bump", ("n",), (1,)), 2, 0.2)
        assert time.monotonic() - started >= 0.15
        assert info.value.wanted == 2
        assert info.value.acknowledged < 2  # the one replica, if it was quick enough
        assert info.value.key == "n"
        assert pc.get("n") == b"4"  # applied on the primary all the same
        with pytest.raises(ValueError, match="replicas must be at least 1"):
            test_registry.run_durable(pc, Call("bump", ("n",), (1,)), 0, 1.0)
        assert pc.get("n") == b"4"


def test_raw_calls_return_bytes_on_a_decoding_client(
    test_registry: ScriptRegistry, make_client: Callable[..., redis.Redis],
    client_kwargs: dict[str, Any],
) -> None:
    binary = bytes(range(256))
    c = make_client(**{**client_kwargs, "decode_responses": True})
    assert test_registry.call(c, "append_all", ["log"], [binary]) == 1
    raw = make_client(**client_kwargs)
    raw.set("blob", binary)
    assert test_registry.run(c, Call("peek", ("blob",), (), raw=True)) == binary
    with pytest.raises(UnicodeDecodeError):
        test_registry.run(c, Call("peek", ("blob",), ()))


def test_bound_scripts_recover_and_translate_like_the_registry(
    test_registry: ScriptRegistry, client: redis.Redis,
) -> None:
    bump = test_registry.bind(client, "bump")
    assert bump(("n",), (2,)) == 2
    client.script_flush()
    assert bump(("n",), (3,)) == 5  # NOSCRIPT: EVAL, then SCRIPT LOAD
    assert "bump" not in test_registry.missing(client)
    client.rpush("l", "x")
    with pytest.raises(WrongTypeError) as info:
        bump(("l",), (1,))
    assert info.value.key == "l"
    peek = test_registry.bind(client, "peek", raw=True)
    client.set("blob", b"\xff\x00")
    assert peek(("blob",), ()) == b"\xff\x00"
