"""Redis server time per operation (``INFO commandstats``, top-level commands only), ours
against the native recipes, in one run: what decides how many operations one Redis core
serves once the clients are many. Variants take turns in short rounds (the same load for
all); each round resets the statistics, runs a few hundred operations of one variant and
sums the ``usec`` of that variant's own top-level commands (commandstats also counts the
commands a script runs, which its EVALSHA's time already includes)."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .timing import Result

__all__ = ["Variant", "measure", "server_ops"]


@dataclass
class Variant:
    """One operation (a call of ``run``) and the top-level commands it sends."""

    name: str
    run: Callable[[], object]
    commands: tuple[str, ...]


def _usec(stats: dict[str, Any], commands: tuple[str, ...]) -> tuple[float, int]:
    usec = calls = 0.0
    for cmd in commands:
        entry = stats.get(f"cmdstat_{cmd}")
        if entry:
            usec += float(entry["usec"])
            calls += int(entry["calls"])
    return usec, int(calls)


def measure(c: Any, variants: list[Variant], *, ops: int, rounds: int) -> dict[str, list[float]]:
    """Microseconds of server time per operation, one sample per round and variant."""
    out: dict[str, list[float]] = {v.name: [] for v in variants}
    for v in variants:  # warm-up: scripts loaded, keys created
        for _ in range(20):
            v.run()
    for r in range(rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for v in order:
            c.config_resetstat()
            for _ in range(ops):
                v.run()
            usec, _ = _usec(c.info("commandstats"), v.commands)
            out[v.name].append(usec / ops)
    return out


def _fresh() -> str:
    return f"bench:{uuid.uuid4().hex[:12]}"


def groups(c: Any) -> list[tuple[str, list[Variant], str]]:
    """(group title, variants, baseline) of each comparison."""
    from pyredis_atomic import BoundedCounter, Cache, Lock, ReliableQueue

    ev = ("evalsha", "evalsha_ro")
    out: list[tuple[str, list[Variant], str]] = []

    # counter
    bounded = BoundedCounter(c, _fresh(), min=0, max=None)
    one_line = c.register_script("return redis.call('INCR', KEYS[1])")
    k1, k2 = _fresh(), _fresh()
    out.append(("counter incr", [
        Variant("one-line INCR script", lambda: one_line(keys=[k1]), ev),
        Variant("INCR", lambda: c.incr(k2), ("incrby",)),
        Variant("BoundedCounter.incr", bounded.incr, ev),
    ], "one-line INCR script"))

    # lock
    name = _fresh()
    ours = Lock(c, name, ttl=10.0)
    rp = c.lock(name + ":rp", timeout=10)

    def ours_cycle() -> None:
        ours.acquire(blocking=False)
        ours.release()

    def rp_cycle() -> None:
        rp.acquire(blocking=False)
        rp.release()

    out.append(("lock acquire + release", [
        Variant("redis-py Lock", rp_cycle, ("set", "evalsha")),
        Variant("Lock", ours_cycle, ev),
    ], "redis-py Lock"))

    # queue
    payload = b"x" * 100
    q = ReliableQueue(c, _fresh(), visibility_timeout=30.0)
    q2 = ReliableQueue(c, _fresh(), visibility_timeout=30.0)
    state: dict[str, Any] = {"msg": None}

    def three() -> None:
        q.push(payload)
        m = q.pop()
        assert m is not None
        q.ack(m)

    def ack_and_pop() -> None:
        q2.push(payload)
        if state["msg"] is None:
            state["msg"] = q2.pop()
        else:
            _, state["msg"] = q2.ack_and_pop(state["msg"])

    lst, proc = _fresh(), _fresh()

    def raw() -> None:
        c.lpush(lst, payload)
        m = c.lmove(lst, proc, "RIGHT", "LEFT")
        c.lrem(proc, 1, m)

    out.append(("queue cycle", [
        Variant("LPUSH/LMOVE/LREM", raw, ("lpush", "lmove", "lrem")),
        Variant("push + ack_and_pop", ack_and_pop, ev),
        Variant("push/pop/ack", three, ev),
    ], "LPUSH/LMOVE/LREM"))

    # cache hit
    cache = Cache(c, _fresh(), ttl=600.0)
    cache.set("k", {"v": 1})
    plain = _fresh()
    c.set(plain, b'{"v": 1}')

    def loader() -> Any:
        raise AssertionError("must be a hit")

    out.append(("cache hit", [
        Variant("GET", lambda: c.get(plain), ("get",)),
        Variant("Cache.get_or_set (hit)", lambda: cache.get_or_set("k", loader),
                (*ev, "get")),
    ], "GET"))
    return out


def server_ops(b: Any) -> list[Result]:
    """The bench case: one group per primitive, server us/op and the ratio to its baseline."""
    c = b.client
    ops = 100 if b.quick else 400
    rounds = 3 if b.quick else 9
    rows: list[Result] = []
    for title, variants, baseline in groups(c):
        b.say(f"  {title}")
        samples = measure(c, variants, ops=ops, rounds=rounds)
        base = samples[baseline]
        for v in variants:
            s = samples[v.name]
            ratio = None
            if v.name != baseline:
                ratio = statistics.median(a / x for a, x in zip(s, base, strict=True) if x)
            rows.append(Result(
                group=f"server time per operation (INFO commandstats): {title}",
                case=v.name, value=statistics.median(s), unit="us/op", low=min(s),
                high=max(s), baseline=baseline if ratio is not None else None, ratio=ratio,
                note=" + ".join(x.upper() for x in v.commands), extra={"samples": s},
            ))
    return rows
