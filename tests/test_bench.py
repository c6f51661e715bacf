"""The benchmark runs end to end in --quick mode (every case, the table, the JSON); its
figures are not checked here (speed is measured by the benchmark, not by tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyredis_atomic.bench.cases import CASES
from pyredis_atomic.bench.report import TARGETS
from pyredis_atomic.testing import RedisServer

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_quick_bench_runs_every_case(tmp_path: Path, redis_server: RedisServer) -> None:
    out = tmp_path / "bench.json"
    charts = tmp_path / "charts"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--output", str(out),
         "--plot", str(charts), "--url", redis_server.url],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Progress went to stderr, one line per case.
    for i, (name, _) in enumerate(CASES, start=1):
        assert f"[{i}/{len(CASES) + 1}] {name}" in proc.stderr
    assert "server cost per script" in proc.stderr
    # The table and the targets went to stdout.
    assert "| case | result | min-max | vs baseline | notes |" in proc.stdout
    for target in TARGETS:
        assert target.description in proc.stdout
    data = json.loads(out.read_text())
    groups = {row["group"] for row in data["rows"]}
    assert len(groups) >= len(CASES) + 1
    assert all(t["verdict"] in ("met", "MISSED") for t in data["targets"]), data["targets"]
    costs = [r for r in data["rows"] if r["group"].startswith("server cost")]
    measured = {r["case"] for r in costs if r["unit"] == "us/call"}
    from pyredis_atomic import default_registry

    assert set(default_registry().names()) <= measured, (
        set(default_registry().names()) - measured)
    assert data["meta"]["quick"] is True
    # The charts of the run (--plot), each as PNG and SVG, including the contended lock
    # hand-off distribution drawn from every hand-off the run recorded.
    from pyredis_atomic.bench.plot import CHARTS

    for name in CHARTS:
        for ext in ("png", "svg"):
            assert (charts / f"{name}.{ext}").stat().st_size > 1000, name
            assert f"chart written: {charts / f'{name}.{ext}'}" in proc.stderr
    handoffs = [r for r in data["rows"] if r["extra"].get("handoffs_ms")]
    assert {r["case"] for r in handoffs} >= {"pyredis-atomic Lock",
                                              "redis-py Lock (sleep=0.1, default)"}
    # Charts can be redrawn from the raw figures alone, without running anything.
    again = tmp_path / "again"
    proc = subprocess.run(
        [sys.executable, "-m", "pyredis_atomic", "bench", "--from", str(out), "--plot",
         str(again), "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows"] == data["rows"]
    assert sorted(p.name for p in again.iterdir()) == sorted(
        f"{n}.{e}" for n in CHARTS for e in ("png", "svg"))


@pytest.mark.parametrize(("ratio", "verdict", "shown"), [
    (0.897, "MISSED", "0.897x"),   # would print as 0.90x: the extra digit explains MISSED
    (0.9004, "met", "0.90x"),
    (0.8949, "MISSED", "0.89x"),
    (1.234, "met", "1.23x"),
])
def test_target_shows_enough_digits_for_its_verdict(ratio: float, verdict: str,
                                                     shown: str) -> None:
    from pyredis_atomic.bench.report import check_targets
    from pyredis_atomic.bench.timing import Result

    row = Result(group="cache, hit", case="pyredis-atomic get_or_set (hit)", value=1.0,
                 baseline="redis-py GET (no decoding)", ratio=ratio)
    checked = {d: (v, m) for d, v, m in check_targets([row])}
    assert checked["cache hit >= 0.9x GET"] == (verdict, shown)
