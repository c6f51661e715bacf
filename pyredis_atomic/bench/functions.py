"""FCALL against EVALSHA: each primitive's operations with a registry in scripts mode
(the default) and one in functions mode, in one run, interleaved round by round, so the
ratio compares the two on the same server under the same noise. The Redis server time per
call of each command (``INFO commandstats``) is shown next to it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import redis

from .. import BoundedCounter, Cache, Lock, RateLimiter, ReliableQueue, Semaphore
from ..errors import ServerVersionError
from ..registry import ScriptRegistry, default_registry
from .cases import Bench, _ratio
from .timing import Result

__all__ = ["functions_vs_scripts"]

GROUP = "Functions mode: FCALL vs EVALSHA"


def _operations(b: Bench, registry: ScriptRegistry) -> dict[str, Callable[[], object]]:
    """One operation per primitive (a cycle where one call alone would fill the state),
    every object on its own keys."""
    c = b.client
    lock = Lock(c, b.fresh(), ttl=10.0, registry=registry)
    queue = ReliableQueue(c, b.fresh(), registry=registry)
    cache = Cache(c, b.fresh(), ttl=60, registry=registry)
    counter = BoundedCounter(c, b.fresh(), min=0, max=None, registry=registry)
    sem = Semaphore(c, b.fresh(), 4, ttl=10.0, registry=registry)
    limiter = RateLimiter(c, b.fresh(), rate=1_000_000_000, period=3600.0, burst=1_000_000,
                          registry=registry)

    def lock_cycle() -> None:
        lock.acquire(blocking=False)
        lock.release()

    def queue_cycle() -> None:
        queue.push(b"x")
        msg = queue.pop()
        if msg is not None:
            queue.ack(msg)

    def semaphore_cycle() -> None:
        permit = sem.acquire(blocking=False)
        if permit:
            sem.release(permit)

    counter.incr()
    return {
        "Lock acquire + release": lock_cycle,
        "ReliableQueue push + pop + ack": queue_cycle,
        "Cache.set": lambda: cache.set("k", 1),
        "BoundedCounter.incr": counter.incr,
        "BoundedCounter.get (read-only: FCALL_RO / EVALSHA_RO)": counter.get,
        "Semaphore acquire + release": semaphore_cycle,
        "RateLimiter.hit": limiter.hit,
    }


def functions_vs_scripts(b: Bench) -> list[Result]:
    """Rows per operation: ops/s with FCALL, and its ratio to the same with EVALSHA."""
    c = b.client
    functions = ScriptRegistry(mode="functions")
    try:
        functions.load_library(c)
    except ServerVersionError as exc:  # Redis 6.2: nothing to compare
        return [Result(group=GROUP, case="(not measured)", value=0, unit="",
                       note=str(exc))]
    default_registry().load(c)
    scripts = _operations(b, default_registry())
    fcalls = _operations(b, functions)
    variants: dict[str, Callable[[], object]] = {}
    for name in scripts:
        variants[f"{name} [EVALSHA]"] = scripts[name]
        variants[f"{name} [FCALL]"] = fcalls[name]
    with contextlib.suppress(redis.ResponseError):
        c.config_resetstat()
    stats = b.time(variants)
    server = _server_usec(c)
    rows = []
    for name in scripts:
        base, st = stats[f"{name} [EVALSHA]"], stats[f"{name} [FCALL]"]
        for label, s, ratio in ((f"{name} [EVALSHA]", base, None),
                                (f"{name} [FCALL]", st, _ratio(st, base, True))):
            rows.append(Result(
                group=GROUP, case=label, value=s.median, low=s.low, high=s.high,
                baseline=f"{name} [EVALSHA]" if ratio is not None else None, ratio=ratio,
                extra={"samples": s.samples}))
    for command, usec in server.items():
        rows.append(Result(group=GROUP, case=f"server time per {command.upper()} "
                           f"(INFO commandstats)", value=usec[0], unit="us/call",
                           note=f"{usec[1]} calls, every operation above"))
    return rows


def _server_usec(c: Any) -> dict[str, tuple[float, int]]:
    try:
        stats = c.info("commandstats")
    except redis.ResponseError:
        return {}
    out = {}
    for command in ("evalsha", "fcall", "evalsha_ro", "fcall_ro"):
        entry = stats.get(f"cmdstat_{command}")
        if entry:
            out[command] = (float(entry["usec_per_call"]), int(entry["calls"]))
    return out
