"""OpenTelemetry instrumentation against a real server, read back with the SDK's in-memory
span exporter and metric reader: span trees and attributes (sync and asyncio), error spans,
metrics, and that uninstrumenting leaves the library exactly as it was."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import redis.asyncio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import pyredis_atomic.asyncio as aio
from pyredis_atomic import (
    BoundedCounter,
    Cache,
    Lock,
    LockNotOwnedError,
    RateLimiter,
    ReliableQueue,
    Semaphore,
    WrongTypeError,
    default_registry,
    otel,
)


@dataclass
class Recorded:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, [s.name for s in self.spans()]
        return found[0]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        assert parent.context is not None
        return [s for s in self.spans()
                if s.parent is not None and s.parent.span_id == parent.context.span_id]

    def metrics(self) -> dict[str, list[Any]]:
        """Instrument name -> its data points."""
        data = self.reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    out.setdefault(m.name, []).extend(m.data.data_points)
        return out

    def total(self, name: str, **attrs: Any) -> float:
        """Sum of a counter (or count of a histogram) over the points matching ``attrs``."""
        points = self.metrics().get(f"pyredis_atomic.{name}", [])
        total = 0.0
        for p in points:
            if all(p.attributes.get(k) == v for k, v in attrs.items()):
                total += p.value if hasattr(p, "value") else p.count
        return total


@pytest.fixture
def rec(redis_url: str) -> Iterator[Recorded]:
    # The scripts are loaded first: the fixtures flushed them, and a first call would show
    # its NOSCRIPT recovery (tested on its own below).
    with redis.Redis.from_url(redis_url) as c:
        default_registry().load(c)
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    otel.instrument(tracer_provider, meter_provider)
    try:
        yield Recorded(exporter, reader)
    finally:
        otel.uninstrument()
        tracer_provider.shutdown()
        meter_provider.shutdown()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


# -- locks -------------------------------------------------------------------------------------
def test_lock_spans_and_metrics(rec: Recorded, redis_client: redis.Redis) -> None:
    lock = Lock(redis_client, "jobs", ttl=10)
    with lock:
        time.sleep(0.05)
    other = Lock(redis_client, "jobs", ttl=10)
    assert other.acquire(blocking=False)
    assert not lock.acquire(blocking=False)
    other.release()

    acquires = rec.named("Lock.acquire")
    assert len(acquires) == 3
    first = acquires[0]
    assert first.kind == SpanKind.INTERNAL
    assert attrs(first)["pyredis_atomic.primitive"] == "lock"
    assert attrs(first)["pyredis_atomic.name"] == "jobs"
    assert attrs(first)["pyredis_atomic.acquired"] is True
    assert attrs(first)["pyredis_atomic.lock.fence"] == 1
    assert attrs(acquires[2])["pyredis_atomic.acquired"] is False
    assert len(rec.named("Lock.release")) == 2
    assert rec.total("lock.wait.duration", **{"pyredis_atomic.acquired": True}) == 2
    assert rec.total("lock.wait.duration", **{"pyredis_atomic.acquired": False}) == 1
    holds = rec.metrics()["pyredis_atomic.lock.hold.duration"]
    assert sum(p.count for p in holds) == 2
    assert max(p.max for p in holds) >= 0.05


def test_script_spans_follow_the_redis_conventions(rec: Recorded, redis_client: redis.Redis,
                                                  redis_server: Any) -> None:
    lock = Lock(redis_client, "jobs", ttl=10)
    assert lock.acquire()
    op = rec.one("Lock.acquire")
    (child,) = rec.children(op)
    assert child.name == "EVALSHA lock_acquire"
    assert child.kind == SpanKind.CLIENT
    a = attrs(child)
    assert a["db.system.name"] == "redis"
    assert a["db.operation.name"] == "EVALSHA"
    assert a["db.stored_procedure.name"] == "lock_acquire"
    assert a["db.namespace"] == "0"
    assert a["server.address"] == redis_server.host
    assert a["server.port"] == redis_server.port
    assert "pyredis_atomic.keys" not in a
    assert child.status.status_code == StatusCode.UNSET
    lock.release()

    # A read-only script goes out as EVALSHA_RO where the server has it.
    # Redis 6.2 lacks EVALSHA_RO: a client's first read-only call shows the refused
    # EVALSHA_RO, then the EVALSHA it falls back to (docs/servers.md).
    ReliableQueue(redis_client, "q").stats()
    *refused, stats_child = sorted(rec.children(rec.one("ReliableQueue.stats")),
                                   key=lambda s: s.start_time or 0)
    assert [attrs(r)["db.operation.name"] for r in refused] in ([], ["EVALSHA_RO"])
    assert attrs(stats_child)["db.operation.name"] in ("EVALSHA_RO", "EVALSHA")

    # NOSCRIPT: the EVALSHA span fails with its prefix, then EVAL runs in a span of its own.
    redis_client.script_flush()
    rec.exporter.clear()
    assert lock.acquire()
    op = rec.one("Lock.acquire")
    first, second = sorted(rec.children(op), key=lambda s: s.start_time or 0)
    assert (first.name, attrs(first)["error.type"]) == ("EVALSHA lock_acquire", "NOSCRIPT")
    assert first.status.status_code == StatusCode.ERROR
    assert attrs(second)["db.operation.name"] == "EVAL"
    assert "error.type" not in attrs(second)
    assert op.status.status_code == StatusCode.UNSET


def test_a_wrong_type_shows_on_the_script_span(rec: Recorded, redis_client: redis.Redis) -> None:
    q = ReliableQueue(redis_client, "wrong")
    redis_client.set(q.keys["pending"], "x")
    with pytest.raises(WrongTypeError):
        q.stats()
    # on Redis 6.2 the refused EVALSHA_RO (no such command there) comes first
    *refused, child = sorted(rec.children(rec.one("ReliableQueue.stats")),
                             key=lambda s: s.start_time or 0)
    assert [attrs(r)["db.operation.name"] for r in refused] in ([], ["EVALSHA_RO"])
    assert attrs(child)["error.type"] == "WRONGTYPE"


async def test_script_spans_asyncio(rec: Recorded, async_redis_client: Any) -> None:
    q = aio.ReliableQueue(async_redis_client, "jobs")
    await q.push(b"x")
    (child,) = rec.children(rec.one("ReliableQueue.push"))
    assert attrs(child)["db.stored_procedure.name"] == "queue_push"
    assert attrs(child)["db.system.name"] == "redis"


async def test_lock_spans_asyncio(rec: Recorded, async_redis_client: Any) -> None:
    lock = aio.Lock(async_redis_client, "jobs", ttl=10)
    async with lock:
        await asyncio.sleep(0.01)
    span = rec.one("Lock.acquire")
    assert attrs(span)["pyredis_atomic.acquired"] is True
    assert rec.one("Lock.release").parent is None
    assert rec.total("lock.hold.duration") == 1


def test_lock_lost_is_counted(rec: Recorded, redis_client: redis.Redis) -> None:
    lock = Lock(redis_client, "short", ttl=0.05)
    assert lock.acquire()
    time.sleep(0.15)
    with pytest.raises(LockNotOwnedError):
        lock.extend()
    span = rec.one("Lock.extend")
    assert span.status.status_code == StatusCode.ERROR
    assert attrs(span)["error.type"] == "LockNotOwnedError"
    assert rec.total("lock.lost", **{"pyredis_atomic.name": "short"}) == 1


# -- queues ------------------------------------------------------------------------------------
def test_queue_spans_follow_the_messaging_conventions(rec: Recorded,
                                                      redis_client: redis.Redis) -> None:
    q = ReliableQueue(redis_client, "jobs", max_deliveries=1)
    mid = q.push(b"one")
    q.push_many([b"two", b"three"])
    msg = q.pop()
    assert msg is not None
    assert q.ack(msg)
    assert not q.ack(msg)  # no longer current
    acked, nxt = q.ack_and_pop(q.pop_many(1)[0])
    assert acked
    assert nxt is not None
    q.nack(nxt)  # max_deliveries=1: dead

    push = rec.one("ReliableQueue.push")
    assert push.kind == SpanKind.PRODUCER
    a = attrs(push)
    assert a["messaging.operation.type"] == "send"
    assert a["messaging.destination.name"] == "jobs"
    assert a["messaging.message.id"] == mid
    assert attrs(rec.one("ReliableQueue.push_many"))["messaging.batch.message_count"] == 2
    pop = rec.one("ReliableQueue.pop")
    assert pop.kind == SpanKind.CLIENT
    assert attrs(pop)["messaging.operation.type"] == "receive"
    assert attrs(pop)["messaging.message.id"] == mid
    assert attrs(pop)["pyredis_atomic.message.delivery_count"] == 1
    acks = rec.named("ReliableQueue.ack")
    assert [attrs(s)["messaging.operation.type"] for s in acks] == ["settle", "settle"]
    assert attrs(acks[0])["messaging.message.id"] == mid
    assert attrs(rec.one("ReliableQueue.nack"))["messaging.operation.type"] == "settle"

    dest = {"messaging.destination.name": "jobs"}
    assert rec.total("queue.pushes", **dest) == 3
    assert rec.total("queue.claims", **dest) == 3
    assert rec.total("queue.acks", **dest) == 2
    assert rec.total("queue.nacks", **dest) == 1
    assert rec.total("queue.claim.duration", **dest) == 3  # pop, pop_many, ack_and_pop


async def test_queue_spans_asyncio(rec: Recorded, async_redis_client: Any) -> None:
    q = aio.ReliableQueue(async_redis_client, "jobs")
    mid = await q.push(b"x")
    msg = await q.pop()
    assert msg is not None
    await q.ack(msg)
    assert attrs(rec.one("ReliableQueue.pop"))["messaging.message.id"] == mid
    assert rec.total("queue.pushes") == 1
    assert rec.total("queue.acks") == 1


# -- caches ------------------------------------------------------------------------------------
def test_cache_hits_misses_and_loader_calls(rec: Recorded, redis_client: redis.Redis) -> None:
    cache = Cache(redis_client, "users", ttl=60)
    assert cache.get_or_set("u1", lambda: {"id": 1}) == {"id": 1}
    assert cache.get_or_set("u1", lambda: {"id": 2}) == {"id": 1}
    assert cache.get_or_set("u2", lambda: 2) == 2
    spans = rec.named("Cache.get_or_set")
    assert len(spans) == 3
    assert "pyredis_atomic.cache.key" not in attrs(spans[0])  # keys only when opted in
    name = {"pyredis_atomic.name": "users"}
    assert rec.total("cache.misses", **name) == 2
    assert rec.total("cache.hits", **name) == 1
    assert rec.total("cache.loader.calls", **name) == 2


async def test_cache_asyncio_with_an_async_loader(rec: Recorded, async_redis_client: Any) -> None:
    cache = aio.Cache(async_redis_client, "users", ttl=60)

    async def load() -> int:
        return 7

    assert await cache.get_or_set("k", load) == 7
    assert await cache.get_or_set("k", load) == 7
    assert rec.total("cache.misses") == 1
    assert rec.total("cache.hits") == 1


def test_record_keys_opt_in(redis_client: redis.Redis) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.instrument(provider, MeterProvider(), record_keys=True)
    try:
        Cache(redis_client, "users", ttl=60).get_or_set("user:42", lambda: 1)
    finally:
        otel.uninstrument()
    spans = exporter.get_finished_spans()
    span = next(s for s in spans if s.name == "Cache.get_or_set")
    assert attrs(span)["pyredis_atomic.cache.key"] == "user:42"
    script = next(s for s in spans if s.name.endswith("cache_fetch"))
    assert any("user:42" in k for k in attrs(script)["pyredis_atomic.keys"])


# -- counters, limiters, semaphores ------------------------------------------------------------
def test_error_span_names_the_error(rec: Recorded, redis_client: redis.Redis) -> None:
    counter = BoundedCounter(redis_client, "c")
    redis_client.set(counter.key, "not a number")
    with pytest.raises(Exception, match="integer"):
        counter.incr()
    span = rec.one("BoundedCounter.incr")
    assert span.status.status_code == StatusCode.ERROR
    assert attrs(span)["error.type"] == "NOTINT"
    assert [e.name for e in span.events] == ["exception"]

    q = ReliableQueue(redis_client, "wrong")
    redis_client.set(q.keys["pending"], "x")
    with pytest.raises(WrongTypeError):
        q.push(b"x")
    assert attrs(rec.one("ReliableQueue.push"))["error.type"] == "WrongTypeError"


def test_limiter_and_semaphore_metrics(rec: Recorded, redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, "api", rate=2, period=60, burst=2)
    results = [bool(limiter.hit()) for _ in range(3)]
    assert results == [True, True, False]
    assert rec.total("limiter.allowed", **{"pyredis_atomic.name": "api"}) == 2
    assert rec.total("limiter.denied", **{"pyredis_atomic.name": "api"}) == 1
    assert [attrs(s)["pyredis_atomic.allowed"] for s in rec.named("RateLimiter.hit")] == \
        results

    sem = Semaphore(redis_client, "pool", limit=1, ttl=10)
    permit = sem.acquire()
    assert permit is not None
    freed = threading.Timer(0.1, sem.release, args=(permit,))
    freed.start()
    again = sem.acquire(timeout=5)
    freed.join()
    assert again is not None
    waits = rec.metrics()["pyredis_atomic.semaphore.wait.duration"]
    assert sum(p.count for p in waits) == 2
    assert max(p.max for p in waits) >= 0.09


# -- switching it on and off -------------------------------------------------------------------
def test_uninstrument_restores_the_original_methods(redis_client: redis.Redis) -> None:
    originals = {cls: dict(vars(cls)) for cls in (Lock, aio.Lock, ReliableQueue, aio.Cache)}
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.instrument(provider, MeterProvider())
    assert otel.is_instrumented()
    assert Lock.acquire is not originals[Lock]["acquire"]
    otel.instrument(provider, MeterProvider())  # again: replaces, does not wrap twice
    otel.uninstrument()
    otel.uninstrument()  # harmless
    assert not otel.is_instrumented()
    for cls, before in originals.items():
        assert dict(vars(cls)) == before
    Lock(redis_client, "x").acquire(blocking=False)
    assert exporter.get_finished_spans() == ()


def test_instrument_without_the_api_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ImportError, match=r"pyredis-atomic\[otel\]"):
        otel.instrument()
    assert not otel.is_instrumented()
    with pytest.raises(TypeError, match="record_keys"):
        otel.instrument(record_keys="yes")  # type: ignore[arg-type]


def test_error_type_of_redis_replies() -> None:
    assert otel.error_type(redis.ResponseError("WRONGTYPE Operation against a key")) == \
        "WRONGTYPE"
    assert otel.error_type(redis.exceptions.NoScriptError("NOSCRIPT No matching script")) == \
        "NOSCRIPT"
    wrapped = ("Error running script (call to f_0123): @user_script:9: WRONGTYPE Operation "
               "against a key holding the wrong kind of value")
    assert otel.error_type(redis.ResponseError(wrapped)) == "WRONGTYPE"
    assert otel.error_type(redis.ResponseError("ERR unknown command")) == "ResponseError"
    assert otel.error_type(redis.ConnectionError("refused")) == "ConnectionError"
    assert otel.error_type(ValueError("WRONG")) == "ValueError"


# -- trace context from producer to consumer ---------------------------------------------------
def test_the_consumer_span_links_to_the_producer_span(rec: Recorded,
                                                      redis_client: redis.Redis) -> None:
    tracer = otel.STATE.tracer if otel.STATE is not None else None
    assert tracer is not None
    producer = ReliableQueue(redis_client, "jobs")
    with tracer.start_as_current_span("web request"):
        mid = producer.push(b"payload", trace=True)
    push = rec.one("ReliableQueue.push")
    assert push.context is not None
    assert mid.endswith("t")

    consumer = ReliableQueue(redis.Redis(connection_pool=redis_client.connection_pool), "jobs")
    msg = consumer.pop()
    assert msg is not None
    assert msg.payload == b"payload"  # the trace context is not part of the payload
    ctx = push.context
    expected = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    assert msg.traceparent == expected
    pop = rec.one("ReliableQueue.pop")
    assert pop.context is not None
    assert pop.context.trace_id != push.context.trace_id  # a trace of its own...
    (link,) = pop.links
    assert link.context.trace_id == push.context.trace_id  # ...linked to the producer's
    assert link.context.span_id == push.context.span_id
    assert consumer.ack(msg)


async def test_trace_context_asyncio_batches_dedup_delay_and_dead_letters(
        rec: Recorded, async_redis_client: Any) -> None:
    q = aio.ReliableQueue(async_redis_client, "jobs", max_deliveries=1)
    ids = await q.push_many([b"a", b"b"], dedup_keys=["ka", "kb"], trace=True)
    assert all(i.endswith("tk") for i in ids)
    assert await q.push(b"again", dedup_key="ka", trace=True) == ids[0]  # dedup still works
    delayed = await q.push(b"later", delay=0.05, trace=True)
    got = await q.pop_many(2)
    assert [m.payload for m in got] == [b"a", b"b"]
    assert len({m.traceparent for m in got}) == 1
    await q.ack_many(got)
    assert await q.push(b"new", dedup_key="ka") != ids[0]  # acked: the dedup key was freed
    await asyncio.sleep(0.1)
    msgs = await q.pop_many(2)
    later = next(m for m in msgs if m.id == delayed)
    assert later.payload == b"later"
    assert later.traceparent is not None
    await q.nack(later)  # max_deliveries=1: dead
    (dead,) = await q.dead_letters()
    assert (dead.payload, dead.traceparent) == (b"later", later.traceparent)
    assert await q.redrive() == 1
    (again,) = await q.pop_many(5)
    assert again.id != delayed
    assert again.id.endswith("t")
    assert (again.payload, again.traceparent) == (b"later", later.traceparent)
    receive = [s for s in rec.named("ReliableQueue.pop_many") if s.links]
    assert receive

    urgent = await q.push(b"urgent", priority=2, trace=True)
    assert urgent.endswith("tp2")  # the trace mark comes before the priority's
    (first,) = await q.pop_many(1)
    assert (first.id, first.payload, first.priority) == (urgent, b"urgent", 2)
    assert first.traceparent is not None


def test_trace_true_without_instrumentation_stores_nothing(redis_client: redis.Redis) -> None:
    q = ReliableQueue(redis_client, "plain")
    mid = q.push(b"x", trace=True)
    assert "t" not in mid
    msg = q.pop()
    assert msg is not None
    assert (msg.payload, msg.traceparent) == (b"x", None)
    with pytest.raises(TypeError, match="trace must be a bool"):
        q.push(b"x", trace=1)  # type: ignore[arg-type]
    core = q._spec
    with pytest.raises(ValueError, match="traceparent"):
        core.push_call(b"x", traceparent="not-a-traceparent")


def test_the_library_imports_neither_opentelemetry_nor_prometheus_client() -> None:
    # Zero cost without instrument(): not even an import (nor for the exporter's client).
    # Counted beyond what redis-py itself imports (redis-py 8 brings opentelemetry along).
    code = ("import sys, redis, redis.asyncio; before = set(sys.modules); "
            "import pyredis_atomic, pyredis_atomic.asyncio, pyredis_atomic.cli.main; "
            "print(sorted(m for m in set(sys.modules) - before "
            "if m.startswith(('opentelemetry', 'prometheus_client'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# -- every instrumented operation, both APIs ---------------------------------------------------
def _sync_scenario(c: Any) -> None:
    lock = Lock(c, "all", ttl=10)
    lock.acquire()
    lock.extend()
    lock.owned()
    lock.locked()
    lock.release()
    q = ReliableQueue(c, "all", max_deliveries=1)
    q.push(b"1")
    q.push_many([b"2", b"3", b"4"])
    m = q.pop()
    assert m is not None
    q.extend(m)
    q.ack(m)
    q.ack_and_pop(q.pop_many(1)[0])
    nxt = q.pop()
    assert nxt is not None
    q.nack(nxt)
    q.ack_many([])
    q.requeue_expired()
    q.stats()
    q.dead_letters()
    q.redrive()
    q.purge()
    cache = Cache(c, "all", ttl=60)
    cache.get_or_set("k", lambda: 1)
    cache.get("k")
    cache.set("k", 2)
    cache.inspect("k")
    cache.delete("k")
    counter = BoundedCounter(c, "all", max=100)
    counter.incr()
    counter.decr()
    counter.get()
    counter.set(5)
    counter.reset()
    sem = Semaphore(c, "all", limit=2)
    permit = sem.acquire()
    assert permit is not None
    sem.extend(permit)
    sem.count()
    sem.holders()
    sem.release(permit)
    limiter = RateLimiter(c, "all", rate=10, period=1)
    limiter.hit()
    limiter.peek()
    limiter.reset()


async def _async_scenario(c: Any) -> None:
    lock = aio.Lock(c, "all", ttl=10)
    await lock.acquire()
    await lock.extend()
    await lock.owned()
    await lock.locked()
    await lock.release()
    q = aio.ReliableQueue(c, "all", max_deliveries=1)
    await q.push(b"1")
    await q.push_many([b"2", b"3", b"4"])
    m = await q.pop()
    assert m is not None
    await q.extend(m)
    await q.ack(m)
    await q.ack_and_pop((await q.pop_many(1))[0])
    nxt = await q.pop()
    assert nxt is not None
    await q.nack(nxt)
    await q.ack_many([])
    await q.requeue_expired()
    await q.stats()
    await q.dead_letters()
    await q.redrive()
    await q.purge()
    cache = aio.Cache(c, "all", ttl=60)
    await cache.get_or_set("k", lambda: 1)
    await cache.get("k")
    await cache.set("k", 2)
    await cache.inspect("k")
    await cache.delete("k")
    counter = aio.BoundedCounter(c, "all", max=100)
    await counter.incr()
    await counter.decr()
    await counter.get()
    await counter.set(5)
    await counter.reset()
    sem = aio.Semaphore(c, "all", limit=2)
    permit = await sem.acquire()
    assert permit is not None
    await sem.extend(permit)
    await sem.count()
    await sem.holders()
    await sem.release(permit)
    limiter = aio.RateLimiter(c, "all", rate=10, period=1)
    await limiter.hit()
    await limiter.peek()
    await limiter.reset()


# Operations that may send no script: an empty ack_many (nothing to do), a cache read
# answered by the fresh copy (one plain GET, no script; the operation's span covers it).
_MAY_SEND_NOTHING = {"ReliableQueue.ack_many", "Cache.get"}


def _check_every_operation(rec: Recorded) -> None:
    expected = {f"{cls}.{method}" for cls, methods in otel._operations().items()
                for method in methods}
    seen = {s.name for s in rec.spans()}
    assert expected - seen == set()
    for span in rec.spans():
        if span.name not in expected or span.name in _MAY_SEND_NOTHING:
            continue
        children = rec.children(span)
        assert children, f"{span.name} has no script span"
        for child in children:
            a = attrs(child)
            assert a.get("db.system.name") == "redis", (span.name, child.name)
            assert a["db.operation.name"] in ("EVALSHA", "EVALSHA_RO", "EVAL"), child.name
            assert child.name == f"{a['db.operation.name']} {a['db.stored_procedure.name']}"
        assert span.status.status_code == StatusCode.UNSET, span.name


def test_every_operation_has_its_span_tree_sync(rec: Recorded,
                                                redis_client: redis.Redis) -> None:
    _sync_scenario(redis_client)
    _check_every_operation(rec)


async def test_every_operation_has_its_span_tree_asyncio(rec: Recorded,
                                                         async_redis_client: Any) -> None:
    await _async_scenario(async_redis_client)
    _check_every_operation(rec)


def test_no_configured_provider_means_no_work(redis_client: redis.Redis) -> None:
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.trace import NoOpTracerProvider

    # Neither configured (the API's global proxies, as before an application sets any):
    # instrumented, but nothing is started or recorded.
    otel.instrument()
    try:
        state = otel.STATE
        assert state is not None
        assert (state.tracing, state.measuring) == (False, False)
        q = ReliableQueue(redis_client, "idle")
        assert "t" not in q.push(b"x", trace=True)  # no trace context to store
    finally:
        otel.uninstrument()

    # Metrics only: no spans, the counters still count.
    reader = InMemoryMetricReader()
    otel.instrument(NoOpTracerProvider(), MeterProvider(metric_readers=[reader]))
    try:
        assert otel.STATE is not None
        assert (otel.STATE.tracing, otel.STATE.measuring) == (False, True)
        ReliableQueue(redis_client, "metrics-only").push(b"x")
        rec = Recorded(InMemorySpanExporter(), reader)
        assert rec.total("queue.pushes") == 1
    finally:
        otel.uninstrument()

    # Spans only.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.instrument(provider, NoOpMeterProvider())
    try:
        assert otel.STATE is not None
        assert (otel.STATE.tracing, otel.STATE.measuring) == (True, False)
        ReliableQueue(redis_client, "spans-only").push(b"x")
        assert [s.name for s in exporter.get_finished_spans()][-1] == "ReliableQueue.push"
    finally:
        otel.uninstrument()
