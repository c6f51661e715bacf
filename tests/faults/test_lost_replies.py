"""Lost replies and timeouts, through a TCP proxy that drops or delays the server's replies.

A dropped reply: the server applied the command, the connection breaks, and a
``redis.Redis(host=, port=)`` client re-sends the command on a new connection (redis-py 8
retries by default). Each test states what the re-send does; the README's "Retry
semantics" table says the same, row by row.
"""

from __future__ import annotations

import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from faults.fault_proxy import FaultProxy
from pyredis_atomic import (
    BoundedCounter,
    Cache,
    Lock,
    RateLimiter,
    ReliableQueue,
    ReplyTimeoutError,
    Semaphore,
)
from pyredis_atomic.registry import default_registry


def _resent(proxy: FaultProxy, drops: int = 1) -> None:
    assert proxy.dropped == drops, "the reply was not dropped: the test proved nothing"


def test_a_retried_lock_acquire_does_not_wait_on_itself(
        proxy: FaultProxy, retrying: redis.Redis, redis_client: redis.Redis) -> None:
    """Invariant: the re-sent acquire finds its own token and counts as acquired at once,
    with the fence of the first send (no fence is skipped)."""
    lock = Lock(retrying, "lr", ttl=30.0)
    proxy.drop_next_reply()
    started = time.monotonic()
    assert lock.acquire(timeout=10.0)
    assert time.monotonic() - started < 2.0  # not a wait for its own 30 s lease
    _resent(proxy)
    assert lock.fence == 1
    proxy.drop_next_reply()
    lock.release()  # re-sent: recognised as already released, no LockNotOwnedError
    _resent(proxy, 2)
    other = Lock(redis_client, "lr", ttl=30.0)
    assert other.acquire(blocking=False)
    assert other.fence == 2
    other.release()


def test_a_retried_push_with_a_dedup_key_is_stored_once(
        proxy: FaultProxy, retrying: redis.Redis) -> None:
    """Invariant: with ``dedup_key`` a re-sent push stores nothing and answers the first
    push's id; without one, a re-sent push is stored twice (documented)."""
    q = ReliableQueue(retrying, "lr")
    assert q.pop() is None  # the eviction-policy check runs before the dropped push
    proxy.drop_next_reply()
    mid = q.push(b"once", dedup_key="order-1")
    _resent(proxy)
    assert q.stats()["pending"] == 1
    assert q.push(b"once", dedup_key="order-1") == mid
    proxy.drop_next_reply()
    q.push(b"twice")
    _resent(proxy, 2)
    assert q.stats()["pending"] == 3  # documented: no dedup_key, stored again


def test_a_retried_ack_returns_false_but_the_message_is_done(
        proxy: FaultProxy, retrying: redis.Redis) -> None:
    """Invariant: an ack whose reply was lost is applied once; its re-send answers False
    (the delivery is no longer current) and removes nothing else."""
    q = ReliableQueue(retrying, "lr")
    q.push(b"a")
    q.push(b"b")
    msg = q.pop()
    assert msg is not None
    proxy.drop_next_reply()
    assert q.ack(msg) is False  # documented: the re-send sees the ack already applied
    _resent(proxy)
    stats = q.stats()
    assert (stats["pending"], stats["in_flight"]) == (1, 0)


def test_a_retried_pop_claims_more_and_the_lost_claim_is_redelivered(
        proxy: FaultProxy, retrying: redis.Redis) -> None:
    """Invariant: a re-sent claim takes the next message; the one the lost send claimed
    is not lost but delivered again once its lease ends (at-least-once)."""
    q = ReliableQueue(retrying, "lr", visibility_timeout=0.3)
    first, second = q.push(b"1"), q.push(b"2")
    proxy.drop_next_reply()
    msg = q.pop()
    _resent(proxy)
    assert msg is not None
    assert msg.id == second
    assert q.ack(msg)
    again = q.pop(timeout=2.0)
    assert again is not None
    assert (again.id, again.deliveries) == (first, 2)
    assert q.ack(again)


def test_a_retried_counter_change_with_a_request_id_is_applied_once(
        proxy: FaultProxy, retrying: redis.Redis) -> None:
    """Invariant: a ``request_id`` makes a re-sent increment a no-op returning the first
    reply; without it the re-send is applied again (documented)."""
    counter = BoundedCounter(retrying, "lr", max=100)
    proxy.drop_next_reply()
    result = counter.incr(5, request_id="req-1")
    _resent(proxy)
    assert (result.applied, result.value, result.delta) == (True, 5, 5)
    assert counter.get() == 5
    assert counter.incr(5, request_id="req-1").value == 5  # later re-sends too
    proxy.drop_next_reply()
    counter.incr(1)
    _resent(proxy, 2)
    assert counter.get() == 7  # documented: no request_id, applied twice


