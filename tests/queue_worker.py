"""A consumer process for the queue crash test (run as a script, not a test module).

Usage: python queue_worker.py URL NAME DIE_AFTER DIE_POINT

It records every delivery it processes ("processed" list: "id/delivery") and every ack
that returned True ("acked" list, receipts too), until the key "stop" exists. With DIE_AFTER >= 0 it
SIGKILLs itself at DIE_POINT of its DIE_AFTER-th message: "after_pop", "after_process",
"after_ack" or "before_pop".
"""

from __future__ import annotations

import os
import signal
import sys

import redis

from pyredis_atomic import ReliableQueue


def main() -> None:
    url, name, die_after, die_point = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    client = redis.Redis.from_url(url)
    q = ReliableQueue(client, name, visibility_timeout=0.5, max_deliveries=4)
    handled = 0

    def maybe_die(point: str) -> None:
        if handled == die_after and die_point == point:
            os.kill(os.getpid(), signal.SIGKILL)

    client.rpush("ready", os.getpid())
    while not client.exists("stop"):
        maybe_die("before_pop")
        msg = q.pop(timeout=0.3)
        if msg is None:
            continue
        maybe_die("after_pop")
        client.rpush("processed", msg.receipt)
        maybe_die("after_process")
        if q.ack(msg):
            maybe_die("after_ack")
            client.rpush("acked", msg.receipt)
        handled += 1


if __name__ == "__main__":
    main()
