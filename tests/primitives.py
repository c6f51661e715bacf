"""The catalog of primitives for the cross-cutting suites (issue 13).

One entry per primitive: how to build it, an exercise that calls every public method
(waits and recovery included) and leaves a state of its own, the keys it may write, and
its single operations. The hostile-names suite, the ACL suite, the client-kind checks and
the catalog fault suite (a script-flush storm under every exercise, a lost reply under every
single operation: ``tests/faults/test_catalog_faults.py``) iterate over :data:`CATALOG`, so
a new primitive gets them all by adding itself here; ``test_catalog_covers_every_primitive``
(in ``tests/test_layout.py``) fails until it does, and until the hostile fuzz
(``tests/hostile/test_hostile_fuzz.py``) has the model-checked test named by ``fuzz``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyredis_atomic import BoundedCounter, Cache, Lock, RateLimiter, ReliableQueue, Semaphore


@dataclass
class Exercised:
    """What an exercise left: the keys the object may write (exact, or by prefix) and a
    check that reads back the state it left (True when intact)."""

    keys: set[str]
    check: Callable[[], bool]
    prefixes: tuple[str, ...] = ()


@dataclass
class Primitive:
    """One primitive of the catalog (its sync class; the asyncio one has the same name).

    ``build(api, client, name, prefix)``: the object, from the module ``api``
    (``pyredis_atomic`` or ``pyredis_atomic.asyncio``). ``exercise(obj, i, prefix)``: every
    public method, sync, leaving a state that depends on ``i`` (so two objects that shared a key
    would see each other's). ``operations``: single operations, each one script call or
    wait, for suites that try them one by one (name -> function of a built object).
    ``named``: True when any name may be used (the cache's entries are named by the
    exercise's own keys, so the names suite checks the cache's entries separately).
    ``fuzz``: the hostile fuzz's test of this primitive (hostile arguments against a model
    of its invariants: written per primitive, so the catalog names it and
    ``tests/test_layout.py`` checks that it exists).
    """

    name: str
    build: Callable[[Any, Any, str, str], Any]
    exercise: Callable[[Any, int, str], Exercised]
    operations: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    named: bool = True
    fuzz: str = ""


def _lock(lock: Lock, i: int, prefix: str) -> Exercised:
    rival = Lock(lock.client, lock.name, ttl=60, prefix=prefix)
    assert lock.acquire(timeout=0)
    assert not rival.acquire(timeout=0.15)  # waited on the signal list (BLPOP)
    lock.extend(10)
    assert lock.owned()
    assert lock.locked()
    info = Lock.inspect(lock.client, lock.name, prefix=prefix)
    assert info is not None
    assert info.held
    lock.release()
    with rival:
        assert rival.fence == 2
    for _ in range(i):  # the fence tells this lock's history from another's
        with rival:
            pass
    assert lock.acquire(blocking=False)
    k = lock.keys
    fence = lock.fence
    return Exercised({k.lock, k.fences, k.signal},
                     lambda: lock.owned() and lock.fence == fence == i + 3)


def _queue(q: ReliableQueue, i: int, prefix: str) -> Exercised:
    first = q.push(b"a", dedup_key="a")
    assert q.push(b"a", dedup_key="a") == first
    q.push_many([b"b", "c"], delay=0)
    m = q.pop(timeout=0.1)
    assert m is not None
    assert q.extend(m, 5)
    acked, nxt = q.ack_and_pop(m)
    assert acked
    assert nxt is not None
    q.nack(nxt)  # its last delivery (max_deliveries=1): a dead letter
    assert [d.payload for d in q.dead_letters()] == [b"b"]
    assert q.redrive() == 1
    assert q.ack_many(q.pop_many(5)) == 2
    assert q.pop(timeout=0.15) is None  # waited (BLPOP)
    assert q.requeue_expired() == 0
    assert q.stats()["pending"] == 0
    q.push(b"z")
    assert q.purge() == 1
    # Left: i + 1 pending, one in flight, one delayed.
    q.push_many([f"p{i}-{j}".encode() for j in range(i + 2)])
    q.push(b"later", delay=60)
    assert q.pop() is not None
    want = {"pending": i + 1, "in_flight": 1, "delayed": 1, "dead": 0}
    return Exercised(set(q.keys.values()), lambda: {
        k: v for k, v in q.stats().items() if k in want} == want)


def _cache(cache: Cache, i: int, prefix: str) -> Exercised:
    assert cache.get_or_set("k", lambda: {"v": 1}) == {"v": 1}
    assert cache.get("k") == {"v": 1}
    cache.set("k2", [1, 2])
    assert cache.inspect("k2")["exists"]
    assert cache.delete("k2")
    cache.set("k", {"v": i})
    keys = set()
    for key in ("k", "k2"):
        entry = cache.key_of(key)  # the entry hash, its wake-up list, its fast-hit copy
        keys |= {entry, entry[:-1] + "wake", entry[:-1] + "f"}
    return Exercised(keys, lambda: cache.get("k") == {"v": i})


def _counter(counter: BoundedCounter, i: int, prefix: str) -> Exercised:
    assert counter.incr(3, request_id="r1").value == 3
    assert counter.incr(3, request_id="r1").value == 3  # remembered, not applied twice
    assert not counter.decr(5)
    counter.set(7)
    assert counter.get() == 7
    counter.reset()
    assert counter.incr(i, request_id="r2").value == i
    assert counter.stored_config() == counter.config
    assert counter.reconfigure(min=counter.min, max=counter.max) == counter.config
    return Exercised({counter.key, counter.key + ":config"}, lambda: counter.get() == i,
                     prefixes=(counter.key + ":request:",))


def _semaphore(sem: Semaphore, i: int, prefix: str) -> Exercised:
    permit = sem.acquire(timeout=0)
    assert permit is not None
    assert sem.acquire(blocking=False, permit=f"other{i}") is None  # limit 1
    assert sem.acquire(timeout=0.15) is None  # waited (BLPOP)
    assert sem.extend(permit)
    assert sem.count() == 1
    assert [p for p, _ in sem.holders()] == [permit]
    assert sem.release(permit)  # leaves a wake-up signal
    mine = f"mine{i}"
    assert sem.acquire(blocking=False, permit=mine) == mine
    signal = sem.key[:-len("holders")] + "signal"
    assert sem.stored_config() == sem.config
    assert sem.reconfigure(sem.limit) == sem.config
    config = sem.key[:-len("holders")] + "config"
    return Exercised({sem.key, signal, config},
                     lambda: [p for p, _ in sem.holders()] == [mine])


def _ratelimit(limiter: RateLimiter, i: int, prefix: str) -> Exercised:
    assert limiter.hit(2)
    assert not limiter.peek(limiter.burst - 1)
    limiter.reset()
    assert limiter.hit()
    for _ in range(i):
        assert limiter.hit()
    left = limiter.burst - 2 - i  # what one more hit (the peek) would leave
    assert limiter.stored_config() == limiter.config
    return Exercised({limiter.key, limiter.key + ":config"},
                     lambda: limiter.peek().remaining == left)


CATALOG: list[Primitive] = [
    Primitive("Lock", lambda api, c, name, prefix: api.Lock(c, name, ttl=60, prefix=prefix),
              _lock, {
                  "acquire": lambda lk: lk.acquire(blocking=False),
                  "inspect": lambda lk: Lock.inspect(lk.client, lk.name),
              }, fuzz="test_lock_fuzz"),
    Primitive("ReliableQueue",
              lambda api, c, name, prefix: api.ReliableQueue(
                  c, name, prefix=prefix, visibility_timeout=60, max_deliveries=1),
              _queue, {
                  "push": lambda q: q.push(b"x"),
                  "pop": lambda q: q.pop(),
                  "stats": lambda q: q.stats(),
              }, fuzz="test_queue_fuzz"),
    Primitive("Cache", lambda api, c, name, prefix: api.Cache(c, name, ttl=30, prefix=prefix),
              _cache, {
                  "get_or_set": lambda cache: cache.get_or_set("k", lambda: 1),
                  "get": lambda cache: cache.get("k"),
                  "set": lambda cache: cache.set("k", 1),
              }, named=False, fuzz="test_cache_fuzz"),
    Primitive("BoundedCounter",
              lambda api, c, name, prefix: api.BoundedCounter(
                  c, name, min=0, max=10**6, prefix=prefix),
              _counter, {
                  "incr": lambda n: n.incr(),
                  "incr request_id": lambda n: n.incr(request_id="r"),
                  "get": lambda n: n.get(),
              }, fuzz="test_counter_fuzz"),
    Primitive("Semaphore",
              lambda api, c, name, prefix: api.Semaphore(c, name, 1, ttl=60, prefix=prefix),
              _semaphore, {"acquire": lambda s: s.acquire(blocking=False)},
              fuzz="test_semaphore_fuzz"),
    Primitive("RateLimiter",
              lambda api, c, name, prefix: api.RateLimiter(
                  c, name, rate=0.001, burst=100, prefix=prefix),  # no refill meanwhile
              _ratelimit, {"hit": lambda r: r.hit(), "peek": lambda r: r.peek()},
              fuzz="test_ratelimit_fuzz"),
]
