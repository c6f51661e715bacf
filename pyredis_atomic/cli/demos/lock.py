"""Demo: the race a naive lock lets through, and how Lock's token, lease and fencing stop it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ...errors import LockNotOwnedError
from ...lock import Lock


class FencedStore:
    """A stand-in for the resource the lock guards: refuses writes with a stale fence."""

    def __init__(self) -> None:
        self.highest = 0
        self.value: str | None = None

    def write(self, value: str, fence: int) -> bool:
        if fence <= self.highest:
            return False
        self.highest, self.value = fence, value
        return True


def run(client: Any, say: Callable[[str], None], prefix: str) -> None:
    """Two workers, one of which stalls past its lease (a GC pause, a slow disk)."""
    naive = f"{prefix}naive-lock"
    client.delete(naive)
    say("naive recipe: SET NX with a lease, plain DEL to release")
    client.set(naive, "A", nx=True, px=200)
    say("  A takes the naive lock (lease 0.2 s) ... and stalls for 0.3 s")
    time.sleep(0.3)
    client.set(naive, "B", nx=True, px=1000)
    say("  the lease ran out; B takes the lock")
    client.delete(naive)
    say(f"  A wakes up and DELs 'its' lock: B's lock is gone (holder now: "
        f"{client.get(naive)!r}); a third worker could enter beside B")

    say("Lock: random token, lease, fencing token")
    store = FencedStore()
    a = Lock(client, "invoice-7", ttl=0.2, prefix=prefix)
    b = Lock(client, "invoice-7", ttl=5.0, prefix=prefix)
    a.acquire()
    say(f"  A acquires (fence {a.fence}) ... and stalls for 0.3 s")
    time.sleep(0.3)
    b.acquire(timeout=1.0)
    say(f"  the lease ran out; B acquires (fence {b.fence}) and writes: "
        f"{'accepted' if store.write('B', b.fence) else 'refused'}")
    say(f"  A wakes up and writes with fence {a.fence}: "
        f"{'accepted' if store.write('A', a.fence) else 'refused (stale fence)'}")
    try:
        a.release()
    except LockNotOwnedError:
        say("  A's release raises LockNotOwnedError and leaves B's lock alone: "
            f"B still owns it: {b.owned()}")

    took: list[float] = []

    def waiter() -> None:
        c = Lock(client, "invoice-7", ttl=5.0, prefix=prefix)
        c.acquire(timeout=5.0)
        took.append(time.monotonic())
        c.release()

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.2)
    say("  C waits for the lock (blocked in Redis, not polling)")
    released = time.monotonic()
    b.release()
    thread.join()
    say(f"  B releases; C holds the lock {1000 * (took[0] - released):.1f} ms later")
