"""A blocking wait outlives a dropped connection within its timeout (issue 14, defect 4):
the queue's ``pop``, the lock and the semaphore behave alike when the connection of a
waiter is killed (what a Sentinel failover does to the old master's clients) or the server
restarts (AOF) while they wait. Before the fix, whether a wait survived depended on
redis-py's own retries (none by default before redis-py 6, none when a user turns them off
to bound their calls): ``pop`` raised ``ConnectionLostError``, and so did the others. Now
the wait flows retry within the caller's timeout themselves (``_core/waiting.py``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

import pyredis_atomic.asyncio as aio
from pyredis_atomic import Lock, ReliableQueue, Semaphore
from pyredis_atomic.testing import RedisServer

WAIT = 20.0  # the waiter's timeout: generous, the disruption is over in about a second


def _kill_waiters(server: RedisServer) -> None:
    """Drop every connection of a normal client (a failover does this to the old master;
    the test's own admin connection goes too)."""
    admin = server.client()
    try:
        admin.client_kill_filter(_type="normal", skipme=True)
    finally:
        admin.close()


def _restart(server: RedisServer) -> None:
    server.restart(kill=True)


DISRUPTIONS: dict[str, Callable[[RedisServer], None]] = {
    "client-kill": _kill_waiters,
    "restart": _restart,
}


def _setup(kind: str, client: redis.Redis,
           waiting: redis.Redis) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(the blocking wait on ``waiting``, what frees the resource on ``client``)."""
    if kind == "pop":
        q = ReliableQueue(client, "w")
        waiter_q = ReliableQueue(waiting, "w")
        return (lambda: waiter_q.pop(timeout=WAIT)), (lambda: q.push(b"job"))
    if kind == "lock":
        holder = Lock(client, "w", ttl=60)
        assert holder.acquire(blocking=False)
        waiter = Lock(waiting, "w", ttl=60)
        return (lambda: waiter.acquire(timeout=WAIT) or None), holder.release
    holder_sem = Semaphore(client, "w", limit=1, ttl=60)
    permit = holder_sem.acquire(blocking=False)
    assert permit is not None
    waiter_sem = Semaphore(waiting, "w", limit=1, ttl=60)
    return (lambda: waiter_sem.acquire(timeout=WAIT)), (lambda: holder_sem.release(permit))


@pytest.mark.parametrize("retries", ["no-retries", "redis-py-retries"])
@pytest.mark.parametrize("disruption", sorted(DISRUPTIONS))
@pytest.mark.parametrize("kind", ["pop", "lock", "semaphore"])
def test_a_blocked_wait_carries_on(redis_server_factory: Callable[..., RedisServer],
                                   kind: str, disruption: str, retries: str) -> None:
    server = redis_server_factory(appendonly=True, appendfsync="always")
    options: dict[str, Any] = {"socket_timeout": 5}
    if retries == "no-retries":
        options["retry"] = Retry(NoBackoff(), 0)
    waiter_client = server.client(**options)
    freer_client = server.client(socket_timeout=5)
    wait, free = _setup(kind, freer_client, waiter_client)
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("ok", wait()))
        except Exception as exc:
            outcome.append(("error", exc))

    waiter = threading.Thread(target=run)
    started = time.monotonic()
    waiter.start()
    time.sleep(0.5)  # the waiter is blocked in its BLPOP by now
    DISRUPTIONS[disruption](server)
    time.sleep(0.3)
    deadline = time.monotonic() + 10
    while True:  # the freeing side re-sends after its own connection dropped
        try:
            free()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    waiter.join(timeout=WAIT + 10)
    assert not waiter.is_alive()
    status, value = outcome[0]
    assert status == "ok", f"{kind} failed at a {disruption}: {value!r}"
    assert value is not None, f"{kind} timed out instead of getting what was freed"
    assert time.monotonic() - started < WAIT
    waiter_client.close()
    freer_client.close()


def test_an_asyncio_pop_carries_on(redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory()

    async def main() -> Any:
        client = redis.asyncio.Redis(host=server.host, port=server.port, socket_timeout=5,
                                     retry=AsyncRetry(NoBackoff(), 0))
        q = aio.ReliableQueue(client, "w")
        popping = asyncio.ensure_future(q.pop(timeout=WAIT))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(_kill_waiters, server)
        await asyncio.sleep(0.3)
        await q.push(b"job")
        msg = await popping
        await client.aclose()
        return msg

    msg = asyncio.run(main())
    assert msg is not None
    assert msg.payload == b"job"


def test_a_wait_still_ends_at_its_timeout_while_the_server_is_down(
        redis_server_factory: Callable[..., RedisServer]) -> None:
    """The retries stay inside the caller's timeout: a server that stays down ends the
    wait with the connection error shortly after the timeout, not later."""
    server = redis_server_factory()
    client = server.client(socket_timeout=1, socket_connect_timeout=1)
    q = ReliableQueue(client, "w")
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(q.pop(timeout=3.0))
        except redis.ConnectionError as exc:
            result.append(exc)

    t = threading.Thread(target=run)
    started = time.monotonic()
    t.start()
    time.sleep(0.5)
    server.kill()
    t.join(timeout=30)
    took = time.monotonic() - started
    assert not t.is_alive()
    assert isinstance(result[0], redis.ConnectionError), result
    # redis-py's own connect retries can add a few seconds after the last pause.
    assert took < 3.0 + 8.0, took
    client.close()
