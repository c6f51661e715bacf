"""The sync registry's own cases (threads, replicas); the cases both APIs share are in
``tests/test_registry_async.py`` and its generated twin ``tests/test_registry_sync.py``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from pyredis_atomic import (
    DurabilityError,
    ScriptRegistry,
    default_registry,
)
from pyredis_atomic._core.calls import Call
from pyredis_atomic.testing import RedisServer


def _calls(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats")
    entry = stats.get(f"cmdstat_{command}")
    return int(entry["calls"]) if entry else 0


def test_default_registry_has_the_package_scripts() -> None:
    registry = default_registry()
    assert "server_time" in registry.names()
    assert registry.get("server_time").read_only


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
    # Scripts of extra directories belong to no primitive: no key template, no defaults.
    assert entries["bump"]["keys"] == [
        {"index": 1, "name": "counter", "doc": "the counter", "type": "string",
         "template": None}
    ]
    assert entries["bump"]["primitive"] is None
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
