"""Lua script headers, the :class:`Script` record and the :class:`Catalog` of scripts.

Everything here is free of I/O apart from reading ``.lua`` files once at discovery: the
sync and asyncio registries (``pyredis_atomic.registry`` and
``pyredis_atomic.asyncio.registry``) add the network on top.

Header convention (a block comment at the top of every ``lua/<name>.lua``)::

    --[[
    One line of summary.

    KEYS[1] lock (string): what the key is; the word in brackets is its Redis type
    ARGV[1] token: what the argument is
    ARGV[2...] payloads: a trailing variadic argument (one or more)

    Returns: what the script replies (may go on over indented lines)
    Flags: read-only
    Redis: 6.2
    ]]

``Flags`` and ``Redis`` (the lowest server version the script needs) are optional.

Includes: a line ``--- @include "name"`` (BullMQ's marker) is replaced by the text of
``includes/name.lua`` (next to the script, else in the package's ``lua/includes/``). Includes
may include others; each is spliced in once per script (later markers for it are dropped).
``--- @include "constants"`` is generated from :mod:`pyredis_atomic._core.wire`. The SHA1,
``scripts show`` and the manifest all use the expanded source: that is what the server runs.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ServerVersionError
from .argformats import FORMATS, check_lines
from .functions import Library, build_library, library_name
from .validate import check_flag
from .wire import lua_constants

__all__ = [
    "BASE_REDIS",
    "KNOWN_FLAGS",
    "KNOWN_KEY_TYPES",
    "Catalog",
    "HeaderError",
    "Param",
    "Script",
    "expand_includes",
    "header_keys",
    "keyed",
    "parse_header",
    "parse_server_version",
]

KNOWN_FLAGS = frozenset({"read-only"})
#: The oldest server the package supports (and the default of a header's ``Redis:``). A
#: script whose header asks for no more is sent without looking at the server's version, so
#: the hot paths never pay for the check; one that asks for more is checked against the
#: version each registry reads once per client (``INFO server``).
BASE_REDIS = (6, 2)
KNOWN_KEY_TYPES = frozenset({"string", "list", "hash", "set", "zset", "stream", "any"})

_PARAM_RE = re.compile(
    r"^(?P<kind>KEYS|ARGV)\[(?P<index>\d+)(?P<rest>\.\.\.)?\]\s+"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:\s+\((?P<type>[^()]+)\))?\s*:\s*(?P<doc>.+)$"
)
_FIELD_RE = re.compile(r"^(?P<field>Returns|Flags|Redis)\s*:\s*(?P<value>.*)$")
_VERSION_RE = re.compile(r"^\d+(\.\d+){0,2}$")
_SCRIPT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_MARKER_RE = re.compile(r"^--- *@include\b(?P<rest>.*)$", re.M)
_INCLUDE_RE = re.compile(r'^ +"(?P<name>[a-z][a-z0-9_]*)" *$')
# Includes generated from Python rather than read from a file.
_VIRTUAL_INCLUDES = {"constants": lua_constants}


class HeaderError(ValueError):
    """A ``.lua`` file whose header does not follow the convention."""


@dataclass(frozen=True)
class Param:
    """One declared ``KEYS[i]`` or ``ARGV[i]``: its position, name, doc and (keys) Redis type."""

    index: int
    name: str
    doc: str
    redis_type: str | None = None
    variadic: bool = False
    #: ARGV only: the format (a key of :data:`~pyredis_atomic._core.argformats.FORMATS`;
    #: ``string`` when the header gives none) and the unit (``ms``, ``us``...), if any.
    format: str = "string"
    unit: str | None = None


@dataclass(frozen=True)
class Script:
    """A parsed script: its source, local SHA1 and the contract from its header."""

    name: str
    source: str
    summary: str
    keys: tuple[Param, ...]
    args: tuple[Param, ...]
    returns: str
    flags: frozenset[str] = frozenset()
    min_redis: tuple[int, ...] = BASE_REDIS
    path: Path | None = None
    includes: tuple[str, ...] = ()
    sha1: str = field(init=False)
    #: True when the header asks for a newer server than :data:`BASE_REDIS`.
    version_check: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha1", hashlib.sha1(self.source.encode()).hexdigest())
        object.__setattr__(self, "version_check", self.min_redis > BASE_REDIS)
        # Precomputed for the per-call arity check, which sits on every hot path.
        object.__setattr__(self, "_arity", (
            len(self.keys), any(p.variadic for p in self.keys),
            len(self.args), any(p.variadic for p in self.args),
        ))

    @property
    def read_only(self) -> bool:
        """True when the header declares that the script writes nothing."""
        return "read-only" in self.flags

    def check_arity(self, nkeys: int, nargs: int) -> None:
        """Raise ``ValueError`` naming the script and what is missing or extra."""
        nk, kvar, na, avar = self._arity  # type: ignore[attr-defined]
        if (nkeys == nk or (kvar and nkeys > nk)) and (nargs == na or (avar and nargs > na)):
            return
        _check_count(self.name, "KEYS", self.keys, nkeys)
        _check_count(self.name, "ARGV", self.args, nargs)

    def check_server(self, version: tuple[int, ...] | None) -> None:
        """Raise :class:`~pyredis_atomic.ServerVersionError` naming the script and both
        versions when the server is older than the header's ``Redis:`` (None: unknown, for
        example ``INFO`` denied by an ACL; then the server is left to answer)."""
        if version is not None and version < self.min_redis:
            need, have = _dotted(self.min_redis), _dotted(version)
            raise ServerVersionError(
                f"script {self.name!r} needs Redis {need} or newer (its header says "
                f"'Redis: {need}'); the server is Redis {have} (redis_version)",
                script=self.name, required=self.min_redis, server=version)

    def key_type(self, position: int) -> str | None:
        """Declared Redis type of ``KEYS[position]`` (1-based), or None."""
        for p in self.keys:
            if p.index == position or (p.variadic and position >= p.index):
                return p.redis_type
        return None


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(v) for v in version)


def parse_server_version(info: Any) -> tuple[int, ...] | None:
    """The Redis-compatible version from an ``INFO server`` reply (a parsed dict or its
    text), e.g. ``(7, 2, 4)``; None when absent. Valkey reports its own version as
    ``valkey_version`` and the Redis version it is compatible with as ``redis_version``:
    headers speak of the latter."""
    if isinstance(info, (bytes, str)):
        text = info.decode() if isinstance(info, bytes) else info
        info = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    raw = info.get("redis_version") if isinstance(info, dict) else None
    if isinstance(raw, bytes):
        raw = raw.decode()
    if raw is None:
        return None
    parts = re.match(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(raw).strip())
    if parts is None:
        return None
    return tuple(int(p) for p in parts.groups() if p is not None)


def _check_count(script: str, kind: str, params: Sequence[Param], got: int) -> None:
    fixed = [p for p in params if not p.variadic]
    variadic = any(p.variadic for p in params)
    want = len(params)  # a variadic parameter needs at least one value
    if got == want or (variadic and got > want):
        return
    expected = f"at least {want}" if variadic else str(want)
    if got < want:
        missing = ", ".join(f"{kind}[{p.index}] {p.name}" for p in params[got:])
        raise ValueError(
            f"script {script!r} takes {expected} {kind}, got {got}: missing {missing}"
        )
    extra = got - len(fixed)
    raise ValueError(f"script {script!r} takes {expected} {kind}, got {got} ({extra} extra)")


def _header_lines(source: str, origin: str) -> list[str]:
    stripped = source.lstrip()
    if not stripped.startswith("--[["):
        raise HeaderError(f"{origin}: the script must start with a --[[ ... ]] header comment")
    end = stripped.find("]]")
    if end < 0:
        raise HeaderError(f"{origin}: the header comment is not closed with ]]")
    return stripped[4:end].splitlines()


def includes_dir() -> Path:
    """The package's shared Lua pieces (``lua/includes``)."""
    return builtin_lua_dir() / "includes"


