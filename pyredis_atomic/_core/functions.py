"""Redis Functions: the package's scripts built into one versioned library (I/O-free).

Redis 7.0 added Functions (``FUNCTION LOAD``, ``FCALL``, ``FCALL_RO``): named libraries the
server keeps in its RDB/AOF and replicates, where ``SCRIPT LOAD`` only fills a cache. The
same ``lua/`` files (includes expanded, checks generated, exactly the text ``EVALSHA``
runs) become one library::

    #!lua name=pyredis_atomic_0_1_0
    redis.register_function{function_name='pyredis_atomic_0_1_0__lock_acquire',
      callback=function(KEYS, ARGV)
    <the script's source>
    end}
    redis.register_function{..., flags={'no-writes'}}   -- read-only scripts (Flags:)

What differs between a function and an ``EVAL`` script, and why the wrapping is enough:

* ``KEYS`` and ``ARGV`` are not globals inside a function: the callback receives them as
  its two parameters, named ``KEYS`` and ``ARGV`` so the body reads them unchanged.
* The library's top level runs at ``FUNCTION LOAD`` time, where ``redis.call`` does not
  exist: every script's code, its ``local function``\\s included, sits inside its callback.
* Functions names are global on a server: they carry the library's name
  (``<library>__<script>``), so two versions of the package can be loaded side by side
  during a rolling deploy, each calling its own code.
* Flags: a function without flags is refused before it runs when the server is over
  ``maxmemory`` (``deny-oom``), even one that would only delete (``cache_delete``,
  ``queue_purge``); an ``EVAL`` script without a shebang runs and fails only at its first
  command that may grow memory. Read-only scripts get ``no-writes`` (so ``FCALL_RO`` and
  replicas accept them, and they run under OOM).
* The scripts use no ``redis.setresp``, ``redis.REDIS_VERSION`` or ``#!lua`` shebang of
  their own, and no globals (both kinds of script refuse them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import LibraryNotLoadedError, ServerVersionError

if TYPE_CHECKING:  # script.py imports this module
    from .script import Script

__all__ = [
    "FUNCTIONS_REDIS",
    "LIBRARY_PREFIX",
    "MODES",
    "Library",
    "LibraryState",
    "LibraryStatus",
    "build_library",
    "check_mode",
    "function_name",
    "library_missing_error",
    "library_name",
    "library_status",
    "no_functions_error",
    "parse_function_list",
]

#: A registry's modes: ``scripts`` (EVALSHA, EVAL on NOSCRIPT) or ``functions`` (FCALL).
MODES = ("scripts", "functions")


def check_mode(mode: object) -> str:
    """``mode`` if it is one of :data:`MODES`; ``ValueError``/``TypeError`` naming it."""
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a str ('scripts' or 'functions'), got "
                        f"{type(mode).__name__}")
    if mode not in MODES:
        raise ValueError(f"mode must be 'scripts' or 'functions', got {mode!r}")
    return mode

#: The first server version with Redis Functions.
FUNCTIONS_REDIS = (7, 0)
#: Every library the package builds is called ``pyredis_atomic_<version>``.
LIBRARY_PREFIX = "pyredis_atomic"
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_FUNCTION_LOCATED = re.compile(
    r"^(?P<inner>.*?) script: (?P<function>[A-Za-z0-9_]+), on @user_function:(?P<line>\d+)\.$",
    re.DOTALL)


def library_name(version: str) -> str:
    """``pyredis_atomic_<version>`` with the version made a Lua/Functions name
    (``0.1.0.dev0`` -> ``pyredis_atomic_0_1_0_dev0``): letters, digits and ``_`` only."""
    safe = _UNSAFE.sub("_", version.strip())
    if not safe:
        raise ValueError(f"not a version: {version!r}")
    return f"{LIBRARY_PREFIX}_{safe}"


def function_name(library: str, script: str) -> str:
    """The name of script ``script``'s function in ``library``: ``<library>__<script>``."""
    return f"{library}__{script}"


@dataclass(frozen=True)
class Library:
    """A built library: its name, its code (the ``FUNCTION LOAD`` payload) and the
    function of each script."""

    name: str
    version: str
    code: str
    functions: Mapping[str, str]  # script name -> function name
    read_only: frozenset[str] = field(default_factory=frozenset)  # script names
    #: script name -> (the library line of the body's first line, the script's sha1)
    bodies: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    def located_as_script(self, message: str) -> str:
        """An error reply located in a function (``script: <function>, on
        @user_function:<library line>.``) rewritten as the same script's ``EVAL`` error
        (``script: <sha1>, on @user_script:<line>.``), so both modes report the same
        error, line included; other messages unchanged."""
        found = _FUNCTION_LOCATED.match(message)
        if found is None:
            return message
        script = found["function"].rpartition("__")[2]
        where = self.bodies.get(script)
        if where is None or self.functions.get(script) != found["function"]:
            return message
        first, sha = where
        line = int(found["line"]) - first + 1
        return f"{found['inner']} script: {sha}, on @user_script:{line}."

    def function(self, script: str) -> str:
        """The function name of ``script``; ``KeyError`` if the library lacks it."""
        try:
            return self.functions[script]
        except KeyError:
            raise KeyError(f"library {self.name!r} has no function for script "
                           f"{script!r}") from None


