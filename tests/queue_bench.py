"""Quick single-message loop measurement (issue #4): ``push`` + ``ack_and_pop`` against raw
redis-py list (LPUSH / LMOVE / LREM) and Streams (XADD / XREADGROUP / XACK) loops, in the same
run, interleaved rounds, median of rounds; plus the server's own time per loop.

    .venv/bin/python tests/queue_bench.py [--url redis://...] [--rounds 9] [--n 2000]

Without ``--url`` it starts its own redis-server on a free port.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from bench_common import bench_client, interleaved, parse_args

from pyredis_atomic import ReliableQueue

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
        entry_id: bytes = got[0][1][0][0]  # type: ignore[index,assignment]
        client.xack("bench:stream", "g", entry_id)

    return {"ReliableQueue": ours, "LPUSH/LMOVE/LREM": lists, "XADD/XREADGROUP/XACK": streams}


def server_usec(client: redis.Redis, n: int, op: Callable[[], Any]) -> float:
    client.config_resetstat()
    for _ in range(n):
        op()
    stats = client.info("commandstats")
    # Commands run by scripts are counted both alone and inside EVALSHA: skip the inner ones.
    outer = [k for k in stats if k in ("cmdstat_evalsha", "cmdstat_eval")]
    keys = outer or [k for k in stats if k != "cmdstat_config|resetstat"]
    return float(sum(stats[k]["usec"] for k in keys)) / n


def main() -> None:
    opts = parse_args(__doc__, 2000)
    with bench_client(opts.url) as client:
        ops = loops(client)
        med = interleaved(ops, opts.rounds, opts.n)
        for name, value in med.items():
            usec = server_usec(client, 1000, ops[name])
            print(f"{name:22s} {value:8.0f} loops/s  server {usec:6.1f} us/loop")
        ours = med["ReliableQueue"]
        print(f"ReliableQueue / lists   = {ours / med['LPUSH/LMOVE/LREM']:.3f}")
        print(f"ReliableQueue / streams = {ours / med['XADD/XREADGROUP/XACK']:.3f}")


if __name__ == "__main__":
    main()
