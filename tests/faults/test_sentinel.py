"""Redis Sentinel (issue 14): a master, a replica and three sentinels; the lock, the queue,
the counter and the semaphore run through ``Sentinel(...).master_for(...)`` while
``SENTINEL FAILOVER`` runs there and back.

* With ``Durability`` nothing acknowledged is lost: every durable push is still queued at
  the end, and no two durable acquisitions of the lock got the same fence.
* Without it, what is lost is counted (``SENTINEL FAILOVER`` leaves the old master taking
  writes for ~10 s until the sentinels turn it into a replica, and it then drops them):
  the counts are printed, and written to ``$PYREDIS_ATOMIC_SENTINEL_REPORT`` if set (the
  figures in docs/sentinel.md come from there).
* A consumer blocked in ``pop`` across the failover gets the message pushed after it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from pyredis_atomic import (
    AtomicError,
    BoundedCounter,
    Durability,
    DurabilityError,
    Lock,
    ReliableQueue,
    Semaphore,
)
from pyredis_atomic.testing import RedisServer
from pyredis_atomic.testing.fenced import FencedResource
from pyredis_atomic.testing.sentinel import SentinelHarness

SOCKET_TIMEOUT = 2.0
DURABLE = Durability(1, timeout=0.5)  # well below the socket timeout: see docs/sentinel.md
RETRYABLE = (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, AtomicError)


@pytest.fixture(scope="module")
def sentinel() -> Iterator[SentinelHarness]:
    with SentinelHarness() as harness:
        yield harness


def _until_answered(what: Callable[[], Any], stop: threading.Event) -> tuple[bool, Any]:
    """Re-send after failures until ``what`` answers (True, result) or ``stop`` (False)."""
    while not stop.is_set():
        try:
            return True, what()
        except RETRYABLE:
            time.sleep(0.05)
    return False, None


def test_failover_there_and_back_under_load(sentinel: SentinelHarness,
                                            redis_server_factory: Callable[..., RedisServer]
                                            ) -> None:
    fenced_server = redis_server_factory()  # outside the Sentinel set: it never fails over
    resource = FencedResource("sentinel")

    def client() -> redis.Redis:
        return sentinel.master_for(socket_timeout=SOCKET_TIMEOUT,
                                   socket_connect_timeout=SOCKET_TIMEOUT)

    stop = threading.Event()
    acked: dict[str, list[str]] = {"durable": [], "plain": []}
    fences: dict[str, list[int]] = {"durable": [], "plain": []}
    increments: list[str] = []
    sem_seen = [0]
    errors: list[BaseException] = []

    def pusher(kind: str) -> None:
        q = ReliableQueue(client(), f"sq-{kind}",
                          durability=DURABLE if kind == "durable" else None)
        i = 0
        while not stop.is_set():
            payload = f"{kind}-{i}"
            ok, _ = _until_answered(functools.partial(q.push, payload, dedup_key=payload),
                                    stop)
            if ok:
                acked[kind].append(payload)
            i += 1

    def locker(kind: str) -> None:
        c = client()
        fenced = fenced_server.client()
        lock = Lock(c, f"sl-{kind}", ttl=5.0,
                    durability=DURABLE if kind == "durable" else None)
        while not stop.is_set():
            try:
                if not lock.acquire(timeout=1.0):
                    continue
            except (*RETRYABLE, DurabilityError):
                time.sleep(0.05)
                continue
            fence = lock.fence
            assert fence is not None
            fences[kind].append(fence)
            resource.write(fenced, fence, kind)
            try:
                lock.release()
            except RETRYABLE:
                # Not released (or not known to be): the lease frees it; a new object
                # waits like anyone else.
                lock = Lock(c, f"sl-{kind}", ttl=5.0,
                            durability=DURABLE if kind == "durable" else None)

    def counter() -> None:
        ctr = BoundedCounter(client(), "sc")
        i = 0
        while not stop.is_set():
            rid = f"r{i}"
            ok, _ = _until_answered(functools.partial(ctr.incr, 1, request_id=rid), stop)
            if ok:
                increments.append(rid)
            i += 1

    def semaphore() -> None:
        sem = Semaphore(client(), "ss", limit=2, ttl=5.0)
        watcher = Semaphore(client(), "ss", limit=2)
        while not stop.is_set():
            try:
                permit = sem.acquire(timeout=1.0)
                sem_seen[0] = max(sem_seen[0], len(watcher.holders()))
                if permit is not None:
                    sem.release(permit)
            except RETRYABLE:
                time.sleep(0.05)

    def guarded(target: Callable[..., None], *args: Any) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            except BaseException as exc:
                errors.append(exc)
        return threading.Thread(target=run, daemon=True)

    threads = [guarded(pusher, "durable"), guarded(pusher, "plain"),
               guarded(locker, "durable"), guarded(locker, "plain"),
               guarded(counter), guarded(semaphore), guarded(semaphore)]
    # A consumer blocked across the failover, on a queue nobody else touches.
    blocked_client = client()
    blocked = ReliableQueue(blocked_client, "sq-blocked")
    got: list[Any] = []
    threads.append(guarded(lambda: got.append(blocked.pop(timeout=90.0))))
    for t in threads:
        t.start()
    time.sleep(1.0)
    first = sentinel.current_master()
    sentinel.failover()
    assert sentinel.current_master() is not first
    _until_answered(lambda: ReliableQueue(client(), "sq-blocked").push(b"after"),
                    threading.Event())
    time.sleep(1.0)
    sentinel.failover()
    assert sentinel.current_master() is first
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors

    check = client()
    # Durable: every acknowledged push is still queued (nobody consumes these queues).
    def queued(kind: str) -> set[str]:
        q = ReliableQueue(check, f"sq-{kind}")
        out: set[str] = set()
        while batch := q.pop_many(1000):
            out.update(m.payload.decode() for m in batch)
        return out

    durable_lost = set(acked["durable"]) - queued("durable")
    plain_lost = set(acked["plain"]) - queued("plain")
    repeated = {k: sum(n - 1 for n in Counter(v).values() if n > 1) for k, v in fences.items()}
    counter_value = BoundedCounter(check, "sc").get()
    report = {
        "durable pushes acknowledged": len(acked["durable"]),
        "durable pushes lost": len(durable_lost),
        "plain pushes acknowledged": len(acked["plain"]),
        "plain pushes lost": len(plain_lost),
        "durable lock acquisitions": len(fences["durable"]),
        "durable fences repeated": repeated["durable"],
        "plain lock acquisitions": len(fences["plain"]),
        "plain fences repeated": repeated["plain"],
        "increments acknowledged": len(increments),
        "increments lost": max(0, len(increments) - counter_value),
        "semaphore holders at most": sem_seen[0],
        "failovers": 2,
    }
    print(json.dumps(report, indent=2))
    out = os.environ.get("PYREDIS_ATOMIC_SENTINEL_REPORT")
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(report) + "\n")
    assert len(acked["durable"]) > 10
    assert not durable_lost, f"acknowledged durable pushes lost: {sorted(durable_lost)[:5]}"
    assert repeated["durable"] == 0, "a durable fence was handed out twice"
    with contextlib.closing(fenced_server.client()) as fc:
        accepted = resource.accepted(fc)
    assert accepted == sorted(accepted)
    assert sem_seen[0] <= 2
    assert got, "the blocked consumer never returned"
    assert got[0] is not None, "the blocked pop timed out across the failover"
    assert got[0].payload == b"after"
    check.close()
    blocked_client.close()


def test_durability_timeout_below_the_socket_timeout(
        redis_server_factory: Callable[..., RedisServer]) -> None:
    """The documented setting: a socket timeout above the durability timeout (here by
    1 s) lets ``WAIT`` answer, so a write no replica acknowledged is a
    ``DurabilityError`` (the message is queued; re-push with its dedup key), not a
    ``ReplyTimeoutError`` that leaves the caller guessing."""
    server = redis_server_factory()  # no replica at all
    c = server.client(socket_timeout=DURABLE.timeout + 1.0)
    q = ReliableQueue(c, "d", durability=DURABLE)
    with pytest.raises(DurabilityError):
        q.push(b"x", dedup_key="x")
    assert q.stats()["pending"] == 1
    c.close()


def test_a_durable_renewed_lock_is_lost_by_its_lease_end_in_the_split_brain(
        sentinel: SentinelHarness) -> None:
    """After ``SENTINEL FAILOVER`` the old master takes writes for ~10 s: a renewer talking
    to it would keep the lock alive there while it expires on the new master (where
    another client can take it). A durable lock's renewals wait for a replica, which the
    old master no longer has, so the lock is lost by its lease end instead."""
    client = sentinel.master_for(socket_timeout=SOCKET_TIMEOUT)
    fired: list[float] = []
    lock = Lock(client, "split", ttl=1.0, auto_renew=True, durability=DURABLE,
                on_lost=lambda _: fired.append(time.monotonic()))
    assert lock.acquire(blocking=False)
    time.sleep(1.5)
    assert not fired  # renewed (and confirmed) while nothing happens
    started = time.monotonic()
    sentinel.failover()  # returns once the old master is a replica again (~11 s)
    assert fired, "on_lost never fired"
    # Promotion (under a second) + the lease (1 s) + a loaded machine's margin.
    assert fired[0] - started < 5.0, fired[0] - started
    client.close()