def build_library(scripts: Iterable[Script], version: str,
                  name: str | None = None) -> Library:
    """Build the library of ``scripts`` (name ``pyredis_atomic_<version>`` unless ``name``)."""
    name = name or library_name(version)
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ValueError(f"library names are letters, digits and '_', got {name!r}")
    ordered = sorted(scripts, key=lambda s: s.name)
    parts = [f"#!lua name={name}\n",
             f"-- pyredis-atomic {version}: {len(ordered)} functions, one per script of "
             f"lua/, each called as FCALL <function> numkeys key... arg... (or FCALL_RO for "
             f"the no-writes ones). Built by 'pyredis-atomic functions show'.\n"]
    functions: dict[str, str] = {}
    read_only: set[str] = set()
    bodies: dict[str, tuple[int, str]] = {}
    line = sum(p.count("\n") for p in parts) + 1  # the line the next part starts on
    for script in ordered:
        fname = function_name(name, script.name)
        functions[script.name] = fname
        body = script.source if script.source.endswith("\n") else script.source + "\n"
        flags = ""
        if script.read_only:
            flags = ", flags={'no-writes'}"
            read_only.add(script.name)
        head = (f"\n-- {script.name} (sha1 of the EVAL source {script.sha1})\n"
                f"redis.register_function{{function_name='{fname}', "
                f"callback=function(KEYS, ARGV)\n")
        bodies[script.name] = (line + head.count("\n"), script.sha1)
        part = f"{head}{body}end{flags}}}\n"
        parts.append(part)
        line += part.count("\n")
    return Library(name=name, version=version, code="".join(parts), functions=functions,
                   read_only=frozenset(read_only), bodies=bodies)


@dataclass(frozen=True)
class LibraryState:
    """One library as a server's ``FUNCTION LIST`` shows it."""

    name: str
    functions: tuple[str, ...]
    code: str | None = None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _pairs(item: Any) -> dict[str, Any]:
    # RESP2: a flat list of name, value...; RESP3 (or redis-py's parsing): a dict.
    if isinstance(item, Mapping):
        return {_text(k): v for k, v in item.items()}
    seq: Sequence[Any] = item
    return {_text(seq[i]): seq[i + 1] for i in range(0, len(seq) - 1, 2)}


def parse_function_list(reply: Any) -> dict[str, LibraryState]:
    """``FUNCTION LIST [WITHCODE]``'s reply (RESP2 or RESP3, bytes or text) by library name."""
    out: dict[str, LibraryState] = {}
    for item in reply or ():
        fields = _pairs(item)
        name = _text(fields.get("library_name", ""))
        names = []
        for fn in fields.get("functions") or ():
            names.append(_text(_pairs(fn).get("name", "")))
        code = fields.get("library_code")
        out[name] = LibraryState(name, tuple(sorted(names)),
                                 None if code is None else _text(code))
    return out


@dataclass(frozen=True)
class LibraryStatus:
    """What one node has of a library: ``status`` is ``ok`` (the same code), ``outdated``
    (a library of that name with other code) or ``missing``; ``others``: the other
    ``pyredis_atomic_*`` libraries on the node (other versions, say during a deploy)."""

    node: str
    library: str
    status: str
    others: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the node has the library with exactly the expected code."""
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"node": self.node, "library": self.library, "status": self.status,
                "others": list(self.others)}

    def describe(self) -> str:
        """One line for people."""
        what = {"ok": "loaded", "missing": "MISSING",
                "outdated": "OUTDATED (same name, other code)"}[self.status]
        tail = f"; also: {', '.join(self.others)}" if self.others else ""
        return f"{self.node}: {self.library} {what}{tail}"


def library_status(node: str, library: Library,
                   listing: Mapping[str, LibraryState]) -> LibraryStatus:
    """The :class:`LibraryStatus` of ``library`` on ``node`` from its ``FUNCTION LIST``."""
    others = tuple(sorted(n for n in listing
                          if n != library.name and n.startswith(LIBRARY_PREFIX)))
    state = listing.get(library.name)
    if state is None:
        status = "missing"
    elif state.code is not None and state.code != library.code:
        status = "outdated"
    else:
        status = "ok"
    return LibraryStatus(node, library.name, status, others)


def library_missing_error(library: Library, script: str,
                          node: str | None) -> LibraryNotLoadedError:
    """The error of a call whose function the server does not have."""
    fname = library.function(script)
    where = node or "the server"
    return LibraryNotLoadedError(
        f"script {script!r}: the Redis Functions library {library.name!r} (pyredis-atomic "
        f"{library.version}) is not loaded on {where} (FCALL {fname}: Function not found); "
        f"load it with 'pyredis-atomic functions load' (the registry does not load it "
        f"itself), nothing ran", script=script, function=fname, library=library.name,
        node=node)


def no_functions_error(version: tuple[int, ...] | None, node: str | None,
                       script: str = "") -> ServerVersionError:
    """Functions mode on a server without Functions (Redis 6.2)."""
    have = ".".join(str(v) for v in version) if version else "unknown"
    where = node or "the server"
    return ServerVersionError(
        f"Redis Functions mode (FCALL) needs Redis 7.0 or newer; {where} is Redis {have}: "
        f"use the default scripts mode (EVALSHA) there", script=script,
        required=FUNCTIONS_REDIS, server=version or ())
