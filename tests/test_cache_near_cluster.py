"""The near cache on Redis Cluster: one tracking connection per primary, writes on every
node seen within the bound, a killed node connection or a failover clears what may be
stale, sync and asyncio."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
from redis.cluster import RedisCluster
from redis.crc import key_slot

from pyredis_atomic import Cache, NearCache
from pyredis_atomic import asyncio as aio
from pyredis_atomic._core.near import LISTENER_NAME
from pyredis_atomic.testing import RedisClusterHarness, RedisServer

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


def _same_slot_keys(n: int) -> tuple[int, list[str]]:
    """``n`` user keys whose entries share one slot (the entry keys hash the user key)."""
    by_slot: dict[int, list[str]] = {}
    for i in range(100_000):
        key = f"mig:{i}"
        slot = key_slot(key.encode())
        by_slot.setdefault(slot, []).append(key)
        if len(by_slot[slot]) == n:
            return slot, by_slot[slot]
    raise AssertionError("no slot with enough keys")


def _node_id(server: RedisServer) -> str:
    with server.client(decode_responses=True) as c:
        return str(c.execute_command("CLUSTER MYID"))


def _owner(harness: RedisClusterHarness, slot: int) -> RedisServer:
    with harness.primaries[0].client(decode_responses=True) as c:
        for lo, hi, first, *_ in c.execute_command("CLUSTER SLOTS"):
            if lo <= slot <= hi:
                return next(s for s in harness.nodes if s.port == int(first[1]))
    raise AssertionError(f"slot {slot} has no owner")


def _begin_migration(source: RedisServer, target: RedisServer, slot: int) -> None:
    """``IMPORTING``/``MIGRATING`` and ``MIGRATE`` of every key (as redis-cli does); the
    slot stays the source's until :func:`_end_migration`."""
    with source.client() as src, target.client() as dst:
        dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", _node_id(source))
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", _node_id(target))
        while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
            src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000,
                                "KEYS", *keys)


def _end_migration(nodes: list[RedisServer], source: RedisServer, target: RedisServer,
                   slot: int) -> None:
    target_id = _node_id(target)
    for node in [target, source, *(n for n in nodes if n not in (source, target))]:
        with node.client() as c:
            try:
                c.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
            except redis.ResponseError as exc:
                # a source that gave away its last slot may already have become the
                # target's replica (Redis 7's replica migration): it knows
                if node is not source or "only with masters" not in str(exc):
                    raise


def _write(cache: Cache, key: str, value: Any) -> None:
    end = time.monotonic() + 30
    while True:
        try:
            cache.set(key, value)
            return
        except redis.RedisError:  # the writer follows the new topology
            assert time.monotonic() < end
            time.sleep(0.05)


def _warm_retrying(cache: Cache, key: str, value: Any) -> None:
    """Read ``key`` until its value ``value`` is a local hit (through ASK/MOVED)."""
    end = time.monotonic() + 30
    while True:
        with contextlib.suppress(redis.RedisError):
            if (cache.get_or_set(key, lambda: value) == value
                    and key in cache._near._data):  # type: ignore[union-attr]
                return
        assert time.monotonic() < end, cache.near_stats()
        time.sleep(0.005)


def test_slot_migration_to_a_new_primary_and_on() -> None:
    """Keys of one slot move to a primary that joined after the reader started (it owned
    no slot: neither the reader's client nor its listener knew it; the reader learns it
    from a MOVED), then on to a primary the reader knew, with reads and writes in the
    middle of that migration (ASK): another client's writes on the new owner are seen
    within the bound every time. (The reader does not read while the slot migrates to the
    unknown node: redis-py 8.1 cannot follow an ASK to a node it does not know,
    ``AttributeError`` in ``get_redis_connection``, near cache or not.)"""
    slot, keys = _same_slot_keys(4)
    # its own cluster: the test changes its topology
    with RedisClusterHarness(primaries=2) as harness, \
            RedisServer(binary=harness.identity, cluster=True) as newcomer:
        reader = harness.client()
        writer = harness.client()
        cache = Cache(reader, "nmig", ttl=60, near=True)
        other = Cache(writer, "nmig", ttl=60)
        try:
            _wait_tracking(cache)
            source = _owner(harness, slot)
            for key in keys:
                _warm(cache, key, "old")
            with newcomer.client() as c:
                c.execute_command("CLUSTER MEET", harness.primaries[0].host,
                                  harness.primaries[0].port)
            nodes = [*harness.primaries, newcomer]
            end = time.monotonic() + 30
            while not (all(_knows(n, newcomer) for n in harness.primaries)
                       and _state_ok(newcomer)):
                assert time.monotonic() < end
                time.sleep(0.05)
            _begin_migration(source, newcomer, slot)
            _end_migration(nodes, source, newcomer, slot)
            for key in keys:  # the MIGRATE removed the local copies; read from the newcomer
                _warm_retrying(cache, key, "old")
            for key in keys:
                _write(other, key, "new")
                _seen(cache, key, "new", BOUND)
            _wait_tracking(cache, 30)
            for key in keys:
                _warm_retrying(cache, key, "new")
            # on to a primary the reader knew from the start; half-way (the keys on the
            # target, the slot still the newcomer's) reads follow ASK and are kept locally
            # (writes wait: a script on several keys of a migrating slot gets TRYAGAIN)
            target = next(p for p in harness.primaries if p is not source)
            _begin_migration(newcomer, target, slot)
            for key in keys:
                _warm_retrying(cache, key, "new")
            _end_migration(nodes, newcomer, target, slot)
            # Redis 7 makes the newcomer, now without slots, the target's replica; the
            # reader's client never hears of it (its reads go to the target), yet tracking
            # must come back (the listener refreshes the client's view of the primaries)
            end = time.monotonic() + 10
            with newcomer.client() as c:
                while time.monotonic() < end and c.execute_command("ROLE")[0] == b"master":
                    time.sleep(0.05)
            for key in keys:
                _write(other, key, "mid")
                _seen(cache, key, "mid", BOUND)
            for key in keys:
                _warm_retrying(cache, key, "mid")
            for key in keys:
                _write(other, key, "last")
                _seen(cache, key, "last", BOUND)
        finally:
            cache.close()
            reader.close()
            writer.close()


def _knows(node: RedisServer, newcomer: RedisServer) -> bool:
    with node.client(decode_responses=True) as c:
        text = c.execute_command("CLUSTER NODES")
    if isinstance(text, dict):
        return any(str(newcomer.port) in str(k) for k in text)
    return f":{newcomer.port}@" in str(text)


def _state_ok(node: RedisServer) -> bool:
    with node.client(decode_responses=True) as c:
        info = c.execute_command("CLUSTER INFO")
    text = info if isinstance(info, str) else "\n".join(f"{k}:{v}" for k, v in info.items())
    return "cluster_state:ok" in text
