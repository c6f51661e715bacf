"""Runs every case, prints progress (stderr) and the table (stdout), writes the JSON."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

from ..registry import default_registry
from .cases import CASES, Bench
from .report import check_targets, format_table, format_targets, to_json
from .server_cost import server_cost
from .timing import Result

__all__ = ["run_bench"]


@contextlib.contextmanager
def _server(url: str | None, say: Callable[[str], None]) -> Iterator[str]:
    if url:
        yield url
        return
    from ..testing import RedisServer

    with RedisServer() as server:
        say(f"started {server.identity.describe()}, at {server.url}")
        yield server.url


def _meta(client: redis.Redis, url: str, quick: bool) -> dict[str, Any]:
    import redis as redis_mod

    info = client.info("server")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "python": platform.python_version(),
        "redis_py": redis_mod.__version__,
        "redis_server": info.get("redis_version"),
        "url": url,
        "quick": quick,
    }


def run_bench(url: str | None = None, *, quick: bool = False, json_path: Path | None = None,
              only: list[str] | None = None, out: Callable[[str], None] = print,
              say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the benchmark; ``only``: case names (substrings) to run. Returns the raw
    figures (``meta``, ``rows``, ``targets``: what ``json_path`` receives)."""
    progress = say or (lambda s: print(s, file=sys.stderr, flush=True))
    with _server(url, progress) as server_url:
        client = redis.Redis.from_url(server_url)
        default_registry().load(client)
        bench = Bench(client=client, url=server_url, quick=quick, say=progress)
        rows: list[Result] = []
        cases = [(n, f) for n, f in CASES if not only or any(o in n for o in only)]
        with_cost = not only or any(o in "server cost" for o in only)
        total = len(cases) + with_cost
        for i, (name, fn) in enumerate(cases, start=1):
            progress(f"[{i}/{total}] {name}")
            rows.extend(fn(bench))
        if with_cost:
            progress(f"[{total}/{total}] server cost per script")
            rows.extend(server_cost(bench))
        meta = _meta(client, server_url, quick)
        targets = check_targets(rows)
        out(f"pyredis-atomic benchmark, {meta['date']}: {meta['machine']}, Python "
            f"{meta['python']}, redis-py {meta['redis_py']}, redis-server "
            f"{meta['redis_server']}{' (quick run)' if quick else ''}\n")
        out(format_table(rows))
        out("\nTargets:\n")
        out(format_targets(targets))
        data = to_json(rows, targets, meta)
        if json_path is not None:
            json_path.write_text(json.dumps(data, indent=2) + "\n")
            progress(f"raw figures written to {json_path}")
        client.close()
    return data
