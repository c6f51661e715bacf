"""A hypothesis state machine: several Lock objects over a few names, checked step by step
against a Python model of who holds what and the last fence issued. "expire" deletes a
lock's key, standing for its lease running out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from pyredis_atomic import Lock, LockNotOwnedError
from pyredis_atomic._core.lock import lock_keys

NAMES = ["a", "b{x}}"]
OBJECTS_PER_NAME = 3
LOCKS = st.integers(min_value=0, max_value=len(NAMES) * OBJECTS_PER_NAME - 1)


class LockModel(RuleBasedStateMachine):
    """The model: ``holder[name]`` is the index of the lock object holding it (or None),
    ``last[name]`` the last fence issued; per object, whether it holds a token locally
    and whether it knows it lost the lock."""

    client: redis.Redis

    def __init__(self) -> None:
        super().__init__()
        self.locks: list[Lock] = []
        self.holder: dict[str, int | None] = {}
        self.last: dict[str, int] = {}
        self.local: list[bool] = []
        self.lost: list[bool] = []
        self.fence: list[int | None] = []

    @initialize()
    def setup(self) -> None:
        self.client.flushall()
        self.locks = [Lock(self.client, NAMES[i // OBJECTS_PER_NAME], ttl=60.0)
                      for i in range(len(NAMES) * OBJECTS_PER_NAME)]
        self.holder = dict.fromkeys(NAMES)
        self.last = dict.fromkeys(NAMES, 0)
        self.local = [False] * len(self.locks)
        self.lost = [False] * len(self.locks)
        self.fence = [None] * len(self.locks)

    def _name(self, i: int) -> str:
        return NAMES[i // OBJECTS_PER_NAME]

    @rule(i=LOCKS)
    def acquire(self, i: int) -> None:
        name = self._name(i)
        if self.local[i] and not self.lost[i]:
            with pytest.raises(RuntimeError, match="not reentrant"):
                self.locks[i].acquire(blocking=False)
            return
        got = self.locks[i].acquire(blocking=False)
        assert got == (self.holder[name] is None)
        if got:
            self.last[name] += 1
            assert self.locks[i].fence == self.last[name]
            self.holder[name] = i
            self.local[i] = True
            self.lost[i] = False
            self.fence[i] = self.last[name]

    @rule(i=LOCKS)
    def release(self, i: int) -> None:
        name = self._name(i)
        if not self.local[i]:
            with pytest.raises(LockNotOwnedError):
                self.locks[i].release()
            return
        self.local[i] = False
        if self.holder[name] == i:
            self.locks[i].release()
            self.holder[name] = None
        else:
            with pytest.raises(LockNotOwnedError):
                self.locks[i].release()  # stale: must leave the new holder intact
            assert self.locks[i].lost

    @rule(i=LOCKS)
    def extend(self, i: int) -> None:
        name = self._name(i)
        if self.local[i] and self.holder[name] == i:
            self.locks[i].extend(30.0)
            assert 29_000 < self.client.pttl(lock_keys(name).lock) <= 30_000
            return
        with pytest.raises(LockNotOwnedError):
            self.locks[i].extend()
        if self.local[i]:
            self.lost[i] = True
            assert self.locks[i].lost

    @rule(i=LOCKS)
    def owned(self, i: int) -> None:
        assert self.locks[i].owned() == (self.local[i] and self.holder[self._name(i)] == i)

    @rule(name=st.sampled_from(NAMES))
    def expire(self, name: str) -> None:
        self.client.delete(lock_keys(name).lock)
        self.holder[name] = None

    @invariant()
    def server_agrees(self) -> None:
        if not self.locks:
            return
        for name in NAMES:
            info = Lock.inspect(self.client, name)
            if self.last[name] == 0:
                assert info is None
                continue
            assert info is not None
            assert info.held == (self.holder[name] is not None)
            assert info.last_fence == self.last[name]
            holder = self.holder[name]
            if holder is not None:
                assert info.fence == self.fence[holder]
                assert self.locks[holder].fence == info.fence


def test_lock_state_machine(make_client: Callable[..., redis.Redis],
                            client_kwargs: dict[str, Any]) -> None:
    LockModel.client = make_client(**client_kwargs)
    run_state_machine_as_test(
        LockModel, settings=settings(max_examples=25, stateful_step_count=40, deadline=None))
