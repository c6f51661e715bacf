"""The asyncio ReliableQueue: same semantics, and cancellation leaves nothing without an
owner beyond its lease."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from pyredis_atomic import WrongTypeError
from pyredis_atomic.asyncio import Message, ReliableQueue

ALL_BYTES = bytes(range(256))


async def _expire_all(client: Any, q: ReliableQueue) -> None:
    members = await client.zrange(q.keys["inflight"], 0, -1)
    if members:
        await client.zadd(q.keys["inflight"], dict.fromkeys(members, 0), xx=True)


async def test_roundtrip_and_bytes_payloads(aclient: Any) -> None:
    q = ReliableQueue(aclient, "a-jobs")
    ids = await q.push_many([ALL_BYTES, "ü", b"same", b"same"])
    assert len(set(ids)) == 4
    got = await q.pop_many(10)
    assert [m.payload for m in got] == [ALL_BYTES, "ü".encode(), b"same", b"same"]
    assert all(isinstance(m, Message) for m in got)
    assert await q.ack(got[0]) is True
    assert await q.ack(got[0]) is False
    assert await q.ack_many(got[1:]) == 3
    assert (await q.stats())["in_flight"] == 0


async def test_stale_ack_nack_extend_and_dead_letters(aclient: Any) -> None:
    q = ReliableQueue(aclient, "a-stale", max_deliveries=2)
    mid = await q.push(b"x", dedup_key="d")
    assert await q.push(b"y", dedup_key="d") == mid
    first = await q.pop()
    assert first is not None
    await _expire_all(aclient, q)
    second = await q.pop()
    assert second is not None
    assert second.deliveries == 2
    assert await q.ack(first) is False
    assert await q.extend(first) is False
    assert await q.extend(second, visibility_timeout=10) is True
    await q.nack(second)  # second delivery of 2: dead
    [dead] = await q.dead_letters()
    assert (dead.id, dead.deliveries, dead.dead_reason) == (mid, 2, "nacked")
    assert await q.redrive() == 1
    again = await q.pop()
    assert again is not None
    acked, nxt = await q.ack_and_pop(again)
    assert (acked, nxt) == (True, None)
    await q.push(b"z", delay=60)
    assert (await q.stats())["delayed"] == 1
    assert await q.purge() == 1
    await _expire_all(aclient, q)
    assert await q.requeue_expired() == 0


async def test_blocking_pop_wakes_on_push_and_respects_timeout(aclient: Any) -> None:
    q = ReliableQueue(aclient, "a-wake")
    start = time.monotonic()
    assert await q.pop(timeout=0.3) is None
    late = time.monotonic() - start - 0.3
    assert -0.001 <= late < 0.25  # never early; late by scheduling only (see the sync test)

    async def producer() -> float:
        await asyncio.sleep(0.3)
        await q.push(b"now")
        return time.monotonic()

    task = asyncio.create_task(producer())
    m = await q.pop(timeout=10)
    woke = time.monotonic()
    pushed = await task
    assert m is not None
    assert m.payload == b"now"
    assert woke - pushed < 0.25


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


async def test_bad_input_and_wrong_type(aclient: Any) -> None:
    q = ReliableQueue(aclient, "a-bad")
    with pytest.raises(TypeError, match="payload"):
        await q.push(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        await q.pop(timeout=-0.1)
    with pytest.raises(ValueError, match="n must be"):
        await q.pop_many(0)
    await aclient.set(q.keys["pending"], "x")
    with pytest.raises(WrongTypeError) as info:
        await q.push(b"x")
    assert info.value.key == q.keys["pending"]
