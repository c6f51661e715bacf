"""BoundedCounter against a real redis-server: semantics, exact range, ttl, request ids,
bad input, wrong types, prefixes and brace names, a hypothesis model, the CLI."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from pyredis_atomic import (
    MAX_VALUE,
    MIN_VALUE,
    BoundedCounter,
    CounterResult,
    ScriptError,
    WrongTypeError,
)
from pyredis_atomic._core.replies import as_str
from pyredis_atomic.cli.main import cli


def model_add(cur: int, n: int, lo: int | None, hi: int | None,
              clamp: bool) -> tuple[bool, int, int]:
    """The documented semantics, in plain Python: (applied, value after, delta made)."""
    low = MIN_VALUE if lo is None else lo
    high = MAX_VALUE if hi is None else hi
    new = cur + n
    if n > 0 and new > high:
        new = max(cur, high) if clamp else cur
    elif n < 0 and new < low:
        new = min(cur, low) if clamp else cur
    return new - cur == n, new, new - cur


def test_incr_decr_reject_at_the_bounds(client: redis.Redis) -> None:
    stock = BoundedCounter(client, "stock:sku-1", min=0, max=3, initial=2)
    assert stock.get() == 2
    assert stock.incr() == CounterResult(True, 3, 1)
    refused = stock.incr()
    assert (refused.applied, refused.value, refused.delta) == (False, 3, 0)
    assert not refused
    assert stock.decr(3) == CounterResult(True, 0, -3)
    assert stock.decr() == CounterResult(False, 0, 0)
    assert stock.get() == 0


def test_clamp_saturates_and_reports_the_delta_made(client: redis.Redis) -> None:
    quota = BoundedCounter(client, "quota", min=-5, max=10)
    assert quota.incr(7, clamp=True) == CounterResult(True, 7, 7)
    assert quota.incr(7, clamp=True) == CounterResult(False, 10, 3)
    assert quota.incr(1, clamp=True) == CounterResult(False, 10, 0)
    assert quota.decr(100, clamp=True) == CounterResult(False, -5, -15)
    assert quota.get() == -5


def test_zero_and_negative_deltas(client: redis.Redis) -> None:
    c = BoundedCounter(client, "z", min=0, max=5)
    assert c.incr(0) == CounterResult(True, 0, 0)
    assert client.exists(c.key) == 0  # a no-op creates nothing
    assert c.incr(-1) == CounterResult(False, 0, 0)
    assert c.incr(4) == CounterResult(True, 4, 4)
    assert c.incr(-2) == CounterResult(True, 2, -2)
    assert c.decr(-3) == CounterResult(True, 5, 3)


def test_unbounded_sides_stop_at_the_exact_range(client: redis.Redis) -> None:
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


def test_values_stored_by_others_beyond_the_range_are_refused(redis_client: redis.Redis) -> None:
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


def test_ttl_is_a_fixed_window_from_creation(redis_client: redis.Redis) -> None:
    c = BoundedCounter(redis_client, "window", min=0, max=100, ttl=0.6)
    c.incr()
    first = redis_client.pttl(c.key)
    assert 0 < first <= 600
    time.sleep(0.25)
    c.incr()
    c.set(50)
    assert redis_client.pttl(c.key) <= first - 200  # not extended by later changes
    time.sleep(0.5)
    assert redis_client.exists(c.key) == 0
    assert c.get() == 0
    c.incr(5)  # a new window starts
    assert 400 < redis_client.pttl(c.key) <= 600


def test_rejected_change_does_not_create_the_key(redis_client: redis.Redis) -> None:
    c = BoundedCounter(redis_client, "nothing", min=0, max=5, ttl=10)
    assert not c.decr()
    assert redis_client.exists(c.key) == 0


def test_set_and_reset(client: redis.Redis) -> None:
    c = BoundedCounter(client, "s", min=0, max=10, initial=3)
    c.set(9)
    assert c.get() == 9
    with pytest.raises(ValueError, match=r"value \(11\) is outside"):
        c.set(11)
    c.reset()
    assert c.get() == 3
    assert client.exists(c.key) == 0
    c.reset()  # twice is harmless


def test_request_id_applies_a_retried_increment_once(client: redis.Redis) -> None:
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


def test_request_ids_are_forgotten_after_request_ttl(redis_client: redis.Redis) -> None:
    c = BoundedCounter(redis_client, "short-memory", request_ttl=0.2)
    assert c.incr(1, request_id="r").value == 1
    pttl = redis_client.pttl(c._spec.request_base + "r")
    assert 0 < pttl <= 200
    time.sleep(0.3)
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
def test_bad_settings_are_refused(redis_client: redis.Redis, kwargs: dict[str, Any],
                                  error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        BoundedCounter(redis_client, "bad", **kwargs)


def test_bad_names(redis_client: redis.Redis) -> None:
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
        redis_client: redis.Redis, n: Any, error: type[Exception], match: str) -> None:
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


def test_wrong_type_names_the_key(redis_client: redis.Redis) -> None:
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


def test_fast_path_survives_a_script_cache_flush(client: redis.Redis) -> None:
    c = BoundedCounter(client, "flushed", max=100)
    assert c.incr().value == 1
    client.script_flush()
    assert c.incr().value == 2
    assert client.script_exists(c._fast.sha) == [True]
    assert c.incr().value == 3


def test_keys_use_prefix_and_a_hash_tag(redis_client: redis.Redis) -> None:
    a = BoundedCounter(redis_client, "n", prefix="app:")
    b = BoundedCounter(redis_client, "n")
    a.incr(5)
    b.incr(7)
    assert a.key == "app:counter:{n}"
    assert redis_client.get("app:counter:{n}") == b"5"
    assert redis_client.get("atomic:counter:{n}") == b"7"


def test_brace_names_cannot_collide(redis_client: redis.Redis) -> None:
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


def test_cli_counter_get(redis_url: str, redis_client: redis.Redis) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["counter", "get", "hits", "--url", redis_url])
    assert result.exit_code == 1
    assert "absent" in result.output
    BoundedCounter(redis_client, "hits", ttl=60).incr(42)
    result = runner.invoke(cli, ["counter", "get", "hits", "--url", redis_url])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("hits: 42 (expires in ")
    BoundedCounter(redis_client, "x", prefix="app:").incr(3)
    result = runner.invoke(cli, ["counter", "get", "x", "--prefix", "app:", "--url", redis_url])
    assert "x: 3 (no expiry)" in result.output
    redis_client.set("atomic:counter:{bad}", "zzz")
    result = runner.invoke(cli, ["counter", "get", "bad", "--url", redis_url])
    assert result.exit_code == 2  # every AtomicError: one line, exit 2
    assert "NOTINT" in result.output


# -- the stateful model ------------------------------------------------------------------

BOUND = st.one_of(st.none(), st.integers(-1000, 1000), st.integers(MIN_VALUE, MAX_VALUE))
DELTA = st.one_of(st.integers(-50, 50), st.sampled_from([0, 1, -1, MAX_VALUE, MIN_VALUE]),
                  st.integers(MIN_VALUE, MAX_VALUE))


def test_counter_matches_a_python_model(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)

    class CounterModel(RuleBasedStateMachine):
        counter: BoundedCounter
        lo: int | None
        hi: int | None
        initial: int
        value: int | None  # None: the key does not exist

        @initialize(a=BOUND, b=BOUND, data=st.data(), ttl=st.sampled_from([None, 60.0]))
        def create(self, a: int | None, b: int | None, data: st.DataObject,
                   ttl: float | None) -> None:
            if a is not None and b is not None and a > b:
                a, b = b, a
            self.lo, self.hi = a, b
            low = MIN_VALUE if a is None else a
            high = MAX_VALUE if b is None else b
            self.initial = data.draw(st.integers(low, high), label="initial")
            self.counter = BoundedCounter(client, f"m-{uuid.uuid4().hex}", min=a, max=b,
                                          initial=self.initial, ttl=ttl)
            self.value = None
            self.requests: dict[str, tuple[int, bool, CounterResult]] = {}

        def current(self) -> int:
            return self.initial if self.value is None else self.value

        def apply(self, n: int, clamp: bool) -> CounterResult:
            applied, new, made = model_add(self.current(), n, self.lo, self.hi, clamp)
            if made != 0:
                self.value = new
            return CounterResult(applied, new, made)

        @rule(n=DELTA, clamp=st.booleans())
        def incr(self, n: int, clamp: bool) -> None:
            expected = self.apply(n, clamp)
            assert self.counter.incr(n, clamp=clamp) == expected

        @rule(n=DELTA, clamp=st.booleans())
        def decr(self, n: int, clamp: bool) -> None:
            expected = self.apply(-n, clamp)
            assert self.counter.decr(n, clamp=clamp) == expected

        @rule(n=DELTA, clamp=st.booleans(), rid=st.sampled_from(["a", "b", "c", "d"]))
        def incr_once(self, n: int, clamp: bool, rid: str) -> None:
            if rid in self.requests:
                first_n, first_clamp, reply = self.requests[rid]
                if (first_n, first_clamp) == (n, clamp):
                    assert self.counter.incr(n, clamp=clamp, request_id=rid) == reply
                else:
                    with pytest.raises(ScriptError, match="REQUESTREUSED"):
                        self.counter.incr(n, clamp=clamp, request_id=rid)
                return
            expected = self.apply(n, clamp)
            self.requests[rid] = (n, clamp, expected)
            assert self.counter.incr(n, clamp=clamp, request_id=rid) == expected

        @rule(data=st.data())
        def set(self, data: st.DataObject) -> None:
            low = MIN_VALUE if self.lo is None else self.lo
            high = MAX_VALUE if self.hi is None else self.hi
            value = data.draw(st.integers(low, high), label="value")
            self.counter.set(value)
            self.value = value

        @rule(value=st.integers(MIN_VALUE, MAX_VALUE))
        def set_outside(self, value: int) -> None:
            inside = (self.lo is None or value >= self.lo) and (
                self.hi is None or value <= self.hi)
            if inside:
                self.counter.set(value)
                self.value = value
            else:
                with pytest.raises(ValueError, match="outside the counter's bounds"):
                    self.counter.set(value)

        @rule(value=st.one_of(st.integers(-1100, 1100), st.integers(MIN_VALUE, MAX_VALUE)))
        def foreign_write(self, value: int) -> None:
            # Another instance with other bounds (or a plain SET) may leave the value
            # outside this instance's bounds: changes must still follow the model.
            client.set(self.counter.key, value)
            self.value = value

        @precondition(lambda self: self.value is not None)
        @rule()
        def reset(self) -> None:
            self.counter.reset()
            self.value = None

        @invariant()
        def reads_agree(self) -> None:
            assert self.counter.get() == self.current()

    try:
        run_state_machine_as_test(
            CounterModel, settings=settings(max_examples=40, stateful_step_count=30))
    finally:
        client.close()


def test_results_are_plain_values() -> None:
    r = CounterResult(True, 5, 2)
    assert r == CounterResult(True, 5, 2)
    assert r != CounterResult(False, 5, 2)
    assert hash(r) == hash(CounterResult(True, 5, 2))
    assert repr(r) == "CounterResult(applied=True, value=5, delta=2)"
    assert bool(r)
    assert not CounterResult(False, 5, 0)
