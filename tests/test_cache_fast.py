"""Fast hits: a hit is one native GET of the entry's fresh copy, and the copy never says more
than the entry hash does (it follows every fill, set and delete, never outlives a fence, and
ends early enough that the XFetch rule stays exact). Sync, asyncio and cluster."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from server_compat import pexpiretime

from pyredis_atomic import Cache, WrongTypeError
from pyredis_atomic import asyncio as aio
from pyredis_atomic import cache as cache_module
from pyredis_atomic._core.cache import FAST_GAP, copy_tag

HITS = 200


def _stats(client: Any) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT (lower-case names)."""
    info = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}


def _copy(client: Any, cache: Any, key: str) -> bytes | None:
    value = client.get(cache._spec.copy_key(cache.key_of(key)))
    return value.encode("latin-1") if isinstance(value, str) else value


def _field(client: Any, cache: Any, key: str, field: str) -> int:
    return int(client.hget(cache.key_of(key), field))


def _copy_end(client: Any, cache: Any, key: str) -> int:
    """Absolute server ms at which the copy is gone (PEXPIRETIME is its last live ms)."""
    return pexpiretime(client, cache._spec.copy_key(cache.key_of(key))) + 1


# -- one native GET per hit ---------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_hit_is_one_native_get(client: redis.Redis, beta: float) -> None:
    cache = Cache(client, "fast", ttl=60, early_refresh=beta)
    value = {"id": 7, "name": "é", "tags": [1, 2]}
    assert cache.get_or_set("k", lambda: value) == value
    client.config_resetstat()
    for _ in range(HITS):
        assert cache.get_or_set("k", lambda: pytest.fail("loader ran on a hit")) == value
    stats = _stats(client)
    scripts = stats.get("evalsha", 0) + stats.get("eval", 0)
    # exactly one command per hit; the script only for draws above FAST_GAP
    assert stats.get("get", 0) + scripts == HITS
    if beta == 0:
        assert scripts == 0
    else:
        # expected HITS * exp(-FAST_GAP) ~ 1.3; more than 15 has probability < 1e-10
        assert scripts <= 15
    assert stats.get("hmget", 0) == 0 or scripts > 0


def test_get_is_one_native_get(client: redis.Redis) -> None:
    cache = Cache(client, "fast", ttl=60)
    cache.set("k", [1])
    cache.set("none", None)
    client.config_resetstat()
    assert cache.get("k") == [1]
    assert cache.get("none", 5) is None
    assert cache.get("missing", 5) == 5  # no copy: the script decides
    stats = _stats(client)
    assert stats.get("get") == 3
    assert stats.get("evalsha", 0) + stats.get("evalsha_ro", 0) == 1


def test_stored_none_hits_natively(client: redis.Redis) -> None:
    cache = Cache(client, "fast", ttl=60, cache_none=True, early_refresh=0)
    assert cache.get_or_set("k", lambda: None) is None
    client.config_resetstat()
    assert cache.get_or_set("k", lambda: pytest.fail("loader ran")) is None
    assert _stats(client).get("evalsha", 0) == 0


def test_fast_hits_off_keeps_no_copy(client: redis.Redis) -> None:
    cache = Cache(client, "slow", ttl=60, fast_hits=False)
    cache.get_or_set("k", lambda: 1)
    cache.set("k2", 2)
    assert _copy(client, cache, "k") is None
    assert _copy(client, cache, "k2") is None
    client.config_resetstat()
    assert cache.get_or_set("k", lambda: 0) == 1
    assert _stats(client).get("get", 0) == 0
    with pytest.raises(TypeError, match="fast_hits"):
        Cache(client, "x", ttl=1, fast_hits=1)  # type: ignore[arg-type]


def test_writers_without_fast_hits_still_retire_the_copy(client: redis.Redis) -> None:
    # a deployment mixing fast_hits on and off: any write keeps the copy in step
    fast = Cache(client, "mix", ttl=60, early_refresh=0)
    slow = Cache(client, "mix", ttl=60, fast_hits=False)
    fast.set("k", "v1")
    slow.set("k", "v2")
    assert _copy(client, fast, "k") is None
    assert fast.get_or_set("k", lambda: "loaded") == "v2"
    fast.set("k", "v3")
    assert slow.delete("k") is True
    assert _copy(client, fast, "k") is None
    assert fast.get("k") is None


