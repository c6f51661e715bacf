"""The benchmark cases: ours against the recipes and libraries people use today, on the
same server in the same run. Each case function returns rows for the table."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from . import contention, near
from .timing import Result, Stat, interleaved

__all__ = ["CASES", "Bench"]


@dataclass
class Bench:
    """What every case needs: a client, the server URL, the size of the run, progress."""

    client: redis.Redis
    url: str
    quick: bool
    say: Callable[[str], None]

    @property
    def ops(self) -> int:
        """Operations per timed round."""
        return 200 if self.quick else 1000

    @property
    def rounds(self) -> int:
        """Timed rounds per variant (the table shows their median, min and max)."""
        return 3 if self.quick else 13

    @property
    def seconds(self) -> float:
        """Duration of a multi-process run."""
        return 0.5 if self.quick else 5.0

    @property
    def workers(self) -> int:
        """Processes in a contention case (8, as the issues ask; 4 in a smoke run)."""
        return 4 if self.quick else 8

    def time(self, variants: dict[str, Callable[[], object]], ops: int | None = None,
             rounds: int | None = None) -> dict[str, Stat]:
        """Interleaved timing of the variants."""
        n = ops or self.ops
        return interleaved(variants, ops=n, rounds=rounds or self.rounds,
                           warmup_ops=max(20, n // 5), progress=self.say)

    def fresh(self) -> str:
        """A key name no other case uses."""
        return f"bench:{uuid.uuid4().hex[:12]}"


def _ratio(st: Stat, base: Stat, paired: bool) -> float:
    """``st`` against ``base``. Paired (variants timed back to back in each round): the
    median of the per-round ratios, so load that drifts between rounds cancels out;
    otherwise the ratio of the medians."""
    if paired and len(st.samples) == len(base.samples):
        return statistics.median(a / b for a, b in zip(st.samples, base.samples, strict=True))
    return st.median / base.median


def _rows(group: str, stats: dict[str, Stat], baseline: str | None,
          notes: dict[str, str] | None = None, *, paired: bool = True) -> list[Result]:
    base = stats[baseline] if baseline else None
    rows = []
    for name, st in stats.items():
        rows.append(Result(
            group=group, case=name, value=st.median, low=st.low, high=st.high,
            baseline=baseline if baseline and name != baseline else None,
            ratio=_ratio(st, base, paired) if base and name != baseline else None,
            note=(notes or {}).get(name, ""),
            extra={"samples": st.samples},
        ))
    return rows


# -- round-trip floor -----------------------------------------------------------------------
def floor(b: Bench) -> list[Result]:
    """redis-py PING, GET, INCR: the physical limit for a one-round-trip operation."""
    c = b.client
    key = b.fresh()
    c.set(key, "x" * 100)
    counter = b.fresh()
    stats = b.time({
        "PING": c.ping,
        "GET (100 B)": lambda: c.get(key),
        "INCR": lambda: c.incr(counter),
    })
    return _rows("floor", stats, "PING")


# -- lock -----------------------------------------------------------------------------------
def lock_uncontended(b: Bench) -> list[Result]:
    """Acquire + release, nobody else around."""
    import redis_lock
    from pottery import Redlock

    from pyredis_atomic import Lock

    c = b.client
    name = b.fresh()
    ours = Lock(c, name, ttl=10.0)

    def ours_cycle() -> None:
        ours.acquire(blocking=False)
        ours.release()

    rp = c.lock(name + ":rp", timeout=10)

    def rp_cycle() -> None:
        rp.acquire(blocking=False)
        rp.release()

    prl = redis_lock.Lock(c, name + ":prl", expire=10)

    def prl_cycle() -> None:
        prl.acquire(blocking=False)
        prl.release()

    pot = Redlock(key=name + ":pottery", masters={c}, auto_release_time=10)

    def pot_cycle() -> None:
        pot.acquire(blocking=False)
        pot.release()

    bare_key = name + ":bare"

    def bare_cycle() -> None:
        token = uuid.uuid4().hex
        c.set(bare_key, token, nx=True, px=10000)
        c.delete(bare_key)

    stats = b.time({
        "redis-py Lock": rp_cycle,
        "pyredis-atomic Lock": ours_cycle,
        "python-redis-lock": prl_cycle,
        "pottery Redlock (1 master)": pot_cycle,
        "bare SET NX PX + DEL (unsafe)": bare_cycle,
    })
    return _rows("lock, uncontended acquire+release", stats, "redis-py Lock")


# (title, hold, away): the first is the workload, a short critical section (the
# targets apply to it); the second shows where a longer hold caps every lock alike.
CONTENDED_WORKLOADS = (
    ("lock, contended", 0.0005, 0.004),
    ("lock, contended, longer hold", 0.002, 0.004),
)


def lock_contended(b: Bench) -> list[Result]:
    """8 processes (4 in a quick run) loop: acquire, hold (a short wait, as on an I/O call),
    release, stay away a little; others always wait. Two workloads: a short critical
    section (0.5 ms) and a longer one (2 ms)."""
    rows = []
    variants = [
        ("pyredis-atomic Lock", "ours"),
        ("redis-py Lock (sleep=0.1, default)", "redis-py"),
        ("redis-py Lock (sleep=0.001)", "redis-py-1ms"),
        ("python-redis-lock", "python-redis-lock"),
    ]
    baseline = "redis-py Lock (sleep=0.1, default)"
    for title, hold, away in CONTENDED_WORKLOADS:
        group = (f"{title} ({b.workers} processes, hold {hold * 1000:g} ms, "
                 f"away {away * 1000:g} ms)")
        summaries = {}
        for label, kind in variants:
            b.say(f"  {b.workers} processes, hold {hold * 1000:g} ms: {label}")
            per_worker = contention.run_workers(
                contention.lock_worker, b.workers, kind, b.url, b.fresh(), b.seconds, hold,
                away,
            )
            summaries[label] = contention.summarize_handoffs(per_worker)
        base = summaries[baseline]["throughput"]
        for label, s in summaries.items():
            rows.append(Result(
                group=group, case=label, value=s["throughput"], unit="acq/s",
                baseline=None if label == baseline else baseline,
                ratio=None if label == baseline else (s["throughput"] / base if base else None),
                note=(f"hand-off median {s['handoff_median_ms']:.2f} ms, "
                      f"p90 {s['handoff_p90_ms']:.2f} ms; share per worker "
                      f"{s['share_min']:.0%}-{s['share_max']:.0%}"),
                extra=s,
            ))
    return rows


# -- queue ----------------------------------------------------------------------------------
def queue_single(b: Bench) -> list[Result]:
    """One message pushed, popped and acknowledged."""
    from pyredis_atomic import ReliableQueue

    c: Any = b.client  # redis-py's stubs type these replies loosely
    payload = b"x" * 100
    q = ReliableQueue(c, b.fresh(), visibility_timeout=30.0)
    q2 = ReliableQueue(c, b.fresh(), visibility_timeout=30.0)
    state: dict[str, Any] = {"msg": None}

    def ours_three_calls() -> None:
        q.push(payload)
        m = q.pop()
        assert m is not None
        q.ack(m)

    def ours_ack_and_pop() -> None:
        # Steady-state consumer loop: ack the previous message and claim the next in one call.
        q2.push(payload)
        if state["msg"] is None:
            state["msg"] = q2.pop()
        else:
            _, state["msg"] = q2.ack_and_pop(state["msg"])

    lst, proc = b.fresh(), b.fresh()

    def raw_list() -> None:
        c.lpush(lst, payload)
        m = c.lmove(lst, proc, "RIGHT", "LEFT")
        c.lrem(proc, 1, m)

    stream, group = b.fresh(), "g"
    c.xgroup_create(stream, group, id="0", mkstream=True)

    def streams() -> None:
        c.xadd(stream, {"p": payload})
        reply = c.xreadgroup(group, "c1", {stream: ">"}, count=1)
        entries = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0]
        c.xack(stream, group, entries[0][0])

    stats = b.time({
        "raw LPUSH/LMOVE/LREM": raw_list,
        "pyredis-atomic push+ack_and_pop": ours_ack_and_pop,
        "pyredis-atomic push/pop/ack": ours_three_calls,
        "Streams XADD/XREADGROUP/XACK": streams,
    })
    return _rows("queue, one message push -> pop -> ack", stats, "raw LPUSH/LMOVE/LREM")


def queue_batched(b: Bench) -> list[Result]:
    """100 messages per call: push_many, pop_many, ack_many; messages per second."""
    from pyredis_atomic import ReliableQueue

    c = b.client
    payloads = [b"x" * 100] * 100
    q = ReliableQueue(c, b.fresh(), visibility_timeout=30.0)
    single = ReliableQueue(c, b.fresh(), visibility_timeout=30.0)

    def batch() -> None:
        q.push_many(payloads)
        q.ack_many(q.pop_many(100))

    def ten_singles() -> None:
        for _ in range(10):
            single.push(b"x" * 100)
            m = single.pop()
            assert m is not None
            single.ack(m)

    # Both variants in one interleaved run (paired ratios): ten single cycles per call
    # against one batch of 100 per call, each converted to messages per second.
    one_name = "push/pop/ack, 1 per call"
    batch_name = "push_many/pop_many/ack_many, 100 per call"
    stats = b.time({one_name: ten_singles, batch_name: batch}, ops=max(10, b.ops // 20))
    stats[one_name] = Stat([x * 10 for x in stats[one_name].samples])
    stats[batch_name] = Stat([x * 100 for x in stats[batch_name].samples])
    rows = _rows("queue, batched (messages/s)", stats, one_name)
    for r in rows:
        r.unit = "msg/s"
    return rows


def queue_ack_flat(b: Bench) -> list[Result]:
    """Cost of one ack with 1k, 10k and 100k messages in flight (must stay flat); the sizes
    are timed in interleaved rounds, like every other case."""
    from pyredis_atomic import ReliableQueue

    c = b.client
    sizes = [1_000, 10_000] if b.quick else [1_000, 10_000, 100_000]
    per_round = 100 if b.quick else 300
    rounds = 3 if b.quick else 5
    warmup = 20
    extra = warmup + per_round * rounds  # the messages that get acked
    queues = []
    variants: dict[str, Callable[[], object]] = {}
    for size in sizes:
        q = ReliableQueue(c, b.fresh(), visibility_timeout=600.0)
        queues.append(q)
        b.say(f"  putting {size + extra:,} messages in flight")
        for start in range(0, size, 1000):
            batch = min(1000, size - start)
            q.push_many([b"m"] * batch)
            q.pop_many(batch)
        # The acked ones come on top, so each queue keeps at least ``size`` in flight.
        leases = iter(_in_flight(q, extra))

        def ack_one(q: Any = q, leases: Any = leases) -> None:
            q.ack(next(leases))

        variants[f"ack with {size:,} in flight"] = ack_one
    stats = interleaved(variants, ops=per_round, rounds=rounds, warmup_ops=warmup,
                        progress=b.say)
    for q in queues:
        q.purge()
    return _rows("queue, ack cost vs in-flight count", stats, "ack with 1,000 in flight")


def _in_flight(q: Any, n: int) -> list[Any]:
    """Push and claim ``n`` more messages (their receipts, for acking)."""
    out: list[Any] = []
    while len(out) < n:
        k = min(100, n - len(out))
        q.push_many([b"a"] * k)
        out.extend(q.pop_many(k))
    return out


# -- cache ----------------------------------------------------------------------------------
def cache_hit(b: Bench) -> list[Result]:
    """get_or_set on a hit (one round trip + decoding) against a plain GET of the value."""
    from pyredis_atomic import Cache

    c = b.client
    cache = Cache(c, b.fresh(), ttl=600.0)
    value = {"id": 42, "name": "widget", "price": 9.99, "tags": ["a", "b", "c"]}
    cache.set("p42", value)
    plain = b.fresh()
    c.set(plain, json.dumps(value))

    def loader() -> Any:
        raise AssertionError("the benchmark's key must be a hit")

    stats = b.time({
        "redis-py GET (no decoding)": lambda: c.get(plain),
        "redis-py GET + json.loads": lambda: json.loads(c.get(plain) or b"null"),
        "pyredis-atomic get_or_set (hit)": lambda: cache.get_or_set("p42", loader),
    })
    return _rows("cache, hit", stats, "redis-py GET (no decoding)")


def _stampede(b: Bench, ours: bool) -> tuple[int, int]:
    """(loader calls, callers that got the value) for 32 simultaneous callers."""
    from pyredis_atomic import Cache

    calls = 0
    lock = threading.Lock()

    def loader() -> dict[str, int]:
        nonlocal calls
        with lock:
            calls += 1
        time.sleep(0.05)
        return {"v": 1}

    clients = [redis.Redis.from_url(b.url) for _ in range(32)]
    name = b.fresh()
    barrier = threading.Barrier(32)
    got: list[Any] = []

    def caller(cl: redis.Redis) -> None:
        barrier.wait()
        if ours:
            got.append(Cache(cl, name, ttl=60.0).get_or_set("k", loader))
            return
        raw = cl.get(name)
        if raw is None:
            value = loader()
            cl.set(name, json.dumps(value), ex=60)
        else:
            value = json.loads(raw)
        got.append(value)

    threads = [threading.Thread(target=caller, args=(cl,)) for cl in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for cl in clients:
        cl.close()
    return calls, sum(1 for g in got if g == {"v": 1})


def cache_stampede(b: Bench) -> list[Result]:
    """32 threads ask for the same cold key at once; the loader takes 50 ms."""
    rows = []
    for label, ours in (("pyredis-atomic get_or_set", True), ("naive GET then SET", False)):
        calls, served = _stampede(b, ours)
        rows.append(Result(group="cache, cold-key stampede (32 callers, 50 ms loader)",
                           case=label, value=calls, unit="loader calls",
                           note=f"{served}/32 callers got the value"))
    return rows


# -- counters -------------------------------------------------------------------------------
def counter_single(b: Bench) -> list[Result]:
    """Bounded incr against raw INCR and the floor for any Lua call."""
    from pyredis_atomic import BoundedCounter

    c = b.client
    bounded = BoundedCounter(c, b.fresh(), min=0, max=None)
    raw = b.fresh()
    one_line = c.register_script("return redis.call('INCR', KEYS[1])")
    floor_key = b.fresh()
    stats = b.time({
        "Lua floor: 1-line EVALSHA (register_script)": lambda: one_line(keys=[floor_key]),
        "raw INCR": lambda: c.incr(raw),
        "pyredis-atomic BoundedCounter.incr": bounded.incr,
    })
    return _rows("counter, single client", stats, "Lua floor: 1-line EVALSHA (register_script)")


def counter_contended(b: Bench) -> list[Result]:
    """8 processes (4 in a quick run) take and give back slots of a counter bounded at 5."""
    rows = []
    summaries = {}
    for label, kind in (("pyredis-atomic BoundedCounter", "ours"),
                        ("WATCH/MULTI", "watch-multi"),
                        ("GET, check, INCR (unsafe)", "get-check-incr")):
        b.say(f"  {b.workers} processes: {label}")
        per = contention.run_workers(contention.counter_worker, b.workers, kind, b.url, b.fresh(),
                                     b.seconds, 5)
        its = sum(p[0] for p in per)
        summaries[label] = (its / b.seconds, sum(p[1] for p in per))
    base = summaries["WATCH/MULTI"][0]
    for label, (rate, violations) in summaries.items():
        rows.append(Result(
            group=f"counter, {b.workers} processes, bound 5", case=label, value=rate,
            unit="iter/s",
            baseline=None if label == "WATCH/MULTI" else "WATCH/MULTI",
            ratio=None if label == "WATCH/MULTI" else (rate / base if base else None),
            note=f"{violations} bound violations", extra={"violations": violations},
        ))
    return rows


# -- rate limiter ---------------------------------------------------------------------------
def ratelimit(b: Bench) -> list[Result]:
    """One hit, allowed, against the limits library's Redis strategies."""
    from limits import parse
    from limits.storage import RedisStorage
    from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

    from pyredis_atomic import RateLimiter

    storage = RedisStorage(b.url.replace("redis://", "redis://", 1))
    item = parse("1000000000/hour")
    fixed = FixedWindowRateLimiter(storage)
    moving = MovingWindowRateLimiter(storage)
    ours = RateLimiter(b.client, b.fresh(), rate=1_000_000_000, period=3600.0, burst=1_000_000)
    k1, k2 = b.fresh(), b.fresh()
    stats = b.time({
        "limits moving-window": lambda: moving.hit(item, k1),
        "limits fixed-window": lambda: fixed.hit(item, k2),
        "pyredis-atomic RateLimiter.hit (GCRA)": ours.hit,
    })
    with contextlib.suppress(Exception):
        storage.reset()
    return _rows("rate limiter, hit", stats, "limits moving-window")


