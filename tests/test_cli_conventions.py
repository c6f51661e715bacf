"""The conventions every ``pyredis-atomic`` command follows (docs/cli.md), checked over all
commands: one exit-code convention (0 done, 1 a negative answer, 2 an error or a refused
request), ``--json`` printing one JSON document, a closed stdout that does not stop the
work, progress on stderr only when it is a terminal, and a demo that cleans up after itself.

The table below must name every command the CLI has: a new command fails
``test_the_table_covers_every_command`` until it gets its rows here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
import redis
from click.testing import CliRunner

from pyredis_atomic import (
    BoundedCounter,
    Cache,
    Lock,
    RateLimiter,
    ReliableQueue,
    ScriptRegistry,
    Semaphore,
    ServerVersionError,
    default_registry,
)
from pyredis_atomic._core.servers import ServerVersion, has_feature
from pyredis_atomic.cli.main import cli

OK, NEGATIVE, ERROR = 0, 1, 2
Setup = Callable[[redis.Redis, Path], None]


def _nothing(client: redis.Redis, tmp: Path) -> None:
    pass


def _held_lock(client: redis.Redis, tmp: Path) -> None:
    Lock(client, "L", ttl=60.0).acquire()


def _released_lock(client: redis.Redis, tmp: Path) -> None:
    lock = Lock(client, "L", ttl=60.0)
    lock.acquire()
    lock.release()


def _queue(client: redis.Redis, tmp: Path) -> None:
    q = ReliableQueue(client, "Q", max_deliveries=1)
    q.push(b"dies")
    msg = q.pop()
    assert msg is not None
    q.nack(msg)  # max_deliveries=1: a dead letter
    q.push(b"waits")


def _cache(client: redis.Redis, tmp: Path) -> None:
    Cache(client, "C", ttl=60).set("k", {"v": 1})


def _pickled(client: redis.Redis, tmp: Path) -> None:
    Cache(client, "C", ttl=60, serializer="pickle").set("k", {"v": 1})


def _counter(client: redis.Redis, tmp: Path) -> None:
    BoundedCounter(client, "N").incr()


def _limiter(client: redis.Redis, tmp: Path) -> None:
    assert RateLimiter(client, "R", rate=10, burst=3).hit()


def _permit(client: redis.Redis, tmp: Path) -> None:
    assert Semaphore(client, "S", limit=2, ttl=60.0).acquire(blocking=False)


def _loaded(client: redis.Redis, tmp: Path) -> None:
    default_registry().load(client)


def _library(client: redis.Redis, tmp: Path) -> None:
    with contextlib.suppress(ServerVersionError):  # Redis 6.2: the row expects the refusal
        default_registry().load_library(client)


def _bench_file(client: redis.Redis, tmp: Path) -> None:
    (tmp / "bench.json").write_text(json.dumps({"meta": {}, "rows": [], "targets": []}))


def _bad_bench_file(client: redis.Redis, tmp: Path) -> None:
    (tmp / "bench.json").write_text("not json")


@dataclass(frozen=True)
class Row:
    """One invocation: arguments ({url}, {tmp} filled in), state made first, exit code."""

    args: str
    setup: Setup = _nothing
    code: int = OK
    connects: bool = True
    json: bool = True  # also run with --json: the same code, one JSON document
    #: a server feature (servers.FEATURES) the command needs: without it, the code is ERROR
    needs: str | None = None
    extra: tuple[str, ...] = field(default=())

    def argv(self, url: str, tmp: Path) -> list[str]:
        return [a.format(url=url, tmp=tmp) for a in self.args.split()]


U = "--url {url}"
TABLE = [
    Row("scripts list", connects=False),
    Row("scripts show server_time", connects=False),
    Row("scripts show lock_aquire", code=ERROR, connects=False, json=False),
    Row(f"scripts load {U}"),
    Row(f"scripts verify {U}", code=NEGATIVE),
    Row(f"scripts verify {U}", _loaded),
    Row("scripts export", connects=False),
    Row(f"functions load {U}", needs="functions"),
    Row(f"functions verify {U}", code=NEGATIVE, needs="functions"),
    Row(f"functions verify {U}", _library, needs="functions"),
    Row("functions show", connects=False),
    Row(f"functions show --list {U}", _library, needs="functions"),
    Row(f"functions delete {U} --yes", _library, needs="functions"),
    Row(f"functions delete {U} --yes", code=NEGATIVE, needs="functions"),
    Row(f"functions delete {U}", code=ERROR, connects=False, json=False),
    Row(f"demo {U}"),
    Row(f"lock show L {U}", _held_lock),
    Row(f"lock show L {U}", code=NEGATIVE),
    Row(f"lock show L {U}", _released_lock, code=NEGATIVE),
    Row(f"lock break L {U} --yes", _held_lock),
    Row(f"lock break L {U} --yes", code=NEGATIVE),
    Row(f"lock break L {U}", _held_lock, code=ERROR, json=False),
    Row(f"queue stats Q {U}", _queue),
    Row(f"queue stats no-such-queue {U}", _queue, code=NEGATIVE, json=False),
    Row(f"queue requeue-expired Q {U}", _queue),
    Row(f"queue requeue-expired no-such-queue {U}", code=NEGATIVE, json=False),
    Row(f"queue dead Q {U}", _queue),
    Row(f"queue dead no-such-queue {U}", code=NEGATIVE, json=False),
    Row(f"queue redrive Q {U}", _queue),
    Row(f"queue redrive Q {U} --id nosuch-id", _queue, code=NEGATIVE),
    Row(f"queue redrive no-such-queue {U}", code=NEGATIVE, json=False),
    Row(f"queue purge Q {U} --yes", _queue),
    Row(f"queue purge Q {U}", _queue, code=ERROR, json=False),
    Row(f"queue purge no-such-queue {U} --yes", code=NEGATIVE, json=False),
    Row(f"cache show C k {U}", _cache),
    Row(f"cache show C absent {U}", _cache, code=NEGATIVE),
    Row(f"cache show C k {U}", _pickled, code=ERROR, json=False),
    Row(f"cache show C k {U} --serializer pickle", _pickled),
    Row(f"cache delete C k {U}", _cache),
    Row(f"cache delete C k absent {U}", _cache, code=NEGATIVE),
    Row(f"counter get N {U}", _counter),
    Row(f"counter get N {U}", code=NEGATIVE),
    Row(f"counter reconfigure N --min 0 --max 10 {U}", _counter),
    Row(f"counter reconfigure N --min 5 --max 10 {U}", _counter, code=ERROR, json=False),
    Row(f"counter reconfigure N --min x --max 10 {U}", code=ERROR, connects=False,
        json=False),
    Row(f"semaphore show S {U}", _permit),
    Row(f"semaphore show S {U}", code=NEGATIVE),
    Row(f"semaphore reconfigure S 3 {U}", _permit),
    Row(f"semaphore reconfigure S 0 {U}", _permit, code=ERROR, json=False),
    Row(f"ratelimit show R {U}", _limiter),
    Row(f"ratelimit show R {U}", code=NEGATIVE),
    Row(f"ratelimit reconfigure R --rate 5 {U}", _limiter),
    Row(f"ratelimit reconfigure R --rate -1 {U}", _limiter, code=ERROR, json=False),
    Row(f"metrics show --queue Q {U}", _queue),
    Row(f"metrics show {U}", code=ERROR, connects=False, json=False),  # nothing to measure
    Row(f"metrics serve {U}", code=ERROR, connects=False, json=False),
    Row(f"worker no_such_module:handle --queue Q {U}", code=ERROR, connects=False, json=False),
    Row("bench --from {tmp}/bench.json", _bench_file, connects=False),
    Row("bench --from {tmp}/bench.json", _bad_bench_file, code=ERROR, connects=False,
        json=False),
]


def _leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _leaf_commands(cmd, (*prefix, name))
        else:
            yield " ".join((*prefix, name))


LEAVES = sorted(_leaf_commands(cli))
# Commands that run until stopped: their --json (one document once ready) is checked by a
# test of their own below instead of a row that waits for them to finish.
LONG_RUNNING = {"metrics serve": "test_metrics_serve_json_says_where_it_listens",
                "worker": "test_worker_json_logs_and_its_counts_at_exit"}


def _command_of(row: Row) -> str:
    words = row.args.split()
    return " ".join(words[:2]) if " ".join(words[:2]) in LEAVES else words[0]


def test_the_table_covers_every_command() -> None:
    covered = {_command_of(r) for r in TABLE}
    missing = sorted(set(LEAVES) - covered)
    assert not missing, f"add rows to TABLE in {__file__} for: {missing}"
    for leaf in LEAVES:
        if leaf in LONG_RUNNING:
            assert LONG_RUNNING[leaf] in globals(), leaf
            continue
        rows = [r for r in TABLE if _command_of(r) == leaf]
        assert any(r.json and r.code in (OK, NEGATIVE) for r in rows), (
            f"{leaf}: needs a row that runs with --json")


@pytest.mark.parametrize("leaf", LEAVES)
def test_every_command_takes_json(leaf: str) -> None:
    result = CliRunner().invoke(cli, [*leaf.split(), "--help"])
    assert result.exit_code == 0
    assert "--json" in result.output


@pytest.mark.parametrize("row", TABLE, ids=[
    r.args.replace(" --url {url}", "").replace(" {tmp}/", " ") for r in TABLE])
def test_exit_code_convention(row: Row, redis_url: str, redis_client: redis.Redis,
                              redis_server_version: ServerVersion, tmp_path: Path) -> None:
    code = row.code
    if row.needs is not None and not has_feature(redis_server_version, row.needs):
        code = ERROR  # a refusal that names what the server lacks
    row.setup(redis_client, tmp_path)
    result = CliRunner().invoke(cli, row.argv(redis_url, tmp_path))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    if code == ERROR:
        assert result.stderr.startswith("pyredis-atomic: "), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
    if row.json and code != ERROR:
        redis_client.flushall()
        if row.needs == "functions":
            redis_client.function_flush()
        row.setup(redis_client, tmp_path)
        result = CliRunner().invoke(cli, [*row.argv(redis_url, tmp_path), "--json"])
        assert result.exit_code == code, (result.stdout, result.stderr)
        json.loads(result.stdout)  # exactly one JSON document


# -- functions mode (--functions / $PYREDIS_ATOMIC_MODE) -------------------------------------
PRIMITIVES = ("lock", "queue", "cache", "counter", "semaphore", "ratelimit", "metrics")
FUNCTION_ROWS = [r for r in TABLE if r.args.split()[0] in PRIMITIVES and r.connects]
REFUSED_ON_62 = "Redis Functions mode (FCALL) needs Redis 7.0 or newer"


def _script_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()
            if k.removeprefix("cmdstat_") in ("fcall", "fcall_ro", "eval", "evalsha",
                                              "evalsha_ro", "eval_ro")}


def test_every_primitive_command_takes_functions() -> None:
    for leaf in [*sorted({_command_of(r) for r in FUNCTION_ROWS}), "metrics serve"]:
        result = CliRunner().invoke(cli, [*leaf.split(), "--help"])
        assert "--functions / --scripts" in result.output, leaf


@pytest.mark.parametrize("row", FUNCTION_ROWS, ids=[
    r.args.replace(" --url {url}", "") for r in FUNCTION_ROWS])
def test_exit_code_convention_in_functions_mode(
        row: Row, redis_url: str, redis_client: redis.Redis,
        redis_server_version: ServerVersion, tmp_path: Path) -> None:
    """Every primitive command with --functions, the library loaded: the same exit codes and
    JSON as in scripts mode, and only FCALL / FCALL_RO sent. Redis 6.2 has no Functions:
    a command that has to call a script refuses clearly (exit 2, one line) instead."""
    functions = has_feature(redis_server_version, "functions")
    if functions:
        default_registry().load_library(redis_client)
    row.setup(redis_client, tmp_path)
    redis_client.config_resetstat()
    result = CliRunner().invoke(cli, [*row.argv(redis_url, tmp_path), "--functions"])
    if not functions:
        assert result.exit_code in (row.code, ERROR), (result.stdout, result.stderr)
        if result.exit_code == ERROR and row.code != ERROR:
            assert result.stderr.startswith(f"pyredis-atomic: ServerVersionError: "
                                            f"{REFUSED_ON_62}"), result.stderr
            assert result.stderr.count("\n") == 1, result.stderr
        if row.code == OK:  # a positive answer has to read through a script
            assert result.exit_code == ERROR, (result.stdout, result.stderr)
        return
    assert result.exit_code == row.code, (result.stdout, result.stderr, result.exception)
    calls = _script_calls(redis_client)
    assert not {k for k in calls if k.startswith("eval")}, calls
    if row.code == OK:
        assert calls.get("fcall", 0) + calls.get("fcall_ro", 0) >= 1, calls
    if row.json and row.code != ERROR:
        redis_client.flushall()
        row.setup(redis_client, tmp_path)
        result = CliRunner().invoke(cli, [*row.argv(redis_url, tmp_path), "--json",
                                          "--functions"])
        assert result.exit_code == row.code, (result.stdout, result.stderr)
        json.loads(result.stdout)


OK_FUNCTION_ROWS = [r for r in FUNCTION_ROWS if r.code == OK]


@pytest.mark.parametrize("row", OK_FUNCTION_ROWS, ids=[
    r.args.replace(" --url {url}", "") for r in OK_FUNCTION_ROWS])
def test_functions_mode_without_the_library_exits_2_naming_it(
        row: Row, redis_url: str, redis_client: redis.Redis,
        redis_server_version: ServerVersion, tmp_path: Path) -> None:
    """$PYREDIS_ATOMIC_MODE=functions (the same as --functions), no library loaded: exit 2,
    the LibraryNotLoadedError's message on one line (the 6.2 refusal there)."""
    row.setup(redis_client, tmp_path)
    result = CliRunner(env={"PYREDIS_ATOMIC_MODE": "functions"}).invoke(
        cli, row.argv(redis_url, tmp_path))
    assert result.exit_code == ERROR, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    if has_feature(redis_server_version, "functions"):
        lib = ScriptRegistry(mode="functions").functions
        assert lib is not None
        assert result.stderr.startswith("pyredis-atomic: LibraryNotLoadedError: script "), \
            result.stderr
        assert f"library {lib.name!r}" in result.stderr
        assert "is not loaded on the server" in result.stderr or \
            "is not loaded on 127.0.0.1:" in result.stderr, result.stderr
        assert "pyredis-atomic functions load" in result.stderr
    else:
        assert REFUSED_ON_62 in result.stderr


