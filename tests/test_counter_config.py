"""BoundedCounter's stored configuration (issue 16): the first writer stores (min, max, mode)
next to the value; every later call, from Python or raw EVALSHA with any arguments, is
checked against it inside the script; reconfigure() is the one way to change it."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from pyredis_atomic import (
    MAX_VALUE,
    BoundedCounter,
    ConfigMismatchError,
    CounterConfig,
    CounterResult,
    ScriptError,
    WrongTypeError,
)
from pyredis_atomic import asyncio as aio
from pyredis_atomic.registry import default_registry

REGISTRY = default_registry()


def _raw(client: redis.Redis, script: str, keys: list[str], args: list[Any]) -> Any:
    """The script called by SHA, as a caller in another language would."""
    REGISTRY.load(client, [script])
    return client.evalsha(REGISTRY.get(script).sha1, len(keys), *keys, *args)


def _keys(c: BoundedCounter) -> list[str]:
    return [c.key, c.key + ":config", c.key]


def test_the_first_call_stores_the_configuration(redis_client: redis.Redis) -> None:
    c = BoundedCounter(redis_client, "stock", min=0, max=100)
    assert c.stored_config() is None
    assert c.incr(5) == CounterResult(True, 5, 5)
    assert redis_client.get(c.key + ":config") == b"0 100 reject"
    assert c.stored_config() == CounterConfig(0, 100, False)
    assert c.stored_config() == c.config
    wide = BoundedCounter(redis_client, "wide", clamp=True)
    wide.decr()
    assert redis_client.get(wide.key + ":config") == (
        f"{-MAX_VALUE} {MAX_VALUE} clamp".encode())
    assert wide.stored_config() == CounterConfig(None, None, True)


def test_another_configuration_is_refused_naming_both(redis_client: redis.Redis) -> None:
    python = BoundedCounter(redis_client, "quota", min=0, max=100)
    python.incr(90)
    other = BoundedCounter(redis_client, "quota", max=200)
    for call in (lambda: other.incr(50), other.decr, lambda: other.set(150),
                 lambda: other.incr(1, request_id="r")):
        with pytest.raises(ConfigMismatchError) as info:
            call()
        err = info.value
        assert err.key == python.key + ":config"
        assert err.code == "CONFIGMISMATCH"
        assert isinstance(err, ScriptError)
        assert (err.stored, err.given) == ("0 100 reject", f"{-MAX_VALUE} 200 reject")
        text = str(err)
        assert "min=0 max=100 reject" in text
        assert "min=None max=200 reject" in text
        assert repr(err.key) in text
        assert "reconfigure" in text
    # Another mode is another configuration too.
    with pytest.raises(ConfigMismatchError, match="min=0 max=100 clamp"):
        BoundedCounter(redis_client, "quota", min=0, max=100, clamp=True).incr()
    assert python.get() == 90
    assert redis_client.exists(python.key + ":request:r") == 0


def test_the_mode_is_the_default_and_each_call_may_choose(redis_client: redis.Redis) -> None:
    saturating = BoundedCounter(redis_client, "s", min=0, max=10, clamp=True)
    assert saturating.clamp
    assert saturating.incr(15) == CounterResult(False, 10, 10)
    assert saturating.incr(1, clamp=False) == CounterResult(False, 10, 0)
    assert saturating.decr(3, clamp=False) == CounterResult(True, 7, -3)
    rejecting = BoundedCounter(redis_client, "r", min=0, max=10)
    assert rejecting.incr(15) == CounterResult(False, 0, 0)
    assert rejecting.incr(15, clamp=True) == CounterResult(False, 10, 10)
    assert rejecting.stored_config() == CounterConfig(0, 10, False)


def test_reconfigure_changes_the_stored_configuration(redis_client: redis.Redis) -> None:
    a = BoundedCounter(redis_client, "seats", min=0, max=10)
    a.incr(8)
    b = BoundedCounter(redis_client, "seats", min=0, max=10)
    assert a.reconfigure(min=0, max=20) == CounterConfig(0, 10, False)
    assert a.max == 20
    assert a.stored_config() == CounterConfig(0, 20, False)
    assert a.incr(12) == CounterResult(True, 20, 12)
    with pytest.raises(ConfigMismatchError):
        b.incr()  # still built with the old bounds
    assert a.reconfigure(min=0, max=20) == CounterConfig(0, 20, False)  # re-sending: same
    # The mode: kept unless given.
    assert a.reconfigure(min=0, max=30, clamp=True) == CounterConfig(0, 20, False)
    assert a.clamp
    assert a.incr(100) == CounterResult(False, 30, 10)


def test_reconfigure_refuses_or_clamps_a_value_outside(redis_client: redis.Redis) -> None:
    c = BoundedCounter(redis_client, "c", min=0, max=100, ttl=60)
    c.incr(80)
    with pytest.raises(ScriptError, match="OUTOFBOUNDS") as info:
        c.reconfigure(min=0, max=50)
    assert info.value.code == "OUTOFBOUNDS"
    assert "holds 80" in str(info.value)
    assert c.stored_config() == CounterConfig(0, 100, False)  # nothing changed
    assert c.max == 100
    assert c.get() == 80
    assert c.reconfigure(min=0, max=50, clamp_value=True) == CounterConfig(0, 100, False)
    assert c.get() == 50
    assert 0 < redis_client.pttl(c.key) <= 60_000  # the window is kept
    assert 0 < redis_client.pttl(c.key + ":config") <= 60_000
    with pytest.raises(ValueError, match=r"initial \(0\) is outside"):
        c.reconfigure(min=1, max=50)  # this counter's own initial value would not fit
    assert c.stored_config() == CounterConfig(0, 50, False)


def test_reconfigure_an_absent_counter(redis_client: redis.Redis) -> None:
    c = BoundedCounter(redis_client, "new", min=0, max=5)
    assert c.reconfigure(min=-5, max=5) is None
    assert redis_client.exists(c.key) == 0
    assert c.stored_config() == CounterConfig(-5, 5, False)
    with pytest.raises(ConfigMismatchError):
        BoundedCounter(redis_client, "new", min=0, max=5).incr()


def test_legacy_counters_get_a_configuration_on_their_first_call(
    redis_client: redis.Redis
) -> None:
    # Written before configurations were stored: a value, no config key.
    redis_client.set("atomic:counter:{old}", 7)
    redis_client.set("atomic:counter:{late}", 145, px=60_000)
    old = BoundedCounter(redis_client, "old", min=0, max=100)
    assert old.get() == 7
    assert old.incr() == CounterResult(True, 8, 1)
    assert old.stored_config() == CounterConfig(0, 100, False)
    assert redis_client.ttl(old.key + ":config") == -1
    # A legacy value already past the bounds stays put and moves only towards them
    # (until reconfigure(..., clamp_value=True) moves it in).
    late = BoundedCounter(redis_client, "late", min=0, max=100)
    assert late.incr() == CounterResult(False, 145, 0)
    assert late.incr(5, clamp=True) == CounterResult(False, 145, 0)
    assert late.decr(10) == CounterResult(True, 135, -10)
    assert 0 < redis_client.pttl(late.key + ":config") <= 60_000  # expires with the value
    assert late.reconfigure(min=0, max=100, clamp_value=True) == CounterConfig(0, 100, False)
    assert late.get() == 100


def test_the_configuration_lives_as_long_as_the_value(redis_client: redis.Redis) -> None:
    window = BoundedCounter(redis_client, "window", max=10, ttl=0.4)
    window.incr()
    assert 0 < redis_client.pttl(window.key + ":config") <= 400
    time.sleep(0.6)
    assert redis_client.exists(window.key, window.key + ":config") == 0
    # The next window may be configured otherwise.
    BoundedCounter(redis_client, "window", max=20).incr()
    # reset() leaves the configuration; a new counter without ttl keeps it for good.
    c = BoundedCounter(redis_client, "kept", max=10, ttl=30)
    c.incr()
    c.reset()
    assert redis_client.exists(c.key) == 0
    assert c.stored_config() == CounterConfig(None, 10, False)
    BoundedCounter(redis_client, "kept", max=10).incr()
    assert redis_client.ttl(c.key + ":config") == -1
    BoundedCounter(redis_client, "kept", max=10, ttl=30).set(3)
    assert redis_client.ttl(c.key) == -1  # the value existed: it keeps its (no) expiry
    assert redis_client.ttl(c.key + ":config") == -1


def test_a_resent_request_gets_its_reply_after_a_reconfigure(redis_client: redis.Redis) -> None:
    c = BoundedCounter(redis_client, "r", min=0, max=10)
    assert c.incr(4, request_id="order-1") == CounterResult(True, 4, 4)
    BoundedCounter(redis_client, "r", min=0, max=10).reconfigure(min=0, max=20)
    # The client with the old configuration re-sends after a lost reply: the change was
    # made once, under the configuration stored then; the re-send must not fail it.
    assert c.incr(4, request_id="order-1") == CounterResult(True, 4, 4)
    with pytest.raises(ConfigMismatchError):
        c.incr(4, request_id="order-2")


def test_hostile_raw_calls_cannot_leave_the_stored_bounds(redis_client: redis.Redis) -> None:
    c = BoundedCounter(redis_client, "h", min=0, max=100)
    c.incr(50)
    keys = _keys(c)
    opts = "0 0 0 1000"
    # The Node call: bound "none".
    with pytest.raises(redis.ResponseError, match="CONFIGMISMATCH"):
        _raw(redis_client, "counter_add", keys, [95, f"{-MAX_VALUE} {MAX_VALUE} reject", opts])
    for config in ("0 1000 reject", "0 100 clamp", "-100 100 reject"):
        with pytest.raises(redis.ResponseError, match="CONFIGMISMATCH"):
            _raw(redis_client, "counter_add", keys, [95, config, opts])
        with pytest.raises(redis.ResponseError, match="CONFIGMISMATCH"):
            _raw(redis_client, "counter_set", keys[:2], [1000, config, 0])
    for config in ("0 100 reject ", "00 100 reject", "0 100", "0 1e9 reject", "100 0 reject"):
        with pytest.raises(redis.ResponseError, match="ARGV\\[2\\] config must be"):
            _raw(redis_client, "counter_add", keys, [95, config, opts])
    # With the stored configuration, a raw caller is held to it like Python.
    assert _raw(redis_client, "counter_add", keys, [95, "0 100 reject", "0 0 0 1000"]) == [50, 0]
    assert _raw(redis_client, "counter_add", keys, [95, "0 100 reject", "1 0 0 1000"]) == [100, 50]
    with pytest.raises(redis.ResponseError, match="OUTOFBOUNDS"):
        _raw(redis_client, "counter_set", keys[:2], [101, "0 100 reject", 0])
    assert c.get() == 100
    # An absent counter: a hostile initial value outside the stored bounds is refused.
    c.reset()
    with pytest.raises(redis.ResponseError, match="OUTOFBOUNDS ARGV\\[3\\] initial 500"):
        _raw(redis_client, "counter_add", keys, [-1, "0 100 reject", "0 500 0 1000"])
    assert redis_client.exists(c.key) == 0
    assert c.stored_config() == CounterConfig(0, 100, False)


def test_wrong_types_in_the_config_key(redis_client: redis.Redis) -> None:
    c = BoundedCounter(redis_client, "w", min=0, max=10)
    redis_client.rpush(c.key + ":config", "x")
    for call in (c.incr, lambda: c.set(1), lambda: c.reconfigure(min=0, max=5), c.stored_config):
        with pytest.raises(WrongTypeError) as info:
            call()
        assert info.value.key == c.key + ":config"
    assert redis_client.exists(c.key) == 0
    redis_client.delete(c.key + ":config")
    redis_client.set(c.key + ":config", "garbage")
    with pytest.raises(ConfigMismatchError, match="'garbage'"):
        c.incr()


async def test_asyncio_mismatch_and_reconfigure(aclient: Any) -> None:
    a = aio.BoundedCounter(aclient, "a", min=0, max=3)
    assert await a.incr(3) == CounterResult(True, 3, 3)
    b = aio.BoundedCounter(aclient, "a", min=0, max=5)
    with pytest.raises(ConfigMismatchError, match="min=0 max=3 reject"):
        await b.incr()
    assert await b.reconfigure(min=0, max=5) == CounterConfig(0, 3, False)
    assert await b.incr(2) == CounterResult(True, 5, 2)
    assert await b.stored_config() == CounterConfig(0, 5, False)
    with pytest.raises(ConfigMismatchError):
        await a.decr()


# -- the "done when": mixed callers never leave the stored bounds -----------------

LOW, HIGH = -20, 30
_DELTAS = st.integers(-60, 60) | st.sampled_from([MAX_VALUE, -MAX_VALUE, 0])
_BOUND = st.integers(-100, 100) | st.none()
_HOSTILE_CONFIG = st.one_of(
    st.just(f"{LOW} {HIGH} reject"),  # the stored one
    st.builds(lambda lo, hi, m: f"{lo} {hi} {m}", st.integers(-MAX_VALUE, MAX_VALUE),
              st.integers(-MAX_VALUE, MAX_VALUE), st.sampled_from(["reject", "clamp"])),
    st.sampled_from([f"{-MAX_VALUE} {MAX_VALUE} reject", f"{LOW} {HIGH} clamp",
                     f"{LOW} {HIGH}", f"{LOW} {HIGH} reject ", "", "nan inf reject"]),
    st.text(max_size=12),
)
_HOSTILE_OPTIONS = st.builds(lambda c, i, t, r: f"{c} {i} {t} {r}", st.sampled_from([0, 1]),
                             st.integers(-1000, 1000), st.sampled_from([0, 60000]),
                             st.sampled_from([1, 1000])) | st.text(max_size=10)
OPS = st.one_of(
    # A Python caller: the stored configuration, or its own per-call bounds.
    st.tuples(st.just("python"), _DELTAS, st.booleans() | st.none(), _BOUND, _BOUND,
              st.booleans(), st.sampled_from([None, "r1", "r2"])),
    st.tuples(st.just("set"), st.integers(-200, 200), _BOUND, _BOUND),
    # Raw EVALSHA, hostile arguments.
    st.tuples(st.just("raw_add"), _DELTAS.map(str) | st.text(max_size=6), _HOSTILE_CONFIG,
              _HOSTILE_OPTIONS, st.booleans()),
    st.tuples(st.just("raw_set"), st.integers(-1000, 1000).map(str), _HOSTILE_CONFIG,
              st.sampled_from(["0", "60000", "-1", "x"])),
    st.tuples(st.just("reset")),
)


def _caller(client: redis.Redis, name: str, lo: int | None, hi: int | None) -> BoundedCounter:
    """A Python caller with its own bounds (and an initial value that fits them)."""
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    initial = lo if lo is not None and lo > 0 else hi if hi is not None and hi < 0 else 0
    return BoundedCounter(client, name, min=lo, max=hi, initial=initial)


def _in_bounds(client: redis.Redis, key: str) -> None:
    raw = client.get(key)
    stored = CounterConfig.parse(client.get(key + ":config"))
    assert stored is not None
    assert (stored.min, stored.max) == (LOW, HIGH)
    if raw is not None:
        assert LOW <= int(raw) <= HIGH, raw


@given(ops=st.lists(OPS, max_size=30))
def test_mixed_callers_never_leave_the_stored_bounds(ops: list[tuple[Any, ...]],
                                                     redis_client: redis.Redis) -> None:
    name = uuid.uuid4().hex
    owner = BoundedCounter(redis_client, name, min=LOW, max=HIGH)
    owner.incr(0)  # the first writer stores the configuration
    keys = _keys(owner)
    for op in ops:
        try:
            if op[0] == "python":
                _, n, clamp, lo, hi, own, rid = op
                counter = owner if own else _caller(redis_client, name, lo, hi)
                counter.incr(n, clamp=clamp, request_id=rid)
            elif op[0] == "set":
                _, value, lo, hi = op
                _caller(redis_client, name, lo, hi).set(value)
            elif op[0] == "raw_add":
                _, delta, config, options, with_request = op
                k = [keys[0], keys[1], keys[0] + ":request:x" if with_request else keys[0]]
                _raw(redis_client, "counter_add", k, [delta, config, options])
            elif op[0] == "raw_set":
                _, value, config, ttl = op
                _raw(redis_client, "counter_set", keys[:2], [value, config, ttl])
            else:
                owner.reset()
        except (ValueError, TypeError, ScriptError, redis.ResponseError):
            pass  # refused: what matters is the state below
        _in_bounds(redis_client, owner.key)
