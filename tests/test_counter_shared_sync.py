# GENERATED from tests/test_counter_shared_async.py by scripts/unasync.py: do not edit.
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
from twin_sync import REPR_PREFIX, sleep, spawn

from pyredis_atomic import (
    MAX_VALUE,
    MIN_VALUE,
    BoundedCounter,
    CounterResult,
    ScriptError,
    WrongTypeError,
)
from pyredis_atomic._core.replies import as_str


def test_incr_decr_reject_at_the_bounds(client: Any) -> None:
    stock = BoundedCounter(client, "stock:sku-1", min=0, max=3, initial=2)
    assert stock.get() == 2
    assert stock.incr() == CounterResult(True, 3, 1)
    refused = stock.incr()
    assert (refused.applied, refused.value, refused.delta) == (False, 3, 0)
    assert not refused
    assert stock.decr(3) == CounterResult(True, 0, -3)
    assert stock.decr() == CounterResult(False, 0, 0)
    assert stock.get() == 0


def test_clamp_saturates_and_reports_the_delta_made(client: Any) -> None:
    quota = BoundedCounter(client, "quota", min=-5, max=10)
    assert quota.incr(7, clamp=True) == CounterResult(True, 7, 7)
    assert quota.incr(7, clamp=True) == CounterResult(False, 10, 3)
    assert quota.incr(1, clamp=True) == CounterResult(False, 10, 0)
    assert quota.decr(100, clamp=True) == CounterResult(False, -5, -15)
    assert quota.get() == -5


def test_zero_and_negative_deltas(client: Any) -> None:
    c = BoundedCounter(client, "z", min=0, max=5)
    assert c.incr(0) == CounterResult(True, 0, 0)
    assert client.exists(c.key) == 0  # a no-op creates nothing
    assert c.incr(-1) == CounterResult(False, 0, 0)
    assert c.incr(4) == CounterResult(True, 4, 4)
    assert c.incr(-2) == CounterResult(True, 2, -2)
    assert c.decr(-3) == CounterResult(True, 5, 3)


def test_unbounded_sides_stop_at_the_exact_range(client: Any) -> None:
    c = BoundedCounter(client, "wide", initial=MAX_VALUE - 1)
    assert c.incr(1) == CounterResult(True, MAX_VALUE, 1)
    assert c.incr(MAX_VALUE) == CounterResult(False, MAX_VALUE, 0)  # sum is 2**54 - 2
    assert c.decr(MAX_VALUE) == CounterResult(True, 0, -MAX_VALUE)
    assert c.decr(MAX_VALUE) == CounterResult(True, MIN_VALUE, -MAX_VALUE)
    assert c.decr(1, clamp=True) == CounterResult(False, MIN_VALUE, 0)
    assert c.get() == MIN_VALUE
    assert client.get(c.key) in (str(MIN_VALUE).encode(), str(MIN_VALUE))
    # Exact near 2**53: odd values survive (a double rounding would make them even).
    c.set(MAX_VALUE - 2)
    assert c.incr(1) == CounterResult(True, MAX_VALUE - 1, 1)
    assert c.incr(1, clamp=True).value == MAX_VALUE


def test_values_stored_by_others_beyond_the_range_are_refused(
    redis_client: Any,
) -> None:
    c = BoundedCounter(redis_client, "foreign")
    redis_client.set(c.key, str(2**53 + 1))
    with pytest.raises(ScriptError, match="NOTINT") as info:
        c.incr()
    assert info.value.code == "NOTINT"
    assert info.value.key == c.key
    assert c.key in str(info.value)
    with pytest.raises(ScriptError, match="NOTINT"):
        c.get()
    for junk in ("abc", "1.5", "1e3", ""):
        redis_client.set(c.key, junk)
        with pytest.raises(ScriptError, match=c.key.replace("{", r"\{").replace("}", r"\}")):
            c.incr()
        assert redis_client.get(c.key) == junk.encode()  # left unchanged


def test_ttl_is_a_fixed_window_from_creation(redis_client: Any) -> None:
    c = BoundedCounter(redis_client, "window", min=0, max=100, ttl=0.6)
    c.incr()
    first = redis_client.pttl(c.key)
    assert 0 < first <= 600
    sleep(0.25)
    c.incr()
    c.set(50)
    assert redis_client.pttl(c.key) <= first - 200  # not extended by later changes
    sleep(0.5)
    assert redis_client.exists(c.key) == 0
    assert c.get() == 0
    c.incr(5)  # a new window starts
    assert 400 < redis_client.pttl(c.key) <= 600


def test_rejected_change_does_not_create_the_key(redis_client: Any) -> None:
    c = BoundedCounter(redis_client, "nothing", min=0, max=5, ttl=10)
    assert not c.decr()
    assert redis_client.exists(c.key) == 0


def test_set_and_reset(client: Any) -> None:
    c = BoundedCounter(client, "s", min=0, max=10, initial=3)
    c.set(9)
    assert c.get() == 9
    with pytest.raises(ValueError, match=r"value \(11\) is outside"):
        c.set(11)
    c.reset()
    assert c.get() == 3
    assert client.exists(c.key) == 0
    c.reset()  # twice is harmless


