"""The asyncio BoundedCounter only: a cancelled increment applies at most once.

The semantics both APIs share are in ``test_counter_shared_async.py`` (and its generated
sync twin, ``test_counter_shared_sync.py``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pyredis_atomic.asyncio import BoundedCounter


async def test_cancelled_increment_applies_at_most_once(aclient: Any) -> None:
    c = BoundedCounter(aclient, "cancel", max=1000)
    for _ in range(20):
        task = asyncio.ensure_future(c.incr(1, request_id="same"))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # A cancelled increment may or may not have reached Redis; with the same request id
    # it counts at most once, and a final retry settles it exactly once.
    assert (await c.incr(1, request_id="same")).value == 1
    assert await c.get() == 1
