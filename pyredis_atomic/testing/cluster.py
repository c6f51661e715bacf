"""A real Redis Cluster on loopback: N primaries (and replicas when asked).

Built with cluster commands (``CLUSTER ADDSLOTS``/``MEET``/``REPLICATE``) rather than
``redis-cli --cluster create``, so it works with any ``redis-server`` binary alone.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster

from .server import RedisServer, RedisServerError, ServerBinary, find_server

__all__ = ["RedisClusterHarness"]

SLOTS = 16384


class RedisClusterHarness:
    """``primaries`` primaries with ``replicas`` replicas each; every node a RedisServer."""

    def __init__(self, primaries: int = 3, replicas: int = 0, *,
                 binary: str | ServerBinary | None = None):
        if primaries < 1:
            raise ValueError("a cluster needs at least one primary")
        if isinstance(binary, ServerBinary):
            self.identity = binary
        else:
            self.identity = ServerBinary.at(binary, "the caller") if binary else find_server()
        self.binary = self.identity.path
        self.primaries = [RedisServer(binary=self.identity, cluster=True) for _ in range(primaries)]
        self.replicas = [
            RedisServer(binary=self.identity, cluster=True)
            for _ in range(primaries * replicas)
        ]
        self.replicas_per_primary = replicas

    @property
    def nodes(self) -> list[RedisServer]:
        """Every node, primaries first."""
        return self.primaries + self.replicas

    @property
    def startup_nodes(self) -> list[ClusterNode]:
        """redis-py ``ClusterNode`` entries for every primary."""
        return [ClusterNode(s.host, s.port) for s in self.primaries]

    @property
    def url(self) -> str:
        """A ``redis://`` URL of the first primary (redis-py discovers the rest)."""
        return self.primaries[0].url

    def client(self, **kwargs: Any) -> RedisCluster:
        """A new sync cluster client."""
        return RedisCluster(startup_nodes=self.startup_nodes, **kwargs)

    def start(self) -> RedisClusterHarness:
        """Start the nodes, assign slots evenly, join them and wait for ``cluster_state:ok``."""
        try:
            for s in self.nodes:
                s.start()
            clients = [s.client(socket_timeout=5) for s in self.nodes]
            try:
                self._assign_slots(clients[: len(self.primaries)])
                first = self.primaries[0]
                for c in clients[1:]:
                    c.execute_command("CLUSTER MEET", first.host, first.port)
                self._wait(lambda: all(_known(c) == len(self.nodes) for c in clients),
                           "all nodes to meet")
                for i, c in enumerate(clients[len(self.primaries):]):
                    primary = clients[i // self.replicas_per_primary]
                    node_id = primary.execute_command("CLUSTER MYID")
                    node_id = node_id.decode() if isinstance(node_id, bytes) else node_id
                    self._wait(lambda c=c, n=node_id: _knows_primary(c, n),
                               "replica to see primary")
                    c.execute_command("CLUSTER REPLICATE", node_id)
                self._wait(lambda: all(_state_ok(c) for c in clients), "cluster_state:ok")
            finally:
                for c in clients:
                    c.close()
            if self.replicas:
                self.wait_replicas()
        except BaseException:
            self.cleanup()
            raise
        return self

    def _assign_slots(self, clients: list[redis.Redis]) -> None:
        n = len(clients)
        for i, c in enumerate(clients):
            lo, hi = i * SLOTS // n, (i + 1) * SLOTS // n - 1
            c.execute_command("CLUSTER ADDSLOTS", *range(lo, hi + 1))

    @staticmethod
    def _wait(check: Any, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if check():
                    return
            time.sleep(0.05)
        raise RedisServerError(f"cluster did not come up: waiting for {what}")

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every running node reports ``cluster_state:ok``."""
        clients = [s.client(socket_timeout=5) for s in self.nodes if s.running]
        try:
            self._wait(lambda: all(_state_ok(c) for c in clients), "cluster_state:ok", timeout)
        finally:
            for c in clients:
                c.close()

    def wait_replicas(self, timeout: float = 30.0) -> None:
        """Wait until every replica is in sync and every node's ``CLUSTER SLOTS`` lists
        all of them: a client reading from replicas finds them there, and a node lists a
        replica only once gossip has told it about it."""
        want = 1 + self.replicas_per_primary
        clients = [s.client(socket_timeout=5) for s in self.nodes if s.running]
        try:
            self._wait(lambda: all(_replica_synced(c) for c in clients
                                   if c.execute_command("ROLE")[0] in (b"slave", "slave")),
                       "replicas to sync", timeout)
            self._wait(lambda: all(_slots_list(c, want) for c in clients),
                       "CLUSTER SLOTS to list every replica", timeout)
        finally:
            for c in clients:
                c.close()

    def flushall(self) -> None:
        """Empty every primary (replicas follow), its script cache and its functions."""
        for s in self.nodes:
            if not s.running:
                continue
            with contextlib.closing(s.client(socket_timeout=5)) as c:
                role = c.execute_command("ROLE")[0]
                if role in (b"master", "master"):
                    c.flushall()
                    c.script_flush()
                    with contextlib.suppress(redis.ResponseError):  # Functions: 7.0+
                        c.function_flush()

    def cleanup(self) -> None:
        """Stop every node and remove their directories."""
        for s in self.nodes:
            s.cleanup()

    def __enter__(self) -> RedisClusterHarness:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _info(c: redis.Redis) -> dict[str, str]:
    raw = c.execute_command("CLUSTER INFO")
    if isinstance(raw, dict):  # redis-py parses CLUSTER INFO into a dict
        return {str(k): str(v) for k, v in raw.items()}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.split() if ":" in line)


def _state_ok(c: redis.Redis) -> bool:
    info = _info(c)
    return info.get("cluster_state") == "ok" and info.get("cluster_slots_ok") == str(SLOTS)


def _known(c: redis.Redis) -> int:
    return int(_info(c).get("cluster_known_nodes", "0"))


def _nodes_text(c: redis.Redis) -> str:
    raw = c.execute_command("CLUSTER NODES")
    if isinstance(raw, dict):  # redis-py parses CLUSTER NODES into a dict
        return "\n".join(f"{v.get('node_id')}" for v in raw.values())
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _knows_primary(c: redis.Redis, node_id: str) -> bool:
    return node_id in _nodes_text(c)


def _slots_list(c: redis.Redis, nodes: int) -> bool:
    """Every slot range of ``CLUSTER SLOTS`` names ``nodes`` nodes (primary + replicas)."""
    ranges = c.execute_command("CLUSTER SLOTS")
    if isinstance(ranges, dict):  # some redis-py versions parse it into {range: {...}}
        return all(len(v.get("replicas", [])) + 1 == nodes for v in ranges.values())
    return bool(ranges) and all(len(r) - 2 == nodes for r in ranges)


def _replica_synced(c: redis.Redis) -> bool:
    info = c.info("replication")
    return bool(info.get("master_link_status") == "up")
