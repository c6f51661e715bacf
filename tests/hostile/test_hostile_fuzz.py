"""Hypothesis drives every public method of every sync primitive with hostile arguments
(wrong types, empty, huge, NaN/inf, negative, bool for int, unicode, binary and lone
surrogates, multi-megabyte values). Each call works, or raises TypeError/ValueError having
sent nothing, or an AtomicError (judged by :func:`hostile_values.attempt`). After each run
the primitive's invariants hold on the server.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
import redis
from hostile_values import (
    BIG_BYTES,
    BIG_TEXT,
    HOSTILE,
    NAME,
    TEXT,
    WAIT,
    Outcome,
    arg,
    attempt,
    kwargs_of,
    pick_known,
    text,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from pyredis_atomic import (
    BoundedCounter,
    Cache,
    Lock,
    Message,
    RateLimiter,
    ReliableQueue,
    Semaphore,
)
from pyredis_atomic._core.counter import MAX_VALUE, MIN_VALUE

MODES = [{"protocol": 2}, {"protocol": 3}, {"protocol": 2, "decode_responses": True},
         {"protocol": 3, "decode_responses": True}]
STEPS = st.integers(4, 14)
# Each example is cheap (a few ms): run six times the profile's count, about ten seconds
# per primitive in the "ci" profile.
FUZZ = settings(max_examples=settings().max_examples * 6)
SECONDS = st.floats(0.001, 3600)
PREFIX = st.sampled_from(["atomic:", "app:", "", "x:y:", "\u00e9:"])


@pytest.fixture
def clients(make_client: Callable[..., redis.Redis]) -> list[redis.Redis]:
    """One client per protocol/decoding mode; each example picks one."""
    return [make_client(**mode) for mode in MODES]


@pytest.fixture
def probe(make_client: Callable[..., redis.Redis]) -> redis.Redis:
    """A separate client that reads INFO commandstats and checks the server afterwards."""
    return make_client()


def _fresh(probe: redis.Redis) -> None:
    probe.flushall()
    probe.config_resetstat()


def _pick(data: st.DataObject, clients: list[redis.Redis]) -> redis.Redis:
    return data.draw(st.sampled_from(clients), label="client")


def _construct(probe: redis.Redis, what: str, cls: Callable[..., Any], *args: Any,
               **kwargs: Any) -> Any:
    """Construct with possibly hostile arguments; None when rightly refused."""
    out = attempt(probe, what, cls, *args, **kwargs)
    return out.value if out.ok else None


# -- Lock -------------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_lock_fuzz(clients: list[redis.Redis], probe: redis.Redis, data: st.DataObject) -> None:
    """At most one holder at any time; every fence issued is larger than all before it."""
    _fresh(probe)
    client = _pick(data, clients)
    name = data.draw(NAME, label="name")
    # Hostile constructor arguments: refused before any I/O, or a working lock.
    _construct(probe, "Lock()", Lock, client, data.draw(arg(NAME)), data.draw(arg(SECONDS)),
               **kwargs_of(data, {"timeout": WAIT, "auto_renew": HOSTILE,
                                  "on_lost": HOSTILE, "prefix": arg(PREFIX)}))
    locks = []
    for _ in range(3):
        lock = _construct(probe, "Lock()", Lock, client, name,
                          data.draw(arg(st.floats(0.05, 60)), label="ttl"),
                          timeout=data.draw(WAIT, label="timeout"))
        locks.append(lock if lock is not None else Lock(client, name, 10.0, timeout=0))
    fences: list[int] = []

    for _ in range(data.draw(STEPS)):
        lock = data.draw(st.sampled_from(locks), label="lock")
        op = data.draw(st.sampled_from(["acquire", "release", "extend", "owned", "locked",
                                        "inspect", "fence", "with"]), label="op")
        if op == "acquire":
            blocking = data.draw(arg(st.booleans()), label="blocking")
            kw = kwargs_of(data, {"timeout": WAIT if blocking is not False
                                  else st.one_of(st.none(), WAIT)})
            out = attempt(probe, "acquire", lock.acquire, blocking, allowed=(RuntimeError,),
                          **kw)
            if out.error is not None and isinstance(out.error, RuntimeError):
                assert "already held" in str(out.error)
            if out.ok and out.value:
                assert not fences or lock.fence > max(fences), (lock.fence, fences)
                fences.append(lock.fence)
        elif op == "release":
            attempt(probe, "release", lock.release)
        elif op == "extend":
            attempt(probe, "extend", lock.extend,
                    **kwargs_of(data, {"ttl": st.one_of(st.none(), arg(SECONDS))}))
        elif op in ("owned", "locked"):
            out = attempt(probe, op, getattr(lock, op))
            assert out.ok
            assert isinstance(out.value, bool)
        elif op == "inspect":
            attempt(probe, "inspect", Lock.inspect, client, data.draw(arg(NAME)),
                    **kwargs_of(data, {"prefix": arg(PREFIX)}))
        elif op == "fence":
            attempt(probe, "fence", lambda lk=lock: lk.fence)
        else:
            def use(lk: Lock = lock) -> None:
                with lk:
                    assert not fences or lk.fence > max(fences), (lk.fence, fences)
                    fences.append(lk.fence)
            attempt(probe, "with", use, allowed=(RuntimeError,))
        # At most one holder, by the server's account.
        assert sum(lk.owned() for lk in locks) <= 1
    info = Lock.inspect(client, name)
    if fences:
        assert info is not None
        assert info.last_fence == max(fences)
    holders = [lk for lk in locks if lk.owned()]
    if holders:
        assert info is not None
        assert info.held
        assert info.fence == holders[0].fence


# -- ReliableQueue ----------------------------------------------------------------------------
PAYLOAD = st.one_of(st.binary(max_size=30), st.text(max_size=30), st.just(BIG_BYTES),
                    st.just(BIG_TEXT), st.sampled_from([b"", b"\xff\x00\xfe", "a b/1", "\x00"]))
DELAY = st.one_of(st.just(0), st.floats(0, 0.05), st.floats(0, 1e6))


def _entries(probe: redis.Redis, q: ReliableQueue) -> list[str]:
    """Every message id found in pending, in flight, delayed or dead (with repeats)."""
    k = q.keys
    ids = [text(e).split("/")[0] for e in probe.lrange(k["pending"], 0, -1)]
    for part in ("inflight", "delayed"):
        ids += [text(e).split("/")[0] for e in probe.zrange(k[part], 0, -1)]
    ids += [text(e) for e in probe.zrange(k["dead"], 0, -1)]
    return ids


@FUZZ
@given(data=st.data())
def test_queue_fuzz(clients: list[redis.Redis], probe: redis.Redis,
                    data: st.DataObject) -> None:
    """Every pushed message is in exactly one of pending/in flight/delayed/dead until it
    is acked or purged; payloads exist for exactly those; stats() counts agree."""
    _fresh(probe)
    client = _pick(data, clients)
    _construct(probe, "ReliableQueue()", ReliableQueue, client, data.draw(arg(NAME)),
               **kwargs_of(data, {"visibility_timeout": arg(SECONDS),
                                  "max_deliveries": arg(st.integers(1, 5)),
                                  "prefix": arg(PREFIX), "allow_eviction": HOSTILE}))
    q = ReliableQueue(client, data.draw(NAME, label="name"),
                      visibility_timeout=data.draw(st.floats(0.01, 30), label="vt"),
                      max_deliveries=data.draw(st.integers(1, 3), label="max_deliveries"))
    other = ReliableQueue(client, "other")
    pushed: set[str] = set()
    maybe_gone: set[str] = set()  # repr of ids acked, purged or redriven: may have left
    delivered: list[Message] = []
    redriven = 0

    def message() -> Any:
        forged = st.builds(Message, arg(TEXT), arg(st.binary()), arg(st.integers(0, 9)),
                           st.sampled_from([q.keys["pending"][:-8], "atomic:queue:{x}"]))
        choices = [forged, HOSTILE, st.just(Message("1-1", b"", 1, other.keys["seq"][:-4]))]
        if delivered:
            choices.insert(0, st.sampled_from(delivered))
        return data.draw(st.one_of(*choices), label="msg")

    def got(out: Outcome) -> None:
        msgs = out.value if isinstance(out.value, list) else [out.value]
        delivered.extend(m for m in msgs if isinstance(m, Message))

    for _ in range(data.draw(STEPS)):
        op = data.draw(st.sampled_from(["push", "push_many", "pop", "pop_many", "ack",
                                        "ack_many", "ack_and_pop", "nack", "extend",
                                        "requeue_expired", "stats", "dead_letters", "redrive",
                                        "purge"]), label="op")
        if op == "push":
            out = attempt(probe, op, q.push, data.draw(arg(PAYLOAD)),
                          **kwargs_of(data, {"delay": arg(DELAY), "dedup_key": arg(TEXT)}))
            if out.ok:
                pushed.add(out.value)
        elif op == "push_many":
            payloads = data.draw(arg(st.lists(arg(PAYLOAD), max_size=4)), label="payloads")
            kw = kwargs_of(data, {"delay": arg(DELAY),
                                  "dedup_keys": arg(st.lists(arg(TEXT), max_size=4))})
            out = attempt(probe, op, q.push_many, payloads, **kw)
            if out.ok:
                pushed.update(out.value)
        elif op == "pop":
            got(attempt(probe, op, q.pop, **kwargs_of(data, {"timeout": st.one_of(st.none(),
                                                                                   WAIT)})))
        elif op == "pop_many":
            got(attempt(probe, op, q.pop_many, data.draw(arg(st.integers(1, 4))),
                        **kwargs_of(data, {"timeout": st.one_of(st.none(), WAIT)})))
        elif op == "ack":
            msg = message()
            if isinstance(msg, Message):
                maybe_gone.add(repr(msg.id))
            attempt(probe, op, q.ack, msg)
        elif op == "ack_many":
            msgs = data.draw(st.one_of(st.lists(st.sampled_from(delivered), max_size=3)
                                       if delivered else st.just([]), HOSTILE))
            if isinstance(msgs, list):
                maybe_gone.update(repr(m.id) for m in msgs if isinstance(m, Message))
            attempt(probe, op, q.ack_many, msgs)
        elif op == "ack_and_pop":
            msg = message()
            if isinstance(msg, Message):
                maybe_gone.add(repr(msg.id))
            out = attempt(probe, op, q.ack_and_pop, msg,
                          **kwargs_of(data, {"timeout": st.one_of(st.none(), WAIT)}))
            if out.ok:
                got(Outcome(True, out.value[1]))
        elif op == "nack":
            attempt(probe, op, q.nack, message(), **kwargs_of(data, {"delay": arg(DELAY)}))
        elif op == "extend":
            out = attempt(probe, op, q.extend, message(),
                          **kwargs_of(data, {"visibility_timeout": arg(SECONDS)}))
            assert not out.ok or isinstance(out.value, bool)
        elif op == "requeue_expired":
            attempt(probe, op, q.requeue_expired,
                    **kwargs_of(data, {"limit": arg(st.integers(1, 10))}))
        elif op == "stats":
            attempt(probe, op, q.stats)
        elif op == "dead_letters":
            out = attempt(probe, op, q.dead_letters,
                          **kwargs_of(data, {"limit": arg(st.integers(1, 10)),
                                             "offset": arg(st.integers(0, 3))}))
            assert not out.ok or all(m.dead_reason for m in out.value)
        elif op == "redrive":
            ids = data.draw(st.one_of(st.none(), arg(st.lists(
                st.one_of(st.sampled_from(sorted(pushed)) if pushed else TEXT, TEXT),
                max_size=3))), label="ids")
            dead_before = {m.id for m in q.dead_letters(limit=10_000)}
            out = attempt(probe, op, q.redrive, ids)
            if out.ok:
                redriven += out.value
                maybe_gone.update(repr(i) for i in dead_before)
        else:
            out = attempt(probe, op, q.purge, **kwargs_of(data, {"dead_only": HOSTILE}))
            if out.ok:
                maybe_gone.update(repr(i) for i in pushed)

        # Invariants, after every step.
        ids = _entries(probe, q)
        assert len(ids) == len(set(ids)), f"a message is in two places: {sorted(ids)}"
        present = set(ids)
        kept = {i for i in pushed if repr(i) not in maybe_gone}  # never acked nor purged
        assert kept <= present, f"lost: {sorted(kept - present)}"
        assert len(present - pushed) <= redriven, "messages nobody pushed"
        stored = {text(x) for x in probe.hkeys(q.keys["payload"])}
        assert stored == present, (sorted(stored), sorted(present))
        stats = q.stats()
        k = q.keys
        assert (stats["pending"], stats["in_flight"], stats["delayed"], stats["dead"]) == (
            probe.llen(k["pending"]), probe.zcard(k["inflight"]), probe.zcard(k["delayed"]),
            probe.zcard(k["dead"]))
    assert all(not text(key).startswith("atomic:queue:{other}") for key in probe.scan_iter())


# -- BoundedCounter ---------------------------------------------------------------------------
BOUND = st.one_of(st.none(), st.integers(-20, 20), st.sampled_from([MIN_VALUE, MAX_VALUE]))
DELTA = st.one_of(st.integers(-30, 30), st.sampled_from([MIN_VALUE, MAX_VALUE, 0]))


@FUZZ
@given(data=st.data())
def test_counter_fuzz(clients: list[redis.Redis], probe: redis.Redis,
                      data: st.DataObject) -> None:
    """The value never leaves [min, max]; without a request id (or with a fresh one) the
    reply's value is the stored value."""
    _fresh(probe)
    client = _pick(data, clients)
    _construct(probe, "BoundedCounter()", BoundedCounter, client, data.draw(arg(NAME)),
               **kwargs_of(data, {"min": arg(BOUND), "max": arg(BOUND),
                                  "initial": arg(DELTA), "ttl": st.one_of(st.none(),
                                                                          arg(SECONDS)),
                                  "prefix": arg(PREFIX), "request_ttl": arg(SECONDS)}))
    low, high = sorted([data.draw(st.integers(-20, 0)), data.draw(st.integers(0, 20))])
    counter = BoundedCounter(client, data.draw(NAME, label="name"),
                             min=data.draw(st.sampled_from([low, None])),
                             max=data.draw(st.sampled_from([high, None])), initial=0)
    lo = MIN_VALUE if counter.min is None else counter.min
    hi = MAX_VALUE if counter.max is None else counter.max
    seen_ids: set[str] = set()
    for _ in range(data.draw(STEPS)):
        op = data.draw(st.sampled_from(["incr", "decr", "get", "set", "reset"]), label="op")
        if op in ("incr", "decr"):
            kw = kwargs_of(data, {"clamp": arg(st.booleans()),
                                  "request_id": st.one_of(st.none(), arg(TEXT))})
            fresh = kw.get("request_id") is None or repr(kw["request_id"]) not in seen_ids
            seen_ids.add(repr(kw.get("request_id")))
            out = attempt(probe, op, getattr(counter, op), data.draw(arg(DELTA)), **kw)
            if out.ok:
                assert lo <= out.value.value <= hi
                if fresh:
                    assert counter.get() == out.value.value
        elif op == "get":
            out = attempt(probe, op, counter.get)
            assert out.ok
        elif op == "set":
            value = data.draw(arg(st.integers(lo - 3, hi + 3) if counter.min is not None
                                  and counter.max is not None else DELTA))
            out = attempt(probe, op, counter.set, value)
            if out.ok:
                assert counter.get() == value
        else:
            attempt(probe, op, counter.reset)
            assert counter.get() == 0
        assert lo <= counter.get() <= hi


