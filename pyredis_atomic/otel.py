"""OpenTelemetry instrumentation: a span per primitive operation, a child span per script
call, and metrics, for the sync and the asyncio API alike.

Needs the ``otel`` extra (``opentelemetry-api`` only; the application brings the SDK and its
exporters)::

    from pyredis_atomic import otel
    otel.instrument()            # the global tracer and meter providers
    ...
    otel.uninstrument()

Nothing is instrumented until :func:`instrument` is called, and until then it costs nothing:
the operations are the library's own methods, untouched. :func:`instrument` wraps the
public methods of every primitive class (``Lock.acquire``, ``ReliableQueue.pop``,
``Cache.get_or_set``, ... and their asyncio twins) with a span and the metrics below, and
has the script registry open a child span per script call; :func:`uninstrument` puts the
original methods back.

Spans follow the OpenTelemetry semantic conventions: script calls those for Redis
(``db.system.name=redis``, ``db.operation.name`` ``EVALSHA``/``EVALSHA_RO``/``EVAL``, or
``FCALL``/``FCALL_RO`` in functions mode; also for the call pipelined behind a blocking
wait and a durable write's call + ``WAIT``,
``db.stored_procedure.name`` the script, ``db.namespace`` the database index,
``server.address``/``server.port``, ``error.type`` the error prefix such as ``WRONGTYPE`` or
``NOSCRIPT``, else the exception class); queue operations those for messaging
(``messaging.operation.type`` send/receive/settle, and process for a Worker's handler
call, ``messaging.destination.name``,
``messaging.message.id``, ``pyredis_atomic.message.delivery_count``). Cache keys and Redis
key names are recorded only with ``record_keys=True``.

Metrics (instrument names): ``pyredis_atomic.lock.wait.duration`` and
``pyredis_atomic.lock.hold.duration`` (histograms, s), ``pyredis_atomic.lock.lost``,
``pyredis_atomic.lock.renewal.failures``; ``pyredis_atomic.cache.hits``, ``.misses``,
``.loader.calls``, ``.stampede.waiters``, ``.stale_serves``; ``pyredis_atomic.queue.pushes``,
``.claims``, ``.acks``, ``.nacks``, ``.dead_letters``, ``pyredis_atomic.queue.claim.duration``
(histogram, s); ``pyredis_atomic.limiter.allowed``, ``.denied``;
``pyredis_atomic.semaphore.wait.duration`` (histogram, s).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from ._core import events
from ._core.monitor import FailureTypes

__all__ = ["error_type", "instrument", "is_instrumented", "traceparent", "uninstrument"]

SCOPE = "pyredis_atomic"

# The active instrumentation, or None. Every hook in the library reads this one global
# first: when it is None (not instrumented) the hook does nothing else.
STATE: _State | None = None
_MUTEX = threading.Lock()


@dataclass
class _Cache:
    """What one get_or_set saw (the event listener marks waits; the wrapper the loader)."""

    loaded: int = 0
    waited: bool = False
    stale: bool = False


_CACHE_CALL: contextvars.ContextVar[_Cache | None] = contextvars.ContextVar(
    "pyredis_atomic_cache_call", default=None)
# The primitive whose operation is being traced: an operation that calls another of the
# same object (decr calls incr) is one operation, one span.
_IN_OP: contextvars.ContextVar[int] = contextvars.ContextVar("pyredis_atomic_in_op", default=0)


@dataclass
class _State:
    tracer: Any
    meter: Any
    record_keys: bool
    trace_api: Any
    status_error: Any
    kinds: dict[str, Any]
    # Whether a real provider is configured: with none (the API's proxies before the
    # application sets one, or no-op providers) no span is started and nothing recorded.
    tracing: bool = False
    measuring: bool = False
    # The global providers may be set after instrument(): looked at again at most once a
    # second until both are real (the API lets each be set only once).
    recheck: Callable[[], tuple[bool, bool]] | None = None
    recheck_at: float = 0.0
    histograms: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, Any] = field(default_factory=dict)
    patched: list[tuple[type, str, Any]] = field(default_factory=list)
    # When each held Lock object was acquired (monotonic), for the hold-time histogram.
    held_since: weakref.WeakKeyDictionary[Any, float] = field(
        default_factory=weakref.WeakKeyDictionary)

    def count(self, name: str, n: int, attributes: dict[str, Any]) -> None:
        if n and self.measuring:
            self.counters[name].add(n, attributes)

    def record(self, name: str, seconds: float, attributes: dict[str, Any]) -> None:
        if self.measuring:
            self.histograms[name].record(seconds, attributes)

    def active(self) -> bool:
        """True when spans or metrics go anywhere (rechecking the global providers)."""
        if self.tracing and self.measuring:
            return True
        if self.recheck is not None:
            now = time.monotonic()
            if now >= self.recheck_at:
                self.recheck_at = now + 1.0
                self.tracing, self.measuring = self.recheck()
        return self.tracing or self.measuring


class _NoSpan:
    """Stands for the span when only metrics are recorded (no tracer provider)."""

    __slots__ = ()

    def set_attribute(self, key: str, value: Any) -> None:
        """Nothing to record."""

    def set_status(self, status: Any) -> None:
        """Nothing to record."""

    def add_link(self, context: Any, attributes: Any = None) -> None:
        """Nothing to record."""


_NO_SPAN = _NoSpan()
# What the hooks return when not tracing: one reusable no-op context manager.
_OFF = nullcontext(_NO_SPAN)

# error.type of queue.dead_letters: the first 20 failure types keep their name, then _OTHER.
_FAILURE_TYPES = FailureTypes(20)


_COUNTERS = {
    "lock.lost": "Locks found lost while held (lease ran out or broken).",
    "lock.renewal.failures": "Automatic lock renewals that failed (retried or lost).",
    "cache.hits": "get_or_set calls answered from the cache.",
    "cache.misses": "get_or_set calls that ran the loader because the value was missing.",
    "cache.loader.calls": "Loader calls (misses, early refreshes, loads after a wait).",
    "cache.stampede.waiters": "get_or_set calls that waited for another caller's loader.",
    "cache.stale_serves": "get_or_set calls answered with a stale value (past its ttl, "
                          "within stale_ttl) while another caller refreshes it.",
    "queue.pushes": "Messages pushed.",
    "queue.claims": "Messages claimed (delivered).",
    "queue.acks": "Deliveries acknowledged.",
    "queue.nacks": "Deliveries given back.",
    "queue.dead_letters": "Messages sent to the dead letters: by a nack on their last "
                          "delivery (pyredis_atomic.dead_letter.reason=nacked; error.type: "
                          "the recorded failure's type), or by a claim's sweep when the "
                          "lease of their last delivery ran out (reason=expired).",
    "limiter.allowed": "Rate limiter hits allowed.",
    "limiter.denied": "Rate limiter hits refused.",
}
_HISTOGRAMS = {
    "lock.wait.duration": "Time spent in Lock.acquire.",
    "lock.hold.duration": "Time a lock was held (acquire to release).",
    "queue.claim.duration": "Time spent in a claiming call (pop, pop_many, ack_and_pop).",
    "semaphore.wait.duration": "Time spent in Semaphore.acquire.",
}


# -- error types -------------------------------------------------------------------------------
_PREFIX = re.compile(r"^([A-Z][A-Z0-9_]+)\b")
# Redis < 7 wraps an error raised inside a script: "Error running script (call to f_<sha>):
# @user_script:9: WRONGTYPE Operation ...".
_WRAPPED = re.compile(r"@user_script:\d+:\s*(?:@user_script:\d+:\s*)?([A-Z][A-Z0-9_]+)\b")


@functools.cache
def _prefixes() -> dict[type, str]:
    """redis-py's exception classes that stand for an error prefix it strips from the
    message (``NoScriptError`` for ``NOSCRIPT``...), read from redis-py's own table."""
    try:
        from redis._parsers.base import BaseParser
    except ImportError:  # another redis-py layout: fall back to class names
        return {}
    out: dict[type, str] = {}
    for prefix, cls in BaseParser.EXCEPTION_CLASSES.items():
        if isinstance(cls, type):
            out.setdefault(cls, prefix)
    return out


