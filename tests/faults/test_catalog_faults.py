"""Every primitive of the catalog (``tests/primitives.py``) under the two faults that any
operation must survive, so a new primitive gets these tests by adding itself there.

- **A script-flush storm**: ``SCRIPT FLUSH`` every few ms while the primitive's exercise
  (every public method, waits included) runs again and again. Invariant: no error reaches
  the caller, and each exercise leaves exactly the state it says (``Exercised.check``),
  so no call was lost or applied twice when its ``EVALSHA`` met ``NOSCRIPT``. The test
  proves the storm hit: the server counted ``NOSCRIPT`` replies.
- **A lost reply** under each single operation: the proxy drops the reply, redis-py
  re-sends the command on a new connection. Invariant: no error reaches the caller, and
  the client and the primitive keep working (a fresh exercise passes afterwards). What
  each re-send does to the state, primitive by primitive, is checked in
  ``test_lost_replies.py`` (the README's retry table).

The per-primitive invariants with exact counts under a storm (pipelines included) are in
``test_script_flush.py``.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis
from primitives import CATALOG, Primitive

import pyredis_atomic
from faults.fault_proxy import FaultProxy
from pyredis_atomic.testing import RedisServer

STORM_FOR = 1.5  # seconds of exercises under flushes, per primitive
OPERATIONS = [(p, op) for p in CATALOG for op in p.operations]


def _noscript_replies(client: redis.Redis) -> int:
    stats = client.info("errorstats")
    entry = stats.get("errorstat_NOSCRIPT", {"count": 0})
    return int(entry["count"])


@pytest.mark.parametrize("primitive", CATALOG, ids=lambda p: p.name)
def test_every_primitive_through_a_script_flush_storm(
        primitive: Primitive, redis_server: RedisServer, redis_client: redis.Redis) -> None:
    redis_client.config_resetstat()
    stop = threading.Event()
    flushes = [0]

    def flush() -> None:
        with redis_server.client() as admin:
            while not stop.is_set():
                admin.script_flush()
                flushes[0] += 1
                time.sleep(0.002)

    flusher = threading.Thread(target=flush, daemon=True)
    flusher.start()
    rounds = 0
    try:
        end = time.monotonic() + STORM_FOR
        while time.monotonic() < end or rounds < 3:
            obj = primitive.build(pyredis_atomic, redis_client, f"storm-{rounds}",
                                  "catalog-storm:")
            # i stays small: an exercise's state grows with it (the rate limiter's i + 2
            # hits must fit its burst); the names keep the rounds apart
            done = primitive.exercise(obj, rounds % 20, "catalog-storm:")
            assert done.check(), f"{primitive.name}: round {rounds} left another state"
            rounds += 1
    finally:
        stop.set()
        flusher.join(10)
    assert flushes[0] >= 10
    assert _noscript_replies(redis_client) > 0, "no call met NOSCRIPT: the test proved nothing"


@pytest.mark.parametrize(("primitive", "op"), OPERATIONS,
                         ids=[f"{p.name}.{op}" for p, op in OPERATIONS])
def test_every_single_operation_survives_a_lost_reply(
        primitive: Primitive, op: str, proxy: FaultProxy, retrying: redis.Redis) -> None:
    run = primitive.operations[op]
    # A first object does the per-client first-use work (the queue's eviction-policy
    # check, cached per client), so the dropped reply is the operation's own call.
    name = f"catalog-lost-{op}"  # the server is shared by the tests: a name of this test's own
    run(primitive.build(pyredis_atomic, retrying, f"{name}-warm", "atomic:"))
    proxy.drop_next_reply()
    run(primitive.build(pyredis_atomic, retrying, name, "atomic:"))  # no error
    assert proxy.dropped == 1, "the reply was not dropped: the test proved nothing"
    fresh = primitive.build(pyredis_atomic, retrying, f"{name}-after", "atomic:")
    assert primitive.exercise(fresh, 1, "atomic:").check()
