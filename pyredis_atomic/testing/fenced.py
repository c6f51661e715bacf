"""A fenced resource for fault tests: a value in Redis that accepts a write only with a
fence at least as high as every fence it has accepted before (the storage side of lock
fencing, as a database row with a "last fence" column would do it).

A holder that was paused, partitioned or slow past its lease writes with its old fence and
is refused once a later holder has written: :meth:`FencedResource.write` says which.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FencedResource"]

_WRITE = """
local last = tonumber(redis.call('HGET', KEYS[1], 'fence') or '-1')
local fence = tonumber(ARGV[1])
if fence < last then
  redis.call('HINCRBY', KEYS[1], 'refused', 1)
  return 0
end
redis.call('HSET', KEYS[1], 'fence', ARGV[1], 'value', ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
"""


class FencedResource:
    """A fenced value under ``name`` (a hash and a list of the accepted fences, in order)."""

    def __init__(self, name: str = "fenced") -> None:
        self.key = f"fenced:{{{name}}}"
        self.log_key = f"fenced:{{{name}}}:log"

    def write(self, client: Any, fence: int, value: str | bytes) -> bool:
        """Write ``value`` with ``fence``; False when a higher fence has written already."""
        return bool(client.eval(_WRITE, 2, self.key, self.log_key, fence, value))

    def accepted(self, client: Any) -> list[int]:
        """Every fence whose write was accepted, in order (never decreasing)."""
        return [int(f) for f in client.lrange(self.log_key, 0, -1)]

    def refused(self, client: Any) -> int:
        """How many writes were refused."""
        return int(client.hget(self.key, "refused") or 0)
