"""Targeted hostile inputs found by the fuzz tests, kept as plain regression tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from hostile_values import attempt

from pyredis_atomic import ReliableQueue


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda q: q.push(b"x", dedup_key="\ud800"), id="push-dedup_key"),
        pytest.param(lambda q: q.push_many([b"x"], dedup_keys=["a\udfff"]),
                     id="push_many-dedup_keys"),
        pytest.param(lambda q: q.redrive(["1-1", "\ud800"]), id="redrive-ids"),
    ],
)
def test_queue_lone_surrogates_are_a_value_error_naming_the_argument(
        call: Callable[[ReliableQueue], Any], redis_client: redis.Redis,
        make_client: Callable[..., redis.Redis]) -> None:
    """A str that is not valid Unicode cannot be sent: ValueError naming the argument,
    before anything is sent (not a UnicodeEncodeError from inside redis-py)."""
    q = ReliableQueue(redis_client, "q")
    q.stats()  # connected, server checked
    out = attempt(make_client(), "call", call, q)
    assert isinstance(out.error, ValueError)
    assert not isinstance(out.error, UnicodeError)
    assert "dedup_key" in str(out.error) or "ids[1]" in str(out.error)
    assert redis_client.keys("*") == []


def _every_primitive(client: Any, prefix: Any) -> list[Callable[[], Any]]:
    from pyredis_atomic import BoundedCounter, Cache, Lock, RateLimiter, Semaphore

    return [
        lambda: Lock(client, "n", prefix=prefix),
        lambda: Lock.inspect(client, "n", prefix=prefix),
        lambda: ReliableQueue(client, "n", prefix=prefix),
        lambda: Cache(client, "n", 10, prefix=prefix),
        lambda: BoundedCounter(client, "n", prefix=prefix),
        lambda: Semaphore(client, "n", 2, prefix=prefix),
        lambda: RateLimiter(client, "n", 5, prefix=prefix),
    ]


@pytest.mark.parametrize("prefix", ["\ud800", "app\udfff:"])
def test_a_prefix_that_is_not_unicode_is_refused_up_front(
        prefix: str, redis_client: redis.Redis, make_client: Callable[..., redis.Redis]) -> None:
    probe = make_client()
    for build in _every_primitive(redis_client, prefix):
        out = attempt(probe, "build", build)
        assert isinstance(out.error, ValueError), out
        assert "prefix" in str(out.error)


@pytest.mark.parametrize(
    ("msg_id", "deliveries"),
    [("\ud800", 1), (None, 1), (12, 1), ("1-1 1-2", 1), ("1-1", None), ("1-1", "1 2-1/1")],
    ids=["surrogate", "none-id", "int-id", "space-in-id", "none-deliveries", "str-deliveries"],
)
def test_forged_messages_are_refused_before_anything_is_sent(
        msg_id: Any, deliveries: Any, redis_client: redis.Redis,
        make_client: Callable[..., redis.Redis]) -> None:
    """A Message is a receipt; one forged with fields of the wrong type or characters that
    a receipt cannot hold (a space separates receipts on the wire: '1-1 1-2' would ack
    another message's delivery) is refused up front by ack, ack_many, ack_and_pop, nack
    and extend."""
    from pyredis_atomic import Message

    q = ReliableQueue(redis_client, "q")
    real = q.push(b"x")
    assert q.pop() is not None
    forged = Message(msg_id, b"", deliveries, q.keys["seq"][:-len(":seq")])
    probe = make_client()
    for what, call in [("ack", lambda: q.ack(forged)), ("ack_many", lambda: q.ack_many([forged])),
                       ("ack_and_pop", lambda: q.ack_and_pop(forged)),
                       ("nack", lambda: q.nack(forged)), ("extend", lambda: q.extend(forged))]:
        out = attempt(probe, what, call)
        assert isinstance(out.error, (TypeError, ValueError)), (what, out)
        assert not isinstance(out.error, UnicodeError)
        assert "msg" in str(out.error)
    assert q.stats()["in_flight"] == 1
    assert real
