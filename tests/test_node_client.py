"""A real non-Python client: Node.js (ioredis from npm, pinned in tests/node/package-lock.json)
calling the scripts with nothing but the exported manifest (tests/node/atomic.mjs), against
the server the harness starts, while Python uses the same primitives.

- a lock taken in Node is handed to a Python waiter blocked on it, and back;
- binary messages pushed by Node are consumed by Python, and the reverse;
- a counter whose configuration Python stored is not moved past it from Node, whatever
  bounds Node sends; a counter Node created refuses Python's other bounds; a semaphore's
  limit and a rate limiter's rate and burst likewise;
- on a flushed script cache Node gets NOSCRIPT and recovers with the manifest's source;
- Node calls the Functions library Python loaded (FCALL / FCALL_RO), where there is one;
- the README's and docs/other-languages.md's ```js examples run as written.

``scripts/test`` installs tests/node/node_modules (``npm ci``) when its lock file is newer;
without ``node`` on PATH these tests fail and say so (CI installs it: ``.ci/run``).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from pyredis_atomic import (
    BoundedCounter,
    ConfigMismatchError,
    Lock,
    RateLimiter,
    ReliableQueue,
    ScriptRegistry,
    Semaphore,
)

NODE_DIR = Path(__file__).parent / "node"
CLIENT = NODE_DIR / "client.mjs"
DEADLINE = 60.0  # seconds for any one step: generous (a loaded 2-core machine), never a timing


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js 20+) is not on PATH: the Node client tests need it "
                    "(install nodejs and npm; .ci/run does)", pytrace=False)
    if not (NODE_DIR / "node_modules" / "ioredis").is_dir():
        pytest.fail(f"{NODE_DIR}/node_modules is missing: run `npm ci --prefix tests/node` "
                    "(scripts/test does it)", pytrace=False)
    return node


@pytest.fixture(scope="module")
def manifest_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manifest as a user gets it: the CLI's export, written to a file."""
    path = tmp_path_factory.mktemp("manifest") / "manifest.json"
    subprocess.run([sys.executable, "-m", "pyredis_atomic", "scripts", "export", "--format",
                    "manifest", "-o", str(path)], check=True, timeout=DEADLINE)
    return path


class NodeClient:
    """One run of client.mjs: its events (JSON lines on stdout) as they come."""

    def __init__(self, scenario: str, url: str, manifest: Path, **params: Any) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [_node(), str(CLIENT), scenario, url, str(manifest), json.dumps(params)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=NODE_DIR)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))
        self.events.put({"event": "exit"})

    def expect(self, event: str) -> dict[str, Any]:
        """The next event, which must be ``event``."""
        try:
            got = self.events.get(timeout=DEADLINE)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"no {event!r} from node within {DEADLINE} s") from None
        if got["event"] != event:
            self.proc.kill()
            stderr = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"node sent {got} instead of {event!r}; stderr: {stderr}")
        return got

    def finish(self) -> dict[str, Any]:
        done = self.expect("done")
        rc = self.proc.wait(timeout=DEADLINE)
        stderr = self.proc.stderr.read() if self.proc.stderr else ""
        assert rc == 0, stderr
        self.elapsed = time.perf_counter() - self.started
        return done

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=DEADLINE)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def node_client(manifest_path: Path, redis_url: str) -> Iterator[Any]:
    made: list[NodeClient] = []

    def start(scenario: str, **params: Any) -> NodeClient:
        made.append(NodeClient(scenario, redis_url, manifest_path, **params))
        return made[-1]

    yield start
    for c in made:
        c.close()


def _blocked(client: redis.Redis, name: str) -> bool:
    """Whether the connection named ``name`` is blocked (in BLPOP)."""
    return any(c.get("name") == name and "b" in c.get("flags", "")
               for c in client.client_list())


