"""``pyredis-atomic counter``: look at bounded counters."""

from __future__ import annotations

import click

from ..._core.keys import DEFAULT_PREFIX
from ...counter import BoundedCounter
from .._common import connect, fail, handle_errors, url_option


@click.group("counter")
def command() -> None:
    """Bounded counters (BoundedCounter)."""


@command.command("get")
@click.argument("name")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Key namespace.")
@url_option
@handle_errors
def get(name: str, prefix: str, url: str | None, cluster: bool) -> None:
    """Print the value of counter NAME and its remaining ttl.

    An absent counter prints "absent" (it reads as its initial value) and exits 1.
    """
    client = connect(url, cluster)
    try:
        counter = BoundedCounter(client, name, prefix=prefix)
        if not client.exists(counter.key):
            click.echo(f"{name}: absent (reads as its initial value)")
            raise SystemExit(1)
        value = counter.get()
        pttl = client.pttl(counter.key)
    except (TypeError, ValueError) as exc:  # AtomicError: handle_errors, exit 2
        fail(str(exc), code=1)
        return
    expiry = f"expires in {pttl / 1000:.3f} s" if pttl >= 0 else "no expiry"
    click.echo(f"{name}: {value} ({expiry})")