_COMMENT_LINE = re.compile(r"^[ \t]*(--(?!- *@include\b).*)?\n", re.M)


def _code_lines(text: str) -> str:
    """An include's text without its comment-only and blank lines: the include file keeps
    the explanations once, every script that splices it in stays small (a pipelined call or
    a NOSCRIPT fallback sends the whole source, and EVAL hashes it on every call)."""
    return _COMMENT_LINE.sub("", text if text.endswith("\n") else text + "\n")


def expand_includes(name: str, source: str,
                    include_dirs: Sequence[Path] = ()) -> tuple[str, tuple[str, ...]]:
    """Splice the includes into ``source``: the expanded text and the includes used, in order.

    ``include_dirs`` are searched in order, then the package's ``lua/includes``. Raises
    :class:`HeaderError` naming the script and the include for an unknown include, a
    malformed marker or a cycle.
    """
    used: list[str] = []

    def load(include: str, chain: tuple[str, ...]) -> str:
        if include in chain:
            raise HeaderError(f"script {name!r}: include cycle "
                              f"{' -> '.join((*chain, include))}")
        virtual = _VIRTUAL_INCLUDES.get(include)
        if virtual is not None:
            return virtual()
        for directory in (*include_dirs, includes_dir()):
            candidate = directory / f"{include}.lua"
            if candidate.is_file():
                text = _code_lines(candidate.read_text(encoding="utf-8"))
                return f"-- include {include!r} (includes/{include}.lua)\n" + expand(
                    text, (*chain, include))
        looked = ", ".join(str(d) for d in (*include_dirs, includes_dir()))
        raise HeaderError(f"script {name!r} includes {include!r}, which does not exist "
                          f"(looked for {include}.lua in {looked})")

    def expand(text: str, chain: tuple[str, ...]) -> str:
        if "@include" not in text:
            return text
        out: list[str] = []
        pos = 0
        for marker in _MARKER_RE.finditer(text):
            out.append(text[pos:marker.start()])
            pos = marker.end() + 1  # the marker's line break goes with it
            m = _INCLUDE_RE.match(marker["rest"])
            if m is None:
                raise HeaderError(f"script {name!r}: malformed include marker "
                                  f"{marker.group(0)!r} (want: --- @include \"name\")")
            include = m["name"]
            if include in used:
                continue  # each piece once: a second copy would redefine its locals
            body = load(include, chain)
            used.append(include)
            out.append(body if body.endswith("\n") else body + "\n")
        out.append(text[pos:])
        return "".join(out)

    return expand(source, ()), tuple(used)


