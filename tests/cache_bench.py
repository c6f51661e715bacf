"""Quick hit-path measurement: ``Cache.get_or_set`` on a hit vs a plain redis-py ``GET`` of
the same value, in the same run, interleaved rounds, median of rounds.

    .venv/bin/python tests/cache_bench.py [--url redis://...] [--rounds 9] [--n 5000]

Without ``--url`` it starts its own redis-server on a free port.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import redis

from pyredis_atomic import Cache
from pyredis_atomic.testing.server import RedisServer

VALUE = {"id": 42, "name": "espresso machine", "price": 249.0, "tags": ["kitchen", "coffee"]}


def rate(n: int, op: Callable[[], Any]) -> float:
    began = time.perf_counter()
    for _ in range(n):
        op()
    return n / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--n", type=int, default=5000)
    opts = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = opts.url
        if url is None:
            server = RedisServer().start()
            stack.callback(server.cleanup)
            url = server.url
        client = redis.Redis.from_url(url)
        payload = json.dumps(VALUE).encode()
        client.set("bench:plain", payload)
        cache = Cache(client, "bench", ttl=3600)
        cache.set("k", VALUE)
        raw_cache = Cache(client, "bench-raw", ttl=3600, serializer="raw")
        raw_cache.set("k", payload)
        ops: dict[str, Callable[[], Any]] = {
            "GET": lambda: client.get("bench:plain"),
            "GET+json.loads": lambda: json.loads(client.get("bench:plain")),  # type: ignore[arg-type]
            "get_or_set json": lambda: cache.get_or_set("k", dict),
            "get_or_set raw": lambda: raw_cache.get_or_set("k", bytes),
        }
        results: dict[str, list[float]] = {k: [] for k in ops}
        for op in ops.values():
            rate(500, op)
        for _ in range(opts.rounds):
            for name, op in ops.items():
                results[name].append(rate(opts.n, op))
        med = {k: statistics.median(v) for k, v in results.items()}
        for name, value in med.items():
            print(f"{name:18s} {value:10.0f} ops/s")
        print(f"get_or_set json / GET            = {med['get_or_set json'] / med['GET']:.3f}")
        print(f"get_or_set raw  / GET            = {med['get_or_set raw'] / med['GET']:.3f}")
        print(f"get_or_set json / GET+json.loads = "
              f"{med['get_or_set json'] / med['GET+json.loads']:.3f}")
        client.close()


if __name__ == "__main__":
    main()
