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
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "KNOWN_FLAGS",
    "KNOWN_KEY_TYPES",
    "Catalog",
    "HeaderError",
    "Param",
    "Script",
    "parse_header",
]

KNOWN_FLAGS = frozenset({"read-only"})
KNOWN_KEY_TYPES = frozenset({"string", "list", "hash", "set", "zset", "stream", "any"})

_PARAM_RE = re.compile(
    r"^(?P<kind>KEYS|ARGV)\[(?P<index>\d+)(?P<rest>\.\.\.)?\]\s+"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:\s+\((?P<type>[a-z]+)\))?\s*:\s*(?P<doc>.+)$"
)
_FIELD_RE = re.compile(r"^(?P<field>Returns|Flags|Redis)\s*:\s*(?P<value>.*)$")
_VERSION_RE = re.compile(r"^\d+(\.\d+){0,2}$")
_SCRIPT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


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

    def to_json(self) -> dict[str, Any]:
        """JSON-ready description, as it appears in the manifest."""
        out: dict[str, Any] = {"index": self.index, "name": self.name, "doc": self.doc}
        if self.redis_type is not None:
            out["type"] = self.redis_type
        if self.variadic:
            out["variadic"] = True
        return out


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
    min_redis: tuple[int, ...] = (6, 2)
    path: Path | None = None
    sha1: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha1", hashlib.sha1(self.source.encode()).hexdigest())
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

    def key_type(self, position: int) -> str | None:
        """Declared Redis type of ``KEYS[position]`` (1-based), or None."""
        for p in self.keys:
            if p.index == position or (p.variadic and position >= p.index):
                return p.redis_type
        return None

    def manifest_entry(self) -> dict[str, Any]:
        """JSON-ready description for operators and for callers in other languages."""
        return {
            "name": self.name,
            "sha1": self.sha1,
            "summary": self.summary,
            "keys": [k.to_json() for k in self.keys],
            "args": [a.to_json() for a in self.args],
            "returns": self.returns,
            "flags": sorted(self.flags),
            "min_redis": ".".join(str(v) for v in self.min_redis),
        }


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


def parse_header(name: str, source: str, path: Path | None = None) -> Script:
    """Parse the header of one script; raise :class:`HeaderError` on any deviation."""
    origin = str(path) if path is not None else name
    if not _SCRIPT_NAME_RE.match(name):
        raise HeaderError(f"{origin}: script names are lower_snake_case, got {name!r}")
    lines = _header_lines(source, origin)
    summary = ""
    keys: list[Param] = []
    args: list[Param] = []
    returns: list[str] = []
    flags: set[str] = set()
    min_redis: tuple[int, ...] = (6, 2)
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
            elif redis_type is not None:
                raise HeaderError(f"{origin}: ARGV entries take no type: {line!r}")
            target.append(
                Param(int(param["index"]), param["name"], param["doc"].strip(), redis_type,
                      bool(param["rest"]))
            )
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
    )


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


class Catalog:
    """The scripts known to a registry: the package's own plus any extra directories.

    Names must be unique across directories; a clash is an error rather than a silent
    override, so an operator never runs a different script than the one they think.
    """

    def __init__(self, directories: Iterable[str | Path] = (), *, builtin: bool = True) -> None:
        dirs = [builtin_lua_dir()] if builtin else []
        dirs.extend(Path(d) for d in directories)
        scripts: dict[str, Script] = {}
        for directory in dirs:
            if not directory.is_dir():
                raise FileNotFoundError(f"script directory {str(directory)!r} does not exist")
            for path in sorted(directory.glob("*.lua")):
                script = parse_header(path.stem, path.read_text(encoding="utf-8"), path)
                if script.name in scripts:
                    raise HeaderError(
                        f"{path}: a script named {script.name!r} is already loaded from "
                        f"{scripts[script.name].path}"
                    )
                scripts[script.name] = script
        self._scripts = scripts
        self.directories: tuple[Path, ...] = tuple(dirs)

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

    def manifest(self) -> dict[str, Any]:
        """JSON-ready manifest: every script's name, sha1, keys, args, returns, flags."""
        return {
            "format": "pyredis-atomic-manifest/1",
            "scripts": [self._scripts[n].manifest_entry() for n in self.names()],
        }
