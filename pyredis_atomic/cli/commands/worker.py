"""``pyredis-atomic worker MODULE:FUNC``: run a queue :class:`~pyredis_atomic.Worker` with a
handler imported from a module, and print a status line per interval on stderr."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import click

from ..._core.keys import DEFAULT_PREFIX
from ..._core.queue import DEFAULT_VISIBILITY_TIMEOUT
from ..._core.worker import Counts, Retry
from .._common import connect, default_url, fail


class _JsonFormatter(logging.Formatter):
    """One JSON object per log record (``--json-logs``)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": round(record.created, 3), "level": record.levelname,
                               "logger": record.name, "message": record.getMessage()}
        for key in ("event", "queue", "counts", "rate"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def _load(target: str) -> Callable[..., Any]:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        fail(f"handler must be MODULE:FUNC, got {target!r}")
    # Like `python -m`: modules next to where the command runs are importable.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        fail(f"cannot import {module_name!r}: {exc}")
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            fail(f"{module_name!r} has no attribute {attr!r}")
    if not callable(obj):
        fail(f"{target} is not callable")
    return obj  # type: ignore[no-any-return]


def _status(queue: str, counts: Counts, last: dict[str, float], json_logs: bool) -> str:
    snap = counts.snapshot()
    now = time.monotonic()
    done = snap["acked"] + snap["retried"] + snap["dead"]
    rate = (done - last["done"]) / max(1e-9, now - last["at"])
    last["done"], last["at"] = done, now
    if json_logs:
        return json.dumps({"time": round(time.time(), 3), "event": "worker.status",
                           "queue": queue, "counts": snap, "rate": round(rate, 1)})
    return (f"worker queue={queue} claimed={snap['claimed']} acked={snap['acked']} "
            f"retried={snap['retried']} dead={snap['dead']} lost={snap['lost']} "
            f"in_flight={snap['in_flight']} rate={rate:.1f}/s")


@click.command("worker")
@click.argument("handler", metavar="MODULE:FUNC")
@click.option("--queue", "queue_name", required=True, metavar="NAME", help="The queue's name.")
@click.option("--url", default=None, metavar="URL",
              help="Redis URL (default: $REDIS_URL, else redis://localhost:6379/0).")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Key prefix.")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 10_000),
              help="Handlers running at once (threads, or tasks for an async handler).")
@click.option("--prefetch", default=None, type=click.IntRange(1, 1000),
              help="Claim up to this many messages ahead, ack in batches (default: off).")
@click.option("--grace", default=30.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds running handlers get to finish after SIGTERM/SIGINT.")
@click.option("--visibility-timeout", default=DEFAULT_VISIBILITY_TIMEOUT, show_default=True,
              type=click.FloatRange(min=0.01), help="Lease of each delivery, in seconds.")
@click.option("--max-attempts", default=5, show_default=True, type=click.IntRange(min=1),
              help="Deliveries before a message goes to the dead letters.")
@click.option("--backoff", default=1.0, show_default=True, type=click.FloatRange(min=0),
              help="Retry delay after the first failure (doubles, full jitter).")
@click.option("--max-backoff", default=300.0, show_default=True, type=click.FloatRange(min=0),
              help="Longest retry delay.")
@click.option("--handler-timeout", default=None, type=click.FloatRange(min=0.001),
              help="Seconds a handler may run (counted as a failure past it).")
@click.option("--interval", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds between status lines on stderr.")
@click.option("--json-logs", "--json", "json_logs", is_flag=True,
              help="Logs and status lines on stderr as JSON objects, and the final counts "
                   "as one JSON document on stdout at exit.")
def command(*, handler: str, queue_name: str, url: str | None, prefix: str, concurrency: int,
            prefetch: int | None, grace: float, visibility_timeout: float, max_attempts: int,
            backoff: float, max_backoff: float, handler_timeout: float | None,
            interval: float, json_logs: bool) -> None:
    """Consume queue NAME with the function MODULE:FUNC (an ``async def`` runs on asyncio).

    The handler gets each Message; returning acks it, raising retries it with backoff and
    dead-letters it after --max-attempts (with the failure recorded). SIGTERM / SIGINT:
    stop claiming, let running handlers finish for up to --grace seconds, give the rest
    back, exit 0; a second signal exits at once. One status line per --interval on stderr.
    """
    func = _load(handler)
    log_handler = logging.StreamHandler(sys.stderr)
    log_handler.setFormatter(_JsonFormatter() if json_logs else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("pyredis_atomic")
    root.addHandler(log_handler)
    root.setLevel(logging.INFO)
    retry = Retry(max_attempts=max_attempts, backoff=backoff, max_backoff=max_backoff)
    is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        type(func).__call__)
    options: dict[str, Any] = {"concurrency": concurrency, "retry": retry,
                               "prefetch": prefetch, "handler_timeout": handler_timeout,
                               "grace": grace}
    counts: list[Counts] = []
    stop_status = threading.Event()

    last = {"done": 0.0, "at": time.monotonic()}

    def report() -> None:
        while not stop_status.wait(interval):
            if counts:
                click.echo(_status(queue_name, counts[0], last, json_logs), err=True)

    reporter = threading.Thread(target=report, daemon=True, name="pyredis-atomic-status")
    reporter.start()
    try:
        if is_async:
            asyncio.run(_run_async(url, prefix, queue_name, visibility_timeout, func, options,
                                   counts))
        else:
            from ...queue import ReliableQueue
            from ...worker import Worker

            client = connect(url)
            queue = ReliableQueue(client, queue_name, prefix=prefix,
                                  visibility_timeout=visibility_timeout,
                                  max_deliveries=max_attempts)
            worker = Worker(queue, func, **options)
            counts.append(worker.counts)
            worker.run()
    finally:
        stop_status.set()
        if counts:
            click.echo(_status(queue_name, counts[0], last, json_logs), err=True)
    if json_logs:
        click.echo(json.dumps({"queue": queue_name,
                               "counts": counts[0].snapshot() if counts else None}))


async def _run_async(url: str | None, prefix: str, name: str, visibility_timeout: float,
                     func: Callable[..., Any], options: dict[str, Any],
                     counts: list[Counts]) -> None:
    import redis.asyncio

    from ...asyncio.queue import ReliableQueue
    from ...asyncio.worker import Worker

    connect(url).close()  # the same clean failure as the sync path when Redis is not there
    client = redis.asyncio.Redis.from_url(url or default_url(), socket_connect_timeout=5)
    try:
        queue = ReliableQueue(client, name, prefix=prefix, visibility_timeout=visibility_timeout,
                              max_deliveries=options["retry"].max_attempts)
        worker = Worker(queue, func, **options)
        counts.append(worker.counts)
        await worker.run()
    finally:
        await client.aclose()