# -- Semaphore --------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_semaphore_fuzz(clients: list[redis.Redis], probe: redis.Redis,
                        data: st.DataObject) -> None:
    """Never more than ``limit`` live permits; every live permit was handed out by acquire."""
    _fresh(probe)
    client = _pick(data, clients)
    _construct(probe, "Semaphore()", Semaphore, client, data.draw(arg(NAME)),
               data.draw(arg(st.integers(1, 5))),
               **kwargs_of(data, {"ttl": arg(SECONDS), "timeout": WAIT,
                                  "prefix": arg(PREFIX)}))
    sem = Semaphore(client, data.draw(NAME, label="name"), data.draw(st.integers(1, 3)),
                    ttl=data.draw(st.floats(0.05, 60), label="ttl"))
    permits: list[str] = []
    for _ in range(data.draw(STEPS)):
        op = data.draw(st.sampled_from(["acquire", "release", "extend", "count", "holders"]))
        permit = pick_known(data, permits, arg(TEXT), "permit")
        if op == "acquire":
            blocking = data.draw(arg(st.booleans()), label="blocking")
            kw = kwargs_of(data, {"permit": st.one_of(st.none(), st.just(permit))})
            # Never the default (None: wait until a lease ends) on a blocking acquire.
            kw["timeout"] = data.draw(WAIT if blocking is not False
                                      else st.one_of(st.none(), WAIT), label="timeout")
            out = attempt(probe, op, sem.acquire, blocking, **kw)
            if out.ok and out.value is not None:
                permits.append(out.value)
        elif op == "release":
            out = attempt(probe, op, sem.release, permit)
            assert not out.ok or isinstance(out.value, bool)
        elif op == "extend":
            attempt(probe, op, sem.extend, permit,
                    **kwargs_of(data, {"ttl": st.one_of(st.none(), arg(SECONDS))}))
        else:
            assert attempt(probe, op, getattr(sem, op)).ok
        holders = sem.holders()
        assert len(holders) <= sem.limit
        assert sem.count() <= sem.limit
        assert {p for p, _ in holders} <= set(permits)