def test_the_mode_switch_and_its_environment_variable(redis_url: str,
                                                      redis_client: redis.Redis) -> None:
    _counter(redis_client, Path())
    argv = ["counter", "get", "N", "--url", redis_url]
    # --scripts overrides the environment; an unknown mode is refused before connecting.
    env = {"PYREDIS_ATOMIC_MODE": "functions"}
    assert CliRunner(env=env).invoke(cli, [*argv, "--scripts"]).exit_code == OK
    bad = CliRunner(env={"PYREDIS_ATOMIC_MODE": "fcall"}).invoke(cli, argv)
    assert bad.exit_code == ERROR
    assert bad.stderr == ("pyredis-atomic: $PYREDIS_ATOMIC_MODE must be 'scripts' or "
                          "'functions', got 'fcall'\n")
    assert CliRunner(env={"PYREDIS_ATOMIC_MODE": "scripts"}).invoke(cli, argv).exit_code == OK


def test_metrics_serve_in_functions_mode_refuses_without_the_library(
        redis_url: str, redis_client: redis.Redis,
        redis_server_version: ServerVersion) -> None:
    _queue(redis_client, Path())
    result = CliRunner().invoke(cli, ["metrics", "serve", "--queue", "Q", "--port", "0",
                                      "--addr", "127.0.0.1", "--url", redis_url,
                                      "--functions"])
    assert result.exit_code == ERROR, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert ("LibraryNotLoadedError" if has_feature(redis_server_version, "functions")
            else REFUSED_ON_62) in result.stderr


