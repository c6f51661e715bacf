"""OpenTelemetry instrumentation, the parts tests/test_otel.py does not cover: the script
span of a call pipelined behind a blocking wait and of a durable write (call + WAIT),
functions mode (FCALL / FCALL_RO), the cache's stale serves, dead letters of expired
leases, and the Worker's process span. Real servers, the SDK's in-memory exporter and
reader; no timing margins (waits are observed on the server, not guessed)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import pyredis_atomic.asyncio as aio
from pyredis_atomic import (
    Cache,
    Durability,
    DurabilityError,
    Lock,
    Message,
    ReliableQueue,
    Retry,
    ScriptRegistry,
    ServerVersionError,
    Worker,
    default_registry,
    otel,
)
from pyredis_atomic._core.servers import ServerVersion, has_feature


@dataclass
class Recorded:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        return sorted(self.exporter.get_finished_spans(), key=lambda s: s.start_time or 0)

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

    def total(self, name: str, **want: Any) -> float:
        data = self.reader.get_metrics_data()
        total = 0.0
        if data is None:
            return total
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name != f"pyredis_atomic.{name}":
                        continue
                    for p in m.data.data_points:
                        if all((p.attributes or {}).get(k) == v for k, v in want.items()):
                            total += p.value if hasattr(p, "value") else p.count
        return total


@pytest.fixture
def rec(redis_url: str) -> Iterator[Recorded]:
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


def _eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, what
        time.sleep(0.01)


def _blocked(client: redis.Redis) -> bool:
    """True once some client of the server is blocked in a BLPOP (the wait pipeline)."""
    return any(c.get("cmd") == "blpop" for c in client.client_list())


def _after_blocked(client: redis.Redis, action: Callable[[], Any]) -> threading.Thread:
    """Run ``action`` in a thread once a consumer is blocked on the server."""
    def run() -> None:
        _eventually(lambda: _blocked(client), "nobody blocked in BLPOP")
        action()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# -- the call pipelined behind a blocking wait ---------------------------------------------
def test_the_call_behind_a_blocking_wait_has_its_script_span(
        rec: Recorded, redis_client: redis.Redis, redis_url: str) -> None:
    q = ReliableQueue(redis_client, "blocked")
    other = redis.Redis.from_url(redis_url)
    t = _after_blocked(other, lambda: ReliableQueue(other, "blocked").push(b"late"))
    msg = q.pop(timeout=60)
    t.join()
    assert msg is not None
    assert msg.payload == b"late"
    pop = rec.one("ReliableQueue.pop")
    children = rec.children(pop)
    # The first claim found nothing; the one pipelined behind the BLPOP claimed the message.
    assert [c.name for c in children][:1] == ["EVALSHA queue_claim"]
    piped = [c for c in children if "pyredis_atomic.pipeline" in attrs(c)]
    assert piped, [attrs(c) for c in children]
    a = attrs(piped[-1])
    assert piped[-1].name == "EVALSHA queue_claim"
    assert piped[-1].kind == SpanKind.CLIENT
    assert a["db.operation.name"] == "EVALSHA"
    assert a["db.stored_procedure.name"] == "queue_claim"
    assert a["db.system.name"] == "redis"
    assert a["db.operation.batch.size"] == 2
    assert tuple(a["pyredis_atomic.pipeline"]) == ("BLPOP", "EVALSHA")
    assert "server.port" in a
    assert piped[-1].status.status_code == StatusCode.UNSET
    q.ack(msg)
    other.close()


def test_a_blocked_lock_acquire_has_the_pipelined_span(
        rec: Recorded, redis_client: redis.Redis, redis_url: str) -> None:
    other = redis.Redis.from_url(redis_url)
    holder = Lock(other, "busy", ttl=60)
    assert holder.acquire(blocking=False)
    t = _after_blocked(other, holder.release)
    lock = Lock(redis_client, "busy", ttl=60)
    assert lock.acquire(timeout=60)
    t.join()
    lock.release()
    (acquire,) = [s for s in rec.named("Lock.acquire")
                  if attrs(s).get("pyredis_atomic.acquired") is True
                  and s.context is not None and rec.children(s)
                  and any("pyredis_atomic.pipeline" in attrs(c) for c in rec.children(s))]
    piped = [c for c in rec.children(acquire) if "pyredis_atomic.pipeline" in attrs(c)]
    assert piped[-1].name == "EVALSHA lock_acquire"
    assert tuple(attrs(piped[-1])["pyredis_atomic.pipeline"]) == ("BLPOP", "EVALSHA")
    other.close()


def test_a_noscript_behind_the_wait_fails_its_span_then_eval_runs(
        rec: Recorded, redis_client: redis.Redis, redis_url: str) -> None:
    q = ReliableQueue(redis_client, "flushed")

    def flush_then_push() -> None:
        other.script_flush()
        ReliableQueue(other, "flushed").push(b"x")

    other = redis.Redis.from_url(redis_url)
    t = _after_blocked(other, flush_then_push)
    msg = q.pop(timeout=60)
    t.join()
    assert msg is not None
    children = rec.children(rec.one("ReliableQueue.pop"))
    piped = [c for c in children if "pyredis_atomic.pipeline" in attrs(c)]
    assert attrs(piped[-1])["error.type"] == "NOSCRIPT"
    assert piped[-1].status.status_code == StatusCode.ERROR
    after = children[children.index(piped[-1]) + 1:]
    assert [attrs(c)["db.operation.name"] for c in after][:1] == ["EVAL"]
    other.close()


async def test_the_pipelined_span_asyncio(rec: Recorded, async_redis_client: Any,
                                          redis_url: str) -> None:
    q = aio.ReliableQueue(async_redis_client, "ablocked")
    other = redis.Redis.from_url(redis_url)
    t = _after_blocked(other, lambda: ReliableQueue(other, "ablocked").push(b"late"))
    msg = await q.pop(timeout=60)
    await asyncio.to_thread(t.join)
    assert msg is not None
    piped = [c for c in rec.children(rec.one("ReliableQueue.pop"))
             if "pyredis_atomic.pipeline" in attrs(c)]
    assert piped[-1].name == "EVALSHA queue_claim"
    assert tuple(attrs(piped[-1])["pyredis_atomic.pipeline"]) == ("BLPOP", "EVALSHA")
    other.close()


# -- durable writes: the call and WAIT in one pipeline --------------------------------------
def test_a_durable_write_has_its_script_span(rec: Recorded, redis_client: redis.Redis) -> None:
    # A standalone server has no replica: WAIT answers 0 and the push raises (applied).
    q = ReliableQueue(redis_client, "durable", durability=Durability(1, timeout=0.05))
    with pytest.raises(DurabilityError):
        q.push(b"x")
    (child,) = rec.children(rec.one("ReliableQueue.push"))
    a = attrs(child)
    assert child.name == "EVALSHA queue_push"
    assert a["db.operation.name"] == "EVALSHA"
    assert a["db.stored_procedure.name"] == "queue_push"
    assert tuple(a["pyredis_atomic.pipeline"]) == ("EVALSHA", "WAIT")
    assert a["pyredis_atomic.replicas.acknowledged"] == 0
    assert "error.type" not in a  # the script ran; too few replicas is the operation's error

    redis_client.script_flush()
    rec.exporter.clear()
    with pytest.raises(DurabilityError):
        q.push(b"y")
    first, second = rec.children(rec.one("ReliableQueue.push"))
    assert (first.name, attrs(first)["error.type"]) == ("EVALSHA queue_push", "NOSCRIPT")
    assert attrs(second)["db.operation.name"] == "EVAL"
    assert tuple(attrs(second)["pyredis_atomic.pipeline"]) == ("EVAL", "WAIT")


async def test_a_durable_write_asyncio(rec: Recorded, async_redis_client: Any) -> None:
    q = aio.ReliableQueue(async_redis_client, "adurable",
                          durability=Durability(1, timeout=0.05))
    with pytest.raises(DurabilityError):
        await q.push(b"x")
    (child,) = rec.children(rec.one("ReliableQueue.push"))
    assert tuple(attrs(child)["pyredis_atomic.pipeline"]) == ("EVALSHA", "WAIT")


# -- functions mode ----------------------------------------------------------------------------
@pytest.fixture
def fregistry(redis_client: redis.Redis, redis_server_version: ServerVersion,
              ) -> Iterator[ScriptRegistry]:
    """A functions-mode registry, its library loaded (not on Redis 6.2: no Functions)."""
    registry = ScriptRegistry(mode="functions")
    if not has_feature(redis_server_version, "functions"):
        yield registry
        return
    registry.load_library(redis_client, replace=True)
    yield registry
    registry.delete_library(redis_client)


def test_functions_mode_spans_say_fcall(rec: Recorded, redis_client: redis.Redis,
                                        redis_url: str, fregistry: ScriptRegistry,
                                        redis_server_version: ServerVersion) -> None:
    lock = Lock(redis_client, "f", ttl=10, registry=fregistry)
    if not has_feature(redis_server_version, "functions"):
        # Redis 6.2: the mode refuses before anything is sent, and the span says so
        with pytest.raises(ServerVersionError, match=r"7\.0"):
            lock.acquire()
        span = rec.one("Lock.acquire")
        assert span.status.status_code is StatusCode.ERROR
        assert attrs(span)["error.type"].endswith("ServerVersionError")
        return
    assert lock.acquire()
    (child,) = rec.children(rec.one("Lock.acquire"))
    assert child.name == "FCALL lock_acquire"
    assert attrs(child)["db.operation.name"] == "FCALL"
    assert attrs(child)["db.stored_procedure.name"] == "lock_acquire"
    assert lock.locked()
    (ro,) = rec.children(rec.one("Lock.locked"))
    assert attrs(ro)["db.operation.name"] == "FCALL_RO"
    lock.release()

    # the call behind the blocking wait, and a durable write
    q = ReliableQueue(redis_client, "fq", registry=fregistry)
    other = redis.Redis.from_url(redis_url)
    t = _after_blocked(other, lambda: ReliableQueue(other, "fq").push(b"late"))
    assert q.pop(timeout=60) is not None
    t.join()
    piped = [c for c in rec.children(rec.one("ReliableQueue.pop"))
             if "pyredis_atomic.pipeline" in attrs(c)]
    assert piped[-1].name == "FCALL queue_claim"
    assert tuple(attrs(piped[-1])["pyredis_atomic.pipeline"]) == ("BLPOP", "FCALL")
    durable = ReliableQueue(redis_client, "fd", registry=fregistry,
                            durability=Durability(1, timeout=0.05))
    with pytest.raises(DurabilityError):
        durable.push(b"x")
    (child,) = rec.children(rec.named("ReliableQueue.push")[-1])
    assert tuple(attrs(child)["pyredis_atomic.pipeline"]) == ("FCALL", "WAIT")
    other.close()


# -- the cache's stale serves --------------------------------------------------------------------
def _expired(cache: Any, key: str) -> Callable[[], bool]:
    def check() -> bool:
        info = cache.inspect(key)
        return info.expires_in is not None and info.expires_in < 0
    return check


def test_stale_serves_are_counted(rec: Recorded, redis_client: redis.Redis,
                                  caplog: pytest.LogCaptureFixture) -> None:
    cache = Cache(redis_client, "sc", ttl=0.05, stale_ttl=600, early_refresh=0)
    cache.set("k", "v1")
    _eventually(_expired(cache, "k"), "the value never expired")
    rec.exporter.clear()
    loading, release = threading.Event(), threading.Event()

    def slow() -> str:
        loading.set()
        assert release.wait(60)
        return "v2"

    refresher = threading.Thread(target=lambda: cache.get_or_set("k", slow), daemon=True)
    refresher.start()
    assert loading.wait(60)
    with caplog.at_level("DEBUG", logger="pyredis_atomic.cache"):
        assert cache.get_or_set("k", lambda: pytest.fail("a second loader")) == "v1"
    release.set()
    refresher.join(60)
    assert [r.event for r in caplog.records if hasattr(r, "event")] == ["cache.stale_served"]
    assert rec.total("cache.stale_serves", **{"pyredis_atomic.name": "sc"}) == 1
    served = rec.named("Cache.get_or_set")
    stale = [s for s in served if attrs(s).get("pyredis_atomic.cache.stale")]
    assert len(stale) == 1
    loaded = [s for s in served if s is not stale[0]]
    assert len(loaded) == 1
    assert rec.total("cache.misses") == 1  # the refresher's load
    # a fresh hit is no stale serve
    assert cache.get_or_set("k", lambda: pytest.fail("hit expected")) == "v2"
    assert rec.total("cache.stale_serves") == 1


async def test_stale_serves_asyncio(rec: Recorded, async_redis_client: Any) -> None:
    cache = aio.Cache(async_redis_client, "asc", ttl=0.05, stale_ttl=600, early_refresh=0)
    await cache.set("k", "v1")
    deadline = time.monotonic() + 30
    while ((await cache.inspect("k")).expires_in or 0) >= 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    loading, release = asyncio.Event(), asyncio.Event()

    async def slow() -> str:
        loading.set()
        await release.wait()
        return "v2"

    refresher = asyncio.ensure_future(cache.get_or_set("k", slow))
    await asyncio.wait_for(loading.wait(), 60)
    assert await cache.get_or_set("k", lambda: pytest.fail("a second loader")) == "v1"
    release.set()
    assert await refresher == "v2"
    assert rec.total("cache.stale_serves", **{"pyredis_atomic.name": "asc"}) == 1


# -- dead letters of expired leases --------------------------------------------------------------
def _lease_ran_out(q: Any, client: redis.Redis) -> Callable[[], bool]:
    """True once the earliest in-flight lease of ``q`` has ended (server time; the test
    claims its messages in one call, so they share one deadline)."""
    def check() -> bool:
        seconds, micros = client.time()
        now_ms = seconds * 1000 + micros // 1000
        first: list[tuple[bytes, float]] = client.zrange(  # type: ignore[assignment]
            q.keys["inflight"], 0, 0, withscores=True)
        return bool(first) and float(first[0][1]) < now_ms
    return check


def test_dead_letters_of_expired_leases_are_counted(
        rec: Recorded, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    q = ReliableQueue(redis_client, "expiring", visibility_timeout=0.05, max_deliveries=1)
    q.push_many([b"a", b"b"])
    assert len(q.pop_many(2)) == 2  # their only allowed delivery, never acked
    _eventually(_lease_ran_out(q, redis_client), "the leases never ran out")
    with caplog.at_level("DEBUG", logger="pyredis_atomic.queue"):
        assert q.pop() is None  # this claim's sweep buries both
    (record,) = [r for r in caplog.records
                 if getattr(r, "event", None) == "queue.expired_dead_lettered"]
    assert (getattr(record, "queue", None), getattr(record, "count", None)) == ("expiring", 2)
    assert q.stats().dead == 2
    assert rec.total("queue.dead_letters", **{"messaging.destination.name": "expiring",
                                              "pyredis_atomic.dead_letter.reason":
                                                  "expired"}) == 2

    # a nack on the last delivery is counted with its own reason
    q2 = ReliableQueue(redis_client, "nacking", max_deliveries=1)
    q2.push(b"c")
    msg = q2.pop()
    assert msg is not None
    q2.nack(msg)
    assert rec.total("queue.dead_letters", **{"messaging.destination.name": "nacking",
                                              "pyredis_atomic.dead_letter.reason":
                                                  "nacked"}) == 1
    assert rec.total("queue.dead_letters", **{"messaging.destination.name": "expiring"}) == 2


async def test_dead_letters_of_expired_leases_asyncio(rec: Recorded, async_redis_client: Any,
                                                      redis_client: redis.Redis) -> None:
    q = aio.ReliableQueue(async_redis_client, "aexpiring", visibility_timeout=0.05,
                          max_deliveries=1)
    await q.push(b"a")
    assert await q.pop() is not None
    check = _lease_ran_out(q, redis_client)
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert await q.requeue_expired() == 1  # the operator's sweep is a claim too
    assert rec.total("queue.dead_letters", **{"pyredis_atomic.dead_letter.reason":
                                              "expired"}) == 1


# -- the Worker's process span -------------------------------------------------------------------
def _process_checks(rec: Recorded, queue: str, pushed_ok: str, pushed_bad: str,
                    push_span: ReadableSpan) -> None:
    spans = {attrs(s)["messaging.message.id"]: s for s in rec.named(f"process {queue}")}
    ok, bad = spans[pushed_ok], spans[pushed_bad]
    for s in (ok, bad):
        a = attrs(s)
        assert s.kind == SpanKind.CONSUMER
        assert a["messaging.operation.type"] == "process"
        assert a["messaging.system"] == "redis"
        assert a["messaging.destination.name"] == queue
        assert a["pyredis_atomic.message.delivery_count"] == 1
    assert push_span.context is not None
    (link,) = ok.links
    assert link.context.span_id == push_span.context.span_id
    assert link.context.trace_id == push_span.context.trace_id
    assert not bad.links  # pushed without trace=True
    assert ok.status.status_code == StatusCode.UNSET
    assert bad.status.status_code == StatusCode.ERROR
    assert attrs(bad)["error.type"] == "ValueError"
    # the handler's own span is a child of the process span
    (inner,) = [s for s in rec.named("handler work")
                if s.parent is not None and ok.context is not None
                and s.parent.span_id == ok.context.span_id]
    assert inner is not None


def test_the_worker_process_span_links_to_the_producer(rec: Recorded,
                                                      redis_client: redis.Redis) -> None:
    tracer = otel.STATE.tracer if otel.STATE is not None else None
    assert tracer is not None
    q = ReliableQueue(redis_client, "wq", max_deliveries=1)
    with tracer.start_as_current_span("POST /orders"):
        good = q.push(b"ok", trace=True)
    push_span = rec.one("ReliableQueue.push")
    bad = q.push(b"bad")
    handled: list[str] = []

    def handle(msg: Message) -> None:
        with tracer.start_as_current_span("handler work"):
            handled.append(msg.id)
        if msg.payload == b"bad":
            raise ValueError("cannot")

    # one attempt: the failing message is dead at once (a retry after a jittered backoff
    # would be a second delivery, with a process span of its own)
    w = Worker(q, handle, poll=0.1, signals=False, retry=Retry(max_attempts=1))
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    _eventually(lambda: q.stats().dead == 1 and q.stats().pending == 0
                and q.stats().in_flight == 0, "not drained")
    w.stop()
    t.join(60)
    assert sorted(handled) == sorted([good, bad])
    _process_checks(rec, "wq", good, bad, push_span)


async def test_the_worker_process_span_asyncio(rec: Recorded, async_redis_client: Any) -> None:
    tracer = otel.STATE.tracer if otel.STATE is not None else None
    assert tracer is not None
    q = aio.ReliableQueue(async_redis_client, "awq", max_deliveries=1)
    with tracer.start_as_current_span("POST /orders"):
        good = await q.push(b"ok", trace=True)
    push_span = rec.one("ReliableQueue.push")
    bad = await q.push(b"bad")

    async def handle(msg: Message) -> None:
        with tracer.start_as_current_span("handler work"):
            await asyncio.sleep(0)
        if msg.payload == b"bad":
            raise ValueError("cannot")

    w = aio.Worker(q, handle, poll=0.1, signals=False, retry=Retry(max_attempts=1))
    running = asyncio.ensure_future(w.run())
    deadline = time.monotonic() + 60
    while True:
        s = await q.stats()
        if s.dead == 1 and s.pending == 0 and s.in_flight == 0:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    w.stop()
    await asyncio.wait_for(running, 60)
    _process_checks(rec, "awq", good, bad, push_span)


def test_no_process_span_without_instrumentation(redis_client: redis.Redis) -> None:
    q = ReliableQueue(redis_client, "plain")
    msg_id = q.push(b"x")
    with otel.process_span("plain", Message(msg_id, b"x", 1, "plain")) as span:
        assert span is otel._NO_SPAN
