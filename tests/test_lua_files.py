"""Every script in lua/ keeps the header contract and the rules for Cluster-safe scripts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyredis_atomic._core.script import builtin_lua_dir, parse_header

LUA_DIR = Path(__file__).resolve().parent.parent / "lua"
FILES = sorted(LUA_DIR.glob("*.lua"))

# Commands that take no key as their first argument.
KEYLESS = {"TIME", "PING", "ECHO", "INFO", "DBSIZE", "RANDOMKEY"}
FORBIDDEN = {"KEYS", "SCAN", "FLUSHALL", "FLUSHDB", "SCRIPT", "DEBUG", "WAIT"}

_CALL = re.compile(r"redis\.p?call\(\s*(['\"])(?P<cmd>[A-Za-z]+)\1\s*(?:,\s*(?P<first>[^,)]*))?")
_LITERAL_INDEX = re.compile(r"\b(?P<kind>KEYS|ARGV)\[(?P<index>\d+)\]")
_DYNAMIC_INDEX = re.compile(r"\b(?P<kind>KEYS|ARGV)\[(?!\d+\])")


_CHECKS = re.compile(r"-- pyredis-atomic checks, generated from the header \{.*?"
                     r"-- \} pyredis-atomic checks\n", re.S)


def _body(source: str) -> str:
    """The code after the header, without comments and without the generated argument
    checks (which touch every ARGV[i]: they would hide an argument the script never uses)."""
    body = _CHECKS.sub("", source[source.index("]]") + 2:], count=1)
    body = re.sub(r"--\[\[.*?\]\]", "", body, flags=re.S)
    return re.sub(r"--[^\n]*", "", body)


def test_the_package_finds_the_checkout_scripts() -> None:
    assert builtin_lua_dir() == LUA_DIR
    assert FILES


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_script_follows_the_convention(path: Path) -> None:
    """Checked on the expanded source (includes spliced in): what the server runs."""
    raw = path.read_text(encoding="utf-8")
    script = parse_header(path.stem, raw, path)
    assert "@include" not in script.source
    assert _CHECKS.search(script.source), f"{path.name}: no generated argument checks"
    for line in raw.splitlines():
        if line.startswith("ARGV["):
            assert re.match(r"^ARGV\[\d+(\.\.\.)?\] \w+ \([^)]+\):", line), (
                f"{path.name}: every argument declares its format, e.g. (int > 0, ms): {line}")
    body = _body(script.source)

    used: dict[str, set[int]] = {"KEYS": set(), "ARGV": set()}
    for m in _LITERAL_INDEX.finditer(body):
        used[m["kind"]].add(int(m["index"]))
    for kind, params in (("KEYS", script.keys), ("ARGV", script.args)):
        fixed = {p.index for p in params if not p.variadic}
        variadic_from = next((p.index for p in params if p.variadic), None)
        undeclared = {i for i in used[kind] - fixed
                      if variadic_from is None or i < variadic_from}
        assert not undeclared, f"{path.name}: {kind}{sorted(undeclared)} used but not declared"
        unused = fixed - used[kind]
        assert not unused, f"{path.name}: {kind}{sorted(unused)} declared but never used"
        dynamic = [m.group(0) for m in _DYNAMIC_INDEX.finditer(body) if m["kind"] == kind]
        if dynamic:
            assert variadic_from is not None, (
                f"{path.name}: {kind} indexed with a variable, but the header declares no "
                f"variadic {kind}[n...]"
            )

    for m in _CALL.finditer(body):
        cmd = m["cmd"].upper()
        assert cmd not in FORBIDDEN, f"{path.name}: scripts must not call {cmd}"
        if cmd in KEYLESS:
            continue
        first = (m["first"] or "").strip()
        assert first, f"{path.name}: {cmd} without a key"
        # Key names come from KEYS only: never from ARGV, literals or concatenation.
        assert "ARGV" not in first, f"{path.name}: {cmd} key built from ARGV: {first}"
        assert ".." not in first, f"{path.name}: {cmd} key built by concatenation: {first}"
        assert not re.search(r"['\"]", first), f"{path.name}: {cmd} on a literal key {first}"


def test_lint_catches_an_undeclared_key(tmp_path: Path) -> None:
    """The checks above can fail: a script reading an undeclared KEYS[2] is caught."""
    bad = tmp_path / "bad.lua"
    bad.write_text(
        "--[[\nBad.\n\nKEYS[1] a (string): a\n\nReturns: x\n]]\n"
        "return redis.call('GET', KEYS[2])\n"
    )
    with pytest.raises(AssertionError, match=r"KEYS\[2\] used but not declared"):
        test_script_follows_the_convention(bad)


def test_lint_catches_a_key_built_from_argv(tmp_path: Path) -> None:
    bad = tmp_path / "bad.lua"
    bad.write_text(
        "--[[\nBad.\n\nKEYS[1] a (string): a\nARGV[1] b (string): b\n\nReturns: x\n]]\n"
        "redis.call('GET', KEYS[1])\nreturn redis.call('GET', 'x:' .. ARGV[1])\n"
    )
    with pytest.raises(AssertionError, match="key built from ARGV"):
        test_script_follows_the_convention(bad)
