"""Cache on a Redis Cluster: an entry's keys share its hash tag, entries spread over slots,
stampede protection and wake-ups work across the cluster."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from pyredis_atomic import Cache

pytestmark = pytest.mark.cluster


def test_entry_keys_share_a_slot(redis_cluster_client: RedisCluster) -> None:
    cache = Cache(redis_cluster_client, "cl", ttl=30)
    slots = set()
    for i in range(20):
        entry = cache.key_of(f"item:{i}")
        assert key_slot(entry.encode()) == key_slot(cache._spec.wake_key(entry).encode())
        slots.add(key_slot(entry.encode()))
    assert len(slots) > 1  # entries are spread, not pinned to the cache's name


def test_cluster_stampede_and_api(redis_cluster_client: RedisCluster) -> None:
    cache = Cache(redis_cluster_client, "cl", ttl=30, lock_ttl=10, wait_timeout=10)
    calls: list[str] = []
    lock = threading.Lock()

    def call(key: str, out: list[Any]) -> None:
        def loader() -> dict[str, str]:
            with lock:
                calls.append(key)
            time.sleep(0.3)
            return {"key": key}

        out.append(cache.get_or_set(key, loader))

    keys = [f"k{i}" for i in range(4)]
    outs: dict[str, list[Any]] = {k: [] for k in keys}
    threads = [threading.Thread(target=call, args=(k, outs[k])) for k in keys for _ in range(5)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(calls) == keys
    assert all(outs[k] == [{"key": k}] * 5 for k in keys)
    assert time.monotonic() - began < 3  # waiters woken, not left to their 10 s timeout
    assert cache.get("k0") == {"key": "k0"}
    cache.set("k0", [1])
    assert cache.get("k0") == [1]
    assert cache.delete("k0") is True
    assert cache.get("k0") is None
