"""``pyredis-atomic queue``: inspect and operate a ReliableQueue (stats, expired leases,
dead letters, redrive, purge).

A queue none of whose keys exist is reported as absent (exit 1, a note on stderr) by every
command, so a typo in NAME does not pass for an empty queue.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import click

from ..._core.keys import DEFAULT_PREFIX
from ..._core.queue import DEFAULT_MAX_DELIVERIES, DEFAULT_VISIBILITY_TIMEOUT, QueueSpec
from ...queue import Message, ReliableQueue
from .._common import (
    NEGATIVE,
    connect,
    echo,
    emit_json,
    fail,
    handle_errors,
    json_option,
    jsonable,
    mode_option,
    progress,
    script_registry,
    url_option,
)

F = TypeVar("F", bound=Callable[..., Any])


def _queue_options(func: F) -> F:
    func = json_option(func)
    func = click.option("--prefix", default=DEFAULT_PREFIX, show_default=True,
                        help="Key prefix (namespace) of the queue.")(func)
    func = click.argument("name")(func)
    func = mode_option(func)
    return url_option(func)


def _open(url: str | None, cluster: bool, name: str, prefix: str, functions: bool | None,
          max_deliveries: int = DEFAULT_MAX_DELIVERIES) -> ReliableQueue:
    """The queue, on a connected client; exits 1 when the queue has no keys at all."""
    return _open_with_client(url, cluster, name, prefix, functions, max_deliveries)[0]


def _open_with_client(url: str | None, cluster: bool, name: str, prefix: str,
                      functions: bool | None, max_deliveries: int = DEFAULT_MAX_DELIVERIES,
                      ) -> tuple[ReliableQueue, Any]:
    # Validate before connecting, so bad input never waits on the network.
    QueueSpec(name, visibility_timeout=DEFAULT_VISIBILITY_TIMEOUT,
              max_deliveries=max_deliveries, prefix=prefix)
    client = connect(url, cluster)
    # An operator must be able to drain a queue on any server: no eviction-policy refusal.
    queue = ReliableQueue(client, name, prefix=prefix, max_deliveries=max_deliveries,
                          allow_eviction=True, registry=script_registry(functions))
    # All keys share one hash tag, so one EXISTS answers on a cluster too.
    if not client.exists(*queue.keys.values()):
        fail(f"no queue named {name!r} under prefix {prefix!r} (none of its keys exist)",
             code=NEGATIVE)
    return queue, client


@click.group("queue")
def command() -> None:
    """Reliable queues: stats, expired leases, dead letters, redrive, purge."""


@command.command("stats")
@_queue_options
@handle_errors
def stats(*, url: str | None, cluster: bool, name: str, prefix: str, as_json: bool,
          functions: bool | None) -> None:
    """Messages by state (pending, in flight, delayed, dead) and the oldest pending age.
    Exit 1 when the queue does not exist."""
    result = jsonable(_open(url, cluster, name, prefix, functions).stats())
    if as_json:
        emit_json(result)
        return
    for key, value in result.items():
        shown = "-" if value is None else (f"{value:.3f}s" if isinstance(value, float)
                                           else str(value))
        echo(f"{key}: {shown}")


@command.command("requeue-expired")
@_queue_options
@click.option("--limit", default=10_000, show_default=True, type=click.IntRange(min=1),
              help="Move at most this many expired leases.")
@click.option("--max-deliveries", default=DEFAULT_MAX_DELIVERIES, show_default=True,
              type=click.IntRange(min=1),
              help="Dead-letter a message whose expired lease was its this-many-th delivery "
                   "(use the consumers' setting).")
@handle_errors
def requeue_expired(*, url: str | None, cluster: bool, name: str, prefix: str, as_json: bool,
                    functions: bool | None, limit: int, max_deliveries: int) -> None:
    """Move expired leases back to pending (dead letters past max deliveries)."""
    moved = _open(url, cluster, name, prefix, functions, max_deliveries).requeue_expired(limit)
    if as_json:
        emit_json({"requeued": moved})
    else:
        echo(f"requeued {moved} expired lease(s)")


def message_json(msg: Message) -> dict[str, Any]:
    """A message with the names of :class:`~pyredis_atomic.Message`; the payload as text
    (``payload``) when it is UTF-8, else as ``payload_base64``."""
    out: dict[str, Any] = {"id": msg.id, "deliveries": msg.deliveries,
                           "dead_reason": msg.dead_reason, "dead_at": msg.dead_at}
    f = msg.failure
    if f is not None:
        out["failure"] = {"type": f.type, "message": f.message, "traceback": f.traceback,
                          "at": f.at}
    try:
        out["payload"] = msg.payload.decode("utf-8")
    except UnicodeDecodeError:
        out["payload_base64"] = base64.b64encode(msg.payload).decode("ascii")
    return out


@command.command("dead")
@_queue_options
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1),
              help="List at most this many (oldest death first).")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0),
              help="Skip this many first (for paging through many dead letters).")
@handle_errors
def dead(*, url: str | None, cluster: bool, name: str, prefix: str, as_json: bool,
         functions: bool | None, limit: int, offset: int) -> None:
    """List dead letters with their delivery counts, why they died and, when one was
    recorded, the last failure (--json: with its traceback)."""
    letters = _open(url, cluster, name, prefix, functions).dead_letters(limit, offset)
    if as_json:
        emit_json([message_json(msg) for msg in letters])
        return
    for msg in letters:
        when = datetime.fromtimestamp(msg.dead_at or 0, tz=timezone.utc).isoformat(
            timespec="milliseconds")
        preview = msg.payload if len(msg.payload) <= 60 else msg.payload[:60] + b"..."
        echo(f"{msg.id}  deliveries={msg.deliveries}  dead_reason={msg.dead_reason}  "
             f"dead_at={when}  payload={preview!r}")
        f = msg.failure
        if f is not None:
            # The last failure recorded (by a Worker, or nack(failure=...)): one line.
            text = f"{f.type}: {f.message}" if f.type else f.message
            echo(f"    failure: {text.splitlines()[0] if text else '-'}")
    echo(f"({len(letters)} dead letter(s) shown, from offset {offset})")


@command.command("redrive")
@_queue_options
@click.option("--id", "ids", multiple=True, metavar="ID",
              help="Redrive only this dead letter (repeatable); default: all.")
@handle_errors
def redrive(*, url: str | None, cluster: bool, name: str, prefix: str, as_json: bool,
            functions: bool | None, ids: tuple[str, ...]) -> None:
    """Move dead letters back to pending as new messages. Exit 1 when an --id given is not
    a dead letter (it is named; the others are moved)."""
    queue, client = _open_with_client(url, cluster, name, prefix, functions)
    not_dead: list[str] = []
    if ids:
        # Which ids are dead letters, read before moving them: the script skips the others
        # silently (that is what makes a re-send safe), but the operator wants to know.
        scores = client.zmscore(queue.keys["dead"], list(ids))
        not_dead = [i for i, score in zip(ids, scores, strict=True) if score is None]
    moved = queue.redrive(list(ids) if ids else None)
    if as_json:
        emit_json({"redriven": moved, "not_dead": not_dead})
    else:
        echo(f"redrove {moved} dead letter(s)")
        for i in not_dead:
            echo(f"  not a dead letter (skipped): {i}")
    if not_dead:
        raise SystemExit(NEGATIVE)


@command.command("purge")
@_queue_options
@click.option("--dead-only", is_flag=True, help="Delete only the dead letters.")
@click.option("--yes", is_flag=True, help="Confirm: this deletes messages for good.")
@handle_errors
def purge(*, url: str | None, cluster: bool, name: str, prefix: str, as_json: bool,
          functions: bool | None, dead_only: bool, yes: bool) -> None:
    """Delete every message of the queue (or only its dead letters). Needs --yes (exit 2
    without it)."""
    if not yes:
        fail(f"queue purge deletes the messages of {name!r} for good; refused without --yes")
    progress(f"purging {name!r}...")
    deleted = _open(url, cluster, name, prefix, functions).purge(
        dead_only=dead_only,
        on_batch=lambda done, left: progress(f"purging {name!r}: {done} deleted, "
                                             f"{left} left"))
    progress(None)
    if as_json:
        emit_json({"deleted": deleted})
    else:
        echo(f"deleted {deleted} message(s)")
