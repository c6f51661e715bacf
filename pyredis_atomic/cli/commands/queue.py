"""``pyredis-atomic queue``: inspect and operate a ReliableQueue (stats, expired leases,
dead letters, redrive, purge)."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import click

from ..._core.keys import DEFAULT_PREFIX
from ..._core.queue import DEFAULT_MAX_DELIVERIES, DEFAULT_VISIBILITY_TIMEOUT, QueueCore
from ...queue import Message, ReliableQueue
from .._common import connect, fail, handle_errors, url_option

F = TypeVar("F", bound=Callable[..., Any])


def _queue_options(func: F) -> F:
    func = click.option("--prefix", default=DEFAULT_PREFIX, show_default=True,
                        help="Key prefix (namespace) of the queue.")(func)
    func = click.argument("name")(func)
    return url_option(func)


def _atomic_errors(func: F) -> F:
    # Bad input: one line, exit 2 (AtomicError is handle_errors' business).
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            fail(str(exc))
        return None

    return wrapper  # type: ignore[return-value]


def _open(url: str | None, cluster: bool, name: str, prefix: str,
          max_deliveries: int = DEFAULT_MAX_DELIVERIES) -> ReliableQueue:
    # Validate before connecting, so bad input never waits on the network.
    QueueCore(name, visibility_timeout=DEFAULT_VISIBILITY_TIMEOUT,
              max_deliveries=max_deliveries, prefix=prefix)
    client = connect(url, cluster)
    # An operator must be able to drain a queue on any server: no eviction-policy refusal.
    return ReliableQueue(client, name, prefix=prefix, max_deliveries=max_deliveries,
                         allow_eviction=True)


@click.group("queue")
def command() -> None:
    """Reliable queues: stats, expired leases, dead letters, redrive, purge."""


@command.command("stats")
@_queue_options
@click.option("--json", "as_json", is_flag=True, help="Print the stats as JSON.")
@handle_errors
@_atomic_errors
def stats(*, url: str | None, cluster: bool, name: str, prefix: str, as_json: bool) -> None:
    """Messages by state (pending, in flight, delayed, dead) and the oldest pending age."""
    result = _open(url, cluster, name, prefix).stats()
    if as_json:
        click.echo(json.dumps(result))
        return
    for key, value in result.items():
        shown = "-" if value is None else (f"{value:.3f}s" if isinstance(value, float)
                                           else str(value))
        click.echo(f"{key}: {shown}")


@command.command("requeue-expired")
@_queue_options
@click.option("--limit", default=10_000, show_default=True, type=click.IntRange(min=1),
              help="Move at most this many expired leases.")
@click.option("--max-deliveries", default=DEFAULT_MAX_DELIVERIES, show_default=True,
              type=click.IntRange(min=1),
              help="Dead-letter a message whose expired lease was its this-many-th delivery "
                   "(use the consumers' setting).")
@handle_errors
@_atomic_errors
def requeue_expired(*, url: str | None, cluster: bool, name: str, prefix: str, limit: int,
                    max_deliveries: int) -> None:
    """Move expired leases back to pending (dead letters past max deliveries)."""
    moved = _open(url, cluster, name, prefix, max_deliveries).requeue_expired(limit)
    click.echo(f"requeued {moved} expired lease(s)")


def _describe(msg: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"id": msg.id, "deliveries": msg.deliveries,
                           "reason": msg.dead_reason, "dead_at": msg.dead_at}
    try:
        out["payload"] = msg.payload.decode("utf-8")
    except UnicodeDecodeError:
        out["payload_base64"] = base64.b64encode(msg.payload).decode("ascii")
    return out


@command.command("dead")
@_queue_options
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1),
              help="List at most this many (oldest death first).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@handle_errors
@_atomic_errors
def dead(*, url: str | None, cluster: bool, name: str, prefix: str, limit: int,
         as_json: bool) -> None:
    """List dead letters with their delivery counts and why they died."""
    letters = _open(url, cluster, name, prefix).dead_letters(limit)
    for msg in letters:
        if as_json:
            click.echo(json.dumps(_describe(msg)))
            continue
        when = datetime.fromtimestamp(msg.dead_at or 0, tz=timezone.utc).isoformat(
            timespec="milliseconds")
        preview = msg.payload if len(msg.payload) <= 60 else msg.payload[:60] + b"..."
        click.echo(f"{msg.id}  deliveries={msg.deliveries}  reason={msg.dead_reason}  "
                   f"died={when}  payload={preview!r}")
    if not as_json:
        click.echo(f"({len(letters)} dead letter(s) shown)")


@command.command("redrive")
@_queue_options
@click.option("--id", "ids", multiple=True, metavar="ID",
              help="Redrive only this dead letter (repeatable); default: all.")
@handle_errors
@_atomic_errors
def redrive(*, url: str | None, cluster: bool, name: str, prefix: str,
            ids: tuple[str, ...]) -> None:
    """Move dead letters back to pending as new messages."""
    moved = _open(url, cluster, name, prefix).redrive(list(ids) if ids else None)
    click.echo(f"redrove {moved} dead letter(s)")


@command.command("purge")
@_queue_options
@click.option("--dead-only", is_flag=True, help="Delete only the dead letters.")
@click.option("--yes", is_flag=True, help="Confirm: this deletes messages for good.")
@handle_errors
@_atomic_errors
def purge(*, url: str | None, cluster: bool, name: str, prefix: str, dead_only: bool,
          yes: bool) -> None:
    """Delete every message of the queue (or only its dead letters). Needs --yes."""
    if not yes:
        fail("purge deletes messages for good; add --yes to confirm", code=1)
    deleted = _open(url, cluster, name, prefix).purge(dead_only=dead_only)
    click.echo(f"deleted {deleted} message(s)")
