"""Worker functions for the multi-process Lock tests (run in spawned processes)."""

from __future__ import annotations

import time
from typing import Any

import redis

from pyredis_atomic import Lock, LockNotOwnedError

# The guarded resource: accepts a write only with a fence higher than any it has seen.
FENCED_WRITE = """
local seen = tonumber(redis.call('GET', KEYS[1]) or '0')
local fence = tonumber(ARGV[1])
if fence <= seen then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
"""


def contend(url: str, name: str, ttl: float, holds: list[float], *, auto_renew: bool,
            start_at: float) -> list[dict[str, Any]]:
    """Loop acquire -> critical section (enter, fenced write, exit) -> release, once per
    entry of ``holds`` (the time spent inside). Returns one record per critical section."""
    client = redis.Redis.from_url(url)
    write = client.register_script(FENCED_WRITE)
    lock = Lock(client, name, ttl=ttl, auto_renew=auto_renew)
    records = []
    time.sleep(max(0.0, start_at - time.monotonic()))
    for hold in holds:
        if not lock.acquire(timeout=30.0):
            raise RuntimeError("no lock within 30 s")
        enter = time.monotonic()
        fence = lock.fence
        time.sleep(hold / 2)
        wrote = bool(write(keys=[f"resource:{name}", f"resource:{name}:log"], args=[fence]))
        time.sleep(hold / 2)
        leave = time.monotonic()
        try:
            lock.release()
            released = True
        except LockNotOwnedError:
            released = False
        records.append({"fence": fence, "enter": enter, "exit": leave, "wrote": wrote,
                        "released": released})
    client.close()
    return records


def hold_forever(url: str, name: str, ttl: float, ready: Any) -> None:
    """Acquire and report the fence, then hang (the test kills this process)."""
    client = redis.Redis.from_url(url)
    lock = Lock(client, name, ttl=ttl)
    lock.acquire()
    ready.put((lock.fence, time.monotonic()))
    time.sleep(3600)
