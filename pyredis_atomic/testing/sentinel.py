"""Redis Sentinel for tests: a master, a replica and three sentinels on loopback ports.

``SentinelHarness().start()`` starts them (``redis-server --sentinel`` with a config file
per sentinel, which Sentinel rewrites as it learns); :meth:`SentinelHarness.sentinel` is a
``redis.sentinel.Sentinel`` on the three, :meth:`SentinelHarness.master_for` a client that
follows the master; :meth:`SentinelHarness.failover` runs ``SENTINEL FAILOVER`` and waits
until the old replica is master and the old master has become its connected replica, so
calling it twice goes there and back.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import redis.sentinel

from .server import RedisServer, RedisServerError, find_redis_server, free_port

__all__ = ["SentinelHarness"]

MASTER_NAME = "atomic"


class SentinelHarness:
    """A master, a replica and ``sentinels`` sentinels (quorum 2), all on 127.0.0.1.

    ``down_after_ms``: how long a silent master takes to be judged down (only automatic
    failovers use it; :meth:`failover` is immediate). ``netns``/``address``: run every
    process inside a network namespace (a :class:`~pyredis_atomic.testing.netns.Partition`'s
    name and address), so cutting its link partitions clients on the host from all of them.
    ``appendfsync``: with ``appendonly``, ``always`` makes a SIGKILLed server lose nothing
    it acknowledged.
    """

    def __init__(self, *, sentinels: int = 3, down_after_ms: int = 1000,
                 appendonly: bool = False, appendfsync: str = "everysec",
                 netns: str | None = None, address: str = "127.0.0.1") -> None:
        self.binary = find_redis_server()
        self.netns = netns
        self.address = address
        self.master = RedisServer(appendonly=appendonly, appendfsync=appendfsync,
                                  netns=netns, bind=address)
        self.replica = RedisServer(appendonly=appendonly, appendfsync=appendfsync,
                                   replica_of=self.master, netns=netns, bind=address)
        self.name = MASTER_NAME
        self.down_after_ms = down_after_ms
        self.ports = [free_port() for _ in range(sentinels)]
        self.directory = Path(tempfile.mkdtemp(prefix="pyredis-atomic-sentinel-"))
        self.processes: list[subprocess.Popen[bytes]] = []
        self.failovers = 0

    @property
    def servers(self) -> list[RedisServer]:
        """The two data servers."""
        return [self.master, self.replica]

    def start(self) -> SentinelHarness:
        """Start the servers, wait for the replica's sync, start the sentinels and wait
        until they all know the master and its replica."""
        self.master.start()
        self.replica.start()
        self._wait_synced(self.replica)
        for port in self.ports:
            conf = self.directory / f"sentinel-{port}.conf"
            conf.write_text("\n".join([
                f"port {port}",
                f"bind {self.address}",
                "protected-mode no",
                f"dir {self.directory}",
                f"logfile {self.directory / f'sentinel-{port}.log'}",
                f"sentinel monitor {self.name} {self.address} {self.master.port} 2",
                f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}",
                f"sentinel failover-timeout {self.name} 10000",
                f"sentinel parallel-syncs {self.name} 1",
                "",
            ]))
            argv = [self.binary, str(conf), "--sentinel"]
            if self.netns is not None:
                argv = ["ip", "netns", "exec", self.netns, *argv]
            self.processes.append(subprocess.Popen(
                argv,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(self._sentinel_ready(p) for p in self.ports):
                return self
            time.sleep(0.1)
        raise RedisServerError("the sentinels did not find the master and replica in 30 s")

    def _admin(self, port: int, timeout: float = 1.0) -> contextlib.closing[redis.Redis]:
        """A short-lived client of one sentinel."""
        return contextlib.closing(redis.Redis(host=self.address, port=port,
                                              socket_timeout=timeout))

    def _sentinel_ready(self, port: int) -> bool:
        try:
            with self._admin(port) as c:
                master = c.execute_command("SENTINEL", "MASTER", self.name)
                replicas = c.execute_command("SENTINEL", "REPLICAS", self.name)
                sentinels = c.execute_command("SENTINEL", "SENTINELS", self.name)
        except redis.RedisError:
            return False
        info = _pairs(master)
        return (info.get("flags") == "master" and len(replicas) >= 1
                and len(sentinels) >= len(self.ports) - 1
                and all("s_down" not in _pairs(r).get("flags", "") for r in replicas))

    @staticmethod
    def _wait_synced(replica: RedisServer, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError), \
                    contextlib.closing(replica.client(socket_timeout=1)) as c:
                info = c.info("replication")
                if info.get("role") == "slave" and info.get("master_link_status") == "up":
                    return
            time.sleep(0.05)
        raise RedisServerError(f"{replica} did not sync with its master in {timeout} s")

    # -- clients ---------------------------------------------------------------------------
    def sentinel(self, **kwargs: Any) -> redis.sentinel.Sentinel:
        """A ``redis.sentinel.Sentinel`` on the sentinels; ``kwargs`` go to the data
        connections (``socket_timeout``, ...)."""
        return redis.sentinel.Sentinel([(self.address, p) for p in self.ports],
                                       sentinel_kwargs={"socket_timeout": 1.0}, **kwargs)

    def master_for(self, **kwargs: Any) -> redis.Redis:
        """A client that follows the master across failovers."""
        client: redis.Redis = self.sentinel(**kwargs).master_for(self.name)
        return client

    def current_master(self) -> RedisServer:
        """The data server the sentinels name as master now."""
        with self._admin(self.ports[0]) as c:
            _, port = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
        port = int(port)
        return self.master if port == self.master.port else self.replica

    # -- faults ----------------------------------------------------------------------------
    def state(self) -> str:
        """What the sentinels and servers say now (for error messages and reports)."""
        parts = []
        for port in self.ports:
            try:
                with self._admin(port) as c:
                    _, p = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
                parts.append(f"sentinel {port}: master {int(p)}")
            except redis.RedisError as exc:
                parts.append(f"sentinel {port}: {exc}")
        for server in self.servers:
            try:
                with contextlib.closing(server.client(socket_timeout=1)) as c:
                    info = c.info("replication")
                parts.append(f"{server.port}: {info.get('role')} "
                             f"link={info.get('master_link_status', '-')}")
            except redis.RedisError as exc:
                parts.append(f"{server.port}: {exc}")
        return "; ".join(parts)

    def settled(self) -> bool:
        """Every sentinel names the same master, it says it is master, and the other
        server is its replica with the link up."""
        try:
            master = self.current_master()
            if not self._agree_on(master):
                return False
            other = self.replica if master is self.master else self.master
            with contextlib.closing(other.client(socket_timeout=1)) as c:
                info = c.info("replication")
            return bool(info.get("role") == "slave" and info.get("master_link_status") == "up"
                        and int(info.get("master_port", 0)) == master.port)
        except (redis.RedisError, ValueError):
            return False

    def settle(self, timeout: float = 60) -> None:
        """Wait until :meth:`settled` (after a restart, an automatic failover...)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.settled():
                return
            time.sleep(0.2)
        raise RedisServerError(f"the Sentinel set did not settle in {timeout} s: "
                               f"{self.state()}")

    def failover(self, timeout: float = 30) -> RedisServer:
        """``SENTINEL FAILOVER`` now; wait until the other server is master with the old
        one its connected replica, and every sentinel agrees. Returns the new master."""
        self.settle(timeout)
        old = self.current_master()
        new = self.replica if old is self.master else self.master
        with self._admin(self.ports[0], 5.0) as c:
            c.execute_command("SENTINEL", "FAILOVER", self.name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._agree_on(new):
                with contextlib.suppress(RedisServerError):
                    self._wait_synced(old, timeout=0.5)
                    self.failovers += 1
                    return new
            time.sleep(0.1)
        raise RedisServerError(f"failover to {new} did not complete in {timeout} s: "
                               f"{self.state()}")

    def _agree_on(self, new: RedisServer) -> bool:
        try:
            for port in self.ports:
                with self._admin(port) as c:
                    _, p = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
                if int(p) != new.port:
                    return False
            with contextlib.closing(new.client(socket_timeout=1)) as c:
                return bool(c.info("replication").get("role") == "master")
        except redis.RedisError:
            return False

    def cleanup(self) -> None:
        """Stop everything and remove the files."""
        for p in self.processes:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        self.processes.clear()
        self.replica.cleanup()
        self.master.cleanup()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> SentinelHarness:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _pairs(reply: Any) -> dict[str, str]:
    """A Sentinel reply as a dict (RESP2 gives a flat list, redis-py may give a dict)."""
    if isinstance(reply, dict):
        return {_s(k): _s(v) for k, v in reply.items()}
    items = [_s(x) for x in reply]
    return dict(zip(items[::2], items[1::2], strict=False))


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
