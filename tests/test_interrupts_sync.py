# GENERATED from tests/test_interrupts_async.py by scripts/unasync.py: do not edit.
"""An interruption (asyncio: a cancellation; sync: ``KeyboardInterrupt``) that lands right
after a script ran, its reply lost, frees what that script took.

Shared by the two APIs: ``scripts/unasync.py`` writes ``test_interrupts_sync.py`` from
``test_interrupts_async.py``. The interruption is raised by a registry that runs the call
and then raises instead of returning: what a user's Ctrl-C or ``task.cancel()`` does when
it lands while the reply is on its way.
"""

from __future__ import annotations

from typing import Any

import pytest

from pyredis_atomic import Cache, Lock, Semaphore
from pyredis_atomic._core.calls import Call
from pyredis_atomic._sync import Cancelled
from pyredis_atomic.registry import BoundScript, ScriptRegistry


class Interrupting(ScriptRegistry):
    """Runs script ``script`` once, then raises the API's interruption instead of replying."""

    def __init__(self, script: str) -> None:
        super().__init__()
        self.script = script
        self.armed = True

    def _fire(self, name: str) -> None:
        if self.armed and name == self.script:
            self.armed = False
            raise Cancelled

    def run(self, client: Any, call: Call[Any]) -> Any:
        reply = super().run(client, call)
        self._fire(call.script)
        return reply

    def bind(self, client: Any, name: str, *, raw: bool = False) -> BoundScript:
        bound = super().bind(client, name, raw=raw)
        registry = self

        class Bound(BoundScript):
            __slots__ = ()

            def __call__(self, keys: tuple[Any, ...], args: tuple[Any, ...]) -> Any:
                reply = bound(keys, args)
                registry._fire(name)
                return reply

        return Bound(self, client, bound.script, raw=raw)


def test_cache_frees_the_fill_lease_when_its_first_fetch_is_interrupted(
    client: Any,
) -> None:
    # Drift between the two APIs (issue 13): the sync Cache kept the lease for lock_ttl.
    registry = Interrupting("cache_fetch")
    cache = Cache(client, "c", ttl=30, lock_ttl=30, registry=registry)
    with pytest.raises(Cancelled):
        cache.get_or_set("k", lambda: "v")
    assert not registry.armed  # the fetch ran (and took the lease) before the interruption
    assert cache.inspect("k")["lease"] is None
    assert Cache(client, "c", ttl=30).get_or_set("k", lambda: "w") == "w"


def test_lock_gives_back_what_an_interrupted_acquire_took(client: Any) -> None:
    registry = Interrupting("lock_acquire")
    lock = Lock(client, "l", ttl=30, registry=registry)
    with pytest.raises(Cancelled):
        lock.acquire(blocking=False)
    assert not registry.armed
    assert Lock.inspect(client, "l") is not None
    assert not lock.locked()
    assert Lock(client, "l", ttl=30).acquire(blocking=False)


def test_semaphore_gives_back_what_an_interrupted_acquire_took(client: Any) -> None:
    registry = Interrupting("semaphore_acquire")
    sem = Semaphore(client, "s", 1, ttl=30, registry=registry)
    with pytest.raises(Cancelled):
        sem.acquire(blocking=False)
    assert not registry.armed
    assert sem.count() == 0
