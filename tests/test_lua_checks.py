"""Server-side checks: every script checks its own #KEYS, #ARGV and argument formats first.

Called raw (``EVAL``, as another language or ``redis-cli`` would), with the wrong arity or a
malformed value of any argument, a script answers an error naming the script and the
argument, and the database is left exactly as it was.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from pyredis_atomic._core.argformats import FORMATS
from pyredis_atomic._core.script import Script, parse_header
from pyredis_atomic.registry import ScriptRegistry

REGISTRY = ScriptRegistry()

# A well-formed value per format (packed arguments: per script and argument).
VALID = {"int": "0", "integer": "0", "int >= 0": "0", "int > 0": "1000",
         "number > 0": "1000.5", "0|1": "0", "0..3": "2", "token": "tok", "receipts": "1-1/1",
         "receipts or ''": "", "string": "x"}
_COUNTER_CONFIG = "0 100 reject"
PACKED_VALID = {("cache_fetch", 1): "0 1000 tok json", ("counter_add", 3): "0 0 0 3600000",
                ("counter_add", 2): _COUNTER_CONFIG, ("counter_set", 2): _COUNTER_CONFIG,
                ("counter_reconfigure", 2): _COUNTER_CONFIG}
# A counter configuration is compared byte for byte: only the canonical spelling passes.
_COUNTER_CONFIG_BAD = ("", "junk", "0 100", "0 100 reject extra", "100 0 reject",
                       "0 100 maybe", "00 100 reject", "-0 100 reject", "0 1e3 reject",
                       "0  100 reject", "0 9007199254740992 reject", "0 100 Reject")
PACKED_MALFORMED = {
    ("cache_fetch", 1): ("", "x", "0 1000 tok", "abc 1000 tok json", "0 abc tok json",
                         "0 0 tok json", "0 1.5 tok json", "-1 1000 tok json",
                         "nan 1000 tok json", "inf 1000 tok json", "0 1000  json"),
    ("counter_add", 3): ("", "2 0 0 1", "0 x 0 1", "0 0 -1 1", "0 0 0 0", "0 0 0 1 extra",
                         "1 0 0"),
    ("counter_add", 2): _COUNTER_CONFIG_BAD,
    ("counter_set", 2): _COUNTER_CONFIG_BAD,
    ("counter_reconfigure", 2): _COUNTER_CONFIG_BAD,
}


def _valid(script: Script, index: int, fmt: str) -> str:
    return PACKED_VALID[(script.name, index)] if fmt == "packed" else VALID[fmt]


def _malformed(script: Script, index: int, fmt: str) -> tuple[str, ...]:
    if fmt == "packed":
        return PACKED_MALFORMED[(script.name, index)]
    return FORMATS[fmt].malformed


def _keys(script: Script) -> list[str]:
    # One key space per primitive (lock_*, queue_*...), so the scripts of one primitive
    # share their state as in real use.
    kind = script.name.split("_")[0]
    return [f"{{chk}}:{kind}:{k.name}" for k in script.keys]


def _args(script: Script) -> list[str]:
    return [_valid(script, a.index, a.format) for a in script.args]


def _snapshot(client: redis.Redis) -> dict[bytes, bytes | None]:
    return {k: client.dump(k) for k in sorted(client.scan_iter(count=1000))}


def _eval(client: redis.Redis, script: Script, keys: list[str], args: list[str]) -> object:
    return client.execute_command("EVAL", script.source, len(keys), *keys, *args)


def _refusal(client: redis.Redis, script: Script) -> str:
    """The error a well-formed call gets ('' when none): never one of the checks' (it may
    still be refused for what the keys hold)."""
    try:
        _eval(client, script, _keys(script), _args(script))
    except redis.ResponseError as exc:
        return str(exc)
    return ""


def _populate(client: redis.Redis) -> None:
    """State in every primitive's keys, so a stray write would show in the snapshot."""
    for name in REGISTRY.names():
        assert "pyredis-atomic" not in _refusal(client, REGISTRY[name]), name


NAMES = REGISTRY.names()


@pytest.mark.parametrize("name", NAMES)
def test_a_well_formed_raw_call_passes_the_checks(name: str, redis_client: redis.Redis) -> None:
    assert "pyredis-atomic" not in _refusal(redis_client, REGISTRY[name])


@pytest.mark.parametrize("name", NAMES)
def test_wrong_arity_is_refused_and_writes_nothing(name: str, redis_client: redis.Redis) -> None:
    script = REGISTRY[name]
    _populate(redis_client)
    before = _snapshot(redis_client)
    keys, args = _keys(script), _args(script)
    variants = []
    if keys:
        variants.append((keys[:-1], args))
    if not any(k.variadic for k in script.keys):
        variants.append(([*keys, "{chk}:extra"], args))
    if args:
        variants.append((keys, args[:-1]))
    if not any(a.variadic for a in script.args):
        variants.append((keys, [*args, "1"]))
    for k, a in variants:
        with pytest.raises(redis.ResponseError) as err:
            _eval(redis_client, script, k, a)
        message = str(err.value)
        assert re.search(rf"pyredis-atomic {name}: takes (at least )?{len(keys)} KEYS and "
                         rf"(at least )?{len(args)} ARGV, got {len(k)} KEYS and {len(a)} ARGV",
                         message), message
    assert _snapshot(redis_client) == before


