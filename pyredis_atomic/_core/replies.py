"""Decoding of script replies, identical for RESP2 and RESP3 and for clients created with
or without ``decode_responses=True``.

Scripts reply with integers, strings and flat arrays only. A string arrives as ``bytes``
or, on a decoding client, as ``str``; these helpers give one Python value either way.
"""

from __future__ import annotations

from typing import Any

__all__ = ["as_bytes", "as_int", "as_list", "as_optional_str", "as_str"]


def as_str(reply: Any) -> str:
    """A string reply as ``str`` (UTF-8)."""
    if isinstance(reply, bytes):
        return reply.decode("utf-8")
    if isinstance(reply, str):
        return reply
    if isinstance(reply, int):  # bool included: RESP3 may turn Lua true into a boolean
        return str(int(reply))
    raise TypeError(f"expected a string reply, got {type(reply).__name__}: {reply!r}")


def as_optional_str(reply: Any) -> str | None:
    """Like :func:`as_str`, with nil (``None``) and Lua ``false`` kept as ``None``."""
    if reply is None or reply is False:
        return None
    return as_str(reply)


def as_bytes(reply: Any) -> bytes:
    """A string reply as ``bytes`` (a decoding client's ``str`` is encoded back as UTF-8)."""
    if isinstance(reply, bytes):
        return reply
    if isinstance(reply, str):
        return reply.encode("utf-8")
    raise TypeError(f"expected a string reply, got {type(reply).__name__}: {reply!r}")


def as_int(reply: Any) -> int:
    """An integer reply (also accepts the integer's decimal string, as Lua may return)."""
    if isinstance(reply, bool):
        return int(reply)
    if isinstance(reply, int):
        return reply
    if isinstance(reply, (bytes, str)):
        return int(reply)
    raise TypeError(f"expected an integer reply, got {type(reply).__name__}: {reply!r}")


def as_list(reply: Any) -> list[Any]:
    """An array reply; nil counts as the empty array."""
    if reply is None:
        return []
    if isinstance(reply, (list, tuple)):
        return list(reply)
    raise TypeError(f"expected an array reply, got {type(reply).__name__}: {reply!r}")
