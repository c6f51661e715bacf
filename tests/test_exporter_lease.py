"""The exporter's oldest lease age (``pyredis_atomic_queue_oldest_lease_age_seconds``):
derived from the in-flight zset's deadlines and the queue's lease given to the exporter
(``--queue NAME=SECONDS``), checked against the server's clock around each step (no
timing margins beyond the millisecond rounding of the scores)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pyredis_atomic import ReliableQueue
from pyredis_atomic._core.monitor import Targets, parse_lease
from pyredis_atomic.cli.main import cli
from pyredis_atomic.exporter import AtomicCollector, make_registry

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
ROUNDING = 0.002  # scores and TIME are read in whole milliseconds


def scrape(collector: AtomicCollector) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(
            generate_latest(make_registry(collector)).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, metric: str, **labels: str) -> float:
    return samples[(f"pyredis_atomic_{metric}", tuple(sorted(labels.items())))]


def server_s(client: Any) -> float:
    sec, usec = client.time()
    return int(sec) + int(usec) / 1e6


def _settle(client: redis.Redis, seconds: float) -> None:
    """Let at least ``seconds`` of server time pass."""
    start = server_s(client)
    while server_s(client) - start < seconds:
        time.sleep(0.01)


def test_lease_age_since_the_claim_then_since_the_extension(redis_client: redis.Redis) -> None:
    c = redis_client
    lease = 30.0
    q = ReliableQueue(c, "leased", visibility_timeout=lease)
    q.push_many([b"a", b"b"])
    collector = AtomicCollector(c, Targets({"leased", "other"}, set(), {}, {},
                                           {"leased": lease, "other": lease}))
    s = scrape(collector)
    assert value(s, "queue_oldest_lease_age_seconds", queue="leased") == 0  # none in flight
    assert value(s, "queue_oldest_lease_age_seconds", queue="other") == 0  # no such queue

    before = server_s(c)
    first = q.pop()
    after = server_s(c)
    assert first is not None
    _settle(c, 0.2)
    second = q.pop()  # a younger lease: the oldest stays the first one's
    assert second is not None
    at_before = server_s(c)
    age = value(scrape(collector), "queue_oldest_lease_age_seconds", queue="leased")
    at_after = server_s(c)
    assert at_before - after - ROUNDING <= age <= at_after - before + ROUNDING

    # Extending the oldest delivery renews its lease: the oldest lease is now the second's,
    # whose age counts from its claim (which came after the first one's).
    _settle(c, 0.2)
    assert q.extend(first)
    age2 = value(scrape(collector), "queue_oldest_lease_age_seconds", queue="leased")
    assert age2 < age + (server_s(c) - at_before)  # not the first claim's age any more
    assert age2 >= 0.2 - ROUNDING  # the second claim is at least 0.2 s old
    q.ack(first)
    q.ack(second)


def test_an_overdue_lease_is_its_length_plus_the_overdue_time(
        redis_client: redis.Redis) -> None:
    c = redis_client
    lease = 0.05
    q = ReliableQueue(c, "overdue-lease", visibility_timeout=lease)
    q.push(b"x")
    assert q.pop() is not None
    _settle(c, 0.2)
    s = scrape(AtomicCollector(c, Targets({"overdue-lease"}, set(), {}, {},
                                          {"overdue-lease": lease})))
    overdue = value(s, "queue_lease_overdue_seconds", queue="overdue-lease")
    age = value(s, "queue_oldest_lease_age_seconds", queue="overdue-lease")
    assert overdue > 0
    assert age == pytest.approx(lease + overdue, abs=1e-9)  # one scrape, one server clock


def test_without_a_lease_no_lease_age_is_written(redis_client: redis.Redis) -> None:
    q = ReliableQueue(redis_client, "no-lease")
    q.push(b"x")
    assert q.pop() is not None
    s = scrape(AtomicCollector(redis_client, Targets({"no-lease"}, set(), {}, {})))
    assert not [k for k in s if k[0] == "pyredis_atomic_queue_oldest_lease_age_seconds"]
    assert ("pyredis_atomic_queue_oldest_inflight_age_seconds",
            (("queue", "no-lease"),)) in s


def test_discovery_keeps_the_given_lease() -> None:
    given = Targets({"a"}, set(), {}, {}, {"a": 5.0})
    found = Targets({"a", "b"}, set(), {}, {}, {})
    merged = given.merged(found)
    assert merged.queues == {"a", "b"}
    assert merged.leases == {"a": 5.0}


def test_the_queue_option_takes_a_lease(redis_url: str, redis_client: redis.Redis) -> None:
    assert parse_lease("jobs") == ("jobs", None)
    assert parse_lease("jobs=30") == ("jobs", 30.0)
    assert parse_lease("a=b=") == ("a=b", None)
    for bad in ("jobs=x", "jobs=0", "jobs=-1", "jobs=inf"):
        with pytest.raises(ValueError, match="jobs"):
            parse_lease(bad)
    q = ReliableQueue(redis_client, "cli-lease", visibility_timeout=30)
    q.push(b"x")
    assert q.pop() is not None
    runner = CliRunner()
    result = runner.invoke(cli, ["metrics", "show", "--url", redis_url,
                                 "--queue", "cli-lease=30"])
    assert result.exit_code == 0, result.output
    assert 'pyredis_atomic_queue_oldest_lease_age_seconds{queue="cli-lease"}' in result.output
    refused = runner.invoke(cli, ["metrics", "show", "--url", redis_url, "--queue", "q=soon"])
    assert refused.exit_code == 2
    assert "not a number of seconds" in refused.output
