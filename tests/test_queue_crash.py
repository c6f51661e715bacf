"""Consumers SIGKILLed at points hypothesis chooses: no message is lost, none is acked
twice, and a message is processed again only after a lease expired."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyredis_atomic import ReliableQueue
from pyredis_atomic._core.replies import as_str
from pyredis_atomic.testing import RedisServer

WORKER = Path(__file__).with_name("queue_worker.py")
POINTS = ["before_pop", "after_pop", "after_process", "after_ack"]
MESSAGES = 60

worker_plan = st.tuples(st.integers(-1, 12), st.sampled_from(POINTS))


@pytest.mark.slow
@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plans=st.lists(worker_plan, min_size=3, max_size=4),
       kill_after=st.lists(st.floats(0.05, 1.5), max_size=2))
def test_sigkilled_consumers_lose_nothing(redis_server: RedisServer,
                                          plans: list[tuple[int, str]],
                                          kill_after: list[float]) -> None:
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    client.flushall()
    q = ReliableQueue(client, "crash", visibility_timeout=0.5, max_deliveries=4)
    pushed = set(q.push_many([f"job-{i}".encode() for i in range(MESSAGES)]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, str(WORKER), redis_server.url, "crash",
                               str(after), point], env=env)
             for after, point in plans]
    try:
        # Outside kills at random moments (after the workers have started).
        deadline = time.monotonic() + 20
        while client.llen("ready") < len(procs) and time.monotonic() < deadline:
            time.sleep(0.02)
        start = time.monotonic()
        for i, at in enumerate(sorted(kill_after)):
            time.sleep(max(0.0, start + at - time.monotonic()))
            procs[i % len(procs)].send_signal(signal.SIGKILL)
        # Whoever survived drains the queue; then a fresh consumer takes what is left.
        end = time.monotonic() + 15
        while time.monotonic() < end:
            s = q.stats()
            if s["pending"] == s["in_flight"] == s["delayed"] == 0:
                break
            if all(p.poll() is not None for p in procs):
                m = q.pop(timeout=0.6)
                if m is not None:
                    client.rpush("processed", m.receipt)
                    if q.ack(m):
                        client.rpush("acked", m.receipt)
            else:
                time.sleep(0.05)
    finally:
        client.set("stop", 1)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    stats = q.stats()
    assert stats["pending"] == stats["in_flight"] == stats["delayed"] == 0, stats
    dead = {m.id for m in q.dead_letters(limit=1000)}
    acked_receipts = [as_str(x) for x in client.lrange("acked", 0, -1)]
    acked = [r.rsplit("/", 1)[0] for r in acked_receipts]
    processed = [as_str(x) for x in client.lrange("processed", 0, -1)]
    # Acked at most once each (a kill right after the ack may leave it unrecorded) ...
    assert len(acked) == len(set(acked))
    assert set(acked) <= pushed
    assert not (set(acked) & dead)
    # ... and nothing lost: every message left the queue through an ack, or is dead.
    assert client.hlen(q.keys["payload"]) == len(dead)
    assert dead <= pushed
    # Every delivery was processed at most once, and every live message was processed.
    assert len(processed) == len(set(processed))
    by_id: dict[str, list[int]] = collections.defaultdict(list)
    for receipt in processed:
        mid, delivery = receipt.rsplit("/", 1)
        by_id[mid].append(int(delivery))
    assert pushed - dead <= set(by_id)
    # Duplicates only where a lease expired: nothing is delivered again after its ack
    # (no nacks here, so a delivery number > 1 can only follow an expired lease).
    for receipt in acked_receipts:
        mid, delivery = receipt.rsplit("/", 1)
        assert max(by_id[mid]) == int(delivery), (mid, by_id[mid])
    client.close()
