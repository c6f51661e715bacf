"""The registries on a real 3-primary Redis Cluster (with replicas)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio.cluster as async_cluster

from pyredis_atomic import ScriptRegistry
from pyredis_atomic._core.replies import as_optional_str
from pyredis_atomic.asyncio import AsyncScriptRegistry
from pyredis_atomic.testing import RedisClusterHarness

pytestmark = pytest.mark.cluster

TEST_LUA = Path(__file__).parent / "lua"
# Keys in three different slots, so calls reach different primaries.
KEYS = ["{a}:n", "{b}:n", "{c}:n", "{d}:n", "{e}:n"]


def _slots_spread(client: Any) -> int:
    return len({client.get_node_from_key(k).name for k in KEYS})


def test_load_reaches_every_primary(redis_cluster: RedisClusterHarness,
                                    redis_cluster_client: Any,
                                    test_registry: ScriptRegistry) -> None:
    for node in redis_cluster.primaries:
        with node.client() as c:
            c.script_flush()
    assert test_registry.missing(redis_cluster_client) == test_registry.names()
    test_registry.load(redis_cluster_client)
    assert test_registry.missing(redis_cluster_client) == []
    for node in redis_cluster.primaries:
        with node.client() as c:
            assert all(c.script_exists(test_registry.get("bump").sha1))


def test_calls_route_by_slot_and_recover_noscript_on_any_node(
    redis_cluster: RedisClusterHarness, redis_cluster_client: Any,
    test_registry: ScriptRegistry,
) -> None:
    assert _slots_spread(redis_cluster_client) >= 2
    test_registry.load(redis_cluster_client)
    for key in KEYS:
        assert test_registry.call(redis_cluster_client, "bump", [key], [5]) == 5
    # One node loses its scripts (a new primary after failover looks the same).
    with redis_cluster.primaries[1].client() as c:
        c.script_flush()
    for key in KEYS:
        assert test_registry.call(redis_cluster_client, "bump", [key], [1]) == 6
        assert as_optional_str(test_registry.call(redis_cluster_client, "peek", [key])) == "6"
    # The scripts that ran are back in every node's cache.
    assert {"bump", "peek"}.isdisjoint(test_registry.missing(redis_cluster_client))


def test_cluster_pipeline_runs_scripts_despite_a_flush(
    redis_cluster: RedisClusterHarness, redis_cluster_client: Any,
    test_registry: ScriptRegistry,
) -> None:
    pipe = redis_cluster_client.pipeline()
    for key in KEYS:
        test_registry.call(pipe, "bump", [key], [2])
    for node in redis_cluster.primaries:
        with node.client() as c:
            c.script_flush()
    assert pipe.execute() == [2] * len(KEYS)


async def test_async_cluster(redis_cluster: RedisClusterHarness,
                             redis_cluster_client: Any) -> None:
    registry = AsyncScriptRegistry([TEST_LUA])
    client = async_cluster.RedisCluster(
        startup_nodes=[async_cluster.ClusterNode(s.host, s.port) for s in redis_cluster.primaries]
    )
    try:
        await registry.load(client)
        assert await registry.missing(client) == []
        with redis_cluster.primaries[0].client() as c:
            c.script_flush()
        assert await registry.missing(client) != []
        for key in KEYS:
            assert await registry.call(client, "bump", [key], [3]) == 3
        assert "bump" not in await registry.missing(client)
    finally:
        await client.aclose()


def test_run_durable_on_the_node_that_owns_the_key(
    redis_cluster_client: Any, test_registry: ScriptRegistry,
) -> None:
    from pyredis_atomic._core.calls import Call

    for key in KEYS:
        assert test_registry.run_durable(redis_cluster_client, Call("bump", (key,), (1,)),
                                         1, 5.0) == 1
