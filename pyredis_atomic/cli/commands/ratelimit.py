"""``pyredis-atomic ratelimit``: look at rate limiters, change their stored configuration."""

from __future__ import annotations

import click

from ..._core.keys import DEFAULT_PREFIX, check_name, check_prefix
from ...ratelimit import RateLimiter
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


@click.group("ratelimit")
def command() -> None:
    """Rate limiters (RateLimiter)."""


def _check(name: str, prefix: str) -> None:
    try:
        check_name(name)
        check_prefix(prefix)
    except (TypeError, ValueError) as exc:
        fail(str(exc))


@command.command("show")
@click.argument("name")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Key namespace.")
@json_option
@mode_option
@url_option
@handle_errors
def show(name: str, prefix: str, as_json: bool, url: str | None, cluster: bool,
         functions: bool | None) -> None:
    """Print the stored configuration of rate limiter NAME and what a hit of cost 1 would
    get now (spending nothing).

    No stored configuration (never hit, or last hit before configurations were stored)
    exits 1.
    """
    _check(name, prefix)
    client = connect(url, cluster)
    config = RateLimiter(client, name, rate=1, prefix=prefix,
                         registry=script_registry(functions)).stored_config()
    if config is None:
        if as_json:
            emit_json({"name": name, "config": None, "now": None})
        else:
            echo(f"{name}: no stored configuration (never hit, or no limiter of that name "
                 f"under {prefix!r})")
        raise SystemExit(NEGATIVE)
    # Built from the stored configuration (compared within 1e-9), so the peek is accepted.
    limiter = RateLimiter(client, name, rate=config.per_second, burst=config.burst,
                          prefix=prefix, registry=script_registry(functions))
    now = limiter.peek()
    if as_json:
        emit_json({"name": name, "config": {**config.as_dict(),
                                            "per_second": config.per_second},
                   "now": {"allowed": now.allowed, "remaining": now.remaining,
                           "retry_after": now.retry_after, "reset_after": now.reset_after}})
    else:
        echo(f"{name}: {config.describe()}; now {now.remaining} of {config.burst} left, "
             f"full again in {now.reset_after:.3f} s")


@command.command("reconfigure")
@click.argument("name")
@click.option("--rate", type=float, required=True, help="Units allowed per period.")
@click.option("--period", type=float, default=1.0, show_default=True, help="Seconds.")
@click.option("--burst", type=int, default=None,
              help="Units allowed at once from a full limiter (default: rate rounded up).")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Key namespace.")
@json_option
@mode_option
@url_option
@handle_errors
def reconfigure(name: str, rate: float, period: float, burst: int | None, prefix: str,
                as_json: bool, url: str | None, cluster: bool,
                functions: bool | None) -> None:
    """Replace the stored configuration of rate limiter NAME (the one way to change its
    rate or burst; every client must then be built with the new one). Units already spent
    stay spent and drain at the new rate from now on.
    """
    _check(name, prefix)
    client = connect(url, cluster)
    limiter = RateLimiter(client, name, rate=rate, period=period, burst=burst, prefix=prefix,
                          registry=script_registry(functions))
    previous = limiter.reconfigure(rate, period, burst)
    if as_json:
        emit_json({"name": name, "key": limiter.key + ":config",
                   "config": limiter.config.as_dict(),
                   "previous": None if previous is None else previous.as_dict()})
    else:
        was = previous.describe() if previous is not None else "none stored"
        echo(f"{name}: {limiter.config.describe()} (was: {was})")
