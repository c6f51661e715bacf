"""``pyredis-atomic semaphore``: look at semaphores."""

from __future__ import annotations

import click

from ..._core.keys import DEFAULT_PREFIX
from ...semaphore import Semaphore
from .._common import connect, fail, handle_errors, url_option


@click.group("semaphore")
def command() -> None:
    """Counting semaphores (Semaphore)."""


@command.command("show")
@click.argument("name")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Key namespace.")
@url_option
@handle_errors
def show(name: str, prefix: str, url: str | None, cluster: bool) -> None:
    """List the permits of semaphore NAME held now, with their remaining lease."""
    client = connect(url, cluster)
    try:
        # limit does not matter for reading; the holders are what the server has.
        holders = Semaphore(client, name, limit=1, prefix=prefix).holders()
    except (TypeError, ValueError) as exc:  # AtomicError: handle_errors, exit 2
        fail(str(exc), code=1)
        return
    click.echo(f"{name}: {len(holders)} permit(s) held")
    for permit, left in holders:
        click.echo(f"  {permit}  lease ends in {left:.3f} s")
