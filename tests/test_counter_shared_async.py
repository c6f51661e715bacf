"""BoundedCounter against a real redis-server: semantics, exact range, ttl, request ids,
bad input, wrong types, prefixes and brace names, concurrent callers.

Shared by the two APIs: ``scripts/unasync.py`` writes ``test_counter_shared_sync.py`` from
``test_counter_shared_async.py``. What only one API has is hand-written:
``test_counter.py`` (the hypothesis model, the CLI) and ``test_counter_asyncio.py``
(cancellation).
"""

from __future__ import annotations

from typing import Any

import pytest
from twin_async import REPR_PREFIX, sleep, spawn

from pyredis_atomic import (
    MAX_VALUE,
    MIN_VALUE,
    CounterResult,
    ScriptError,
    WrongTypeError,
)
from pyredis_atomic._core.replies import as_str
from pyredis_atomic.asyncio import BoundedCounter


async def test_incr_decr_reject_at_the_bounds(aclient: Any) -> None:
    stock = BoundedCounter(aclient, "stock:sku-1", min=0, max=3, initial=2)
    assert await stock.get() == 2
    assert await stock.incr() == CounterResult(True, 3, 1)
    refused = await stock.incr()
    assert (refused.applied, refused.value, refused.delta) == (False, 3, 0)
    assert not refused
    assert await stock.decr(3) == CounterResult(True, 0, -3)
    assert await stock.decr() == CounterResult(False, 0, 0)
    assert await stock.get() == 0


async def test_clamp_saturates_and_reports_the_delta_made(aclient: Any) -> None:
    quota = BoundedCounter(aclient, "quota", min=-5, max=10)
    assert await quota.incr(7, clamp=True) == CounterResult(True, 7, 7)
    assert await quota.incr(7, clamp=True) == CounterResult(False, 10, 3)
    assert await quota.incr(1, clamp=True) == CounterResult(False, 10, 0)
    assert await quota.decr(100, clamp=True) == CounterResult(False, -5, -15)
    assert await quota.get() == -5


async def test_zero_and_negative_deltas(aclient: Any) -> None:
    c = BoundedCounter(aclient, "z", min=0, max=5)
    assert await c.incr(0) == CounterResult(True, 0, 0)
    assert await aclient.exists(c.key) == 0  # a no-op creates nothing
    assert await c.incr(-1) == CounterResult(False, 0, 0)
    assert await c.incr(4) == CounterResult(True, 4, 4)
    assert await c.incr(-2) == CounterResult(True, 2, -2)
    assert await c.decr(-3) == CounterResult(True, 5, 3)


async def test_unbounded_sides_stop_at_the_exact_range(aclient: Any) -> None:
    c = BoundedCounter(aclient, "wide", initial=MAX_VALUE - 1)
    assert await c.incr(1) == CounterResult(True, MAX_VALUE, 1)
    assert await c.incr(MAX_VALUE) == CounterResult(False, MAX_VALUE, 0)  # sum is 2**54 - 2
    assert await c.decr(MAX_VALUE) == CounterResult(True, 0, -MAX_VALUE)
    assert await c.decr(MAX_VALUE) == CounterResult(True, MIN_VALUE, -MAX_VALUE)
    assert await c.decr(1, clamp=True) == CounterResult(False, MIN_VALUE, 0)
    assert await c.get() == MIN_VALUE
    assert await aclient.get(c.key) in (str(MIN_VALUE).encode(), str(MIN_VALUE))
    # Exact near 2**53: odd values survive (a double rounding would make them even).
    await c.set(MAX_VALUE - 2)
    assert await c.incr(1) == CounterResult(True, MAX_VALUE - 1, 1)
    assert (await c.incr(1, clamp=True)).value == MAX_VALUE


async def test_values_stored_by_others_beyond_the_range_are_refused(
    async_redis_client: Any,
) -> None:
    c = BoundedCounter(async_redis_client, "foreign")
    await async_redis_client.set(c.key, str(2**53 + 1))
    with pytest.raises(ScriptError, match="NOTINT") as info:
        await c.incr()
    assert info.value.code == "NOTINT"
    assert info.value.key == c.key
    assert c.key in str(info.value)
    with pytest.raises(ScriptError, match="NOTINT"):
        await c.get()
    for junk in ("abc", "1.5", "1e3", ""):
        await async_redis_client.set(c.key, junk)
        with pytest.raises(ScriptError, match=c.key.replace("{", r"\{").replace("}", r"\}")):
            await c.incr()
        assert await async_redis_client.get(c.key) == junk.encode()  # left unchanged


