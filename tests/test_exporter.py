"""The Prometheus exporter against real servers: values, lag, discovery, cluster, cost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from queue_helpers import expire_all

from pyredis_atomic import BoundedCounter, Lock, ReliableQueue, Semaphore
from pyredis_atomic._core.keys import KeyLayout
from pyredis_atomic._core.monitor import (
    Targets,
    discovery_pattern,
    parse_bounds,
    parse_key,
    parse_limit,
)
from pyredis_atomic.cli.main import cli
from pyredis_atomic.exporter import AtomicCollector, make_registry, serve
from pyredis_atomic.testing import free_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a text exposition: (name, sorted labels) -> value."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(collector: AtomicCollector) -> Samples:
    return parse(generate_latest(make_registry(collector)).decode())


def value(samples: Samples, metric: str, **labels: str) -> float:
    return samples[(f"pyredis_atomic_{metric}", tuple(sorted(labels.items())))]


def names(samples: Samples, metric: str, label: str) -> set[str]:
    return {dict(lab)[label] for (n, lab) in samples if n == f"pyredis_atomic_{metric}"}


def server_ms(client: Any) -> float:
    sec, usec = client.time()
    return float(sec) * 1000 + float(usec) / 1000


def test_http_scrape_reports_known_states(redis_client: redis.Redis) -> None:
    c = redis_client
    q = ReliableQueue(c, "jobs", max_deliveries=1)
    q.push_many([b"ready-1", b"ready-2", b"to-claim", b"to-kill"])
    q.push(b"later", delay=60)
    leased = q.pop_many(2)  # the two oldest: ready-1 and ready-2 are now in flight
    dying = q.pop_many(1)
    q.nack(dying[0])  # max_deliveries=1: dead
    held = Lock(c, "invoice", ttl=20)
    assert held.acquire()
    lost = Lock(c, "lost", ttl=0.05)
    assert lost.acquire()
    time.sleep(0.1)
    assert Lock(c, "lost", ttl=5).acquire()  # finds the first lease ran out: fence 1 lost
    BoundedCounter(c, "stock", min=0, max=100).incr(42)
    pool = Semaphore(c, "pool", limit=3)
    assert pool.acquire()
    assert pool.acquire()

    targets = Targets({"jobs", "empty-queue"}, {"invoice", "lost", "never"},
                      {"stock": (0, 100), "absent": (None, None)}, {"pool": 3, "none": None})
    server = serve(AtomicCollector(c, targets), 0, "127.0.0.1")
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
    finally:
        server.shutdown()
    s = parse(text)
    assert value(s, "queue_messages", queue="jobs", state="pending") == 1
    assert value(s, "queue_messages", queue="jobs", state="in_flight") == 2
    assert value(s, "queue_messages", queue="jobs", state="delayed") == 1
    assert value(s, "queue_messages", queue="jobs", state="dead") == 1
    assert value(s, "queue_messages", queue="empty-queue", state="pending") == 0
    assert value(s, "queue_lag_seconds", queue="empty-queue") == 0
    # In flight since the push a moment ago, leases running.
    assert 0 <= value(s, "queue_oldest_inflight_age_seconds", queue="jobs") < 5
    assert value(s, "queue_lease_overdue_seconds", queue="jobs") == 0
    assert leased
    assert value(s, "queue_oldest_inflight_age_seconds", queue="empty-queue") == 0

    assert value(s, "lock_held", lock="invoice") == 1
    assert 15 < value(s, "lock_lease_remaining_seconds", lock="invoice") <= 20
    assert value(s, "lock_fence", lock="invoice") == 1
    assert value(s, "lock_lost_fence", lock="invoice") == 0
    assert value(s, "lock_held", lock="lost") == 1
    assert value(s, "lock_fence", lock="lost") == 2
    assert value(s, "lock_lost_fence", lock="lost") == 1
    assert value(s, "lock_held", lock="never") == 0
    assert value(s, "lock_lease_remaining_seconds", lock="never") == 0

    assert value(s, "counter_value", counter="stock") == 42
    assert (value(s, "counter_min", counter="stock"), value(s, "counter_max", counter="stock")) \
        == (0, 100)
    assert value(s, "counter_value", counter="absent") == 0
    assert "absent" not in names(s, "counter_min", "counter")
    assert value(s, "semaphore_in_use", semaphore="pool") == 2
    assert value(s, "semaphore_limit", semaphore="pool") == 3
    assert value(s, "semaphore_in_use", semaphore="none") == 0
    assert "none" not in names(s, "semaphore_limit", "semaphore")
    assert value(s, "up") == 1
    assert not names(s, "scrape_error", "name")


def test_lag_ignores_delayed_messages_and_counts_due_ones_from_their_due_time(
        redis_client: redis.Redis) -> None:
    c = redis_client
    q = ReliableQueue(c, "lag")
    collector = AtomicCollector(c, Targets({"lag"}, set(), {}, {}))
    q.push(b"far", delay=3600)
    first = q.push(b"soon", delay=1.0)
    pushed = int(first.split("-")[0])
    time.sleep(1.5)
    # The server's clock just before and after the scrape bound what its script saw (the
    # machine may be loaded: no fixed tolerance).
    before = server_ms(c)
    s = scrape(collector)
    after = server_ms(c)
    assert value(s, "queue_messages", queue="lag", state="delayed") == 2
    # Only "soon" is claimable, and only since it fell due (1 s after its push): counted
    # from the push, the lag would be a full second more.
    lag = value(s, "queue_lag_seconds", queue="lag")
    assert (before - pushed - 1000) / 1000 - 0.002 <= lag <= (after - pushed - 1000) / 1000 + 0.002
    if after - before < 900:  # the interval is narrow enough to tell the two apart
        assert lag < (before - pushed) / 1000

    # Once claimed, only the far one is left: no lag at all.
    msg = q.pop()
    assert msg is not None
    assert msg.payload == b"soon"
    assert value(scrape(collector), "queue_lag_seconds", queue="lag") == 0

    # A ready message counts from its push.
    ready = int(q.push(b"now").split("-")[0])
    time.sleep(0.3)
    before = server_ms(c)
    lag = value(scrape(collector), "queue_lag_seconds", queue="lag")
    after = server_ms(c)
    assert (before - ready) / 1000 - 0.002 <= lag <= (after - ready) / 1000 + 0.002


def test_expired_leases_show_as_overdue_and_as_lag(redis_client: redis.Redis) -> None:
    c = redis_client
    q = ReliableQueue(c, "stalled", visibility_timeout=0.1)
    q.push(b"x")
    assert q.pop() is not None
    time.sleep(0.4)
    s = scrape(AtomicCollector(c, Targets({"stalled"}, set(), {}, {})))
    overdue = value(s, "queue_lease_overdue_seconds", queue="stalled")
    assert 0.25 <= overdue < 5
    assert value(s, "queue_lag_seconds", queue="stalled") >= overdue
    assert value(s, "queue_oldest_inflight_age_seconds", queue="stalled") >= overdue + 0.1
    assert expire_all(c, q) == 1


def test_a_broken_primitive_is_reported_and_the_others_still_measured(
        redis_client: redis.Redis) -> None:
    c = redis_client
    q = ReliableQueue(c, "ok")
    q.push(b"x")
    c.set(ReliableQueue(c, "bad").keys["pending"], "not a list")
    c.set(BoundedCounter(c, "text").key, "abc")
    s = scrape(AtomicCollector(c, Targets({"ok", "bad"}, set(), {"text": (None, None)}, {})))
    assert value(s, "scrape_error", kind="queue", name="bad", error="WrongTypeError") == 1
    assert value(s, "scrape_error", kind="counter", name="text", error="ScriptError") == 1
    assert value(s, "queue_messages", queue="ok", state="pending") == 1
    assert "bad" not in names(s, "queue_messages", "queue")


def test_an_unreachable_server_scrapes_as_down(redis_server_factory: Any) -> None:
    server = redis_server_factory()
    client = redis.Redis.from_url(server.url, socket_timeout=1, socket_connect_timeout=1)
    collector = AtomicCollector(client, Targets({"q"}, {"l"}, {}, {}))
    assert value(scrape(collector), "up") == 1
    server.stop()
    s = scrape(collector)
    assert value(s, "up") == 0
    assert not names(s, "queue_messages", "queue")
    client.close()


HOSTILE = ["plain", "with space", "a{b}c", "%7B", "50%", "ünï", "colon:in:name", "}{"]


def test_discovery_finds_every_kind_with_a_bounded_scan(redis_client: redis.Redis) -> None:
    c = redis_client
    for name in HOSTILE:
        ReliableQueue(c, name).push(b"x")
        assert Lock(c, name, ttl=30).acquire()
        BoundedCounter(c, name).incr(3)
        assert Semaphore(c, name, limit=2).acquire()
    c.mset({f"filler:{i}": "x" for i in range(2000)})
    c.set("atomic:cache:c1:{k}:e", "v")  # a cache entry: not a kind the exporter measures
    c.set("atomic:unknown:{x}", "v")
    c.config_resetstat()
    collector = AtomicCollector(c, discover=True, scan_budget=100, scan_count=50)
    found: Samples = {}
    scrapes = 0
    while scrapes < 100:  # ~2000 keys / 100 per scrape: one walk takes ~20 scrapes
        found = scrape(collector)
        scrapes += 1
        if names(found, "semaphore_in_use", "semaphore") == set(HOSTILE) and \
                collector._walks[""].cursor == 0:
            break
    for metric, label in (("queue_messages", "queue"), ("lock_held", "lock"),
                          ("counter_value", "counter"), ("semaphore_in_use", "semaphore")):
        assert names(found, metric, label) == set(HOSTILE), metric
    assert value(found, "counter_value", counter="a{b}c") == 3
    assert value(found, "discovered", kind="queue") == len(HOSTILE)
    stats = c.info("commandstats")
    assert "cmdstat_keys" not in stats
    # Each scrape examined at most its budget: two SCAN calls of COUNT 50.
    assert 10 <= scrapes < 100
    assert stats["cmdstat_scan"]["calls"] <= 2 * scrapes

    # A primitive whose keys are gone disappears after one full walk.
    q = ReliableQueue(c, "plain")
    c.delete(*q.keys.values())
    for _ in range(60):
        found = scrape(collector)
        if "plain" not in names(found, "queue_messages", "queue"):
            break
    assert "plain" not in names(found, "queue_messages", "queue")
    assert "plain" in names(found, "lock_held", "lock")


def test_cli_show_and_argument_errors(redis_client: redis.Redis, redis_url: str) -> None:
    ReliableQueue(redis_client, "cli").push(b"x")
    result = CliRunner().invoke(cli, ["metrics", "show", "--url", redis_url, "--queue", "cli",
                                      "--counter", "c=0:10", "--semaphore", "s=4"])
    assert result.exit_code == 0, result.output
    s = parse(result.output)
    assert value(s, "queue_messages", queue="cli", state="pending") == 1
    assert value(s, "counter_max", counter="c") == 10
    assert value(s, "semaphore_limit", semaphore="s") == 4
    # Bad input fails before connecting (the URL points nowhere).
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    for args, message in (
        (["--counter", "c=5:1"], "must not be greater"),
        (["--counter", "c=x:1"], "not an integer"),
        (["--counter", "c=5"], "MIN:MAX"),
        (["--semaphore", "s=0"], "limit"),
        ([], "nothing to measure"),
    ):
        result = CliRunner().invoke(cli, ["metrics", "show", "--url", nowhere, *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)


def test_cli_serve_answers_scrapes_until_sigterm(redis_client: redis.Redis,
                                                 redis_url: str) -> None:
    Semaphore(redis_client, "sem", limit=2).acquire()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyredis_atomic", "metrics", "serve", "--url", redis_url,
         "--addr", "127.0.0.1", "--port", str(port), "--semaphore", "sem=2"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert f"127.0.0.1:{port}/metrics" in line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            s = parse(resp.read().decode())
        assert value(s, "semaphore_in_use", semaphore="sem") == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_scrape_of_10k_messages_costs_bounded_server_time(redis_client: redis.Redis) -> None:
    c = redis_client
    small, big = ReliableQueue(c, "small"), ReliableQueue(c, "big")
    small.push(b"x")
    for start in range(0, 10_000, 1000):
        big.push_many([b"m%d" % i for i in range(start, start + 1000)])
        big.push_many([b"d%d" % i for i in range(start, start + 1000)], delay=3600)
    for _ in range(50):
        big.pop_many(20)  # 1000 in flight
    collector = {n: AtomicCollector(c, Targets({n}, set(), {}, {})) for n in ("small", "big")}
    usec: dict[str, float] = {}
    for name in ("small", "big"):
        scrape(collector[name])  # loads the script
        c.config_resetstat()
        for _ in range(20):
            s = scrape(collector[name])
        stats = c.info("commandstats")
        calls = {k: v for k, v in stats.items() if k.startswith("cmdstat_evalsha")}
        assert sum(v["calls"] for v in calls.values()) == 20, calls
        usec[name] = sum(v["usec"] for v in calls.values()) / 20
    assert value(s, "queue_messages", queue="big", state="pending") == 9000
    assert value(s, "queue_messages", queue="big", state="delayed") == 10_000
    # O(log n) steps: a few tens of microseconds. A walk over the 10k entries would take
    # milliseconds (and grow with the queue).
    assert usec["big"] < 500, usec
    print(f"server time per queue scrape: {usec}")


def test_a_replica_can_be_scraped_with_read_only_scripts(redis_server_factory: Any) -> None:
    primary = redis_server_factory()
    replica = redis_server_factory(replica_of=primary)
    with primary.client() as pc, replica.client() as rc:
        ReliableQueue(pc, "jobs").push_many([b"a", b"b", b"c"])
        deadline = time.monotonic() + 10
        while rc.exists(ReliableQueue(pc, "jobs").keys["pending"]) == 0:
            assert time.monotonic() < deadline, "the replica never synced"
            time.sleep(0.01)
        rc.config_resetstat()
        s = scrape(AtomicCollector(rc, Targets({"jobs"}, set(), {}, {})))
        assert value(s, "queue_messages", queue="jobs", state="pending") == 3
        assert not names(s, "scrape_error", "name")
        stats = rc.info("commandstats")
        version = tuple(int(p) for p in rc.info("server")["redis_version"].split(".")[:2])
        # Redis 7 has EVALSHA_RO (allowed on replicas); older servers run it as EVALSHA.
        sent = "cmdstat_evalsha_ro" if version >= (7, 0) else "cmdstat_evalsha"
        assert stats[sent]["calls"] >= 1, stats
        assert ReliableQueue(pc, "jobs").stats()["pending"] == 3  # nothing was written


@pytest.mark.cluster
def test_a_cluster_scrape_covers_every_primary(redis_cluster_client: Any) -> None:
    c = redis_cluster_client
    by_node: dict[str, str] = {}
    i = 0
    while len(by_node) < len(c.get_primaries()):
        name = f"q{i}"
        node = c.get_node_from_key(ReliableQueue(c, name).keys["pending"]).name
        by_node.setdefault(node, name)
        i += 1
    for name in by_node.values():
        ReliableQueue(c, name).push_many([b"a", b"b"])
        BoundedCounter(c, name).incr(7)
    static = AtomicCollector(c, Targets(set(by_node.values()), set(), {}, {}))
    s = scrape(static)
    for name in by_node.values():
        assert value(s, "queue_messages", queue=name, state="pending") == 2
    found = scrape(AtomicCollector(c, discover=True))
    assert names(found, "queue_messages", "queue") == set(by_node.values())
    assert names(found, "counter_value", "counter") == set(by_node.values())
    assert value(found, "counter_value", counter=next(iter(by_node.values()))) == 7


# -- I/O-free parts ---------------------------------------------------------------------------
@given(kind=st.sampled_from(["queue", "lock", "counter", "semaphore"]),
       name=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30),
       prefix=st.sampled_from(["atomic:", "", "app*[1]:", "x?"]))
def test_parse_key_inverts_the_key_layout(kind: str, name: str, prefix: str) -> None:
    layout = KeyLayout(kind, prefix)
    every: dict[str, list[str | None]] = {
        "queue": ["pending", "seq", "dead"], "lock": [None, "fences", "signal"],
        "counter": [None, "request:r1"], "semaphore": ["holders", "signal"]}
    parts = every[kind]
    for part in parts:
        assert parse_key(layout.key(name, part).encode(), prefix) == (kind, name)
    assert parse_key(KeyLayout("cache", prefix).key(name, "e", scope="c"), prefix) is None
    assert parse_key(KeyLayout(kind, prefix + "other:").key(name, "x"), prefix) is None


def test_discovery_pattern_escapes_glob_characters() -> None:
    assert discovery_pattern("atomic:") == "atomic:*"
    assert discovery_pattern("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\*"


def test_target_specs() -> None:
    assert parse_bounds("stock") == ("stock", None, None)
    assert parse_bounds("stock=0:100") == ("stock", 0, 100)
    assert parse_bounds("stock=:5") == ("stock", None, 5)
    assert parse_bounds("a=b=") == ("a=b", None, None)
    assert parse_limit("pool=3") == ("pool", 3)
    assert parse_limit("pool") == ("pool", None)
    with pytest.raises(ValueError, match="must not be empty"):
        parse_limit("=3")


def test_messages_of_every_priority_count_as_pending_and_as_lag(
        redis_client: redis.Redis) -> None:
    c = redis_client
    q = ReliableQueue(c, "prio-lag")
    collector = AtomicCollector(c, Targets({"prio-lag"}, set(), {}, {}))
    old = q.push(b"urgent", priority=3)
    q.push_many([b"a", b"b"], priority=1)
    time.sleep(0.3)
    s = scrape(collector)
    assert value(s, "queue_messages", queue="prio-lag", state="pending") == 3
    lag = value(s, "queue_lag_seconds", queue="prio-lag")
    assert lag == pytest.approx((server_ms(c) - int(old.split("-")[0])) / 1000, abs=0.05)