def error_type(exc: BaseException) -> str:
    """``error.type`` of a failure: the error prefix of a Redis error reply (``WRONGTYPE``,
    ``NOSCRIPT``, ``NOTINT``...), else the exception's class name."""
    known = _prefixes().get(type(exc))
    if known is not None:
        return known
    text = str(exc)
    wrapped = _WRAPPED.search(text)
    if wrapped:
        return wrapped[1]
    prefix = _PREFIX.match(text)
    if prefix and prefix[1] != "ERR" and type(exc).__module__.startswith("redis"):
        return prefix[1]
    code = getattr(exc, "code", "")
    if isinstance(code, str) and code:
        return code
    return type(exc).__qualname__


# -- script spans (called by the registry) -----------------------------------------------------
def _server(client: Any) -> dict[str, Any]:
    """``server.address``/``server.port``/``db.namespace`` of a client, when it tells."""
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    out: dict[str, Any] = {}
    if isinstance(kwargs, dict):
        if "host" in kwargs:
            out["server.address"] = str(kwargs["host"])
            if "port" in kwargs:
                out["server.port"] = int(kwargs["port"])
        elif "path" in kwargs:
            out["server.address"] = str(kwargs["path"])
        out["db.namespace"] = str(kwargs.get("db", 0))
    elif hasattr(client, "get_default_node"):  # a RedisCluster: Cluster has one database
        out["db.namespace"] = "0"
    return out


