"""Helpers shared by the queue tests (not a test module).

Written once, for asyncio, in ``queue_helpers_async.py``; ``scripts/unasync.py`` writes
the sync ``queue_helpers.py`` (which the sync suites import) from it.
"""

from __future__ import annotations

from typing import Any


async def expire_all(client: Any, queue: Any) -> int:
    """Stand for time passing: put every lease deadline of ``queue`` into the past."""
    key = queue.keys["inflight"]
    members = await client.zrange(key, 0, -1)
    if members:
        await client.zadd(key, dict.fromkeys(members, 0), xx=True)
    return len(members)


async def make_due(client: Any, queue: Any) -> int:
    """Make every delayed message of ``queue`` due now."""
    key = queue.keys["delayed"]
    members = await client.zrange(key, 0, -1)
    if members:
        await client.zadd(key, dict.fromkeys(members, 0), xx=True)
    return len(members)


async def all_payload_ids(client: Any, queue: Any) -> set[str]:
    """Ids that still have a stored payload (queued, in flight, delayed or dead)."""
    return {k.decode() if isinstance(k, bytes) else k
            for k in await client.hkeys(queue.keys["payload"])}
