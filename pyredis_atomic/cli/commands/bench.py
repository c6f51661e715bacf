"""``pyredis-atomic bench``: ours against today's libraries, same server, same run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .._common import echo, emit_json, fail, handle_errors, json_option


@click.command("bench")
@click.option("--url", default=None, metavar="URL",
              help="Benchmark this Redis (default: start a redis-server of our own).")
@click.option("--quick", is_flag=True, help="A short smoke run (few rounds, 1 s contention).")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the raw figures (the --json document) to this file.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also draw the charts (PNG and SVG) into this directory (needs matplotlib).")
@click.option("--from", "from_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Do not run: take the raw figures of an earlier run from this file "
                   "(written by --output), e.g. to draw its charts with --plot.")
@click.option("--only", multiple=True, metavar="CASE",
              help="Run only cases whose name contains CASE (repeatable).")
@json_option
@handle_errors
def command(url: str | None, quick: bool, output: Path | None, plot_dir: Path | None,
            from_file: Path | None, only: tuple[str, ...], as_json: bool) -> None:
    """Benchmark every primitive against its baselines and print a table (needs the
    ``bench`` extra: python-redis-lock, pottery, limits). Progress goes to stderr."""
    if plot_dir is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError as exc:
            fail(f"--plot needs matplotlib (pip install 'pyredis-atomic[bench]'): {exc}")
    data: dict[str, Any]
    if from_file is not None:
        try:
            data = json.loads(from_file.read_text(encoding="utf-8"))
            data["meta"], data["rows"]
        except (ValueError, KeyError, TypeError) as exc:
            fail(f"{from_file} is not the raw figures of a benchmark run: {exc!r}")
    else:
        try:
            import limits  # noqa: F401
            import pottery  # noqa: F401
            import redis_lock  # noqa: F401
        except ImportError as exc:
            fail(f"the benchmark needs the bench extra (pip install 'pyredis-atomic[bench]'): "
                 f"{exc}")
        from ...bench import run_bench

        data = run_bench(url, quick=quick, json_path=output, only=list(only) or None,
                         out=(lambda s: None) if as_json else echo)
    if as_json:
        emit_json(data)
    if plot_dir is not None:
        from ...bench.plot import plot_results

        for path in plot_results(data, plot_dir):
            click.echo(f"chart written: {path}", err=True)
