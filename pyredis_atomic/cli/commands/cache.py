"""``pyredis-atomic cache``: look at and invalidate cache entries."""

from __future__ import annotations

import json
from typing import Any

import click

from ...cache import Cache
from .._common import connect, fail, handle_errors, url_option

SERIALIZERS = click.Choice(["json", "raw", "pickle"])


def _cache(url: str | None, cluster: bool, name: str, prefix: str, serializer: str) -> Cache:
    client: Any = connect(url, cluster)
    try:
        return Cache(client, name, ttl=1, serializer=serializer, prefix=prefix)
    except (TypeError, ValueError) as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits


def _common(func: Any) -> Any:
    func = click.option("--prefix", default="atomic:", show_default=True,
                        help="Key prefix the cache was created with.")(func)
    func = click.option("--serializer", type=SERIALIZERS, default="json", show_default=True,
                        help="Serializer to decode values with ('pickle' unpickles: only "
                             "for data you trust).")(func)
    return url_option(func)


@click.group("cache")
def command() -> None:
    """Cache entries: show one, delete one."""


@command.command("show")
@click.argument("name")
@click.argument("key")
@_common
@handle_errors
def show(name: str, key: str, *, url: str | None, cluster: bool, prefix: str,
         serializer: str) -> None:
    """Show entry KEY of cache NAME: value, expiry, stale window, lease and waiters.

    Exit code 1 when there is no value.
    """
    cache = _cache(url, cluster, name, prefix, serializer)
    info = cache.inspect(key)
    value = info.get("value")
    if isinstance(value, Exception):
        info["value"] = f"<{type(value).__name__}: {value}>"
    elif isinstance(value, bytes):
        info["value"] = repr(value)
    click.echo(json.dumps(info, indent=2, default=repr, ensure_ascii=False))
    if not info["exists"]:
        raise SystemExit(1)


@command.command("delete")
@click.argument("name")
@click.argument("keys", nargs=-1, required=True)
@_common
@handle_errors
def delete(name: str, keys: tuple[str, ...], *, url: str | None, cluster: bool,
           prefix: str, serializer: str) -> None:
    """Delete entries KEYS of cache NAME (loads in progress are fenced off and their waiters
    woken). Prints how many values were removed."""
    cache = _cache(url, cluster, name, prefix, serializer)
    removed = sum(cache.delete(k) for k in keys)
    click.echo(f"deleted {removed} of {len(keys)}")
