"""``pyredis-atomic bench``: ours against today's libraries, same server, same run."""

from __future__ import annotations

from pathlib import Path

import click

from .._common import fail


@click.command("bench")
@click.option("--url", default=None, metavar="URL",
              help="Benchmark this Redis (default: start a redis-server of our own).")
@click.option("--quick", is_flag=True, help="A short smoke run (few rounds, 1 s contention).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the raw figures to this JSON file.")
@click.option("--only", multiple=True, metavar="CASE",
              help="Run only cases whose name contains CASE (repeatable).")
def command(url: str | None, quick: bool, json_path: Path | None, only: tuple[str, ...]) -> None:
    """Benchmark every primitive against its baselines and print a table (needs the
    ``bench`` extra: python-redis-lock, pottery, limits)."""
    try:
        import limits  # noqa: F401
        import pottery  # noqa: F401
        import redis_lock  # noqa: F401
    except ImportError as exc:
        fail(f"the benchmark needs the bench extra (pip install 'pyredis-atomic[bench]'): {exc}")
    from ...bench import run_bench

    run_bench(url, quick=quick, json_path=json_path, only=list(only) or None, out=click.echo)
