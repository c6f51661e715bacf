"""Helpers shared by the fault tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Workers:
    """Run functions in threads until ``stop`` is set; collect every exception they raise.

    A fault test's first invariant is usually "no error reaches the user": :meth:`join`
    re-raises the first error any worker saw.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def start(self, target: Callable[..., Any], *args: Any) -> None:
        def run() -> None:
            try:
                target(*args)
            except BaseException as exc:
                self.errors.append(exc)
                self.stop.set()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self._threads.append(t)

    def join(self, timeout: float = 60.0) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(timeout)
            assert not t.is_alive(), "a worker thread hung"
        if self.errors:
            raise self.errors[0]
