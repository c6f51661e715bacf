"""Charts of a benchmark run (``pyredis-atomic bench --plot DIR``), drawn with matplotlib
(the ``bench`` or ``docs`` extra). Every chart is written as PNG and SVG, and says the run's
date and machine, since absolute figures only mean something next to those.

* ``ratios``: every case's ratio to the baseline of its group, measured in the same run.
* ``throughput``: each group's cases in their own unit, with the slowest-fastest round.
* ``handoff``: the contended lock hand-off (one holder's release to the next holder's
  acquire) as a latency distribution, ours against redis-py's ``Lock`` and the others.
* ``server-cost``: how long Redis is busy per call of each script (``SLOWLOG``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["CHARTS", "plot_results"]

CHARTS = ("ratios", "throughput", "handoff", "server-cost")
OURS = "pyredis-atomic"


def _subtitle(meta: dict[str, Any]) -> str:
    return (f"{meta.get('date', '?')}: {meta.get('machine', '?')}, Python "
            f"{meta.get('python', '?')}, redis-py {meta.get('redis_py', '?')}, redis-server "
            f"{meta.get('redis_server', '?')}{' (quick run)' if meta.get('quick') else ''}")


def _color(case: str) -> str:
    return "#c2185b" if case.startswith(OURS) else "#607d8b"


def plot_results(data: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write the charts of ``data`` (the benchmark's JSON: ``meta``, ``rows``) into
    ``out_dir``; return the files written."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    meta, rows = data["meta"], data["rows"]
    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        fig.text(0.01, 0.005, _subtitle(meta), fontsize=7, color="#555555")
        for ext in ("png", "svg"):
            path = out_dir / f"{name}.{ext}"
            fig.savefig(path, dpi=110, bbox_inches="tight",
                        metadata={"Date": None} if ext == "svg" else None)
            written.append(path)
        plt.close(fig)

    # -- ratios to the baseline of each group ---------------------------------------------
    ratio_rows = [r for r in rows if r.get("ratio") is not None]
    if ratio_rows:
        labels = [f"{r['case']}  vs {r['baseline']}" for r in ratio_rows]
        fig, ax = plt.subplots(figsize=(10, 0.32 * len(labels) + 1.2))
        y = range(len(labels))
        ax.barh(list(y), [r["ratio"] for r in ratio_rows],
                color=[_color(r["case"]) for r in ratio_rows])
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_yticks(list(y), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("ratio to the baseline, same run (log scale; > 1 is faster)")
        for i, r in enumerate(ratio_rows):
            ax.text(r["ratio"], i, f" {r['ratio']:.2f}x", va="center", fontsize=7)
        ax.set_title("pyredis-atomic (red) and peers (grey) against each group's baseline")
        save(fig, "ratios")

    # -- throughput per group -------------------------------------------------------------
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["unit"].endswith("/s"):
            groups.setdefault(r["group"], []).append(r)
    if groups:
        cols = 2
        nrows = (len(groups) + cols - 1) // cols
        fig, axes = plt.subplots(nrows, cols, figsize=(12, 2.6 * nrows), squeeze=False)
        for ax, (group, members) in zip(axes.flat, groups.items(), strict=False):
            values = [m["value"] for m in members]
            err = [[max(0.0, m["value"] - (m["low"] if m.get("low") is not None else m["value"]))
                    for m in members],
                   [max(0.0, (m["high"] if m.get("high") is not None else m["value"]) - m["value"])
                    for m in members]]
            pos = list(range(len(members)))
            ax.barh(pos, values, xerr=err, color=[_color(m["case"]) for m in members],
                    error_kw={"elinewidth": 0.8, "capsize": 2})
            ax.set_yticks(pos, [m["case"] for m in members], fontsize=7)
            ax.invert_yaxis()
            ax.set_title(group, fontsize=8)
            ax.set_xlabel(members[0]["unit"], fontsize=7)
            ax.tick_params(axis="x", labelsize=7)
        for ax in list(axes.flat)[len(groups):]:
            ax.axis("off")
        fig.suptitle("Median of the timed rounds; whiskers: slowest and fastest round")
        fig.tight_layout(rect=(0, 0.02, 1, 0.98))
        save(fig, "throughput")

    # -- contended lock hand-off latency distribution ---------------------------------------
    contended: dict[str, list[tuple[str, list[float]]]] = {}
    for r in rows:
        gaps = r.get("extra", {}).get("handoffs_ms")
        if gaps:
            contended.setdefault(r["group"], []).append((r["case"], sorted(gaps)))
    if contended:
        fig, axes = plt.subplots(1, len(contended), figsize=(6 * len(contended), 4),
                                 squeeze=False)
        for ax, (group, series) in zip(axes.flat, contended.items(), strict=True):
            for case, gaps in series:
                n = len(gaps)
                ax.step(gaps, [(i + 1) / n for i in range(n)], where="post",
                        label=f"{case} (median {gaps[n // 2]:.2f} ms)",
                        color=_color(case) if case.startswith(OURS) else None,
                        linewidth=2 if case.startswith(OURS) else 1)
            ax.set_xscale("log")
            ax.set_xlabel("hand-off: release to the next holder's acquire (ms, log scale)")
            ax.set_ylabel("fraction of hand-offs at most this long")
            ax.set_title(group, fontsize=8)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7, loc="lower right")
        fig.suptitle("Contended lock hand-off latency (cumulative distribution)")
        fig.tight_layout(rect=(0, 0.02, 1, 0.97))
        save(fig, "handoff")

    # -- server cost per script -----------------------------------------------------------
    costs = [r for r in rows if r["unit"] == "us/call" and r["group"].startswith("server cost")
             and not r["case"].startswith("all ")]
    if costs:
        fig, ax = plt.subplots(figsize=(8, 0.26 * len(costs) + 1.2))
        pos = list(range(len(costs)))
        ax.barh(pos, [c["value"] for c in costs], color="#c2185b")
        ax.set_yticks(pos, [c["case"] for c in costs], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("microseconds Redis spends per call (SLOWLOG mean)")
        ax.set_title("Server cost per script")
        save(fig, "server-cost")
    return written
