"""The layout rules of the package (issue 13), checked on the source text."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PKG = Path(__file__).resolve().parent.parent / "pyredis_atomic"
ROOT = PKG.parent


def _imports(path: Path) -> list[tuple[str, int]]:
    """(module, level) of every import in ``path``."""
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.extend((alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.append((node.module or "", node.level))
    return out


def test_core_imports_nothing_of_redis_py() -> None:
    for path in sorted((PKG / "_core").glob("*.py")):
        bad = [m for m, level in _imports(path) if level == 0 and m.split(".")[0] == "redis"]
        assert bad == [], f"{path.name} imports {bad}"


def test_asyncio_modules_import_no_sync_shell() -> None:
    # Each asyncio module is a source of its own: what both APIs share is in _core.
    shells = {p.stem for p in (PKG / "asyncio").glob("*.py")} - {"__init__"}
    for path in sorted((PKG / "asyncio").glob("*.py")):
        for module, level in _imports(path):
            if level == 2:
                assert module.split(".")[0] not in shells, f"{path.name} imports ..{module}"


def test_every_generated_file_names_its_source_and_is_current() -> None:
    spec = importlib.util.spec_from_file_location("unasync", ROOT / "scripts" / "unasync.py")
    assert spec is not None
    assert spec.loader is not None
    unasync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(unasync)
    assert unasync.FILES
    for source, target, _ in unasync.FILES:
        first = (ROOT / target).read_text(encoding="utf-8").splitlines()[0]
        assert first == f"# GENERATED from {source} by scripts/unasync.py: do not edit."
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "unasync.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_check_fails_on_a_hand_edit(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("unasync", ROOT / "scripts" / "unasync.py")
    assert spec is not None
    assert spec.loader is not None
    unasync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(unasync)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(PKG, tmp_path / PKG.name, ignore=shutil.ignore_patterns("__pycache__"))
    for source, target, _ in unasync.FILES:
        for name in (source, target):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, tmp_path / name)
    command = [sys.executable, str(ROOT / "scripts" / "unasync.py"), "--check",
               "--root", str(tmp_path)]
    assert subprocess.run(command, capture_output=True, check=False).returncode == 0
    target = tmp_path / unasync.FILES[0][1]
    target.write_text(target.read_text(encoding="utf-8") + "# a hand edit\n", encoding="utf-8")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "-# a hand edit" in done.stdout
    assert "differ from their asyncio source" in done.stderr


def test_catalog_covers_every_primitive() -> None:
    """Every class of the package built on a client is in tests/primitives.py's catalog,
    so the cross-cutting suites (hostile names, ACL, client kinds) cover it."""
    from primitives import CATALOG

    import pyredis_atomic
    import pyredis_atomic.asyncio

    built_on_a_client = set()
    for name in pyredis_atomic.__all__:
        obj = getattr(pyredis_atomic, name)
        if isinstance(obj, type) and "ScriptRegistry" not in name:
            try:
                params = list(inspect.signature(obj).parameters)
            except (TypeError, ValueError):  # a builtin's subclass (an error type)
                continue
            if params[:1] == ["client"]:
                built_on_a_client.add(name)
                assert hasattr(pyredis_atomic.asyncio, name), f"no asyncio {name}"
    assert built_on_a_client == {p.name for p in CATALOG}
    # The hostile fuzz is model-checked per primitive: each entry names its test there.
    fuzz = ast.parse((ROOT / "tests" / "hostile" / "test_hostile_fuzz.py").read_text())
    tests = {n.name for n in fuzz.body if isinstance(n, ast.FunctionDef)}
    for p in CATALOG:
        assert p.fuzz in tests, f"{p.name}: no hostile fuzz test {p.fuzz!r}"



def test_calls_are_built_by_key_name_from_the_headers() -> None:
    from pyredis_atomic._core.queue import QueueSpec
    from pyredis_atomic._core.script import Catalog, header_keys, keyed

    catalog = Catalog()
    for name in catalog.names():
        assert header_keys(name) == tuple(p.name for p in catalog[name].keys)
    spec = QueueSpec("q", visibility_timeout=30, max_deliveries=5)
    for script in ("queue_stats", "queue_dead", "queue_redrive", "queue_purge"):
        call_keys = keyed(script, spec.keys)
        assert [k.rsplit(":", 1)[1] for k in call_keys] == list(header_keys(script))
    with pytest.raises(KeyError, match=r"no key named 'inflight'"):
        keyed("queue_claim", {"pending": "p"})


def test_lock_and_cache_calls_send_their_keys_in_header_order() -> None:
    from pyredis_atomic._core.cache import CacheSpec
    from pyredis_atomic._core.calls import Call
    from pyredis_atomic._core.lock import LockSpec, break_call
    from pyredis_atomic._core.script import header_keys

    lock = LockSpec("l", 10)
    role = {lock.keys.lock: "lock", lock.keys.fences: "fences", lock.keys.signal: "signal"}
    calls: list[Call[Any]] = [lock.acquire_call("t"), lock.release_call("t", 1),
                              lock.extend_call("t"), lock.inspect_call("t"),
                              break_call(lock.keys)]
    for call in calls:
        sent = [role[k.decode() if isinstance(k, bytes) else k] for k in call.keys]
        assert sent == list(header_keys(call.script)), call.script
    cache = CacheSpec("c", ttl=10)
    entry, copy = cache.keys_of("k")
    wake = cache.wake_key(entry)
    role = {entry: "entry", wake: "wake", copy: "copy"}
    opts = cache.defaults
    calls = [cache.fetch_call(entry, "t", opts), cache.release_call(entry, "t", opts),
             cache.fill_call(entry, "t", b"v", "0", opts=opts, delta_ms=1),
             cache.set_call(entry, b"v", "0", opts), cache.delete_call(entry),
             cache.peek_call(entry), cache.inspect_call(entry)]
    for call in calls:
        sent = [role[k.decode() if isinstance(k, bytes) else k] for k in call.keys]
        assert sent == list(header_keys(call.script)), call.script
    assert [role[k] for k in cache.call_keys("cache_near_read", entry)] == ["copy", "entry"]


def test_counter_semaphore_and_limiter_calls_send_their_keys_in_header_order() -> None:
    from pyredis_atomic._core.calls import Call
    from pyredis_atomic._core.counter import CounterSpec
    from pyredis_atomic._core.ratelimit import RateLimiterSpec
    from pyredis_atomic._core.script import header_keys
    from pyredis_atomic._core.semaphore import SemaphoreSpec

    def names(call: Any, role: dict[str, str]) -> list[str]:
        return [role[k.decode() if isinstance(k, bytes) else k] for k in call.keys]

    n = CounterSpec("n", min=0, max=9)
    role = {n.key: "counter", n.config_key: "config", n.request_base + "r": "request"}
    calls: list[Call[Any]] = [n.add_call(1, None, "r"), n.get_call(), n.set_call(1),
                              n.reset_call(), n.config_call(), n.reconfigure_call(False)]
    for call in calls:
        assert names(call, role) == list(header_keys(call.script)), call.script
    # no request id: KEYS[3] is the counter again (the script's "no request" sign)
    assert names(n.add_call(1), {**role, n.key: "counter"}) == ["counter", "config", "counter"]
    s = SemaphoreSpec("s", 2)
    role = {s.holders_key: "holders", s.signal_key: "signal", s.config_key: "config"}
    calls = [s.acquire_call("p"), s.release_call("p"), s.extend_call("p"), s.count_call(),
             s.holders_call(), s.config_call(), s.reconfigure_call()]
    for call in calls:
        assert names(call, role) == list(header_keys(call.script)), call.script
    r = RateLimiterSpec("r", 10, 1, 5)
    role = {r.key: "state", r.config_key: "config"}
    calls = [r.hit_call(), r.peek_call(), r.reset_call(), r.config_call(),
             r.reconfigure_call()]
    for call in calls:
        assert names(call, role) == list(header_keys(call.script)), call.script
