"""auto_renew (sync): one renewer thread per process keeps leases alive until release,
notices a lock that disappeared, and never outlives release()."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable

import pytest
import redis

from pyredis_atomic import Lock, LockLostError, LockNotOwnedError


def _renewer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "pyredis-atomic-lock-renewer"]


def _extends(client: redis.Redis) -> int:
    entry = client.info("commandstats").get("cmdstat_evalsha")
    return int(entry["calls"]) if entry else 0


def test_a_hold_several_times_the_ttl_keeps_the_lock(client: redis.Redis) -> None:
    # A 1 s lease: each renewal must answer within the lease's time left (issue 14), and a
    # loaded CI machine can take a few hundred ms to schedule the renewer.
    lock = Lock(client, "r", ttl=1.0, auto_renew=True)
    rival = Lock(client, "r", ttl=1.0)
    with lock:
        for _ in range(6):  # 3 s = 3 leases
            time.sleep(0.5)
            assert lock.owned()
            assert not rival.acquire(blocking=False)
        assert not lock.lost
    assert rival.acquire(blocking=False)
    assert rival.fence == lock.fence + 1
    rival.release()


def test_deleting_the_key_mid_hold_makes_the_lock_lost(redis_client: redis.Redis) -> None:
    fired: list[Lock] = []
    called = threading.Event()

    def on_lost(lock: Lock) -> None:
        fired.append(lock)
        called.set()

    lock = Lock(redis_client, "r", ttl=0.3, auto_renew=True, on_lost=on_lost)

    def hold() -> None:
        with lock:
            # stands for an operator breaking the lock, or a failover that lost it
            redis_client.delete(lock.keys.lock)
            assert called.wait(2.0)
            assert lock.lost

    with pytest.raises(LockLostError, match="was lost while held"):
        hold()
    assert fired == [lock]


def test_renewal_stops_at_release(redis_client: redis.Redis) -> None:
    lock = Lock(redis_client, "r", ttl=0.15, auto_renew=True)
    lock.acquire()
    time.sleep(0.2)
    lock.release()
    redis_client.config_resetstat()
    time.sleep(0.3)  # six renewal periods
    assert _extends(redis_client) == 0
    assert not lock.lost


def test_renewal_stops_at_release_even_when_someone_else_holds_next(
    redis_client: redis.Redis,
) -> None:
    fired: list[Lock] = []
    lock = Lock(redis_client, "r", ttl=0.15, auto_renew=True, on_lost=fired.append)
    for _ in range(5):
        lock.acquire()
        lock.release()
        other = Lock(redis_client, "r", ttl=5.0)
        other.acquire()
        time.sleep(0.1)
        other.release()
    assert fired == []  # a renewal racing release() never reports a false loss
    assert not lock.lost


def test_one_renewer_thread_serves_every_lock(make_client: Callable[..., redis.Redis]) -> None:
    locks = [Lock(make_client(), f"r{i}", ttl=1.0, auto_renew=True) for i in range(5)]
    for lock in locks:
        lock.acquire()
    time.sleep(2.0)
    assert len(_renewer_threads()) == 1
    assert all(lock.owned() for lock in locks)
    for lock in locks:
        lock.release()


def test_a_failing_on_lost_callback_does_not_stop_the_renewer(redis_client: redis.Redis) -> None:
    def explode(lock: Lock) -> None:
        raise RuntimeError("callback bug")

    bad = Lock(redis_client, "bad", ttl=0.2, auto_renew=True, on_lost=explode)
    good = Lock(redis_client, "good", ttl=1.0, auto_renew=True)
    bad.acquire()
    good.acquire()
    redis_client.delete(bad.keys.lock)
    time.sleep(0.6)
    assert bad.lost
    assert good.owned()  # still renewed
    good.release()
    with pytest.raises(LockNotOwnedError):
        bad.release()


def test_a_forgotten_lock_object_is_not_renewed_forever(redis_client: redis.Redis) -> None:
    lock = Lock(redis_client, "r", ttl=0.2, auto_renew=True)
    lock.acquire()
    del lock
    gc.collect()
    time.sleep(0.5)
    assert not redis_client.exists("atomic:lock:{r}")


def test_extend_on_an_auto_renewed_lock(redis_client: redis.Redis) -> None:
    lock = Lock(redis_client, "r", ttl=0.3, auto_renew=True)
    lock.acquire()
    lock.extend(20.0)
    assert redis_client.pttl(lock.keys.lock) > 19_000
    time.sleep(0.25)  # the next renewal resets the lease to the lock's ttl
    assert redis_client.pttl(lock.keys.lock) <= 300
    lock.release()