@contextmanager
def script_span(state: _State, client: Any, command: str, script: str,
                keys: Sequence[Any], pipeline: Sequence[str] = ()) -> Iterator[Any]:
    """The span of one script call (a child of the operation's span). The registry calls
    it only when ``state.tracing``. ``pipeline``: the commands of the pipeline the call
    went out in (``BLPOP`` then the call; the call then ``WAIT``), when it is not alone."""
    attributes: dict[str, Any] = {
        "db.system.name": "redis",
        "db.operation.name": command,
        "db.stored_procedure.name": script,
        **_server(client),
    }
    if pipeline:
        attributes["db.operation.batch.size"] = len(pipeline)
        attributes["pyredis_atomic.pipeline"] = list(pipeline)
    if state.record_keys:
        attributes["pyredis_atomic.keys"] = [
            k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k) for k in keys]
    with state.tracer.start_as_current_span(f"{command} {script}", kind=state.kinds["CLIENT"],
                                            attributes=attributes,
                                            record_exception=False,
                                            set_status_on_exception=False) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("error.type", error_type(exc))
            span.set_status(state.status_error(type(exc).__qualname__))
            raise


def pipelined_span(client: Any, command: str, script: str, keys: Sequence[Any],
                   pipeline: Sequence[str]) -> Any:
    """The span of a script call sent in one pipeline with another command (the drivers'
    ``BLPOP`` + call, ``run_durable``'s call + ``WAIT``): a context manager giving the span,
    a no-op one when not tracing. Its time is the whole pipeline's (the wait included)."""
    st = STATE
    if st is None or not st.tracing:
        return _OFF
    return script_span(st, client, command, script, keys, pipeline)


def reply_failed(span: Any, exc: BaseException) -> None:
    """Mark ``span`` failed by an error reply that came back as a value (a pipeline run
    with ``raise_on_error=False``)."""
    st = STATE
    if span is _NO_SPAN or st is None:
        return
    span.set_attribute("error.type", error_type(exc))
    span.set_status(st.status_error(type(exc).__qualname__))


