"""What differs between the servers pyredis-atomic supports, as pure functions on strings.

Supported: Redis 6.2, Redis 7.x, Valkey 7.2 and 8.x (see ``docs/servers.md``). Two things
differ that the library must hide:

* **The error reply of a command that fails inside a script.** Redis 7.0+ and Valkey pass
  the command's own error through and append where it happened::

      WRONGTYPE Operation against a key holding the wrong kind ... script: <sha>, on @user_script:9.

  Redis 6.2 wraps every such error in an ``ERR``, and for errors that redis.call raises as
  tables (``OOM``, ``READONLY``, ``NOPERM``...) repeats the location with a ``-`` before the
  code::

      ERR Error running script (call to f_<sha>): @user_script:9: WRONGTYPE Operation ...
      ERR Error running script (call to f_<sha>): @user_script:1: @user_script: 1: -OOM ...

  :func:`parse_error_reply` reads both into one :class:`ErrorReply` (code, text, line), so
  a ``WRONGTYPE`` is a :class:`~pyredis_atomic.WrongTypeError` naming the key on every server.
  Errors a script raises itself (``redis.error_reply('NOTINT ...')``) are passed through
  unchanged by every server.

* **Commands added in 7.0** (``EVALSHA_RO``/``EVAL_RO``, ``PEXPIRETIME``, ACL selectors,
  the ``#!lua`` shebang): :func:`parse_server_version` reads ``INFO server`` and
  :data:`FEATURES` says from which version each is there, so callers choose a fallback or
  raise an error before sending anything.

Nothing here talks to a server or imports redis-py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "FEATURES",
    "ErrorReply",
    "ServerVersion",
    "format_version",
    "has_feature",
    "is_wrong_type",
    "parse_error_reply",
    "parse_server_version",
    "parse_version",
    "redis_compatible",
    "script_load_replicated",
]

# Redis 6.2: "Error running script (call to f_<sha>): @user_script:<line>: <inner>", the
# leading "ERR " kept or already stripped by the client library.
_WRAPPED = re.compile(
    r"^(?:ERR )?Error running script \(call to f_(?P<sha>[0-9a-fA-F]{40})\): "
    r"@user_script:(?P<line>\d+): (?P<inner>.*)$",
    re.DOTALL,
)
# Redis 6.2, errors that redis.call raises as error tables: "@user_script: 1: -OOM ...",
# or with no code at all ("@user_script: 1: The user executing the script can't run ...").
_TABLE = re.compile(r"^@user_script: ?\d+: -?(?P<inner>.*)$", re.DOTALL)
# Redis 7.0+ / Valkey: " script: <sha>, on @user_script:<line>." appended to the error.
_LOCATED = re.compile(
    r"^(?P<inner>.*?) script: (?P<sha>[0-9a-fA-F]{40}), on @user_script:(?P<line>\d+)\.$",
    re.DOTALL,
)
# An error code: the all-caps first word of an error reply (WRONGTYPE, NOTINT, OOM, ...).
_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class ErrorReply:
    """An error reply read the same way on every supported server.

    ``code``: the first word (``WRONGTYPE``, ``ERR``, ``NOTINT``...; ``ERR`` when the reply
    had none or the client library stripped it). ``text``: the rest, without the script
    location. ``line``: the script line the server named, if any. ``sha``: the script's
    SHA1 when the server named it.
    """

    code: str
    text: str
    line: int | None = None
    sha: str | None = None

    @property
    def message(self) -> str:
        """``code text`` (``text`` alone for a plain ``ERR``, as redis-py shows those), and
        the line when the server named one: the same string on every server."""
        head = self.text if self.code == "ERR" else f"{self.code} {self.text}".rstrip()
        return f"{head} (script line {self.line})" if self.line is not None else head


def _split_code(message: str, code: str) -> tuple[str, str]:
    if code:
        return code, message
    first, _, rest = message.partition(" ")
    if _CODE.match(first):
        return first, rest
    return "ERR", message


def parse_error_reply(message: str, code: str = "") -> ErrorReply:
    """Read an error reply as the client library gives it (``str(exc)``).

    ``code``: the error code when the library consumed it from the message (redis-py turns
    ``-NOPERM ...`` into ``NoPermissionError("...")``, ``-ERR x`` into ``ResponseError("x")``);
    leave it empty when the message still starts with its code.
    """
    line: int | None = None
    sha: str | None = None
    wrapped = _WRAPPED.match(message)
    if wrapped:  # Redis 6.2: the inner error keeps its own code ("ERR value is not ...")
        line, sha = int(wrapped.group("line")), wrapped.group("sha").lower()
        inner = wrapped.group("inner")
        table = _TABLE.match(inner)
        if table:
            inner = table.group("inner")
        code, text = _split_code(inner, "")
        return ErrorReply(code, text.strip(), line, sha)
    located = _LOCATED.match(message)
    if located:  # Redis 7.0+ / Valkey
        line, sha = int(located.group("line")), located.group("sha").lower()
        message = located.group("inner")
    code, text = _split_code(message, code)
    return ErrorReply(code, text.strip(), line, sha)


def is_wrong_type(message: str, code: str = "") -> bool:
    """True for a ``WRONGTYPE`` error, raised directly or inside a script, on any server."""
    return parse_error_reply(message, code).code == "WRONGTYPE"


# -- versions ------------------------------------------------------------------------------

ServerVersion = tuple[str, tuple[int, ...]]
"""``(name, version)``: ``("redis", (6, 2, 14))``, ``("valkey", (8, 1, 8))``."""

# The first server version with each feature the library or its tests may use. Valkey 7.2
# forked from Redis 7.2, so Valkey has all of them.
FEATURES: Mapping[str, tuple[int, ...]] = {
    "EVALSHA_RO": (7, 0),  # and EVAL_RO: read-only scripts that replicas accept
    "PEXPIRETIME": (7, 0),
    "ACL selectors": (7, 0),  # ACL rules naming EVALSHA_RO need the command too
    "script shebang": (7, 0),  # "#!lua flags=..." as a script's first line
    "functions": (7, 0),  # FUNCTION LOAD, FCALL, FCALL_RO (a registry's functions mode)
}


def parse_version(text: str) -> tuple[int, ...]:
    """``"7.0.15"`` -> ``(7, 0, 15)``; non-numeric parts (``"8.1.0-rc1"``) end the tuple."""
    out: list[int] = []
    for part in text.strip().split("."):
        digits = re.match(r"\d+", part)
        if not digits:
            break
        out.append(int(digits.group()))
        if digits.group() != part:
            break
    if not out:
        raise ValueError(f"not a server version: {text!r}")
    return tuple(out)


def format_version(version: tuple[int, ...]) -> str:
    """``(7, 0, 15)`` -> ``"7.0.15"``."""
    return ".".join(str(p) for p in version)


def parse_server_version(info: Mapping[str, object]) -> ServerVersion:
    """Name and version from ``INFO server`` (a mapping, as redis-py parses it).

    Valkey reports ``server_name:valkey`` and ``valkey_version`` (and, for clients that
    check it, ``redis_version:7.2.4``); Redis only ``redis_version``.
    """
    name = str(info.get("server_name") or "redis").lower()
    key = f"{name}_version"
    raw = info.get(key) or info.get("redis_version")
    if raw is None:
        raise ValueError("INFO server names no version (no redis_version field)")
    return name, parse_version(str(raw))


def redis_compatible(server: ServerVersion) -> tuple[int, ...]:
    """The Redis version whose commands ``server`` has: Valkey 7.2+ has Redis 7.2's."""
    name, version = server
    if name == "valkey":
        return max(version, (7, 2))
    return version


def has_feature(server: ServerVersion, feature: str) -> bool:
    """True when ``server`` has ``feature`` (a key of :data:`FEATURES`)."""
    return redis_compatible(server) >= FEATURES[feature]


def script_load_replicated(server: ServerVersion) -> bool:
    """Before Redis 7.0, ``SCRIPT LOAD`` reached replicas (and the AOF); since 7.0 (and on
    Valkey) a replica has only the scripts loaded on it directly, so an ``EVALSHA_RO`` sent
    to it answers ``NOSCRIPT`` until it is loaded there."""
    return redis_compatible(server) < (7, 0)
