"""Quick hit-path measurement: ``Cache.get_or_set`` on a hit vs a plain redis-py ``GET`` of
the same value, in the same run, interleaved rounds, median of rounds.

    .venv/bin/python tests/cache_bench.py [--url redis://...] [--rounds 9] [--n 5000]

Without ``--url`` it starts its own redis-server on a free port.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bench_common import bench_client, interleaved, parse_args

from pyredis_atomic import Cache

VALUE = {"id": 42, "name": "espresso machine", "price": 249.0, "tags": ["kitchen", "coffee"]}


def main() -> None:
    opts = parse_args(__doc__, 5000)
    with bench_client(opts.url) as client:
        payload = json.dumps(VALUE).encode()
        client.set("bench:plain", payload)
        cache = Cache(client, "bench", ttl=3600)
        cache.set("k", VALUE)
        raw_cache = Cache(client, "bench-raw", ttl=3600, serializer="raw")
        raw_cache.set("k", payload)
        # the script hit path (no fresh copy), for a before/after in the same run
        script_cache = Cache(client, "bench-script", ttl=3600, fast_hits=False)
        script_cache.set("k", VALUE)
        ops: dict[str, Callable[[], Any]] = {
            "GET": lambda: client.get("bench:plain"),
            "GET+json.loads": lambda: json.loads(client.get("bench:plain")),  # type: ignore[arg-type]
            "get_or_set json": lambda: cache.get_or_set("k", dict),
            "get_or_set raw": lambda: raw_cache.get_or_set("k", bytes),
            "get_or_set script": lambda: script_cache.get_or_set("k", dict),
        }
        med = interleaved(ops, opts.rounds, opts.n)
        for name, value in med.items():
            print(f"{name:18s} {value:10.0f} ops/s")
        print(f"get_or_set json / GET            = {med['get_or_set json'] / med['GET']:.3f}")
        print(f"get_or_set raw  / GET            = {med['get_or_set raw'] / med['GET']:.3f}")
        print(f"get_or_set json / GET+json.loads = "
              f"{med['get_or_set json'] / med['GET+json.loads']:.3f}")
        print(f"fast_hits=False json / GET+json.loads = "
              f"{med['get_or_set script'] / med['GET+json.loads']:.3f}")


if __name__ == "__main__":
    main()
