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
    progress: Callable[[str], None] = lambda s: None,
) -> dict[str, Stat]:
    """Time each variant (one call = one operation) over ``rounds`` rounds of ``ops`` calls,
    alternating the order of the variants from round to round."""
    for name, fn in variants.items():
        for _ in range(warmup_ops):
            fn()
        progress(f"  warmed up {name}")
    samples: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    for r in range(rounds):
        for name in order if r % 2 == 0 else reversed(order):
            fn = variants[name]
            start = time.perf_counter()
            for _ in range(ops):
                fn()
            samples[name].append(ops / (time.perf_counter() - start))
    return {name: Stat(s) for name, s in samples.items()}
