"""A dead letter's recorded failure, end to end: a Worker's handler raises, and the failure's
type shows in ``dead_letters()``, ``pyredis-atomic queue dead``, the Prometheus exporter
(``queue_dead_letters_by_failure``, bounded labels) and the OpenTelemetry counter
``queue.dead_letters`` (``error.type``). Real Redis."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import redis
from click.testing import CliRunner
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from queue_helpers import expire_all

from pyredis_atomic import Message, ReliableQueue, Retry, Worker, otel
from pyredis_atomic._core.monitor import (
    NO_FAILURE,
    OTHER_FAILURE,
    FailureTypes,
    Targets,
    dead_failures,
)
from pyredis_atomic._core.queue import Failure
from pyredis_atomic.cli.main import cli
from pyredis_atomic.exporter import AtomicCollector, make_registry

METRIC = "pyredis_atomic_queue_dead_letters_by_failure"


class Boom(Exception):
    pass


def _wait(cond: Callable[[], bool], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


def _by_failure(collector: AtomicCollector) -> dict[tuple[str, str, str], float]:
    text = generate_latest(make_registry(collector)).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == METRIC:
                out[(s.labels["queue"], s.labels["reason"], s.labels["failure_type"])] = s.value
    return out


def _dead_letter_points(reader: InMemoryMetricReader) -> dict[tuple[str, str, str], float]:
    data = reader.get_metrics_data()
    out: dict[tuple[str, str, str], float] = {}
    if data is None:
        return out
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == "pyredis_atomic.queue.dead_letters":
                    for p in m.data.data_points:
                        a = dict(p.attributes or {})
                        key = (str(a.get("messaging.destination.name")),
                               str(a.get("pyredis_atomic.dead_letter.reason", "")),
                               str(a.get("error.type", "")))
                        out[key] = out.get(key, 0) + getattr(p, "value", 0)
    return out


def test_worker_failures_reach_dead_letters_cli_exporter_and_otel(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    otel.instrument(meter_provider=provider)
    try:
        q = ReliableQueue(r, "failing", visibility_timeout=5.0, max_deliveries=2)
        q.push_many([b"value", b"key", b"boom"])

        def handle(msg: Message) -> None:
            if msg.payload == b"value":
                raise ValueError("bad value")
            if msg.payload == b"key":
                raise KeyError("missing")
            raise Boom("custom")

        w = Worker(q, handle, retry=Retry(max_attempts=2, backoff=0.0, jitter=False),
                   poll=0.1, signals=False)
        t = threading.Thread(target=w.run, daemon=True)
        t.start()
        _wait(lambda: q.stats()["dead"] == 3)
        w.stop()
        t.join(10)
        # A dead letter without a failure record: its worker died on its last delivery.
        q.push(b"killer")
        for _ in range(2):
            assert q.pop() is not None
            expire_all(r, q)
            q.requeue_expired()
        assert q.stats()["dead"] == 4

        kinds = {m.payload: (m.dead_reason, m.failure.type if m.failure else None)
                 for m in q.dead_letters()}
        boom = f"{__name__}.Boom"
        assert kinds == {b"value": ("nacked", "ValueError"), b"key": ("nacked", "KeyError"),
                         b"boom": ("nacked", boom), b"killer": ("expired", None)}

        res = CliRunner().invoke(cli, ["queue", "dead", "failing", "--url", redis_url,
                                       "--json"])
        assert res.exit_code == 0, res.output
        shown = {d["payload"]: d.get("failure", {}).get("type") for d in json.loads(res.output)}
        assert shown == {"value": "ValueError", "key": "KeyError", "boom": boom,
                         "killer": None}

        collector = AtomicCollector(r, Targets({"failing"}, set(), {}, {}))
        assert _by_failure(collector) == {
            ("failing", "nacked", "ValueError"): 1, ("failing", "nacked", "KeyError"): 1,
            ("failing", "nacked", boom): 1, ("failing", "expired", NO_FAILURE): 1}
        assert _by_failure(AtomicCollector(r, Targets({"failing"}, set(), {}, {}),
                                           dead_sample=0)) == {}

        # the expired one is counted by the claim's sweep that dead-lettered it (#21), with
        # no error.type: there is no failure record
        assert _dead_letter_points(reader) == {
            ("failing", "nacked", "ValueError"): 1, ("failing", "nacked", "KeyError"): 1,
            ("failing", "nacked", boom): 1, ("failing", "expired", ""): 1}
    finally:
        otel.uninstrument()
        provider.shutdown()
        r.close()


def test_the_exporter_reads_only_the_newest_dead_letters(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    try:
        q = ReliableQueue(r, "many-dead", max_deliveries=1)
        q.push_many([b"%d" % i for i in range(30)])
        for i, m in enumerate(q.pop_many(30)):
            q.nack(m, failure=KeyError("k") if i < 20 else ValueError("v"))
        got = _by_failure(AtomicCollector(r, Targets({"many-dead"}, set(), {}, {}),
                                          dead_sample=10))
        # The 10 newest are the ValueErrors.
        assert got == {("many-dead", "nacked", "ValueError"): 10}
    finally:
        r.close()


def test_failure_type_labels_are_capped() -> None:
    def letter(kind: str | None, reason: str = "nacked") -> Any:
        failure = Failure(kind, "m", "", 0.0) if kind is not None else None
        return SimpleNamespace(dead_reason=reason, failure=failure)

    letters = [letter(f"E{i}") for i in range(15) for _ in range(i + 1)]
    letters += [letter(None, "expired"), letter("")]  # "": a record that was not JSON
    got = dead_failures(letters, cap=10)
    kept = {kind for (_, kind) in got} - {OTHER_FAILURE, NO_FAILURE}
    assert kept == {f"E{i}" for i in range(5, 15)}  # the 10 most frequent
    assert got[("nacked", OTHER_FAILURE)] == sum(range(1, 6)) + 1
    assert got[("expired", NO_FAILURE)] == 1
    assert sum(got.values()) == len(letters)

    labels = FailureTypes(cap=3)
    assert [labels.label(k) for k in ("a", "b", "a", "c", "d", "b")] == [
        "a", "b", "a", "c", OTHER_FAILURE, "b"]
