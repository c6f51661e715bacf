"""A hypothesis state machine: ReliableQueue against a Python model of pending, in flight,
delayed, dead and delivery counts. "expire_all" puts every lease deadline into the past
(standing for time passing), "make_due" does the same for delayed messages."""

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
from queue_helpers import all_payload_ids, expire_all, make_due

from pyredis_atomic import Message, ReliableQueue
from pyredis_atomic.testing import RedisServer

MAX_DELIVERIES = 3
_names = itertools.count()


class QueueModel(RuleBasedStateMachine):
    client: redis.Redis

    @initialize()
    def setup(self) -> None:
        self.q = ReliableQueue(self.client, f"model-{next(_names)}", visibility_timeout=3600,
                               max_deliveries=MAX_DELIVERIES)
        self.payloads: dict[str, bytes] = {}
        self.pending: list[str] = []          # ids, front first
        self.counts: dict[str, int] = {}       # id -> deliveries so far
        self.inflight: dict[str, int] = {}     # id -> current delivery number
        self.expired: set[str] = set()         # in flight, lease deadline in the past
        self.delayed: dict[str, bool] = {}     # id -> due
        self.dead: dict[str, tuple[int, str]] = {}
        self.held: list[Message] = []          # every delivery handed out (some stale)

    # -- the model's housekeeping, as the claim script does it ---------------------------
    def _receipt(self, mid: str) -> str:
        return f"{mid}/{self.inflight[mid]}"

    def _housekeeping(self) -> int:
        # Expired leases: all deadlines are equal (0), so Redis orders them by member.
        expired = sorted(self.expired, key=self._receipt)
        front = []
        for mid in expired:
            d = self.inflight.pop(mid)
            if d >= MAX_DELIVERIES:
                self.dead[mid] = (d, "expired")
            else:
                front.append(mid)
        self.expired.clear()
        self.pending[:0] = front
        due = sorted((m for m, is_due in self.delayed.items() if is_due),
                     key=lambda m: f"{m}/{self.counts[m]}")
        for mid in due:
            del self.delayed[mid]
        self.pending.extend(due)
        return len(expired)

    # -- rules ---------------------------------------------------------------------------
    @rule(payload=st.binary(max_size=8), delay=st.booleans())
    def push(self, payload: bytes, delay: bool) -> None:
        mid = self.q.push(payload, delay=30 if delay else 0)
        assert mid not in self.payloads
        self.payloads[mid] = payload
        self.counts[mid] = 0
        if delay:
            self.delayed[mid] = False
        else:
            self.pending.append(mid)

    @rule(payloads=st.lists(st.sampled_from([b"", b"same", b"\x00\xff"]), min_size=1,
                            max_size=4))
    def push_many(self, payloads: list[bytes]) -> None:
        ids = self.q.push_many(payloads)
        assert len(set(ids)) == len(ids)
        for mid, payload in zip(ids, payloads, strict=True):
            self.payloads[mid] = payload
            self.counts[mid] = 0
            self.pending.append(mid)

    @rule(n=st.integers(1, 3))
    def pop(self, n: int) -> None:
        got = self.q.pop() if n == 1 else self.q.pop_many(n)
        msgs = [got] if isinstance(got, Message) else (got or [])
        self._housekeeping()
        want = self.pending[:n]
        del self.pending[:n]
        assert [m.id for m in msgs] == want
        for m in msgs:
            self.counts[m.id] += 1
            self.inflight[m.id] = self.counts[m.id]
            assert m.deliveries == self.counts[m.id]
            assert m.payload == self.payloads[m.id]
            self.held.append(m)

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        m = data.draw(st.sampled_from(self.held))
        current = self.inflight.get(m.id) == m.deliveries
        assert self.q.ack(m) is current
        if current:
            del self.inflight[m.id]
            self.expired.discard(m.id)
            del self.payloads[m.id]
        self._housekeeping()

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def ack_and_pop(self, data: st.DataObject) -> None:
        m = data.draw(st.sampled_from(self.held))
        current = self.inflight.get(m.id) == m.deliveries
        acked, nxt = self.q.ack_and_pop(m)
        assert acked is current
        if current:
            del self.inflight[m.id]
            self.expired.discard(m.id)
            del self.payloads[m.id]
        self._housekeeping()
        if self.pending:
            mid = self.pending.pop(0)
            assert nxt is not None
            assert nxt.id == mid
            self.counts[mid] += 1
            self.inflight[mid] = self.counts[mid]
            assert nxt.deliveries == self.counts[mid]
            self.held.append(nxt)
        else:
            assert nxt is None

    @precondition(lambda self: self.held)
    @rule(data=st.data(), delay=st.booleans())
    def nack(self, data: st.DataObject, delay: bool) -> None:
        m = data.draw(st.sampled_from(self.held))
        current = self.inflight.get(m.id) == m.deliveries
        self.q.nack(m, delay=30 if delay else 0)
        if not current:
            return
        del self.inflight[m.id]
        self.expired.discard(m.id)
        if m.deliveries >= MAX_DELIVERIES:
            self.dead[m.id] = (m.deliveries, "nacked")
        elif delay:
            self.delayed[m.id] = False
        else:
            self.pending.insert(0, m.id)

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def extend(self, data: st.DataObject) -> None:
        m = data.draw(st.sampled_from(self.held))
        current = self.inflight.get(m.id) == m.deliveries
        assert self.q.extend(m) is current
        if current:
            self.expired.discard(m.id)

    @rule()
    def expire_all(self) -> None:
        expire_all(self.client, self.q)
        self.expired = set(self.inflight)

    @rule()
    def make_due(self) -> None:
        make_due(self.client, self.q)
        self.delayed = dict.fromkeys(self.delayed, True)

    @rule()
    def requeue_expired(self) -> None:
        moved = self.q.requeue_expired()
        assert moved == self._housekeeping()

    @precondition(lambda self: self.dead)
    @rule()
    def redrive_one(self) -> None:
        oldest = self.q.dead_letters(limit=1)[0]
        assert self.q.redrive([oldest.id]) == 1
        payload = self.payloads.pop(oldest.id)
        del self.dead[oldest.id]
        [new] = [i for i in all_payload_ids(self.client, self.q) if i not in self.payloads]
        self.payloads[new] = payload
        self.counts[new] = 0
        self.pending.append(new)

    # -- invariants ----------------------------------------------------------------------
    @invariant()
    def counts_match(self) -> None:
        stats = self.q.stats()
        assert stats["pending"] == len(self.pending)
        assert stats["in_flight"] == len(self.inflight)
        assert stats["delayed"] == len(self.delayed)
        assert stats["dead"] == len(self.dead)

    @invariant()
    def nothing_lost_or_leaked(self) -> None:
        assert all_payload_ids(self.client, self.q) == set(self.payloads)
        queued = set(self.pending) | set(self.inflight) | set(self.delayed) | set(self.dead)
        assert queued == set(self.payloads)
        sizes = len(self.pending) + len(self.inflight) + len(self.delayed) + len(self.dead)
        assert sizes == len(self.payloads)  # the four states are disjoint

    @invariant()
    def dead_letters_keep_their_history(self) -> None:
        if not self.dead:
            return
        got = {m.id: (m.deliveries, m.dead_reason) for m in self.q.dead_letters(limit=1000)}
        assert got == self.dead


@pytest.fixture
def model_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    client.flushall()
    yield client
    client.close()


def test_queue_matches_the_model(model_client: redis.Redis) -> None:
    QueueModel.client = model_client
    run_state_machine_as_test(
        QueueModel,
        settings=settings(max_examples=40, stateful_step_count=40, deadline=None),
    )


