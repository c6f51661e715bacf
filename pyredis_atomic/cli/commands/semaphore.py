"""``pyredis-atomic semaphore``: look at semaphores, change their stored limit."""

from __future__ import annotations

import click

from ..._core.keys import DEFAULT_PREFIX, check_name, check_prefix
from ...semaphore import Semaphore
from .._common import (
    NEGATIVE,
    connect,
    echo,
    emit_json,
    fail,
    handle_errors,
    json_option,
    mode_option,
    script_registry,
    url_option,
)


@click.group("semaphore")
def command() -> None:
    """Counting semaphores (Semaphore)."""


@command.command("show")
@click.argument("name")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Key namespace.")
@json_option
@mode_option
@url_option
@handle_errors
def show(name: str, prefix: str, as_json: bool, url: str | None, cluster: bool,
         functions: bool | None) -> None:
    """List the permits of semaphore NAME held now, with their remaining lease, and its
    stored limit.

    Exit 1 when no permit is held (a semaphore keeps no keys while nobody holds a permit,
    so a misspelt NAME looks the same: the note says so).
    """
    try:
        check_name(name)
        check_prefix(prefix)
    except (TypeError, ValueError) as exc:
        fail(str(exc))
    client = connect(url, cluster)
    # limit does not matter for reading; the holders are what the server has.
    sem = Semaphore(client, name, limit=1, prefix=prefix, registry=script_registry(functions))
    info = sem.inspect()
    holders, limit = info.holders, info.limit
    if as_json:
        emit_json(info.as_dict())
    elif not holders:
        stored = f" (stored limit {limit})" if limit is not None else ""
        echo(f"{name}: no permit held{stored} (or no semaphore of that name under "
             f"{prefix!r})")
    else:
        stored = f"limit {limit}" if limit is not None else "no stored limit"
        echo(f"{name}: {len(holders)} permit(s) held ({stored})")
        for permit, left in holders:
            echo(f"  {permit}  lease ends in {left:.3f} s")
    if not holders:
        raise SystemExit(NEGATIVE)


@command.command("reconfigure")
@click.argument("name")
@click.argument("limit", type=int)
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Key namespace.")
@json_option
@mode_option
@url_option
@handle_errors
def reconfigure(name: str, limit: int, prefix: str, as_json: bool, url: str | None,
                cluster: bool, functions: bool | None) -> None:
    """Replace the stored limit of semaphore NAME with LIMIT (the one way to change it;
    every client must then be built with the new one).

    Refused (exit 2, nothing changed) while more permits are held than LIMIT: permits are
    never revoked. A raised limit wakes waiters for the slots now free.
    """
    try:
        check_name(name)
        check_prefix(prefix)
    except (TypeError, ValueError) as exc:
        fail(str(exc))
    client = connect(url, cluster)
    sem = Semaphore(client, name, limit=limit, prefix=prefix,
                    registry=script_registry(functions))
    previous = sem.reconfigure(limit)
    was = None if previous is None else previous.limit
    if as_json:
        emit_json({"name": name, "limit": limit, "previous": was, "count": sem.count()})
    else:
        echo(f"{name}: limit {limit} (was: {was if was is not None else 'none stored'})")
