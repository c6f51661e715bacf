"""Header parsing and arity checks, driven by hypothesis, checked against a real server."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from pyredis_atomic import ScriptRegistry, ServerVersionError
from pyredis_atomic._core.script import Catalog, HeaderError, parse_header
from pyredis_atomic._core.servers import parse_server_version, redis_compatible

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
TYPES = st.sampled_from(["string", "list", "hash", "set", "zset", "stream", "any"])


@st.composite
def headers(draw: st.DrawFn) -> tuple[str, int, bool, int, bool]:
    """A valid header: (text, n_keys, keys_variadic, n_args, args_variadic)."""
    nkeys = draw(st.integers(0, 4))
    nargs = draw(st.integers(0, 5))
    kvar = nkeys > 0 and draw(st.booleans())
    avar = nargs > 0 and draw(st.booleans())
    lines = ["--[[", draw(st.sampled_from(["Do a thing.", "Summary line here"])), ""]
    knames = draw(st.lists(NAMES, min_size=nkeys, max_size=nkeys, unique=True))
    anames = draw(st.lists(NAMES, min_size=nargs, max_size=nargs, unique=True))
    for i, name in enumerate(knames, start=1):
        dots = "..." if kvar and i == nkeys else ""
        lines.append(f"KEYS[{i}{dots}] {name} ({draw(TYPES)}): key {i}")
    for i, name in enumerate(anames, start=1):
        dots = "..." if avar and i == nargs else ""
        lines.append(f"ARGV[{i}{dots}] {name}: arg {i}")
    lines += ["", "Returns: {#KEYS, #ARGV}"]
    if draw(st.booleans()):
        lines.append("  over two lines")
    if draw(st.booleans()):
        lines.append("Flags: read-only")
    if draw(st.booleans()):
        lines.append(f"Redis: {draw(st.sampled_from(['6.2', '7.0', '7']))}")
    lines += ["]]", "return {#KEYS, #ARGV}", ""]
    return "\n".join(lines), nkeys, kvar, nargs, avar


def _accepts(n: int, variadic: bool, got: int) -> bool:
    return got == n or (variadic and got > n)


@given(headers(), st.integers(0, 7), st.integers(0, 7))
def test_arity_check_matches_the_header(
    header: tuple[str, int, bool, int, bool], nkeys: int, nargs: int
) -> None:
    text, hk, kvar, ha, avar = header
    script = parse_header("generated", text)
    assert len(script.keys) == hk
    assert len(script.args) == ha
    ok = _accepts(hk, kvar, nkeys) and _accepts(ha, avar, nargs)
    if ok:
        script.check_arity(nkeys, nargs)
    else:
        with pytest.raises(ValueError, match="script 'generated' takes"):
            script.check_arity(nkeys, nargs)


CORRUPTIONS = [
    ("KEYS[1] a (string): x", "KEYS[1] a: x", "must name the key's Redis type"),
    ("KEYS[1] a (string): x", "KEYS[1] a (blob): x", "unknown Redis type"),
    ("KEYS[1] a (string): x", "KEYS[2] a (string): x", "out of order"),
    ("ARGV[1] b: y", "ARGV[1] b (blob): y", "unknown argument format 'blob'"),
    ("ARGV[1] b: y", "ARGV[1] b (int, Ms): y", "malformed unit 'Ms'"),
    ("ARGV[1] b: y", "ARGV[x] b: y", "malformed parameter line"),
    ("Returns: z", "Returns:", "no 'Returns:' line"),
    ("Returns: z", "Returns: z\nFlags: fast", "unknown flag"),
    ("Returns: z", "Returns: z\nRedis: seven", "wants a version"),
    ("--[[", "--[=[", "must start with a"),
    ("Summary.", "", "no summary line"),
    ("ARGV[1] b: y", "ARGV[1] b: y\nARGV[2] b: y", "duplicate ARGV names"),
    ("KEYS[1] a (string): x", "KEYS[1...] a (string): x\nKEYS[2] c (string): x",
     "only the last KEYS entry may be variadic"),
]
BASE = "--[[\nSummary.\n\nKEYS[1] a (string): x\nARGV[1] b: y\n\nReturns: z\n]]\nreturn 1\n"


@pytest.mark.parametrize(("old", "new", "message"), CORRUPTIONS)
def test_invalid_headers_are_rejected_with_a_reason(old: str, new: str, message: str) -> None:
    parse_header("base", BASE)
    with pytest.raises(HeaderError, match=message):
        parse_header("base", BASE.replace(old, new, 1))


@settings(max_examples=15)
@given(header=headers(), data=st.data())
def test_generated_scripts_run_with_the_arity_they_declare(
    header: tuple[str, int, bool, int, bool], data: st.DataObject,
    tmp_path_factory: pytest.TempPathFactory, redis_url: str,
) -> None:
    text, hk, kvar, ha, avar = header
    directory = tmp_path_factory.mktemp("lua")
    (directory / "generated.lua").write_text(text)
    registry = ScriptRegistry([directory], builtin=False)
    nkeys = hk + (data.draw(st.integers(0, 2)) if kvar else 0)
    nargs = ha + (data.draw(st.integers(0, 2)) if avar else 0)
    # One hash tag, so the same call would also be valid on a cluster.
    keys = [f"{{t}}:k{i}" for i in range(nkeys)]
    with redis.Redis.from_url(redis_url) as client:
        server = redis_compatible(parse_server_version(client.info("server")))
        if registry.get("generated").min_redis > server:  # "Redis: 7.0" on Redis 6.2
            with pytest.raises(ServerVersionError, match="generated"):
                registry.call(client, "generated", keys, list(range(nargs)))
        else:
            assert registry.call(client, "generated", keys, list(range(nargs))) == [nkeys,
                                                                                   nargs]
        # One key too few (or, with no keys declared, one too many) is refused.
        bad_keys = keys[: hk - 1] if hk > 0 else ["{t}:extra"]
        with pytest.raises(ValueError, match="generated"):
            registry.call(client, "generated", bad_keys, list(range(nargs)))


def test_duplicate_names_across_directories_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "server_time.lua").write_text(BASE)
    with pytest.raises(HeaderError, match="already loaded"):
        Catalog([tmp_path])


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Catalog([tmp_path / "nope"])
