"""The near cache on Redis Cluster: one tracking connection per primary, writes on every
node seen within the bound, a killed node connection or a failover clears what may be
stale, sync and asyncio."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
from redis.cluster import RedisCluster

from pyredis_atomic import Cache, NearCache
from pyredis_atomic import asyncio as aio
from pyredis_atomic._core.near import LISTENER_NAME
from pyredis_atomic.testing import RedisClusterHarness

pytestmark = pytest.mark.cluster

BOUND = NearCache().max_staleness
KEYS = [f"item:{i}" for i in range(12)]  # spread over the three primaries


def _wait_tracking(cache: Cache, timeout: float = 20.0) -> None:
    cache.get("__start__")
    end = time.monotonic() + timeout
    while not cache.near_stats().tracking:
        assert time.monotonic() < end, cache.near_stats()
        time.sleep(0.01)


def _warm(cache: Cache, key: str, value: Any) -> None:
    cache.set(key, value)
    end = time.monotonic() + 10
    while not (cache.get_or_set(key, lambda: value) == value
               and key in cache._near._data):  # type: ignore[union-attr]
        assert time.monotonic() < end
        time.sleep(0.005)


def _seen(cache: Cache, key: str, value: Any, limit: float) -> None:
    """A read that began ``limit`` after now or later returns ``value``."""
    acked = time.monotonic()
    while True:
        began = time.monotonic()
        try:
            if cache.get_or_set(key, lambda: value) == value:
                return
        except redis.RedisError:  # the client follows the new topology
            assert began - acked < limit + 10, key
            continue
        assert began - acked < limit, key


def test_writes_on_every_node_are_seen(redis_cluster: RedisClusterHarness,
                                       redis_cluster_client: RedisCluster) -> None:
    reader = redis_cluster.client()
    cache = Cache(reader, "ncl", ttl=60, near=True)
    other = Cache(redis_cluster_client, "ncl", ttl=60)
    try:
        _wait_tracking(cache)
        listeners = sum(1 for s in redis_cluster.primaries
                        for c in s.client().client_list() if c.get("name") == LISTENER_NAME)
        assert listeners == len(redis_cluster.primaries)
        for key in KEYS:
            _warm(cache, key, "old")
        for key in KEYS:
            other.set(key, "new")
            _seen(cache, key, "new", BOUND)
        # a killed connection on one node clears everything (it may have missed messages)
        for key in KEYS:
            _warm(cache, key, "old2")
        node = redis_cluster.primaries[1].client()
        for c in node.client_list():
            if c.get("name") == LISTENER_NAME:
                node.client_kill_filter(_id=str(c["id"]))
        for key in KEYS:
            other.set(key, "new2")
        for key in KEYS:
            _seen(cache, key, "new2", BOUND)
        _wait_tracking(cache)
        assert cache.near_stats().resets >= 1
    finally:
        cache.close()
        reader.close()


def test_failover_clears_and_tracking_follows_the_new_primary() -> None:
    # its own cluster: a failover must not change the shared one under other tests
    with RedisClusterHarness(primaries=3, replicas=1) as harness:
        reader = harness.client()
        writer = harness.client()
        cache = Cache(reader, "nfo", ttl=60, near=True)
        other = Cache(writer, "nfo", ttl=60)
        try:
            _wait_tracking(cache)
            for key in KEYS:
                _warm(cache, key, "old")
            replica = harness.replicas[0].client()
            # TAKEOVER: no handshake with the old primary nor votes (a graceful failover
            # can time out on a loaded machine); the old primary follows by gossip
            replica.execute_command("CLUSTER FAILOVER", "TAKEOVER")
            end = time.monotonic() + 30
            while replica.execute_command("ROLE")[0] != b"master":
                assert time.monotonic() < end
                time.sleep(0.05)
            for key in KEYS:
                while True:
                    try:
                        other.set(key, "new")
                        break
                    except redis.RedisError:  # the writer follows the new topology
                        if time.monotonic() > end:
                            raise
                        time.sleep(0.05)
            for key in KEYS:
                _seen(cache, key, "new", BOUND + 5)
            # the demoted node fails its next ROLE check (one heartbeat after it learns of
            # the takeover by gossip, which a loaded machine can delay): cleared. Its own
            # deadline: the steps above may have used most of theirs.
            demoted = time.monotonic() + 30
            while cache.near_stats().resets < 1:
                assert time.monotonic() < demoted, cache.near_stats()
                time.sleep(0.01)
            _wait_tracking(cache, 30)
            for key in KEYS:
                assert cache.get_or_set(key, str) == "new"
        finally:
            cache.close()
            reader.close()
            writer.close()


def test_asyncio_cluster(redis_cluster: RedisClusterHarness,
                         redis_cluster_client: RedisCluster) -> None:
    async def main() -> None:
        reader = redis.asyncio.cluster.RedisCluster(
            startup_nodes=[redis.asyncio.cluster.ClusterNode(s.host, s.port)
                           for s in redis_cluster.primaries])
        cache = aio.Cache(reader, "ancl", ttl=60, near=True)
        other = Cache(redis_cluster_client, "ancl", ttl=60)
        try:
            await cache.get("__start__")
            end = time.monotonic() + 20
            while not cache.near_stats().tracking:
                assert time.monotonic() < end
                await asyncio.sleep(0.01)
            for key in KEYS:
                await cache.set(key, "old")
                for _ in range(2000):
                    if (await cache.get_or_set(key, str) == "old"
                            and key in cache._near._data):  # type: ignore[union-attr]
                        break
                    await asyncio.sleep(0.005)
            for key in KEYS:
                other.set(key, "new")
                acked = time.monotonic()
                while True:
                    began = time.monotonic()
                    if await cache.get_or_set(key, str) == "new":
                        break
                    assert began - acked < BOUND
                    await asyncio.sleep(0)
        finally:
            await cache.close()
            await reader.aclose()

    asyncio.run(main())
