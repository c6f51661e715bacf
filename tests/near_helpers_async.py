"""Helpers of the near-cache tests (not a test module): warm a key, wait for tracking, read
until a value comes back within a bound.

Written once, for asyncio, in ``near_helpers_async.py``; ``scripts/unasync.py`` writes
``near_helpers_sync.py`` from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis
from twin_async import settle, sleep

from pyredis_atomic._core.near import LISTENER_NAME
from pyredis_atomic.asyncio import Cache, NearCache

BOUND = NearCache().max_staleness


async def wait_tracking(cache: Cache, timeout: float = 10.0) -> None:
    """Start the listener (any near read does) and wait until hits are served locally."""
    await cache.get("__start__")
    end = time.monotonic() + timeout
    while not cache.near_stats().tracking:
        assert time.monotonic() < end, f"tracking not back: {cache.near_stats()}"
        await sleep(0.005)


async def warm(cache: Cache, key: str, value: Any, ttl: float | None = None) -> None:
    """Store ``value`` under ``key`` and make it a local hit."""
    await cache.set(key, value, ttl)
    end = time.monotonic() + 10
    while True:
        got = await cache.get_or_set(key, lambda: value)
        if got == value and key in cache._near._data:  # type: ignore[union-attr]
            return
        assert time.monotonic() < end
        await sleep(0.005)


async def read_until(read: Callable[[], Any], want: Any, since: float, limit: float) -> None:
    """Read until ``want`` comes back; a read that *began* ``limit`` or more after ``since``
    must not return anything else (a read that began earlier may, however late it returns:
    a loaded machine can hold a thread or the event loop between its lookup and its
    return)."""
    while True:
        began = time.monotonic()
        try:
            got = await settle(read())
        except redis.RedisError:
            got = "(error)"  # the pool reconnecting: not a stale read
            assert began - since < limit + 10, "the server did not come back"
            continue
        if got == want:
            return
        assert began - since < limit, (got, want, began - since)
        await sleep(0)  # (asyncio: let the listener task run)


def copy_of(cache: Cache, key: str) -> str:
    """The Redis key of ``key``'s fresh copy (next to its entry hash)."""
    return cache.key_of(key)[:-1] + "f"


async def listener_ids(client: Any) -> list[Any]:
    return [c["id"] for c in await client.client_list() if c.get("name") == LISTENER_NAME]
