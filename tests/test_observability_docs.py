"""The example Grafana dashboard and Prometheus alert rules in docs/ use only metrics that the
exporter writes, and the rules file has the shape Prometheus loads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import redis
import yaml
from prometheus_client import generate_latest

from pyredis_atomic import BoundedCounter, Lock, ReliableQueue, Semaphore
from pyredis_atomic._core.monitor import Targets
from pyredis_atomic.exporter import AtomicCollector, make_registry

DOCS = Path(__file__).resolve().parent.parent / "docs"
METRIC = re.compile(r"\bpyredis_atomic_[a-z_]+\b")


def exported_names(client: redis.Redis) -> set[str]:
    """Every metric family a scrape writes when every kind has a target (and a failure)."""
    ReliableQueue(client, "q").push(b"x")
    Lock(client, "l").acquire()
    BoundedCounter(client, "c").incr()
    Semaphore(client, "s", limit=2).acquire()
    client.set(BoundedCounter(client, "broken").key, "text")
    targets = Targets({"q"}, {"l"}, {"c": (0, 10), "broken": (None, None)}, {"s": 2})
    text = generate_latest(make_registry(AtomicCollector(client, targets, discover=True)))
    return set(METRIC.findall(text.decode()))


def expressions(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [e for k, v in node.items() for e in
                ([v] if k == "expr" and isinstance(v, str) else expressions(v))]
    if isinstance(node, list):
        return [e for v in node for e in expressions(v)]
    return []


def test_dashboard_uses_only_exported_metrics(redis_client: redis.Redis) -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = expressions(dashboard["panels"])
    assert len(exprs) >= 10
    variables = [v["query"]["query"] for v in dashboard["templating"]["list"]
                 if v["type"] == "query"]
    used = set(METRIC.findall(" ".join(exprs + variables)))
    assert used - exported_names(redis_client) == set()
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_alert_rules_load_and_use_only_exported_metrics(redis_client: redis.Redis) -> None:
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    names = {r["alert"] for r in alerts}
    # The three the operators asked for: queue lag, dead letters growing, locks lost.
    assert {"PyredisAtomicQueueLag", "PyredisAtomicDeadLettersGrowing",
            "PyredisAtomicLockLost"} <= names
    for rule in alerts:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["annotations"]["summary"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule
    used = set(METRIC.findall(" ".join(r["expr"] for r in alerts)))
    assert used - exported_names(redis_client) == set()
