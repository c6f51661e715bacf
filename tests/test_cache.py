"""Cache (sync API only): ``async def`` loaders and functions are refused.

The behaviour both APIs share is in ``test_cache_shared_async.py`` (and its generated sync
twin, ``test_cache_shared_sync.py``)."""

from __future__ import annotations

import pytest
import redis

from pyredis_atomic import Cache


def test_sync_cache_refuses_async_loader(client: redis.Redis) -> None:
    cache = Cache(client, "c", ttl=30)

    async def loader() -> int:
        return 1

    with pytest.raises(TypeError, match="asyncio"):
        cache.get_or_set("k", loader)
    assert cache.inspect("k")["lease"] is None


def test_sync_cached_decorator_refuses_a_coroutine_function(client: redis.Redis) -> None:
    cache = Cache(client, "fn", ttl=30)

    async def coro() -> int:
        return 1

    with pytest.raises(TypeError, match="asyncio"):
        cache.cached(coro)
