"""A second SIGTERM / SIGINT makes a worker process (``pyredis-atomic worker``) exit at
once, without waiting for the grace period: exit code 128 + the signal, and nothing lost (the
leases of the messages it held bring them back to the next consumer). Sync and asyncio
handlers; real Redis, real processes."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis

from pyredis_atomic import ReliableQueue
from pyredis_atomic._core.replies import as_str
from pyredis_atomic.testing import RedisServer

HERE = Path(__file__).parent
# Far longer than the test may take: an exit that waited for it would time the test out.
GRACE = 600.0
# The exit after the second signal, on a loaded 2-core machine: generous, and still a
# tenth of the grace.
EXIT_WAIT = 60.0
_names = itertools.count()


def _wait_for(cond: object, what: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < end, what
        time.sleep(0.02)


@pytest.mark.parametrize(("handler", "first", "second"), [
    ("hang", signal.SIGTERM, signal.SIGTERM),
    ("hang", signal.SIGTERM, signal.SIGINT),
    ("hang_async", signal.SIGINT, signal.SIGTERM),
])
def test_a_second_signal_exits_at_once_and_loses_nothing(
        redis_server: RedisServer, handler: str, first: signal.Signals,
        second: signal.Signals) -> None:
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    name = f"signals-{next(_names)}"
    q = ReliableQueue(client, name, visibility_timeout=2.0)
    ids = set(q.push_many([b"a", b"b", b"c"]))
    log = tempfile.NamedTemporaryFile(prefix="worker-signals-", suffix=".log")  # noqa: SIM115
    env = {**os.environ, "WORKER_TEST_URL": redis_server.url,
           "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyredis_atomic", "worker", f"worker_signal_handlers:{handler}",
         "--queue", name, "--url", redis_server.url, "--grace", str(GRACE),
         "--visibility-timeout", "2.0", "--concurrency", "2", "--interval", "0.5"],
        cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=log)

    def text() -> str:
        return Path(log.name).read_text(errors="replace")

    try:
        _wait_for(lambda: client.llen(f"started:{name}") == 2 or proc.poll() is not None,
                  "two handlers never started")
        assert proc.poll() is None, text()
        # The heartbeat keeps both leases while the handlers hang.
        time.sleep(3.0)
        assert q.stats()["in_flight"] == 2
        proc.send_signal(first)
        _wait_for(lambda: "stopping" in text(), f"the first signal was not seen: {text()}")
        time.sleep(0.5)
        assert proc.poll() is None, "the first signal must wait for the grace period"
        start = time.monotonic()
        proc.send_signal(second)
        proc.wait(timeout=EXIT_WAIT)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = text()
    log.close()
    assert proc.returncode == 128 + second, (proc.returncode, out)
    assert took < EXIT_WAIT
    assert "exiting at once" in out, out
    # Nothing lost: the two it held come back when their leases run out (second delivery),
    # the third was never claimed.
    got: dict[str, int] = {}
    end = time.monotonic() + 60
    while len(got) < 3:
        assert time.monotonic() < end, (got, q.stats())
        msg = q.pop(timeout=0.5)
        if msg is not None:
            got[msg.id] = msg.deliveries
            assert q.ack(msg)
    assert set(got) == ids
    started = {as_str(s).split("/")[0] for s in client.lrange(f"started:{name}", 0, -1)}
    assert sorted(got[i] for i in ids) == [1, 2, 2]
    assert {i for i in ids if got[i] == 2} == started
    assert q.stats()["dead"] == 0
    client.close()
