"""What the quick benchmarks (``tests/*_bench.py``) share: arguments, a server, timing."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis

from pyredis_atomic.testing.server import RedisServer


def parse_args(doc: str | None, n: int) -> argparse.Namespace:
    """``--url`` (default: a server of our own), ``--rounds``, ``--n`` (ops per round)."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--url")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--n", type=int, default=n)
    return parser.parse_args()


@contextlib.contextmanager
def bench_client(url: str | None) -> Iterator[redis.Redis]:
    """A client on ``url``, or on a redis-server started for the run (stopped after)."""
    with contextlib.ExitStack() as stack:
        if url is None:
            server = RedisServer().start()
            stack.callback(server.cleanup)
            url = server.url
        client = redis.Redis.from_url(url)
        stack.callback(client.close)
        yield client


def rate(n: int, op: Callable[[], Any]) -> float:
    """Operations per second of ``n`` calls of ``op``."""
    began = time.perf_counter()
    for _ in range(n):
        op()
    return n / (time.perf_counter() - began)


def interleaved(ops: dict[str, Callable[[], Any]], rounds: int, n: int) -> dict[str, float]:
    """Median rate of each op over ``rounds`` rounds, the ops taking turns in each round
    (a noisy machine slows them alike), after a short warm-up."""
    import statistics

    for op in ops.values():
        rate(300, op)
    results: dict[str, list[float]] = {k: [] for k in ops}
    for _ in range(rounds):
        for name, op in ops.items():
            results[name].append(rate(n, op))
    return {k: statistics.median(v) for k, v in results.items()}
