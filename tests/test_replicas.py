"""Read-only calls on replicas: a client connected to a replica, and a Redis Cluster client
reading from replicas. Since Redis 7.0 (and on Valkey) ``SCRIPT LOAD`` does not reach
replicas, so the first ``EVALSHA_RO`` there answers ``NOSCRIPT``; the registry runs the call
as ``EVAL``/``EVAL_RO`` and loads the script on that replica. Redis 6.2 still propagates
``SCRIPT LOAD`` and has no ``EVALSHA_RO``: the tests check that documented behaviour there.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
from redis.cluster import RedisCluster

from pyredis_atomic import (
    BoundedCounter,
    Lock,
    RateLimiter,
    ReliableQueue,
    ScriptError,
    Semaphore,
    default_registry,
)
from pyredis_atomic import asyncio as aio
from pyredis_atomic._core.servers import (
    has_feature,
    parse_server_version,
    script_load_replicated,
)
from pyredis_atomic.testing import RedisClusterHarness, RedisServer


def _eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _calls(client: Any) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): int(v["calls"])
            for k, v in client.info("commandstats").items()}


@pytest.fixture
def pair(redis_server_factory: Callable[..., RedisServer]) -> Iterator[tuple[redis.Redis,
                                                                             redis.Redis]]:
    primary = redis_server_factory()
    replica = redis_server_factory(replica_of=primary)
    p, r = primary.client(), replica.client()
    _eventually(lambda: r.info("replication").get("master_link_status") == "up",
                "the replica to sync")
    try:
        yield p, r
    finally:
        p.close()
        r.close()


def _write_state(client: Any) -> None:
    """One write through every primitive with a read-only view."""
    BoundedCounter(client, "hits", max=10).incr(3)
    Semaphore(client, "pool", limit=2, ttl=30).acquire(blocking=False)
    Lock(client, "job", ttl=30).acquire(timeout=0)
    RateLimiter(client, "api", rate=1, period=3600, burst=5).hit()
    ReliableQueue(client, "jobs").push(b"x")


def _read_state(client: Any) -> tuple[Any, ...]:
    """The read-only view of every primitive (read-only scripts only)."""
    info = Lock.inspect(client, "job")
    return (BoundedCounter(client, "hits", max=10).get(),
            Semaphore(client, "pool", limit=2, ttl=30).count(),
            len(Semaphore(client, "pool", limit=2, ttl=30).holders()),
            info is not None and info.held,
            # no refill during the test: one hit per hour
            RateLimiter(client, "api", rate=1, period=3600, burst=5).peek().remaining,
            ReliableQueue(client, "jobs").stats()["pending"])


def test_read_only_calls_on_a_replica_client(pair: tuple[redis.Redis, redis.Redis]) -> None:
    primary, replica = pair
    version = parse_server_version(replica.info("server"))
    registry = default_registry()
    registry.load(primary)
    _write_state(primary)
    assert primary.wait(1, 5000) == 1
    shas = [registry.get(n).sha1 for n in registry.names()]
    # 7.0+: the replica has none of the scripts loaded on its primary; 6.2: all of them.
    assert all(replica.script_exists(*shas)) == script_load_replicated(version)
    assert not any(replica.script_exists(*shas)) or script_load_replicated(version)
    replica.config_resetstat()
    expected = _read_state(primary)
    assert expected[0] == 3
    assert _read_state(replica) == expected  # first calls: NOSCRIPT recovered on 7.0+
    assert _read_state(replica) == expected  # now from the replica's own script cache
    calls = _calls(replica)
    if has_feature(version, "EVALSHA_RO"):
        assert calls.get("evalsha_ro", 0) >= 6
        assert "script|load" in calls  # the recovery loaded the scripts on the replica
    else:
        assert calls.get("evalsha", 0) >= 12
        assert "evalsha_ro" not in calls


def test_a_write_on_a_replica_is_a_readonly_script_error(
    pair: tuple[redis.Redis, redis.Redis],
) -> None:
    # The server's READONLY arrives wrapped on 6.2 and plain on 7.0+: one error either way.
    _, replica = pair
    counter = BoundedCounter(replica, "hits", max=10)
    with pytest.raises(ScriptError) as info:
        counter.incr()
    assert info.value.code == "READONLY"
    assert "read only replica" in str(info.value)
    assert "Error running script" not in str(info.value)


# -- Redis Cluster with replicas ----------------------------------------------------------


@pytest.fixture
def replica_reader(redis_cluster: RedisClusterHarness) -> Iterator[RedisCluster]:
    redis_cluster.wait_ok()
    redis_cluster.wait_replicas()  # a replica must be listed to be read from
    redis_cluster.flushall()
    with warnings.catch_warnings():
        # redis-py 5.3+ prefers load_balancing_strategy; read_from_replicas still works
        warnings.simplefilter("ignore", DeprecationWarning)
        client = redis_cluster.client(read_from_replicas=True)
    try:
        yield client
    finally:
        client.close()


def _node_calls(cluster: RedisClusterHarness) -> tuple[dict[str, int], dict[str, int]]:
    """Script calls summed over the primaries and over the replicas."""
    sums: list[dict[str, int]] = [{}, {}]
    for i, group in enumerate((cluster.primaries, cluster.replicas)):
        for s in group:
            with s.client() as c:
                for name, n in _calls(c).items():
                    if name.startswith(("eval", "script")):
                        sums[i][name] = sums[i].get(name, 0) + n
    return sums[0], sums[1]


def test_cluster_reads_from_replicas(redis_cluster: RedisClusterHarness,
                                     replica_reader: RedisCluster) -> None:
    writer = redis_cluster.client()
    try:
        _write_state(writer)
        expected = _read_state(writer)
    finally:
        writer.close()
    with redis_cluster.primaries[0].client() as c:
        version = parse_server_version(c.info("server"))
    for s in redis_cluster.nodes:
        with s.client() as c:
            c.config_resetstat()
            if s in redis_cluster.replicas:
                c.script_flush()  # a replica may have lost its cache (restart, failover)
    # replicas are asynchronous: reads may lag the writes for a moment
    _eventually(lambda: _read_state(replica_reader) == expected, "replicas to catch up")
    for _ in range(5):
        assert _read_state(replica_reader) == expected
    on_primaries, on_replicas = _node_calls(redis_cluster)
    if has_feature(version, "EVALSHA_RO"):
        # redis-py's read_from_replicas spreads reads over a slot's primary and replica
        assert on_replicas.get("evalsha_ro", 0) + on_replicas.get("eval_ro", 0) > 0
        assert on_replicas.get("eval_ro", 0) > 0  # NOSCRIPT on a replica: EVAL_RO there
        assert not {k for k in on_replicas if k in ("evalsha", "eval")}  # only _RO
    else:  # Redis 6.2: no EVALSHA_RO, so read-only scripts run on the primaries
        assert on_primaries.get("evalsha", 0) > 0
        assert not {k for k in on_replicas if k.startswith("eval")}


async def test_async_cluster_reads_from_replicas(redis_cluster: RedisClusterHarness,
                                                 replica_reader: RedisCluster) -> None:
    writer = redis_cluster.client()
    try:
        BoundedCounter(writer, "hits", max=10).incr(4)
    finally:
        writer.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = redis.asyncio.cluster.RedisCluster(
            startup_nodes=[redis.asyncio.cluster.ClusterNode(s.host, s.port)
                           for s in redis_cluster.primaries],
            read_from_replicas=True)
    try:
        counter = aio.BoundedCounter(client, "hits", max=10)
        deadline = time.monotonic() + 10
        while await counter.get() != 4:
            assert time.monotonic() < deadline, "replicas did not catch up"
        assert [await counter.get() for _ in range(6)] == [4] * 6
    finally:
        await client.aclose()
