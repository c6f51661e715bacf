"""RateLimitResult, which belongs to neither API: the HTTP headers and truthiness.

Everything the two RateLimiter APIs share (burst exactness, remaining, retry_after, peek,
costs, bad input, wrong types, prefixes, a cluster) is in ``test_ratelimit_shared_async.py``
and its generated sync twin ``test_ratelimit_shared_sync.py``.
"""

from __future__ import annotations

from pyredis_atomic import RateLimitResult
from pyredis_atomic.asyncio import RateLimitResult as AsyncRateLimitResult


def test_headers() -> None:
    assert AsyncRateLimitResult is RateLimitResult  # one result type for both APIs
    ok = RateLimitResult(True, 4, 0.0, 12.3, 20)
    assert ok.headers() == {"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "4",
                            "X-RateLimit-Reset": "13"}
    refused = RateLimitResult(False, 0, 0.25, 60.0, 20)
    assert refused.headers()["Retry-After"] == "1"
    assert refused.headers()["X-RateLimit-Reset"] == "60"
    assert not refused
    assert ok
