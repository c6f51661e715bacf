"""A hypothesis state machine: get / set / delete / get_or_set (loaders that return, return
None, or raise) against a Python dict, on a real Redis. TTLs are long so that expiry never
interferes; expiry has its own tests."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pyredis_atomic import Cache
from pyredis_atomic.testing.server import RedisServer

KEYS = st.sampled_from(["a", "b", "{c}", "d:1"])
VALUES = st.none() | st.integers(-5, 5) | st.text(max_size=5) | st.lists(st.integers(0, 3),
                                                                           max_size=3)


class Boom(Exception):
    pass


class CacheModel(RuleBasedStateMachine):
    url: str

    @initialize(cache_none=st.booleans())
    def setup(self, cache_none: bool) -> None:
        self.client = redis.Redis.from_url(self.url)
        self.client.flushall()
        self.cache = Cache(self.client, "model", ttl=600, cache_none=cache_none,
                           early_refresh=0)
        self.cache_none = cache_none
        self.model: dict[str, Any] = {}

    def teardown(self) -> None:
        if hasattr(self, "client"):
            self.client.close()

    @rule(key=KEYS, value=VALUES)
    def set(self, key: str, value: Any) -> None:
        self.cache.set(key, value)
        self.model[key] = value

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        assert self.cache.delete(key) == (key in self.model)
        self.model.pop(key, None)

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        missing = object()
        assert self.cache.get(key, missing) == self.model.get(key, missing)

    @rule(key=KEYS, value=VALUES, outcome=st.sampled_from(["value", "raise"]))
    def get_or_set(self, key: str, value: Any, outcome: str) -> None:
        called: list[int] = []

        def loader() -> Any:
            called.append(1)
            if outcome == "raise":
                raise Boom()
            return value

        if key in self.model:
            assert self.cache.get_or_set(key, loader) == self.model[key]
            assert called == []
            return
        if outcome == "raise":
            with pytest.raises(Boom):
                self.cache.get_or_set(key, loader)
        else:
            assert self.cache.get_or_set(key, loader) == value
            if value is not None or self.cache_none:
                self.model[key] = value
        assert called == [1]

    @invariant()
    def no_lease_left(self) -> None:
        if not hasattr(self, "cache"):
            return
        for key in ("a", "b", "{c}", "d:1"):
            assert self.cache.inspect(key)["lease"] is None


def test_cache_state_machine(redis_server: RedisServer) -> None:
    CacheModel.url = redis_server.url
    CacheModel.TestCase.settings = settings(max_examples=25, stateful_step_count=25,
                                            deadline=None)
    CacheModel.TestCase().runTest()
