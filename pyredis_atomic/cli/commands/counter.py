"""``pyredis-atomic counter``: look at bounded counters."""

from __future__ import annotations

import click

from ..._core.keys import DEFAULT_PREFIX, check_name, check_prefix
from ...counter import BoundedCounter
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


@click.group("counter")
def command() -> None:
    """Bounded counters (BoundedCounter)."""


@command.command("get")
@click.argument("name")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Key namespace.")
@json_option
@url_option
@handle_errors
def get(name: str, prefix: str, as_json: bool, url: str | None, cluster: bool) -> None:
    """Print the value of counter NAME and its remaining ttl.

    An absent counter (it reads as its initial value in the application) exits 1.
    """
    try:
        check_name(name)
        check_prefix(prefix)
    except (TypeError, ValueError) as exc:
        fail(str(exc))
    client = connect(url, cluster)
    counter = BoundedCounter(client, name, prefix=prefix)
    exists = bool(client.exists(counter.key))
    value = counter.get() if exists else None
    pttl = client.pttl(counter.key) if exists else -2
    ttl = pttl / 1000 if pttl >= 0 else None
    if as_json:
        emit_json({"name": name, "key": counter.key, "value": value, "ttl": ttl})
    elif not exists:
        echo(f"{name}: absent (reads as its initial value)")
    else:
        expiry = f"expires in {ttl:.3f} s" if ttl is not None else "no expiry"
        echo(f"{name}: {value} ({expiry})")
    if not exists:
        raise SystemExit(NEGATIVE)