@pytest.fixture
def dead_url() -> str:
    from pyredis_atomic.testing import RedisServer

    server = RedisServer()
    url = server.url  # never started: nothing listens there
    server.cleanup()
    return url


@pytest.mark.parametrize("leaf", sorted({_command_of(r) for r in TABLE if r.connects}))
def test_a_refused_connection_exits_2_on_one_line(leaf: str, dead_url: str,
                                                  tmp_path: Path) -> None:
    row = next(r for r in TABLE if _command_of(r) == leaf and r.connects)
    result = CliRunner().invoke(cli, row.argv(dead_url, tmp_path))
    assert result.exit_code == ERROR, (result.stdout, result.stderr)
    assert "cannot connect to Redis" in result.stderr
    assert result.stderr.count("\n") == 1


# -- the JSON uses the Python API's names and absent values -------------------------------------
def test_json_names_are_the_python_apis(redis_client: redis.Redis, redis_url: str) -> None:
    def run(*args: str) -> object:
        return json.loads(CliRunner().invoke(cli, [*args, "--url", redis_url, "--json"]).stdout)

    assert run("lock", "show", "never-seen") is None  # Lock.inspect: None
    _held_lock(redis_client, Path())
    info = Lock.inspect(redis_client, "L")
    assert info is not None
    shown = run("lock", "show", "L")
    assert isinstance(shown, dict)
    assert set(shown) == {f.name for f in dataclasses.fields(info)}
    assert {k: v for k, v in shown.items() if k != "ttl"} == {
        k: v for k, v in dataclasses.asdict(info).items() if k != "ttl"}

    _queue(redis_client, Path())
    q = ReliableQueue(redis_client, "Q")
    stats, expected = run("queue", "stats", "Q"), dict(q.stats())
    assert isinstance(stats, dict)
    assert set(stats) == set(expected)
    assert {k: v for k, v in stats.items() if k != "oldest_pending_age"} == {
        k: v for k, v in expected.items() if k != "oldest_pending_age"}
    dead = run("queue", "dead", "Q")
    assert isinstance(dead, list)
    letter = q.dead_letters()[0]
    assert dead == [{"id": letter.id, "deliveries": letter.deliveries,
                     "dead_reason": letter.dead_reason, "dead_at": letter.dead_at,
                     "payload": "dies"}]


