"""``pyredis-atomic scripts``: list, show, load, verify and export the Lua scripts."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import click

from ...registry import ScriptRegistry
from .._common import (
    ERROR,
    NEGATIVE,
    connect,
    echo,
    emit_json,
    fail,
    handle_errors,
    json_option,
    progress,
    url_option,
)

dir_option = click.option(
    "--dir", "dirs", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also take the .lua files of this directory (same header convention). Repeatable.",
)


def _registry(dirs: tuple[Path, ...]) -> ScriptRegistry:
    try:
        return ScriptRegistry(dirs)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))


@click.group("scripts")
def command() -> None:
    """The Lua scripts: one per atomic operation."""


@command.command("list")
@json_option
@dir_option
def list_(as_json: bool, dirs: tuple[Path, ...]) -> None:
    """Name, sha1, keys, args and flags of every script."""
    registry = _registry(dirs)
    if as_json:
        emit_json(registry.manifest()["scripts"])
        return
    for name in registry.names():
        s = registry[name]
        keys = " ".join(k.name for k in s.keys) or "-"
        args = " ".join(a.name + ("..." if a.variadic else "") for a in s.args) or "-"
        flags = ",".join(sorted(s.flags)) or "-"
        echo(f"{name:<24} {s.sha1}  keys: {keys}  args: {args}  flags: {flags}")


@command.command("show")
@click.argument("name")
@json_option
@dir_option
def show(name: str, as_json: bool, dirs: tuple[Path, ...]) -> None:
    """Print the source of script NAME. An unknown name exits 2, with the closest names."""
    registry = _registry(dirs)
    if name not in registry:
        close = difflib.get_close_matches(name, registry.names(), n=3, cutoff=0.6)
        hint = (f"; did you mean {' or '.join(repr(c) for c in close)}?" if close
                else "; 'pyredis-atomic scripts list' shows them all")
        fail(f"no script named {name!r}{hint}")
    script = registry[name]
    if as_json:
        emit_json({"name": name, "sha1": script.sha1, "source": script.source})
        return
    echo(script.source, nl=False)


@command.command("load")
@url_option
@json_option
@dir_option
@handle_errors
def load(url: str | None, cluster: bool, as_json: bool, dirs: tuple[Path, ...]) -> None:
    """SCRIPT LOAD every script (on every primary of a cluster); print name and sha1.

    Every script is attempted even when some fail, and even when stdout is closed early
    (``| head``). Exit 2 if any failed.
    """
    registry = _registry(dirs)
    client = connect(url, cluster)
    names = registry.names()
    loaded: dict[str, str] = {}
    failed: dict[str, str] = {}
    for i, name in enumerate(names, start=1):
        progress(f"loading {i}/{len(names)}: {name}")
        try:
            loaded[name] = registry.load(client, [name])[name]
        except Exception as exc:  # report each script, keep going, exit non-zero at the end
            failed[name] = str(exc)
            if not as_json:
                click.echo(f"{name:<24} FAILED: {exc}", err=True)
        else:
            if not as_json:
                echo(f"{name:<24} {loaded[name]}")
    progress(None)
    if as_json:
        emit_json({"loaded": loaded, "failed": failed})
    if failed:
        raise SystemExit(ERROR)


@command.command("verify")
@url_option
@json_option
@dir_option
@handle_errors
def verify(url: str | None, cluster: bool, as_json: bool, dirs: tuple[Path, ...]) -> None:
    """List the scripts the server lacks (exit 1); exit 0 if it has them all."""
    registry = _registry(dirs)
    client = connect(url, cluster)
    missing = registry.missing(client)
    if as_json:
        emit_json({"total": len(registry),
                   "missing": [{"name": n, "sha1": registry[n].sha1} for n in missing]})
    else:
        for name in missing:
            echo(f"missing: {name} {registry[name].sha1}")
        if not missing:
            echo(f"all {len(registry)} scripts present")
    if missing:
        raise SystemExit(NEGATIVE)


@command.command("export")
@click.option("--format", "fmt", type=click.Choice(["manifest"]), default="manifest",
              show_default=True, help="What to export.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of stdout.")
@json_option
@dir_option
def export(fmt: str, output: Path | None, as_json: bool, dirs: tuple[Path, ...]) -> None:
    """The JSON manifest (version 2; its JSON Schema ships as
    pyredis_atomic/manifest.schema.json) for services in other languages that call the same
    scripts: each script's exact source and sha1, keys with templates, arguments with
    formats and defaults, reply, flags and minimum server version, and each primitive's
    operations and the protocol around them. The output is JSON either way: --json is
    accepted for uniformity."""
    text = json.dumps(_registry(dirs).manifest(), indent=2) + "\n"
    if output is None:
        echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        if as_json:
            emit_json({"output": str(output)})