async def test_ttl_is_a_fixed_window_from_creation(async_redis_client: Any) -> None:
    c = BoundedCounter(async_redis_client, "window", min=0, max=100, ttl=0.6)
    await c.incr()
    first = await async_redis_client.pttl(c.key)
    assert 0 < first <= 600
    await sleep(0.25)
    await c.incr()
    await c.set(50)
    assert await async_redis_client.pttl(c.key) <= first - 200  # not extended by later changes
    await sleep(0.5)
    assert await async_redis_client.exists(c.key) == 0
    assert await c.get() == 0
    await c.incr(5)  # a new window starts
    assert 400 < await async_redis_client.pttl(c.key) <= 600


async def test_rejected_change_does_not_create_the_key(async_redis_client: Any) -> None:
    c = BoundedCounter(async_redis_client, "nothing", min=0, max=5, ttl=10)
    assert not await c.decr()
    assert await async_redis_client.exists(c.key) == 0


async def test_set_and_reset(aclient: Any) -> None:
    c = BoundedCounter(aclient, "s", min=0, max=10, initial=3)
    await c.set(9)
    assert await c.get() == 9
    with pytest.raises(ValueError, match=r"value \(11\) is outside"):
        await c.set(11)
    await c.reset()
    assert await c.get() == 3
    assert await aclient.exists(c.key) == 0
    await c.reset()  # twice is harmless


async def test_request_id_applies_a_retried_increment_once(aclient: Any) -> None:
    c = BoundedCounter(aclient, "orders", min=0, max=10)
    first = await c.incr(3, request_id="order-17")
    again = await c.incr(3, request_id="order-17")  # a re-send after a lost reply
    assert first == again == CounterResult(True, 3, 3)
    assert await c.get() == 3
    # a refused change is remembered too: the retry gets the same answer
    await c.set(9)
    refused = await c.incr(5, request_id="order-18")
    await c.set(0)
    assert await c.incr(5, request_id="order-18") == refused == CounterResult(False, 9, 0)
    assert await c.get() == 0
    with pytest.raises(ScriptError, match="REQUESTREUSED") as info:
        await c.incr(4, request_id="order-17")
    assert info.value.code == "REQUESTREUSED"
    assert await c.decr(2, request_id="d-1") == await c.decr(2, request_id="d-1")


async def test_request_ids_are_forgotten_after_request_ttl(async_redis_client: Any) -> None:
    c = BoundedCounter(async_redis_client, "short-memory", request_ttl=0.2)
    assert (await c.incr(1, request_id="r")).value == 1
    pttl = await async_redis_client.pttl(c._spec.request_base + "r")
    assert 0 < pttl <= 200
    await sleep(0.3)
    assert (await c.incr(1, request_id="r")).value == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"min": 5, "max": 4}, ValueError, r"min \(5\) must not be greater than max \(4\)"),
        ({"min": 0, "max": 9, "initial": 10}, ValueError, r"initial \(10\) is outside"),
        ({"min": 1}, ValueError, r"initial \(0\) is outside"),
        ({"max": 2**53}, ValueError, "max must be between"),
        ({"min": -(2**53)}, ValueError, "min must be between"),
        ({"max": 1.5}, TypeError, "max must be an int, got float"),
        ({"min": True}, TypeError, "min must be an int, got bool"),
        ({"initial": "3"}, TypeError, "initial must be an int"),
        ({"ttl": 0}, ValueError, "ttl must be at least"),
        ({"ttl": -1}, ValueError, "ttl must be at least"),
        ({"ttl": float("nan")}, ValueError, "ttl must be finite"),
        ({"ttl": "10"}, TypeError, "ttl must be a number"),
        ({"request_ttl": 0}, ValueError, "request_ttl must be at least"),
        ({"prefix": "a{b"}, ValueError, "prefix must not contain"),
    ],
)
async def test_bad_settings_are_refused(async_redis_client: Any, kwargs: dict[str, Any],
                                        error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        BoundedCounter(async_redis_client, "bad", **kwargs)


async def test_bad_names(async_redis_client: Any) -> None:
    with pytest.raises(ValueError, match="name must not be empty"):
        BoundedCounter(async_redis_client, "")
    with pytest.raises(TypeError, match="name must be a str"):
        BoundedCounter(async_redis_client, b"x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n", "error", "match"),
    [
        (1.0, TypeError, "n must be an int, got float"),
        (True, TypeError, "n must be an int, got bool"),
        ("1", TypeError, "n must be an int, got str"),
        (None, TypeError, "n must be an int, got NoneType"),
        (2**53, ValueError, "n must be between"),
        (-(2**53), ValueError, "n must be between"),
    ],
)
async def test_bad_deltas_are_refused_before_anything_is_sent(
        async_redis_client: Any, n: Any, error: type[Exception], match: str) -> None:
    c = BoundedCounter(async_redis_client, "bad-delta")
    await async_redis_client.config_resetstat()
    for op in (c.incr, c.decr):
        with pytest.raises(error, match=match):
            await op(n)
    with pytest.raises(TypeError, match="request_id must be a str"):
        await c.incr(1, request_id=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="request_id must not be empty"):
        await c.incr(1, request_id="")
    with pytest.raises(TypeError, match="value must be an int"):
        await c.set(1.5)  # type: ignore[arg-type]
    stats = await async_redis_client.info("commandstats")
    assert "cmdstat_evalsha" not in stats
    assert "cmdstat_eval" not in stats


