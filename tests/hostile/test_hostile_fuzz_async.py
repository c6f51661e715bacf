"""A smaller hostile-argument pass over the asyncio primitives: the same contract as the
sync fuzz (works, or TypeError/ValueError with nothing sent, or an AtomicError), with the
main invariants checked on the server afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio
from hostile_values import (
    HOSTILE,
    NAME,
    TEXT,
    WAIT,
    arg,
    attempt,
    attempt_async,
    pick_known,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from pyredis_atomic import asyncio as aio

SECONDS = st.floats(0.001, 3600)


async def _async_loader() -> str:
    return "loaded"


LOADERS: list[Any] = [lambda: 1, _async_loader, None, 5]
ASYNC_FUZZ = settings(max_examples=settings().max_examples * 4)


@ASYNC_FUZZ
@given(data=st.data())
def test_asyncio_primitives_fuzz(redis_url: str, make_client: Callable[..., redis.Redis],
                                 data: st.DataObject) -> None:
    probe = make_client()
    probe.flushall()
    protocol = data.draw(st.sampled_from([2, 3]), label="protocol")
    decode = data.draw(st.booleans(), label="decode_responses")

    async def body() -> None:
        client = redis.asyncio.Redis.from_url(redis_url, protocol=protocol,
                                              decode_responses=decode)
        try:
            await run(client)
        finally:
            await client.aclose()

    async def run(client: Any) -> None:
        name = data.draw(NAME, label="name")
        locks = [aio.Lock(client, name, ttl=30, timeout=0) for _ in range(2)]
        queue = aio.ReliableQueue(client, name, visibility_timeout=30)
        counter = aio.BoundedCounter(client, name, min=0, max=5)
        sem = aio.Semaphore(client, name, limit=2, ttl=30)
        limiter = aio.RateLimiter(client, name, rate=5)
        cache = aio.Cache(client, name, ttl=60)
        delivered: list[Any] = []
        pushed: list[str] = []
        for _ in range(data.draw(st.integers(3, 10))):
            lock = data.draw(st.sampled_from(locks))

            def lock_acquire(lk: Any = lock) -> Any:
                return lk.acquire(data.draw(arg(st.booleans())), data.draw(WAIT))

            def lock_extend(lk: Any = lock) -> Any:
                return lk.extend(data.draw(arg(SECONDS)))

            calls: dict[str, Callable[[], Any]] = {
                "lock.acquire": lock_acquire,
                "lock.release": lock.release,
                "lock.extend": lock_extend,
                "queue.push": lambda: queue.push(data.draw(arg(st.binary() | TEXT)),
                                                 delay=data.draw(arg(st.just(0)))),
                "queue.pop": lambda: queue.pop(data.draw(st.one_of(st.none(), WAIT))),
                "queue.ack": lambda: queue.ack(
                    pick_known(data, delivered, HOSTILE, "receipt")),
                "queue.nack": lambda: queue.nack(
                    pick_known(data, delivered, HOSTILE, "receipt"),
                    data.draw(arg(st.just(0.0)))),
                "counter.incr": lambda: counter.incr(data.draw(arg(st.integers(-3, 3))),
                                                     clamp=data.draw(st.booleans())),
                "counter.set": lambda: counter.set(data.draw(arg(st.integers(-2, 7)))),
                "sem.acquire": lambda: sem.acquire(data.draw(arg(st.booleans())),
                                                   data.draw(WAIT)),
                "sem.release": lambda: sem.release(data.draw(arg(TEXT))),
                "limiter.hit": lambda: limiter.hit(data.draw(arg(st.integers(1, 5)))),
                "cache.set": lambda: cache.set(data.draw(arg(TEXT)),
                                               data.draw(arg(st.integers() | TEXT))),
                "cache.get": lambda: cache.get(data.draw(arg(TEXT))),
                "cache.get_or_set": lambda: cache.get_or_set(
                    data.draw(arg(TEXT)), data.draw(st.sampled_from(LOADERS))),
            }
            what = data.draw(st.sampled_from(sorted(calls)), label="call")
            out = await attempt_async(probe, what, calls[what], allowed=(RuntimeError,))
            if out.ok and what in ("queue.pop",) and out.value is not None:
                delivered.append(out.value)
            if out.ok and what == "queue.push":
                pushed.append(out.value)
            assert sum([await lk.owned() for lk in locks]) <= 1
            assert 0 <= await counter.get() <= 5
            assert await sem.count() <= 2
        stats = await queue.stats()
        assert stats["pending"] + stats["in_flight"] <= len(pushed)

    asyncio.run(body())
    # Constructors take hostile arguments too (no I/O in them).
    for cls in (aio.Lock, aio.ReliableQueue, aio.BoundedCounter, aio.Cache):
        attempt(probe, cls.__name__, cls, None, data.draw(arg(NAME)), data.draw(HOSTILE))


