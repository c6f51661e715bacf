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
import redis.asyncio
from faults.fault_proxy import FaultProxy
from twin_async import sleep, spawn

from pyredis_atomic import (
    LockInfo,
    LockLostError,
    LockNotOwnedError,
    LockTimeoutError,
    WrongTypeError,
)
from pyredis_atomic._core.lock import acquire_call, extend_call, lock_keys, release_call
from pyredis_atomic.asyncio import Lock
from pyredis_atomic.asyncio.registry import default_registry
from pyredis_atomic.testing import RedisServer

KEY = "atomic:lock:{orders:42}"
FENCES = "atomic:lock:{orders:42}:fences"
SIGNAL = "atomic:lock:{orders:42}:signal"


async def _calls(client: Any, command: str) -> int:
    entry = (await client.info("commandstats")).get(f"cmdstat_{command}")
    return int(entry["calls"]) if entry else 0


# -- the contract ---------------------------------------------------------------------------
async def test_acquire_release_fence_owned_locked(aclient: Any) -> None:
    a = Lock(aclient, "orders:42", ttl=10.0)
    b = Lock(aclient, "orders:42", ttl=10.0)
    assert not await a.locked()
    assert not await a.owned()
    assert await a.acquire()
    assert a.fence == 1
    assert a.held
    assert await a.owned()
    assert await a.locked()
    assert await b.locked()
    assert not await b.owned()
    assert not await b.acquire(blocking=False)
    assert 9.0 < await aclient.pttl(KEY) / 1000 <= 10.0
    await a.release()
    assert not a.held
    assert not await a.owned()
    assert not await a.locked()
    assert not await aclient.exists(KEY)
    assert await b.acquire(blocking=False)
    assert b.fence == 2
    info = await Lock.inspect(aclient, "orders:42")
    assert info is not None
    assert info.held
    assert info.fence == 2
    assert info.released_fence == 1
    await b.release()
    assert await a.acquire(blocking=False)
    assert a.fence == 3  # strictly increasing across objects and acquisitions
    await a.release()


async def test_context_manager_acquires_releases_and_times_out(aclient: Any) -> None:
    async with Lock(aclient, "orders:42", ttl=5.0) as lock:
        assert await lock.owned()
        fence = lock.fence
        blocker = Lock(aclient, "orders:42", ttl=5.0, timeout=0.2)
        started = time.monotonic()
        with pytest.raises(LockTimeoutError, match="orders:42") as info:
            async with blocker:
                pass
        assert info.value.key == KEY
        assert 0.2 <= time.monotonic() - started < 0.6
    assert not await aclient.exists(KEY)
    assert await Lock.inspect(aclient, "orders:42") == LockInfo(
        name="orders:42", held=False, ttl=None, fence=None, last_fence=fence,
        released_fence=fence, lost_fence=0)


async def test_with_block_raises_lock_lost_when_the_lease_ran_out(aclient: Any) -> None:
    with pytest.raises(LockLostError, match="may have overlapped") as info:
        async with Lock(aclient, "orders:42", ttl=0.05):
            await sleep(0.15)
    assert info.value.key == KEY
    assert isinstance(info.value.__cause__, LockNotOwnedError)


async def test_with_block_keeps_the_bodys_own_exception(aclient: Any) -> None:
    async def body() -> None:
        async with Lock(aclient, "orders:42", ttl=0.05):
            await sleep(0.15)
            raise KeyError("body")

    with pytest.raises(KeyError) as info:
        await body()
    notes = getattr(info.value, "__notes__", None)
    if notes is not None:  # Python 3.11+
        assert any("was lost while held" in n for n in notes)


async def test_stale_release_and_extend_raise_and_leave_the_new_holder_alone(
    aclient: Any,
) -> None:
    old = Lock(aclient, "orders:42", ttl=0.05)
    new = Lock(aclient, "orders:42", ttl=10.0)
    assert await old.acquire()
    await sleep(0.1)  # old's lease runs out
    assert await new.acquire(blocking=False)
    with pytest.raises(LockNotOwnedError, match="no longer held") as info:
        await old.extend()
    assert info.value.key == KEY
    assert old.lost
    with pytest.raises(LockNotOwnedError):
        await old.release()
    assert await new.owned()
    assert await aclient.pttl(KEY) > 9000  # not shortened, not deleted
    info_now = await Lock.inspect(aclient, "orders:42")
    assert info_now is not None
    assert info_now.fence == new.fence == 2
    assert info_now.lost_fence == 1  # old's acquisition ended without a release
    await new.extend(5.0)
    assert await new.owned()
    await new.release()


