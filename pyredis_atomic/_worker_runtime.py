"""What the sync :class:`~pyredis_atomic.Worker` does differently from the asyncio one:
threads instead of tasks, a flag instead of cancellation, ``signal.signal``. Hand-written;
the asyncio twin is :mod:`pyredis_atomic.asyncio._worker_runtime` (same names, same
signatures). The worker itself is generated from :mod:`pyredis_atomic.asyncio.worker`.
"""

from __future__ import annotations

import contextlib
import inspect
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["INTERRUPTS", "Cancelled", "Channel", "Interrupted", "Notice", "abandon",
           "check_handler", "install_signals", "join", "run_handler", "scope", "sleep", "spawn"]

# What interrupts run() from outside (asyncio: the task's cancellation).
Cancelled = KeyboardInterrupt

HANDLER_KIND = "a function (def handle(msg))"


def check_handler(handler: object) -> None:
    """Raise TypeError unless ``handler`` is a plain callable (not a coroutine function)."""
    if not callable(handler):
        raise TypeError(f"handler must be {HANDLER_KIND}, got {type(handler).__name__}")
    target = type(handler).__call__  # a callable object's method
    if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(target):
        raise TypeError("handler is a coroutine function: use pyredis_atomic.asyncio.Worker")


class Notice:
    """A flag that wakes waiters; ``set`` may be called from any thread."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def bind(self) -> None:
        """Nothing to remember (the asyncio twin remembers its loop)."""

    def set(self) -> None:
        """Set the flag."""
        self._event.set()

    def clear(self) -> None:
        """Clear the flag."""
        self._event.clear()

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._event.is_set()

    def wait(self, timeout: float | None) -> bool:
        """Wait until set or ``timeout`` seconds (None: forever); True if set. Waits in
        slices of at most one second, so signal handlers run in the main thread."""
        end = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while not self._event.is_set():
            left = 1.0 if end is None else min(1.0, end - time.monotonic())
            if left <= 0:
                break
            self._event.wait(left)
        return self._event.is_set()


class Channel:
    """A FIFO of prefetched messages handed to the handler threads."""

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._cond = threading.Condition()
        self._woken = 0

    def __len__(self) -> int:
        return len(self._items)

    def put_many(self, items: list[Any]) -> None:
        """Append items and wake the takers."""
        with self._cond:
            self._items.extend(items)
            self._cond.notify(len(items))

    def take_all(self) -> list[Any]:
        """Remove and return every item (shutdown)."""
        with self._cond:
            items = list(self._items)
            self._items.clear()
            return items

    def wake(self) -> None:
        """Wake every taker (shutdown)."""
        with self._cond:
            self._woken += 1
            self._cond.notify_all()

    def get(self, timeout: float) -> Any | None:
        """The next item, or None after ``timeout`` seconds or a :meth:`wake`."""
        with self._cond:
            woken = self._woken
            end = time.monotonic() + timeout
            while not self._items and self._woken == woken:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._items.popleft() if self._items else None


def scope() -> int:
    """What one heartbeat renewer serves: the whole process (the asyncio twin: the running
    event loop)."""
    return 0


def sleep(seconds: float) -> None:
    """Sleep."""
    time.sleep(seconds)


def spawn(func: Callable[..., Any], *args: Any, name: str) -> threading.Thread:
    """Run ``func(*args)`` concurrently: a daemon thread (a worker that must exit at once
    on a second signal is not held back by a handler that never returns)."""
    thread = threading.Thread(target=func, args=args, name=name, daemon=True)
    thread.start()
    return thread


def join(handles: list[Any], timeout: float | None) -> list[Any]:
    """Wait up to ``timeout`` seconds for the threads to end; return those still running."""
    end = None if timeout is None else time.monotonic() + timeout
    for h in handles:
        while h.is_alive():
            left = 1.0 if end is None else min(1.0, end - time.monotonic())
            if left <= 0:
                break
            h.join(left)
    return [h for h in handles if h.is_alive()]


def abandon(handles: list[Any]) -> None:
    """Threads cannot be stopped: those still running at the end of the grace period are
    left to end on their own (daemon threads: they end with the process)."""


def run_handler(handler: Callable[[Any], Any], msg: Any, delivery: Any) -> None:
    """Call ``handler(msg)`` in this thread. It cannot be interrupted: a lost lease or a
    handler timeout sets ``msg.lost``, which a long handler may check."""
    handler(msg)


def _nothing() -> None:
    return None


class Interrupted(Exception):
    """A handler stopped by the worker (never raised in the sync API)."""


# Threads cannot be cancelled: a timeout is noticed by the heartbeat, which gives the
# message back and sets msg.lost; the thread stays busy until the handler returns.
INTERRUPTS = False


def install_signals(on_signal: Callable[[int], None]) -> Callable[[], None]:
    """Call ``on_signal(signum)`` on SIGTERM and SIGINT (only in the main thread; elsewhere
    nothing is installed). Returns the function that restores the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return _nothing
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        # Not in the signal handler itself: it runs in the main thread between two
        # bytecodes, possibly while that thread holds a lock on_signal needs.
        threading.Thread(target=on_signal, args=(signum,), daemon=True,
                         name="pyredis-atomic-worker-signal").start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, old)

    return restore
