"""Calls every script a few hundred times, for the server-cost measurement."""

from __future__ import annotations

from collections.abc import Callable

from ..registry import default_registry
from .cases import Bench

__all__ = ["exercise"]


def exercise(b: Bench, drain: Callable[[], None]) -> None:
    """Run each primitive's operations; ``drain`` collects SLOWLOG between steps."""
    n = 50 if b.quick else 300
    registry = default_registry()
    for _ in range(n):
        registry.call(b.client, "server_time")
    drain()
