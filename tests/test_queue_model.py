"""A hypothesis state machine: ReliableQueue against a Python model of pending (one list per
priority), in flight, delayed, dead (with recorded failures), dedup keys and delivery counts.
"expire_all" puts every lease deadline into the past (standing for time passing),
"make_due" does the same for delayed messages."""

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
from pyredis_atomic._core.replies import as_str
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
        self.ready: dict[int, list[str]] = {p: [] for p in range(4)}  # ids, front first
        self.priority: dict[str, int] = {}     # id -> priority
        self.dedup: dict[str, str] = {}        # dedup key -> id, while that message is queued
        self.failures: dict[str, str] = {}     # dead id -> failure recorded by its last nack
        self.counts: dict[str, int] = {}       # id -> deliveries so far
        self.inflight: dict[str, int] = {}     # id -> current delivery number
        self.expired: set[str] = set()         # in flight, lease deadline in the past
        self.delayed: dict[str, bool] = {}     # id -> due
        self.dead: dict[str, tuple[int, str]] = {}
        self.held: list[Message] = []          # every delivery handed out (some stale)

    # -- the model's housekeeping, as the claim script does it ---------------------------
    @property
    def pending(self) -> list[str]:
        """Every ready id in claim order: highest priority first, each list front first."""
        return [m for p in (3, 2, 1, 0) for m in self.ready[p]]

    def _take(self, n: int) -> list[str]:
        out: list[str] = []
        for p in (3, 2, 1, 0):
            lst = self.ready[p]
            k = min(n - len(out), len(lst))
            out += lst[:k]
            del lst[:k]
        return out

    def _forget_dedup(self, mid: str) -> None:
        for key, owner in list(self.dedup.items()):
            if owner == mid:
                del self.dedup[key]

    def _bury(self, mid: str, deliveries: int, reason: str) -> None:
        self.dead[mid] = (deliveries, reason)
        self._forget_dedup(mid)

    def _receipt(self, mid: str) -> str:
        return f"{mid}/{self.inflight[mid]}"

    def _housekeeping(self) -> int:
        # Expired leases: all deadlines are equal (0), so Redis orders them by member.
        expired = sorted(self.expired, key=self._receipt)
        front: dict[int, list[str]] = {p: [] for p in range(4)}
        for mid in expired:
            d = self.inflight.pop(mid)
            if d >= MAX_DELIVERIES:
                self._bury(mid, d, "expired")
            else:
                front[self.priority[mid]].append(mid)
        self.expired.clear()
        for p, ids in front.items():
            self.ready[p][:0] = ids
        due = sorted((m for m, is_due in self.delayed.items() if is_due),
                     key=lambda m: f"{m}/{self.counts[m]}")
        for mid in due:
            del self.delayed[mid]
            self.ready[self.priority[mid]].append(mid)
        return len(expired)

    def _new(self, mid: str, payload: bytes, priority: int) -> None:
        assert mid not in self.payloads
        self.payloads[mid] = payload
        self.counts[mid] = 0
        self.priority[mid] = priority

    # -- rules ---------------------------------------------------------------------------
    @rule(payload=st.binary(max_size=8), delay=st.booleans(), priority=st.integers(0, 3),
          dedup_key=st.none() | st.sampled_from(["a", "b"]))
    def push(self, payload: bytes, delay: bool, priority: int, dedup_key: str | None) -> None:
        mid = self.q.push(payload, delay=30 if delay else 0, priority=priority,
                          dedup_key=dedup_key)
        if dedup_key is not None and dedup_key in self.dedup:
            assert mid == self.dedup[dedup_key]  # nothing pushed
            return
        self._new(mid, payload, priority)
        if dedup_key is not None:
            self.dedup[dedup_key] = mid
        if delay:
            self.delayed[mid] = False
        else:
            self.ready[priority].append(mid)

    @rule(payloads=st.lists(st.sampled_from([b"", b"same", b"\x00\xff"]), min_size=1,
                            max_size=4), priority=st.integers(0, 3))
    def push_many(self, payloads: list[bytes], priority: int) -> None:
        ids = self.q.push_many(payloads, priority=priority)
        assert len(set(ids)) == len(ids)
        for mid, payload in zip(ids, payloads, strict=True):
            self._new(mid, payload, priority)
            self.ready[priority].append(mid)

    @rule(n=st.integers(1, 3))
    def pop(self, n: int) -> None:
        got = self.q.pop() if n == 1 else self.q.pop_many(n)
        msgs = [got] if isinstance(got, Message) else (got or [])
        self._housekeeping()
        want = self._take(n)
        assert [m.id for m in msgs] == want
        for m in msgs:
            assert m.priority == self.priority[m.id]
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
            self._forget_dedup(m.id)
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
            self._forget_dedup(m.id)
        self._housekeeping()
        if self.pending:
            [mid] = self._take(1)
            assert nxt is not None
            assert nxt.id == mid
            self.counts[mid] += 1
            self.inflight[mid] = self.counts[mid]
            assert nxt.deliveries == self.counts[mid]
            self.held.append(nxt)
        else:
            assert nxt is None

    @precondition(lambda self: self.held)
    @rule(data=st.data(), delay=st.booleans(), counted=st.booleans(), failed=st.booleans())
    def nack(self, data: st.DataObject, delay: bool, counted: bool, failed: bool) -> None:
        m = data.draw(st.sampled_from(self.held))
        current = self.inflight.get(m.id) == m.deliveries
        failure = ValueError(f"boom {m.id}") if failed else None
        self.q.nack(m, delay=30 if delay else 0, counted=counted, failure=failure)
        if not current:
            return
        del self.inflight[m.id]
        self.expired.discard(m.id)
        if not counted:
            self.counts[m.id] -= 1  # not an attempt: the next delivery has this number again
        elif m.deliveries >= MAX_DELIVERIES:
            self._bury(m.id, m.deliveries, "nacked")
            if failed:
                self.failures[m.id] = f"boom {m.id}"
            return
        if delay:
            self.delayed[m.id] = False
        else:
            self.ready[self.priority[m.id]].insert(0, m.id)

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
        self.failures.pop(oldest.id, None)
        [new] = [i for i in all_payload_ids(self.client, self.q) if i not in self.payloads]
        priority = self.priority[oldest.id]
        self._new(new, payload, priority)  # same priority, no dedup key
        self.ready[priority].append(new)

    # -- invariants ----------------------------------------------------------------------
    @invariant()
    def counts_match(self) -> None:
        stats = self.q.stats()
        assert stats["pending"] == len(self.pending)
        assert stats["pending_by_priority"] == [len(self.ready[p]) for p in range(4)]
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
    def dedup_keys_point_at_queued_messages(self) -> None:
        stored = {as_str(k): as_str(v)
                  for k, v in self.client.hgetall(self.q.keys["dedup"]).items()}
        assert stored == self.dedup

    @invariant()
    def dead_letters_keep_their_history(self) -> None:
        if not self.dead:
            return
        letters = self.q.dead_letters(limit=1000)
        got = {m.id: (m.deliveries, m.dead_reason) for m in letters}
        assert got == self.dead
        for m in letters:
            want = self.failures.get(m.id)
            if want is None:
                assert m.failure is None
            else:
                assert m.failure is not None
                assert (m.failure.type, m.failure.message) == ("ValueError", want)
                assert "test_queue_model.py" not in m.failure.traceback  # never raised


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


