"""Redis Cluster operations while workers use the primitives through ``RedisCluster``:
a manual ``CLUSTER FAILOVER`` (run on a replica) and a live slot migration
(``SETSLOT IMPORTING/MIGRATING`` + ``MIGRATE`` + ``SETSLOT NODE``).

Invariants: MOVED/ASK are followed (or the call is retried by redis-py); queue messages
are not lost (each pushed message is acked exactly once, or is still in the queue); the
counter stays within its bounds and equals the number of applied increments; the lock
never has two holders and its fences only grow; no call is half-applied (all keys of a
primitive share one slot, so a script runs on one node or not at all).

During a migration a script whose keys are split between the two nodes gets TRYAGAIN
(some keys moved, some not) or ASK (none left on the source); redis-py follows ASK and
retries TRYAGAIN, and Redis refuses the whole script in either case (never half-applied).
When redis-py's retries run out, its own ``redis.ClusterError("TTL exhausted.")`` reaches
the caller (not mapped by the registry): re-sending is then as safe as after any lost
reply (see the README's "Retry semantics"). During a failover, a blocking wait (BLPOP) on
the old primary is ended by Redis with ``UNBLOCKED``; the drivers treat that as a wait that
ended early and re-send the call, which goes to the new primary. The workers here re-send
failed calls with the same ``request_id`` / ``dedup_key`` / lock token, and the test
checks that only cluster-redirection errors ever reached them.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from faults.helpers import Workers
from pyredis_atomic import BoundedCounter, Lock, ReliableQueue
from pyredis_atomic.testing import RedisClusterHarness, RedisServer

pytestmark = pytest.mark.cluster

COUNTER_MAX = 400


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterHarness]:
    """A cluster of its own: these tests change its topology."""
    harness = RedisClusterHarness(primaries=3, replicas=1).start()
    try:
        yield harness
    finally:
        harness.cleanup()


def _roles(cluster: RedisClusterHarness) -> dict[int, int | None]:
    """port -> port of its primary (None for a primary), from ROLE on every node."""
    out: dict[int, int | None] = {}
    for server in cluster.nodes:
        with server.client(decode_responses=True) as c:
            role = c.execute_command("ROLE")
        out[server.port] = int(role[2]) if role[0] == "slave" else None
    return out


def _server(cluster: RedisClusterHarness, port: int) -> RedisServer:
    return next(s for s in cluster.nodes if s.port == port)


def _node_id(server: RedisServer) -> str:
    with server.client(decode_responses=True) as c:
        return str(c.execute_command("CLUSTER MYID"))


def _owner(cluster: RedisClusterHarness, slot: int) -> tuple[str, RedisServer]:
    with cluster.primaries[0].client(decode_responses=True) as c:
        for lo, hi, *nodes in c.execute_command("CLUSTER SLOTS"):
            if lo <= slot <= hi:
                host, port, node_id = nodes[0][0], nodes[0][1], nodes[0][2]
                server = next(s for s in cluster.nodes if s.port == int(port))
                assert host
                return node_id, server
    raise AssertionError(f"slot {slot} has no owner")


def _failover(cluster: RedisClusterHarness, slot: int) -> None:
    """Promote the replica of the slot's primary with a manual CLUSTER FAILOVER."""
    primary_id, primary = _owner(cluster, slot)
    replica = next(_server(cluster, port) for port, master in _roles(cluster).items()
                   if master == primary.port)
    # A manual failover gives up after cluster-mf-timeout (5 s) if the replica cannot
    # catch up with its paused primary in time (a loaded machine): ask again.
    for _ in range(4):
        with replica.client() as c:
            c.execute_command("CLUSTER FAILOVER")
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline:
            if _owner(cluster, slot)[0] != primary_id:
                return
            time.sleep(0.05)
    raise AssertionError("the failover did not happen")


def _migrate(cluster: RedisClusterHarness, slot: int) -> None:
    """Move one slot (and its keys) to another primary, the way redis-cli does it."""
    source_id, source = _owner(cluster, slot)
    primaries = [_server(cluster, port) for port, master in _roles(cluster).items()
                 if master is None]
    target = next(p for p in primaries if p is not source)
    target_id = _node_id(target)
    with source.client() as src, target.client() as dst:
        dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
        while True:
            keys = src.execute_command("CLUSTER GETKEYSINSLOT", slot, 20)
            if not keys:
                break
            src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000,
                                "KEYS", *keys)
            time.sleep(0.01)  # let the workers run into the half-moved slot
        for node in (target, source):
            with node.client() as c:
                c.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
        for other in primaries:
            if other not in (source, target):
                with other.client() as c:
                    c.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)


