"""Demo: a consumer dies holding a message. With ``RPUSH`` + ``LPOP`` the message is gone;
with ``ReliableQueue`` its lease runs out and another consumer gets it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...queue import ReliableQueue


def run(client: Any, say: Callable[[str], None], prefix: str) -> None:
    """Show the lost message of the naive recipe, then the reliable queue's recovery."""
    naive = f"{prefix}naive-emails"
    client.delete(naive)
    client.rpush(naive, "welcome mail for ann")
    client.lpop(naive)  # consumer A takes it ... and crashes before sending
    say(f"naive RPUSH/LPOP: consumer A popped the job and crashed; "
        f"jobs left: {client.llen(naive)} -> the mail is lost")
    client.delete(naive)

    q = ReliableQueue(client, "emails", visibility_timeout=0.3, max_deliveries=3,
                      allow_eviction=True, prefix=prefix)
    q.purge()
    q.push("welcome mail for ann")
    taken = q.pop()
    assert taken is not None
    say(f"ReliableQueue: consumer A took {taken.payload.decode()!r} "
        f"(delivery {taken.deliveries}, leased 0.3 s) ... and crashed")
    say(f"  stats while A's lease runs: {q.stats()}")
    again = q.pop(timeout=2.0)  # consumer B blocks; the expired lease is reclaimed
    assert again is not None
    say(f"consumer B got it back after the lease ran out: {again.payload.decode()!r} "
        f"(delivery {again.deliveries})")
    say(f"B acks: {q.ack(again)}; A comes back to life and acks its stale delivery: "
        f"{q.ack(taken)} (a stale ack never removes the newer delivery)")
    say(f"  stats: {q.stats()}")
    q.purge()
