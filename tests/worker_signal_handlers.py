"""Handlers for tests/test_worker_signals.py, run by ``pyredis-atomic worker MODULE:FUNC``
in child processes (not a test module): they note each start in Redis (at
``$WORKER_TEST_URL``, under ``started:<queue>``), then hang far past any grace period."""

from __future__ import annotations

import asyncio
import os
import time

import redis

from pyredis_atomic import Message

_client: redis.Redis | None = None


def _note(msg: Message) -> None:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["WORKER_TEST_URL"])
    name = msg.queue.split("{", 1)[1].rsplit("}", 1)[0]
    _client.rpush(f"started:{name}", f"{msg.id}/{msg.deliveries}")


def hang(msg: Message) -> None:
    """Start, then hang for five minutes."""
    _note(msg)
    time.sleep(300)


async def hang_async(msg: Message) -> None:
    """The asyncio twin: start, then hang for five minutes."""
    _note(msg)
    await asyncio.sleep(300)