async def test_extend_resets_the_lease_and_never_revives_an_expired_lock(aclient: Any) -> None:
    lock = Lock(aclient, "orders:42", ttl=1.0)
    await lock.acquire()
    await lock.extend(30.0)
    assert 29_000 < await aclient.pttl(KEY) <= 30_000
    await lock.extend()
    assert 0 < await aclient.pttl(KEY) <= 1000
    await lock.extend(0.05)
    await sleep(0.1)
    with pytest.raises(LockNotOwnedError):
        await lock.extend()
    assert not await aclient.exists(KEY)


async def test_release_and_extend_without_acquire_raise(aclient: Any) -> None:
    lock = Lock(aclient, "orders:42")
    with pytest.raises(LockNotOwnedError, match="not held by this Lock object"):
        await lock.release()
    with pytest.raises(LockNotOwnedError):
        await lock.extend()
    with pytest.raises(LockNotOwnedError, match="never acquired"):
        _ = lock.fence


async def test_a_lock_object_is_not_reentrant(aclient: Any) -> None:
    lock = Lock(aclient, "orders:42")
    await lock.acquire()
    with pytest.raises(RuntimeError, match="not reentrant"):
        await lock.acquire()
    await lock.release()


async def test_a_lost_lock_object_can_acquire_again(aclient: Any) -> None:
    # The lease is ended by deleting the key (what its running out does), not by a 50 ms
    # ttl: the second acquisition's lease must outlast its release under load.
    lock = Lock(aclient, "orders:42", ttl=30.0)
    await lock.acquire()
    await aclient.delete(KEY)
    with pytest.raises(LockNotOwnedError):
        await lock.extend()
    assert await lock.acquire(blocking=False)
    assert lock.fence == 2
    assert not lock.lost
    await lock.release()


async def test_release_from_another_thread_or_task(async_redis_client: Any) -> None:
    lock = Lock(async_redis_client, "orders:42")
    assert await spawn(lock.acquire).result()
    await spawn(lock.release).result()  # the token lives on the object
    assert not await async_redis_client.exists(KEY)


async def test_inspect_reports_holder_lease_and_fences(aclient: Any) -> None:
    assert await Lock.inspect(aclient, "orders:42") is None
    lock = Lock(aclient, "orders:42", ttl=10.0)
    await lock.acquire()
    info = await Lock.inspect(aclient, "orders:42")
    assert info is not None
    assert info.held
    assert info.ttl is not None
    assert 9.0 < info.ttl <= 10.0
    assert (info.fence, info.last_fence, info.released_fence, info.lost_fence) == (1, 1, 0, 0)
    await aclient.persist(KEY)
    info = await Lock.inspect(aclient, "orders:42")
    assert info is not None
    assert info.held
    assert info.ttl is None
    await lock.release()


async def test_a_key_written_by_something_else_counts_as_held(aclient: Any) -> None:
    await aclient.set(KEY, "someone")  # no expiry, not our format
    lock = Lock(aclient, "orders:42")
    assert not await lock.acquire(blocking=False)
    assert not await lock.acquire(timeout=0.05)
    info = await Lock.inspect(aclient, "orders:42")
    assert info is not None
    assert info.held
    assert info.fence is None
    assert info.ttl is None


# -- retry safety ---------------------------------------------------------------------------
async def test_acquire_script_sent_twice_with_one_token_acquires_once(aclient: Any) -> None:
    keys = lock_keys("orders:42")
    run = default_registry().run
    assert await run(aclient, acquire_call(keys, "t1", 10_000)) == (1, 1)
    assert await run(aclient, acquire_call(keys, "t1", 10_000)) == (1, 1)  # same fence
    assert int((await aclient.hget(FENCES, "fence")) or 0) == 1  # issued once
    ok, pttl = await run(aclient, acquire_call(keys, "t2", 10_000))
    assert ok == 0
    assert 9000 < pttl <= 10_000


