"""Timing for the benchmark: interleaved rounds, so that ours and the baselines share the
same noise (the machine is shared; only ratios measured in one run mean anything)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Result", "Stat", "interleaved"]


@dataclass
class Stat:
    """Operations per second over the timed rounds of one variant."""

    samples: list[float]

    @property
    def median(self) -> float:
        """Median ops/s."""
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        """Slowest round."""
        return min(self.samples)

    @property
    def high(self) -> float:
        """Fastest round."""
        return max(self.samples)


@dataclass
class Result:
    """One row of the benchmark table."""

    group: str
    case: str
    value: float  # ops/s unless ``unit`` says otherwise
    unit: str = "ops/s"
    low: float | None = None
    high: float | None = None
    baseline: str | None = None
    ratio: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def interleaved(
    variants: dict[str, Callable[[], object]],
    *,
    ops: int,
    rounds: int,
    warmup_ops: int,
    slices: int = 10,
    progress: Callable[[str], None] = lambda s: None,
) -> dict[str, Stat]:
    """Time each variant (one call = one operation) over ``rounds`` rounds of ``ops`` calls.

    A round is cut into ``slices`` short runs per variant, taken in turn with the order
    rotated from slice to slice: on a shared machine the load changes within a second, and
    variants that alternate every few dozen milliseconds see the same load, so the per-round
    ratio between them is far steadier than with one long run of each per round.
    """
    for name, fn in variants.items():
        for _ in range(warmup_ops):
            fn()
        progress(f"  warmed up {name}")
    samples: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    if not names:
        return {}
    slices = max(1, min(slices, ops))
    per_slice = [ops // slices + (1 if i < ops % slices else 0) for i in range(slices)]
    turn = 0
    for _ in range(rounds):
        spent = dict.fromkeys(names, 0.0)
        for n in per_slice:
            turn += 1
            for name in names[turn % len(names):] + names[:turn % len(names)]:
                fn = variants[name]
                start = time.perf_counter()
                for _ in range(n):
                    fn()
                spent[name] += time.perf_counter() - start
        for name in names:
            samples[name].append(ops / spent[name])
    return {name: Stat(s) for name, s in samples.items()}
