#!/usr/bin/env python3
"""Benchmark pyredis-atomic against the libraries people use today (same as
``pyredis-atomic bench``).
Usage: scripts/bench.py [--quick] [--output FILE] [--plot DIR] [--url URL]"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyredis_atomic.cli.commands.bench import command

if __name__ == "__main__":
    command(prog_name="scripts/bench.py")
