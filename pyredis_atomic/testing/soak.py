"""A chaos soak: every primitive from several processes while a controller injects faults
at random, a history of what each process saw acknowledged, and a check of it at the end.

Run it as ``scripts/soak --minutes N`` (``--help`` for the options). The set-up is a
Sentinel deployment (master, replica, three sentinels, AOF with ``appendfsync always``)
inside a network namespace when this process may make one (root), so a cut of its link
partitions every worker from every server; a fenced resource on a separate server outside.
Workers (one process each, respawned when killed):

* ``producer``: durable pushes (``Durability(1)``) with a dedup key, re-sent until
  acknowledged; ``consumer``: blocking pops and acks;
* ``locker``: a durable lock, a fenced write while held;
* ``counter``: increments with a ``request_id`` (through ``run_durable``), and a bounded
  counter in ``[0, 20]`` moved up and down;
* ``semaphore``: a limit-3 semaphore, held briefly; ``cacher``: ``get_or_set`` with a loader
  whose value the reader checks; ``limiter``: rate-limiter hits.

Faults (one at a time): SIGKILL or SIGSTOP (0.5-3 s) of a worker, a SIGKILL and restart of
the master (AOF), ``SCRIPT FLUSH``, ``SENTINEL FAILOVER``, a partition of 1-3 s.

Checks at the end (exit status 1 if any fails): no acknowledged durable push is lost (each
is delivered, the queue is drained at the end); no two durable acquisitions got the same
fence and the fenced resource never went backwards; the request-id counter equals the
acknowledged increments (plus those whose reply a kill cut off, each 0 or 1); the bounded
counter never left its bounds and ends at the sum of the acknowledged deltas (same
allowance); the semaphore never had more holders than its limit; every cache read returned
the loader's value; the limiter never allowed more than its burst plus its rate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import redis

from .server import RedisServerError

__all__ = ["main"]

LIMIT = 3            # semaphore limit
BOUND_MAX = 20       # the bounded counter's max
RATE, BURST = 50.0, 10  # the limiter: 50 hits/s, burst 10
DURABLE_TIMEOUT = 0.5
SOCKET_TIMEOUT = 2.0  # above the durability timeout (see docs/sentinel.md)
KINDS = ["producer", "producer", "consumer", "consumer", "locker", "locker", "counter",
         "semaphore", "semaphore", "cacher", "limiter"]


# -- workers ----------------------------------------------------------------------------------
class History:
    """Append-only JSON lines, flushed per record (a SIGKILL loses nothing written)."""

    def __init__(self, path: Path) -> None:
        self._f = path.open("a", buffering=1)

    def add(self, **record: Any) -> None:
        record["t"] = time.time()
        self._f.write(json.dumps(record) + "\n")


def _retrying(what: Any, *, patience: float = 300.0) -> tuple[Any, bool]:
    """Call ``what`` until it answers; (result, re-sent?). Patient: the controller waits up
    to 180 s for a Sentinel set that is still reconfiguring (an automatic failover after a
    restart), and a worker that gave up sooner would die with nothing wrong."""
    from pyredis_atomic import AtomicError

    resent = False
    end = time.monotonic() + patience
    while True:
        try:
            return what(), resent
        except (redis.ConnectionError, redis.TimeoutError, AtomicError,
                redis.ResponseError):
            if time.monotonic() > end:
                raise
            resent = True
            time.sleep(0.1)


def _worker(kind: str, wid: str, config: dict[str, Any]) -> None:
    from pyredis_atomic import (
        Cache,
        Durability,
        Lock,
        RateLimiter,
        ReliableQueue,
        Semaphore,
    )
    from pyredis_atomic._core.counter import CounterSpec
    from pyredis_atomic.registry import default_registry
    from pyredis_atomic.testing.fenced import FencedResource

    history = History(Path(config["dir"]) / f"{wid}.jsonl")
    sentinel = redis.sentinel.Sentinel([tuple(a) for a in config["sentinels"]],
                                       sentinel_kwargs={"socket_timeout": 1.0},
                                       socket_timeout=SOCKET_TIMEOUT,
                                       socket_connect_timeout=SOCKET_TIMEOUT)
    client = sentinel.master_for(config["name"])
    durable = Durability(1, timeout=DURABLE_TIMEOUT)
    rng = random.Random(wid)
    n = 0
    if kind == "producer":
        q = ReliableQueue(client, "soak", visibility_timeout=5, max_deliveries=1000,
                          durability=durable)
        while True:
            payload = f"{wid}-{n}"
            history.add(op="push_try", payload=payload)
            _, resent = _retrying(lambda p=payload: q.push(p, dedup_key=p))
            history.add(op="push", payload=payload, resent=resent)
            n += 1
            time.sleep(rng.uniform(0, 0.02))
    elif kind == "consumer":
        q = ReliableQueue(client, "soak", visibility_timeout=5, max_deliveries=1000)
        while True:
            msg, _ = _retrying(lambda: q.pop(timeout=1.0))
            if msg is None:
                continue
            history.add(op="deliver", payload=msg.payload.decode(), deliveries=msg.deliveries)
            acked, _ = _retrying(lambda m=msg: q.ack(m))
            history.add(op="ack", payload=msg.payload.decode(), acked=acked)
    elif kind == "locker":
        fenced_client = redis.Redis(port=config["fenced_port"], socket_timeout=5)
        resource = FencedResource("soak")
        lock = Lock(client, "soak", ttl=2.0, durability=durable)
        while True:
            try:
                got = lock.acquire(timeout=3.0)
            except Exception as exc:  # connection, durability: not acquired (released)
                history.add(op="lock_error", error=type(exc).__name__)
                time.sleep(0.1)
                continue
            if not got:
                continue
            fence = lock.fence
            history.add(op="lock", fence=fence)
            time.sleep(rng.uniform(0, 0.05))
            wrote = resource.write(fenced_client, fence or 0, wid)
            history.add(op="fenced_write", fence=fence, wrote=wrote)
            try:
                lock.release()
            except Exception:
                # Not released (or not known to be): the lease frees it.
                lock = Lock(client, "soak", ttl=2.0, durability=durable)
    elif kind == "counter":
        spec = CounterSpec("soak-exact", min=0)
        # Both through run_durable: an increment acknowledged by the primary alone can be
        # undone by a failover (BoundedCounter has no durability setting of its own).
        bounded_spec = CounterSpec("soak-bounded", min=0, max=BOUND_MAX)
        registry = default_registry()
        while True:
            rid = f"{wid}-{n}"
            history.add(op="incr_try", rid=rid)
            _retrying(lambda r=rid: registry.run_durable(client, spec.add_call(1, False, r),
                                                         1, DURABLE_TIMEOUT))
            history.add(op="incr", rid=rid)
            step = rng.choice([1, -1])
            brid = f"b{wid}-{n}"
            history.add(op="bounded_try", rid=brid, n=step)
            result, _ = _retrying(lambda s=step, r=brid: registry.run_durable(
                client, bounded_spec.add_call(s, False, r), 1, DURABLE_TIMEOUT))
            history.add(op="bounded", rid=brid, delta=result.delta, value=result.value)
            n += 1
    elif kind == "semaphore":
        sem = Semaphore(client, "soak", limit=LIMIT, ttl=3.0)
        while True:
            try:
                permit = sem.acquire(timeout=2.0)
            except Exception:
                time.sleep(0.1)
                continue
            if permit is None:
                continue
            time.sleep(rng.uniform(0, 0.05))
            with contextlib.suppress(Exception):
                sem.release(permit)
    elif kind == "cacher":
        cache = Cache(client, "soak", ttl=2.0, wait_timeout=3.0)
        while True:
            key = f"k{rng.randrange(30)}"
            def load(k: str = key) -> dict[str, str]:
                return {"key": k}

            try:
                value = cache.get_or_set(key, load)
            except Exception as exc:
                history.add(op="cache_error", error=type(exc).__name__)
                time.sleep(0.1)
                continue
            if value != {"key": key}:
                history.add(op="cache", key=key, ok=False)
            n += 1
            if n % 1000 == 0:  # a record per read would be ~100 MB in 15 minutes
                history.add(op="cache_ok", n=1000)
    elif kind == "limiter":
        limiter = RateLimiter(client, "soak", rate=RATE, period=1.0, burst=BURST)
        while True:
            try:
                result = limiter.hit()
            except Exception:
                time.sleep(0.1)
                continue
            if result.allowed:
                history.add(op="allowed")
            time.sleep(0.002)
    else:
        raise SystemExit(f"unknown worker kind {kind!r}")


# -- controller -------------------------------------------------------------------------------
class Soak:
    """The deployment, the workers and the fault injector."""

    def __init__(self, minutes: float, directory: Path, seed: int, workers: list[str]) -> None:
        from .fenced import FencedResource
        from .netns import Partition, partitions_supported
        from .sentinel import SentinelHarness
        from .server import RedisServer

        self.minutes = minutes
        self.dir = directory
        self.rng = random.Random(seed)
        self.kinds = workers
        self.partition = Partition().open() if partitions_supported() else None
        p = self.partition
        # down-after 5 s: a master restart (well under that) is a restart, not also an
        # automatic failover; failovers come from the controller.
        self.harness = SentinelHarness(appendonly=True, appendfsync="always",
                                       down_after_ms=5000,
                                       netns=p.name if p else None,
                                       address=p.address if p else "127.0.0.1")
        self.fenced = RedisServer()
        self.resource = FencedResource("soak")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ids: dict[str, str] = {}  # slot -> the id of the worker running in it
        self.crashes: list[str] = []  # workers that died on their own, and why
        self.spawned = Counter[str]()
        self.faults = Counter[str]()
        self.samples = {"semaphore_max": 0, "bounded_min": 0, "bounded_max": 0}
        self.events: list[str] = []
        self.broken: str | None = None  # the deployment never settled again: faults stop

    def config(self) -> dict[str, Any]:
        return {"dir": str(self.dir), "name": self.harness.name,
                "sentinels": [[self.harness.address, port] for port in self.harness.ports],
                "fenced_port": self.fenced.port}

    def spawn(self, kind: str, slot: int) -> None:
        self.spawned[kind] += 1
        wid = f"{kind}{slot}.{self.spawned[kind]}"
        argv = [sys.executable, "-m", "pyredis_atomic.testing.soak", "--worker", kind,
                "--id", wid, "--config", json.dumps(self.config())]
        # A worker's stderr goes to <wid>.err: a worker that dies on its own is reported
        # with the end of it (see reap).
        with (self.dir / f"{wid}.err").open("wb") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        self.procs[f"{kind}{slot}"] = proc
        self.ids[f"{kind}{slot}"] = wid

    def reap(self) -> None:
        """Respawn every worker that died on its own (not by a fault of ours), and record
        why: a worker that crashes is a finding (the library raised what the worker did not
        expect under a fault, or the soak has a bug), reported and counted as a failure."""
        for slot, proc in list(self.procs.items()):
            if proc.poll() is None:
                continue
            wid = self.ids[slot]
            tail = (self.dir / f"{wid}.err").read_text(errors="replace").strip().splitlines()
            why = tail[-1] if tail else f"exit status {proc.returncode}, no output"
            self.crashes.append(f"{wid}: {why}")
            self.events.append(f"{time.time():.3f} crashed {wid}: {why}")
            kind = slot.rstrip("0123456789")
            self.spawn(kind, int(slot[len(kind):]))

    def admin(self) -> redis.Redis:
        return self.harness.current_master().client(socket_timeout=2)

    # faults
    def fault(self) -> None:
        choices = ["kill", "stop", "kill", "stop", "flush", "restart", "failover"]
        if self.partition is not None:
            choices += ["partition", "partition"]
        kind = self.rng.choice(choices)
        slot = self.rng.choice(sorted(self.procs))
        try:
            self._inject(kind, slot)
        except RedisServerError as exc:
            # The deployment is still reconfiguring (an automatic failover after a restart,
            # a slow resync): counted and reported, then waited out; not a check failure.
            self.faults["unsettled"] += 1
            self.events.append(f"{time.time():.3f} unsettled after {kind}: {exc}")
            try:
                self.harness.settle(180)
            except RedisServerError as still:
                self.broken = str(still)
        self.faults[kind] += 1
        self.events.append(f"{time.time():.3f} {kind} {slot}")

    def _inject(self, kind: str, slot: str) -> None:
        if kind == "kill":
            self.procs[slot].kill()
            self.procs[slot].wait()
            self.spawn(slot.rstrip("0123456789"), int(slot[len(slot.rstrip("0123456789")):]))
        elif kind == "stop":
            proc = self.procs[slot]
            proc.send_signal(signal.SIGSTOP)
            time.sleep(self.rng.uniform(0.5, 3.0))
            proc.send_signal(signal.SIGCONT)
        elif kind == "flush":
            with contextlib.closing(self.admin()) as c:
                c.script_flush()
        elif kind == "restart":
            master = self.harness.current_master()
            master.kill()
            time.sleep(0.2)
            master.start()
            self.harness.settle(120)
        elif kind == "failover":
            self.harness.failover(timeout=60)
        elif kind == "partition":
            assert self.partition is not None
            with self.partition.partitioned():
                time.sleep(self.rng.uniform(1.0, 3.0))

    def sample(self) -> None:
        from pyredis_atomic import BoundedCounter, Semaphore

        with contextlib.suppress(redis.RedisError), contextlib.closing(self.admin()) as c:
            holders = len(Semaphore(c, "soak", limit=LIMIT).holders())
            value = BoundedCounter(c, "soak-bounded", min=0, max=BOUND_MAX).get()
            self.samples["semaphore_max"] = max(self.samples["semaphore_max"], holders)
            self.samples["bounded_min"] = min(self.samples["bounded_min"], value)
            self.samples["bounded_max"] = max(self.samples["bounded_max"], value)

    def run(self) -> dict[str, Any]:
        self.fenced.start()
        self.harness.start()
        started = time.monotonic()
        try:
            for slot, kind in enumerate(self.kinds):
                self.spawn(kind, slot)
            end = started + self.minutes * 60
            next_fault = time.monotonic() + self.rng.uniform(1, 4)
            while time.monotonic() < end and self.broken is None:
                self.reap()
                self.sample()
                if time.monotonic() >= next_fault:
                    self.fault()
                    next_fault = time.monotonic() + self.rng.uniform(1, 4)
                time.sleep(0.1)
            # Let everything settle, stop the workers (SIGKILL: they hold nothing that
            # matters to the checks), drain the queue.
            for proc in self.procs.values():
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
            return self.check(time.monotonic() - started)
        finally:
            for proc in self.procs.values():
                if proc.poll() is None:
                    proc.kill()
            self.harness.cleanup()
            self.fenced.cleanup()
            if self.partition is not None:
                self.partition.close()

    def drain(self) -> set[str]:
        """Every payload still queued (waiting out the leases of killed consumers)."""
        from pyredis_atomic import ReliableQueue

        left: set[str] = set()
        # The last fault may still be settling (an automatic failover, a resync).
        with contextlib.suppress(RedisServerError):
            self.harness.settle(180)
        client = self.harness.master_for(socket_timeout=5)
        q = ReliableQueue(client, "soak", visibility_timeout=30, max_deliveries=1000)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                msg = q.pop(timeout=1.0)
                stats = q.stats() if msg is None else None
            except redis.ConnectionError:
                time.sleep(0.5)
                continue
            if msg is None:
                assert stats is not None
                if stats["in_flight"] == 0 and stats["pending"] == 0 and stats["delayed"] == 0:
                    break
                continue
            left.add(msg.payload.decode())
            with contextlib.suppress(redis.ConnectionError):
                q.ack(msg)
        client.close()
        return left

    def check(self, elapsed: float) -> dict[str, Any]:
        from pyredis_atomic import BoundedCounter
        from pyredis_atomic._core.counter import CounterSpec
        from pyredis_atomic.registry import default_registry

        records: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for path in self.dir.glob("*.jsonl"):
            for line in path.read_text().splitlines():
                with contextlib.suppress(json.JSONDecodeError):  # a line cut by SIGKILL
                    rec = json.loads(line)
                    records[rec["op"]].append(rec)
        failures: list[str] = []
        if self.broken is not None:
            failures.append(f"the Sentinel set never settled again: {self.broken}")
        if self.crashes:
            failures.append(f"{len(self.crashes)} worker(s) died on their own: "
                            f"{self.crashes[:5]}")
        # queue
        pushed = {r["payload"] for r in records["push"]}
        resent = {r["payload"] for r in records["push"] if r["resent"]}
        # A deployment that never settled again cannot be drained or read: what the
        # history says is still checked, the rest is reported as not checked.
        drained = self.drain() if self.broken is None else set()
        delivered = {r["payload"] for r in records["deliver"]} | drained
        lost = pushed - delivered
        if lost and self.broken is None:
            failures.append(f"{len(lost)} acknowledged durable pushes lost: "
                            f"{sorted(lost)[:5]}")
        # Acks are not durable: one that had not reached the replica when it was promoted
        # is undone, and the message is delivered again (at least once, never lost).
        acks = Counter(r["payload"] for r in records["ack"] if r["acked"])
        twice = {p for p, k in acks.items() if k > 1}
        # lock
        fences = Counter(r["fence"] for r in records["lock"])
        repeated = [f for f, k in fences.items() if k > 1]
        if repeated:
            failures.append(f"fences handed out twice: {repeated[:5]}")
        with contextlib.closing(self.fenced.client()) as c:
            accepted = self.resource.accepted(c)
            refused = self.resource.refused(c)
        if accepted != sorted(accepted):
            failures.append("the fenced resource accepted a lower fence after a higher one")
        # counters
        if self.broken is None:
            with contextlib.suppress(RedisServerError):
                self.harness.settle(180)
        client = self.harness.master_for(socket_timeout=5)
        try:
            exact = default_registry().run(client,
                                           CounterSpec("soak-exact", min=0).get_call())
            bounded = BoundedCounter(client, "soak-bounded", min=0, max=BOUND_MAX).get()
        except redis.ConnectionError:
            exact = bounded = -1  # not checked: reported with the broken deployment
        acked_incr = {r["rid"] for r in records["incr"]}
        cut_incr = {r["rid"] for r in records["incr_try"]} - acked_incr
        if exact >= 0 and not len(acked_incr) <= exact <= len(acked_incr) + len(cut_incr):
            failures.append(f"request-id counter {exact}, acknowledged {len(acked_incr)} "
                            f"(+{len(cut_incr)} cut off by kills)")
        acked_b = {r["rid"]: r["delta"] for r in records["bounded"]}
        cut_b = [r for r in records["bounded_try"] if r["rid"] not in acked_b]
        total = sum(acked_b.values())
        low = total - sum(1 for r in cut_b if r["n"] < 0)
        high = total + sum(1 for r in cut_b if r["n"] > 0)
        values = [r["value"] for r in records["bounded"]]
        if values and not (min(values) >= 0 and max(values) <= BOUND_MAX):
            failures.append(f"bounded counter left [0, {BOUND_MAX}]: {min(values)}..{max(values)}")
        if self.samples["bounded_min"] < 0 or self.samples["bounded_max"] > BOUND_MAX:
            failures.append(f"bounded counter sampled outside its bounds: {self.samples}")
        # A walk clamped at the bounds can end anywhere in the cut-off allowance.
        if bounded >= 0 and not low - len(cut_b) <= bounded <= high + len(cut_b):
            failures.append(f"bounded counter {bounded}, acknowledged deltas sum {total}")
        client.close()
        # semaphore, cache, limiter
        if self.samples["semaphore_max"] > LIMIT:
            failures.append(f"semaphore held by {self.samples['semaphore_max']} > {LIMIT}")
        bad_cache = [r for r in records["cache"] if not r["ok"]]
        if bad_cache:
            failures.append(f"{len(bad_cache)} cache reads returned another value")
        allowed = len(records["allowed"])
        if allowed > BURST + RATE * (elapsed + 1) * 1.05:
            failures.append(f"limiter allowed {allowed} in {elapsed:.0f} s")
        return {
            "minutes": round(elapsed / 60, 1),
            "faults": dict(self.faults),
            "partitions": self.partition is not None,
            "operations": {
                "durable pushes acknowledged": len(pushed),
                "deliveries": len(records["deliver"]),
                "acks": sum(acks.values()),
                "re-sent pushes": len(resent),
                "messages acked twice (undone acks, re-sent pushes)": len(twice),
                "durable lock acquisitions": sum(fences.values()),
                "fenced writes accepted": len(accepted),
                "fenced writes refused": refused,
                "lock errors": len(records["lock_error"]),
                "exact increments acknowledged": len(acked_incr),
                "bounded increments acknowledged": len(acked_b),
                "cache reads": len(records["cache"]) + sum(r["n"] for r in records["cache_ok"]),
                "cache errors": len(records["cache_error"]),
                "limiter hits allowed": allowed,
                "semaphore holders at most": self.samples["semaphore_max"],
                "worker processes started": sum(self.spawned.values()),
                "workers that died on their own": len(self.crashes),
            },
            "failures": failures,
            "unsettled": [e for e in self.events if " unsettled " in e],
            "last events": self.events[-10:],
        }


def main(argv: list[str] | None = None) -> int:
    """``scripts/soak`` (see the module doc)."""
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dir", default=None, help="where the history goes (a temp dir)")
    parser.add_argument("--report", default=None, help="write the JSON report here too")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--id", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        import redis.sentinel  # noqa: F401  (the worker's client)

        _worker(args.worker, args.id, json.loads(args.config))
        return 0
    import tempfile

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    directory = Path(args.dir or tempfile.mkdtemp(prefix="pyredis-atomic-soak-"))
    directory.mkdir(parents=True, exist_ok=True)
    # SIGTERM ends the run like ^C: the servers, workers and namespace are still removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"soak: {args.minutes} min, seed {seed}, history in {directory}", flush=True)
    report = Soak(args.minutes, directory, seed, KINDS).run()
    report["seed"] = seed
    text = json.dumps(report, indent=2)
    print(text)
    if args.report:
        Path(args.report).write_text(text + "\n")
    if report["failures"]:
        print("SOAK FAILED", file=sys.stderr)
        return 1
    print("soak passed")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