def parse_header(name: str, source: str, path: Path | None = None,
                 include_dirs: Sequence[Path] = ()) -> Script:
    """Parse the header of one script and splice in its includes (see
    :func:`expand_includes`); raise :class:`HeaderError` on any deviation."""
    origin = str(path) if path is not None else name
    if not _SCRIPT_NAME_RE.match(name):
        raise HeaderError(f"{origin}: script names are lower_snake_case, got {name!r}")
    lines = _header_lines(source, origin)
    raw_source = source
    summary = ""
    keys: list[Param] = []
    args: list[Param] = []
    returns: list[str] = []
    flags: set[str] = set()
    min_redis: tuple[int, ...] = BASE_REDIS
    current: str | None = None  # field being continued on indented lines
    for raw in lines:
        line = raw.strip()
        if not line:
            current = None
            continue
        if current == "Returns" and raw[:1] in (" ", "\t"):
            returns.append(line)
            continue
        current = None
        param = _PARAM_RE.match(line)
        if param:
            target = keys if param["kind"] == "KEYS" else args
            redis_type = param["type"]
            if param["kind"] == "KEYS":
                if redis_type is None:
                    raise HeaderError(f"{origin}: {line!r} must name the key's Redis type")
                if redis_type not in KNOWN_KEY_TYPES:
                    raise HeaderError(f"{origin}: unknown Redis type {redis_type!r} in {line!r}")
                target.append(Param(int(param["index"]), param["name"], param["doc"].strip(),
                                    redis_type, bool(param["rest"])))
                continue
            fmt, unit = _arg_format(origin, line, redis_type)
            target.append(Param(int(param["index"]), param["name"], param["doc"].strip(), None,
                                bool(param["rest"]), fmt, unit))
            continue
        fld = _FIELD_RE.match(line)
        if fld:
            value = fld["value"].strip()
            if fld["field"] == "Returns":
                returns = [value] if value else []
                current = "Returns"
            elif fld["field"] == "Flags":
                for flag in filter(None, (f.strip() for f in value.split(","))):
                    if flag not in KNOWN_FLAGS:
                        raise HeaderError(f"{origin}: unknown flag {flag!r}")
                    flags.add(flag)
            else:
                if not _VERSION_RE.match(value):
                    raise HeaderError(f"{origin}: 'Redis:' wants a version like 7.0, got {value!r}")
                min_redis = tuple(int(v) for v in value.split("."))
            continue
        if line.startswith(("KEYS", "ARGV")):
            raise HeaderError(f"{origin}: malformed parameter line {line!r}")
        if not summary and not keys and not args:
            summary = line
            continue
        raise HeaderError(f"{origin}: unexpected header line {line!r}")
    if not summary:
        raise HeaderError(f"{origin}: the header has no summary line")
    if not returns:
        raise HeaderError(f"{origin}: the header has no 'Returns:' line")
    for kind, params in (("KEYS", keys), ("ARGV", args)):
        _check_positions(origin, kind, params)
    source, includes = expand_includes(name, _with_checks(name, raw_source, keys, args),
                                       include_dirs)
    return Script(
        name=name,
        source=source,
        summary=summary,
        keys=tuple(keys),
        args=tuple(args),
        returns=" ".join(returns),
        flags=frozenset(flags),
        min_redis=min_redis,
        path=path,
        includes=includes,
    )