def test_retried_semaphore_and_rate_limiter_calls(
        proxy: FaultProxy, retrying: redis.Redis) -> None:
    """Invariant: a re-sent semaphore acquire holds one slot (same permit id), a re-sent
    release is harmless; a re-sent rate-limiter hit is counted twice (errs on the side of
    limiting, documented)."""
    sem = Semaphore(retrying, "lr", 2, ttl=30.0)
    proxy.drop_next_reply()
    permit = sem.acquire(blocking=False)
    _resent(proxy)
    assert permit is not None
    assert sem.count() == 1
    proxy.drop_next_reply()
    assert sem.release(permit) is False  # documented: the re-send finds it released
    _resent(proxy, 2)
    assert sem.count() == 0

    limiter = RateLimiter(retrying, "lr", rate=10, period=60, burst=10)
    proxy.drop_next_reply()
    assert limiter.hit().allowed
    _resent(proxy, 3)
    assert limiter.peek().remaining == 10 - 2 - 1


def test_retried_cache_writes(proxy: FaultProxy, retrying: redis.Redis) -> None:
    """Invariant: a re-sent ``set`` stores the same value again; a re-sent ``delete``
    answers False and changes nothing more."""
    cache = Cache(retrying, "lr", ttl=60)
    proxy.drop_next_reply()
    cache.set("k", {"v": 1})
    _resent(proxy)
    assert cache.get("k") == {"v": 1}
    proxy.drop_next_reply()
    assert cache.delete("k") is False  # documented: the re-send finds nothing to delete
    _resent(proxy, 2)
    assert cache.get("k", "gone") == "gone"


def test_a_reply_later_than_the_socket_timeout(
        proxy: FaultProxy, redis_client: redis.Redis) -> None:
    """Invariant: a reply delayed past the socket timeout raises ReplyTimeoutError (also a
    ``redis.TimeoutError``) naming the key; the server did apply it, and the re-send with
    the same ``request_id`` / ``dedup_key`` is applied once."""
    no_retry = redis.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=0.3,
                           retry=Retry(NoBackoff(), 0))
    default_registry().load(no_retry)
    counter = BoundedCounter(no_retry, "slow")
    q = ReliableQueue(no_retry, "slow")
    assert q.pop() is None  # runs the eviction-policy check (CONFIG GET) before the delay
    proxy.delay_replies(0.8)
    with pytest.raises(ReplyTimeoutError) as info:
        counter.incr(request_id="slow-1")
    assert isinstance(info.value, redis.TimeoutError)
    assert info.value.key == counter.key
    assert counter.key in str(info.value)
    assert "may or may not have been applied" in str(info.value)
    proxy.heal()
    time.sleep(1.0)  # the late reply reaches the dead connection
    # A timeout cuts the connection; the next one must be set up (HELLO) before the
    # delay, or it is the handshake that times out and the push is never sent.
    no_retry.connection_pool.disconnect()
    no_retry.ping()
    proxy.delay_replies(0.8)
    with pytest.raises(ReplyTimeoutError) as pushed:
        q.push(b"x", dedup_key="slow-1")
    assert pushed.value.key == q.keys["pending"]
    proxy.heal()
    time.sleep(1.0)
    no_retry.connection_pool.disconnect()
    # The server applied both (the timeouts hid their replies)...
    assert int(redis_client.get(counter.key) or 0) == 1
    assert ReliableQueue(redis_client, "slow").stats()["pending"] == 1
    # ...and re-sending with the same ids applies nothing more.
    assert counter.incr(request_id="slow-1").value == 1
    assert int(redis_client.get(counter.key) or 0) == 1
    q.push(b"x", dedup_key="slow-1")
    assert q.stats()["pending"] == 1
    no_retry.close()


def test_a_retrying_client_resends_after_each_timeout_and_still_applies_once(
        proxy: FaultProxy, redis_client: redis.Redis) -> None:
    """Invariant: redis-py's own retries after timeouts re-send the script several times;
    with a ``request_id`` the increment is still applied exactly once."""
    client = redis.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=0.2,
                         retry=Retry(NoBackoff(), 2))
    default_registry().load(client)
    counter = BoundedCounter(client, "slow2")
    proxy.delay_replies(0.4)
    with pytest.raises(ReplyTimeoutError):
        counter.incr(request_id="r")
    proxy.heal()
    time.sleep(1.5)
    client.connection_pool.disconnect()
    assert counter.incr(request_id="r").value == 1
    assert int(redis_client.get(counter.key) or 0) == 1
    client.close()
