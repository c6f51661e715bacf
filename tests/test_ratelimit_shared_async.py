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
import redis.asyncio.cluster
from hypothesis import given, settings
from hypothesis import strategies as st
from twin_async import REPR_PREFIX, sleep

from pyredis_atomic import ScriptError, WrongTypeError
from pyredis_atomic.asyncio import RateLimiter
from pyredis_atomic.testing import RedisClusterHarness


async def test_burst_then_refused(aclient: Any) -> None:
    rl = RateLimiter(aclient, "api:user:7", rate=100, period=3600.0, burst=20)
    answers = [await rl.hit() for _ in range(21)]
    assert [a.allowed for a in answers] == [True] * 20 + [False]
    assert [a.remaining for a in answers] == [*range(19, -1, -1), 0]
    assert all(a.retry_after == 0 for a in answers[:20])
    interval = 36.0
    assert interval - 5 < answers[20].retry_after <= interval
    assert 20 * interval - 5 < answers[20].reset_after <= 20 * interval


@settings(max_examples=15)
@given(rate=st.integers(1, 50), period=st.sampled_from([600.0, 3600.0, 7 * 3600.0 + 0.7]),
       burst=st.integers(1, 30))
async def test_burst_is_exact_for_any_fraction(async_redis_client: Any, rate: int,
                                               period: float, burst: int) -> None:
    # period / rate is a fraction (e.g. 3600 / 7): a burst must still be exactly `burst`
    rl = RateLimiter(async_redis_client, f"frac-{rate}-{period}-{burst}", rate=rate,
                     period=period, burst=burst)
    await rl.reset()
    answers = [await rl.hit() for _ in range(burst + 1)]
    assert [a.remaining for a in answers[:burst]] == list(range(burst - 1, -1, -1))
    assert all(a.allowed for a in answers[:burst])
    assert not answers[burst].allowed
    interval = period / rate
    assert interval - 2 < answers[burst].retry_after <= interval + 1e-6


async def test_then_one_per_interval_and_retry_after_is_right(async_redis_client: Any) -> None:
    rl = RateLimiter(async_redis_client, "paced", rate=5, period=1.0, burst=2)  # 200 ms apart
    assert (await rl.hit()).allowed
    assert (await rl.hit()).allowed
    t0 = time.monotonic()
    first = await rl.hit()
    second = await rl.hit()
    elapsed = time.monotonic() - t0
    assert not first.allowed
    assert not second.allowed
    assert 0 < first.retry_after <= 0.2
    # server time between the two replies is at most the client's elapsed time
    assert first.retry_after - elapsed - 0.002 <= second.retry_after <= first.retry_after
    for _ in range(3):  # sleeping retry_after is always enough, and one hit passes
        refused = await rl.hit()
        assert not refused.allowed
        await sleep(refused.retry_after)
        allowed = await rl.hit()
        assert allowed.allowed, allowed
        assert allowed.remaining == 0


async def test_refill_over_time(async_redis_client: Any) -> None:
    rl = RateLimiter(async_redis_client, "refill", rate=10, period=1.0, burst=3)
    for _ in range(3):
        assert (await rl.hit()).allowed
    await sleep(0.35)  # three intervals: full again (or nearly, on a slow machine)
    state = await rl.peek()
    assert state.allowed
    assert state.remaining >= 1
    await sleep(max(0.0, state.reset_after) + 0.01)
    assert [(await rl.hit()).allowed for _ in range(3)] == [True, True, True]


async def test_peek_consumes_nothing_and_answers_like_hit(aclient: Any) -> None:
    rl = RateLimiter(aclient, "peeky", rate=1, period=3600.0, burst=3)
    for _ in range(10):
        p = await rl.peek()
        assert p.allowed
        assert p.remaining == 2
    hit = await rl.hit()
    assert (hit.allowed, hit.remaining) == (p.allowed, p.remaining)
    assert abs(hit.reset_after - p.reset_after) < 1
    assert (await rl.peek(2)).allowed
    assert not (await rl.peek(3)).allowed
    assert (await rl.hit()).remaining == 1
    assert (await rl.hit()).remaining == 0
    p = await rl.peek()
    h = await rl.hit()
    assert not p.allowed
    assert not h.allowed
    assert abs(p.retry_after - h.retry_after) < 1
    assert await aclient.exists(rl.key) == 1


