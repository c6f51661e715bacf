"""Real partitions (issue 14): the server sits in a network namespace, the link goes down
and up under a lock holder, a consumer, a counter with ``request_id`` and a pusher with
``dedup_key``; the invariants are checked after the link heals.

Margins are for a loaded 2-core machine: ``on_lost`` must fire within ``LATE`` of the lease
end (it fires within ``ON_LOST_MARGIN`` on an idle one); before the fix it fired only after
the link healed, seconds late, or never while the link stayed down.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

import pyredis_atomic.asyncio as aio
from pyredis_atomic import BoundedCounter, Lock, ReliableQueue
from pyredis_atomic.testing import RedisServer
from pyredis_atomic.testing.fenced import FencedResource
from pyredis_atomic.testing.netns import Partition

TTL = 1.0
LATE = 1.0          # on_lost at most this long after the lease end, on a loaded machine
CUT_MAX = 10.0      # the longest a cut lasts while waiting for the rival inside

# Runs inside the namespace (so it still reaches the server during the cut): takes the lock
# once the partitioned holder's lease has run out, writes with its fence, prints it.
RIVAL = """
import json, sys, time, redis
from pyredis_atomic import Lock
from pyredis_atomic.testing.fenced import FencedResource
client = redis.Redis(port=int(sys.argv[1]))
lock = Lock(client, "held", ttl=30)
if not lock.acquire(timeout=20):
    sys.exit("the rival got no lock in 20 s")
ok = FencedResource().write(client, lock.fence, "rival")
print(json.dumps({"fence": lock.fence, "wrote": ok, "at": time.monotonic()}), flush=True)
"""


def _rival(partition: Partition, server: RedisServer) -> subprocess.Popen[str]:
    return subprocess.Popen(partition.command([sys.executable, "-c", RIVAL, str(server.port)]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _hold_through_a_cut(partition: Partition, server: RedisServer, holder: Any,
                        write: Any, lost: Any) -> dict[str, Any]:
    """Cut the link 0.2 s into the holder's lease, keep it cut until the rival inside has
    taken the lock (or CUT_MAX), heal; return the times and the rival's report."""
    time.sleep(0.2)
    rival = _rival(partition, server)
    try:
        with partition.partitioned():
            cut = time.monotonic()
            while rival.poll() is None and time.monotonic() - cut < CUT_MAX:
                time.sleep(0.05)
            lost_at_heal = lost()
            healed = time.monotonic()
        out, err = rival.communicate(timeout=30)
    finally:
        if rival.poll() is None:
            rival.kill()
    assert rival.returncode == 0, err
    report = json.loads(out)
    late_write = write()
    return {"cut": cut, "healed": healed, "rival": report, "late_write": late_write,
            "lost_at_heal": lost_at_heal}


@pytest.mark.parametrize("socket_timeout", [0.1, None], ids=["timeout0.1", "no-timeout"])
def test_on_lost_fires_by_the_lease_end_sync(partition: Partition, far_server: RedisServer,
                                             socket_timeout: float | None) -> None:
    client = far_server.client(socket_timeout=socket_timeout)
    fired: list[float] = []
    lock = Lock(client, "held", ttl=TTL, auto_renew=True,
                on_lost=lambda _: fired.append(time.monotonic()))
    sent = time.monotonic()
    assert lock.acquire(blocking=False)
    fence = lock.fence
    assert fence is not None
    resource = FencedResource()
    assert resource.write(client, fence, "holder")
    seen = _hold_through_a_cut(partition, far_server, lock,
                               lambda: resource.write(client, fence, "late"),
                               lambda: lock.lost)
    assert fired, "on_lost never fired"
    # The lease ran from no earlier than the acquire was sent.
    assert fired[0] <= sent + TTL + LATE, f"on_lost {fired[0] - sent - TTL:.2f} s late"
    assert fired[0] < seen["healed"]
    assert seen["lost_at_heal"]
    assert seen["rival"]["fence"] == fence + 1
    assert seen["rival"]["wrote"]
    assert not seen["late_write"], "the fence let the partitioned holder's late write in"
    assert resource.accepted(client) == [fence, fence + 1]
    client.close()


@pytest.mark.parametrize("socket_timeout", [0.1, None], ids=["timeout0.1", "no-timeout"])
def test_on_lost_fires_by_the_lease_end_asyncio(partition: Partition, far_server: RedisServer,
                                                socket_timeout: float | None) -> None:
    sync_client = far_server.client(socket_timeout=5)
    resource = FencedResource()

    async def main() -> tuple[float, list[float], int, dict[str, Any]]:
        client = redis.asyncio.Redis(host=far_server.host, port=far_server.port,
                                     socket_timeout=socket_timeout)
        fired: list[float] = []
        lock = aio.Lock(client, "held", ttl=TTL, auto_renew=True,
                        on_lost=lambda _: fired.append(time.monotonic()))
        sent = time.monotonic()
        assert await lock.acquire(blocking=False)
        fence = lock.fence
        assert fence is not None
        assert resource.write(sync_client, fence, "holder")
        # The cut and the rival run in a thread: the loop keeps renewing meanwhile.
        seen = await asyncio.to_thread(
            _hold_through_a_cut, partition, far_server, lock,
            lambda: resource.write(sync_client, fence, "late"), lambda: lock.lost)
        await client.aclose()
        return sent, fired, fence, seen

    sent, fired, fence, seen = asyncio.run(main())
    assert fired, "on_lost never fired"
    assert fired[0] <= sent + TTL + LATE, f"on_lost {fired[0] - sent - TTL:.2f} s late"
    assert fired[0] < seen["healed"]
    assert seen["lost_at_heal"]
    assert seen["rival"]["fence"] == fence + 1
    assert not seen["late_write"]
    sync_client.close()