# -- Cache ------------------------------------------------------------------------------------
def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(inner, max_size=3),
                     st.dictionaries(st.text(max_size=4), inner, max_size=3))


JSONABLE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**60), 2**60),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10)),
    _containers,
    max_leaves=6,
)


class LoaderFailed(Exception):
    """Raised by a fuzzed loader: goes to its caller, never cached."""


def _loader(data: st.DataObject) -> Any:
    kind = data.draw(st.sampled_from(["value", "raise", "hostile", "not callable"]))
    if kind == "value":
        value = data.draw(st.one_of(JSONABLE, st.just(BIG_TEXT)))
        return lambda: value
    if kind == "raise":
        def fail() -> Any:
            raise LoaderFailed("boom")
        return fail
    if kind == "hostile":
        value = data.draw(HOSTILE)
        return lambda: value
    # Not callable (a callable one, such as ``type``, would raise its own TypeError: the
    # loader's error, which goes to its caller after the lease was taken and freed).
    return data.draw(HOSTILE.filter(lambda v: not callable(v)))


def _same(a: Any, b: Any) -> bool:
    """Equal after a JSON round trip (tuples read back as lists), or equal bytes."""
    if isinstance(a, (bytes, bytearray, memoryview)) or isinstance(b, (bytes, bytearray)):
        return bytes(a) == bytes(b)
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@FUZZ
@given(data=st.data())
def test_cache_fuzz(clients: list[redis.Redis], probe: redis.Redis,
                    data: st.DataObject) -> None:
    """A value that was set (or loaded) is what a get returns while it is fresh; a value
    that cannot be encoded changes nothing."""
    _fresh(probe)
    client = _pick(data, clients)
    _construct(probe, "Cache()", Cache, client, data.draw(arg(NAME)), data.draw(arg(SECONDS)),
               **kwargs_of(data, {"serializer": arg(st.sampled_from(["json", "raw", "pickle"])),
                                  "prefix": arg(PREFIX), "lock_ttl": arg(SECONDS),
                                  "wait_timeout": WAIT, "early_refresh": arg(st.floats(0, 5)),
                                  "stale_ttl": arg(SECONDS),
                                  "cache_none": arg(st.one_of(st.booleans(), SECONDS))}))
    raw = data.draw(st.booleans(), label="raw")
    cache = Cache(client, data.draw(NAME, label="name"), 3600, "raw" if raw else "json")
    values = st.one_of(st.binary(max_size=20), st.just(BIG_BYTES)) if raw else st.one_of(
        JSONABLE, st.just(BIG_TEXT))
    keys = st.one_of(st.sampled_from(["k", "{k}", "k}:e", "\u00e9"]), NAME)
    model: dict[str, Any] = {}
    options = {"ttl": st.one_of(st.none(), arg(SECONDS)), "lock_ttl": arg(SECONDS),
               "wait_timeout": WAIT, "early_refresh": arg(st.floats(0, 5)),
               "stale_ttl": arg(SECONDS), "cache_none": arg(st.one_of(st.booleans(), SECONDS))}
    for _ in range(data.draw(STEPS)):
        op = data.draw(st.sampled_from(["set", "get", "delete", "get_or_set", "inspect",
                                        "key_of"]), label="op")
        key = data.draw(arg(keys), label="key")
        if op == "set":
            value = data.draw(arg(values), label="value")
            kw = kwargs_of(data, {"ttl": st.one_of(st.none(), arg(SECONDS)),
                                  "stale_ttl": arg(SECONDS)})
            out = attempt(probe, op, cache.set, key, value, **kw)
            if out.ok and (kw.get("ttl") is None or kw["ttl"] >= 1):
                model[key] = value
                assert _same(cache.get(key), value)
            elif out.ok:
                # Stored with a lease shorter than a second: it may be gone by the next read,
                # and it replaced what the model had for the key.
                model.pop(key, None)
        elif op == "get":
            out = attempt(probe, op, cache.get, key, **kwargs_of(data, {"default": HOSTILE}))
            if out.ok and key in model:
                assert _same(out.value, model[key])
        elif op == "delete":
            out = attempt(probe, op, cache.delete, key)
            if out.ok:
                model.pop(key, None)
        elif op == "get_or_set":
            if data.draw(st.booleans(), label="plain"):  # valid arguments, a good loader
                key = data.draw(keys, label="key")
                kw, loaded = {}, data.draw(values, label="loaded")
                loader = lambda v=loaded: v  # noqa: E731
            else:
                kw, loader = kwargs_of(data, options), _loader(data)
            out = attempt(probe, op, cache.get_or_set, key, loader, allowed=(LoaderFailed,),
                          **kw)
            if out.ok and key in model:
                assert _same(out.value, model[key])
            if out.ok and key not in model and "ttl" not in kw:
                # A fresh load is stored for the cache's hour (unless it was None).
                stored = cache.get(key, default=KeyError)
                assert stored is KeyError or _same(stored, out.value)
        elif op == "inspect":
            out = attempt(probe, op, cache.inspect, key)
            assert not out.ok or out.value["exists"] in (True, False)
        else:
            attempt(probe, op, cache.key_of, key)
    for key, value in model.items():
        assert _same(cache.get(key), value)