def test_failover_and_slot_migration_under_load(
        cluster: RedisClusterHarness, workers: Workers) -> None:
    cluster.wait_ok()
    client = cluster.client()
    surfaced: Counter[str] = Counter()
    messages: list[str] = []

    def retry(op: Any, *args: Any, **kwargs: Any) -> Any:
        """Re-send an idempotent call until it answers; count what reached the caller."""
        for _ in range(200):
            try:
                return op(*args, **kwargs)
            except (redis.RedisError, IndexError) as exc:
                code = getattr(exc, "code", None) or type(exc).__name__
                surfaced[str(code)] += 1
                messages.append(f"{op.__name__}: {type(exc).__name__}: {exc}")
                time.sleep(0.05)
        raise AssertionError(f"never succeeded: {surfaced}")

    # -- queue ------------------------------------------------------------------------------
    q = ReliableQueue(client, "cq", visibility_timeout=30)
    pushed: list[str] = []
    acked: Counter[str] = Counter()
    maybe_acked: set[str] = set()

    def produce() -> None:
        for n in itertools.count():
            if workers.stop.is_set():
                return
            pushed.append(retry(q.push, f"m{n}", dedup_key=f"m{n}"))
            time.sleep(0.002)

    def consume() -> None:
        while not workers.stop.is_set():
            msg = retry(q.pop, timeout=0.2)
            if msg is None:
                continue
            try:
                ok = q.ack(msg)
            except redis.RedisError:
                ok = retry(q.ack, msg)  # False if the first send went through
                if not ok:
                    maybe_acked.add(msg.id)
                    continue
            if ok:
                acked[msg.id] += 1

    # -- counter ---------------------------------------------------------------------------
    counter = BoundedCounter(client, "cc", max=COUNTER_MAX)
    applied = [0]

    def count(i: int) -> None:
        for n in itertools.count():
            if workers.stop.is_set():
                return
            result = retry(counter.incr, request_id=f"{i}-{n}")
            if result.applied:
                applied[0] += 1
            assert result.value <= COUNTER_MAX
            time.sleep(0.002)

    # -- lock ------------------------------------------------------------------------------
    holders = [0]
    fences: list[int] = []
    guard = threading.Lock()

    def lock_worker() -> None:
        lock = Lock(client, "cl", ttl=10.0)
        while not workers.stop.is_set():
            if not retry(lock.acquire, timeout=1.0):
                continue
            with guard:
                holders[0] += 1
                assert holders[0] == 1, "two holders"
                fences.append(lock.fence)
            time.sleep(0.001)
            with guard:
                holders[0] -= 1
            try:
                lock.release()
            except redis.RedisError:
                retry(lock.release)  # a re-sent release is recognised

    workers.start(produce)
    workers.start(consume)
    workers.start(count, 0)
    workers.start(count, 1)
    workers.start(lock_worker)
    workers.start(lock_worker)
    time.sleep(0.3)
    queue_slot = client.keyslot(q.keys["pending"])
    counter_slot = client.keyslot(counter.key)
    lock_slot = client.keyslot(Lock(client, "cl").keys.lock)
    _failover(cluster, queue_slot)  # consumers are blocked in BLPOP there
    if _owner(cluster, lock_slot)[0] != _owner(cluster, queue_slot)[0]:
        _failover(cluster, lock_slot)  # and lock waiters here
    time.sleep(0.3)
    _migrate(cluster, counter_slot)
    _migrate(cluster, lock_slot)
    _migrate(cluster, queue_slot)
    time.sleep(0.3)
    workers.join()
    cluster.wait_ok()

    # Queue: nothing lost, nothing acked twice.
    assert len(pushed) == len(set(pushed)) > 20
    assert max(acked.values()) == 1
    left = []
    while (msg := q.pop()) is not None:
        left.append(msg.id)
        q.ack(msg)
    assert set(pushed) == set(acked) | set(left) | maybe_acked
    # Counter: within bounds and exactly the applied increments.
    assert counter.get() == min(applied[0], COUNTER_MAX)
    assert applied[0] <= COUNTER_MAX
    # Lock: fences strictly increasing in the order holders got them.
    assert fences == sorted(set(fences))
    assert len(fences) > 5
    # Only redirection-class errors may have reached the callers (and were re-sent).
    assert set(surfaced) <= {"TRYAGAIN", "ASK", "MOVED", "CLUSTERDOWN", "ClusterDownError",
                             "TryAgainError", "ConnectionError", "ConnectionLostError",
                             "ClusterError"}, messages
    print(f"errors that reached the callers: {dict(surfaced)}", *messages[:5], sep="\n")
    client.close()