# -- operation spans ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    """How one public method is traced: its span kind, attributes before the call
    (``before(obj, args, kwargs)``) and what to record from the result
    (``after(state, span, obj, args, kwargs, result, seconds)``)."""

    kind: str = "INTERNAL"
    before: Callable[..., dict[str, Any]] | None = None
    after: Callable[..., None] | None = None


def _name_attr(primitive: str) -> Callable[..., dict[str, Any]]:
    def before(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        return {"pyredis_atomic.primitive": primitive, "pyredis_atomic.name": obj.name}
    return before


# Locks
def _lock_acquired(st: _State, span: Any, lock: Any, args: Any, kwargs: Any, result: Any,
                   seconds: float) -> None:
    attrs = {"pyredis_atomic.name": lock.name, "pyredis_atomic.acquired": bool(result)}
    span.set_attribute("pyredis_atomic.acquired", bool(result))
    if result:
        span.set_attribute("pyredis_atomic.lock.fence", lock.fence)
        st.held_since[lock] = time.monotonic()
    st.record("lock.wait.duration", seconds, attrs)


def _lock_released(st: _State, span: Any, lock: Any, args: Any, kwargs: Any, result: Any,
                   seconds: float) -> None:
    since = st.held_since.pop(lock, None)
    if since is not None:
        st.record("lock.hold.duration", time.monotonic() - since,
                  {"pyredis_atomic.name": lock.name})


# Queues
def _queue(operation: str, kind: str) -> Callable[..., dict[str, Any]]:
    def before(q: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"messaging.system": "redis",
                               "messaging.operation.type": kind,
                               "messaging.operation.name": operation,
                               "messaging.destination.name": q.name}
        msg: Any = args[0] if args else kwargs.get("msg")
        if kind == "settle" and hasattr(msg, "receipt"):
            out["messaging.message.id"] = msg.id
            out["pyredis_atomic.message.delivery_count"] = msg.deliveries
        return out
    return before


def _dest(q: Any) -> dict[str, Any]:
    return {"messaging.destination.name": q.name}


def _describe_messages(span: Any, messages: list[Any]) -> None:
    if len(messages) == 1:
        span.set_attribute("messaging.message.id", messages[0].id)
        span.set_attribute("pyredis_atomic.message.delivery_count", messages[0].deliveries)
    elif messages:
        span.set_attribute("messaging.batch.message_count", len(messages))


def _pushed(st: _State, span: Any, q: Any, args: Any, kwargs: Any, result: Any,
            seconds: float) -> None:
    ids = [result] if isinstance(result, str) else list(result)
    if len(ids) == 1:
        span.set_attribute("messaging.message.id", ids[0])
    else:
        span.set_attribute("messaging.batch.message_count", len(ids))
    st.count("queue.pushes", len(ids), _dest(q))


def _claimed(st: _State, span: Any, q: Any, args: Any, kwargs: Any, result: Any,
             seconds: float) -> None:
    acked = None
    if isinstance(result, tuple):  # ack_and_pop: (acked, message or None)
        acked, result = result
    messages = [] if result is None else (result if isinstance(result, list) else [result])
    _describe_messages(span, messages)
    for msg in messages:
        if msg.traceparent is not None:
            _link(st, span, msg.traceparent)
    st.count("queue.claims", len(messages), _dest(q))
    if acked is not None:
        st.count("queue.acks", 1 if acked else 0, _dest(q))
    st.record("queue.claim.duration", seconds, _dest(q))


def _acked(st: _State, span: Any, q: Any, args: Any, kwargs: Any, result: Any,
           seconds: float) -> None:
    n = int(result) if not isinstance(result, bool) else (1 if result else 0)
    st.count("queue.acks", n, _dest(q))


def _nacked(st: _State, span: Any, q: Any, args: Any, kwargs: Any, result: Any,
            seconds: float) -> None:
    st.count("queue.nacks", 1, _dest(q))


# Caches
def _cache_before(cache: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"pyredis_atomic.primitive": "cache", "pyredis_atomic.name": cache.name}
    st = STATE
    key = args[0] if args else kwargs.get("key")
    if st is not None and st.record_keys and isinstance(key, str):
        out["pyredis_atomic.cache.key"] = key
    return out


# Rate limiters and semaphores
def _hit(st: _State, span: Any, limiter: Any, args: Any, kwargs: Any, result: Any,
         seconds: float) -> None:
    allowed = bool(result)
    span.set_attribute("pyredis_atomic.allowed", allowed)
    st.count("limiter.allowed" if allowed else "limiter.denied", 1,
             {"pyredis_atomic.name": limiter.name})


def _sem_acquired(st: _State, span: Any, sem: Any, args: Any, kwargs: Any, result: Any,
                  seconds: float) -> None:
    span.set_attribute("pyredis_atomic.acquired", result is not None)
    st.record("semaphore.wait.duration", seconds,
              {"pyredis_atomic.name": sem.name, "pyredis_atomic.acquired": result is not None})


def _operations() -> dict[str, dict[str, Op]]:
    """Class name -> method -> how it is traced (the same for sync and asyncio)."""
    lock = _name_attr("lock")
    counter = _name_attr("counter")
    sem = _name_attr("semaphore")
    limiter = _name_attr("rate_limiter")
    cache = Op(before=_cache_before)
    return {
        "Lock": {
            "acquire": Op(before=lock, after=_lock_acquired),
            "release": Op(before=lock, after=_lock_released),
            "extend": Op(before=lock), "owned": Op(before=lock), "locked": Op(before=lock),
        },
        "ReliableQueue": {
            "push": Op("PRODUCER", _queue("push", "send"), _pushed),
            "push_many": Op("PRODUCER", _queue("push_many", "send"), _pushed),
            "pop": Op("CLIENT", _queue("pop", "receive"), _claimed),
            "pop_many": Op("CLIENT", _queue("pop_many", "receive"), _claimed),
            "ack_and_pop": Op("CLIENT", _queue("ack_and_pop", "receive"), _claimed),
            "ack": Op("CLIENT", _queue("ack", "settle"), _acked),
            "ack_many": Op("CLIENT", _queue("ack_many", "settle"), _acked),
            "nack": Op("CLIENT", _queue("nack", "settle"), _nacked),
            "extend": Op("CLIENT", _queue("extend", "settle")),
            "requeue_expired": Op(before=_queue("requeue_expired", "settle")),
            "stats": Op(before=_name_attr("queue")),
            "dead_letters": Op(before=_name_attr("queue")),
            "redrive": Op(before=_queue("redrive", "send")),
            "purge": Op(before=_name_attr("queue")),
        },
        "Cache": {"get_or_set": cache, "get": cache, "set": cache, "delete": cache,
                  "inspect": cache},
        "BoundedCounter": {m: Op(before=counter) for m in ("incr", "decr", "get", "set",
                                                          "reset")},
        "Semaphore": {
            "acquire": Op(before=sem, after=_sem_acquired),
            **{m: Op(before=sem) for m in ("release", "extend", "count", "holders")},
        },
        "RateLimiter": {"hit": Op(before=limiter, after=_hit), "peek": Op(before=limiter),
                        "reset": Op(before=limiter)},
    }


def _wrap_loader(loader: Any, seen: _Cache) -> Any:
    """The loader, counting its calls into ``seen`` (awaitable results are passed on)."""
    @functools.wraps(loader)
    def counted() -> Any:
        seen.loaded += 1
        return loader()
    return counted


def _cache_outcome(st: _State, span: Any, cache: Any, seen: _Cache) -> None:
    attrs = {"pyredis_atomic.name": cache.name}
    if seen.stale:
        span.set_attribute("pyredis_atomic.cache.stale", True)
        st.count("cache.stale_serves", 1, attrs)
    if seen.waited:
        st.count("cache.stampede.waiters", 1, attrs)
    st.count("cache.loader.calls", seen.loaded, attrs)
    if seen.loaded and not seen.waited:
        st.count("cache.misses", 1, attrs)
    elif not seen.loaded:
        st.count("cache.hits", 1, attrs)


def _traced(cls_name: str, method: str, original: Any, op: Op) -> Any:
    span_name = f"{cls_name}.{method}"
    is_get_or_set = cls_name == "Cache" and method == "get_or_set"

    def start(st: _State, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not st.tracing:
            return nullcontext(_NO_SPAN)
        attributes = op.before(obj, args, kwargs) if op.before is not None else {}
        return st.tracer.start_as_current_span(
            span_name, kind=st.kinds[op.kind], attributes=attributes,
            record_exception=True, set_status_on_exception=False)

    def failed(st: _State, span: Any, exc: BaseException) -> None:
        if span is not _NO_SPAN:
            span.set_attribute("error.type", error_type(exc))
            span.set_status(st.status_error(type(exc).__qualname__))

    @contextmanager
    def operation(st: _State, obj: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Iterator[_Run]:
        """Everything around one instrumented call, for the sync and the async wrapper
        alike: the span, its error, the metrics after it, the cache's loader counting."""
        inside = _IN_OP.set(id(obj))
        seen = _Cache() if is_get_or_set else None
        if seen is not None:
            args, kwargs = _with_counted_loader(args, kwargs, seen)
        token = _CACHE_CALL.set(seen) if seen is not None else None
        try:
            with start(st, obj, args, kwargs) as span:
                run = _Run(args, kwargs)
                began = time.perf_counter()
                try:
                    yield run
                except BaseException as exc:
                    failed(st, span, exc)
                    raise
                if op.after is not None:
                    op.after(st, span, obj, args, kwargs, run.result,
                             time.perf_counter() - began)
                if seen is not None:
                    _cache_outcome(st, span, obj, seen)
        finally:
            _IN_OP.reset(inside)
            if token is not None:
                _CACHE_CALL.reset(token)

    if inspect.iscoroutinefunction(original):
        @functools.wraps(original)
        async def traced_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            st = STATE
            if st is None or not st.active() or _IN_OP.get() == id(self):
                return await original(self, *args, **kwargs)
            with operation(st, self, args, kwargs) as run:
                run.result = await original(self, *run.args, **run.kwargs)
            return run.result
        return traced_async

    @functools.wraps(original)
    def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
        st = STATE
        if st is None or not st.active() or _IN_OP.get() == id(self):
            return original(self, *args, **kwargs)
        with operation(st, self, args, kwargs) as run:
            run.result = original(self, *run.args, **run.kwargs)
        return run.result
    return traced


