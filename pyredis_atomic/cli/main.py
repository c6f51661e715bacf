"""Entry point of the ``pyredis-atomic`` command: collects the sub-commands."""

from __future__ import annotations

import importlib
import pkgutil

import click

from .. import __version__
from . import commands
from ._common import report_closed_stdout


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pyredis-atomic")
def cli() -> None:
    """Atomic Redis primitives: load and inspect their Lua scripts, look at locks, queues,
    caches, counters and semaphores, run the demo and the benchmark.

    Every command takes --json (one JSON document). Exit codes: 0 done, 1 a negative
    answer (absent, not held, missing), 2 an error or a refused request.
    """


for _info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
    _module = importlib.import_module(f"{commands.__name__}.{_info.name}")
    cli.add_command(_module.command)


def main() -> None:
    """Run the command line (console script ``pyredis-atomic``)."""
    try:
        cli(prog_name="pyredis-atomic")
    finally:
        report_closed_stdout()