def _wait_blocked(client: redis.Redis, name: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not _blocked(client, name):
        assert time.monotonic() < deadline, f"{name} never blocked"
        time.sleep(0.005)


def test_a_lock_passes_between_node_and_a_blocked_python_waiter(
    node_client: Any, redis_url: str, redis_client: redis.Redis
) -> None:
    node = node_client("lock", name="orders:{42}%", go="test:go")
    first = node.expect("acquired")
    assert first["fence"] >= 1
    assert not first["waited"]

    # A Python waiter blocks on the lock Node holds (BLPOP on its signal key)...
    waiter_client = redis.Redis.from_url(redis_url, client_name="py-waiter")
    lock = Lock(waiter_client, "orders:{42}%", ttl=30.0, timeout=DEADLINE)
    got: dict[str, Any] = {}

    def wait() -> None:
        got["acquired"] = lock.acquire()
        got["t"] = time.time() * 1000

    waiter = threading.Thread(target=wait)
    waiter.start()
    _wait_blocked(redis_client, "py-waiter")
    assert waiter.is_alive()
    # ... and gets it as soon as Node releases it.
    redis_client.lpush("test:go", "release")
    released = node.expect("released")
    waiter.join(DEADLINE)
    assert released["result"] == 1
    assert got["acquired"] is True
    assert lock.fence is not None
    assert lock.fence > first["fence"]
    # Wall clocks of two processes on one machine: a figure to read, not to assert on.
    handoff_ms = got["t"] - released["sent"]

    # The other way: Node waits on the lock Python holds, and takes it on release.
    redis_client.lpush("test:go", "wait")
    waiting = node.expect("lock-waiting")
    assert 0 < waiting["holder_lease_ms"] <= 30_000
    _wait_blocked(redis_client, "node-client")
    lock.release()
    second = node.expect("acquired")
    assert second["waited"]
    assert second["fence"] > lock.fence
    assert node.expect("released")["result"] == 1
    assert node.expect("released-again")["result"] == 2
    node.finish()
    assert not lock.locked()
    waiter_client.close()
    print(f"\nlock handoff node -> python: {handoff_ms:.1f} ms (release sent to acquired)")


def test_binary_messages_from_node_to_python(node_client: Any, redis_client: redis.Redis) -> None:
    node = node_client("queue-push", name="jobs{x}", count=300)
    pushed = node.expect("pushed")
    node.finish()
    q = ReliableQueue(redis_client, "jobs{x}")
    received = {}
    while (msg := q.pop()) is not None:
        assert msg.deliveries == 1
        received[msg.id] = msg.payload
        q.ack(msg)
    assert list(received) == pushed["ids"]
    assert list(received.values()) == [base64.b64decode(p) for p in pushed["payloads"]]
    assert received[pushed["ids"][1]] == bytes(range(256))
    stats = q.stats()
    assert (stats.pending, stats.in_flight, stats.dead) == (0, 0, 0)


def test_binary_messages_from_python_to_a_waiting_node_consumer(
    node_client: Any, redis_client: redis.Redis
) -> None:
    payloads = [os.urandom(n) for n in (0, 1, 255, 4096, 70_000)]
    payloads += [b"\x00" * 10, b"\xff\xfe\xfd", "é字".encode(), bytes(range(256))]
    payloads += [os.urandom(i % 97) for i in range(191)]
    node = node_client("queue-consume", name="back{y}", count=len(payloads), n=40)
    node.expect("queue-waiting")  # nothing there yet: Node blocks on the signal key
    q = ReliableQueue(redis_client, "back{y}")
    ids = q.push_many(payloads)
    consumed = node.expect("consumed")
    node.finish()
    assert [m["id"] for m in consumed["messages"]] == ids
    assert [base64.b64decode(m["payload"]) for m in consumed["messages"]] == payloads
    assert all(m["deliveries"] == 1 for m in consumed["messages"])
    assert consumed["acked"] == len(payloads)  # acked with the receipts built by the template
    stats = q.stats()
    assert (stats.pending, stats.in_flight, stats.dead) == (0, 0, 0)


def test_node_cannot_move_a_counter_past_the_bounds_python_set(
    node_client: Any, redis_client: redis.Redis
) -> None:
    """Node sends the configuration stored with the counter (read with counter_config) and
    stays within it; with any other configuration, the issue's bound "none" included, and
    at the very bound, its calls are refused and change nothing."""
    stock = BoundedCounter(redis_client, "stock:{sku}", min=0, max=100)
    assert stock.incr(95).applied  # stores the configuration "0 100 reject"
    unbounded = {"min": -(2**53 - 1), "max": 2**53 - 1, "mode": "reject"}
    wider = {"min": 0, "max": 1000, "mode": "clamp"}
    lower = {"min": -1000, "max": 100, "mode": "reject"}
    steps = [
        {"delta": 10, "clamp": False},   # would cross max: rejected
        {"delta": 10, "clamp": True},    # clamped at max: 100
        # At the bound, the call (bound "none": it pushed 100 to 145) and others:
        {"delta": 45, "clamp": False, "config": unbounded},
        {"delta": 45, "clamp": True, "config": unbounded},
        {"delta": 1, "clamp": False, "config": wider},
        {"delta": 1, "clamp": False, "config": "0 100 clamp"},   # same bounds, other mode
        {"delta": 1, "clamp": False, "config": "0 0100 reject"},  # not canonical: malformed
        {"delta": -30, "clamp": False},  # within bounds: made
        {"delta": -200, "clamp": True},  # clamped at min: 0
        {"delta": -1, "clamp": False, "config": lower},
        {"delta": -1, "clamp": True, "config": unbounded},
    ]
    node = node_client("counter", name="stock:{sku}", steps=steps)
    result = node.expect("counter")
    node.finish()
    assert result["stored"] == "0 100 reject"
    results = result["results"]
    assert [r["value_after"] for r in results] == [95, 100, 100, 100, 100, 100, 100, 70, 0, 0, 0]
    made = [(r["reply"]["value"], r["reply"].get("delta")) for r in results if "reply" in r]
    assert made == [(95, 0), (100, 5), (70, None), (0, -70)]
    refused = [r for r in results if "error" in r]
    assert len(refused) == 7
    for r in refused:
        if r["config"] == "0 0100 reject":
            assert r["error"].startswith(
                "ERR pyredis-atomic counter_add: ARGV[2] config must be"), r
        else:
            assert r["error"].startswith('CONFIGMISMATCH KEYS[2] stores "0 100 reject"'), r
    assert result["value"] == 0 == stock.get()
    # Python's view agrees, and it goes on within its bounds.
    assert not stock.decr(1).applied
    assert stock.incr(100).value == 100


def test_a_counter_node_creates_keeps_nodes_bounds_for_python(
    node_client: Any, redis_client: redis.Redis
) -> None:
    """The other way: the first writer is Node, so a Python counter built with other bounds
    is refused (naming both configurations) and one built with Node's bounds works."""
    node = node_client("counter-create", name="quota",
                       config={"min": 0, "max": 10, "mode": "reject"}, delta=7)
    created = node.expect("created")
    node.finish()
    assert created["reply"] == {"value": 7}
    assert created["stored"] == "0 10 reject"
    with pytest.raises(ConfigMismatchError) as err:
        BoundedCounter(redis_client, "quota", min=0, max=100).incr(5)
    assert err.value.stored == "0 10 reject"
    assert err.value.given == "0 100 reject"
    same = BoundedCounter(redis_client, "quota", min=0, max=10)
    assert not same.incr(5).applied
    assert same.get() == 7


def test_node_keeps_to_the_semaphore_limit_and_rate_python_stored(
    node_client: Any, redis_client: redis.Redis
) -> None:
    """Node's own limit and burst (or a faster rate) are refused with CONFIGMISMATCH; with
    the stored configuration, read with semaphore_config / ratelimit_config, Node finds the
    semaphore full until Python releases a permit, and the limiter's burst spent."""
    sem = Semaphore(redis_client, "pdf", limit=2)
    first = sem.acquire()
    assert first is not None
    assert sem.acquire() is not None
    limiter = RateLimiter(redis_client, "api", rate=1, period=3600.0, burst=3)
    assert limiter.hit().allowed
    node = node_client("limits", semaphore="pdf", limiter="api", own_limit=5, own_burst=100,
                       go="test:go")
    full = node.expect("semaphore-full")
    assert full["stored"] == {"limit": "2"}
    assert full["own"]["error"].startswith('CONFIGMISMATCH KEYS[2] stores "2"'), full
    assert full["full"]["held"] == 0
    assert sem.count() == 2
    assert sem.release(first)
    redis_client.lpush("test:go", "released")
    assert node.expect("semaphore-held")["held"]["held"] == 1
    assert sem.count() == 2  # Node holds the freed permit: never more than the limit
    result = node.expect("ratelimit")
    node.finish()
    assert result["stored"]["burst"] == "3"
    for refused in (result["own"], result["faster"]):
        assert refused["error"].startswith("CONFIGMISMATCH KEYS[2] stores"), refused
    assert [h["allowed"] for h in result["hits"]] == ["1", "1", "0"]
    assert not limiter.peek().allowed


def test_noscript_on_a_flushed_server_is_recovered_with_the_manifest_source(
    node_client: Any, redis_client: redis.Redis
) -> None:
    stock = BoundedCounter(redis_client, "flushed", min=0, max=10)
    stock.incr(7)
    node = node_client("noscript", name="flushed")
    result = node.expect("noscript")
    node.finish()
    assert result["noscript"].startswith("NOSCRIPT")
    assert result["fell_back"] == 1
    assert result["value"] == 7
    assert result["cached_after_eval"] == 1  # EVAL cached the source under its SHA1
    assert result["sources_not_matching_sha1"] == []
    assert result["scripts"] > 30
    assert result["script_load_sha1"] == result["lock_acquire_sha1"]
    # Python's registry recovers from the same flush on its own.
    assert stock.incr(1).value == 8


ROOT = Path(__file__).resolve().parent.parent
JS_FENCE = re.compile(r"^```js\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
JS_BLOCKS = [(path, m["body"]) for path in (ROOT / "README.md", ROOT / "docs/other-languages.md")
             for m in JS_FENCE.finditer(path.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("source", [b for _, b in JS_BLOCKS],
                         ids=[f"{p.relative_to(ROOT)}#{i}" for i, (p, _) in enumerate(JS_BLOCKS)])
def test_the_documented_node_examples_run_as_written(
    source: str, manifest_path: Path, redis_url: str, redis_client: redis.Redis,
    tmp_path: Path
) -> None:
    """Each ```js block of the README and docs/other-languages.md, saved as a file next to a
    manifest.json and ioredis (as a reader would), runs against the server given by
    $REDIS_URL, and leaves the lock free with its fence issued."""
    node = _node()
    (tmp_path / "manifest.json").write_bytes(manifest_path.read_bytes())
    (tmp_path / "node_modules").symlink_to(NODE_DIR / "node_modules")
    (tmp_path / "example.mjs").write_text(source, encoding="utf-8")
    out = subprocess.run([node, "example.mjs"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=DEADLINE, env={**os.environ, "REDIS_URL": redis_url})
    assert out.returncode == 0, out.stderr
    assert "holding orders:42 with fence 1\n" in out.stdout
    assert "released: 1\n" in out.stdout
    lock = Lock(redis_client, "orders:42")
    assert not lock.locked()
    assert lock.acquire()
    assert lock.fence == 2  # the example's acquisition had fence 1


def test_there_are_documented_node_examples() -> None:
    assert [p.name for p, _ in JS_BLOCKS].count("README.md") == 1


@pytest.fixture
def library(redis_client: redis.Redis, redis_server_version: Any,
            manifest_path: Path) -> Iterator[bool]:
    """The Functions library loaded by Python (where the server has Functions), deleted
    afterwards if this loaded it."""
    if redis_server_version[1] < (7, 0):
        yield False
        return
    done = ScriptRegistry().load_library(redis_client)
    try:
        yield True
    finally:
        if "loaded" in done.values():
            name = json.loads(manifest_path.read_text())["functions"]["library"]
            redis_client.execute_command("FUNCTION", "DELETE", name)


def test_node_calls_the_functions_library_python_loaded(
    node_client: Any, redis_client: redis.Redis, library: bool
) -> None:
    """Functions mode from Node: FCALL / FCALL_RO by the manifest's function names, on the
    library Python loaded; before Redis 7.0 (manifest functions.min_redis) Node sees that
    from the server's version and does not try."""
    supported = library
    node = node_client("functions", name="fn-lock")
    result = node.expect("functions")
    node.finish()
    assert result["supported"] is supported, result
    if not supported:
        return
    assert result["commands"] == ["FCALL", "FCALL_RO", "FCALL"]
    assert result["fence"] == 1
    assert result["inspect"][0] == 2  # held by Node's token, seen through FCALL_RO
    assert result["released"] == 1
    lock = Lock(redis_client, "fn-lock")  # EVALSHA from Python: the same state
    assert lock.acquire()
    assert lock.fence == 2