def test_request_id_applies_a_retried_increment_once(client: Any) -> None:
    c = BoundedCounter(client, "orders", min=0, max=10)
    first = c.incr(3, request_id="order-17")
    again = c.incr(3, request_id="order-17")  # a re-send after a lost reply
    assert first == again == CounterResult(True, 3, 3)
    assert c.get() == 3
    # a refused change is remembered too: the retry gets the same answer
    c.set(9)
    refused = c.incr(5, request_id="order-18")
    c.set(0)
    assert c.incr(5, request_id="order-18") == refused == CounterResult(False, 9, 0)
    assert c.get() == 0
    with pytest.raises(ScriptError, match="REQUESTREUSED") as info:
        c.incr(4, request_id="order-17")
    assert info.value.code == "REQUESTREUSED"
    assert c.decr(2, request_id="d-1") == c.decr(2, request_id="d-1")


def test_request_ids_are_forgotten_after_request_ttl(redis_client: Any) -> None:
    c = BoundedCounter(redis_client, "short-memory", request_ttl=0.2)
    assert c.incr(1, request_id="r").value == 1
    pttl = redis_client.pttl(c._spec.request_base + "r")
    assert 0 < pttl <= 200
    sleep(0.3)
    assert c.incr(1, request_id="r").value == 2


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
def test_bad_settings_are_refused(redis_client: Any, kwargs: dict[str, Any],
                                  error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        BoundedCounter(redis_client, "bad", **kwargs)


def test_bad_names(redis_client: Any) -> None:
    with pytest.raises(ValueError, match="name must not be empty"):
        BoundedCounter(redis_client, "")
    with pytest.raises(TypeError, match="name must be a str"):
        BoundedCounter(redis_client, b"x")  # type: ignore[arg-type]


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
def test_bad_deltas_are_refused_before_anything_is_sent(
        redis_client: Any, n: Any, error: type[Exception], match: str) -> None:
    c = BoundedCounter(redis_client, "bad-delta")
    redis_client.config_resetstat()
    for op in (c.incr, c.decr):
        with pytest.raises(error, match=match):
            op(n)
    with pytest.raises(TypeError, match="request_id must be a str"):
        c.incr(1, request_id=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="request_id must not be empty"):
        c.incr(1, request_id="")
    with pytest.raises(TypeError, match="value must be an int"):
        c.set(1.5)  # type: ignore[arg-type]
    stats = redis_client.info("commandstats")
    assert "cmdstat_evalsha" not in stats
    assert "cmdstat_eval" not in stats


def test_wrong_type_names_the_key(redis_client: Any) -> None:
    c = BoundedCounter(redis_client, "typed")
    redis_client.rpush(c.key, "x")
    for op in (c.incr, c.decr, c.get, c.reset, lambda: c.set(1),
               lambda: c.incr(1, request_id="r")):
        with pytest.raises(WrongTypeError) as info:
            op()
        assert info.value.key == c.key
        assert "list" in str(info.value)
    assert redis_client.lrange(c.key, 0, -1) == [b"x"]  # left unchanged
    d = BoundedCounter(redis_client, "typed2")
    redis_client.hset(d._spec.request_base + "r", "f", "v")
    with pytest.raises(WrongTypeError) as info:
        d.incr(1, request_id="r")
    assert info.value.key == d._spec.request_base + "r"
    assert d.get() == 0


def test_fast_path_survives_a_script_cache_flush(client: Any) -> None:
    c = BoundedCounter(client, "flushed", max=100)
    assert c.incr().value == 1
    client.script_flush()
    assert c.incr().value == 2
    assert client.script_exists(c._fast.sha) == [True]
    assert c.incr().value == 3


def test_keys_use_prefix_and_a_hash_tag(redis_client: Any) -> None:
    a = BoundedCounter(redis_client, "n", prefix="app:")
    b = BoundedCounter(redis_client, "n")
    a.incr(5)
    b.incr(7)
    assert a.key == "app:counter:{n}"
    assert redis_client.get("app:counter:{n}") == b"5"
    assert redis_client.get("atomic:counter:{n}") == b"7"


def test_brace_names_cannot_collide(redis_client: Any) -> None:
    # "a}:x" would fake the tag of another name without escaping.
    tricky = BoundedCounter(redis_client, "a}:request:{b")
    plain = BoundedCounter(redis_client, "a")
    tricky.incr(1)
    plain.incr(10, request_id="b")
    assert tricky.get() == 1
    assert plain.get() == 10
    assert len({tricky.key, plain.key, plain._spec.request_base + "b"}) == 3
    keys = sorted(as_str(k) for k in redis_client.keys("*"))
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


def test_repr_names_the_api_and_the_settings(client: Any) -> None:
    c = BoundedCounter(client, "stock", min=0, max=5, initial=4)
    assert repr(c).startswith(REPR_PREFIX + "BoundedCounter('stock', min=0, max=5")


def test_concurrent_callers_respect_the_bound(client: Any) -> None:
    c = BoundedCounter(client, "tickets", min=0, max=25)
    callers = [spawn(c.incr) for _ in range(60)]
    results = [caller.result(30) for caller in callers]
    assert sum(r.applied for r in results) == 25
    assert all(0 <= r.value <= 25 for r in results)
    assert c.get() == 25
