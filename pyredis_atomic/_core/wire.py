"""Wire constants shared by the Lua scripts and the Python code: defined here, once.

The catalog (:mod:`pyredis_atomic._core.script`) renders :data:`LUA_CONSTANTS` as Lua
``local`` definitions wherever a script (or one of its includes) has the marker line
``--- @include "constants"``, so a script and the Python code that reads its data can never
disagree on one of these values.
"""

from __future__ import annotations

__all__ = [
    "COPY_NONE",
    "COPY_NONE_FULL",
    "COPY_VALUE",
    "COPY_VALUE_FULL",
    "DEDUP_MARK",
    "LUA_CONSTANTS",
    "PRIORITY_MARK",
    "SIGNAL_CAP",
    "TRACEPARENT_LEN",
    "TRACE_MARK",
    "lua_constants",
]

#: A queue's wake-up tokens (its ``signal`` list) never exceed this many: a push that finds
#: SIGNAL_CAP tokens left (no consumer can be blocked then) adds none, one ``LLEN`` and no
#: write, the steady state of a busy queue whose consumers never find it empty.
SIGNAL_CAP = 1024

#: The last character of the id of every queue message pushed with a dedup key: acks,
#: nacks and dead-lettering look up the dedup mapping only for such ids.
DEDUP_MARK = "k"

#: Queue ids of messages pushed with a priority k > 0 end in PRIORITY_MARK + k (before the
#: DEDUP_MARK): every requeue (nack, expired lease, due delay, redrive) finds the
#: priority's ready list from the id alone.
PRIORITY_MARK = "p"

#: In the id of a queue message pushed with ``trace=True``, before any priority mark and
#: DEDUP_MARK: its stored payload starts with the producer's W3C
#: ``traceparent`` (TRACEPARENT_LEN bytes), which consumers split off. Redrive keeps it.
TRACE_MARK = "t"
TRACEPARENT_LEN = 55

#: Kinds of a cache entry's fresh copy (the byte after the serializer tag): a value or a
#: stored None, readable for any XFetch draw, or only while early refresh is off ("FULL").
COPY_VALUE = "="
COPY_NONE = "~"
COPY_VALUE_FULL = "!"
COPY_NONE_FULL = "-"

#: What ``--- @include "constants"`` defines in Lua, name -> value.
LUA_CONSTANTS: dict[str, int | str] = {
    "SIGNAL_CAP": SIGNAL_CAP,
    "DEDUP_MARK": DEDUP_MARK,
    "DEDUP_MARK_BYTE": ord(DEDUP_MARK),
    "PRIORITY_MARK": PRIORITY_MARK,
    "TRACE_MARK": TRACE_MARK,
    "COPY_VALUE": COPY_VALUE,
    "COPY_NONE": COPY_NONE,
    "COPY_VALUE_FULL": COPY_VALUE_FULL,
    "COPY_NONE_FULL": COPY_NONE_FULL,
}


def _lua_literal(value: int | str) -> str:
    if isinstance(value, int):
        return str(value)
    if not value.isprintable() or "'" in value or "\\" in value:
        raise ValueError(f"wire constant {value!r} needs escaping; keep them plain")
    return f"'{value}'"


def lua_constants() -> str:
    """The Lua text that ``--- @include "constants"`` splices in."""
    lines = ["-- Wire constants, generated from pyredis_atomic/_core/wire.py (do not copy)."]
    lines += [f"local {name} = {_lua_literal(v)}" for name, v in LUA_CONSTANTS.items()]
    return "\n".join(lines) + "\n"