async def test_cost(aclient: Any) -> None:
    rl = RateLimiter(aclient, "bytes", rate=10, period=3600.0, burst=5)
    assert (await rl.hit(3)).remaining == 2
    refused = await rl.hit(3)
    assert not refused.allowed
    assert refused.remaining == 2  # a refused hit spends nothing
    assert (await rl.hit(2)).allowed
    assert not (await rl.hit(1)).allowed


async def test_reset_and_costs_over_a_burst(aclient: Any) -> None:
    rl = RateLimiter(aclient, "resettable", rate=2, period=3600, burst=3)
    answers = [await rl.hit() for _ in range(4)]
    assert [a.remaining for a in answers] == [2, 1, 0, 0]
    assert not answers[3].allowed
    assert not (await rl.peek()).allowed
    await rl.reset()
    assert (await rl.peek()).remaining == 2
    assert (await rl.hit(3)).remaining == 0


async def test_key_expires_when_full_again(async_redis_client: Any) -> None:
    rl = RateLimiter(async_redis_client, "expiring", rate=10, period=1.0, burst=2)
    await rl.hit()
    await rl.hit()
    assert 0 < await async_redis_client.pttl(rl.key) <= 201
    await rl.reset()
    assert await async_redis_client.exists(rl.key) == 0
    assert (await rl.hit()).remaining == 1


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
async def test_bad_settings(async_redis_client: Any, kwargs: dict[str, Any],
                            error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        RateLimiter(async_redis_client, "bad", **kwargs)


async def test_bad_costs_are_refused_before_anything_is_sent(async_redis_client: Any) -> None:
    rl = RateLimiter(async_redis_client, "costs", rate=5, burst=3)
    await async_redis_client.config_resetstat()
    cases: list[tuple[Any, type[Exception], str]] = [(0, ValueError, "n must be at least 1"),
                            (4, ValueError, r"n \(4\) exceeds burst \(3\)"),
                            (1.0, TypeError, "n must be an int"),
                            (True, TypeError, "n must be an int")]
    for n, error, match in cases:
        with pytest.raises(error, match=match):
            await rl.hit(n)
        with pytest.raises(error, match=match):
            await rl.peek(n)
    assert "cmdstat_evalsha" not in await async_redis_client.info("commandstats")


async def test_wrong_type_and_foreign_state(async_redis_client: Any) -> None:
    rl = RateLimiter(async_redis_client, "typed", rate=5)
    await async_redis_client.lpush(rl.key, "x")
    for op in (rl.hit, rl.peek, rl.reset):
        with pytest.raises(WrongTypeError) as info:
            await op()
        assert info.value.key == rl.key
    await async_redis_client.delete(rl.key)
    await async_redis_client.set(rl.key, "garbage")
    with pytest.raises(ScriptError, match="BADSTATE") as err:
        await rl.hit()
    assert err.value.key == rl.key


async def test_prefix_and_brace_names(async_redis_client: Any) -> None:
    a = RateLimiter(async_redis_client, "u}{7", rate=1, period=60, burst=1, prefix="app:")
    b = RateLimiter(async_redis_client, "u", rate=1, period=60, burst=1, prefix="app:")
    assert (await a.hit()).allowed
    assert (await b.hit()).allowed  # separate limiters
    assert a.key == "app:ratelimit:{u%7D%7B7}"
    assert not (await a.hit()).allowed


async def test_repr_names_the_api_and_the_settings(aclient: Any) -> None:
    rl = RateLimiter(aclient, "async", rate=2, period=3600, burst=3)
    assert repr(rl).startswith(f"{REPR_PREFIX}RateLimiter('async', rate=2")


@pytest.mark.cluster
async def test_limiter_on_a_cluster(redis_cluster: RedisClusterHarness) -> None:
    redis_cluster.wait_ok()
    redis_cluster.flushall()
    client = redis.asyncio.cluster.RedisCluster(startup_nodes=[
        redis.asyncio.cluster.ClusterNode(s.host, s.port) for s in redis_cluster.primaries])
    try:
        for i in range(6):
            rl = RateLimiter(client, f"user-{i}", rate=1, period=60, burst=2)
            assert [(await rl.hit()).allowed for _ in range(3)] == [True, True, False]
            assert not (await rl.peek()).allowed
        one = RateLimiter(client, "one-user", rate=1, period=60, burst=1)
        assert (await one.hit()).allowed
        assert not (await one.hit()).allowed
        assert not (await one.peek()).allowed
    finally:
        await client.aclose()