class _Run:
    """One instrumented call's arguments (the cache's loader may be wrapped) and result."""

    __slots__ = ("args", "kwargs", "result")

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.args = args
        self.kwargs = kwargs
        self.result: Any = None


def _with_counted_loader(args: tuple[Any, ...], kwargs: dict[str, Any],
                         seen: _Cache) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if len(args) >= 2:
        return (args[0], _wrap_loader(args[1], seen), *args[2:]), kwargs
    if "loader" in kwargs:
        return args, {**kwargs, "loader": _wrap_loader(kwargs["loader"], seen)}
    return args, kwargs


def _classes() -> list[type]:
    from . import asyncio as aio
    from .cache import Cache
    from .counter import BoundedCounter
    from .lock import Lock
    from .queue import ReliableQueue
    from .ratelimit import RateLimiter
    from .semaphore import Semaphore

    return [Lock, ReliableQueue, Cache, BoundedCounter, Semaphore, RateLimiter,
            aio.Lock, aio.ReliableQueue, aio.Cache, aio.BoundedCounter, aio.Semaphore,
            aio.RateLimiter]


# -- events -> metrics -------------------------------------------------------------------------
def _on_event(event: str, fields: dict[str, Any]) -> None:
    st = STATE
    if st is None:
        return
    if event == "lock.lost":
        st.count("lock.lost", 1, {"pyredis_atomic.name": fields.get("lock", "")})
        if fields.get("action") == "renew":
            st.count("lock.renewal.failures", 1, {"pyredis_atomic.name": fields.get("lock", "")})
    elif event == "lock.renewal_failed":
        st.count("lock.renewal.failures", 1, {"pyredis_atomic.name": fields.get("lock", "")})
    elif event == "queue.dead_lettered":
        dead = {"messaging.destination.name": fields.get("queue", ""),
                "pyredis_atomic.dead_letter.reason": "nacked"}
        if fields.get("failure_type"):  # the recorded failure's type, capped (FailureTypes)
            dead["error.type"] = _FAILURE_TYPES.label(fields["failure_type"])
        st.count("queue.dead_letters", 1, dead)
    elif event == "queue.expired_dead_lettered":
        st.count("queue.dead_letters", int(fields.get("count", 0)),
                 {"messaging.destination.name": fields.get("queue", ""),
                  "pyredis_atomic.dead_letter.reason": "expired"})
    elif event == "cache.stampede_wait":
        seen = _CACHE_CALL.get()
        if seen is not None:
            seen.waited = True
    elif event == "cache.stale_served":
        seen = _CACHE_CALL.get()
        if seen is not None:
            seen.stale = True


