"""``pyredis-atomic cache``: look at and invalidate cache entries."""

from __future__ import annotations

import base64
from typing import Any

import click

from ..._core.keys import check_name, check_prefix
from ...cache import Cache
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
    script_registry,
    url_option,
)

# The serializers the CLI can decode by itself; "pickle" only when asked for by name.
DECODABLE = ("json", "raw")


def _common(func: Any) -> Any:
    func = json_option(func)
    func = click.option("--prefix", default="atomic:", show_default=True,
                        help="Key prefix the cache was created with.")(func)
    func = mode_option(func)
    return url_option(func)


@click.group("cache")
def command() -> None:
    """Cache entries: show one, delete some."""


@command.command("show")
@click.argument("name")
@click.argument("key")
@click.option("--serializer", type=click.Choice(["auto", "json", "raw", "pickle"]),
              default="auto", show_default=True,
              help="Decode with this serializer. auto: the one the entry was written with "
                   "(json or raw; a pickled entry needs --serializer pickle, which unpickles: "
                   "only for data you trust).")
@_common
@handle_errors
def show(name: str, key: str, *, serializer: str, url: str | None, cluster: bool,
         prefix: str, as_json: bool, functions: bool | None) -> None:
    """Show entry KEY of cache NAME: value, expiry, stale window, lease and waiters.

    Exit 1 when there is no value; 2 when the value cannot be decoded with the chosen
    serializer (the entry records the one it was written with).
    """
    _check(name, prefix, key)
    client: Any = connect(url, cluster)
    info = jsonable(Cache(client, name, ttl=1, serializer=(
        "json" if serializer == "auto" else serializer), prefix=prefix,
        registry=script_registry(functions)).inspect(key))
    written = info.get("serializer")
    if info["exists"] and serializer == "auto" and written != "json":
        if written == "pickle":
            fail(f"entry {key!r} of cache {name!r} was written with the pickle serializer; "
                 "pass --serializer pickle to unpickle it (only for data you trust)")
        if written not in DECODABLE:
            fail(f"entry {key!r} of cache {name!r} was written with serializer {written!r}, "
                 "which the CLI does not know: decode it with that serializer in Python")
        info = jsonable(Cache(client, name, ttl=1, serializer=written,
                              prefix=prefix, registry=script_registry(functions)).inspect(key))
    value = info.get("value")
    if isinstance(value, Exception):
        fail(f"entry {key!r} of cache {name!r}: {type(value).__name__}: {value}")
    if as_json:
        emit_json(_json_value(info))
    elif not info["exists"]:
        echo(f"cache {name!r} entry {key!r} ({info['key']}): no value; "
             f"lease {_seconds(info['lease'])}, waiters {info['waiters']}")
    else:
        echo(f"cache {name!r} entry {key!r} ({info['key']}), serializer "
             f"{info['serializer']}:")
        echo(f"  value: {value!r}")
        echo(f"  expires in {info['expires_in']:.3f} s, stale until {info['stale_until']:.3f} s, "
             f"last load took {_seconds(info['recompute'])}")
        echo(f"  lease {_seconds(info['lease'])}, waiters {info['waiters']}")
    if not info["exists"]:
        raise SystemExit(NEGATIVE)


def _check(name: str, prefix: str, *keys: str) -> None:
    """Bad input fails before connecting (exit 2, naming the argument)."""
    try:
        check_name(name)
        check_prefix(prefix)
        for k in keys:
            check_name(k, "key")
    except (TypeError, ValueError) as exc:
        fail(str(exc))


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def _json_value(info: dict[str, Any]) -> dict[str, Any]:
    """Bytes (the raw serializer) as text when UTF-8, else as ``value_base64``."""
    value = info.get("value")
    if isinstance(value, bytes):
        info = dict(info)
        try:
            info["value"] = value.decode("utf-8")
        except UnicodeDecodeError:
            del info["value"]
            info["value_base64"] = base64.b64encode(value).decode("ascii")
    return info


@command.command("delete")
@click.argument("name")
@click.argument("keys", nargs=-1, required=True)
@_common
@handle_errors
def delete(name: str, keys: tuple[str, ...], *, url: str | None, cluster: bool,
           prefix: str, as_json: bool, functions: bool | None) -> None:
    """Delete entries KEYS of cache NAME (loads in progress are fenced off and their waiters
    woken). Prints how many values were removed; exit 1 when some had no value."""
    _check(name, prefix, *keys)
    cache = Cache(connect(url, cluster), name, ttl=1, prefix=prefix,
                  registry=script_registry(functions))
    removed = {k: cache.delete(k) for k in keys}
    count = sum(removed.values())
    if as_json:
        emit_json({"deleted": count, "keys": removed})
    else:
        echo(f"deleted {count} of {len(keys)}")
        for k, gone in removed.items():
            if not gone:
                echo(f"  no value: {k}")
    if count < len(keys):
        raise SystemExit(NEGATIVE)