def functions_vs_scripts(b: Bench) -> list[Result]:
    """Every primitive with FCALL and with EVALSHA (see ``bench/functions.py``)."""
    from .functions import functions_vs_scripts as run

    return run(b)


def instrumentation(b: Bench) -> list[Result]:
    """The OpenTelemetry instrumentation off and on (see ``bench/instrumentation.py``)."""
    from .instrumentation import instrumentation as run

    return run(b)


def _asyncio_tasks(b: Bench) -> list[Result]:
    """asyncio, 1 and 64 tasks on one client, auto-pipelining on and off (see
    ``bench/asyncio_tasks.py``)."""
    from .asyncio_tasks import asyncio_tasks

    return asyncio_tasks(b)


def _server_ops(b: Bench) -> list[Result]:
    """Redis server time per operation, ours vs the native recipes (``bench/server_ops.py``)."""
    from .server_ops import server_ops

    return server_ops(b)


def _saturation(b: Bench) -> list[Result]:
    """Maximum operations per second of one Redis core (``bench/saturation.py``)."""
    from .saturation import saturation

    return saturation(b)


# -- queue worker ------------------------------------------------------------------------
# Commands a consumer sends (commandstats also counts the commands run inside scripts:
# only these top-level ones are summed, so a script's time is counted once).
_CONSUMER_COMMANDS = ("evalsha", "evalsha_ro", "eval", "blpop", "lmove", "lrem", "xreadgroup",
                      "xack")