def _arg_format(origin: str, line: str, spec: str | None) -> tuple[str, str | None]:
    """``(format, unit)`` of an ARGV line's ``(format, unit)`` annotation."""
    if spec is None:
        return "string", None
    fmt, _, unit = (part.strip() for part in spec.partition(","))
    if fmt not in FORMATS:
        raise HeaderError(f"{origin}: unknown argument format {fmt!r} in {line!r} "
                          f"(known: {', '.join(FORMATS)})")
    if unit and not re.fullmatch(r"[a-z_]+", unit):
        raise HeaderError(f"{origin}: malformed unit {unit!r} in {line!r}")
    return fmt, unit or None


def _with_checks(name: str, source: str, keys: Sequence[Param], args: Sequence[Param]) -> str:
    """``source`` with the generated argument checks right after its header."""
    for a in args:
        if a.variadic and FORMATS[a.format].lua is not None:
            raise HeaderError(f"script {name!r}: the variadic ARGV[{a.index}...] {a.name} "
                              f"takes the format 'string' (checks of variadic values are "
                              f"the script's own)")
    end = source.index("]]") + 2
    if source[end:end + 1] == "\n":
        end += 1
    else:
        source = source[:end] + "\n" + source[end:]
        end += 1
    prologue = check_lines(
        name, len(keys), any(k.variadic for k in keys),
        [(a.index, a.name, a.format) for a in args if not a.variadic],
        len(args), any(a.variadic for a in args))
    return source[:end] + prologue + source[end:]


def _check_positions(origin: str, kind: str, params: Sequence[Param]) -> None:
    for want, p in enumerate(params, start=1):
        if p.index != want:
            raise HeaderError(f"{origin}: {kind}[{p.index}] {p.name} is out of order "
                              f"(expected {kind}[{want}])")
        if p.variadic and want != len(params):
            raise HeaderError(f"{origin}: only the last {kind} entry may be variadic")
    names = [p.name for p in params]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise HeaderError(f"{origin}: duplicate {kind} names {sorted(dupes)}")


