"""``pyredis-atomic semaphore``: look at semaphores."""

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
    url_option,
)


@click.group("semaphore")
def command() -> None:
    """Counting semaphores (Semaphore)."""


@command.command("show")
@click.argument("name")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Key namespace.")
@json_option
@url_option
@handle_errors
def show(name: str, prefix: str, as_json: bool, url: str | None, cluster: bool) -> None:
    """List the permits of semaphore NAME held now, with their remaining lease.

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
    holders = Semaphore(client, name, limit=1, prefix=prefix).holders()
    if as_json:
        emit_json({"name": name, "count": len(holders),
                   "holders": [{"permit": p, "ttl": left} for p, left in holders]})
    elif not holders:
        echo(f"{name}: no permit held (or no semaphore of that name under {prefix!r})")
    else:
        echo(f"{name}: {len(holders)} permit(s) held")
        for permit, left in holders:
            echo(f"  {permit}  lease ends in {left:.3f} s")
    if not holders:
        raise SystemExit(NEGATIVE)
