"""Mutual exclusion across processes, fenced writes, and a holder killed with SIGKILL."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from lock_workers import contend, hold_forever

from pyredis_atomic import Lock

SPAWN = multiprocessing.get_context("spawn")
MAX_WORKERS = 4


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(MAX_WORKERS, mp_context=SPAWN) as executor:
        # start every worker process now, not inside a timed example
        list(executor.map(time.sleep, [0.2] * MAX_WORKERS))
        yield executor


def _run(pool: ProcessPoolExecutor, url: str, name: str, ttl: float,
         holds: list[list[float]], *, auto_renew: bool = False) -> list[dict[str, Any]]:
    start_at = time.monotonic() + 0.3  # all workers start together (one clock on Linux)
    futures = [pool.submit(contend, url, name, ttl, h, auto_renew=auto_renew,
                           start_at=start_at) for h in holds]
    return [r for f in futures for r in f.result(timeout=120)]


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["enter"] < b["exit"] and b["enter"] < a["exit"])


def _check(records: list[dict[str, Any]], client: redis.Redis, name: str) -> None:
    """What must hold in every schedule, whether leases ran out or not."""
    fences = sorted(r["fence"] for r in records)
    # one fence per acquisition, none skipped or issued twice
    assert fences == list(range(1, len(records) + 1))
    for a in records:
        for b in records:
            if a is not b and a["fence"] < b["fence"] and _overlap(a, b):
                # b got in while a was inside: a's lease had run out, so a must find out
                assert not a["released"], (a, b)
        if a["released"]:
            # held all along, so nobody acquired (and wrote a higher fence) meanwhile;
            # only an earlier holder whose lease had run out may still have been inside
            assert a["wrote"], a
            assert not any(_overlap(a, b) for b in records if b["fence"] > a["fence"]), a
    log = [int(x) for x in client.lrange(f"resource:{name}:log", 0, -1)]
    assert log == sorted(set(log))  # the resource saw strictly increasing fences
    assert len(log) == sum(r["wrote"] for r in records)


@settings(max_examples=4, deadline=None)
@given(workers=st.integers(2, 4), per_worker=st.integers(3, 8),
       hold=st.floats(0.0, 0.02), ttl=st.floats(1.0, 3.0))
def test_no_two_holders_overlap_while_holds_stay_under_the_ttl(
    pool: ProcessPoolExecutor, redis_server: Any, *, workers: int, per_worker: int,
    hold: float, ttl: float,
) -> None:
    client = redis_server.client()
    client.flushall()
    records = _run(pool, redis_server.url, "m", ttl, [[hold] * per_worker] * workers)
    _check(records, client, "m")
    assert all(r["released"] and r["wrote"] for r in records)
    assert not any(_overlap(a, b) for a in records for b in records if a is not b)
    client.close()


@settings(max_examples=4, deadline=None)
@given(workers=st.integers(2, 4), ttl=st.floats(0.03, 0.08),
       holds=st.lists(st.floats(0.3, 3.0), min_size=2, max_size=4))
def test_a_holder_whose_lease_ran_out_is_fenced_off(
    pool: ProcessPoolExecutor, redis_server: Any, *, workers: int, ttl: float,
    holds: list[float],
) -> None:
    client = redis_server.client()
    client.flushall()
    # holds are multiples of the ttl: some sections outlast their lease, some do not
    plan = [[h * ttl for h in holds[w:] + holds[:w]] for w in range(workers)]
    records = _run(pool, redis_server.url, "e", ttl, plan)
    _check(records, client, "e")
    for r in records:
        if r["exit"] - r["enter"] > ttl * 1.5:
            assert not r["released"], r  # its lease certainly ran out inside
    client.close()


def test_auto_renew_keeps_holders_apart_across_long_sections(
    pool: ProcessPoolExecutor, redis_server: Any,
) -> None:
    client = redis_server.client()
    client.flushall()
    ttl = 0.45
    records = _run(pool, redis_server.url, "r", ttl, [[ttl * 1.6] * 2] * 2, auto_renew=True)
    _check(records, client, "r")
    assert all(r["released"] and r["wrote"] for r in records)
    assert not any(_overlap(a, b) for a in records for b in records if a is not b)
    client.close()


def test_a_holder_killed_with_sigkill_is_replaced_after_its_lease(
    redis_client: redis.Redis, redis_url: str,
) -> None:
    ttl = 1.0
    ready = SPAWN.Queue()
    holder = SPAWN.Process(target=hold_forever, args=(redis_url, "k", ttl, ready), daemon=True)
    holder.start()
    try:
        fence, acquired_at = ready.get(timeout=30)
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
        waiter = Lock(redis_client, "k", ttl=5.0)
        assert waiter.acquire(timeout=10.0)
        got = time.monotonic()
    finally:
        if holder.is_alive():
            holder.kill()
    assert waiter.fence == fence + 1
    # not before the dead holder's lease ended, and soon after it
    assert acquired_at + ttl * 0.9 < got < acquired_at + ttl + 0.5, got - acquired_at
    info = Lock.inspect(redis_client, "k")
    assert info is not None
    assert info.lost_fence == fence  # the dead holder's acquisition is recorded as lost
    waiter.release()
