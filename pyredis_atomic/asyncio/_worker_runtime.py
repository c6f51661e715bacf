"""What the asyncio :class:`~pyredis_atomic.asyncio.Worker` does differently from the sync
one: tasks instead of threads, cancellation instead of a flag, loop signal handlers.
Hand-written; the sync twin is :mod:`pyredis_atomic._worker_runtime` (same names, same
signatures). The worker itself (:mod:`pyredis_atomic.asyncio.worker`) is one source for
both APIs.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["INTERRUPTS", "Cancelled", "Channel", "Interrupted", "Notice", "abandon",
           "check_handler", "install_signals", "join", "run_handler", "scope", "sleep", "spawn"]

# What interrupts run() from outside: its task was cancelled (sync: KeyboardInterrupt).
Cancelled = asyncio.CancelledError

HANDLER_KIND = "a coroutine function (async def handle(msg))"


def check_handler(handler: object) -> None:
    """Raise TypeError unless ``handler`` can be awaited per message."""
    if not callable(handler):
        raise TypeError(f"handler must be {HANDLER_KIND}, got {type(handler).__name__}")
    target = type(handler).__call__  # a callable object's method
    if not (inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(target)):
        raise TypeError(f"handler must be {HANDLER_KIND}; for a plain function use "
                        f"pyredis_atomic.Worker")


class Notice:
    """A flag that wakes waiters; ``set`` may be called from any thread (``stop()`` from a
    signal handler or another thread)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> None:
        """Remember the running loop (called in run(), before any other thread sets it)."""
        self._loop = asyncio.get_running_loop()

    def set(self) -> None:
        """Set the flag (thread-safe)."""
        loop = self._loop
        if loop is None or _on_loop(loop):
            self._event.set()
        else:
            with contextlib.suppress(RuntimeError):  # loop closed: nobody waits any more
                loop.call_soon_threadsafe(self._event.set)

    def clear(self) -> None:
        """Clear the flag."""
        self._event.clear()

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._event.is_set()

    async def wait(self, timeout: float | None) -> bool:
        """Wait until set or ``timeout`` seconds (None: forever); True if set."""
        if timeout is None:
            await self._event.wait()
            return True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._event.wait(), max(0.0, timeout))
        return self._event.is_set()


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class Channel:
    """A FIFO of prefetched messages handed to the handler tasks."""

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put_many(self, items: list[Any]) -> None:
        """Append items and wake the takers."""
        self._items.extend(items)
        if self._items:
            self._ready.set()

    def take_all(self) -> list[Any]:
        """Remove and return every item (shutdown)."""
        items = list(self._items)
        self._items.clear()
        return items

    def wake(self) -> None:
        """Wake every taker (shutdown)."""
        self._ready.set()

    async def get(self, timeout: float) -> Any | None:
        """The next item, or None after ``timeout`` seconds or a :meth:`wake`."""
        if not self._items:
            self._ready.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        return self._items.popleft() if self._items else None


def scope() -> int:
    """What one heartbeat renewer serves: the running event loop (the sync twin: the whole
    process)."""
    return id(asyncio.get_running_loop())


async def sleep(seconds: float) -> None:
    """Sleep (cancellable)."""
    await asyncio.sleep(seconds)


def spawn(func: Callable[..., Any], *args: Any, name: str) -> asyncio.Task[Any]:
    """Run ``await func(*args)`` concurrently: a task."""
    return asyncio.get_running_loop().create_task(func(*args), name=name)


async def join(handles: list[Any], timeout: float | None) -> list[Any]:
    """Wait up to ``timeout`` seconds for the tasks to end; return those still running."""
    pending = [h for h in handles if not h.done()]
    if pending and (timeout is None or timeout > 0):
        _, still = await asyncio.wait(pending, timeout=timeout)
        return list(still)
    return pending


async def abandon(handles: list[Any]) -> None:
    """Cancel tasks still running at the end of the grace period and wait for them."""
    for h in handles:
        h.cancel()
    if handles:
        await asyncio.wait(handles)


async def run_handler(handler: Callable[[Any], Any], msg: Any, delivery: Any) -> None:
    """Run ``await handler(msg)`` in a task of its own, so that ``delivery.interrupt()``
    (a lost lease, a handler timeout, the end of the grace period) cancels the handler and
    nothing else. Raises what the handler raised; :class:`Interrupted` if it was
    interrupted; a cancellation of the caller cancels the handler too (awaiting the task
    directly: no ``asyncio.wait`` future and callbacks per message)."""
    task = asyncio.ensure_future(handler(msg))
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()

    delivery.interrupt = interrupt
    try:
        await task
    except asyncio.CancelledError:
        if task.cancelled() and not _caller_cancelled(interrupted):
            raise Interrupted from None
        raise
    finally:
        delivery.interrupt = _nothing


def _caller_cancelled(interrupted: bool) -> bool:
    """Whether the task running the handler's caller was cancelled (Python 3.11+ counts
    cancellation requests; on 3.10, a handler cancelled without an interrupt is taken for
    the caller's cancellation)."""
    cancelling = getattr(asyncio.current_task(), "cancelling", None)
    if cancelling is not None:
        return bool(cancelling() > 0)
    return not interrupted


def _nothing() -> None:
    return None


class Interrupted(Exception):
    """A handler stopped by the worker (its outcome is not used)."""


# asyncio cancels a handler: a timeout is enforced by the handler's own task.
INTERRUPTS = True


def install_signals(on_signal: Callable[[int], None]) -> Callable[[], None]:
    """Call ``on_signal(signum)`` on SIGTERM and SIGINT (loop signal handlers; only in the
    main thread, elsewhere nothing is installed). Returns the function that restores the
    previous handling."""
    if threading.current_thread() is not threading.main_thread():
        return _nothing
    loop = asyncio.get_running_loop()
    done: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            done.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not on this platform/loop
            pass

    def restore() -> None:
        for sig in done:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)

    return restore
