"""Memory pressure: a queue on a server whose ``maxmemory-policy`` may evict its keys.

Invariant: a queue refuses to work (``EvictionPolicyError``, before writing anything) on a
server with an ``allkeys-*`` policy unless the user opts in with ``allow_eviction=True``;
the end-to-end test shows the silent loss that the check prevents, and that under
``noeviction`` a full server refuses pushes loudly and loses nothing already queued.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from pyredis_atomic import EvictionPolicyError, ReliableQueue, ScriptError
from pyredis_atomic.testing import RedisServer


def test_eviction_policy_is_checked_once_per_client(
        redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory()
    client = redis.Redis(host=server.host, port=server.port)
    try:
        client.config_set("maxmemory-policy", "allkeys-lru")
        q = ReliableQueue(client, "evict")
        with pytest.raises(EvictionPolicyError) as info:
            q.push(b"x")
        assert info.value.policy == "allkeys-lru"
        assert "allow_eviction" in str(info.value)
        assert client.exists(q.keys["pending"]) == 0  # refused before writing
        ok = ReliableQueue(client, "evict", allow_eviction=True)
        ok.push(b"x")
        client.config_set("maxmemory-policy", "noeviction")
        # Cached per client: the same client still refuses (checked once).
        with pytest.raises(EvictionPolicyError):
            ReliableQueue(client, "evict").pop()
        fresh = redis.Redis(host=server.host, port=server.port)
        assert ReliableQueue(fresh, "evict").pop() is not None
        fresh.close()
    finally:
        client.close()


def test_eviction_check_tolerates_a_disabled_config_command(
        redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory()
    admin = redis.Redis(host=server.host, port=server.port)
    admin.config_set("maxmemory-policy", "allkeys-lru")
    admin.acl_setuser("app", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
                      commands=["+@all", "-config"])
    app = redis.Redis(host=server.host, port=server.port, username="app", password="pw")
    try:
        q = ReliableQueue(app, "acl")
        q.push(b"x")  # CONFIG denied: cannot tell, so the queue works
        assert q.pop() is not None
    finally:
        app.close()
        admin.close()



def _fill(client: redis.Redis, megabytes: int) -> None:
    """Write unrelated data until ``megabytes`` have been written (or the server says OOM)."""
    blob = b"x" * 10_000
    pipe = client.pipeline(transaction=False)
    for i in range(megabytes * 100):
        pipe.set(f"filler:{i}", blob)
        if i % 100 == 99:
            pipe.execute(raise_on_error=False)
    pipe.execute(raise_on_error=False)


def test_what_the_eviction_check_prevents(
        redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory(config={"maxmemory": "4mb",
                                          "maxmemory-policy": "allkeys-lru"})
    client = redis.Redis(host=server.host, port=server.port)
    try:
        # Refused by default: nothing is written, nothing can be lost silently.
        with pytest.raises(EvictionPolicyError):
            ReliableQueue(client, "jobs").push(b"job")
        assert client.dbsize() == 0
        # Opted in: memory pressure from unrelated keys evicts the queue's keys, and the
        # messages vanish without any error anywhere: the loss the check prevents.
        risky = ReliableQueue(client, "jobs", allow_eviction=True)
        risky.push_many([b"j" * 1000] * 200)
        assert risky.stats()["pending"] == 200
        # The LRU clock ticks once a second: keys written within the same second look
        # equally recent, and Redis 6.2's sampling then evicted only filler keys. Older
        # queue keys are what allkeys-lru picks first on every server.
        time.sleep(1.2)
        _fill(client, 12)
        assert client.info("stats")["evicted_keys"] > 0
        got = 0
        while risky.pop() is not None:
            got += 1
        assert got < 200, "nothing was evicted: the test proved nothing"
    finally:
        client.close()


def test_noeviction_refuses_pushes_loudly_and_loses_nothing(
        redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory(config={"maxmemory-policy": "noeviction"})
    client = redis.Redis(host=server.host, port=server.port)
    try:
        q = ReliableQueue(client, "jobs")
        ids = q.push_many([b"j" * 1000] * 200)
        _fill(client, 1)
        # Full: the limit now sits below what is used (no fluctuation can free enough).
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", str(used // 2))
        with pytest.raises(ScriptError, match="maxmemory"):
            q.push(b"one more")
        popped = []
        while (msg := q.pop()) is not None:
            popped.append(msg.id)
            assert q.ack(msg)  # acks free memory: allowed under OOM
        assert popped == ids
    finally:
        client.close()