# -- the copy follows the hash ------------------------------------------------------------


def test_copy_layout_and_lifetime_follow_each_write(client: redis.Redis) -> None:
    cache = Cache(client, "life", ttl=30)
    cache.set("k", {"a": 1})
    # set: no recompute time, so the copy lives until the logical expiry
    assert _copy(client, cache, "k") == b'4:json={"a":1}'
    assert _copy_end(client, cache, "k") == _field(client, cache, "k", "e")

    def slow() -> str:
        time.sleep(0.05)
        return "loaded"

    cache.delete("k")
    assert _copy(client, cache, "k") is None
    cache.get_or_set("k", slow)
    d = _field(client, cache, "k", "d")
    assert d >= 50
    # fill: the copy ends FAST_GAP recompute times before the logical expiry
    assert _copy_end(client, cache, "k") == _field(client, cache, "k", "e") - d * FAST_GAP
    assert _copy(client, cache, "k") == b'4:json="loaded"'


def test_no_copy_when_the_recompute_time_eats_the_ttl(client: redis.Redis,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # The draw u = 0 never refreshes early, so the hit below is certain (a random draw
    # refreshes now and then, and a loaded machine can eat a short ttl's remainder).
    monkeypatch.setattr(cache_module, "random", lambda: 0.0)
    cache = Cache(client, "short", ttl=1.0)

    def slow() -> int:
        time.sleep(0.25)  # 5 * 250 ms > 1 s: every read must let XFetch decide
        return 1

    cache.set("k", 0)
    assert _copy(client, cache, "k") is not None
    cache.delete("k")
    assert cache.get_or_set("k", slow) == 1
    assert _copy(client, cache, "k") is None
    client.config_resetstat()
    assert cache.get_or_set("k", lambda: 2) == 1  # a hit through the script
    assert _stats(client).get("get", 0) == 1


def test_early_refresh_off_copy_ends_exactly_at_logical_expiry(client: redis.Redis) -> None:
    off = Cache(client, "off", ttl=0.5, early_refresh=0)

    def slow() -> str:
        time.sleep(0.02)
        return "v1"

    off.get_or_set("k", slow)
    assert _copy(client, off, "k") == b'4:json!"v1"'
    assert _copy_end(client, off, "k") == _field(client, off, "k", "e")
    # a read with early refresh on must not trust it (XFetch may want a refresh): script
    client.config_resetstat()
    assert off.get_or_set("k", lambda: "v2", early_refresh=1e-9) == "v1"
    assert _stats(client).get("evalsha", 0) == 1
    time.sleep(0.6)
    assert off.get_or_set("k", lambda: "v2") == "v2"  # expired at e: the loader runs


def test_hot_key_still_refreshes_before_expiry(client: redis.Redis) -> None:
    # A hot key read continuously: the XFetch rule picks a reader shortly before expiry
    # (the copy is gone by then, so readers go through the script). With reads even 5 ms
    # apart the chance that no reader is picked before expiry is below 1e-8.
    cache = Cache(client, "hot", ttl=1.0, early_refresh=1.0)
    loads: list[int] = []

    def loader() -> int:
        now = client.time()
        loads.append(now[0] * 1000 + now[1] // 1000)
        time.sleep(0.1)
        return len(loads)

    cache.get_or_set("k", loader)
    expiry = _field(client, cache, "k", "e")
    deadline = time.monotonic() + 3
    while len(loads) < 2 and time.monotonic() < deadline:
        cache.get_or_set("k", loader)
    assert len(loads) >= 2
    assert loads[1] < expiry  # refreshed early, before the logical expiry


@pytest.mark.parametrize("op", ["set", "delete", "expired"])
def test_fenced_loader_leaves_no_copy(client: redis.Redis, op: str) -> None:
    cache = Cache(client, "fence", ttl=30, lock_ttl=0.2 if op == "expired" else 10)
    started = threading.Event()
    go = threading.Event()

    def stale_loader() -> str:
        started.set()
        go.wait(5)
        return "stale"

    t = threading.Thread(target=cache.get_or_set, args=("k", stale_loader))
    t.start()
    assert started.wait(5)
    if op == "set":
        cache.set("k", "explicit")
    elif op == "delete":
        cache.delete("k")
    else:
        time.sleep(0.3)  # the lease ends; a newer loader fills
        assert cache.get_or_set("k", lambda: "newer") == "newer"
    go.set()
    t.join(5)
    current = {"set": "explicit", "delete": None, "expired": "newer"}[op]
    assert _copy(client, cache, "k") == (None if current is None
                                         else b'4:json="' + current.encode() + b'"')
    assert cache.get_or_set("k", lambda: "reloaded") == (current or "reloaded")


def test_serializer_tags_never_cross(client: redis.Redis) -> None:
    assert copy_tag("a") == b"1:a"
    assert not copy_tag("a:b").startswith(copy_tag("a"))
    Cache(client, "m", ttl=30, serializer="pickle").set("k", b"x")
    raw = Cache(client, "m", ttl=30, serializer="raw")
    with pytest.raises(Exception, match="'pickle'"):
        raw.get_or_set("k", lambda: b"loaded")  # never returns the pickled bytes


# Both ways a get_or_set starts, by the XFetch draw u: the fresh copy's GET first (u small:
# most calls), or the fetch script first (u close to 1: a few calls with early refresh on),
# which takes the fill lease before the fill meets the copy key's type.
@pytest.mark.parametrize("draw", [0.0, 0.999999], ids=["copy-first", "fetch-first"])
def test_copy_key_of_another_type_is_named(client: redis.Redis, draw: float,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "random", lambda: draw)
    cache = Cache(client, "wt", ttl=30)
    copy = cache._spec.copy_key(cache.key_of("k"))
    client.rpush(copy, "x")
    for op in (lambda: cache.get_or_set("k", lambda: 1), lambda: cache.get("k"),
               lambda: cache.set("k", 1), lambda: cache.delete("k")):
        with pytest.raises(WrongTypeError) as info:
            op()
        assert info.value.key == copy
    assert client.lrange(copy, 0, -1) in ([b"x"], ["x"])
    assert client.exists(cache.key_of("k")) == 0  # nothing half-written


# -- asyncio and cluster ------------------------------------------------------------------


async def test_async_hit_is_one_native_get(aclient: Any, redis_client: redis.Redis) -> None:
    cache = aio.Cache(aclient, "afast", ttl=60, early_refresh=0)
    assert await cache.get_or_set("k", lambda: [1, "é"]) == [1, "é"]
    redis_client.config_resetstat()
    for _ in range(50):
        assert await cache.get_or_set("k", lambda: pytest.fail("loader ran")) == [1, "é"]
    assert await cache.get("k") == [1, "é"]
    stats = _stats(redis_client)
    assert stats.get("get") == 51
    assert stats.get("evalsha", 0) == 0
    await cache.delete("k")
    assert _copy(redis_client, cache, "k") is None


@pytest.mark.cluster
def test_cluster_hit_is_one_native_get(redis_cluster_client: RedisCluster) -> None:
    cache = Cache(redis_cluster_client, "cfast", ttl=60, early_refresh=0)
    keys = [f"k{i}" for i in range(6)]
    for k in keys:
        cache.get_or_set(k, lambda k=k: {"k": k})  # type: ignore[misc]
    redis_cluster_client.config_resetstat(target_nodes=RedisCluster.PRIMARIES)
    for k in keys:
        assert cache.get_or_set(k, lambda: pytest.fail("loader ran")) == {"k": k}
    gets = scripts = 0
    for node in redis_cluster_client.get_primaries():
        stats = _stats(redis_cluster_client.get_redis_connection(node))
        gets += stats.get("get", 0)
        scripts += stats.get("evalsha", 0)
    assert (gets, scripts) == (len(keys), 0)


@pytest.mark.cluster
async def test_async_cluster_hits(redis_cluster: Any) -> None:
    client = AsyncRedisCluster(startup_nodes=[ClusterNode(s.host, s.port)
                                              for s in redis_cluster.primaries])
    try:
        cache = aio.Cache(client, "acfast", ttl=60)
        for i in range(4):
            assert await cache.get_or_set(f"k{i}", lambda i=i: i) == i  # type: ignore[misc]
            assert await cache.get_or_set(f"k{i}", lambda: -1) == i
            assert await cache.get(f"k{i}") == i
            assert await cache.delete(f"k{i}") is True
            assert await cache.get(f"k{i}", "gone") == "gone"
    finally:
        await client.aclose()
