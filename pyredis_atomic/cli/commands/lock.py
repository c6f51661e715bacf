"""``pyredis-atomic lock``: look at a lock and, for operators, force-release it."""

from __future__ import annotations

import click

from ..._core.keys import DEFAULT_PREFIX
from ..._core.lock import break_call, lock_keys
from ...lock import Lock
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

prefix_option = click.option(
    "--prefix", default=DEFAULT_PREFIX, show_default=True,
    help="Key prefix (namespace) the application's locks use.",
)


def _keys(name: str, prefix: str) -> tuple[str, str]:
    try:
        keys = lock_keys(name, prefix)
    except (TypeError, ValueError) as exc:
        fail(str(exc))
    return keys.name, keys.lock


@click.group("lock")
def command() -> None:
    """Distributed locks: show their state, break a stuck one."""


@command.command("show")
@click.argument("name")
@prefix_option
@json_option
@mode_option
@url_option
@handle_errors
def show(name: str, prefix: str, as_json: bool, url: str | None, cluster: bool,
         functions: bool | None) -> None:
    """Whether lock NAME is held, the holder's remaining lease and fencing token.

    Read-only (runs on a replica too). Exit 0 when held, 1 when free or never acquired.
    --json prints Lock.inspect() with its names (null when never acquired).
    """
    name, key = _keys(name, prefix)
    client = connect(url, cluster)
    info = Lock.inspect(client, name, prefix=prefix,
                        registry=script_registry(functions))
    if as_json:
        emit_json(None if info is None else jsonable(info))
    elif info is None:
        echo(f"lock {name!r} ({key}): free, never acquired")
    else:
        if info.held:
            ttl = ("no expiry (not set by pyredis-atomic?)" if info.ttl is None
                   else f"{info.ttl:.3f} s")
            fence = "unknown" if info.fence is None else str(info.fence)
            echo(f"lock {name!r} ({key}): HELD, remaining lease {ttl}, fence {fence}")
        else:
            echo(f"lock {name!r} ({key}): free")
        echo(f"  last fence issued {info.last_fence}, last released by its holder "
             f"{info.released_fence or '-'}, last lost (expired or broken) "
             f"{info.lost_fence or '-'}")
    if info is None or not info.held:
        raise SystemExit(NEGATIVE)


@command.command("break")
@click.argument("name")
@prefix_option
@click.option("--yes", is_flag=True, help="Confirm: remove the holder's lock.")
@json_option
@mode_option
@url_option
@handle_errors
def break_(name: str, prefix: str, yes: bool, as_json: bool, url: str | None,
           cluster: bool, functions: bool | None) -> None:
    """Force-release lock NAME whoever holds it, and wake one waiter.

    The holder is not told: its next release or extend raises LockNotOwnedError, and a
    fenced resource refuses its writes once the next holder has written. Needs --yes
    (exit 2 without it). Exit 1 when the lock was not held.
    """
    name, key = _keys(name, prefix)
    if not yes:
        fail(f"lock break removes the holder's lock of {name!r}; refused without --yes")
    client = connect(url, cluster)
    removed, fence = script_registry(functions).run(client, break_call(lock_keys(name, prefix)))
    if as_json:
        emit_json({"name": name, "key": key, "broken": bool(removed),
                   "fence": (fence or None) if removed else None})
    elif removed:
        echo(f"lock {name!r} ({key}): broken (holder's fence {fence or 'unknown'})")
    else:
        echo(f"lock {name!r} ({key}): was not held; nothing to break")
    if not removed:
        raise SystemExit(NEGATIVE)
