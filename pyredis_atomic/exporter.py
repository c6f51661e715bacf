"""A Prometheus exporter for operators: the state of queues, locks, counters and semaphores.

Needs the ``prometheus`` extra (``pip install pyredis-atomic[prometheus]``). From the
command line::

    pyredis-atomic metrics serve --url redis://localhost:6379/0 --port 9108 \\
        --queue emails --lock invoice-7 --counter stock=0:100 --semaphore pool=10

From Python::

    from pyredis_atomic.exporter import AtomicCollector, Targets
    collector = AtomicCollector(client, Targets({"emails"}, set(), {}, {}))
    prometheus_client.REGISTRY.register(collector)

Every scrape runs one read-only script per primitive (``EVALSHA_RO`` where the server has
it, so the exporter may point at a replica), each O(1) or O(log n) whatever the size of the
queue, plus, with ``discover``, a bounded number of ``SCAN`` steps per scrape: the cost of a
scrape on the server is bounded by the number of targets, never by their contents.
Discovery never sends ``KEYS``: it walks the keyspace a slice per scrape (on a cluster, on
every primary), so a new primitive shows up within ``keys / scan_budget`` scrapes, and one
whose keys are all gone disappears after one full walk.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from redis import exceptions as redis_exc
from redis.cluster import RedisCluster

from ._core.keys import DEFAULT_PREFIX, check_prefix
from ._core.monitor import (
    KINDS,
    Targets,
    counter_spec,
    dead_failures,
    dead_sample_call,
    discovery_pattern,
    lock_call,
    parse_key,
    queue_call,
)
from ._core.semaphore import SemaphoreSpec
from ._core.validate import check_int
from .errors import AtomicError
from .registry import ScriptRegistry, default_registry

__all__ = ["AtomicCollector", "Targets", "make_registry", "serve"]

NS = "pyredis_atomic"
# SCAN steps: COUNT per call, and keys examined per node per scrape.
DEFAULT_SCAN_COUNT = 1000
DEFAULT_SCAN_BUDGET = 10_000
# The newest dead letters of a queue read per scrape for the failure types.
DEFAULT_DEAD_SAMPLE = 100


@dataclass
class _Walk:
    """Where discovery stands on one node: the SCAN cursor, what this walk has seen so
    far, and what the last complete walk found."""

    cursor: int = 0
    seen: Targets = field(default_factory=Targets.empty)
    found: Targets = field(default_factory=Targets.empty)


class _Families:
    """The metric families of one scrape."""

    def __init__(self) -> None:
        def gauge(name: str, doc: str, *labels: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"{NS}_{name}", doc, labels=list(labels))

        self.queue_messages = gauge("queue_messages", "Messages of a queue by state "
                                    "(pending, in_flight, delayed, dead).", "queue", "state")
        self.queue_lag = gauge("queue_lag_seconds", "How long the oldest message that a "
                               "claim could take now has been claimable (delayed messages "
                               "that are not due excluded; 0 when none).", "queue")
        self.queue_inflight_age = gauge(
            "queue_oldest_inflight_age_seconds", "Age since its push of the in-flight "
            "message whose lease ends first (0 when nothing is in flight).", "queue")
        self.queue_lease_age = gauge(
            "queue_oldest_lease_age_seconds", "How long ago the lease that ends first began "
            "(claimed or last extended): the queue's lease (given as --queue NAME=SECONDS) "
            "minus the time that lease has left; exact while the queue's deliveries are "
            "leased for that long (0 when nothing is in flight; only for queues whose lease "
            "is given).", "queue")
        self.queue_dead_failures = gauge(
            "queue_dead_letters_by_failure", "The newest dead letters of a queue (at most "
            "the collector's dead_sample), by dead reason (nacked, expired) and the type of "
            "the failure recorded with them: the 10 most frequent exception classes by "
            "name, the others as _OTHER, none when no failure was recorded.", "queue",
            "reason", "failure_type")
        self.queue_overdue = gauge(
            "queue_lease_overdue_seconds", "How long ago the earliest lease ended without "
            "being requeued (0 while every lease runs): consumers have stopped.", "queue")
        self.lock_held = gauge("lock_held", "1 when the lock is held now, else 0.", "lock")
        self.lock_remaining = gauge("lock_lease_remaining_seconds", "The holder's remaining "
                                    "lease (0 when free, +Inf without expiry).", "lock")
        self.lock_fence = gauge("lock_fence", "The last fencing token issued.", "lock")
        self.lock_lost = gauge("lock_lost_fence", "The last fencing token known to have "
                               "ended without a release (lease ran out or broken); 0 "
                               "when none. A change means a lock was lost.", "lock")
        self.counter_value = gauge("counter_value", "The counter's value.", "counter")
        self.counter_min = gauge("counter_min", "The counter's lower bound (when "
                                 "configured).", "counter")
        self.counter_max = gauge("counter_max", "The counter's upper bound (when "
                                 "configured).", "counter")
        self.sem_in_use = gauge("semaphore_in_use", "Permits held now (live leases).",
                                "semaphore")
        self.sem_limit = gauge("semaphore_limit", "How many permits may be held at once "
                               "(when configured).", "semaphore")
        self.errors = gauge("scrape_error", "1 for a primitive that could not be measured "
                            "in this scrape (e.g. a key of the wrong type).", "kind", "name",
                            "error")
        self.discovered = gauge("discovered", "Primitives found by discovery, by kind.",
                                "kind")
        self.up = gauge("up", "1 when the last scrape reached Redis, else 0.")
        self.duration = gauge("scrape_duration_seconds", "How long the scrape took.")

    def all(self) -> list[Metric]:
        return [v for v in vars(self).values() if isinstance(v, Metric)]


class AtomicCollector(Collector):
    """A ``prometheus_client`` collector measuring ``targets`` on ``client`` (a sync
    ``redis.Redis`` or ``RedisCluster``) at every scrape.

    ``discover``: also measure every queue, lock, counter and semaphore found under
    ``prefix`` by a ``SCAN`` of at most ``scan_budget`` keys per node per scrape.
    Counters' bounds and semaphores' limits are the applications' configuration, not
    stored in Redis: they are reported only for targets that give them. ``dead_sample``:
    how many of a queue's newest dead letters a scrape reads to count them by recorded
    failure type (one ``queue_dead`` call, only when the queue has dead letters; 0: none).
    """

    def __init__(self, client: Any, targets: Targets | None = None, *,
                 prefix: str = DEFAULT_PREFIX, discover: bool = False,
                 scan_count: int = DEFAULT_SCAN_COUNT, scan_budget: int = DEFAULT_SCAN_BUDGET,
                 registry: ScriptRegistry | None = None,
                 dead_sample: int = DEFAULT_DEAD_SAMPLE) -> None:
        if not callable(getattr(client, "execute_command", None)):
            raise TypeError(f"client must be a redis-py client, got {type(client).__name__}")
        if not isinstance(discover, bool):
            raise TypeError(f"discover must be a bool, got {type(discover).__name__}")
        self.client = client
        self.prefix = check_prefix(prefix)
        self.targets = targets if targets is not None else Targets.empty()
        self.discover = discover
        self.scan_count = check_int(scan_count, "scan_count", minimum=1, maximum=1_000_000)
        self.scan_budget = check_int(scan_budget, "scan_budget", minimum=1,
                                     maximum=100_000_000)
        self.registry = registry if registry is not None else default_registry()
        self.dead_sample = check_int(dead_sample, "dead_sample", minimum=0, maximum=10_000)
        self._pattern = discovery_pattern(self.prefix)
        self._walks: dict[str, _Walk] = {}
        # Scrapes may come in on several server threads; discovery state is shared.
        self._lock = threading.Lock()

    def describe(self) -> Iterable[Metric]:
        """Nothing: registering the collector must not scrape Redis."""
        return []

    # -- discovery -----------------------------------------------------------------------
    def _nodes(self) -> list[tuple[str, Any]]:
        if isinstance(self.client, RedisCluster):
            return [(n.name, self.client.get_redis_connection(n))
                    for n in self.client.get_primaries()]
        return [("", self.client)]

    def _step(self, walk: _Walk, conn: Any) -> None:
        budget = self.scan_budget
        while budget > 0:
            count = min(self.scan_count, budget)
            cursor, keys = conn.scan(walk.cursor, match=self._pattern, count=count)
            budget -= count
            for key in keys:
                found = parse_key(key, self.prefix)
                if found is not None:
                    walk.seen.add(*found)
            walk.cursor = int(cursor)
            if walk.cursor == 0:  # a full walk: what it saw replaces the last one's
                walk.found, walk.seen = walk.seen, Targets.empty()
                return

    def discovered(self) -> Targets:
        """Advance discovery by one scrape's budget on every node; everything found by
        the last complete walk or so far in this one."""
        nodes = self._nodes()
        names = {name for name, _ in nodes}
        for gone in set(self._walks) - names:  # a primary removed from the cluster
            del self._walks[gone]
        out = Targets.empty()
        for name, conn in nodes:
            walk = self._walks.setdefault(name, _Walk())
            self._step(walk, conn)
            out = out.merged(walk.found).merged(walk.seen)
        return out

    # -- measuring -----------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        """One scrape: measure every target (and advance discovery)."""
        start = time.perf_counter()
        fams = _Families()
        with self._lock:
            up = self._collect(fams)
        fams.up.add_metric([], 1.0 if up else 0.0)
        fams.duration.add_metric([], time.perf_counter() - start)
        yield from fams.all()

    def _collect(self, fams: _Families) -> bool:
        targets = self.targets
        try:
            if self.discover:
                found = self.discovered()
                for kind in KINDS:
                    fams.discovered.add_metric([kind], found.count(kind))
                targets = targets.merged(found)
            for name in sorted(targets.queues):
                self._measure(fams, "queue", name, self._queue, targets.leases.get(name))
            for name in sorted(targets.locks):
                self._measure(fams, "lock", name, self._lock_state)
            for name, bounds in sorted(targets.counters.items()):
                self._measure(fams, "counter", name, self._counter, bounds)
            for name, limit in sorted(targets.semaphores.items(), key=lambda kv: kv[0]):
                self._measure(fams, "semaphore", name, self._semaphore, limit)
        except (redis_exc.ConnectionError, redis_exc.TimeoutError):
            return False  # the server is unreachable: every further call would wait too
        return True

    def _measure(self, fams: _Families, kind: str, name: str, how: Any, *extra: Any) -> None:
        try:
            how(fams, name, *extra)
        except (redis_exc.ConnectionError, redis_exc.TimeoutError):
            raise
        except (AtomicError, redis_exc.RedisError) as exc:
            fams.errors.add_metric([kind, name, type(exc).__name__], 1.0)

    def _queue(self, fams: _Families, name: str, lease: float | None) -> None:
        s = self.registry.run(self.client, queue_call(name, self.prefix))
        for state, value in (("pending", s.pending), ("in_flight", s.in_flight),
                             ("delayed", s.delayed), ("dead", s.dead)):
            fams.queue_messages.add_metric([name, state], value)
        fams.queue_lag.add_metric([name], s.lag)
        fams.queue_inflight_age.add_metric([name], s.inflight_age or 0.0)
        if lease is not None:
            fams.queue_lease_age.add_metric([name], s.lease_age(lease) or 0.0)
        fams.queue_overdue.add_metric([name], s.lease_overdue)
        if s.dead and self.dead_sample:
            letters = self.registry.run(
                self.client, dead_sample_call(name, s.dead, self.dead_sample, self.prefix))
            for (reason, kind), n in sorted(dead_failures(letters).items()):
                fams.queue_dead_failures.add_metric([name, reason, kind], n)

    def _lock_state(self, fams: _Families, name: str) -> None:
        info = self.registry.run(self.client, lock_call(name, self.prefix))
        held = info is not None and info.held
        fams.lock_held.add_metric([name], 1.0 if held else 0.0)
        remaining = 0.0
        if info is not None and info.held:
            remaining = float("inf") if info.ttl is None else info.ttl
        fams.lock_remaining.add_metric([name], remaining)
        fams.lock_fence.add_metric([name], info.last_fence if info else 0)
        fams.lock_lost.add_metric([name], info.lost_fence if info else 0)

    def _counter(self, fams: _Families, name: str,
                 bounds: tuple[int | None, int | None]) -> None:
        low, high = bounds
        spec = counter_spec(name, low, high, self.prefix)
        fams.counter_value.add_metric([name], self.registry.run(self.client, spec.get_call()))
        if low is not None:
            fams.counter_min.add_metric([name], low)
        if high is not None:
            fams.counter_max.add_metric([name], high)

    def _semaphore(self, fams: _Families, name: str, limit: int | None) -> None:
        spec = SemaphoreSpec(name, limit or 1, prefix=self.prefix)
        fams.sem_in_use.add_metric([name], self.registry.run(self.client, spec.count_call()))
        if limit is not None:
            fams.sem_limit.add_metric([name], limit)


def make_registry(collector: AtomicCollector) -> CollectorRegistry:
    """A Prometheus registry holding only ``collector`` (no process metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def serve(collector: AtomicCollector, port: int, addr: str = "0.0.0.0") -> Any:
    """Serve ``/metrics`` on ``addr:port`` from a background thread; returns the HTTP
    server (``shutdown()`` stops it)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr, registry=make_registry(collector))
    return server