def _retry(what: Any, until: float, failed: list[int] | None = None) -> Any:
    """Re-send ``what`` after connection failures (what a careful caller does) until it
    answers; every operation here is safe to re-send (dedup_key, request_id, receipts).
    Each failure is counted in ``failed``."""
    while True:
        try:
            return what()
        except (redis.ConnectionError, redis.TimeoutError):
            if failed is not None:
                failed.append(1)
            if time.monotonic() > until:
                raise
            time.sleep(0.05)


def test_pusher_counter_and_consumer_through_a_cut(partition: Partition,
                                                   far_server: RedisServer) -> None:
    """Pushes with dedup keys, increments with request ids and a consumer's pops and acks,
    all re-sent after failures while the link is down for 2 s: afterwards every message
    was delivered and acked, none is left, and the counter counts each increment once.

    A dedup key guards a push only while its message is queued: a re-sent push that
    arrives after the first one's message was consumed and acked queues it again (the
    documented window). So a message may be acked twice only if its push was re-sent."""
    def client() -> redis.Redis:
        # No redis-py retries: every re-send is the test's own, so it knows which pushes
        # were re-sent (redis-py's silent re-send of a push whose reply was lost can land
        # after the message was acked, and queue it again: the dedup window).
        return far_server.client(socket_timeout=0.3, socket_connect_timeout=0.3,
                                 retry=Retry(NoBackoff(), 0))

    pusher_c, counter_c, consumer_c = client(), client(), client()
    queue = ReliableQueue(pusher_c, "jobs", visibility_timeout=2.0)
    counter = BoundedCounter(counter_c, "count", min=0)
    consumer = ReliableQueue(consumer_c, "jobs", visibility_timeout=2.0)
    stop = threading.Event()
    deadline = time.monotonic() + 60
    pushed: list[str] = []
    increments: list[int] = []
    acked: list[bytes] = []
    delivered: list[bytes] = []
    errors: list[BaseException] = []
    resent: set[bytes] = set()
    maybe: set[bytes] = set()

    def push_loop() -> None:
        i = 0
        while not stop.is_set():
            failed: list[int] = []
            _retry(lambda i=i: queue.push(f"m{i}", dedup_key=f"m{i}"), deadline, failed)
            if failed:
                resent.add(f"m{i}".encode())
            pushed.append(f"m{i}")
            i += 1
            time.sleep(0.01)

    def count_loop() -> None:
        i = 0
        while not stop.is_set():
            _retry(lambda i=i: counter.incr(1, request_id=f"r{i}"), deadline)
            increments.append(i)
            i += 1
            time.sleep(0.01)

    def consume_loop() -> None:
        while not (stop.is_set() and {p.encode() for p in pushed} <= set(acked) | maybe):
            if time.monotonic() > deadline:
                return
            msg = _retry(lambda: consumer.pop(timeout=0.2), deadline)
            if msg is None:
                continue
            delivered.append(msg.payload)
            failed: list[int] = []
            if _retry(lambda msg=msg: consumer.ack(msg), deadline, failed):
                acked.append(msg.payload)
            elif failed:
                # The first ack's reply was lost: applied, or the lease ran out meanwhile
                # (then the message comes back). The empty queue at the end tells.
                maybe.add(msg.payload)

    def guarded(loop: Any) -> Any:
        def run() -> None:
            try:
                loop()
            except BaseException as exc:
                errors.append(exc)
        return run

    threads = [threading.Thread(target=guarded(f)) for f in (push_loop, count_loop,
                                                             consume_loop)]
    for t in threads:
        t.start()
    time.sleep(0.7)
    with partition.partitioned():
        time.sleep(2.0)
    time.sleep(0.7)
    stop.set()
    for t in threads:
        t.join(timeout=90)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    # An ack whose reply was lost is re-sent and answers False (already applied), so a
    # message can be missing from `acked` only then; it must not be in the queue either.
    stats = queue.stats()
    assert (stats["pending"], stats["in_flight"], stats["dead"]) == (0, 0, 0), stats
    twice = {p for p in acked if acked.count(p) > 1}
    assert twice <= resent, f"acked twice without a re-sent push: {twice - resent}"
    assert {p.encode() for p in pushed} <= set(acked) | maybe, "a pushed message was lost"
    assert counter.get() == len(increments), "a retried increment counted twice"
    assert len(pushed) > 20
    assert len(increments) > 20
    for c in (pusher_c, counter_c, consumer_c):
        c.close()


def test_the_margin_is_documented() -> None:
    """docs/faults.md quotes the margin the renewer is built around."""
    from pathlib import Path

    from pyredis_atomic._core.lock import ON_LOST_MARGIN

    doc = (Path(__file__).resolve().parents[2] / "docs" / "faults.md").read_text()
    doc = " ".join(doc.split())  # reflowed paragraphs
    assert f"(`pyredis_atomic._core.lock.ON_LOST_MARGIN`, {ON_LOST_MARGIN:g} s)" in doc
    assert f"allows {LATE:g} s" in doc
