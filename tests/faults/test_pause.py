"""Paused processes (issue 14): SIGSTOP a lock holder (with and without auto-renew: the
renewer thread stops with it) or a consumer past its lease, let another process take over,
SIGCONT it. Invariants: the paused holder's late write is refused by the fence, it learns
it lost the lock (``LockNotOwnedError`` on release, ``lost``/``on_lost`` with auto-renew);
the paused consumer's ack is refused (False) and the message was acked exactly once, by
the consumer that got it after the lease ran out.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
import redis

from pyredis_atomic import Lock, ReliableQueue
from pyredis_atomic.testing import RedisServer
from pyredis_atomic.testing.fenced import FencedResource

TTL = 1.0
PAUSE = 2.5  # well past the lease

# The paused process. It says "ready" once it holds the lock (or the message), then waits
# for a line on stdin (sent after SIGCONT) and reports what it sees afterwards.
CHILD = """
import json, sys, time, redis
from pyredis_atomic import Lock, LockNotOwnedError, ReliableQueue
from pyredis_atomic.testing.fenced import FencedResource
mode, port, ttl = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
client = redis.Redis(port=port, socket_timeout=5)
out = {}
if mode in ("holder", "renewed"):
    fired = []
    lock = Lock(client, "paused", ttl=ttl, auto_renew=mode == "renewed",
                on_lost=lambda l: fired.append(time.monotonic()))
    assert lock.acquire(blocking=False)
    resource = FencedResource()
    out["fence"] = lock.fence
    out["first_write"] = resource.write(client, lock.fence, "paused-holder")
    print("ready", flush=True)
    sys.stdin.readline()
    time.sleep(0.3)  # the renewer's next attempt, after the pause
    out["late_write"] = resource.write(client, lock.fence, "paused-holder-late")
    out["lost"] = lock.lost
    out["on_lost"] = bool(fired)
    try:
        lock.release()
        out["release"] = "ok"
    except LockNotOwnedError:
        out["release"] = "not-owned"
else:
    q = ReliableQueue(client, "paused", visibility_timeout=ttl)
    msg = q.pop(timeout=5)
    out["payload"] = msg.payload.decode()
    print("ready", flush=True)
    sys.stdin.readline()
    out["ack"] = q.ack(msg)
print(json.dumps(out), flush=True)
"""


def _child(mode: str, server: RedisServer) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(server.port), str(TTL)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"child did not start: {line!r} {err}")
    return proc


def _pause_then_report(proc: subprocess.Popen[str], during: Any) -> dict[str, Any]:
    """SIGSTOP ``proc`` for PAUSE seconds (running ``during`` meanwhile), SIGCONT it and
    read its report."""
    proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        during()
        time.sleep(max(0.0, PAUSE - (time.monotonic() - started)))
    finally:
        proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate("go\n", timeout=30)
    assert proc.returncode == 0, err
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("mode", ["holder", "renewed"])
def test_a_paused_holder_is_fenced_off(redis_server_factory: Any, mode: str) -> None:
    server = redis_server_factory()
    client = server.client(socket_timeout=5)
    resource = FencedResource()
    child = _child(mode, server)
    rival_fence: list[int] = []

    def take_over() -> None:
        rival = Lock(client, "paused", ttl=30)
        # The paused holder's lease runs out within TTL; the rival waits for it.
        assert rival.acquire(timeout=TTL + 5)
        assert rival.fence is not None
        rival_fence.append(rival.fence)
        assert resource.write(client, rival.fence, "rival")

    report = _pause_then_report(child, take_over)
    assert report["first_write"]
    assert rival_fence == [report["fence"] + 1]
    assert not report["late_write"], "the fence let the paused holder's write in"
    assert report["release"] == "not-owned"
    if mode == "renewed":
        # The renewer was paused too; after SIGCONT its next attempt finds the lock gone.
        assert report["lost"]
        assert report["on_lost"]
    assert resource.accepted(client) == [report["fence"], report["fence"] + 1]
    client.close()


def test_a_paused_consumer_loses_its_delivery(redis_server_factory: Any) -> None:
    server = redis_server_factory()
    client = server.client(socket_timeout=5)
    q = ReliableQueue(client, "paused", visibility_timeout=TTL)
    q.push(b"job")
    child = _child("consumer", server)
    taken: list[bool] = []

    def take_over() -> None:
        msg = q.pop(timeout=TTL + 5)  # redelivered once the paused lease runs out
        assert msg is not None
        assert msg.payload == b"job"
        assert msg.deliveries == 2
        taken.append(q.ack(msg))

    report = _pause_then_report(child, take_over)
    assert report["payload"] == "job"
    assert taken == [True]
    assert report["ack"] is False, "a stale receipt acked the message a second time"
    stats = q.stats()
    assert (stats["pending"], stats["in_flight"], stats["dead"]) == (0, 0, 0)
    client.close()


def test_redis_server_pause_and_resume(redis_server_factory: Any) -> None:
    """The harness's own stall: a paused server answers nothing, then everything."""
    server = redis_server_factory()
    client = server.client(socket_timeout=0.3, retry=None)
    server.pause()
    try:
        with pytest.raises(redis.TimeoutError):
            client.ping()
    finally:
        server.resume()
    client.close()
    with server.client(socket_timeout=5) as fresh:
        assert fresh.ping()
