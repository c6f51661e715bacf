# GENERATED from tests/test_lock_shared_async.py by scripts/unasync.py: do not edit.
"""Lock against a real redis-server, on RESP2/RESP3, decoded or not: the contract, fencing,
retry safety, bad input, wrong types, key layout, waiting and timeouts.

Shared by the two APIs: ``scripts/unasync.py`` writes ``test_lock_shared_sync.py`` from
``test_lock_shared_async.py`` (background waiters: tasks here, threads there, through
``twin_async``/``twin_sync``). Every test of the sync Lock is here: what only asyncio has
(cancellation, the per-loop renewer task) is in ``test_lock_async.py``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from faults.fault_proxy import FaultProxy
from twin_sync import sleep, spawn

from pyredis_atomic import (
    Lock,
    LockInfo,
    LockLostError,
    LockNotOwnedError,
    LockTimeoutError,
    WrongTypeError,
)
from pyredis_atomic._core.lock import acquire_call, extend_call, lock_keys, release_call
from pyredis_atomic.registry import default_registry
from pyredis_atomic.testing import RedisServer

KEY = "atomic:lock:{orders:42}"
FENCES = "atomic:lock:{orders:42}:fences"
SIGNAL = "atomic:lock:{orders:42}:signal"


def _calls(client: Any, command: str) -> int:
    entry = client.info("commandstats").get(f"cmdstat_{command}")
    return int(entry["calls"]) if entry else 0


# -- the contract ---------------------------------------------------------------------------
def test_acquire_release_fence_owned_locked(client: Any) -> None:
    a = Lock(client, "orders:42", ttl=10.0)
    b = Lock(client, "orders:42", ttl=10.0)
    assert not a.locked()
    assert not a.owned()
    assert a.acquire()
    assert a.fence == 1
    assert a.held
    assert a.owned()
    assert a.locked()
    assert b.locked()
    assert not b.owned()
    assert not b.acquire(blocking=False)
    assert 9.0 < client.pttl(KEY) / 1000 <= 10.0
    a.release()
    assert not a.held
    assert not a.owned()
    assert not a.locked()
    assert not client.exists(KEY)
    assert b.acquire(blocking=False)
    assert b.fence == 2
    info = Lock.inspect(client, "orders:42")
    assert info is not None
    assert info.held
    assert info.fence == 2
    assert info.released_fence == 1
    b.release()
    assert a.acquire(blocking=False)
    assert a.fence == 3  # strictly increasing across objects and acquisitions
    a.release()


def test_context_manager_acquires_releases_and_times_out(client: Any) -> None:
    with Lock(client, "orders:42", ttl=5.0) as lock:
        assert lock.owned()
        fence = lock.fence
        blocker = Lock(client, "orders:42", ttl=5.0, timeout=0.2)
        started = time.monotonic()
        with pytest.raises(LockTimeoutError, match="orders:42") as info:
            with blocker:
                pass
        assert info.value.key == KEY
        assert 0.2 <= time.monotonic() - started < 0.6
    assert not client.exists(KEY)
    assert Lock.inspect(client, "orders:42") == LockInfo(
        name="orders:42", held=False, ttl=None, fence=None, last_fence=fence,
        released_fence=fence, lost_fence=0)


def test_with_block_raises_lock_lost_when_the_lease_ran_out(client: Any) -> None:
    with pytest.raises(LockLostError, match="may have overlapped") as info:
        with Lock(client, "orders:42", ttl=0.05):
            sleep(0.15)
    assert info.value.key == KEY
    assert isinstance(info.value.__cause__, LockNotOwnedError)


def test_with_block_keeps_the_bodys_own_exception(client: Any) -> None:
    def body() -> None:
        with Lock(client, "orders:42", ttl=0.05):
            sleep(0.15)
            raise KeyError("body")

    with pytest.raises(KeyError) as info:
        body()
    notes = getattr(info.value, "__notes__", None)
    if notes is not None:  # Python 3.11+
        assert any("was lost while held" in n for n in notes)


def test_stale_release_and_extend_raise_and_leave_the_new_holder_alone(
    client: Any,
) -> None:
    old = Lock(client, "orders:42", ttl=0.05)
    new = Lock(client, "orders:42", ttl=10.0)
    assert old.acquire()
    sleep(0.1)  # old's lease runs out
    assert new.acquire(blocking=False)
    with pytest.raises(LockNotOwnedError, match="no longer held") as info:
        old.extend()
    assert info.value.key == KEY
    assert old.lost
    with pytest.raises(LockNotOwnedError):
        old.release()
    assert new.owned()
    assert client.pttl(KEY) > 9000  # not shortened, not deleted
    info_now = Lock.inspect(client, "orders:42")
    assert info_now is not None
    assert info_now.fence == new.fence == 2
    assert info_now.lost_fence == 1  # old's acquisition ended without a release
    new.extend(5.0)
    assert new.owned()
    new.release()


def test_extend_resets_the_lease_and_never_revives_an_expired_lock(client: Any) -> None:
    lock = Lock(client, "orders:42", ttl=1.0)
    lock.acquire()
    lock.extend(30.0)
    assert 29_000 < client.pttl(KEY) <= 30_000
    lock.extend()
    assert 0 < client.pttl(KEY) <= 1000
    lock.extend(0.05)
    sleep(0.1)
    with pytest.raises(LockNotOwnedError):
        lock.extend()
    assert not client.exists(KEY)


def test_release_and_extend_without_acquire_raise(client: Any) -> None:
    lock = Lock(client, "orders:42")
    with pytest.raises(LockNotOwnedError, match="not held by this Lock object"):
        lock.release()
    with pytest.raises(LockNotOwnedError):
        lock.extend()
    with pytest.raises(LockNotOwnedError, match="never acquired"):
        _ = lock.fence


def test_a_lock_object_is_not_reentrant(client: Any) -> None:
    lock = Lock(client, "orders:42")
    lock.acquire()
    with pytest.raises(RuntimeError, match="not reentrant"):
        lock.acquire()
    lock.release()


def test_a_lost_lock_object_can_acquire_again(client: Any) -> None:
    # The lease is ended by deleting the key (what its running out does), not by a 50 ms
    # ttl: the second acquisition's lease must outlast its release under load.
    lock = Lock(client, "orders:42", ttl=30.0)
    lock.acquire()
    client.delete(KEY)
    with pytest.raises(LockNotOwnedError):
        lock.extend()
    assert lock.acquire(blocking=False)
    assert lock.fence == 2
    assert not lock.lost
    lock.release()


def test_release_from_another_thread_or_task(redis_client: Any) -> None:
    lock = Lock(redis_client, "orders:42")
    assert spawn(lock.acquire).result()
    spawn(lock.release).result()  # the token lives on the object
    assert not redis_client.exists(KEY)


def test_inspect_reports_holder_lease_and_fences(client: Any) -> None:
    assert Lock.inspect(client, "orders:42") is None
    lock = Lock(client, "orders:42", ttl=10.0)
    lock.acquire()
    info = Lock.inspect(client, "orders:42")
    assert info is not None
    assert info.held
    assert info.ttl is not None
    assert 9.0 < info.ttl <= 10.0
    assert (info.fence, info.last_fence, info.released_fence, info.lost_fence) == (1, 1, 0, 0)
    client.persist(KEY)
    info = Lock.inspect(client, "orders:42")
    assert info is not None
    assert info.held
    assert info.ttl is None
    lock.release()


def test_a_key_written_by_something_else_counts_as_held(client: Any) -> None:
    client.set(KEY, "someone")  # no expiry, not our format
    lock = Lock(client, "orders:42")
    assert not lock.acquire(blocking=False)
    assert not lock.acquire(timeout=0.05)
    info = Lock.inspect(client, "orders:42")
    assert info is not None
    assert info.held
    assert info.fence is None
    assert info.ttl is None


# -- retry safety ---------------------------------------------------------------------------
def test_acquire_script_sent_twice_with_one_token_acquires_once(client: Any) -> None:
    keys = lock_keys("orders:42")
    run = default_registry().run
    assert run(client, acquire_call(keys, "t1", 10_000)) == (1, 1)
    assert run(client, acquire_call(keys, "t1", 10_000)) == (1, 1)  # same fence
    assert int(client.hget(FENCES, "fence") or 0) == 1  # issued once
    ok, pttl = run(client, acquire_call(keys, "t2", 10_000))
    assert ok == 0
    assert 9000 < pttl <= 10_000


def test_release_script_sent_twice_reports_the_first_success(client: Any) -> None:
    keys = lock_keys("orders:42")
    run = default_registry().run
    run(client, acquire_call(keys, "t1", 10_000))
    assert run(client, release_call(keys, "t1", 1, 1000)) == 1
    assert run(client, release_call(keys, "t1", 1, 1000)) == 2
    # Still recognised after others acquired and released in between...
    run(client, acquire_call(keys, "t2", 10_000))
    assert run(client, release_call(keys, "t1", 1, 1000)) == 2
    assert client.exists(KEY)  # ...and the re-send never touches the new holder
    run(client, release_call(keys, "t2", 2, 1000))
    assert run(client, release_call(keys, "t1", 1, 1000)) == 2
    # An acquisition whose lease ran out is never reported as released.
    run(client, acquire_call(keys, "t3", 20))
    sleep(0.05)
    assert run(client, release_call(keys, "t3", 3, 1000)) == 0
    run(client, acquire_call(keys, "t4", 10_000))
    assert run(client, release_call(keys, "t3", 3, 1000)) == 0
    assert run(client, release_call(keys, "t4", 4, 1000)) == 1


def test_extend_script_sent_twice_extends(client: Any) -> None:
    keys = lock_keys("orders:42")
    run = default_registry().run
    run(client, acquire_call(keys, "t1", 1000))
    assert run(client, extend_call(keys, "t1", 50_000)) == 1
    assert run(client, extend_call(keys, "t1", 50_000)) == 1
    assert 49_000 < client.pttl(KEY) <= 50_000
    assert int(client.hget(FENCES, "fence") or 0) == 1


def test_release_after_its_first_send_went_through_succeeds(client: Any) -> None:
    lock = Lock(client, "orders:42")
    lock.acquire()
    # The first send was applied but its reply was lost: the front end re-sends.
    token = client.get(KEY)
    assert token is not None
    raw = token.decode() if isinstance(token, bytes) else token
    default_registry().run(client, release_call(lock_keys("orders:42"),
                                                raw.split(":")[0], lock.fence, 1000))
    lock.release()  # no LockNotOwnedError
    assert not lock.held


@pytest.fixture
def proxy(redis_server: RedisServer, redis_url: str) -> Iterator[FaultProxy]:
    p = FaultProxy(redis_server.host, redis_server.port)
    try:
        yield p
    finally:
        p.close()


def test_lost_replies_are_resent_by_redis_py_and_applied_once(
    proxy: FaultProxy, redis_client: Any
) -> None:
    # Redis(host, port) retries after a broken connection (from_url does not).
    client = redis.Redis(host="127.0.0.1", port=proxy.port)
    try:
        default_registry().load(client)
        lock = Lock(client, "orders:42", ttl=10.0)
        other = Lock(redis_client, "orders:42", ttl=10.0)
        redis_client.config_resetstat()
        proxy.drop_next_reply()
        assert lock.acquire()  # sent twice; the second finds our token: same fence
        assert proxy.dropped == 1
        assert lock.fence == 1
        assert int(redis_client.hget(FENCES, "fence") or 0) == 1
        proxy.drop_next_reply()
        lock.extend(20.0)
        assert proxy.dropped == 2
        proxy.drop_next_reply()
        lock.release()  # sent twice; the second reports "already released": no error
        assert proxy.dropped == 3
        assert _calls(redis_client, "evalsha") == 6
        assert other.acquire(blocking=False)
        assert other.fence == 2
        other.release()
    finally:
        client.close()


def test_an_acquire_that_failed_on_the_connection_is_recognised_by_the_next(
    proxy: FaultProxy, redis_client: Any
) -> None:
    client = redis.Redis.from_url(proxy.url)  # no automatic retries
    try:
        default_registry().load(client)
        lock = Lock(client, "orders:42", ttl=10.0)
        proxy.drop_next_reply()
        with pytest.raises(redis.ConnectionError):
            lock.acquire()
        assert redis_client.exists(KEY)  # it was applied; only the reply was lost
        started = time.monotonic()
        assert lock.acquire(timeout=5.0)  # not a wait on itself
        assert time.monotonic() - started < 1.0
        assert lock.fence == 1
        lock.release()
        assert not redis_client.exists(KEY)
    finally:
        client.close()


# -- bad input, wrong types, key layout -----------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ttl": 0}, ValueError, "ttl must be at least"),
        ({"ttl": -1.0}, ValueError, "ttl must be at least"),
        ({"ttl": 0.0005}, ValueError, "ttl must be at least"),
        ({"ttl": math.nan}, ValueError, "ttl must be finite"),
        ({"ttl": math.inf}, ValueError, "ttl must be finite"),
        ({"ttl": 1e12}, ValueError, "ttl must be at most"),
        ({"ttl": "10"}, TypeError, "ttl must be a number"),
        ({"ttl": True}, TypeError, "ttl must be a number"),
        ({"timeout": -1}, ValueError, "timeout must be at least"),
        ({"timeout": "5"}, TypeError, "timeout must be a number"),
        ({"name": ""}, ValueError, "name must not be empty"),
        ({"name": b"orders"}, TypeError, "name must be a str"),
        ({"name": None}, TypeError, "name must be a str"),
        ({"name": 7}, TypeError, "name must be a str"),
        ({"prefix": "a{b"}, ValueError, "prefix must not contain"),
        ({"prefix": 3}, TypeError, "prefix must be a str"),
        ({"auto_renew": 1}, TypeError, "auto_renew must be a bool"),
        ({"on_lost": "print"}, TypeError, "on_lost must be callable"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_sent(
    redis_client: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    args: dict[str, Any] = {"name": "orders:42", **kwargs}
    redis_client.config_resetstat()
    with pytest.raises(error, match=match):
        Lock(redis_client, **args)
    assert _calls(redis_client, "evalsha") == 0


def test_bad_call_arguments_are_refused(redis_client: Any) -> None:
    lock = Lock(redis_client, "orders:42")
    with pytest.raises(ValueError, match="timeout must be at least"):
        lock.acquire(timeout=-0.5)
    with pytest.raises(ValueError, match="timeout cannot be used with blocking=False"):
        lock.acquire(blocking=False, timeout=1.0)
    with pytest.raises(TypeError, match="blocking must be a bool"):
        lock.acquire(blocking=None)  # type: ignore[arg-type]
    lock.acquire()
    with pytest.raises(ValueError, match="ttl must be at least"):
        lock.extend(0)
    with pytest.raises(TypeError, match="must be a str"):
        Lock.inspect(redis_client, 42)  # type: ignore[arg-type]
    lock.release()
    assert not redis_client.exists(KEY)


@pytest.mark.parametrize(
    ("key", "holder"),
    [(KEY, "list"), (FENCES, "string"), (SIGNAL, "string")],
)
def test_a_key_of_the_wrong_type_is_named_and_left_unchanged(
    client: Any, key: str, holder: str
) -> None:
    if holder == "list":
        client.rpush(key, "x")
    else:
        client.set(key, "x")
    lock = Lock(client, "orders:42")
    with pytest.raises(WrongTypeError) as info:
        lock.acquire()
    assert info.value.key == key
    assert repr(key) in str(info.value)
    assert client.type(key) in (holder, holder.encode())
    assert not lock.held
    others = {KEY, FENCES, SIGNAL} - {key}
    assert client.exists(*others) == 0  # nothing was written


def test_prefix_and_brace_names_cannot_collide(client: Any) -> None:
    names = ["a", "a}", "{a}", "a}:fences", "a%7D", "x}:y{z"]
    locks = [Lock(client, n, ttl=10.0) for n in names]
    locks.append(Lock(client, "a", ttl=10.0, prefix="tenant1:"))
    for lock in locks:
        assert lock.acquire(blocking=False), lock.name  # all distinct locks
        assert lock.fence == 1
    assert client.exists("tenant1:lock:{a}")
    assert Lock.inspect(client, "a", prefix="other:") is None
    # every name keeps its own hash tag: its three keys share one slot
    for lock in locks:
        keys = lock_keys(lock.name, "tenant1:" if lock is locks[-1] else "atomic:")
        tags = {k[k.index("{"): k.index("}") + 1] for k in (keys.lock, keys.fences, keys.signal)}
        assert len(tags) == 1
    for lock in locks:
        lock.release()


# -- waiting --------------------------------------------------------------------------------
def test_a_blocked_waiter_wakes_within_milliseconds_of_release(
    make_client: Callable[..., Any],
) -> None:
    holder_client, waiter_client = make_client(), make_client()
    delays = []
    for _ in range(5):
        holder = Lock(holder_client, "orders:42", ttl=30.0)  # lease far beyond the test
        holder.acquire()
        waiter = Lock(waiter_client, "orders:42", ttl=30.0)
        woken: list[float] = []

        def wait(waiter: Lock = waiter, woken: list[float] = woken) -> bool:
            got = waiter.acquire()
            woken.append(time.monotonic())
            return got

        waiting = spawn(wait)
        sleep(0.15)  # the waiter is blocked in BLPOP by now
        released = time.monotonic()
        holder.release()
        assert waiting.result(5)
        delays.append(woken[0] - released)
        waiter.release()
    # A wake-up through Redis takes a round trip or two; without one the waiter would sit
    # in BLPOP for its whole 2 s slice.
    assert statistics.median(delays) < 0.1, delays
    assert max(delays) < 1.0, delays


def test_waiters_get_the_lock_in_turn_and_none_is_forgotten(
    make_client: Callable[..., Any],
) -> None:
    holder = Lock(make_client(), "orders:42", ttl=30.0)
    holder.acquire()
    waiters = [Lock(make_client(), "orders:42", 30.0) for _ in range(4)]
    waits = []
    for waiter in waiters:
        waits.append(spawn(waiter.acquire, True, 10))  # blocking, timeout=10
        sleep(0.05)
    sleep(0.1)
    started = time.monotonic()
    holder.release()
    for _ in range(4):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            done = [w for w in waiters if w.held]
            if done:
                break
            sleep(0.002)
        assert done, "no waiter got the lock"
        done[0].release()  # hands it on to the next
    for w in waits:
        assert w.result(5)
    # four hand-offs, each a wake-up: far below one lease or one 2 s BLPOP slice
    assert time.monotonic() - started < 2.0
    fences = sorted(w.fence for w in waiters)
    assert fences == [2, 3, 4, 5]


def test_a_timeout_is_respected(redis_client: Any) -> None:
    holder = Lock(redis_client, "orders:42", ttl=30.0)
    holder.acquire()
    waiter = Lock(redis_client, "orders:42", ttl=30.0)
    for timeout in (0.0, 0.05, 0.3, 0.4, 0.7):
        started = time.monotonic()
        assert not waiter.acquire(timeout=timeout)
        took = time.monotonic() - started
        assert timeout <= took < timeout + 0.25, (timeout, took)
    holder.release()


def test_the_lock_timeout_is_the_default_for_acquire(redis_client: Any) -> None:
    Lock(redis_client, "orders:42", ttl=30.0).acquire()
    waiter = Lock(redis_client, "orders:42", timeout=0.2)
    started = time.monotonic()
    assert not waiter.acquire()
    assert 0.2 <= time.monotonic() - started < 0.5


def test_an_expired_lease_ends_the_wait_without_a_release(
    redis_client: Any,
) -> None:
    Lock(redis_client, "orders:42", ttl=0.4).acquire()  # never released: crashed
    waiter = Lock(redis_client, "orders:42", ttl=5.0)
    started = time.monotonic()
    assert waiter.acquire(timeout=5.0)
    took = time.monotonic() - started
    assert 0.3 < took < 0.4 + 0.35, took  # lease end (+ Redis's 100 ms timer granularity)
    waiter.release()


def test_an_idle_waiter_sends_only_a_handful_of_commands(
    make_client: Callable[..., Any],
) -> None:
    holder = Lock(make_client(), "orders:42", ttl=30.0)
    holder.acquire()
    counter = make_client()
    counter.config_resetstat()
    waiter = Lock(make_client(), "orders:42", ttl=30.0)
    waiting = spawn(waiter.acquire)
    sleep(2.5)
    sent = _calls(counter, "evalsha") + _calls(counter, "blpop")
    holder.release()
    assert waiting.result(5)
    assert sent <= 8, sent  # 2.5 s of waiting: a BLPOP (and an acquire) per 2 s slice
    waiter.release()


def test_release_leaves_no_key_without_an_expiry(client: Any) -> None:
    lock = Lock(client, "orders:42", ttl=2.0)
    for _ in range(3):
        lock.acquire()
        lock.release()
        assert client.exists(KEY) == 0
        assert 0 < client.pttl(SIGNAL) <= 2000  # a wake-up nobody took expires
        assert client.llen(SIGNAL) == 1  # never more than one
        assert client.ttl(FENCES) == -1  # the fence counter is kept forever on purpose
    for _ in range(2):  # a release that finds the lock free also leaves one wake-up
        assert default_registry().run(
            client, release_call(lock_keys("orders:42"), "nobody", 0, 2000)) == 0
    assert client.llen(SIGNAL) == 1


def test_a_waiter_whose_pipelined_acquire_meets_a_flushed_script_cache_still_acquires(
        client: Any) -> None:
    # A waiter sends its next acquire behind its BLPOP in one pipeline. If the script
    # cache was flushed meanwhile, that EVALSHA answers NOSCRIPT (nothing ran) and the
    # acquire is sent again through the registry.
    holder = Lock(client, "flushwait", ttl=10.0)
    waiter = Lock(client, "flushwait", ttl=10.0)
    assert holder.acquire()
    waiting = spawn(waiter.acquire, True, 5.0)  # blocking, timeout=5
    sleep(0.3)  # the waiter is blocked
    client.script_flush()
    holder.release()
    assert waiting.result(5) is True
    assert waiter.owned()
    assert waiter.fence == holder.fence + 1
    waiter.release()


def test_a_waiter_fails_at_once_on_a_signal_key_of_another_type(client: Any) -> None:
    holder = Lock(client, "typed-signal", ttl=30.0)
    assert holder.acquire()
    signal_key = holder.keys.signal
    client.set(signal_key, "not a list")
    start = time.monotonic()
    with pytest.raises(WrongTypeError) as info:
        Lock(client, "typed-signal", ttl=30.0).acquire(timeout=5.0)
    assert time.monotonic() - start < 2.0
    assert info.value.key == signal_key
    assert holder.owned()
