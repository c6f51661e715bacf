"""``prefix`` under a Redis ACL user limited to ``~app:*``: with ``prefix="app:"`` every
primitive works (blocking waits, script-cache loss and the queue's refused CONFIG GET
included); with the default prefix every primitive fails with an AtomicError naming the key;
and no key outside ``app:*`` is ever written.

The command list below is the minimal set documented in the README ("Running under a
Redis ACL user"); the test fails if the primitives need anything more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from pyredis_atomic import (
    AtomicError,
    BoundedCounter,
    Cache,
    Lock,
    RateLimiter,
    ReliableQueue,
    ScriptError,
    Semaphore,
)
from pyredis_atomic._core.servers import ServerVersion, has_feature
from pyredis_atomic.testing import RedisServer

# Commands the client sends itself, then every command the scripts call (ACL checks those
# too). Nothing else: no CONFIG, no KEYS/SCAN, no SCRIPT FLUSH, no pub/sub.
CLIENT_COMMANDS = ["evalsha", "evalsha_ro", "eval", "script|load", "blpop", "type", "ping"]
SCRIPT_COMMANDS = ["time", "get", "set", "del", "incr", "incrby", "pexpire", "pttl", "hget",
                   "hset", "hmget", "hdel", "hexists", "hincrby", "lpush", "rpush", "lpop",
                   "llen", "lindex", "ltrim", "zadd", "zrem", "zcard", "zcount", "zscore",
                   "zmscore", "zrange", "zrangebyscore", "zremrangebyscore"]
ACL_RULES = ["on", ">app-secret", "resetkeys", "~app:*", "resetchannels", "-@all",
             *(f"+{c}" for c in CLIENT_COMMANDS + SCRIPT_COMMANDS)]


def acl_rules(server: ServerVersion) -> list[str]:
    """The README's rules for ``server``: Redis 6.2 has no EVALSHA_RO, so no +evalsha_ro
    (the registry sends EVALSHA there, see docs/servers.md)."""
    if has_feature(server, "EVALSHA_RO"):
        return ACL_RULES
    return [r for r in ACL_RULES if r != "+evalsha_ro"]


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        server.client().execute_command("ACL", "SETUSER", "app",
                                        *acl_rules((server.name, server.version)))
        yield server


def test_evalsha_ro_rule_only_where_the_command_exists(acl_server: RedisServer) -> None:
    # The documented fallback on 6.2: the rule is refused by the server (so the README
    # says to leave it out), and the primitives run without it (the tests below).
    with acl_server.client() as c:
        if has_feature((acl_server.name, acl_server.version), "EVALSHA_RO"):
            assert c.execute_command("ACL", "SETUSER", "probe", "+evalsha_ro") == b"OK"
        else:
            with pytest.raises(redis.ResponseError, match=r"(?i)unknown command"):
                c.execute_command("ACL", "SETUSER", "probe", "+evalsha_ro")


@pytest.fixture
def admin(acl_server: RedisServer) -> Iterator[redis.Redis]:
    client = acl_server.client()
    client.flushall()
    client.script_flush()
    yield client
    client.close()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def app(request: pytest.FixtureRequest, acl_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis(host=acl_server.host, port=acl_server.port, username="app",
                         password="app-secret", protocol=request.param)
    yield client
    client.close()


def exercise(app: redis.Redis, admin: redis.Redis, prefix: str) -> None:
    """Every public method of every primitive, including the waits (BLPOP) and the
    recovery from a wiped script cache (EVAL, SCRIPT LOAD)."""
    lock, rival = Lock(app, "l", ttl=5, prefix=prefix), Lock(app, "l", ttl=5, prefix=prefix)
    assert lock.acquire(timeout=0)
    assert not rival.acquire(timeout=0.15)  # waited on the signal list (BLPOP)
    lock.extend(10)
    assert lock.owned()
    assert lock.locked()
    info = Lock.inspect(app, "l", prefix=prefix)
    assert info is not None
    assert info.held
    lock.release()
    with rival:
        assert rival.fence == 2

    admin.script_flush()  # the next calls recover with EVAL, then SCRIPT LOAD

    q = ReliableQueue(app, "q", prefix=prefix, visibility_timeout=5, max_deliveries=1)
    first = q.push(b"a", dedup_key="a")
    assert q.push(b"a", dedup_key="a") == first
    q.push_many([b"b", "c"], delay=0)
    m = q.pop(timeout=0.1)
    assert m is not None
    assert q.extend(m, 5)
    acked, nxt = q.ack_and_pop(m)
    assert acked
    assert nxt is not None
    q.nack(nxt)  # its last delivery: a dead letter
    assert [d.payload for d in q.dead_letters()] == [b"b"]
    assert q.redrive() == 1
    assert q.ack_many(q.pop_many(5)) == 2
    assert q.pop(timeout=0.15) is None  # waited (BLPOP)
    assert q.requeue_expired() == 0
    assert q.stats()["pending"] == 0
    q.push(b"z")
    assert q.purge() == 1

    cache = Cache(app, "c", ttl=30, prefix=prefix)
    assert cache.get_or_set("k", lambda: {"v": 1}) == {"v": 1}
    assert cache.get("k") == {"v": 1}
    cache.set("k2", [1, 2])
    assert cache.inspect("k2")["exists"]
    assert cache.delete("k2")

    counter = BoundedCounter(app, "n", min=0, max=10, prefix=prefix)
    assert counter.incr(3, request_id="r1").value == 3
    assert counter.incr(3, request_id="r1").value == 3  # remembered, not applied twice
    assert not counter.decr(5)
    counter.set(7)
    assert counter.get() == 7
    counter.reset()

    sem = Semaphore(app, "s", limit=1, ttl=5, prefix=prefix)
    permit = sem.acquire(timeout=0)
    assert permit is not None
    assert sem.acquire(timeout=0.15) is None  # waited (BLPOP)
    assert sem.extend(permit)
    assert sem.count() == 1
    assert [p for p, _ in sem.holders()] == [permit]
    assert sem.release(permit)

    limiter = RateLimiter(app, "r", rate=2, period=60, prefix=prefix)
    assert limiter.hit(2)
    assert not limiter.peek()
    limiter.reset()
    assert limiter.hit()


def test_every_primitive_works_inside_its_prefix(app: redis.Redis, admin: redis.Redis) -> None:
    exercise(app, admin, "app:")
    keys = [k.decode() for k in admin.scan_iter(count=1000)]
    assert keys, "nothing was written"
    assert all(k.startswith("app:") for k in keys), keys


# Each primitive with the default prefix: an AtomicError naming a key it was refused.
OUTSIDE: list[tuple[str, Callable[[redis.Redis], Any]]] = [
    ("lock", lambda c: Lock(c, "l").acquire(blocking=False)),
    ("lock inspect", lambda c: Lock.inspect(c, "l")),
    ("queue push", lambda c: ReliableQueue(c, "q").push(b"x")),
    ("queue pop", lambda c: ReliableQueue(c, "q").pop()),
    ("queue stats", lambda c: ReliableQueue(c, "q").stats()),
    ("cache get_or_set", lambda c: Cache(c, "c", ttl=5).get_or_set("k", lambda: 1)),
    ("cache get", lambda c: Cache(c, "c", ttl=5).get("k")),
    ("cache set", lambda c: Cache(c, "c", ttl=5).set("k", 1)),
    ("counter incr", lambda c: BoundedCounter(c, "n").incr()),
    ("counter incr request_id", lambda c: BoundedCounter(c, "n").incr(request_id="r")),
    ("counter get", lambda c: BoundedCounter(c, "n").get()),
    ("semaphore", lambda c: Semaphore(c, "s", 2).acquire(blocking=False)),
    ("ratelimit", lambda c: RateLimiter(c, "r", 5).hit()),
    ("ratelimit peek", lambda c: RateLimiter(c, "r", 5).peek()),
]


@pytest.mark.parametrize(("what", "call"), OUTSIDE, ids=[w for w, _ in OUTSIDE])
def test_outside_the_prefix_is_a_clear_error_naming_the_key(
        what: str, call: Callable[[redis.Redis], Any], app: redis.Redis,
        admin: redis.Redis) -> None:
    with pytest.raises(AtomicError) as caught:
        call(app)
    err = caught.value
    assert isinstance(err, ScriptError)
    assert err.code == "NOPERM"
    assert err.key is not None
    assert err.key.startswith("atomic:")
    assert err.key in str(err)
    assert "~" in str(err) or "ACL" in str(err)  # tells the operator where to look
    assert list(admin.scan_iter()) == []