@pytest.mark.parametrize("name", [n for n in NAMES if REGISTRY[n].args])
def test_a_malformed_argument_is_named_and_writes_nothing(
    name: str, redis_client: redis.Redis
) -> None:
    script = REGISTRY[name]
    _populate(redis_client)
    before = _snapshot(redis_client)
    keys = _keys(script)
    checked = 0
    for arg in script.args:
        for bad in _malformed(script, arg.index, arg.format):
            args = _args(script)
            args[arg.index - 1] = bad
            with pytest.raises(redis.ResponseError) as err:
                _eval(redis_client, script, keys, args)
            message = str(err.value)
            assert f"pyredis-atomic {name}: ARGV[{arg.index}] {arg.name} must be " in message, (
                bad, message)
            assert message.endswith(f'got "{bad}"'), message
            checked += 1
    assert checked or all(a.format == "string" for a in script.args)
    assert _snapshot(redis_client) == before


def test_a_deduplicated_push_needs_pairs(redis_client: redis.Redis) -> None:
    script = REGISTRY["queue_push"]
    before = _snapshot(redis_client)
    with pytest.raises(redis.ResponseError,
                       match=r"pyredis-atomic queue_push: with ARGV\[2\] mode 1 or 3, "
                             r"ARGV\[4\.\.\.\] items must be"):
        _eval(redis_client, script, _keys(script), ["0", "1", "0", "key", "payload", "key2"])
    assert _snapshot(redis_client) == before


def test_redis_cli_gets_the_error_of_the_issue(redis_url: str, redis_client: redis.Redis) -> None:
    """The call of another language, by SHA, with a bad lease: the error names it."""
    cli = shutil.which("redis-cli")
    assert cli, "redis-cli comes with redis-server"
    script = REGISTRY["lock_acquire"]
    REGISTRY.load(redis_client, ["lock_acquire"])
    port = redis_client.connection_pool.connection_kwargs["port"]
    out = subprocess.run([cli, "-p", str(port), "EVALSHA", script.sha1, "3", "{l}", "{l}:f",
                          "{l}:s", "token", "abc"], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith(
        'ERR pyredis-atomic lock_acquire: ARGV[2] ttl_ms must be a positive integer '
        '(at most 15 digits), got "abc"'
    ), out.stdout
    assert redis_client.keys("*") == []


def test_long_and_control_character_values_are_shown_on_one_line(
    redis_client: redis.Redis
) -> None:
    script = REGISTRY["lock_acquire"]
    with pytest.raises(redis.ResponseError) as err:
        _eval(redis_client, script, _keys(script), ["tok", "1\r\n" + "9" * 100])
    assert str(err.value).endswith('got "1??' + "9" * 61 + '..."')


def _format_probe(fmt: str) -> Script:
    return parse_header("probe", f"--[[\nProbe of one format.\n\nARGV[1] v ({fmt}): a value\n\n"
                        "Returns: 1 when the value passed the generated check\n]]\nreturn 1\n")


PROBES = {fmt: _format_probe(fmt) for fmt in ("int", "int >= 0", "int > 0", "0|1", "token")}
_INT = re.compile(r"0|-?[1-9][0-9]*")


def _accepted(fmt: str, v: str) -> bool:
    """What each format means, written in Python (the generated Lua must agree)."""
    if fmt == "int":
        return bool(_INT.fullmatch(v)) and abs(int(v)) <= 2**53 - 1
    if fmt in ("int >= 0", "int > 0"):
        low = 0 if fmt == "int >= 0" else 1
        return bool(_INT.fullmatch(v)) and len(v) <= 15 and int(v) >= low
    if fmt == "0|1":
        return v in ("0", "1")
    return v != "" and " " not in v and ":" not in v


@given(value=st.one_of(st.integers(-(2**60), 2**60).map(str),
                       st.text(alphabet="0123456789-+ .e:\t", max_size=20),
                       st.text(max_size=8)),
       fmt=st.sampled_from(sorted(PROBES)))
def test_the_generated_checks_match_the_formats_definition(
    value: str, fmt: str, redis_client: redis.Redis
) -> None:
    error = ""
    try:
        redis_client.execute_command("EVAL", PROBES[fmt].source, 0, value)
    except redis.ResponseError as exc:
        error = str(exc)
    if error and value.isascii():
        # The value is shown cut to 64 bytes, control characters, quotes and backslashes
        # replaced (the reply is one line).
        shown = re.sub(r'[\x00-\x1f\x7f"\\]', "?", value[:64]) + ("..." if len(value) > 64 else "")
        assert error == (f"pyredis-atomic probe: ARGV[1] v must be "
                         f'{FORMATS[fmt].description}, got "{shown}"'), error
    assert (error == "") == _accepted(fmt, value), (fmt, value, error)
