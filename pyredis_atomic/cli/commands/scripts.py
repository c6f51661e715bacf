"""``pyredis-atomic scripts``: list, show, load, verify and export the Lua scripts."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ...registry import ScriptRegistry
from .._common import connect, fail, handle_errors, url_option

dir_option = click.option(
    "--dir", "dirs", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also take the .lua files of this directory (same header convention). Repeatable.",
)


def _registry(dirs: tuple[Path, ...]) -> ScriptRegistry:
    try:
        return ScriptRegistry(dirs)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits


@click.group("scripts")
def command() -> None:
    """The Lua scripts: one per atomic operation."""


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@dir_option
def list_(as_json: bool, dirs: tuple[Path, ...]) -> None:
    """Name, sha1, keys, args and flags of every script."""
    registry = _registry(dirs)
    if as_json:
        click.echo(json.dumps(registry.manifest()["scripts"], indent=2))
        return
    for name in registry.names():
        s = registry[name]
        keys = " ".join(k.name for k in s.keys) or "-"
        args = " ".join(a.name + ("..." if a.variadic else "") for a in s.args) or "-"
        flags = ",".join(sorted(s.flags)) or "-"
        click.echo(f"{name:<24} {s.sha1}  keys: {keys}  args: {args}  flags: {flags}")


@command.command("show")
@click.argument("name")
@dir_option
def show(name: str, dirs: tuple[Path, ...]) -> None:
    """Print the source of script NAME."""
    registry = _registry(dirs)
    if name not in registry:
        fail(f"no script named {name!r}; known: {', '.join(registry.names())}", code=1)
    click.echo(registry[name].source, nl=False)


@command.command("load")
@url_option
@dir_option
@handle_errors
def load(url: str | None, cluster: bool, dirs: tuple[Path, ...]) -> None:
    """SCRIPT LOAD every script (on every primary of a cluster); print name and sha1."""
    registry = _registry(dirs)
    client = connect(url, cluster)
    failed = 0
    for name in registry.names():
        try:
            sha = registry.load(client, [name])[name]
        except Exception as exc:  # report each script, keep going, exit non-zero at the end
            failed += 1
            click.echo(f"{name:<24} FAILED: {exc}", err=True)
        else:
            click.echo(f"{name:<24} {sha}")
    if failed:
        raise SystemExit(1)


@command.command("verify")
@url_option
@dir_option
@handle_errors
def verify(url: str | None, cluster: bool, dirs: tuple[Path, ...]) -> None:
    """Exit 1 and list the scripts the server lacks; exit 0 if it has them all."""
    registry = _registry(dirs)
    client = connect(url, cluster)
    missing = registry.missing(client)
    for name in missing:
        click.echo(f"missing: {name} {registry[name].sha1}")
    if missing:
        raise SystemExit(1)
    click.echo(f"all {len(registry)} scripts present")


@command.command("export")
@click.option("--format", "fmt", type=click.Choice(["manifest"]), default="manifest",
              show_default=True, help="What to export.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of stdout.")
@dir_option
def export(fmt: str, output: Path | None, dirs: tuple[Path, ...]) -> None:
    """The JSON manifest (name, sha1, keys, args, returns, flags, min Redis version) for
    services in other languages that call the same scripts by SHA."""
    text = json.dumps(_registry(dirs).manifest(), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
