"""``pyredis-atomic functions``: deploy the scripts as one Redis Functions library (7.0+)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import redis

from ... import __version__
from ..._core.functions import LIBRARY_PREFIX, LibraryStatus, parse_function_list
from ...registry import ScriptRegistry, require_functions
from .._common import (
    ERROR,
    NEGATIVE,
    connect,
    echo,
    emit_json,
    fail,
    handle_errors,
    json_option,
    url_option,
)
from .scripts import dir_option

name_option = click.option(
    "--name", "library", default=None, metavar="LIBRARY",
    help="The library's name (default: pyredis_atomic_<version>, this package's).")


def _registry(dirs: tuple[Path, ...]) -> ScriptRegistry:
    try:
        return ScriptRegistry(dirs)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))


@click.group("functions")
def command() -> None:
    """The scripts as one versioned Redis Functions library (Redis 7.0+, Valkey): load it
    on every primary, verify every node has it, show or delete it. A registry in functions
    mode (ScriptRegistry(mode="functions")) calls it with FCALL/FCALL_RO."""


@contextlib.contextmanager
def _replicas(client: Any) -> Iterator[list[Any]]:
    """Clients on the replicas a standalone primary reports (INFO replication), with the
    primary's credentials; closed afterwards."""
    found: list[Any] = []
    try:
        info = client.info("replication")
        pool = client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        if kwargs.pop("path", None) is not None:  # a replica is reached over TCP
            return_kind = redis.Connection
        else:
            return_kind = pool.connection_class
        for key, value in info.items():
            if str(key).startswith("slave") and isinstance(value, dict):
                found.append(redis.Redis(connection_pool=type(pool)(
                    connection_class=return_kind,
                    **{**kwargs, "host": value["ip"], "port": int(value["port"])})))
        yield found
    finally:
        for c in found:
            c.close()


def _statuses(registry: ScriptRegistry, client: Any, library: str | None,
              cluster: bool) -> list[LibraryStatus]:
    statuses = registry.library_status(client, name=library)
    if not cluster:
        with _replicas(client) as replicas:
            for replica in replicas:
                try:
                    statuses.extend(registry.library_status(replica, name=library))
                except redis.RedisError as exc:
                    click.echo(f"pyredis-atomic: cannot check replica "
                               f"{replica.connection_pool.connection_kwargs.get('host')}:"
                               f"{replica.connection_pool.connection_kwargs.get('port')}: "
                               f"{exc}", err=True)
                    raise SystemExit(ERROR) from exc
    return statuses


@command.command("load")
@url_option
@name_option
@click.option("--replace", is_flag=True,
              help="Overwrite a library of the same name whose code differs.")
@json_option
@dir_option
@handle_errors
def load(url: str | None, cluster: bool, library: str | None, replace: bool, as_json: bool,
         dirs: tuple[Path, ...]) -> None:
    """FUNCTION LOAD the library on the server or every primary of a cluster (replicas
    get it by replication; it persists in RDB/AOF). Nodes that have it are left alone.
    Run it again after adding a primary or resharding: Redis does not copy functions to a
    new shard. Exit 2 on Redis 6.2 (no Functions)."""
    registry = _registry(dirs)
    client = connect(url, cluster)
    lib = registry.library(library)
    try:
        done = registry.load_library(client, name=library, replace=replace)
    except RuntimeError as exc:
        fail(str(exc))
    if as_json:
        emit_json({"library": lib.name, "version": __version__, "functions": len(lib.functions),
                   "nodes": done})
        return
    for node, what in done.items():
        echo(f"{node}: {lib.name} {what} ({len(lib.functions)} functions)")