async def test_wrong_type_names_the_key(async_redis_client: Any) -> None:
    c = BoundedCounter(async_redis_client, "typed")
    await async_redis_client.rpush(c.key, "x")
    for op in (c.incr, c.decr, c.get, c.reset, lambda: c.set(1),
               lambda: c.incr(1, request_id="r")):
        with pytest.raises(WrongTypeError) as info:
            await op()
        assert info.value.key == c.key
        assert "list" in str(info.value)
    assert await async_redis_client.lrange(c.key, 0, -1) == [b"x"]  # left unchanged
    d = BoundedCounter(async_redis_client, "typed2")
    await async_redis_client.hset(d._spec.request_base + "r", "f", "v")
    with pytest.raises(WrongTypeError) as info:
        await d.incr(1, request_id="r")
    assert info.value.key == d._spec.request_base + "r"
    assert await d.get() == 0


async def test_fast_path_survives_a_script_cache_flush(aclient: Any) -> None:
    c = BoundedCounter(aclient, "flushed", max=100)
    assert (await c.incr()).value == 1
    await aclient.script_flush()
    assert (await c.incr()).value == 2
    assert await aclient.script_exists(c._fast.sha) == [True]
    assert (await c.incr()).value == 3


async def test_keys_use_prefix_and_a_hash_tag(async_redis_client: Any) -> None:
    a = BoundedCounter(async_redis_client, "n", prefix="app:")
    b = BoundedCounter(async_redis_client, "n")
    await a.incr(5)
    await b.incr(7)
    assert a.key == "app:counter:{n}"
    assert await async_redis_client.get("app:counter:{n}") == b"5"
    assert await async_redis_client.get("atomic:counter:{n}") == b"7"


async def test_brace_names_cannot_collide(async_redis_client: Any) -> None:
    # "a}:x" would fake the tag of another name without escaping.
    tricky = BoundedCounter(async_redis_client, "a}:request:{b")
    plain = BoundedCounter(async_redis_client, "a")
    await tricky.incr(1)
    await plain.incr(10, request_id="b")
    assert await tricky.get() == 1
    assert await plain.get() == 10
    assert len({tricky.key, plain.key, plain._spec.request_base + "b"}) == 3
    keys = sorted(as_str(k) for k in await async_redis_client.keys("*"))
    assert tricky.key in keys
    assert tricky.key.count("{") == 1
    assert tricky.key.count("}") == 1


def test_results_are_plain_values() -> None:
    r = CounterResult(True, 5, 2)
    assert r == CounterResult(True, 5, 2)
    assert r != CounterResult(False, 5, 2)
    assert hash(r) == hash(CounterResult(True, 5, 2))
    assert repr(r) == "CounterResult(applied=True, value=5, delta=2)"
    assert bool(r)
    assert not CounterResult(False, 5, 0)


async def test_repr_names_the_api_and_the_settings(aclient: Any) -> None:
    c = BoundedCounter(aclient, "stock", min=0, max=5, initial=4)
    assert repr(c).startswith(REPR_PREFIX + "BoundedCounter('stock', min=0, max=5")


async def test_concurrent_callers_respect_the_bound(aclient: Any) -> None:
    c = BoundedCounter(aclient, "tickets", min=0, max=25)
    callers = [spawn(c.incr) for _ in range(60)]
    results = [await caller.result(30) for caller in callers]
    assert sum(r.applied for r in results) == 25
    assert all(0 <= r.value <= 25 for r in results)
    assert await c.get() == 25
