"""RateLimiter's and Semaphore's stored configuration (issue 16): the first writer stores
(interval, burst) / limit next to the state; every later call, from Python or raw EVALSHA
with any arguments, is checked against it inside the script; reconfigure() changes it.
(BoundedCounter's: tests/test_counter_config.py.)"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from pyredis_atomic import (
    ConfigMismatchError,
    RateLimitConfig,
    RateLimiter,
    ScriptError,
    Semaphore,
    SemaphoreConfig,
    WrongTypeError,
)
from pyredis_atomic import asyncio as aio
from pyredis_atomic.registry import default_registry

REGISTRY = default_registry()


def _raw(client: redis.Redis, script: str, keys: list[str], args: list[Any]) -> Any:
    """The script called by SHA, as a caller in another language would."""
    REGISTRY.load(client, [script])
    return client.evalsha(REGISTRY.get(script).sha1, len(keys), *keys, *args)


# -- rate limiter ----------------------------------------------------------------------------

def test_the_first_hit_stores_the_limiters_configuration(redis_client: redis.Redis) -> None:
    r = RateLimiter(redis_client, "api", rate=10, burst=3)
    assert r.stored_config() is None
    assert r.peek()  # a peek stores nothing
    assert r.stored_config() is None
    assert r.hit()
    assert redis_client.get(r.key + ":config") == b"100000.0 3"
    assert r.stored_config() == RateLimitConfig(0.1, 3) == r.config
    assert r.stored_config().per_second == pytest.approx(10)  # type: ignore[union-attr]
    # The same ratio is the same configuration: 600 per minute is 10 per second.
    assert RateLimiter(redis_client, "api", rate=600, period=60, burst=3).hit()


def test_another_rate_or_burst_is_refused_naming_both(redis_client: redis.Redis) -> None:
    r = RateLimiter(redis_client, "api", rate=10, burst=3)
    assert r.hit(3)
    for other in (RateLimiter(redis_client, "api", rate=100, burst=3),
                  RateLimiter(redis_client, "api", rate=10, burst=300)):
        for call in (other.hit, other.peek):
            with pytest.raises(ConfigMismatchError) as info:
                call()
            err = info.value
            assert err.key == r.key + ":config"
            assert err.stored == "100000.0 3"
            assert "rate=10/s" in str(err)
            assert "burst=3" in str(err)
    assert not r.peek()  # nothing was spent by the refused calls, nor given
    # The state expires when the limiter is full again; the configuration stays.
    r.reset()
    assert redis_client.exists(r.key) == 0
    with pytest.raises(ConfigMismatchError):
        RateLimiter(redis_client, "api", rate=100, burst=3).hit()


def test_reconfigure_keeps_the_units_spent(redis_client: redis.Redis) -> None:
    r = RateLimiter(redis_client, "slow", rate=1, period=3600, burst=3)
    assert r.hit(3)
    old = RateLimiter(redis_client, "slow", rate=1, period=3600, burst=3)
    assert r.reconfigure(1, 3600, burst=5) == RateLimitConfig(3600.0, 3)
    assert r.burst == 5
    assert r.stored_config() == RateLimitConfig(3600.0, 5)
    assert r.hit(2)  # 3 spent of the new 5
    assert not r.hit()
    with pytest.raises(ConfigMismatchError):
        old.hit()
    # A smaller burst than what was spent: refused until it drained below it.
    assert r.reconfigure(1, 3600, burst=2) == RateLimitConfig(3600.0, 5)
    result = r.peek()
    assert not result
    assert result.retry_after > 3600
    # The state's expiry follows the new interval (a slower rate keeps it longer).
    r.reconfigure(1, 7200, burst=5)
    assert redis_client.pttl(r.key) > 5 * 3600 * 1000


def test_limiter_state_without_configuration(redis_client: redis.Redis) -> None:
    # Written before configurations were stored: a state, no config key.
    r = RateLimiter(redis_client, "legacy", rate=1, period=3600, burst=2)
    now_us = int(redis_client.time()[0]) * 1_000_000
    redis_client.set(r.key, f"{now_us} 2", px=3_600_000)
    assert not r.hit()  # the old backlog counts under the stored configuration
    assert r.stored_config() == RateLimitConfig(3600.0, 2)


def test_hostile_raw_hits_cannot_exceed_the_stored_rate(redis_client: redis.Redis) -> None:
    r = RateLimiter(redis_client, "h", rate=1, period=3600, burst=2)
    assert r.hit(2)
    keys = [r.key, r.key + ":config"]
    for interval, burst in (("1", "2"), ("3600000000", "1000"), ("0.001", "1000000")):
        with pytest.raises(redis.ResponseError, match="CONFIGMISMATCH"):
            _raw(redis_client, "ratelimit_hit", keys, [interval, burst, "1"])
    for bad in ("nan", "-1", "inf", "x"):
        with pytest.raises(redis.ResponseError, match="ARGV\\[1\\] interval_us must be"):
            _raw(redis_client, "ratelimit_hit", keys, [bad, "2", "1"])
    # Spelled otherwise, the stored configuration is the same one: and it is spent.
    assert _raw(redis_client, "ratelimit_hit", keys, ["3600000000", "2", "1"]).startswith(b"0 ")
    assert _raw(redis_client, "ratelimit_hit", keys, ["3.6e9", "2", "1"]).startswith(b"0 ")
    assert r.stored_config() == RateLimitConfig(3600.0, 2)


def test_a_wrong_type_config_key_is_named(redis_client: redis.Redis) -> None:
    r = RateLimiter(redis_client, "w", rate=1)
    redis_client.rpush(r.key + ":config", "x")
    for call in (r.hit, r.peek, lambda: r.reconfigure(2), r.stored_config):
        with pytest.raises(WrongTypeError) as info:
            call()
        assert info.value.key == r.key + ":config"
    assert redis_client.exists(r.key) == 0


async def test_asyncio_limiter_mismatch_and_reconfigure(aclient: Any) -> None:
    a = aio.RateLimiter(aclient, "a", rate=1, period=3600, burst=1)
    assert await a.hit()
    b = aio.RateLimiter(aclient, "a", rate=1, period=3600, burst=2)
    with pytest.raises(ConfigMismatchError, match="burst=1"):
        await b.hit()
    assert await b.reconfigure(1, 3600, 2) == RateLimitConfig(3600.0, 1)
    assert await b.hit()
    assert await b.stored_config() == RateLimitConfig(3600.0, 2)
    with pytest.raises(ConfigMismatchError):
        await a.peek()


# -- semaphore -------------------------------------------------------------------------------

def test_the_first_acquire_stores_the_limit(redis_client: redis.Redis) -> None:
    s = Semaphore(redis_client, "pool", 2, ttl=60)
    assert s.stored_config() is None
    assert s.acquire(blocking=False) is not None
    assert redis_client.get(s.key[:-len("holders")] + "config") == b"2"
    assert s.stored_config() == SemaphoreConfig(2) == s.config


def test_another_limit_is_refused(redis_client: redis.Redis) -> None:
    s = Semaphore(redis_client, "pool", 2, ttl=60)
    p1 = s.acquire(blocking=False)
    assert p1 is not None
    wide = Semaphore(redis_client, "pool", 100, ttl=60)
    with pytest.raises(ConfigMismatchError) as info:
        wide.acquire(blocking=False)
    assert (info.value.stored, info.value.given) == ("2", "100")
    assert "limit=2" in str(info.value)
    assert "limit=100" in str(info.value)
    assert s.count() == 1
    # Release and extend take no slot: not checked.
    assert wide.extend(p1)
    assert wide.release(p1)
    assert s.count() == 0


def test_reconfigure_refuses_below_the_live_permits(redis_client: redis.Redis) -> None:
    s = Semaphore(redis_client, "pool", 3, ttl=60)
    permits = [s.acquire(blocking=False) for _ in range(3)]
    with pytest.raises(ScriptError, match="OUTOFBOUNDS") as info:
        s.reconfigure(2)
    assert "holds 3 live permits" in str(info.value)
    assert s.limit == 3
    assert s.stored_config() == SemaphoreConfig(3)
    assert s.release(permits[0])  # type: ignore[arg-type]
    assert s.reconfigure(2) == SemaphoreConfig(3)
    assert s.limit == 2
    assert s.acquire(blocking=False) is None


def test_a_raised_limit_wakes_a_waiter(redis_client: redis.Redis) -> None:
    s = Semaphore(redis_client, "pool", 1, ttl=120)
    assert s.acquire(blocking=False) is not None
    got: list[object] = []

    def wait() -> None:
        # Built with the stored limit 1: woken by the reconfigure, its next attempt
        # mismatches (the new limit is 2). Without the wake-up it would sleep until its
        # timeout (the holder's lease ends only in 120 s) and return None.
        try:
            got.append(Semaphore(redis_client, "pool", 1, ttl=120).acquire(timeout=30))
        except ConfigMismatchError as exc:
            got.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    deadline = time.monotonic() + 30
    while not any(c.get("cmd") == "blpop" for c in redis_client.client_list()):
        assert time.monotonic() < deadline, "the waiter never blocked"
        time.sleep(0.01)
    assert s.reconfigure(2) == SemaphoreConfig(1)
    waiter.join(60)
    assert not waiter.is_alive()
    assert len(got) == 1
    assert isinstance(got[0], ConfigMismatchError), got


def test_semaphore_without_configuration(redis_client: redis.Redis) -> None:
    s = Semaphore(redis_client, "legacy", 2, ttl=60)
    deadline = int(redis_client.time()[0]) * 1000 + 60_000
    redis_client.zadd(s.key, {"a": deadline, "b": deadline})
    assert s.acquire(blocking=False) is None  # the old holders count
    assert s.stored_config() == SemaphoreConfig(2)


def test_hostile_raw_acquires_cannot_exceed_the_stored_limit(redis_client: redis.Redis) -> None:
    s = Semaphore(redis_client, "h", 2, ttl=60)
    assert s.acquire(blocking=False) is not None
    keys = [s.key, s.key[:-len("holders")] + "config"]
    for limit in ("3", "1000000", "20"):
        with pytest.raises(redis.ResponseError, match="CONFIGMISMATCH"):
            _raw(redis_client, "semaphore_acquire", keys, ["x" + limit, limit, "60000"])
    for bad in ("02", "0", "-1", "1e3", ""):
        with pytest.raises(redis.ResponseError, match="ARGV\\[2\\] limit must be"):
            _raw(redis_client, "semaphore_acquire", keys, ["y", bad, "60000"])
    assert _raw(redis_client, "semaphore_acquire", keys, ["z", "2", "60000"])[0] == 1
    assert _raw(redis_client, "semaphore_acquire", keys, ["w", "2", "60000"])[0] == 0
    assert s.count() == 2


async def test_asyncio_semaphore_mismatch_and_reconfigure(aclient: Any) -> None:
    a = aio.Semaphore(aclient, "a", 1, ttl=60)
    assert await a.acquire(blocking=False) is not None
    b = aio.Semaphore(aclient, "a", 2, ttl=60)
    with pytest.raises(ConfigMismatchError, match="limit=1"):
        await b.acquire(blocking=False)
    assert await b.reconfigure(2) == SemaphoreConfig(1)
    assert await b.acquire(blocking=False) is not None
    assert await b.stored_config() == SemaphoreConfig(2)
    with pytest.raises(ConfigMismatchError):
        await a.acquire(blocking=False)


# -- the "done when": mixed callers never exceed the stored configuration ----------

_TEXT = st.text(max_size=8)
LIMITER_OPS = st.one_of(
    # A Python caller: the stored configuration, or its own.
    st.tuples(st.just("python"), st.sampled_from([1, 3600, 360, 0.001]),
              st.sampled_from([3600.0, 1.0, 60.0]), st.sampled_from([None, 1, 3, 1000]),
              st.integers(1, 3), st.booleans()),
    # Raw EVALSHA, hostile arguments.
    st.tuples(st.just("raw"),
              st.sampled_from(["3600000000", "3600000000.0", "3.6e9", "3600000000.0001",
                               "1", "0.001", "1e300", "nan", "-1", "0"]) | _TEXT,
              st.sampled_from(["3", "1", "1000000", "0", "-3", "3.0"]) | _TEXT,
              st.sampled_from(["1", "2", "3", "4", "0", "-1", "1000"]) | _TEXT,
              st.booleans()),
)
RATE_BURST = 3  # one unit per hour: nothing refills during the test


@given(ops=st.lists(LIMITER_OPS, max_size=25))
def test_mixed_callers_never_exceed_the_stored_rate(ops: list[tuple[Any, ...]],
                                                    redis_client: redis.Redis) -> None:
    name = uuid.uuid4().hex
    owner = RateLimiter(redis_client, name, rate=1, period=3600, burst=RATE_BURST)
    assert owner.reconfigure(1, 3600, RATE_BURST) is None  # stores it, spends nothing
    keys = [owner.key, owner.key + ":config"]
    started = time.monotonic()
    spent = 0
    for op in ops:
        try:
            if op[0] == "python":
                _, rate, period, burst, n, peek = op
                limiter = RateLimiter(redis_client, name, rate=rate, period=period,
                                      burst=burst)
                result = limiter.peek(n) if peek else limiter.hit(n)
                if result and not peek:
                    spent += n
            else:
                _, interval, burst, cost, peek = op
                script = "ratelimit_peek" if peek else "ratelimit_hit"
                reply = _raw(redis_client, script, keys, [interval, burst, cost])
                if reply.startswith(b"1 ") and not peek:
                    spent += int(cost)
        except (ValueError, TypeError, ScriptError, redis.ResponseError):
            pass  # refused: what matters is what was allowed
        # GCRA: at most burst + elapsed / interval units in any span.
        elapsed = time.monotonic() - started + 1
        assert spent <= RATE_BURST + elapsed / 3600, (spent, op)
    stored = owner.stored_config()
    assert stored == RateLimitConfig(3600.0, RATE_BURST)


SEM_LIMIT = 3
_PERMITS = st.sampled_from([f"p{i}" for i in range(8)])
SEMAPHORE_OPS = st.one_of(
    # Acquires come most often: the limit is what is at stake.
    st.tuples(st.just("python"), st.sampled_from([3, 4, 6, 1000]), _PERMITS | st.none()),
    st.tuples(st.just("raw"), _PERMITS,
              st.sampled_from(["3", "4", "1000000", "1", "0", "03", "-1"]) | _TEXT,
              st.sampled_from(["60000", "1", "0", "x"])),
    st.tuples(st.just("python"), st.sampled_from([3, 5]), _PERMITS),
    st.tuples(st.just("raw"), _PERMITS, st.sampled_from(["5", "1000000"]), st.just("60000")),
    st.tuples(st.just("release"), _PERMITS),
    st.tuples(st.just("extend"), _PERMITS, st.sampled_from(["60000", "1000000000", "x"])),
)


@given(ops=st.lists(SEMAPHORE_OPS, min_size=4, max_size=30))
def test_mixed_callers_never_exceed_the_stored_limit(ops: list[tuple[Any, ...]],
                                                     redis_client: redis.Redis) -> None:
    name = uuid.uuid4().hex
    owner = Semaphore(redis_client, name, SEM_LIMIT, ttl=60)
    owner.release(owner.acquire(blocking=False) or "none")  # the first writer stores it
    holders = owner.key
    keys = [holders, holders[:-len("holders")] + "config"]
    for op in ops:
        try:
            if op[0] == "python":
                _, limit, permit = op
                Semaphore(redis_client, name, limit, ttl=60).acquire(blocking=False,
                                                                     permit=permit)
            elif op[0] == "raw":
                _, permit, limit, ttl = op
                _raw(redis_client, "semaphore_acquire", keys, [permit, limit, ttl])
            elif op[0] == "release":
                owner.release(op[1])
            else:
                _raw(redis_client, "semaphore_extend", [holders], [op[1], op[2]])
        except (ValueError, TypeError, ScriptError, redis.ResponseError):
            pass
        assert owner.count() <= SEM_LIMIT, op
    assert owner.stored_config() == SemaphoreConfig(SEM_LIMIT)


# -- the CLI ---------------------------------------------------------------------------------

def test_the_cli_shows_and_changes_stored_configurations(redis_client: redis.Redis,
                                                         redis_url: str) -> None:
    import json

    from click.testing import CliRunner

    from pyredis_atomic import BoundedCounter, CounterConfig
    from pyredis_atomic.cli.main import cli

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, [*args, "--url", redis_url])

    stock = BoundedCounter(redis_client, "stock", min=0, max=100)
    stock.incr(80)
    shown = run("counter", "get", "stock", "--json")
    assert json.loads(shown.output)["config"] == {"min": 0, "max": 100, "clamp": False}
    assert "[min=0 max=100 reject]" in run("counter", "get", "stock").output
    refused = run("counter", "reconfigure", "stock", "--min", "0", "--max", "50")
    assert refused.exit_code == 2
    assert "OUTOFBOUNDS" in refused.output
    done = run("counter", "reconfigure", "stock", "--min", "0", "--max", "50",
               "--clamp-value", "--json")
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)
    assert doc["previous"] == {"min": 0, "max": 100, "clamp": False}
    assert (doc["config"], doc["value"]) == ({"min": 0, "max": 50, "clamp": False}, 50)
    assert stock.stored_config() == CounterConfig(0, 50, False)
    with pytest.raises(ConfigMismatchError):
        stock.incr()  # built with the old bounds
    # The mode is kept unless given; 'none' is unbounded.
    run("counter", "reconfigure", "stock", "--min", "none", "--max", "50", "--clamp")
    run("counter", "reconfigure", "stock", "--min", "none", "--max", "60")
    assert stock.stored_config() == CounterConfig(None, 60, True)

    assert RateLimiter(redis_client, "api", rate=10, burst=3).hit()
    shown = json.loads(run("ratelimit", "show", "api", "--json").output)
    assert shown["config"] == {"interval": 0.1, "burst": 3, "per_second": 10.0}
    assert shown["now"]["remaining"] == 1
    assert run("ratelimit", "reconfigure", "api", "--rate", "20", "--burst", "5").exit_code == 0
    assert RateLimiter(redis_client, "api", rate=20, burst=5).stored_config() == (
        RateLimitConfig(0.05, 5))
    assert run("ratelimit", "show", "nothing").exit_code == 1

    sem = Semaphore(redis_client, "pool", 2, ttl=60)
    assert sem.acquire(blocking=False)
    assert sem.acquire(blocking=False)
    assert json.loads(run("semaphore", "show", "pool", "--json").output)["limit"] == 2
    assert run("semaphore", "reconfigure", "pool", "1").exit_code == 2
    done = run("semaphore", "reconfigure", "pool", "4", "--json")
    assert json.loads(done.output) == {"name": "pool", "limit": 4, "previous": 2, "count": 2}
    assert "(limit 4)" in run("semaphore", "show", "pool").output
