"""How long Redis is busy per call of each script (operators' view of what a primitive
costs the server): every script is exercised while SLOWLOG records every command's
execution time; the per-SHA mean is the script's cost. ``INFO commandstats`` gives the same
figure for all EVALSHA calls together, shown as a cross-check."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any

import redis

from ..registry import default_registry
from .cases import Bench
from .exercise import exercise
from .timing import Result

__all__ = ["server_cost"]


def server_cost(b: Bench) -> list[Result]:
    """One row per script: mean server-side microseconds per call."""
    c = b.client
    registry = default_registry()
    by_sha = {registry.get(n).sha1: n for n in registry.names()}
    try:
        old = c.config_get("slowlog-*")
        c.config_set("slowlog-log-slower-than", 0)
        c.config_set("slowlog-max-len", 100000)
    except redis.ResponseError as exc:  # CONFIG denied (managed Redis, ACL)
        return [Result(group="server cost", case="(not measured)", value=0, unit="",
                       note=f"CONFIG SET refused: {exc}")]
    durations: dict[str, list[int]] = defaultdict(list)
    try:
        c.slowlog_reset()
        c.config_resetstat()
        exercise(b, lambda: _drain(c, by_sha, durations))
        _drain(c, by_sha, durations)
        stats = c.info("commandstats")
    finally:
        with contextlib.suppress(redis.RedisError):
            for k, v in old.items():
                if k is not None and v is not None:
                    c.config_set(k, v)
    rows = []
    for name in registry.names():
        calls = durations.get(name, [])
        if not calls:
            rows.append(Result(group="server cost per script (SLOWLOG)", case=name, value=0,
                               unit="", note="not exercised"))
            continue
        calls.sort()
        rows.append(Result(group="server cost per script (SLOWLOG)", case=name,
                           value=sum(calls) / len(calls), unit="us/call",
                           low=calls[0], high=calls[int(0.99 * (len(calls) - 1))],
                           note=f"{len(calls)} calls; min-p99 shown"))
    for cmd in ("evalsha", "evalsha_ro"):
        entry: Any = stats.get(f"cmdstat_{cmd}")
        if entry:
            rows.append(Result(group="server cost per script (SLOWLOG)",
                               case=f"all {cmd.upper()} (INFO commandstats)",
                               value=float(entry["usec_per_call"]), unit="us/call",
                               note=f"{entry['calls']} calls"))
    return rows


def _drain(c: redis.Redis, by_sha: dict[str, str], into: dict[str, list[int]]) -> None:
    entries = c.slowlog_get(100000)
    c.slowlog_reset()
    for e in entries:
        command = e.get("command", b"")
        parts = (command.decode(errors="replace") if isinstance(command, bytes)
                 else str(command)).split()
        if len(parts) >= 2 and parts[0].upper() in ("EVALSHA", "EVALSHA_RO"):
            name = by_sha.get(parts[1])
            if name:
                into[name].append(int(e["duration"]))
