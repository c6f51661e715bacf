"""Handlers for the worker tests that run ``pyredis-atomic worker MODULE:FUNC`` in child
processes (not a test module). They record what they did in Redis, at
``$WORKER_TEST_URL``, under keys named after the queue."""

from __future__ import annotations

import os
import random
import signal
import time

import redis

from pyredis_atomic import Message, ReliableQueue

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["WORKER_TEST_URL"])
    return _client


def _queue_name(msg: Message) -> str:
    # "atomic:queue:{name}" -> name
    return msg.queue.split("{", 1)[1].rsplit("}", 1)[0]


def record(msg: Message) -> None:
    """A little work, then note "<id>/<delivery>" as handled to completion."""
    time.sleep(random.uniform(0.0, 0.004))
    _redis().rpush(f"handled:{_queue_name(msg)}", f"{msg.id}/{msg.deliveries}")


def kill_self(msg: Message) -> None:
    """A poison message: the worker process dies (SIGKILL) on every delivery."""
    _redis().rpush(f"deliveries:{_queue_name(msg)}", msg.deliveries)
    os.kill(os.getpid(), signal.SIGKILL)


def outlive_the_lease(msg: Message) -> None:
    """Work until told the delivery is lost (or 20 s), then report it and try the ack."""
    r = _redis()
    name = _queue_name(msg)
    r.rpush(f"started:{name}", f"{msg.id}/{msg.deliveries}")
    end = time.monotonic() + 20
    while not msg.lost and time.monotonic() < end:
        time.sleep(0.02)
    queue = ReliableQueue(r, name, visibility_timeout=1.0)
    acked = queue.ack(msg)
    r.rpush(f"outcome:{name}", f"{msg.id}/{msg.deliveries} lost={msg.lost} acked={acked}")
