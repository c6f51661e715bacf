"""``pyredis-atomic metrics``: a Prometheus exporter for queues, locks, counters and
semaphores (``serve``), and one scrape printed to stdout (``show``)."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..._core.calls import Call
from ..._core.keys import DEFAULT_PREFIX
from ..._core.monitor import Targets, parse_bounds, parse_lease, parse_limit
from .._common import (
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

F = TypeVar("F", bound=Callable[..., Any])


def _target_options(func: F) -> F:
    options = [
        click.option("--queue", "queues", multiple=True, metavar="NAME[=LEASE]",
                     help="Measure this queue (repeatable); with its lease (its "
                          "visibility_timeout, in seconds) also the age of its oldest "
                          "lease."),
        click.option("--lock", "locks", multiple=True, metavar="NAME",
                     help="Measure this lock (repeatable)."),
        click.option("--counter", "counters", multiple=True, metavar="NAME[=MIN:MAX]",
                     help="Measure this counter; its bounds, if given, are reported too "
                          "(either may be empty: stock=0:)."),
        click.option("--semaphore", "semaphores", multiple=True, metavar="NAME[=LIMIT]",
                     help="Measure this semaphore; its limit, if given, is reported too."),
        click.option("--discover", is_flag=True,
                     help="Also measure every queue, lock, counter and semaphore under the "
                          "prefix, found by SCAN (never KEYS), a bounded slice per scrape."),
        click.option("--scan-budget", default=10_000, show_default=True,
                     type=click.IntRange(min=1),
                     help="With --discover: keys SCAN examines per node per scrape."),
        click.option("--prefix", default=DEFAULT_PREFIX, show_default=True,
                     help="Key prefix (namespace) of the primitives."),
    ]
    for option in reversed(options):
        func = option(func)
    return url_option(mode_option(func))


def _collector(url: str | None, cluster: bool, queues: tuple[str, ...],
               locks: tuple[str, ...], counters: tuple[str, ...],
               semaphores: tuple[str, ...], discover: bool, scan_budget: int,
               prefix: str, functions: bool | None) -> Any:
    try:
        from ...exporter import AtomicCollector
    except ImportError:
        fail("the exporter needs prometheus-client: pip install 'pyredis-atomic[prometheus]'")
    # Validate everything before connecting, so bad input never waits on the network.
    try:
        targets = Targets(set(), set(locks), {}, {})
        for spec in queues:
            name, lease = parse_lease(spec)
            targets.queues.add(name)
            if lease is not None:
                targets.leases[name] = lease
        for spec in counters:
            name, low, high = parse_bounds(spec)
            targets.counters[name] = (low, high)
        for spec in semaphores:
            name, limit = parse_limit(spec)
            targets.semaphores[name] = limit
        AtomicCollector(_NoClient(), targets, prefix=prefix,
                        scan_budget=scan_budget)
    except (TypeError, ValueError) as exc:
        fail(str(exc))
    if not (queues or locks or counters or semaphores or discover):
        fail("nothing to measure: name primitives (--queue, --lock, --counter, --semaphore) "
             "or pass --discover")
    client = connect(url, cluster)
    registry = script_registry(functions)
    if registry.functions is not None:
        _check_library(client, registry)
    return AtomicCollector(client, targets, prefix=prefix, discover=discover,
                           scan_budget=scan_budget, registry=registry)


def _check_library(client: Any, registry: Any) -> None:
    # A scrape counts a failed read as a scrape error and goes on: in functions mode a
    # missing library would only show up there. Call one read-only function on the server
    # (each primary of a cluster) first, so the command refuses at once (exit 2, the
    # LibraryNotLoadedError naming the node).
    nodes = ([client.get_redis_connection(n) for n in client.get_primaries()]
             if hasattr(client, "get_primaries") else [client])
    for node in nodes:
        registry.run(node, Call("server_time", (), ()))


class _NoClient:
    """Stands in for the client while the arguments are checked (nothing is sent)."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the argument check sends nothing")


@click.group("metrics")
def command() -> None:
    """Prometheus metrics of queues, locks, counters and semaphores."""


@command.command("serve")
@_target_options
@click.option("--port", default=9108, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the /metrics endpoint.")
@click.option("--addr", default="0.0.0.0", show_default=True,
              help="Address to listen on (127.0.0.1: this machine only).")
@json_option
@handle_errors
def serve(*, url: str | None, cluster: bool, queues: tuple[str, ...], locks: tuple[str, ...],
          counters: tuple[str, ...], semaphores: tuple[str, ...], discover: bool,
          scan_budget: int, prefix: str, port: int, addr: str, as_json: bool,
          functions: bool | None) -> None:
    """Serve the metrics on http://ADDR:PORT/metrics until stopped (Ctrl-C or SIGTERM).
    Each scrape reads the primitives with read-only scripts. --json prints the endpoint
    once listening, as {"url": ...}, on stdout."""
    from ...exporter import serve as start

    collector = _collector(url, cluster, queues, locks, counters, semaphores, discover,
                           scan_budget, prefix, functions)
    try:
        server = start(collector, port, addr)
    except OSError as exc:
        fail(f"cannot listen on {addr}:{port}: {exc}")
    host, bound = server.server_address[:2]
    click.echo(f"serving metrics on http://{host}:{bound}/metrics", err=True)
    if as_json:
        emit_json({"url": f"http://{host}:{bound}/metrics"})
    # SIGTERM (a service manager stopping us) ends the process as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


@command.command("show")
@_target_options
@json_option
@handle_errors
def show(*, url: str | None, cluster: bool, queues: tuple[str, ...], locks: tuple[str, ...],
         counters: tuple[str, ...], semaphores: tuple[str, ...], discover: bool,
         scan_budget: int, prefix: str, as_json: bool, functions: bool | None) -> None:
    """Print one scrape in the Prometheus text format (what serve would answer). --json:
    the same samples as {"metrics": [{"name", "type", "help", "samples": [{"name",
    "labels", "value"}]}]}."""
    from prometheus_client import generate_latest

    from ...exporter import make_registry

    collector = _collector(url, cluster, queues, locks, counters, semaphores, discover,
                           scan_budget, prefix, functions)
    registry = make_registry(collector)
    if not as_json:
        echo(generate_latest(registry).decode(), nl=False)
        return
    emit_json({"metrics": [
        {"name": m.name, "type": m.type, "help": m.documentation,
         "samples": [{"name": s.name, "labels": dict(s.labels), "value": s.value}
                     for s in m.samples]}
        for m in registry.collect()]})
