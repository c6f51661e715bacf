"""``pyredis-atomic lock``: look at a lock and, for operators, force-release it."""

from __future__ import annotations

import json

import click

from ..._core.keys import DEFAULT_PREFIX
from ..._core.lock import break_call, lock_keys
from ...lock import Lock
from ...registry import default_registry
from .._common import connect, fail, handle_errors, url_option

prefix_option = click.option(
    "--prefix", default=DEFAULT_PREFIX, show_default=True,
    help="Key prefix (namespace) the application's locks use.",
)


def _keys(name: str, prefix: str) -> tuple[str, str]:
    try:
        keys = lock_keys(name, prefix)
    except (TypeError, ValueError) as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits
    return keys.name, keys.lock


@click.group("lock")
def command() -> None:
    """Distributed locks: show their state, break a stuck one."""


@command.command("show")
@click.argument("name")
@prefix_option
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
@url_option
@handle_errors
def show(name: str, prefix: str, as_json: bool, url: str | None, cluster: bool) -> None:
    """Whether lock NAME is held, the holder's remaining lease and fencing token.

    Read-only (runs on a replica too). Exit code 0 whether held or free.
    """
    name, key = _keys(name, prefix)
    client = connect(url, cluster)
    info = Lock.inspect(client, name, prefix=prefix)
    if as_json:
        doc = {"name": name, "key": key, "held": False, "ttl": None, "fence": None,
               "last_fence": 0, "released_fence": 0, "lost_fence": 0}
        if info is not None:
            doc.update(held=info.held, ttl=info.ttl, fence=info.fence,
                       last_fence=info.last_fence, released_fence=info.released_fence,
                       lost_fence=info.lost_fence)
        click.echo(json.dumps(doc))
        return
    if info is None:
        click.echo(f"lock {name!r} ({key}): free, never acquired")
        return
    if info.held:
        ttl = "no expiry (not set by pyredis-atomic?)" if info.ttl is None else f"{info.ttl:.3f} s"
        fence = "unknown" if info.fence is None else str(info.fence)
        click.echo(f"lock {name!r} ({key}): HELD, remaining lease {ttl}, fence {fence}")
    else:
        click.echo(f"lock {name!r} ({key}): free")
    click.echo(f"  last fence issued {info.last_fence}, last released by its holder "
               f"{info.released_fence or '-'}, last lost (expired or broken) "
               f"{info.lost_fence or '-'}")


@command.command("break")
@click.argument("name")
@prefix_option
@click.option("--yes", is_flag=True, help="Confirm: remove the holder's lock.")
@url_option
@handle_errors
def break_(name: str, prefix: str, yes: bool, url: str | None, cluster: bool) -> None:
    """Force-release lock NAME whoever holds it, and wake one waiter.

    The holder is not told: its next release or extend raises LockNotOwnedError, and a
    fenced resource refuses its writes once the next holder has written. Needs --yes.
    """
    name, key = _keys(name, prefix)
    if not yes:
        fail(f"breaking lock {name!r} removes its holder's lock; pass --yes to confirm", code=1)
    client = connect(url, cluster)
    removed, fence = default_registry().run(client, break_call(lock_keys(name, prefix)))
    if removed:
        click.echo(f"lock {name!r} ({key}): broken (holder's fence {fence or 'unknown'})")
    else:
        click.echo(f"lock {name!r} ({key}): was not held; nothing to break")
