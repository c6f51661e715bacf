"""The asyncio BoundedCounter: same semantics through redis.asyncio, in every client mode."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pyredis_atomic import CounterResult, ScriptError, WrongTypeError
from pyredis_atomic.asyncio import BoundedCounter


async def test_incr_decr_clamp_and_reads(aclient: Any) -> None:
    c = BoundedCounter(aclient, "stock", min=0, max=5, initial=4)
    assert await c.get() == 4
    assert await c.incr() == CounterResult(True, 5, 1)
    assert await c.incr() == CounterResult(False, 5, 0)
    assert await c.decr(9, clamp=True) == CounterResult(False, 0, -5)
    await c.set(3)
    assert await c.get() == 3
    await c.reset()
    assert await c.get() == 4
    assert repr(c).startswith("asyncio.BoundedCounter('stock', min=0, max=5")


async def test_concurrent_tasks_respect_the_bound(aclient: Any) -> None:
    c = BoundedCounter(aclient, "tickets", min=0, max=25)
    results = await asyncio.gather(*(c.incr() for _ in range(60)))
    assert sum(r.applied for r in results) == 25
    assert all(0 <= r.value <= 25 for r in results)
    assert await c.get() == 25


async def test_request_id_and_errors(aclient: Any) -> None:
    c = BoundedCounter(aclient, "orders", max=10)
    assert await c.incr(4, request_id="x") == await c.incr(4, request_id="x")
    assert await c.get() == 4
    with pytest.raises(ScriptError, match="REQUESTREUSED"):
        await c.incr(5, request_id="x")
    with pytest.raises(TypeError, match="n must be an int, got bool"):
        await c.decr(True)
    with pytest.raises(ValueError, match="outside"):
        await c.set(11)
    await aclient.rpush("atomic:counter:{listy}", "x")
    bad = BoundedCounter(aclient, "listy")
    with pytest.raises(WrongTypeError) as info:
        await bad.incr()
    assert info.value.key == "atomic:counter:{listy}"
    await aclient.set("atomic:counter:{text}", "abc")
    with pytest.raises(ScriptError, match="NOTINT"):
        await BoundedCounter(aclient, "text").incr()


async def test_fast_path_survives_a_script_cache_flush(aclient: Any) -> None:
    c = BoundedCounter(aclient, "flushed")
    assert (await c.incr()).value == 1
    await aclient.script_flush()
    assert (await c.incr()).value == 2
    assert (await c.incr()).value == 3


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
