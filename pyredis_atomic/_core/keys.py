"""Key layout shared by every primitive.

A primitive's keys look like ``<prefix><kind>:{<name>}:<part>``: the name sits in a hash
tag, so all keys of one primitive land in one Redis Cluster slot and one script can touch
them all. Names are escaped (``%`` -> ``%25``, ``{`` -> ``%7B``, ``}`` -> ``%7D``) so that a
name can never end the hash tag early or pass for another primitive's name: the mapping from
(kind, name, part) to key is one-to-one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_PREFIX", "ESCAPES", "KeyLayout", "check_prefix", "escape_name"]

DEFAULT_PREFIX = "atomic:"
MAX_NAME_BYTES = 4096


# What escape_name replaces, in this order ('%' first, so an escape cannot be faked).
ESCAPES = (("%", "%25"), ("{", "%7B"), ("}", "%7D"))


def escape_name(name: str) -> str:
    """Escape the characters that would break or fake a hash tag (:data:`ESCAPES`)."""
    return name.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def check_name(name: object, argument: str = "name", *, max_bytes: int = MAX_NAME_BYTES,
               hint: str = "") -> str:
    """Validate a primitive's name (or another identifier sent to Redis): a non-empty
    ``str`` of valid Unicode, at most ``max_bytes`` UTF-8 bytes (4096 by default).
    ``hint`` completes the type error, e.g. " (a permit id from acquire())"."""
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a str{hint}, got {type(name).__name__}")
    if not name:
        raise ValueError(f"{argument} must not be empty")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"{argument} is not valid Unicode (lone surrogate)") from None
    if size > max_bytes:
        raise ValueError(f"{argument} is {size} bytes long; at most {max_bytes} allowed")
    return name


def check_prefix(prefix: object) -> str:
    """Validate a key prefix (namespace): a valid Unicode ``str`` without ``{`` or ``}``."""
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    if "{" in prefix or "}" in prefix:
        raise ValueError(f"prefix must not contain '{{' or '}}' (it would break hash tags): "
                         f"{prefix!r}")
    try:
        prefix.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"prefix is not valid Unicode (lone surrogate): {prefix!r}") from None
    return prefix


@dataclass(frozen=True)
class KeyLayout:
    """Builds the keys of one primitive instance.

    ``scope`` is for primitives with many independent entries (a cache): the scope (the
    cache's name) stays outside the hash tag and each entry gets its own tag.
    """

    kind: str
    prefix: str = DEFAULT_PREFIX

    def key(self, name: str, part: str | None = None, *, scope: str | None = None) -> str:
        """The key for ``part`` of the primitive called ``name`` (already validated)."""
        head = f"{self.prefix}{self.kind}:"
        if scope is not None:
            head += escape_name(scope) + ":"
        key = f"{head}{{{escape_name(name)}}}"
        return f"{key}:{part}" if part else key