# -- trace context carried by queue messages ---------------------------------------------------
def traceparent() -> str | None:
    """The current span's W3C ``traceparent`` (what ``push(..., trace=True)`` stores), or
    None when not instrumented or outside any span."""
    st = STATE
    if st is None or not st.tracing:
        return None
    ctx = st.trace_api.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def _span_context(st: _State, traceparent: str) -> Any:
    """The remote span context a ``traceparent`` names (None: malformed or invalid)."""
    try:
        _, trace_id, span_id, flags = traceparent.split("-")
        ctx = st.trace_api.SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True,
                                       trace_flags=st.trace_api.TraceFlags(int(flags, 16)))
    except ValueError:
        return None
    return ctx if ctx.is_valid else None


def _link(st: _State, span: Any, traceparent: str) -> None:
    """Link ``span`` to the producer's span named by ``traceparent`` (malformed: ignored)."""
    ctx = _span_context(st, traceparent)
    if ctx is not None:
        span.add_link(ctx, {"messaging.operation.type": "send"})


# -- the Worker's process span -------------------------------------------------------------------
def process_span(queue: str, msg: Any) -> Any:
    """The span of a Worker's handler call on ``msg`` (messaging conventions: kind CONSUMER,
    ``messaging.operation.type=process``), linked to the producer's span when the message
    carries its ``traceparent``; the handler's own spans are its children. A no-op context
    manager when not tracing."""
    st = STATE
    if st is None or not st.active() or not st.tracing:
        return _OFF
    return _process(st, queue, msg)


