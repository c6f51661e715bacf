"""BoundedCounter (sync API only) against a real redis-server: a hypothesis model of its
semantics, the CLI.

The behaviour both APIs share (semantics, exact range, ttl, request ids, bad input, wrong
types, prefixes and brace names) is in ``test_counter_shared_async.py`` (and its generated
sync twin, ``test_counter_shared_sync.py``)."""

from __future__ import annotations

import uuid

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
)
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
