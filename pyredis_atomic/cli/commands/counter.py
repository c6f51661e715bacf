"""``pyredis-atomic counter``: look at bounded counters, change their stored configuration."""

from __future__ import annotations

from typing import Any

import click

from ..._core.configs import CounterConfig
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
    mode_option,
    script_registry,
    url_option,
)


@click.group("counter")
def command() -> None:
    """Bounded counters (BoundedCounter)."""


@command.command("get")
@click.argument("name")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Key namespace.")
@json_option
@mode_option
@url_option
@handle_errors
def get(name: str, prefix: str, as_json: bool, url: str | None, cluster: bool,
        functions: bool | None) -> None:
    """Print the value of counter NAME, its remaining ttl and its stored configuration
    (bounds and mode).

    An absent counter (it reads as its initial value in the application) exits 1.
    """
    try:
        check_name(name)
        check_prefix(prefix)
    except (TypeError, ValueError) as exc:
        fail(str(exc))
    client = connect(url, cluster)
    counter = BoundedCounter(client, name, prefix=prefix, registry=script_registry(functions))
    exists = bool(client.exists(counter.key))
    value = counter.get() if exists else None
    pttl = client.pttl(counter.key) if exists else -2
    ttl = pttl / 1000 if pttl >= 0 else None
    config = counter.stored_config()
    if as_json:
        emit_json({"name": name, "key": counter.key, "value": value, "ttl": ttl,
                   "config": None if config is None else config.as_dict()})
    else:
        described = (f"[{config.describe()}]" if config is not None
                     else "[no stored configuration]")
        if not exists:
            echo(f"{name}: absent (reads as its initial value) {described}")
        else:
            expiry = f"expires in {ttl:.3f} s" if ttl is not None else "no expiry"
            echo(f"{name}: {value} ({expiry}) {described}")
    if not exists:
        raise SystemExit(NEGATIVE)


def _bound(text: str, option: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        fail(f"{option} must be an integer or 'none', got {text!r}")


def _config_doc(config: CounterConfig | None) -> dict[str, Any] | None:
    return None if config is None else config.as_dict()


@command.command("reconfigure")
@click.argument("name")
@click.option("--min", "low", required=True, metavar="N|none",
              help="The new lower bound ('none': unbounded).")
@click.option("--max", "high", required=True, metavar="N|none",
              help="The new upper bound ('none': unbounded).")
@click.option("--clamp/--reject", "clamp", default=None,
              help="The new default mode (default: keep the stored one; reject if none).")
@click.option("--clamp-value", is_flag=True,
              help="Move a value outside the new bounds to the nearest bound (default: "
                   "refuse the change).")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Key namespace.")
@json_option
@mode_option
@url_option
@handle_errors
def reconfigure(name: str, low: str, high: str, clamp: bool | None, clamp_value: bool,
                prefix: str, as_json: bool, url: str | None, cluster: bool,
                functions: bool | None) -> None:
    """Replace the stored configuration of counter NAME (the one way to change its bounds
    or mode; every client must then be built with the new one).

    A value outside the new bounds refuses the change (exit 2, nothing changed) unless
    --clamp-value moves it to the nearest new bound.
    """
    try:
        check_name(name)
        check_prefix(prefix)
    except (TypeError, ValueError) as exc:
        fail(str(exc))
    lo, hi = _bound(low, "--min"), _bound(high, "--max")
    client = connect(url, cluster)
    if clamp is None:
        stored = BoundedCounter(client, name, prefix=prefix,
                                registry=script_registry(functions)).stored_config()
        clamp = stored.clamp if stored is not None else False
    # initial must lie within the bounds of the counter object; the CLI never sends it.
    initial = lo if lo is not None and lo > 0 else hi if hi is not None and hi < 0 else 0
    counter = BoundedCounter(client, name, min=lo, max=hi, clamp=clamp, initial=initial,
                             prefix=prefix, registry=script_registry(functions))
    previous = counter.reconfigure(min=lo, max=hi, clamp=clamp, clamp_value=clamp_value)
    if as_json:
        emit_json({"name": name, "key": counter.key + ":config",
                   "config": _config_doc(counter.config), "previous": _config_doc(previous),
                   "value": counter.get() if client.exists(counter.key) else None})
    else:
        was = previous.describe() if previous is not None else "none stored"
        echo(f"{name}: {counter.config.describe()} (was: {was})")
