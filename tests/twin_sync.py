"""What the shared test sources need that truly differs between the two APIs (sync side).

The generated sync twins of the shared tests import these names instead of
``twin_async``'s: the same API with threads and ``time.sleep``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# What the reprs of this API's primitives start with: ``asyncio.Lock(...)``, ``Lock(...)``.
REPR_PREFIX = ""

__all__ = ["REPR_PREFIX", "Event", "Spawned", "running", "settle", "sleep", "spawn", "until"]

sleep = time.sleep


def settle(value: Any) -> Any:
    """``value`` itself (asyncio API: awaited if it is awaitable)."""
    return value


def running(name: str) -> list[Any]:
    """The live threads of the process whose name contains ``name`` (asyncio API: the
    background tasks of the event loop, not done)."""
    return [t for t in threading.enumerate() if name in t.name]


def until(cond: Callable[[], Any], timeout: float = 60.0) -> None:
    """Wait until ``cond()`` is true, polling every 20 ms; ``AssertionError`` after
    ``timeout`` seconds (asyncio API: ``cond()`` may return an awaitable)."""
    end = time.monotonic() + timeout
    while not settle(cond()):
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


class Event:
    """A flag to wait for: a ``threading.Event`` (asyncio API: an ``asyncio.Event``)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float = 10.0) -> bool:
        """True once set; False if ``seconds`` pass first."""
        return self._event.wait(seconds)


class Spawned(Generic[T]):
    """A call running in the background of the test: a daemon thread (asyncio API: a task)."""

    def __init__(self, fn: Callable[..., T], *args: Any, delay: float = 0.0) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(delay, fn, args),
                                        daemon=True)
        self._thread.start()

    def _run(self, delay: float, fn: Callable[..., T], args: tuple[Any, ...]) -> None:
        try:
            if delay:
                time.sleep(delay)
            self._value = fn(*args)
        except BaseException as exc:  # handed to result()
            self._error = exc

    def done(self) -> bool:
        """Whether the call has returned or raised."""
        return not self._thread.is_alive()

    def result(self, seconds: float = 10.0) -> T:
        """The call's return value (or its exception), waiting at most ``seconds`` for it;
        ``TimeoutError`` if it is still running then (it keeps running)."""
        self._thread.join(seconds)
        if self._thread.is_alive():
            raise TimeoutError(f"still running after {seconds} s")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def spawn(fn: Callable[..., T], *args: Any, delay: float = 0.0) -> Spawned[T]:
    """Start ``fn(*args)`` in the background (a daemon thread; asyncio API: a task), after
    sleeping ``delay`` s there."""
    return Spawned(fn, *args, delay=delay)
