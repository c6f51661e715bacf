"""Worker processes (the ``pyredis-atomic worker`` command) under signals: random SIGKILLs
and SIGTERMs chosen by hypothesis over 4 workers and 2000 messages; a handler paused
(SIGSTOP) past its lease; a poison message that SIGKILLs its worker on every delivery."""

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
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pyredis_atomic import ReliableQueue
from pyredis_atomic._core.replies import as_str
from pyredis_atomic.testing import RedisServer

HERE = Path(__file__).parent
GRACE = 2.0
# SIGTERM to the end of the worker's shutdown ("worker stopped" logged): the grace, plus a
# margin for a loaded 2-core machine (idle, the shutdown takes ~1 s: one blocking claim's
# poll). The process exit after it (interpreter clean-up) gets EXIT_WAIT: with eight test
# suites sharing the machine, a bare `import redis` took 9 s and an exit up to 14 s.
STOP_MARGIN = 5.0
EXIT_WAIT = 60.0
_names = itertools.count()


class Proc:
    """A worker process; its stderr goes to a file (read for readiness and status)."""

    def __init__(self, server: RedisServer, name: str, handler: str, *extra: str) -> None:
        env = {**os.environ, "WORKER_TEST_URL": server.url,
               "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
        self.log = tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log")  # noqa: SIM115
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "pyredis_atomic", "worker", f"worker_handlers:{handler}",
             "--queue", name, "--url", server.url, "--grace", str(GRACE), "--interval", "0.5",
             *extra],
            cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=self.log)
        self.done: tuple[int, float, str] | None = None

    def text(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until run() has its signal handlers (a SIGTERM during start-up kills at once)."""
        end = time.monotonic() + timeout
        while "worker started" not in self.text():
            assert self.popen.poll() is None, self.text()
            assert time.monotonic() < end, self.text()
            time.sleep(0.02)

    def terminate(self) -> tuple[int, float, str]:
        """SIGTERM; the exit code, the seconds until the worker's shutdown was done, the
        last status line."""
        if self.done is not None:
            return self.done
        self.wait_ready()
        start = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        took = None
        while self.popen.poll() is None and time.monotonic() - start < EXIT_WAIT:
            if took is None and "worker stopped" in self.text():
                took = time.monotonic() - start
            time.sleep(0.01)
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        if took is None:
            took = time.monotonic() - start
        status = [line for line in self.text().splitlines() if line.startswith("worker queue=")]
        self.log.close()
        self.done = (self.popen.returncode, took, status[-1] if status else "")
        return self.done

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait(timeout=30)
        self.log.close()
        self.done = (self.popen.returncode, 0.0, "")


def _drained(q: ReliableQueue) -> bool:
    s = q.stats()
    return bool(s["pending"] == s["in_flight"] == s["delayed"] == 0)


signal_plan = st.lists(st.tuples(st.floats(0.05, 0.6), st.integers(0, 3),
                                 st.sampled_from(["KILL", "TERM"])), min_size=2, max_size=4)


@pytest.mark.slow
@settings(max_examples=2, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=signal_plan)  # few examples: each starts processes (seconds on a loaded machine)
def test_killed_and_stopped_workers_lose_nothing(redis_server: RedisServer,
                                                 plan: list[tuple[float, int, str]]) -> None:
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    name = f"procs-{next(_names)}"
    # A lease long enough that a live worker never loses one on a loaded machine (so every
    # refused ack would be a bug), short enough that killed workers' messages come back soon.
    q = ReliableQueue(client, name, visibility_timeout=2.0)
    pushed = set(q.push_many([b"job-%d" % i for i in range(2000)]))
    args = ("--concurrency", "4", "--visibility-timeout", "2.0", "--max-attempts", "50")
    workers = [Proc(redis_server, name, "record", *args) for _ in range(4)]
    try:
        deadline = time.monotonic() + 30
        while not client.llen(f"handled:{name}") and time.monotonic() < deadline:
            time.sleep(0.02)
        for pause, index, how in plan:
            time.sleep(pause)
            if how == "KILL":
                workers[index].kill()
            else:
                code, took, status = workers[index].terminate()
                assert code == 0, status
                assert took < GRACE + STOP_MARGIN, took
                assert " lost=0 " in status, status  # no ack refused: none was stale
            workers[index] = Proc(redis_server, name, "record", *args)  # a replacement
        deadline = time.monotonic() + 60
        while not _drained(q):
            assert time.monotonic() < deadline, q.stats()
            time.sleep(0.05)
    finally:
        for proc in workers:
            code, took, status = proc.terminate()
            assert code == 0, status
            assert took < GRACE + STOP_MARGIN, took
    handled = {as_str(x).split("/")[0] for x in client.lrange(f"handled:{name}", 0, -1)}
    assert handled == pushed  # every message handled to completion at least once
    stats = q.stats()
    assert (stats["pending"], stats["in_flight"], stats["delayed"], stats["dead"]) == (0,) * 4
    assert client.hlen(q.keys["payload"]) == 0  # nothing left behind
    client.close()


@pytest.mark.slow
def test_a_paused_worker_loses_its_message_and_its_ack_is_refused(
        redis_server: RedisServer) -> None:
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    name = f"paused-{next(_names)}"
    q = ReliableQueue(client, name, visibility_timeout=1.0)
    mid = q.push(b"long")
    proc = Proc(redis_server, name, "outlive_the_lease", "--visibility-timeout", "1.0")
    try:
        deadline = time.monotonic() + 30
        while not client.llen(f"started:{name}"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # Its heartbeat keeps the lease: nobody else gets the message while it runs...
        time.sleep(2.5)
        assert q.pop() is None
        # ...until the process is paused past the lease: then another consumer does.
        proc.popen.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + 10
        other = None
        while other is None:
            assert time.monotonic() < deadline
            other = q.pop(timeout=0.2)
        assert (other.id, other.deliveries) == (mid, 2)
        proc.popen.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 15
        while not client.llen(f"outcome:{name}"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        [outcome] = client.lrange(f"outcome:{name}", 0, -1)
        assert as_str(outcome) == f"{mid}/1 lost=True acked=False"
        assert q.ack(other) is True
    finally:
        proc.popen.send_signal(signal.SIGCONT)
        code, _, status = proc.terminate()
    assert code == 0
    assert " lost=1 " in status, status
    client.close()


@pytest.mark.slow
def test_a_message_that_kills_its_worker_ends_dead_after_max_attempts(
        redis_server: RedisServer) -> None:
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    name = f"poison-{next(_names)}"
    q = ReliableQueue(client, name, visibility_timeout=0.3, max_deliveries=3)
    mid = q.push(b"poison")
    starts = 0
    deadline = time.monotonic() + 240  # four worker start-ups, slow on a loaded machine
    while q.stats()["dead"] == 0:
        assert time.monotonic() < deadline, (starts, q.stats())
        assert starts < 10, (starts, q.stats())
        proc = Proc(redis_server, name, "kill_self", "--visibility-timeout", "0.3",
                    "--max-attempts", "3")
        starts += 1
        end = time.monotonic() + 60
        while proc.popen.poll() is None and q.stats()["dead"] == 0 and time.monotonic() < end:
            time.sleep(0.05)
        if proc.popen.poll() is None:
            proc.terminate()
        else:
            assert proc.popen.returncode == -signal.SIGKILL
            proc.log.close()
    [dead] = q.dead_letters()
    assert (dead.id, dead.deliveries, dead.dead_reason) == (mid, 3, "expired")
    assert [int(x) for x in client.lrange(f"deliveries:{name}", 0, -1)] == [1, 2, 3]
    assert starts in (3, 4)  # 3 deaths; the 4th worker (if any) only finds it expired
    client.close()
