"""Subprocess worker for the cache tests: ``python cache_worker.py URL MODE KEY ARG``.

Modes:
``stampede``  wait for the go file ARG, then ``get_or_set`` with a 0.5 s loader that appends
              one line to ARG + ".calls"; prints the value as JSON.
``hang``      ``get_or_set`` with a loader that prints ``LOADING`` and then sleeps forever
              (the test SIGKILLs the process mid-load).
"""

from __future__ import annotations

import json
import os
import sys
import time

import redis

from pyredis_atomic import Cache


def main() -> None:
    url, mode, key, arg = sys.argv[1:5]
    client = redis.Redis.from_url(url)
    if mode == "stampede":
        cache = Cache(client, "procs", ttl=60, lock_ttl=10, wait_timeout=10)
        while not os.path.exists(arg):
            time.sleep(0.002)

        def loader() -> dict[str, int]:
            with open(arg + ".calls", "a") as f:
                f.write(f"{os.getpid()}\n")
            time.sleep(0.5)
            return {"pid": os.getpid()}

        print(json.dumps(cache.get_or_set(key, loader)), flush=True)
    elif mode == "hang":
        cache = Cache(client, "procs", ttl=60, lock_ttl=float(arg), wait_timeout=60)

        def hang() -> None:
            print("LOADING", flush=True)
            time.sleep(3600)

        cache.get_or_set(key, hang)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
