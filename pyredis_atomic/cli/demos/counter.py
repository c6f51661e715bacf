"""Demo: ten buyers race for three units of stock. The check-then-act recipe oversells;
``BoundedCounter.decr`` cannot."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ...counter import BoundedCounter
from ...ratelimit import RateLimiter

BUYERS = 10
STOCK = 3


def _race(buy: Callable[[], bool]) -> int:
    barrier = threading.Barrier(BUYERS)
    sold: list[bool] = []

    def buyer() -> None:
        barrier.wait()
        sold.append(buy())

    threads = [threading.Thread(target=buyer) for _ in range(BUYERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(sold)


def run(client: Any, say: Callable[[str], None], prefix: str) -> None:
    """Tell the story of an oversold stock, then of one that cannot be."""
    naive_key = f"{prefix}naive-stock"
    client.set(naive_key, STOCK)
    gate = threading.Barrier(BUYERS)

    def naive_buy() -> bool:
        # GET, compare, DECR: every buyer sees stock left before anyone decrements.
        left = int(client.get(naive_key))
        gate.wait()
        if left > 0:
            client.decr(naive_key)
            return True
        return False

    sold = _race(naive_buy)
    say(f"   naive GET-check-DECR: {BUYERS} buyers, {STOCK} units -> sold {sold}, "
        f"stock now {int(client.get(naive_key))} (oversold!)")
    client.delete(naive_key)

    stock = BoundedCounter(client, "stock", min=0, max=STOCK, initial=STOCK,
                           prefix=prefix)
    stock.reset()
    sold = _race(lambda: stock.decr().applied)
    say(f"   BoundedCounter.decr:  {BUYERS} buyers, {STOCK} units -> sold {sold}, "
        f"stock now {stock.get()} (one script: check and change together)")
    result = stock.decr()
    say(f"   one more buyer: applied={result.applied}, value={result.value} "
        f"(rejected, not below min=0)")
    stock.reset()

    limiter = RateLimiter(client, "api", rate=5, period=1.0, burst=3,
                          prefix=prefix)
    limiter.reset()
    answers = [limiter.hit() for _ in range(4)]
    say("   RateLimiter (GCRA, burst 3, 5/s): "
        + ", ".join("allowed" if a.allowed else f"refused, retry in {a.retry_after:.3f} s"
                    for a in answers))
    say(f"   as HTTP headers: {answers[-1].headers()}")
    limiter.reset()
