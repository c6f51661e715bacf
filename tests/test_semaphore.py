"""Semaphore (sync API only) against a real redis-server: a crashed holder's slot coming
back, processes never exceeding the limit, the CLI.

The behaviour both APIs share is in ``test_semaphore_shared_async.py`` (and its generated
sync twin, ``test_semaphore_shared_sync.py``)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import redis
from click.testing import CliRunner
from test_semaphore_shared_sync import max_overlap

from pyredis_atomic import (
    Semaphore,
)
from pyredis_atomic.cli.main import cli


def test_a_crashed_holders_slot_comes_back_after_ttl(redis_url: str,
                                                     redis_client: redis.Redis) -> None:
    code = textwrap.dedent(f"""
        import sys, time, redis
        from pyredis_atomic import Semaphore
        sem = Semaphore(redis.Redis.from_url({redis_url!r}), "crash", limit=1, ttl=1.5)
        print(sem.acquire(), flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        permit = proc.stdout.readline().strip()
        held_at = time.monotonic()
        assert permit
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        sem = Semaphore(redis_client, "crash", limit=1, ttl=1.5)
        assert sem.acquire(blocking=False) is None  # still leased
        mine = sem.acquire(timeout=10)
        freed_after = time.monotonic() - held_at
        assert mine is not None
        assert 1.0 < freed_after < 1.5 + 1.0
        assert sem.release(permit) is False  # the dead holder's permit is gone
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def hold_repeatedly(url: str, name: str, limit: int, rounds: int,
                    start_at: float) -> list[tuple[float, float]]:
    """Worker (spawned process): acquire, record the held interval, release."""
    client = redis.Redis.from_url(url)
    sem = Semaphore(client, name, limit=limit, ttl=30)
    sem.count()
    time.sleep(max(0.0, start_at - time.time()))
    intervals = []
    for _ in range(rounds):
        permit = sem.acquire(timeout=60)
        assert permit is not None
        start = time.monotonic()  # CLOCK_MONOTONIC: one clock for all processes
        time.sleep(0.01)
        end = time.monotonic()
        assert sem.release(permit)
        intervals.append((start, end))
    client.close()
    return intervals


def test_processes_never_exceed_the_limit(redis_url: str) -> None:
    limit, workers, rounds = 2, 5, 12
    name = f"pool-{uuid.uuid4().hex}"
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 1.0
    with ctx.Pool(workers) as pool:
        results = pool.starmap(hold_repeatedly,
                               [(redis_url, name, limit, rounds, start_at)] * workers)
    intervals = [iv for r in results for iv in r]
    assert len(intervals) == workers * rounds
    assert max_overlap(intervals) <= limit
    # the check can fail: the holders did overlap up to the limit
    assert max_overlap(intervals) == limit


def test_cli_semaphore_show(redis_url: str, redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client, "pdf", limit=3, ttl=20)
    p1 = sem.acquire()
    p2 = sem.acquire()
    assert p1 is not None
    assert p2 is not None
    result = CliRunner().invoke(cli, ["semaphore", "show", "pdf", "--url", redis_url])
    assert result.exit_code == 0, result.output
    assert "pdf: 2 permit(s) held" in result.output
    assert p1 in result.output
    assert p2 in result.output
    assert "lease ends in 19." in result.output or "lease ends in 20.000" in result.output
    result = CliRunner().invoke(cli, ["semaphore", "show", "none", "--url", redis_url])
    assert result.exit_code == 1  # a negative answer: no permit held
    assert "none: no permit held" in result.output
