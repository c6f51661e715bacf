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
from primitives import CATALOG, Primitive

import pyredis_atomic
from pyredis_atomic import AtomicError, ScriptError
from pyredis_atomic._core.servers import ServerVersion, has_feature
from pyredis_atomic.testing import RedisServer

# Commands the client sends itself, then every command the scripts call (ACL checks those
# too). Nothing else: no CONFIG, no KEYS/SCAN, no SCRIPT FLUSH, no pub/sub.
CLIENT_COMMANDS = ["evalsha", "evalsha_ro", "eval", "script|load", "blpop", "type", "ping"]
SCRIPT_COMMANDS = ["time", "get", "set", "del", "exists", "incr", "incrby", "pexpire", "pttl",
                   "hget", "hset", "hmget", "hdel", "hexists", "hincrby", "lpush", "rpush", "lpop",
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
    """Every public method of every primitive of the catalog, including the waits (BLPOP)
    and the recovery from a wiped script cache (EVAL, SCRIPT LOAD) before each."""
    for i, primitive in enumerate(CATALOG):
        admin.script_flush()  # the next calls recover with EVAL, then SCRIPT LOAD
        obj = primitive.build(pyredis_atomic, app, primitive.name.lower(), prefix)
        assert primitive.exercise(obj, i, prefix).check(), primitive.name


def test_every_primitive_works_inside_its_prefix(app: redis.Redis, admin: redis.Redis) -> None:
    exercise(app, admin, "app:")
    keys = [k.decode() for k in admin.scan_iter(count=1000)]
    assert keys, "nothing was written"
    assert all(k.startswith("app:") for k in keys), keys


# Each operation of each primitive with the default prefix: an AtomicError naming a key it
# was refused.
def _outside(primitive: Primitive, run: Callable[[Any], Any]) -> Callable[[redis.Redis], Any]:
    return lambda c: run(primitive.build(pyredis_atomic, c, primitive.name.lower(), "atomic:"))


OUTSIDE: list[tuple[str, Callable[[redis.Redis], Any]]] = [
    (f"{p.name} {op}", _outside(p, run)) for p in CATALOG for op, run in p.operations.items()
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
