"""Demo: a cold key hit by 20 concurrent callers, first with the naive recipe, then with
``Cache.get_or_set``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ...cache import Cache

CALLERS = 20
QUERY_SECONDS = 0.2


def _crowd(work: Callable[[], Any]) -> float:
    barrier = threading.Barrier(CALLERS)

    def body() -> None:
        barrier.wait()
        work()

    threads = [threading.Thread(target=body) for _ in range(CALLERS)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - began


def run(client: Any, say: Callable[[str], None], prefix: str) -> None:
    """Show the stampede the naive recipe causes and get_or_set prevents."""
    queries: list[int] = []
    lock = threading.Lock()

    def query_database() -> dict[str, Any]:
        with lock:
            queries.append(1)
        time.sleep(QUERY_SECONDS)
        return {"id": 7, "name": "espresso machine", "price": 249.0}

    key = f"{prefix}naive:product:7"
    client.delete(key)

    def naive() -> None:
        if client.get(key) is None:  # every caller that misses...
            query_database()  # ...queries the database
            client.set(key, "cached", ex=60)

    _crowd(naive)
    say(f"   naive GET-then-SET: {CALLERS} callers on a cold key -> "
        f"{len(queries)} database queries (a stampede)")

    cache = Cache(client, "products", ttl=60, prefix=prefix)
    cache.delete("7")
    queries.clear()
    took = _crowd(lambda: cache.get_or_set("7", query_database))
    say(f"   Cache.get_or_set:   {CALLERS} callers on a cold key -> {len(queries)} database "
        f"query; the others were woken with its value after {took:.2f}s")
    began = time.monotonic()
    value = cache.get_or_set("7", query_database)
    say(f"   then a hit: {value['name']!r} in {(time.monotonic() - began) * 1000:.1f} ms, "
        f"one round trip")

    def failing() -> dict[str, Any]:
        raise RuntimeError("database timeout")

    cache.delete("8")
    try:
        cache.get_or_set("8", failing)
    except RuntimeError as exc:
        say(f"   a failing loader: its caller gets {exc!r}; nothing is cached, the next "
            f"caller loads: {cache.get_or_set('8', query_database)['name']!r}")
    client.delete(key)
    cache.delete("7")
    cache.delete("8")
