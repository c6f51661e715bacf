"""Quick single-message loop measurement (issue #4): ``push`` + ``ack_and_pop`` against raw
redis-py list (LPUSH / LMOVE / LREM) and Streams (XADD / XREADGROUP / XACK) loops, in the same
run, interleaved rounds, median of rounds; plus the server's own time per loop.

    .venv/bin/python tests/queue_bench.py [--url redis://...] [--rounds 9] [--n 2000]

Without ``--url`` it starts its own redis-server on a free port.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import redis

from pyredis_atomic import ReliableQueue
from pyredis_atomic.testing.server import RedisServer

PAYLOAD = b'{"job": "resize", "image": 12345}'


def loops(client: redis.Redis) -> dict[str, Callable[[], Any]]:
    queue = ReliableQueue(client, "bench")
    state: dict[str, Any] = {"msg": None}
    queue.push(PAYLOAD)
    state["msg"] = queue.pop()

    def ours() -> None:
        queue.push(PAYLOAD)
        _, state["msg"] = queue.ack_and_pop(state["msg"])

    def lists() -> None:
        client.lpush("bench:list", PAYLOAD)
        item = client.lmove("bench:list", "bench:processing", "RIGHT", "LEFT")
        client.lrem("bench:processing", 1, item)  # type: ignore[arg-type]

    client.xgroup_create("bench:stream", "g", id="0", mkstream=True)

    def streams() -> None:
        client.xadd("bench:stream", {"p": PAYLOAD})
        got = client.xreadgroup("g", "c", {"bench:stream": ">"}, count=1)
        client.xack("bench:stream", "g", got[0][1][0][0])  # type: ignore[index]

    return {"ReliableQueue": ours, "LPUSH/LMOVE/LREM": lists, "XADD/XREADGROUP/XACK": streams}


def rate(n: int, op: Callable[[], Any]) -> float:
    began = time.perf_counter()
    for _ in range(n):
        op()
    return n / (time.perf_counter() - began)


def server_usec(client: redis.Redis, n: int, op: Callable[[], Any]) -> float:
    client.config_resetstat()
    for _ in range(n):
        op()
    stats = client.info("commandstats")
    # Commands run by scripts are counted both alone and inside EVALSHA: skip the inner ones.
    outer = [k for k in stats if k in ("cmdstat_evalsha", "cmdstat_eval")]
    keys = outer or [k for k in stats if k != "cmdstat_config|resetstat"]
    return sum(stats[k]["usec"] for k in keys) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--n", type=int, default=2000)
    opts = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = opts.url
        if url is None:
            server = RedisServer().start()
            stack.callback(server.cleanup)
            url = server.url
        client = redis.Redis.from_url(url)
        ops = loops(client)
        for op in ops.values():
            rate(300, op)
        results: dict[str, list[float]] = {k: [] for k in ops}
        for _ in range(opts.rounds):
            for name, op in ops.items():
                results[name].append(rate(opts.n, op))
        med = {k: statistics.median(v) for k, v in results.items()}
        for name, value in med.items():
            usec = server_usec(client, 1000, ops[name])
            print(f"{name:22s} {value:8.0f} loops/s  server {usec:6.1f} us/loop")
        ours = med["ReliableQueue"]
        print(f"ReliableQueue / lists   = {ours / med['LPUSH/LMOVE/LREM']:.3f}")
        print(f"ReliableQueue / streams = {ours / med['XADD/XREADGROUP/XACK']:.3f}")
        client.close()


if __name__ == "__main__":
    main()
