"""``push_many`` with dedup keys behaves as ``push``, per message (issue 14, defect 1).

A hypothesis state machine drives ``push``, ``push_many`` (with keys repeated inside a batch
and keys already queued), pops, acks and nacks against a Python model: a dedup key maps to
the one queued message that carries it until that message is acked; a push with a mapped
key queues nothing and returns the mapped id.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from pyredis_atomic import Message, ReliableQueue
from pyredis_atomic.testing import RedisServer

_names = itertools.count()
# Few keys, so batches repeat them and later pushes meet keys that are still queued.
KEYS = st.sampled_from(["a", "b", "c", "d"])
ITEMS = st.lists(st.tuples(st.binary(max_size=8), st.one_of(st.none(), KEYS)),
                 min_size=1, max_size=8)


class DedupModel(RuleBasedStateMachine):
    client: redis.Redis

    @initialize()
    def setup(self) -> None:
        self.q = ReliableQueue(self.client, f"dedup-{next(_names)}", visibility_timeout=3600,
                               max_deliveries=1000)
        self.pending: list[str] = []           # ids, front first
        self.payloads: dict[str, bytes] = {}   # queued id -> payload
        self.keyed: dict[str, str] = {}        # dedup key -> queued id
        self.keyof: dict[str, str] = {}        # queued id -> its dedup key
        self.held: list[Message] = []          # in flight
        self.seen: set[str] = set()            # every id ever returned for a new message

    def _expect(self, payload: bytes, key: str | None, got: str) -> None:
        """Apply one push to the model and check the id the queue returned for it."""
        if key is not None and key in self.keyed:
            assert got == self.keyed[key], (key, got, self.keyed)
            return
        assert got not in self.seen, f"id {got} reused"
        self.seen.add(got)
        self.pending.append(got)
        self.payloads[got] = payload
        if key is not None:
            self.keyed[key] = got
            self.keyof[got] = key

    @rule(items=ITEMS)
    def push_many(self, items: list[tuple[bytes, str | None]]) -> None:
        keys = [k for _, k in items if k is not None]
        if len(keys) == len(items):
            ids = self.q.push_many([p for p, _ in items], dedup_keys=keys)
        elif not keys:
            ids = self.q.push_many([p for p, _ in items])
        else:
            # push_many takes keys for all or none: the mixed batch goes one by one.
            ids = [self.q.push(p, dedup_key=k) for p, k in items]
        assert len(ids) == len(items)
        for (payload, key), got in zip(items, ids, strict=True):
            self._expect(payload, key, got)

    @rule(payload=st.binary(max_size=8), key=KEYS)
    def push(self, payload: bytes, key: str) -> None:
        self._expect(payload, key, self.q.push(payload, dedup_key=key))

    @precondition(lambda self: bool(self.pending))
    @rule()
    def pop(self) -> None:
        msg = self.q.pop()
        assert msg is not None
        front = self.pending.pop(0)
        assert (msg.id, msg.payload) == (front, self.payloads[front])
        self.held.append(msg)

    @precondition(lambda self: bool(self.held))
    @rule(i=st.integers(min_value=0, max_value=100))
    def ack(self, i: int) -> None:
        msg = self.held.pop(i % len(self.held))
        assert self.q.ack(msg)
        del self.payloads[msg.id]
        key = self.keyof.pop(msg.id, None)
        if key is not None:
            # Acked: the key is free again, a later push with it queues a new message.
            del self.keyed[key]

    @precondition(lambda self: bool(self.held))
    @rule(i=st.integers(min_value=0, max_value=100))
    def nack(self, i: int) -> None:
        msg = self.held.pop(i % len(self.held))
        self.q.nack(msg)
        self.pending.insert(0, msg.id)        # back at the front, still carrying its key

    @invariant()
    def counts_match(self) -> None:
        if not hasattr(self, "q"):
            return
        stats = self.q.stats()
        assert (stats["pending"], stats["in_flight"]) == (len(self.pending), len(self.held))


@pytest.fixture
def dedup_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    yield client
    client.close()


def test_push_many_dedups_as_push_does(dedup_client: redis.Redis) -> None:
    DedupModel.client = dedup_client
    run_state_machine_as_test(DedupModel, settings=settings(stateful_step_count=30))


def test_same_key_twice_in_one_batch(dedup_client: redis.Redis) -> None:
    """The issue's example, as written: one message queued, both ids the same, and the key
    still maps to it after a pop and a nack."""
    q = ReliableQueue(dedup_client, f"dedup-{next(_names)}")
    first, second = q.push_many([b"first", b"second"], dedup_keys=["same", "same"])
    assert first == second
    assert q.stats()["pending"] == 1
    msg = q.pop()
    assert msg is not None
    assert msg.payload == b"first"
    q.nack(msg)
    assert q.push(b"x", dedup_key="same") == first
    assert q.stats()["pending"] == 1
