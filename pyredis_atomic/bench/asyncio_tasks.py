"""asyncio tasks sharing one ``redis.asyncio.Redis``: what auto-pipelining gives.

For 1 and 64 tasks on one client: ``counter.incr`` against a one-line ``INCR`` script called
the same way (redis-py's ``register_script``, one ``EVALSHA`` round trip per call), and a
cache hit against a plain ``GET``; each of ours also with auto-pipelining turned off (its
own client), which is what every call cost before it. Then 64 tasks on one
``redis.asyncio.cluster.RedisCluster`` of a local 3-primary cluster (started by the
testing harness; skipped with a note when it cannot start), the keys spread over the
primaries: auto-pipelined (one pipeline per node) against off and the one-line script.
Variants take turns in short slices (the order rotated), so they share the machine's
load; the ratios are per round."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .timing import Result

__all__ = ["asyncio_tasks"]

Op = Callable[[], Awaitable[object]]


async def _slice(op: Op, tasks: int, per_task: int) -> float:
    async def worker() -> None:
        for _ in range(per_task):
            await op()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return time.perf_counter() - start


async def _interleaved(variants: dict[str, Op], tasks: int, ops: int, rounds: int,
                       slices: int) -> dict[str, list[float]]:
    per_task = max(1, ops // slices // tasks)
    names = list(variants)
    for name in names:  # warm-up: connections made, scripts loaded
        await _slice(variants[name], tasks, per_task)
    samples: dict[str, list[float]] = {n: [] for n in names}
    turn = 0
    for _ in range(rounds):
        spent = dict.fromkeys(names, 0.0)
        for _ in range(slices):
            turn += 1
            for name in names[turn % len(names):] + names[:turn % len(names)]:
                spent[name] += await _slice(variants[name], tasks, per_task)
        for name in names:
            samples[name].append(per_task * tasks * slices / spent[name])
    return samples


async def _run(url: str, quick: bool, say: Callable[[str], None]) -> list[Result]:
    import redis.asyncio

    from pyredis_atomic.asyncio import BoundedCounter, Cache, set_auto_pipelining

    on = redis.asyncio.Redis.from_url(url)  # ours, auto-pipelined (the default)
    off = redis.asyncio.Redis.from_url(url)  # ours, auto-pipelining off: each call alone
    plain = redis.asyncio.Redis.from_url(url)  # the baselines (redis-py's own calls)
    set_auto_pipelining(False, off)
    value = {"id": 42, "name": "widget", "price": 9.99, "tags": ["a", "b", "c"]}
    name = f"bench:aio:{time.monotonic_ns()}"
    counter_on = BoundedCounter(on, name + ":c", min=0, max=None)
    counter_off = BoundedCounter(off, name + ":c", min=0, max=None)
    one_line = plain.register_script("return redis.call('INCR', KEYS[1])")
    cache_on = Cache(on, name + ":cache", ttl=600.0)
    cache_off = Cache(off, name + ":cache", ttl=600.0)
    await cache_on.set("p42", value)
    await plain.set(name + ":plain", json.dumps(value))

    def loader() -> Any:
        raise AssertionError("the benchmark's key must be a hit")

    groups: list[tuple[str, dict[str, Op], str]] = [
        ("counter.incr", {
            "one-line INCR script (register_script)": lambda: one_line(keys=[name + ":o"]),
            "BoundedCounter.incr (auto-pipelined)": counter_on.incr,
            "BoundedCounter.incr (auto-pipelining off)": counter_off.incr,
        }, "one-line INCR script (register_script)"),
        ("cache hit", {
            "redis-py GET (no decoding)": lambda: plain.get(name + ":plain"),
            "get_or_set hit (auto-pipelined)": lambda: cache_on.get_or_set("p42", loader),
            "get_or_set hit (auto-pipelining off)":
                lambda: cache_off.get_or_set("p42", loader),
        }, "redis-py GET (no decoding)"),
    ]
    ops = 1280 if quick else 6400
    rounds = 3 if quick else 9
    rows: list[Result] = []
    try:
        for tasks in (1, 64):
            for title, variants, baseline in groups:
                say(f"  {tasks} task(s): {title}")
                samples = await _interleaved(variants, tasks, ops if tasks > 1 else ops // 4,
                                             rounds, 8 if tasks == 1 else 5)
                base = samples[baseline]
                for case, s in samples.items():
                    ratio = None if case == baseline else statistics.median(
                        a / b for a, b in zip(s, base, strict=True))
                    rows.append(Result(
                        group=f"asyncio, {tasks} task{'s' if tasks > 1 else ''} on one "
                              f"client: {title}",
                        case=case, value=statistics.median(s), low=min(s), high=max(s),
                        baseline=None if case == baseline else baseline, ratio=ratio,
                        extra={"samples": s, "tasks": tasks},
                    ))
        pool = on.connection_pool
        rows.append(Result(
            group="asyncio, 64 tasks on one client: cache hit",
            case="connections of the auto-pipelined client",
            value=float(len(pool._available_connections) + len(pool._in_use_connections)),
            unit="connections", note="after all its variants ran (64 tasks each)"))
    finally:
        for c in (on, off, plain):
            await c.aclose()
    return rows


async def _cluster_run(startup: list[tuple[str, int]], quick: bool,
                       say: Callable[[str], None]) -> list[Result]:
    import redis.asyncio.cluster as rc

    from pyredis_atomic.asyncio import BoundedCounter, Cache, set_auto_pipelining

    def make() -> Any:
        return rc.RedisCluster(startup_nodes=[rc.ClusterNode(h, p) for h, p in startup])

    on, off, plain = make(), make(), make()
    for c in (on, off, plain):
        await c.initialize()
    set_auto_pipelining(False, off)
    names = [f"bench:aioc:{i}:{time.monotonic_ns()}" for i in range(8)]  # every primary
    script = plain.register_script("return redis.call('INCR', KEYS[1])")
    counters = {c: [BoundedCounter(c, n, min=0, max=None) for n in names] for c in (on, off)}
    caches = {c: [Cache(c, n, ttl=600.0) for n in names] for c in (on, off)}
    for cache in caches[on]:
        await cache.set("p42", {"id": 42})
    turn = [0]

    def nxt(xs: list[Any]) -> Any:
        turn[0] += 1
        return xs[turn[0] % len(xs)]

    def loader() -> Any:
        raise AssertionError("the benchmark's key must be a hit")

    plain_keys = [f"{{{n}}}:o" for n in names]
    base = "one-line INCR script (register_script)"
    variants: dict[str, Op] = {
        base: lambda: script(keys=[nxt(plain_keys)]),
        "BoundedCounter.incr (auto-pipelined)": lambda: nxt(counters[on]).incr(),
        "BoundedCounter.incr (auto-pipelining off)": lambda: nxt(counters[off]).incr(),
        "get_or_set hit (auto-pipelined)": lambda: nxt(caches[on]).get_or_set("p42", loader),
        "get_or_set hit (auto-pipelining off)":
            lambda: nxt(caches[off]).get_or_set("p42", loader),
    }
    say("  64 tasks on one cluster client (3 primaries)")
    rows: list[Result] = []
    try:
        samples = await _interleaved(variants, 64, 1280 if quick else 6400,
                                     3 if quick else 9, 5)
    finally:
        for c in (on, off, plain):
            await c.aclose()
    pairs = {"BoundedCounter.incr (auto-pipelined)": "BoundedCounter.incr (auto-pipelining off)",
             "get_or_set hit (auto-pipelined)": "get_or_set hit (auto-pipelining off)"}
    for case, s in samples.items():
        ref = pairs.get(case, base)  # auto-pipelined: against off, in the same rounds

        def per_round(other: str, s: list[float] = s) -> float:
            return statistics.median(a / b for a, b in zip(s, samples[other], strict=True))

        rows.append(Result(
            group="asyncio, 64 tasks on one cluster client (3 primaries, keys on all)",
            case=case, value=statistics.median(s), low=min(s), high=max(s),
            baseline=None if case == base else ref,
            ratio=None if case == base else per_round(ref),
            note="" if case not in pairs else f"{per_round(base):.2f}x the one-line script",
            extra={"samples": s, "tasks": 64}))
    return rows


def _cluster(quick: bool, say: Callable[[str], None]) -> list[Result]:
    try:
        from pyredis_atomic.testing import RedisClusterHarness

        harness = RedisClusterHarness(primaries=3).start()
    except Exception as exc:  # no redis-server binary here, ...
        return [Result(group="asyncio, 64 tasks on one cluster client", case="skipped",
                       value=0.0, unit="", note=f"no local cluster: {exc}")]
    try:
        startup = [(s.host, s.port) for s in harness.primaries]
        return asyncio.run(_cluster_run(startup, quick, say))
    finally:
        harness.cleanup()


def asyncio_tasks(b: Any) -> list[Result]:
    """The bench case (see the module docstring)."""
    return asyncio.run(_run(b.url, b.quick, b.say)) + _cluster(b.quick, b.say)
