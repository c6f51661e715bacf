"""What the OpenTelemetry instrumentation costs: the same operations with it off (never
switched on, the state every user without ``otel.instrument()`` is in), on with the API's
default no-op providers (instrumented, no SDK configured), and on with the SDK recording every
span and metric (spans dropped afterwards, so no exporter's cost is counted).

Instrumenting patches classes for the whole process, so the variants cannot be called turn
by turn like the other cases: each round times one block of each variant, switching between
blocks outside the timed part, in a rotating order (same load for all three, as in
:func:`~pyredis_atomic.bench.timing.interleaved`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .cases import Bench, _rows
from .timing import Result, Stat

__all__ = ["instrumentation"]

VARIANTS = ("off", "on, no provider (no-op)", "on, SDK recording")


def _switch(variant: str, sdk: tuple[Any, Any] | None) -> None:
    from .. import otel

    otel.uninstrument()
    if variant == VARIANTS[1]:
        from opentelemetry.metrics import NoOpMeterProvider
        from opentelemetry.trace import NoOpTracerProvider

        otel.instrument(NoOpTracerProvider(), NoOpMeterProvider())
    elif variant == VARIANTS[2]:
        assert sdk is not None
        otel.instrument(*sdk)


def _sdk() -> tuple[Any, Any] | None:
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return None
    return TracerProvider(), MeterProvider()


def _time(b: Bench, op: Callable[[], object], variants: tuple[str, ...],
          sdk: tuple[Any, Any] | None) -> dict[str, Stat]:
    ops = b.ops
    samples: dict[str, list[float]] = {v: [] for v in variants}
    for v in variants:  # warm-up, each state once
        _switch(v, sdk)
        for _ in range(max(20, ops // 5)):
            op()
    for r in range(b.rounds * 3):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for v in order:
            _switch(v, sdk)
            start = time.perf_counter()
            for _ in range(ops // 3 or 1):
                op()
            samples[v].append((ops // 3 or 1) / (time.perf_counter() - start))
    _switch(VARIANTS[0], sdk)
    b.say("  timed instrumentation off/on")
    return {v: Stat(s) for v, s in samples.items()}


def instrumentation(b: Bench) -> list[Result]:
    """Lock acquire+release, a queue's push+pop+ack and a cache hit, instrumented or not."""
    try:
        import opentelemetry  # noqa: F401
    except ImportError:
        return [Result(group="instrumentation", case="(not measured)", value=0, unit="",
                       note="opentelemetry-api is not installed (the otel extra)")]
    from .. import Cache, Lock, ReliableQueue

    c = b.client
    sdk = _sdk()
    variants = VARIANTS if sdk is not None else VARIANTS[:2]
    lock = Lock(c, b.fresh(), ttl=10.0)
    q = ReliableQueue(c, b.fresh())
    cache = Cache(c, b.fresh(), ttl=600.0, fast_hits=False)
    cache.set("k", {"id": 1})

    def lock_cycle() -> None:
        lock.acquire(blocking=False)
        lock.release()

    def queue_cycle() -> None:
        q.push(b"m")
        msg = q.pop()
        if msg is not None:
            q.ack(msg)

    def cache_hit() -> None:
        cache.get_or_set("k", lambda: None)

    rows: list[Result] = []
    try:
        for group, op in (("instrumentation: lock acquire+release", lock_cycle),
                          ("instrumentation: queue push+pop+ack", queue_cycle),
                          ("instrumentation: cache hit (scripted)", cache_hit)):
            rows += _rows(group, _time(b, op, variants, sdk), "off")
    finally:
        _switch(VARIANTS[0], sdk)
    return rows
