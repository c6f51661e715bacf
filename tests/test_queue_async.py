"""The asyncio ReliableQueue only: cancellation leaves nothing without an owner beyond its
lease.

The semantics both APIs share are in ``test_queue_shared_async.py`` (and its generated
sync twin, ``test_queue_shared_sync.py``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from pyredis_atomic.asyncio import ReliableQueue


async def test_cancelling_a_blocked_pop_loses_nothing(aclient: Any) -> None:
    q = ReliableQueue(aclient, "a-cancel", visibility_timeout=0.3)
    waiter = asyncio.create_task(q.pop(timeout=30))
    await asyncio.sleep(0.2)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await q.push(b"after")
    m = await q.pop(timeout=2)
    assert m is not None
    assert m.payload == b"after"
    assert await q.ack(m)


async def test_cancellation_at_any_point_leaves_only_leased_messages(aclient: Any) -> None:
    q = ReliableQueue(aclient, "a-cancel-any", visibility_timeout=0.3)
    await q.push_many([f"m{i}".encode() for i in range(20)])
    delivered: set[bytes] = set()
    for i in range(20):
        task = asyncio.create_task(q.pop(timeout=1))
        await asyncio.sleep(0.0005 * (i % 5))  # cancel before, during or after the claim
        task.cancel()
        try:
            m = await task
        except asyncio.CancelledError:
            continue
        if m is not None and await q.ack(m):
            delivered.add(m.payload)
    # Whatever a cancelled claim took is leased to nobody until the lease runs out; then it
    # comes back. Drain and check every message arrives.
    end = time.monotonic() + 10
    while len(delivered) < 20 and time.monotonic() < end:
        m = await q.pop(timeout=0.5)
        if m is not None and await q.ack(m):
            delivered.add(m.payload)
    assert delivered == {f"m{i}".encode() for i in range(20)}
