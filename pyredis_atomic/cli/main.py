"""Entry point of the ``pyredis-atomic`` command: collects the sub-commands."""

from __future__ import annotations

import importlib
import pkgutil

import click

from .. import __version__
from . import commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pyredis-atomic")
def cli() -> None:
    """Atomic Redis primitives: load and inspect their Lua scripts, look at locks, queues
    and counters, and run the demo."""


for _info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
    _module = importlib.import_module(f"{commands.__name__}.{_info.name}")
    cli.add_command(_module.command)


def main() -> None:
    """Run the command line (console script ``pyredis-atomic``)."""
    cli(prog_name="pyredis-atomic")