def builtin_lua_dir() -> Path:
    """Where the package's own scripts are: inside the wheel, or ``lua/`` of a checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "lua", here.parent / "lua"):
        if candidate.is_dir() and any(candidate.glob("*.lua")):
            return candidate
    raise FileNotFoundError(
        f"pyredis_atomic could not find its Lua scripts (looked in {here / 'lua'} "
        f"and {here.parent / 'lua'}); the installation is incomplete"
    )


K = TypeVar("K")


@functools.cache
def header_keys(name: str) -> tuple[str, ...]:
    """The names of the ``KEYS`` of the package's script ``name``, in order, as its header
    declares them (parsed once)."""
    path = builtin_lua_dir() / f"{name}.lua"
    script = parse_header(name, path.read_text(encoding="utf-8"), path, [path.parent / "includes"])
    return tuple(p.name for p in script.keys)


def keyed(script: str, keys: Mapping[str, K]) -> tuple[K, ...]:
    """The ``KEYS`` of a call of the package's script ``script``, picked from ``keys`` (a
    primitive's keys by role) by the names its header gives them: calls are built by key
    name, never by a hand-ordered tuple. ``KeyError`` names a key the primitive lacks."""
    try:
        return tuple(keys[n] for n in header_keys(script))
    except KeyError as exc:
        raise KeyError(f"script {script!r} declares KEYS {header_keys(script)}; "
                       f"no key named {exc.args[0]!r} among {sorted(keys)}") from None


class Catalog:
    """The scripts known to a registry: the package's own plus any extra directories.

    Names must be unique across directories; a clash is an error rather than a silent
    override, so an operator never runs a different script than the one they think.
    """

    def __init__(self, directories: Iterable[str | Path] = (), *, builtin: bool = True) -> None:
        dirs = [builtin_lua_dir()] if check_flag(builtin, "builtin") else []
        dirs.extend(Path(d) for d in directories)
        scripts: dict[str, Script] = {}
        for directory in dirs:
            if not directory.is_dir():
                raise FileNotFoundError(f"script directory {str(directory)!r} does not exist")
            for path in sorted(directory.glob("*.lua")):
                script = parse_header(path.stem, path.read_text(encoding="utf-8"), path,
                                      [directory / "includes"])
                if script.name in scripts:
                    raise HeaderError(
                        f"{path}: a script named {script.name!r} is already loaded from "
                        f"{scripts[script.name].path}"
                    )
                scripts[script.name] = script
        self._scripts = scripts
        self.directories: tuple[Path, ...] = tuple(dirs)
        self._libraries: dict[str | None, Library] = {}

    def __getitem__(self, name: str) -> Script:
        return self._scripts[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._scripts)

    def __len__(self) -> int:
        return len(self._scripts)

    def names(self) -> list[str]:
        """Script names, sorted."""
        return sorted(self._scripts)

    def __contains__(self, name: object) -> bool:
        return name in self._scripts

    def get(self, name: str) -> Script:
        """The script called ``name``; ``KeyError`` listing the known names if there is none."""
        try:
            return self._scripts[name]
        except KeyError:
            raise KeyError(f"no script named {name!r}; known: {', '.join(self.names())}") from None

    def library(self, name: str | None = None) -> Library:
        """These scripts built into one Redis Functions library (see
        :mod:`pyredis_atomic._core.functions`), built once. Its name unless ``name`` is
        given: ``pyredis_atomic_<version>`` for the package's own scripts; for any other
        set (extra directories, ``builtin=False``) the same followed by ``_x`` and the
        first 10 hex digits of the SHA1 of the scripts' sources, so such a library never
        takes (or replaces) the package's name, and the same scripts always get the same
        name."""
        key = name
        found = self._libraries.get(key)
        if found is None:
            from .. import __version__  # the package, initialised by now

            if name is None and self.directories != (builtin_lua_dir(),):
                digest = hashlib.sha1("".join(
                    f"{n}\0{self._scripts[n].source}\0" for n in sorted(self._scripts)
                ).encode()).hexdigest()[:10]
                name = f"{library_name(__version__)}_x{digest}"
            found = self._libraries[key] = build_library(self._scripts.values(), __version__,
                                                         name)
        return found

    def manifest(self) -> dict[str, Any]:
        """The JSON-ready manifest, version 2 (see :mod:`pyredis_atomic.manifest`): every
        script's source, SHA1, keys with templates, arguments with formats and defaults,
        reply, flags and minimum version, and every primitive's operations and protocols."""
        # Imported here: the manifest reads the primitives' defaults from the public API,
        # which this I/O-free module must not import at load time.
        from ..manifest import build_manifest

        return build_manifest(self)
