"""``pyredis-atomic bench`` / ``scripts/bench.py``: ours against today's libraries, one run.

Needs the ``bench`` extra (python-redis-lock, pottery, limits). Starts its own redis-server
through :mod:`pyredis_atomic.testing` unless a URL is given.
"""

from __future__ import annotations

from .run import run_bench

__all__ = ["run_bench"]
