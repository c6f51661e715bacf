# GENERATED from tests/test_ratelimit_shared_async.py by scripts/unasync.py: do not edit.
"""RateLimiter (GCRA) against a real redis-server: burst exactness, remaining, retry_after,
peek, costs, key expiry, bad input, wrong types, prefixes, the repr and a cluster.

Shared by the two APIs: ``scripts/unasync.py`` writes ``test_ratelimit_shared_sync.py``
from ``test_ratelimit_shared_async.py`` (sleeps through ``twin_async``/``twin_sync``).
What belongs to neither API (``RateLimitResult.headers()``) is in ``test_ratelimit.py``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis.cluster
from hypothesis import given, settings
from hypothesis import strategies as st
from twin_sync import REPR_PREFIX, sleep

from pyredis_atomic import RateLimiter, ScriptError, WrongTypeError
from pyredis_atomic.testing import RedisClusterHarness


def test_burst_then_refused(client: Any) -> None:
    rl = RateLimiter(client, "api:user:7", rate=100, period=3600.0, burst=20)
    answers = [rl.hit() for _ in range(21)]
    assert [a.allowed for a in answers] == [True] * 20 + [False]
    assert [a.remaining for a in answers] == [*range(19, -1, -1), 0]
    assert all(a.retry_after == 0 for a in answers[:20])
    interval = 36.0
    assert interval - 5 < answers[20].retry_after <= interval
    assert 20 * interval - 5 < answers[20].reset_after <= 20 * interval


@settings(max_examples=15)
@given(rate=st.integers(1, 50), period=st.sampled_from([600.0, 3600.0, 7 * 3600.0 + 0.7]),
       burst=st.integers(1, 30))
def test_burst_is_exact_for_any_fraction(redis_client: Any, rate: int,
                                         period: float, burst: int) -> None:
    # period / rate is a fraction (e.g. 3600 / 7): a burst must still be exactly `burst`
    rl = RateLimiter(redis_client, f"frac-{rate}-{period}-{burst}", rate=rate,
                     period=period, burst=burst)
    rl.reset()
    answers = [rl.hit() for _ in range(burst + 1)]
    assert [a.remaining for a in answers[:burst]] == list(range(burst - 1, -1, -1))
    assert all(a.allowed for a in answers[:burst])
    assert not answers[burst].allowed
    interval = period / rate
    assert interval - 2 < answers[burst].retry_after <= interval + 1e-6


def test_then_one_per_interval_and_retry_after_is_right(redis_client: Any) -> None:
    rl = RateLimiter(redis_client, "paced", rate=5, period=1.0, burst=2)  # 200 ms apart
    assert rl.hit().allowed
    assert rl.hit().allowed
    t0 = time.monotonic()
    first = rl.hit()
    second = rl.hit()
    elapsed = time.monotonic() - t0
    assert not first.allowed
    assert not second.allowed
    assert 0 < first.retry_after <= 0.2
    # server time between the two replies is at most the client's elapsed time
    assert first.retry_after - elapsed - 0.002 <= second.retry_after <= first.retry_after
    for _ in range(3):  # sleeping retry_after is always enough, and one hit passes
        refused = rl.hit()
        assert not refused.allowed
        sleep(refused.retry_after)
        allowed = rl.hit()
        assert allowed.allowed, allowed
        assert allowed.remaining == 0


def test_refill_over_time(redis_client: Any) -> None:
    rl = RateLimiter(redis_client, "refill", rate=10, period=1.0, burst=3)
    for _ in range(3):
        assert rl.hit().allowed
    sleep(0.35)  # three intervals: full again (or nearly, on a slow machine)
    state = rl.peek()
    assert state.allowed
    assert state.remaining >= 1
    sleep(max(0.0, state.reset_after) + 0.01)
    assert [rl.hit().allowed for _ in range(3)] == [True, True, True]


def test_peek_consumes_nothing_and_answers_like_hit(client: Any) -> None:
    rl = RateLimiter(client, "peeky", rate=1, period=3600.0, burst=3)
    for _ in range(10):
        p = rl.peek()
        assert p.allowed
        assert p.remaining == 2
    hit = rl.hit()
    assert (hit.allowed, hit.remaining) == (p.allowed, p.remaining)
    assert abs(hit.reset_after - p.reset_after) < 1
    assert rl.peek(2).allowed
    assert not rl.peek(3).allowed
    assert rl.hit().remaining == 1
    assert rl.hit().remaining == 0
    p = rl.peek()
    h = rl.hit()
    assert not p.allowed
    assert not h.allowed
    assert abs(p.retry_after - h.retry_after) < 1
    assert client.exists(rl.key) == 1


def test_cost(client: Any) -> None:
    rl = RateLimiter(client, "bytes", rate=10, period=3600.0, burst=5)
    assert rl.hit(3).remaining == 2
    refused = rl.hit(3)
    assert not refused.allowed
    assert refused.remaining == 2  # a refused hit spends nothing
    assert rl.hit(2).allowed
    assert not rl.hit(1).allowed


def test_reset_and_costs_over_a_burst(client: Any) -> None:
    rl = RateLimiter(client, "resettable", rate=2, period=3600, burst=3)
    answers = [rl.hit() for _ in range(4)]
    assert [a.remaining for a in answers] == [2, 1, 0, 0]
    assert not answers[3].allowed
    assert not rl.peek().allowed
    rl.reset()
    assert rl.peek().remaining == 2
    assert rl.hit(3).remaining == 0


def test_key_expires_when_full_again(redis_client: Any) -> None:
    rl = RateLimiter(redis_client, "expiring", rate=10, period=1.0, burst=2)
    rl.hit()
    rl.hit()
    assert 0 < redis_client.pttl(rl.key) <= 201
    rl.reset()
    assert redis_client.exists(rl.key) == 0
    assert rl.hit().remaining == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rate": 0}, ValueError, "rate must be a positive"),
        ({"rate": -1}, ValueError, "rate must be a positive"),
        ({"rate": float("inf")}, ValueError, "rate must be a positive"),
        ({"rate": "5"}, TypeError, "rate must be a number"),
        ({"rate": True}, TypeError, "rate must be a number"),
        ({"rate": 5, "period": 0}, ValueError, "period must be at least"),
        ({"rate": 5, "period": -1.0}, ValueError, "period must be at least"),
        ({"rate": 5, "burst": 0}, ValueError, "burst must be between 1"),
        ({"rate": 5, "burst": 2.0}, TypeError, "burst must be an int"),
        ({"rate": 1e12, "period": 1.0, "burst": 5}, ValueError, "at most 1e9 per second"),
        ({"rate": 1, "period": 3600.0 * 24 * 365, "burst": 2}, ValueError, "at most a year"),
    ],
)
def test_bad_settings(redis_client: Any, kwargs: dict[str, Any],
                      error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        RateLimiter(redis_client, "bad", **kwargs)


def test_bad_costs_are_refused_before_anything_is_sent(redis_client: Any) -> None:
    rl = RateLimiter(redis_client, "costs", rate=5, burst=3)
    redis_client.config_resetstat()
    cases: list[tuple[Any, type[Exception], str]] = [(0, ValueError, "n must be at least 1"),
                            (4, ValueError, r"n \(4\) exceeds burst \(3\)"),
                            (1.0, TypeError, "n must be an int"),
                            (True, TypeError, "n must be an int")]
    for n, error, match in cases:
        with pytest.raises(error, match=match):
            rl.hit(n)
        with pytest.raises(error, match=match):
            rl.peek(n)
    assert "cmdstat_evalsha" not in redis_client.info("commandstats")


def test_wrong_type_and_foreign_state(redis_client: Any) -> None:
    rl = RateLimiter(redis_client, "typed", rate=5)
    redis_client.lpush(rl.key, "x")
    for op in (rl.hit, rl.peek, rl.reset):
        with pytest.raises(WrongTypeError) as info:
            op()
        assert info.value.key == rl.key
    redis_client.delete(rl.key)
    redis_client.set(rl.key, "garbage")
    with pytest.raises(ScriptError, match="BADSTATE") as err:
        rl.hit()
    assert err.value.key == rl.key


def test_prefix_and_brace_names(redis_client: Any) -> None:
    a = RateLimiter(redis_client, "u}{7", rate=1, period=60, burst=1, prefix="app:")
    b = RateLimiter(redis_client, "u", rate=1, period=60, burst=1, prefix="app:")
    assert a.hit().allowed
    assert b.hit().allowed  # separate limiters
    assert a.key == "app:ratelimit:{u%7D%7B7}"
    assert not a.hit().allowed


def test_repr_names_the_api_and_the_settings(client: Any) -> None:
    rl = RateLimiter(client, "async", rate=2, period=3600, burst=3)
    assert repr(rl).startswith(f"{REPR_PREFIX}RateLimiter('async', rate=2")


@pytest.mark.cluster
def test_limiter_on_a_cluster(redis_cluster: RedisClusterHarness) -> None:
    redis_cluster.wait_ok()
    redis_cluster.flushall()
    client = redis.cluster.RedisCluster(startup_nodes=[
        redis.cluster.ClusterNode(s.host, s.port) for s in redis_cluster.primaries])
    try:
        for i in range(6):
            rl = RateLimiter(client, f"user-{i}", rate=1, period=60, burst=2)
            assert [rl.hit().allowed for _ in range(3)] == [True, True, False]
            assert not rl.peek().allowed
        one = RateLimiter(client, "one-user", rate=1, period=60, burst=1)
        assert one.hit().allowed
        assert not one.hit().allowed
        assert not one.peek().allowed
    finally:
        client.close()