@contextmanager
def _process(st: _State, queue: str, msg: Any) -> Iterator[Any]:
    attributes = {"messaging.system": "redis", "messaging.operation.type": "process",
                  "messaging.operation.name": "process", "messaging.destination.name": queue,
                  "messaging.message.id": msg.id,
                  "pyredis_atomic.message.delivery_count": msg.deliveries}
    links = []
    if msg.traceparent is not None:
        ctx = _span_context(st, msg.traceparent)
        if ctx is not None:
            links.append(st.trace_api.Link(ctx, {"messaging.operation.type": "send"}))
    with st.tracer.start_as_current_span(f"process {queue}", kind=st.kinds["CONSUMER"],
                                         attributes=attributes, links=links,
                                         record_exception=True,
                                         set_status_on_exception=False) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("error.type", error_type(exc))
            span.set_status(st.status_error(type(exc).__qualname__))
            raise


# -- public API --------------------------------------------------------------------------------
def instrument(tracer_provider: Any = None, meter_provider: Any = None, *,
               record_keys: bool = False) -> None:
    """Start tracing and measuring every primitive (sync and asyncio).

    ``tracer_provider`` / ``meter_provider``: default the global ones (set them before or
    after; the global proxies follow). ``record_keys``: also record cache keys and Redis
    key names on spans (off by default: keys may carry personal data). Calling it again
    replaces the providers. Raises ``ImportError`` naming the extra when
    ``opentelemetry-api`` is not installed.
    """
    global STATE
    if not isinstance(record_keys, bool):
        raise TypeError(f"record_keys must be a bool, got {type(record_keys).__name__}")
    try:
        from opentelemetry import metrics, trace
    except ImportError as exc:
        raise ImportError("pyredis_atomic.otel needs opentelemetry-api: "
                          "pip install 'pyredis-atomic[otel]'") from exc
    from . import __version__

    tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(SCOPE, __version__)
    meter = (meter_provider or metrics.get_meter_provider()).get_meter(SCOPE, __version__)

    def configured() -> tuple[bool, bool]:
        """(a real tracer provider, a real meter provider): not the API's no-op ones, nor
        its global proxies while the application has set nothing."""
        tp = tracer_provider or trace.get_tracer_provider()
        mp = meter_provider or metrics.get_meter_provider()
        return (not isinstance(tp, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)),
                not isinstance(mp, metrics.NoOpMeterProvider)
                and type(mp).__name__ != "_ProxyMeterProvider")
    status_code = trace.StatusCode.ERROR

    def status_error(description: str) -> Any:
        return trace.Status(status_code, description)

    kinds = {k: getattr(trace.SpanKind, k) for k in ("INTERNAL", "CLIENT", "PRODUCER",
                                                      "CONSUMER")}
    state = _State(tracer, meter, record_keys, trace, status_error, kinds)
    state.tracing, state.measuring = configured()
    state.recheck = configured
    for name, doc in _COUNTERS.items():
        state.counters[name] = meter.create_counter(f"{SCOPE}.{name}", unit="1",
                                                    description=doc)
    for name, doc in _HISTOGRAMS.items():
        state.histograms[name] = meter.create_histogram(f"{SCOPE}.{name}", unit="s",
                                                        description=doc)
    with _MUTEX:
        if STATE is not None:
            state.patched = STATE.patched
            state.held_since = STATE.held_since
        else:
            table = _operations()
            for cls in _classes():
                for method, op in table[cls.__name__].items():
                    original = cls.__dict__[method]
                    setattr(cls, method, _traced(cls.__name__, method, original, op))
                    state.patched.append((cls, method, original))
            events.add_listener(_on_event)
        STATE = state


def uninstrument() -> None:
    """Stop: the primitives' methods are the originals again (no cost, no spans)."""
    global STATE
    with _MUTEX:
        state = STATE
        if state is None:
            return
        for cls, method, original in reversed(state.patched):
            setattr(cls, method, original)
        events.remove_listener(_on_event)
        STATE = None


def is_instrumented() -> bool:
    """True between :func:`instrument` and :func:`uninstrument`."""
    return STATE is not None