async def test_release_script_sent_twice_reports_the_first_success(aclient: Any) -> None:
    keys = lock_keys("orders:42")
    run = default_registry().run
    await run(aclient, acquire_call(keys, "t1", 10_000))
    assert await run(aclient, release_call(keys, "t1", 1, 1000)) == 1
    assert await run(aclient, release_call(keys, "t1", 1, 1000)) == 2
    # Still recognised after others acquired and released in between...
    await run(aclient, acquire_call(keys, "t2", 10_000))
    assert await run(aclient, release_call(keys, "t1", 1, 1000)) == 2
    assert await aclient.exists(KEY)  # ...and the re-send never touches the new holder
    await run(aclient, release_call(keys, "t2", 2, 1000))
    assert await run(aclient, release_call(keys, "t1", 1, 1000)) == 2
    # An acquisition whose lease ran out is never reported as released.
    await run(aclient, acquire_call(keys, "t3", 20))
    await sleep(0.05)
    assert await run(aclient, release_call(keys, "t3", 3, 1000)) == 0
    await run(aclient, acquire_call(keys, "t4", 10_000))
    assert await run(aclient, release_call(keys, "t3", 3, 1000)) == 0
    assert await run(aclient, release_call(keys, "t4", 4, 1000)) == 1


async def test_extend_script_sent_twice_extends(aclient: Any) -> None:
    keys = lock_keys("orders:42")
    run = default_registry().run
    await run(aclient, acquire_call(keys, "t1", 1000))
    assert await run(aclient, extend_call(keys, "t1", 50_000)) == 1
    assert await run(aclient, extend_call(keys, "t1", 50_000)) == 1
    assert 49_000 < await aclient.pttl(KEY) <= 50_000
    assert int((await aclient.hget(FENCES, "fence")) or 0) == 1


async def test_release_after_its_first_send_went_through_succeeds(aclient: Any) -> None:
    lock = Lock(aclient, "orders:42")
    await lock.acquire()
    # The first send was applied but its reply was lost: the front end re-sends.
    token = await aclient.get(KEY)
    assert token is not None
    raw = token.decode() if isinstance(token, bytes) else token
    await default_registry().run(aclient, release_call(lock_keys("orders:42"),
                                                       raw.split(":")[0], lock.fence, 1000))
    await lock.release()  # no LockNotOwnedError
    assert not lock.held


@pytest.fixture
def proxy(redis_server: RedisServer, redis_url: str) -> Iterator[FaultProxy]:
    p = FaultProxy(redis_server.host, redis_server.port)
    try:
        yield p
    finally:
        p.close()


async def test_lost_replies_are_resent_by_redis_py_and_applied_once(
    proxy: FaultProxy, async_redis_client: Any
) -> None:
    # Redis(host, port) retries after a broken connection (from_url does not).
    client = redis.asyncio.Redis(host="127.0.0.1", port=proxy.port)
    try:
        await default_registry().load(client)
        lock = Lock(client, "orders:42", ttl=10.0)
        other = Lock(async_redis_client, "orders:42", ttl=10.0)
        await async_redis_client.config_resetstat()
        proxy.drop_next_reply()
        assert await lock.acquire()  # sent twice; the second finds our token: same fence
        assert proxy.dropped == 1
        assert lock.fence == 1
        assert int((await async_redis_client.hget(FENCES, "fence")) or 0) == 1
        proxy.drop_next_reply()
        await lock.extend(20.0)
        assert proxy.dropped == 2
        proxy.drop_next_reply()
        await lock.release()  # sent twice; the second reports "already released": no error
        assert proxy.dropped == 3
        assert await _calls(async_redis_client, "evalsha") == 6
        assert await other.acquire(blocking=False)
        assert other.fence == 2
        await other.release()
    finally:
        await client.aclose()


