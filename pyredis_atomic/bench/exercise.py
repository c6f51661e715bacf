"""Calls every script many times, for the server-cost measurement (SLOWLOG)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from .. import (
    BoundedCounter,
    Cache,
    Lock,
    RateLimiter,
    ReliableQueue,
    Semaphore,
)
from .._core.lock import break_call, lock_keys
from .._core.monitor import queue_call
from ..registry import default_registry
from .cases import Bench

__all__ = ["exercise"]


def _failing_loader() -> Any:
    raise RuntimeError("a loader that fails frees its lease (cache_release)")


def exercise(b: Bench, drain: Callable[[], None]) -> None:
    """Run each primitive's operations ``n`` times; ``drain`` collects SLOWLOG between
    primitives so the log never overflows."""
    n = 50 if b.quick else 300
    c = b.client
    steps: list[Callable[[int], Any]] = []

    registry = default_registry()
    steps.append(lambda i: registry.call(c, "server_time"))

    lock = Lock(c, b.fresh(), ttl=10.0)

    def lock_step(i: int) -> None:
        lock.acquire(blocking=False)
        lock.extend()
        lock.owned()
        lock.locked()
        lock.release()
        Lock.inspect(c, lock.name)
        if i % 10 == 0:
            other = Lock(c, lock.name, ttl=10.0)
            other.acquire(blocking=False)
            registry.run(c, break_call(lock_keys(lock.name)))

    steps.append(lock_step)

    q = ReliableQueue(c, b.fresh(), visibility_timeout=30.0, max_deliveries=3)

    def queue_step(i: int) -> None:
        q.push(b"payload", dedup_key=f"d{i}")
        m = q.pop()
        if m is not None:
            q.extend(m)
            q.nack(m)
        m = q.pop()
        if m is not None:
            q.ack(m)
        q.push_many([b"a", b"b"])
        q.ack_many(q.pop_many(2))
        q.stats()
        registry.run(c, queue_call(q.name))  # what the Prometheus exporter sends per scrape
        q.requeue_expired(limit=10)
        if i % 25 == 0:
            q.dead_letters(limit=10)
            q.redrive()
            q.purge(dead_only=True)

    steps.append(queue_step)

    cache = Cache(c, b.fresh(), ttl=60.0)
    scripted = Cache(c, b.fresh(), ttl=60.0, fast_hits=False)  # hits through the scripts
    near = Cache(c, b.fresh(), ttl=60.0, near=True)  # a local miss reads with cache_near_read

    def cache_step(i: int) -> None:
        key = f"k{i % 10}"
        cache.get_or_set(key, lambda: {"i": i})
        cache.get(key)
        cache.set(f"s{i}", i)
        cache.delete(f"s{i}")
        cache.inspect(key)
        scripted.get_or_set(key, lambda: {"i": i})
        scripted.get(key)
        near.get(f"n{i}")
        if i % 10 == 0:
            with contextlib.suppress(RuntimeError):
                cache.get_or_set(f"fail{i}", _failing_loader)

    steps.append(cache_step)

    counter = BoundedCounter(c, b.fresh(), min=0, max=1000)

    def counter_step(i: int) -> None:
        counter.incr()
        counter.incr(2, request_id=f"r{i}")
        counter.decr()
        counter.get()
        if i % 50 == 0:
            counter.set(10)
            counter.reset()
            counter.stored_config()
            counter.reconfigure(min=0, max=1000)

    steps.append(counter_step)

    sem = Semaphore(c, b.fresh(), limit=3, ttl=30.0)

    def semaphore_step(i: int) -> None:
        permit = sem.acquire(blocking=False)
        sem.count()
        sem.holders()
        if permit is not None:
            sem.extend(permit)
            sem.release(permit)
        if i % 50 == 0:
            sem.stored_config()
            sem.reconfigure(3)

    steps.append(semaphore_step)

    limiter = RateLimiter(c, b.fresh(), rate=1000, period=1.0, burst=100)

    def limiter_step(i: int) -> None:
        limiter.hit()
        limiter.peek()
        if i % 50 == 0:
            limiter.reset()
            limiter.stored_config()
            limiter.reconfigure(1000, 1.0, 100)

    steps.append(limiter_step)

    for step in steps:
        for i in range(n):
            step(i)
        drain()