# -- a closed stdout does not stop the work -----------------------------------------------------
def test_scripts_load_into_a_closed_pipe_loads_everything(redis_url: str,
                                                          redis_client: redis.Redis) -> None:
    # The reader is gone before the first line (as `| head -2` is after two): every write
    # fails with EPIPE. The command still loads every script and says what it did not do.
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pyredis_atomic", "scripts", "load", "--url", redis_url],
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert proc.returncode == OK, proc.stderr
    assert "stdout was closed early" in proc.stderr
    assert "still did all of its work" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "BrokenPipe" not in proc.stderr
    assert default_registry().missing(redis_client) == []


def test_scripts_load_piped_to_head(redis_url: str, redis_client: redis.Redis) -> None:
    proc = subprocess.run(
        f"set -o pipefail; {sys.executable} -m pyredis_atomic scripts load --url {redis_url}"
        " | head -2", shell=True, executable="/bin/bash", capture_output=True, text=True,
        timeout=120)
    assert proc.returncode == OK, proc.stderr
    assert len(proc.stdout.splitlines()) == 2
    assert default_registry().missing(redis_client) == []


# -- progress on stderr, only on a terminal ---------------------------------------------------
def _stderr_of(argv: list[str], *, tty: bool) -> str:
    if not tty:
        return subprocess.run(argv, capture_output=True, text=True, timeout=120).stderr
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=follower)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=120)
    finally:
        os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.parametrize("command", [["scripts", "load"], ["queue", "purge", "Q", "--yes"]])