@command.command("verify")
@url_option
@name_option
@json_option
@dir_option
@handle_errors
def verify(url: str | None, cluster: bool, library: str | None, as_json: bool,
           dirs: tuple[Path, ...]) -> None:
    """Check that every node (each primary and replica of a cluster; a standalone server
    and the replicas it reports) has the library with exactly this package's code. Exit 1
    naming each node where it is missing or outdated (after a reshard, a failover to an
    empty node, a deploy of another version), 0 if all have it."""
    registry = _registry(dirs)
    client = connect(url, cluster)
    lib = registry.library(library)
    statuses = _statuses(registry, client, library, cluster)
    bad = [s for s in statuses if not s.ok]
    if as_json:
        emit_json({"library": lib.name, "version": __version__,
                   "ok": not bad, "nodes": [s.as_dict() for s in statuses]})
    else:
        for s in statuses:
            echo(s.describe())
        if bad:
            echo(f"{len(bad)} of {len(statuses)} node(s) lack {lib.name} (pyredis-atomic "
                 f"{__version__}) as built here: run 'pyredis-atomic functions load'")
        else:
            echo(f"{lib.name} (pyredis-atomic {__version__}) on all {len(statuses)} node(s)")
    if bad:
        raise SystemExit(NEGATIVE)


@command.command("delete")
@url_option
@name_option
@click.option("--yes", is_flag=True, help="Confirm: callers in functions mode then fail.")
@json_option
@handle_errors
def delete(url: str | None, cluster: bool, library: str | None, yes: bool,
           as_json: bool) -> None:
    """FUNCTION DELETE the library (default: this version's) on every primary that has
    it. Needs --yes (exit 2 without it); exit 1 if no node had it."""
    registry = _registry(())
    name = library or registry.library().name
    if not yes:
        fail(f"functions delete removes {name!r}, which callers in functions mode need; "
             f"refused without --yes")
    client = connect(url, cluster)
    deleted = registry.delete_library(client, name=name)
    if as_json:
        emit_json({"library": name, "deleted": deleted})
    else:
        for node in deleted:
            echo(f"{node}: {name} deleted")
        if not deleted:
            echo(f"{name}: on no node")
    if not deleted:
        raise SystemExit(NEGATIVE)


@command.command("show")
@click.option("--list", "listing", is_flag=True,
              help="List the pyredis_atomic libraries on the server (every node of a "
                   "cluster) instead of printing the code.")
@url_option
@name_option
@json_option
@dir_option
@handle_errors
def show(listing: bool, url: str | None, cluster: bool, library: str | None, as_json: bool,
         dirs: tuple[Path, ...]) -> None:
    """Print the library's code as 'functions load' sends it (for FUNCTION LOAD by hand:
    'pyredis-atomic functions show | redis-cli -x FUNCTION LOAD'), or with --list the
    libraries each node has, with their functions."""
    registry = _registry(dirs)
    lib = registry.library(library)
    if not listing:
        if as_json:
            emit_json({"library": lib.name, "version": __version__, "code": lib.code,
                       "functions": dict(lib.functions)})
        else:
            echo(lib.code, nl=False)
        return
    client = connect(url, cluster)
    require_functions(client)
    nodes: dict[str, Any] = {}
    targets = ([client.get_redis_connection(n) for n in client.get_nodes()] if cluster
               else [client])
    for target in targets:
        kwargs = target.connection_pool.connection_kwargs
        where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
        found = parse_function_list(target.execute_command(
            "FUNCTION", "LIST", "LIBRARYNAME", f"{LIBRARY_PREFIX}_*", "WITHCODE"))
        nodes[where] = {n: {"functions": len(s.functions),
                            "current": n == lib.name and s.code == lib.code}
                        for n, s in sorted(found.items())}
    if as_json:
        emit_json({"library": lib.name, "nodes": nodes})
        return
    for where, libs in nodes.items():
        if not libs:
            echo(f"{where}: no {LIBRARY_PREFIX} library")
        for n, about in libs.items():
            mark = " (this version)" if about["current"] else ""
            echo(f"{where}: {n} {about['functions']} functions{mark}")
