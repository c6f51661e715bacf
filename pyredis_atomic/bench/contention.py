"""Multi-process workloads for the benchmark (spawned processes; module-level functions so
``multiprocessing`` can import them)."""

from __future__ import annotations

import itertools
import multiprocessing
import statistics
import time
from typing import Any

import redis

__all__ = ["run_workers", "summarize_handoffs"]


def _start(ready: Any) -> float:
    """Wait until every worker (and the parent) is ready; all start together."""
    ready.wait(timeout=120)
    return time.monotonic()


def _hold(seconds: float) -> None:
    # The critical section waits (as on a database call) rather than spinning: on a small
    # machine a spinning holder takes the CPU the server and the next holder need, which
    # would measure the scheduler, not the lock.
    time.sleep(seconds)


def _make_lock(kind: str, client: redis.Redis, name: str) -> Any:
    if kind == "ours":
        from pyredis_atomic import Lock

        return Lock(client, name, ttl=10.0)
    if kind == "redis-py":
        return client.lock(name, timeout=10, sleep=0.1)
    if kind == "redis-py-1ms":
        return client.lock(name, timeout=10, sleep=0.001)
    if kind == "python-redis-lock":
        import redis_lock

        return redis_lock.Lock(client, name, expire=10)
    raise ValueError(kind)


def lock_worker(kind: str, url: str, name: str, ready: Any, duration: float,
                hold: float, away: float, out: Any) -> None:
    """Acquire, hold ``hold`` s, release, stay away ``away`` s, until ``duration`` is up;
    send back the (acquired, released) monotonic times."""
    client = redis.Redis.from_url(url)
    records: list[tuple[float, float]] = []
    _make_lock(kind, client, name)  # imports done before the start
    client.ping()
    end = _start(ready) + duration
    while time.monotonic() < end:
        lock = _make_lock(kind, client, name)
        if not lock.acquire(blocking=True):
            continue
        acquired = time.monotonic()
        _hold(hold)
        released = time.monotonic()
        lock.release()
        records.append((acquired, released))
        time.sleep(away)
    out.put(records)
    client.close()


def counter_worker(kind: str, url: str, name: str, ready: Any, duration: float,
                   limit: int, out: Any) -> None:
    """Take a slot if fewer than ``limit`` are taken, give it back; count iterations and
    every value seen above ``limit`` (a bound violation)."""
    client = redis.Redis.from_url(url)
    iterations = violations = 0
    counter: Any = None
    if kind == "ours":
        from pyredis_atomic import BoundedCounter

        counter = BoundedCounter(client, name, min=0, max=limit)
    client.ping()
    end = _start(ready) + duration
    while time.monotonic() < end:
        iterations += 1
        if kind == "ours":
            res = counter.incr()
            if res.value > limit:
                violations += 1
            if res.applied:
                counter.decr()
        elif kind == "watch-multi":
            taken = False
            with client.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(name)
                        value = int(pipe.get(name) or 0)
                        if value >= limit:
                            pipe.unwatch()
                            break
                        pipe.multi()
                        pipe.incr(name)
                        (after,) = pipe.execute()
                        violations += int(after) > limit
                        taken = True
                        break
                    except redis.WatchError:
                        continue
            if taken:
                client.decr(name)
        elif kind == "get-check-incr":
            if int(client.get(name) or 0) < limit:
                after = client.incr(name)
                violations += int(after) > limit
                client.decr(name)
        else:
            raise ValueError(kind)
    out.put((iterations, violations))
    client.close()


def run_workers(target: Any, n: int, kind: str, url: str, name: str, duration: float,
                *rest: Any) -> list[Any]:
    """Start ``n`` spawned processes running
    ``target(kind, url, name, ready, duration, *rest, queue)``; they start working together
    once all are ready (a barrier), and each puts its result on the queue."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    ready = ctx.Barrier(n + 1)
    procs = []
    for _ in range(n):
        p = ctx.Process(target=target, args=(kind, url, name, ready, duration, *rest, out))
        p.start()
        procs.append(p)
    ready.wait(timeout=120)
    results = [out.get(timeout=duration + 60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return results


def summarize_handoffs(per_worker: list[list[tuple[float, float]]]) -> dict[str, Any]:
    """Throughput, hand-off times (release to the next holder's acquire) and fairness."""
    events = sorted((acq, rel, w) for w, recs in enumerate(per_worker) for acq, rel in recs)
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(events) if b[0] >= a[1]]
    counts = [len(r) for r in per_worker]
    total = sum(counts)
    span = (events[-1][1] - events[0][0]) if events else 0.0
    gaps.sort()
    return {
        "acquisitions": total,
        "throughput": total / span if span > 0 else 0.0,
        "handoff_median_ms": statistics.median(gaps) * 1000 if gaps else float("nan"),
        "handoff_p90_ms": gaps[int(0.9 * (len(gaps) - 1))] * 1000 if gaps else float("nan"),
        "share_min": min(counts) / total if total else 0.0,
        "share_max": max(counts) / total if total else 0.0,
        # every hand-off, for the latency distribution chart (bench --plot)
        "handoffs_ms": [round(g * 1000, 4) for g in gaps],
    }