WORKER_RECIPE = "raw list recipe (LMOVE + LREM per message)"
WORKER_STREAMS = "Streams XREADGROUP/XACK, 1 per call"
WORKER_STREAMS_BATCH = "Streams XREADGROUP/XACK, 100 per call"


def _server_usec(c: Any) -> float:
    stats = c.info("commandstats")
    return sum(float(stats.get(f"cmdstat_{cmd}", {}).get("usec", 0))
               for cmd in _CONSUMER_COMMANDS)


def queue_worker(b: Bench) -> list[Result]:
    """The queue worker's throughput with an empty handler (concurrency 1 and 16, prefetch
    off and on; the asyncio Worker at concurrency 16) against the consumer loops people
    write today: the raw list recipe (LMOVE to a processing list, LREM when done) and
    Streams (XREADGROUP / XACK). Each variant drains the same number of pre-filled messages
    per round, variants in rotating turns; Redis server time per message (INFO
    commandstats, the consumer's commands only) is shown next to it."""
    from pyredis_atomic import ReliableQueue, Worker

    c: Any = b.client
    n = 500 if b.quick else 4000
    rounds = 2 if b.quick else 5
    payload = b"x" * 100

    def worker_variant(concurrency: int,
                       prefetch: int | None) -> Callable[[], tuple[float, float]]:
        q = ReliableQueue(c, b.fresh(), visibility_timeout=30.0)

        def fill() -> None:
            for i in range(0, n, 1000):
                q.push_many([payload] * min(1000, n - i))

        def drain() -> Callable[[], None]:
            w = Worker(q, lambda m: None, concurrency=concurrency, prefetch=prefetch,
                       poll=0.05, signals=False)
            t = threading.Thread(target=w.run, daemon=True)
            t.start()
            while w.counts.acked < n:
                time.sleep(0.001)
            # Stopped after the server time is read: the idle claims of a stopping worker
            # are not part of its cost per message.
            return lambda: _stop(w, t)

        return _timed(c, fill, drain)

    def async_worker_variant(concurrency: int,
                             prefetch: int | None) -> Callable[[], tuple[float, float]]:
        # The asyncio Worker on its own event loop and redis.asyncio client; timed from
        # its start to its n-th ack (the client's connection set up before).
        name = b.fresh()
        q = ReliableQueue(c, name, visibility_timeout=30.0)

        async def consume() -> tuple[float, float]:
            import redis.asyncio

            from pyredis_atomic.asyncio import ReliableQueue as AsyncQueue
            from pyredis_atomic.asyncio import Worker as AsyncWorker

            ac = redis.asyncio.Redis.from_url(b.url)
            try:
                await ac.ping()
                aq = AsyncQueue(ac, name, visibility_timeout=30.0)

                async def handle(msg: Any) -> None:
                    return None

                w = AsyncWorker(aq, handle, concurrency=concurrency, prefetch=prefetch,
                                poll=0.05, signals=False)
                c.config_resetstat()
                start = time.perf_counter()
                task = asyncio.create_task(w.run())
                while w.counts.acked < n:  # polled like the sync variant's  # noqa: ASYNC110
                    await asyncio.sleep(0.001)
                elapsed = time.perf_counter() - start
                usec = _server_usec(c)  # before the stop, as for the sync worker
                w.stop(grace=5.0)
                await asyncio.wait_for(task, 10.0)
                return elapsed, usec
            finally:
                await ac.aclose()

        def run() -> tuple[float, float]:
            for i in range(0, n, 1000):
                q.push_many([payload] * min(1000, n - i))
            return asyncio.run(consume())

        return run

    def recipe() -> Callable[[], tuple[float, float]]:
        src, proc = b.fresh(), b.fresh()

        def fill() -> None:
            for i in range(0, n, 1000):
                c.rpush(src, *([payload] * min(1000, n - i)))

        def drain() -> None:
            for _ in range(n):
                m = c.lmove(src, proc, "LEFT", "RIGHT")
                c.lrem(proc, 1, m)

        return _timed(c, fill, drain)

    def streams(count: int) -> Callable[[], tuple[float, float]]:
        stream, group = b.fresh(), "g"
        c.xgroup_create(stream, group, id="0", mkstream=True)

        def fill() -> None:
            pipe = c.pipeline(transaction=False)
            for _ in range(n):
                pipe.xadd(stream, {"p": payload})
            pipe.execute()

        def drain() -> None:
            got = 0
            while got < n:
                reply = c.xreadgroup(group, "c1", {stream: ">"}, count=count)
                entries = (reply[0][1] if isinstance(reply, list)
                           else next(iter(reply.values()))[0])
                c.xack(stream, group, *[e[0] for e in entries])
                got += len(entries)
            c.xtrim(stream, maxlen=0)

        return _timed(c, fill, drain)

    variants: dict[str, Callable[[], tuple[float, float]]] = {
        WORKER_RECIPE: recipe(),
        WORKER_STREAMS: streams(1),
        WORKER_STREAMS_BATCH: streams(100),
        "Worker, concurrency 1, no prefetch": worker_variant(1, None),
        "Worker, concurrency 16, no prefetch": worker_variant(16, None),
        "Worker, concurrency 1, prefetch 100": worker_variant(1, 100),
        "Worker, concurrency 16, prefetch 100": worker_variant(16, 100),
        "asyncio Worker, concurrency 16, no prefetch": async_worker_variant(16, None),
        "asyncio Worker, concurrency 16, prefetch 100": async_worker_variant(16, 100),
    }
    samples: dict[str, list[float]] = {k: [] for k in variants}
    usec: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            elapsed, server = variants[name]()
            samples[name].append(n / elapsed)
            usec[name].append(server / n)
        b.say(f"  round {r + 1}/{rounds} done")
    stats = {k: Stat(v) for k, v in samples.items()}
    rows = _rows("queue worker, empty handler (messages/s)", stats, WORKER_RECIPE)
    for row in rows:
        row.unit = "msg/s"
        per = sorted(usec[row.case])
        row.extra["server_us_per_msg"] = per[len(per) // 2]
        row.note = f"{per[len(per) // 2]:.1f} us server time per message"
    return rows


def _timed(c: Any, fill: Callable[[], None],
           drain: Callable[[], Callable[[], None] | None]) -> Callable[[], tuple[float, float]]:
    """Fill, then time ``drain`` (which may return a clean-up, run after the server time is
    read); (seconds, server microseconds of the consumer's commands)."""
    def run() -> tuple[float, float]:
        fill()
        c.config_resetstat()
        start = time.perf_counter()
        cleanup = drain()
        elapsed = time.perf_counter() - start
        usec = _server_usec(c)
        if cleanup is not None:
            cleanup()
        return elapsed, usec
    return run


def _stop(w: Any, t: threading.Thread) -> None:
    w.stop(grace=5.0)
    t.join(10.0)


CASES: list[tuple[str, Callable[[Bench], list[Result]]]] = [
    ("round-trip floor", floor),
    ("lock uncontended", lock_uncontended),
    ("lock contended", lock_contended),
    ("queue single", queue_single),
    ("queue batched", queue_batched),
    ("queue ack vs in-flight", queue_ack_flat),
    ("queue worker", queue_worker),
    ("cache hit", cache_hit),
    ("cache stampede", cache_stampede),
    ("near cache hit", near.near_hit),
    ("near cache invalidation", near.near_invalidation),
    ("near cache staleness", near.near_staleness),
    ("near cache memory", near.near_memory),
    ("near cache tracking mode", near.near_tracking_mode),
    ("counter", counter_single),
    ("counter contended", counter_contended),
    ("rate limiter", ratelimit),
    ("instrumentation", instrumentation),
    ("functions (FCALL vs EVALSHA)", functions_vs_scripts),
    ("asyncio tasks", _asyncio_tasks),
    ("server time per op", _server_ops),
    ("saturation", _saturation),
]
