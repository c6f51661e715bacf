"""A server with ``appendonly yes`` + ``appendfsync always`` restarts (SIGKILL or graceful).

Invariant: every push, ack, acquire and counter change acknowledged to the client before
the restart is still there after it, and the same client objects (``redis.Redis(host=,
port=)``, which retries on a broken connection) reconnect and go on. Writes in flight at
the kill may or may not have been applied; re-sent with the same ``request_id`` /
``dedup_key`` they are applied exactly once.
"""

from __future__ import annotations

import itertools
import time

import pytest
import redis

from faults.helpers import Workers
from pyredis_atomic import BoundedCounter, Lock, ReliableQueue, Semaphore
from pyredis_atomic.testing import RedisServer


def _until_done(op: object, *args: object, **kwargs: object) -> object:
    """What an application does with an idempotent call: re-send it until it answers."""
    assert callable(op)
    for _ in range(100):
        try:
            return op(*args, **kwargs)
        except redis.ConnectionError:  # ConnectionLostError is one too
            time.sleep(0.05)
    raise AssertionError("the server never came back")


@pytest.mark.parametrize("kill", [True, False], ids=["sigkill", "graceful"])
def test_acknowledged_writes_survive_a_restart(
        redis_server_factory: type[RedisServer], kill: bool, workers: Workers) -> None:
    server = redis_server_factory(appendonly=True, appendfsync="always")
    client = redis.Redis(host=server.host, port=server.port)  # retries on broken connections
    q = ReliableQueue(client, "aof", visibility_timeout=60)
    counter = BoundedCounter(client, "aof", max=10**6)
    lock = Lock(client, "aof", ttl=60)
    sem = Semaphore(client, "aof", 3, ttl=60)

    ids = [q.push(f"m{i}") for i in range(10)]
    first = q.pop()
    assert first is not None
    assert q.ack(first)
    in_flight = q.pop()
    assert in_flight is not None
    for _ in range(5):
        assert counter.incr().applied
    assert lock.acquire(blocking=False)
    fence = lock.fence
    permit = sem.acquire(blocking=False)
    assert permit is not None

    # Writers running across the restart; they count only what was acknowledged.
    increments = [0]
    pushed: list[str] = []

    def increment() -> None:
        for n in itertools.count():
            if workers.stop.is_set():
                return
            result = _until_done(counter.incr, request_id=f"inc-{n}")
            assert result.applied  # type: ignore[attr-defined]
            increments[0] += 1

    def push() -> None:
        for n in itertools.count():
            if workers.stop.is_set():
                return
            pushed.append(str(_until_done(q.push, f"w{n}", dedup_key=f"w{n}")))

    workers.start(increment)
    workers.start(push)
    time.sleep(0.3)
    server.restart(kill=kill)
    time.sleep(0.3)
    workers.join()
    assert increments[0] > 0
    assert pushed

    check = redis.Redis(host=server.host, port=server.port)
    # Counter: every acknowledged change, each once.
    assert counter.get() == 5 + increments[0]
    # Queue: the acked message is gone, the in-flight one is still leased to us (its ack
    # works), every acknowledged push is there once.
    stats = q.stats()
    assert stats["in_flight"] == 1
    assert stats["pending"] == len(ids) - 2 + len(pushed)
    assert len(set(pushed)) == len(pushed)
    assert q.ack(in_flight)
    assert not q.ack(first)
    # Lock: still ours, with the same fence; nobody else gets it; the next fence follows.
    assert lock.owned()
    other = Lock(check, "aof", ttl=60)
    assert not other.acquire(blocking=False)
    lock.release()
    assert other.acquire(blocking=False)
    assert other.fence == fence + 1
    other.release()
    # Semaphore: the permit is still held and released once.
    assert sem.count() == 1
    assert sem.release(permit)
    assert not sem.release(permit)
    check.close()
    client.close()
