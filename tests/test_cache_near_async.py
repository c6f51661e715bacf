"""The asyncio near cache only, on a real Redis: a cancelled leader lets the other callers
through.

The behaviour both APIs share (local hits, writes seen within the bound, CLIENT KILL,
FLUSHALL, a racing read, a stampede, close) is in ``test_cache_near_shared_async.py`` (and
its generated sync twin, ``test_cache_near_shared_sync.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from near_helpers_async import wait_tracking

from pyredis_atomic.asyncio import Cache


async def test_a_cancelled_leader_lets_the_others_through(
        make_aclient: Callable[..., Any]) -> None:
    near = Cache(make_aclient(), "near", ttl=60, near=True)
    try:
        await wait_tracking(near)
        started = asyncio.Event()

        async def slow() -> str:
            started.set()
            await asyncio.sleep(10)
            return "slow"

        leader = asyncio.ensure_future(near.get_or_set("c", slow))
        await started.wait()
        follower = asyncio.ensure_future(near.get_or_set("c", lambda: "fast"))
        await asyncio.sleep(0.05)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        assert await asyncio.wait_for(follower, 5) == "fast"
    finally:
        await near.close()