# -- RateLimiter ------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_ratelimit_fuzz(clients: list[redis.Redis], probe: redis.Redis,
                        data: st.DataObject) -> None:
    """``remaining`` stays within [0, burst], ``retry_after``/``reset_after`` are sane, an
    allowed hit has no ``retry_after``, and a refused hit spends nothing."""
    _fresh(probe)
    client = _pick(data, clients)
    _construct(probe, "RateLimiter()", RateLimiter, client, data.draw(arg(NAME)),
               data.draw(arg(st.floats(0.001, 1e6))),
               **kwargs_of(data, {"period": arg(SECONDS), "burst": arg(st.integers(1, 100)),
                                  "prefix": arg(PREFIX)}))
    limiter = RateLimiter(client, data.draw(NAME, label="name"),
                          data.draw(st.floats(0.01, 1000), label="rate"),
                          data.draw(st.floats(0.01, 100), label="period"),
                          data.draw(st.one_of(st.none(), st.integers(1, 20)), label="burst"))
    refill = limiter.burst * limiter.period / limiter.rate
    for _ in range(data.draw(STEPS)):
        op = data.draw(st.sampled_from(["hit", "peek", "reset"]), label="op")
        if op == "reset":
            assert attempt(probe, op, limiter.reset).ok
            continue
        n = data.draw(arg(st.integers(1, limiter.burst)), label="n")
        out = attempt(probe, op, getattr(limiter, op), n)
        if not out.ok:
            continue
        r = out.value
        assert 0 <= r.remaining <= limiter.burst
        assert r.limit == limiter.burst
        assert r.retry_after >= 0
        assert 0 <= r.reset_after <= refill + 1e-3
        assert math.isfinite(r.retry_after)
        assert math.isfinite(r.reset_after)
        if r.allowed:
            assert r.retry_after == 0
        elif op == "hit":
            assert limiter.peek(n).remaining >= r.remaining  # nothing was spent