async def test_an_acquire_that_failed_on_the_connection_is_recognised_by_the_next(
    proxy: FaultProxy, async_redis_client: Any
) -> None:
    client = redis.asyncio.Redis.from_url(proxy.url)  # no automatic retries
    try:
        await default_registry().load(client)
        lock = Lock(client, "orders:42", ttl=10.0)
        proxy.drop_next_reply()
        with pytest.raises(redis.ConnectionError):
            await lock.acquire()
        assert await async_redis_client.exists(KEY)  # it was applied; only the reply was lost
        started = time.monotonic()
        assert await lock.acquire(timeout=5.0)  # not a wait on itself
        assert time.monotonic() - started < 1.0
        assert lock.fence == 1
        await lock.release()
        assert not await async_redis_client.exists(KEY)
    finally:
        await client.aclose()


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
async def test_bad_arguments_are_refused_before_anything_is_sent(
    async_redis_client: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    args: dict[str, Any] = {"name": "orders:42", **kwargs}
    await async_redis_client.config_resetstat()
    with pytest.raises(error, match=match):
        Lock(async_redis_client, **args)
    assert await _calls(async_redis_client, "evalsha") == 0


async def test_bad_call_arguments_are_refused(async_redis_client: Any) -> None:
    lock = Lock(async_redis_client, "orders:42")
    with pytest.raises(ValueError, match="timeout must be at least"):
        await lock.acquire(timeout=-0.5)
    with pytest.raises(ValueError, match="timeout cannot be used with blocking=False"):
        await lock.acquire(blocking=False, timeout=1.0)
    with pytest.raises(TypeError, match="blocking must be a bool"):
        await lock.acquire(blocking=None)  # type: ignore[arg-type]
    await lock.acquire()
    with pytest.raises(ValueError, match="ttl must be at least"):
        await lock.extend(0)
    with pytest.raises(TypeError, match="must be a str"):
        await Lock.inspect(async_redis_client, 42)  # type: ignore[arg-type]
    await lock.release()
    assert not await async_redis_client.exists(KEY)


@pytest.mark.parametrize(
    ("key", "holder"),
    [(KEY, "list"), (FENCES, "string"), (SIGNAL, "string")],
)
async def test_a_key_of_the_wrong_type_is_named_and_left_unchanged(
    aclient: Any, key: str, holder: str
) -> None:
    if holder == "list":
        await aclient.rpush(key, "x")
    else:
        await aclient.set(key, "x")
    lock = Lock(aclient, "orders:42")
    with pytest.raises(WrongTypeError) as info:
        await lock.acquire()
    assert info.value.key == key
    assert repr(key) in str(info.value)
    assert await aclient.type(key) in (holder, holder.encode())
    assert not lock.held
    others = {KEY, FENCES, SIGNAL} - {key}
    assert await aclient.exists(*others) == 0  # nothing was written


async def test_prefix_and_brace_names_cannot_collide(aclient: Any) -> None:
    names = ["a", "a}", "{a}", "a}:fences", "a%7D", "x}:y{z"]
    locks = [Lock(aclient, n, ttl=10.0) for n in names]
    locks.append(Lock(aclient, "a", ttl=10.0, prefix="tenant1:"))
    for lock in locks:
        assert await lock.acquire(blocking=False), lock.name  # all distinct locks
        assert lock.fence == 1
    assert await aclient.exists("tenant1:lock:{a}")
    assert await Lock.inspect(aclient, "a", prefix="other:") is None
    # every name keeps its own hash tag: its three keys share one slot
    for lock in locks:
        keys = lock_keys(lock.name, "tenant1:" if lock is locks[-1] else "atomic:")
        tags = {k[k.index("{"): k.index("}") + 1] for k in (keys.lock, keys.fences, keys.signal)}
        assert len(tags) == 1
    for lock in locks:
        await lock.release()


# -- waiting --------------------------------------------------------------------------------
async def test_a_blocked_waiter_wakes_within_milliseconds_of_release(
    make_aclient: Callable[..., Any],
) -> None:
    holder_client, waiter_client = make_aclient(), make_aclient()
    delays = []
    for _ in range(5):
        holder = Lock(holder_client, "orders:42", ttl=30.0)  # lease far beyond the test
        await holder.acquire()
        waiter = Lock(waiter_client, "orders:42", ttl=30.0)
        woken: list[float] = []

        async def wait(waiter: Lock = waiter, woken: list[float] = woken) -> bool:
            got = await waiter.acquire()
            woken.append(time.monotonic())
            return got

        waiting = spawn(wait)
        await sleep(0.15)  # the waiter is blocked in BLPOP by now
        released = time.monotonic()
        await holder.release()
        assert await waiting.result(5)
        delays.append(woken[0] - released)
        await waiter.release()
    # A wake-up through Redis takes a round trip or two; without one the waiter would sit
    # in BLPOP for its whole 2 s slice.
    assert statistics.median(delays) < 0.1, delays
    assert max(delays) < 1.0, delays


async def test_waiters_get_the_lock_in_turn_and_none_is_forgotten(
    make_aclient: Callable[..., Any],
) -> None:
    holder = Lock(make_aclient(), "orders:42", ttl=30.0)
    await holder.acquire()
    waiters = [Lock(make_aclient(), "orders:42", 30.0) for _ in range(4)]
    waits = []
    for waiter in waiters:
        waits.append(spawn(waiter.acquire, True, 10))  # blocking, timeout=10
        await sleep(0.05)
    await sleep(0.1)
    started = time.monotonic()
    await holder.release()
    for _ in range(4):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            done = [w for w in waiters if w.held]
            if done:
                break
            await sleep(0.002)
        assert done, "no waiter got the lock"
        await done[0].release()  # hands it on to the next
    for w in waits:
        assert await w.result(5)
    # four hand-offs, each a wake-up: far below one lease or one 2 s BLPOP slice
    assert time.monotonic() - started < 2.0
    fences = sorted(w.fence for w in waiters)
    assert fences == [2, 3, 4, 5]


async def test_a_timeout_is_respected(async_redis_client: Any) -> None:
    holder = Lock(async_redis_client, "orders:42", ttl=30.0)
    await holder.acquire()
    waiter = Lock(async_redis_client, "orders:42", ttl=30.0)
    for timeout in (0.0, 0.05, 0.3, 0.4, 0.7):
        started = time.monotonic()
        assert not await waiter.acquire(timeout=timeout)
        took = time.monotonic() - started
        assert timeout <= took < timeout + 0.25, (timeout, took)
    await holder.release()


async def test_the_lock_timeout_is_the_default_for_acquire(async_redis_client: Any) -> None:
    await Lock(async_redis_client, "orders:42", ttl=30.0).acquire()
    waiter = Lock(async_redis_client, "orders:42", timeout=0.2)
    started = time.monotonic()
    assert not await waiter.acquire()
    assert 0.2 <= time.monotonic() - started < 0.5


async def test_an_expired_lease_ends_the_wait_without_a_release(
    async_redis_client: Any,
) -> None:
    await Lock(async_redis_client, "orders:42", ttl=0.4).acquire()  # never released: crashed
    waiter = Lock(async_redis_client, "orders:42", ttl=5.0)
    started = time.monotonic()
    assert await waiter.acquire(timeout=5.0)
    took = time.monotonic() - started
    assert 0.3 < took < 0.4 + 0.35, took  # lease end (+ Redis's 100 ms timer granularity)
    await waiter.release()


async def test_an_idle_waiter_sends_only_a_handful_of_commands(
    make_aclient: Callable[..., Any],
) -> None:
    holder = Lock(make_aclient(), "orders:42", ttl=30.0)
    await holder.acquire()
    counter = make_aclient()
    await counter.config_resetstat()
    waiter = Lock(make_aclient(), "orders:42", ttl=30.0)
    waiting = spawn(waiter.acquire)
    await sleep(2.5)
    sent = await _calls(counter, "evalsha") + await _calls(counter, "blpop")
    await holder.release()
    assert await waiting.result(5)
    assert sent <= 8, sent  # 2.5 s of waiting: a BLPOP (and an acquire) per 2 s slice
    await waiter.release()


async def test_release_leaves_no_key_without_an_expiry(aclient: Any) -> None:
    lock = Lock(aclient, "orders:42", ttl=2.0)
    for _ in range(3):
        await lock.acquire()
        await lock.release()
        assert await aclient.exists(KEY) == 0
        assert 0 < await aclient.pttl(SIGNAL) <= 2000  # a wake-up nobody took expires
        assert await aclient.llen(SIGNAL) == 1  # never more than one
        assert await aclient.ttl(FENCES) == -1  # the fence counter is kept forever on purpose
    for _ in range(2):  # a release that finds the lock free also leaves one wake-up
        assert await default_registry().run(
            aclient, release_call(lock_keys("orders:42"), "nobody", 0, 2000)) == 0
    assert await aclient.llen(SIGNAL) == 1


async def test_a_waiter_whose_pipelined_acquire_meets_a_flushed_script_cache_still_acquires(
        aclient: Any) -> None:
    # A waiter sends its next acquire behind its BLPOP in one pipeline. If the script
    # cache was flushed meanwhile, that EVALSHA answers NOSCRIPT (nothing ran) and the
    # acquire is sent again through the registry.
    holder = Lock(aclient, "flushwait", ttl=10.0)
    waiter = Lock(aclient, "flushwait", ttl=10.0)
    assert await holder.acquire()
    waiting = spawn(waiter.acquire, True, 5.0)  # blocking, timeout=5
    await sleep(0.3)  # the waiter is blocked
    await aclient.script_flush()
    await holder.release()
    assert await waiting.result(5) is True
    assert await waiter.owned()
    assert waiter.fence == holder.fence + 1
    await waiter.release()


async def test_a_waiter_fails_at_once_on_a_signal_key_of_another_type(aclient: Any) -> None:
    holder = Lock(aclient, "typed-signal", ttl=30.0)
    assert await holder.acquire()
    signal_key = holder.keys.signal
    await aclient.set(signal_key, "not a list")
    start = time.monotonic()
    with pytest.raises(WrongTypeError) as info:
        await Lock(aclient, "typed-signal", ttl=30.0).acquire(timeout=5.0)
    assert time.monotonic() - start < 2.0
    assert info.value.key == signal_key
    assert await holder.owned()
