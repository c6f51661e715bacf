"""Argument formats of the Lua scripts: what a header's ``ARGV[i] name (format, unit)`` means.

One table serves three readers: the catalog generates each script's server-side checks
from it (so a caller in any language gets a clear error, and nothing is written, instead of
a Lua stack error), the manifest describes every argument with it, and the tests draw
malformed values for every format from it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FORMATS", "ArgFormat", "check_lines", "lua_string"]


@dataclass(frozen=True)
class ArgFormat:
    """One format: its header spelling, the phrase errors use and the Lua check.

    ``lua``: a Lua expression, true when the value ``{v}`` is acceptable (None: any string,
    or ``packed``: the script checks the argument itself, right after the generated checks).
    ``malformed``: values of the wrong format (the tests send them).
    """

    name: str
    description: str
    lua: str | None
    schema: dict[str, object]
    malformed: tuple[str, ...] = ()


_INT_BAD = ("abc", "", "1.5", "1e3", " 5", "0x10", "007", "-0", "99999999999999999999")
# Integers are checked as text: digits only, no leading zero (the syntax Redis itself takes
# for PEXPIRE, SET PX, INCRBY..., which get the text as it came), so a value that passes
# can never make a later command of the script fail halfway. Non-negative ones are bounded
# by their length (15 digits), which spares a tonumber.
_MAX15 = 10**15 - 1

FORMATS: dict[str, ArgFormat] = {f.name: f for f in (
    ArgFormat("int", "an integer within +-(2^53-1)",
              "(({v} == '0' or string.find({v}, '^%-?[1-9]%d*$'))"
              " and math.abs(tonumber({v})) <= 9007199254740991)",
              {"type": "integer", "minimum": -(2**53 - 1), "maximum": 2**53 - 1}, _INT_BAD),
    # For arguments the script only reads with tonumber (never passes on as text): a number
    # check does, and costs less than a pattern on a long value such as a bound of 2^53-1.
    ArgFormat("integer", "an integer within +-(2^53-1)",
              "((tonumber({v}) or 0.5) % 1 == 0 and math.abs(tonumber({v})) <= 9007199254740991)",
              {"type": "integer", "minimum": -(2**53 - 1), "maximum": 2**53 - 1},
              ("abc", "", "1.5", "nan", "inf", "-inf", "1e300", "99999999999999999999")),
    ArgFormat("int >= 0", "a non-negative integer (at most 15 digits)",
              "({v} == '0' or (#{v} <= 15 and string.find({v}, '^[1-9]%d*$')))",
              {"type": "integer", "minimum": 0, "maximum": _MAX15},
              (*_INT_BAD, "-1", "1" * 16)),
    ArgFormat("int > 0", "a positive integer (at most 15 digits)",
              "(#{v} <= 15 and string.find({v}, '^[1-9]%d*$'))",
              {"type": "integer", "minimum": 1, "maximum": _MAX15},
              (*_INT_BAD, "0", "-1", "1" * 16)),
    ArgFormat("number > 0", "a positive finite number",
              "((tonumber({v}) or 0) > 0 and tonumber({v}) < math.huge)",
              {"type": "number", "exclusiveMinimum": 0}, ("abc", "", "0", "-1", "nan", "inf")),
    ArgFormat("0|1", "0 or 1", "({v} == '0' or {v} == '1')",
              {"enum": ["0", "1"]}, ("2", "", "true", "01")),
    ArgFormat("0..3", "0, 1, 2 or 3", "({v} == '0' or {v} == '1' or {v} == '2' or {v} == '3')",
              {"enum": ["0", "1", "2", "3"]}, ("4", "", "-1", "01", "1.0")),
    ArgFormat("token", "a non-empty string without spaces or ':'",
              "({v} ~= '' and not string.find({v}, '[ :]'))",
              {"type": "string", "pattern": "^[^ :]+$"}, ("", "a:b", "a b")),
    # Receipt lists: the scripts split them on whitespace; one made of whitespace only
    # would leave no receipt to pass to ZMSCORE (a raw Redis error). What a receipt says is
    # not checked: one that matches no delivery is simply not acked or extended.
    ArgFormat("receipts", 'receipts "<id>/<delivery>" separated by spaces',
              "string.find({v}, '%S')", {"type": "string", "pattern": "\\S"},
              ("", " ", "   ")),
    ArgFormat("receipts or ''", 'receipts "<id>/<delivery>" separated by spaces, or ""',
              "({v} == '' or string.find({v}, '%S'))",
              {"type": "string", "pattern": "^$|\\S"}, (" ", "   ")),
    ArgFormat("string", "a string", None, {"type": "string"}),
    ArgFormat("packed", "see the argument's description (checked by the script)", None,
              {"type": "string"}),
)}


def lua_string(text: str) -> str:
    """``text`` as a Lua string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def check_lines(script: str, nkeys: int, keys_variadic: bool, args: list[tuple[int, str, str]],
                nargs: int, args_variadic: bool) -> str:
    """The Lua prologue of ``script``: the ``#KEYS``/``#ARGV`` check, then one check per
    argument (``args``: index, name, format) whose format has a Lua check."""
    kop, aop = ("<" if keys_variadic else "~="), ("<" if args_variadic else "~=")
    want_k = f"{'at least ' if keys_variadic else ''}{nkeys}"
    want_a = f"{'at least ' if args_variadic else ''}{nargs}"
    arity = f"takes {want_k} KEYS and {want_a} ARGV, got %d KEYS and %d ARGV"
    lines = [
        "-- pyredis-atomic checks, generated from the header {",
        f"local PA_SCRIPT = {lua_string(script)}",  # before the helper that uses it
        '--- @include "checks"',
        f"if #KEYS {kop} {nkeys} or #ARGV {aop} {nargs} then",
        f"  return pa_error(string.format({lua_string(arity)}, #KEYS, #ARGV))",
        "end",
    ]
    for index, name, fmt in args:
        spec = FORMATS[fmt]
        if spec.lua is None:
            continue
        value = f"ARGV[{index}]"
        lines += [
            f"if not {spec.lua.format(v=value)} then",
            f"  return pa_error("
            f"{lua_string(f'ARGV[{index}] {name} must be {spec.description}')}, {value})",
            "end",
        ]
    lines.append("-- } pyredis-atomic checks")
    return "\n".join(lines) + "\n"
