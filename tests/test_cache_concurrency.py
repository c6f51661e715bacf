"""Cache under concurrency: stampedes (threads and processes), loader failures (hypothesis),
a loader SIGKILLed mid-load, and a hot key across several expiries.

Timing margins are sized for a loaded 2-core machine: the assertions that prove a property
(exactly one loader; no caller left waiting for a lease or a timeout instead of being woken)
compare against gaps of a second or more, never against tens of milliseconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from pyredis_atomic import Cache

WORKER = Path(__file__).with_name("cache_worker.py")

# On a loaded 2-core machine a thread may not be scheduled for a few hundred ms.
MARGIN = 0.75


def _run_callers(n: int, call: Callable[[int], Any]) -> tuple[list[Any], list[float]]:
    """Start n threads together; each records its result (or exception) and duration."""
    results: list[Any] = [None] * n
    durations = [0.0] * n
    barrier = threading.Barrier(n)

    def body(i: int) -> None:
        barrier.wait()
        began = time.monotonic()
        try:
            results[i] = call(i)
        except Exception as exc:
            results[i] = exc
        durations[i] = time.monotonic() - began

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    return results, durations


def test_thread_stampede_loads_once(redis_client: redis.Redis) -> None:
    cache = Cache(redis_client, "stampede", ttl=60, lock_ttl=10, wait_timeout=10)
    calls: list[int] = []
    lock = threading.Lock()

    def loader() -> dict[str, str]:
        with lock:
            calls.append(1)
        time.sleep(0.4)
        return {"v": "loaded"}

    results, durations = _run_callers(32, lambda i: cache.get_or_set("cold", loader))
    assert len(calls) == 1
    assert results == [{"v": "loaded"}] * 32
    # Woken through Redis as soon as the value is there: nobody waits for lock_ttl or
    # wait_timeout (10 s).
    assert max(durations) < 0.4 + MARGIN * 2


def test_naive_recipe_stampedes(redis_client: redis.Redis) -> None:
    """The baseline the cache replaces: GET, then load and SET on a miss."""
    calls: list[int] = []
    lock = threading.Lock()

    def naive(i: int) -> Any:
        value = redis_client.get("naive")
        if value is None:
            with lock:
                calls.append(1)
            time.sleep(0.2)
            value = b"loaded"
            redis_client.set("naive", value, ex=60)
        return value

    _run_callers(16, naive)
    assert len(calls) > 1


def test_process_stampede_loads_once(redis_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, str(WORKER), redis_url, "stampede", "cold", str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    try:
        time.sleep(0.5)  # let the interpreters start and import
        go.write_text("go")
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outputs]
    loaders = (tmp_path / "go.calls").read_text().split()
    assert len(loaders) == 1
    values = [json.loads(o[0]) for o in outputs]
    assert values == [{"pid": int(loaders[0])}] * 6


def test_sigkilled_loader_is_taken_over_after_lock_ttl(redis_url: str) -> None:
    lock_ttl = 1.5
    proc = subprocess.Popen([sys.executable, str(WORKER), redis_url, "hang", "k", str(lock_ttl)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "LOADING"
        killed_at = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    client = redis.Redis.from_url(redis_url)
    cache = Cache(client, "procs", ttl=60, lock_ttl=5, wait_timeout=30)
    lease_left = cache.inspect("k")["lease"]
    assert lease_left is not None
    assert lease_left > 0  # the dead loader's lease still holds
    assert cache.get_or_set("k", lambda: "taken over") == "taken over"
    took = time.monotonic() - killed_at
    # Not before the dead loader's lease ran out, and promptly after it (not wait_timeout).
    assert lock_ttl - 0.3 < took < lock_ttl + MARGIN * 2
    client.close()


@settings(max_examples=12)
@given(
    callers=st.integers(2, 8),
    duration=st.sampled_from([0.0, 0.05, 0.15, 0.3]),
    failures=st.integers(0, 3),
    tight=st.booleans(),
)
def test_failures_hand_over_and_no_caller_overwaits(
    redis_client: redis.Redis, callers: int, duration: float, failures: int, tight: bool,
) -> None:
    """The loader raises on its first ``failures`` calls. Generous wait_timeout: each
    failure hands the lease to one waiter, so the loader runs failures+1 times (at most once
    per caller), exactly ``failures`` callers see the error, everyone else the value, and
    nobody waits for more than the loads take. Tight wait_timeout (slow loader): waiters
    stop waiting after wait_timeout and load for themselves."""
    redis_client.flushall()
    wait_timeout = 0.3 if tight else 8.0
    duration = max(duration, 1.0) if tight else duration
    cache = Cache(redis_client, "hyp", ttl=60, lock_ttl=20, wait_timeout=wait_timeout)
    lock = threading.Lock()
    calls: list[int] = []
    spent = [0.0] * callers  # time each caller spent in its own loader call

    def call(i: int) -> Any:
        def loader() -> str:
            began = time.monotonic()
            with lock:
                calls.append(i)
                nth = len(calls)
            try:
                time.sleep(duration)
                if nth <= failures:
                    raise RuntimeError(f"failure {nth}")
                return "value"
            finally:
                spent[i] += time.monotonic() - began

        return cache.get_or_set("k", loader)

    results, durations = _run_callers(callers, call)
    errors = [r for r in results if isinstance(r, RuntimeError)]
    assert len(errors) == min(failures, callers)
    assert [r for r in results if not isinstance(r, RuntimeError)] == \
        ["value"] * (callers - len(errors))
    if tight:
        assert len(calls) == callers  # every waiter gave up waiting and loaded itself
    else:
        assert len(calls) == min(failures + 1, callers)
        assert len(set(calls)) == len(calls)  # one load per caller at most
        # Woken by each hand-over and by the fill, never left to a timeout:
        assert max(durations) < len(calls) * duration + MARGIN * 2
    for i in range(callers):
        waited = durations[i] - spent[i]
        assert waited < wait_timeout + MARGIN, (i, waited, wait_timeout)


def test_hot_key_loads_about_once_per_expiry(redis_client: redis.Redis) -> None:
    ttl = 0.4
    cache = Cache(redis_client, "hot", ttl=ttl, lock_ttl=5, wait_timeout=5)
    calls: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + 2.6
    served = [0]

    def loader() -> float:
        with lock:
            calls.append(time.monotonic())
        time.sleep(0.02)
        return time.time()

    def hammer(i: int) -> None:
        while time.monotonic() < stop:
            cache.get_or_set("hot", loader)
            with lock:
                served[0] += 1

    _run_callers(8, hammer)
    expiries = 2.6 / ttl  # ~6.5 lifetimes
    assert served[0] > 8 * len(calls)  # far more reads than loads
    # About one load per lifetime (early refresh may add a few), never one per caller.
    assert 2 <= len(calls) <= expiries * 2 + 2, calls


def test_hot_key_with_early_refresh_never_blocks_readers(redis_client: redis.Redis) -> None:
    """With XFetch and stale serving, a hot key is refreshed by one caller while the others
    keep getting the current value: after the first load no reader waits for a loader
    (which would cost it the loader's 0.6 s)."""
    cache = Cache(redis_client, "hot2", ttl=1.0, stale_ttl=5, early_refresh=1.0, lock_ttl=5)
    def first() -> int:
        time.sleep(0.6)  # records a 0.6 s recompute time
        return 0

    cache.get_or_set("hot", first)
    calls: list[int] = []
    lock = threading.Lock()
    stop = time.monotonic() + 2.5
    slowest_other = [0.0]

    def hammer(i: int) -> None:
        while time.monotonic() < stop:
            began = time.monotonic()
            loaded = [False]

            def loader(loaded: list[bool] = loaded) -> int:
                loaded[0] = True
                with lock:
                    calls.append(1)
                time.sleep(0.6)
                return len(calls)

            cache.get_or_set("hot", loader)
            if not loaded[0]:
                with lock:
                    slowest_other[0] = max(slowest_other[0], time.monotonic() - began)
            time.sleep(0.005)

    _run_callers(6, hammer)
    assert 1 <= len(calls) <= 5  # one refresh at a time, never one per caller
    assert slowest_other[0] < 0.45