def test_progress_on_stderr_only_when_it_is_a_terminal(command: list[str], redis_url: str,
                                                       redis_client: redis.Redis) -> None:
    argv = [sys.executable, "-m", "pyredis_atomic", *command, "--url", redis_url]
    _queue(redis_client, Path())
    shown = _stderr_of(argv, tty=True)
    word = "loading 1/" if command[0] == "scripts" else "purging 'Q': 2 deleted, 0 left"
    assert word in shown
    _queue(redis_client, Path())
    assert _stderr_of(argv, tty=False) == ""


# -- the demo leaves nothing behind -----------------------------------------------------------
def test_demo_on_a_users_server_removes_its_keys(redis_url: str,
                                                 redis_client: redis.Redis) -> None:
    redis_client.set("users:own", "kept")
    proc = subprocess.run([sys.executable, "-m", "pyredis_atomic", "demo", "--url", redis_url],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == OK, proc.stderr
    assert "the demo's keys are under 'pyredis-atomic-demo:" in proc.stdout
    assert "demo finished; removed its" in proc.stdout
    assert redis_client.keys("*") == [b"users:own"]


@pytest.mark.parametrize("mode", ["--scripts", "--functions"])
def test_metrics_serve_json_says_where_it_listens(redis_url: str, redis_client: redis.Redis,
                                                  redis_server_version: ServerVersion,
                                                  mode: str) -> None:
    _queue(redis_client, Path())
    functions = has_feature(redis_server_version, "functions")
    if mode == "--functions" and functions:
        default_registry().load_library(redis_client)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyredis_atomic", "metrics", "serve", "--queue", "Q", "--port",
         "0", "--addr", "127.0.0.1", "--url", redis_url, "--json", mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if mode == "--functions" and not functions:  # Redis 6.2: refused before listening
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == ERROR, (out, err)
        assert REFUSED_ON_62 in err
        return
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        doc = json.loads(first)
        assert doc["url"].startswith("http://127.0.0.1:")
        assert doc["url"].endswith("/metrics")
        import urllib.request

        with urllib.request.urlopen(doc["url"], timeout=30) as page:
            assert b"Q" in page.read()
    finally:
        proc.terminate()  # SIGTERM: a clean stop
        proc.wait(timeout=60)
    assert proc.returncode == OK


def test_worker_json_logs_and_its_counts_at_exit(redis_client: redis.Redis, redis_url: str,
                                                 tmp_path: Path) -> None:
    (tmp_path / "handlers_for_cli.py").write_text("def handle(msg):\n    pass\n")
    ReliableQueue(redis_client, "WQ").push_many([b"a", b"b"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyredis_atomic", "worker", "handlers_for_cli:handle",
         "--queue", "WQ", "--url", redis_url, "--interval", "0.2", "--json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while ReliableQueue(redis_client, "WQ").stats()["pending"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # past its signal handlers' installation (it has claimed)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == OK, err
    lines = err.decode().splitlines()
    assert lines
    assert all(isinstance(json.loads(line), dict) for line in lines), lines
    assert any(json.loads(line).get("event") == "worker.status" for line in lines)
    assert json.loads(out) == {"queue": "WQ", "counts": {
        "claimed": 2, "acked": 2, "retried": 0, "dead": 0, "lost": 0, "timed_out": 0,
        "given_back": 0, "in_flight": 0}}
