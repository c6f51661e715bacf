"""Saturation: the most operations per second one Redis core serves, per primitive and per
native recipe, with Redis CPU time per operation (``INFO cpu`` delta).

Redis is pinned to one core and the client processes to the other (``sched_setaffinity``,
what ``taskset`` does) when the server is a local process and the machine has 2 cores or
more; otherwise nothing is pinned and the rows say so. Each client process sends its
operations in pipelines of ``DEPTH`` (what auto-pipelining does for an asyncio client with
many tasks, and the only way a few Python processes can keep one Redis core busy), for a
fixed time; every variant runs in turn, twice (in a full run), the order reversed. One
more variant sends the queue's operations one per round trip (today's sync clients, and
asyncio ones with auto-pipelining off): the server time of each round trip's read and write
is then part of every operation.

A few Python processes on one core cannot always keep Redis busy (the cheap native recipes
above all): each row says how busy the Redis core was, and the ceiling, the operations per
second that would fill it at the measured CPU cost per operation (1e6 / us per op), which
is the figure to compare when the clients are the limit.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from .timing import Result

__all__ = ["DEPTH", "saturation"]

DEPTH = 64  # operations per pipeline
PAYLOAD = b"x" * 100
REDIS_CORE, CLIENT_CORE = 1, 0

# (group, variant, kind, depth)
VARIANTS: list[tuple[str, str, str, int]] = [
    ("counter", "INCR", "incr", DEPTH),
    ("counter", "one-line INCR script (EVALSHA)", "one-line", DEPTH),
    ("counter", "BoundedCounter.incr", "counter", DEPTH),
    ("lock", "redis-py Lock (SET NX PX + release script)", "redis-py-lock", DEPTH),
    ("lock", "Lock acquire + release", "lock", DEPTH),
    ("queue", "raw LPUSH/LMOVE/LREM", "raw-list", DEPTH),
    ("queue", "Streams XADD/XREADGROUP/XACK", "streams", DEPTH),
    ("queue", "push + ack_and_pop", "queue", DEPTH),
    ("queue", "push + ack_and_pop, one call per round trip", "queue", 1),
]
BASELINES = {"counter": "INCR", "lock": "redis-py Lock (SET NX PX + release script)",
             "queue": "raw LPUSH/LMOVE/LREM"}


def _step(kind: str, client: redis.Redis, depth: int, wid: str) -> Callable[[], int]:
    """One pipeline of ``depth`` operations of ``kind``; returns how many were done."""
    from ..registry import default_registry, queue_evalsha

    registry = default_registry()
    registry.load(client)
    base = f"bench:sat:{wid}"
    if kind == "incr":
        def incr() -> int:
            pipe = client.pipeline(transaction=False)
            for _ in range(depth):
                pipe.incr(base)
            pipe.execute()
            return depth
        return incr
    if kind == "one-line":
        sha = client.script_load("return redis.call('INCR', KEYS[1])")

        def one_line() -> int:
            pipe = client.pipeline(transaction=False)
            for _ in range(depth):
                pipe.evalsha(sha, 1, base)
            pipe.execute()
            return depth
        return one_line
    if kind == "counter":
        from .._core.counter import CounterSpec

        counter_spec = CounterSpec(base, min=0, max=None)
        script = registry.get("counter_add")
        call = counter_spec.add_call(1)

        def counter() -> int:
            pipe = client.pipeline(transaction=False)
            for _ in range(depth):
                queue_evalsha(pipe, script, call)
            pipe.execute()
            return depth
        return counter
    if kind == "redis-py-lock":
        from redis.lock import Lock as RedisLock

        release = client.script_load(RedisLock.LUA_RELEASE_SCRIPT)
        names = [f"{base}:rp:{i}" for i in range(depth)]

        def rp_lock() -> int:
            pipe = client.pipeline(transaction=False)
            tokens = [uuid.uuid4().hex for _ in names]
            for n, t in zip(names, tokens, strict=True):
                pipe.set(n, t, nx=True, px=10_000)
            for n, t in zip(names, tokens, strict=True):
                pipe.evalsha(release, 1, n, t)
            pipe.execute()
            return depth
        return rp_lock
    if kind == "lock":
        from .._core.lock import LockSpec

        specs = [LockSpec(f"{base}:lk:{i}", 10.0) for i in range(depth)]
        acquire, release_script = registry.get("lock_acquire"), registry.get("lock_release")

        def lock() -> int:
            pipe = client.pipeline(transaction=False)
            tokens = [uuid.uuid4().hex for _ in specs]
            for s, t in zip(specs, tokens, strict=True):
                queue_evalsha(pipe, acquire, s.acquire_call(t))
            for s, t in zip(specs, tokens, strict=True):
                queue_evalsha(pipe, release_script, s.release_call(t, 0))
            pipe.execute()
            return depth
        return lock
    if kind == "raw-list":
        src, proc = f"{base}:src", f"{base}:proc"

        def raw() -> int:
            pipe = client.pipeline(transaction=False)
            for _ in range(depth):
                pipe.lpush(src, PAYLOAD)
            for _ in range(depth):
                pipe.lmove(src, proc, "RIGHT", "LEFT")
            for _ in range(depth):
                pipe.lrem(proc, 1, PAYLOAD.decode())
            pipe.execute()
            return depth
        return raw
    if kind == "streams":
        stream, group = f"{base}:stream", "g"
        with contextlib.suppress(redis.ResponseError):
            client.xgroup_create(stream, group, id="0", mkstream=True)
        read: list[Any] = []

        def streams() -> int:
            pipe = client.pipeline(transaction=False)
            for _ in range(depth):
                pipe.xadd(stream, {"p": PAYLOAD}, maxlen=100_000, approximate=True)
            for _ in range(depth):
                pipe.xreadgroup(group, "c", {stream: ">"}, count=1)
            if read:
                pipe.xack(stream, group, *read)
            replies = pipe.execute()
            read.clear()
            for reply in replies[depth:2 * depth]:
                entries = (reply[0][1] if isinstance(reply, list)
                           else next(iter(reply.values()))[0])
                read.extend(e[0] for e in entries)
            return depth
        return streams
    if kind == "queue":
        from .._core.queue import QueueSpec

        qspec = QueueSpec(f"{base}:q", visibility_timeout=60.0)
        push, claim = registry.get("queue_push"), registry.get("queue_claim")
        held: list[Any] = []

        def queue() -> int:
            pipe = client.pipeline(transaction=False)
            for _ in range(depth):
                queue_evalsha(pipe, push, qspec.push_call(PAYLOAD))
            if depth == 1:  # one call per round trip: the push, then the claim
                pipe.execute()
                pipe = client.pipeline(transaction=False)
            calls = [qspec.claim_call(1, (held[i],) if i < len(held) else ())
                     for i in range(depth)]
            for c in calls:
                queue_evalsha(pipe, claim, c)
            replies = pipe.execute()
            held.clear()
            for c, reply in zip(calls, replies[-depth:], strict=True):
                held.extend(c.decode(reply).messages)
            return depth
        return queue
    raise ValueError(kind)


def _worker(kind: str, url: str, depth: int, seconds: float, pin: bool, ready: Any,
            go: Any, out: Any) -> None:
    if pin:
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setaffinity(0, {CLIENT_CORE})
    client = redis.Redis.from_url(url)
    step = _step(kind, client, depth, uuid.uuid4().hex[:8])
    step()  # warm: scripts loaded, keys made
    ready.wait()
    go.wait()
    done = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        done += step()
    out.put(done)
    client.close()


def _cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _run(kind: str, url: str, depth: int, seconds: float, processes: int, pin: bool,
         client: Any) -> tuple[float, float]:
    """(operations per second, Redis CPU microseconds per operation)."""
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Barrier(processes + 1)
    go = ctx.Event()
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(kind, url, depth, seconds, pin, ready, go, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    ready.wait(timeout=120)
    cpu0, t0 = _cpu(client), time.monotonic()
    go.set()
    done = sum(out.get(timeout=seconds + 120) for _ in procs)
    elapsed = time.monotonic() - t0
    cpu1 = _cpu(client)
    for p in procs:
        p.join(30)
    return done / elapsed, (cpu1 - cpu0) * 1e6 / max(1, done)


def _pin_redis(client: Any) -> tuple[int | None, set[int] | None, str]:
    """Pin the server's process to REDIS_CORE if it is a local process we may pin:
    (pid, its old affinity, how it was placed)."""
    if (os.cpu_count() or 1) < 2 or not hasattr(os, "sched_setaffinity"):
        return None, None, "not pinned (fewer than 2 cores)"
    try:
        pid = int(client.info("server")["process_id"])
        old = os.sched_getaffinity(pid)
        os.sched_setaffinity(pid, {REDIS_CORE})
    except (OSError, KeyError, ValueError, redis.RedisError) as exc:
        return None, None, f"not pinned ({exc.__class__.__name__}: a remote server?)"
    return pid, old, f"redis-server on core {REDIS_CORE}, clients on core {CLIENT_CORE}"


def saturation(b: Any) -> list[Result]:
    """The bench case: one group per primitive (see the module docstring)."""
    seconds = 1.0 if b.quick else 3.0
    rounds = 1 if b.quick else 2
    processes = 2 if b.quick else 3
    pid, old, placement = _pin_redis(b.client)
    pin = pid is not None
    found: dict[str, list[tuple[float, float]]] = {v[1]: [] for v in VARIANTS}
    try:
        for r in range(rounds):
            for group, name, kind, depth in (VARIANTS if r % 2 == 0 else VARIANTS[::-1]):
                b.say(f"  {group}: {name} ({processes} processes, pipelines of {depth})")
                found[name].append(_run(kind, b.url, depth, seconds, processes, pin,
                                        b.client))
    finally:
        if pid is not None and old is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, old)
    rows = []
    for group, name, _, depth in VARIANTS:
        rates = [x[0] for x in found[name]]
        cpus = [x[1] for x in found[name]]
        base_name = BASELINES[group]
        base = statistics.median(x[0] for x in found[base_name])
        value = statistics.median(rates)
        cpu = statistics.median(cpus)
        # what one Redis core serves at this CPU cost, once the clients can keep it busy
        ceiling = 1e6 / cpu if cpu > 0 else float("inf")
        rows.append(Result(
            group=f"saturation, {group} ({placement}; {processes} client processes)",
            case=name, value=value, low=min(rates), high=max(rates),
            baseline=None if name == base_name else base_name,
            ratio=None if name == base_name else value / base,
            note=(f"Redis CPU {cpu:.1f} us/op (busy {value * cpu / 1e4:.0f}% of its core; "
                  f"{ceiling:,.0f} ops/s would fill it); pipelines of {depth}"),
            extra={"redis_cpu_us_per_op": cpu, "depth": depth, "rates": rates,
                   "ceiling_ops_per_s": ceiling},
        ))
    return rows
