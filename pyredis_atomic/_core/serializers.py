"""Serializers of cached values: ``json`` (default), ``raw`` bytes, ``pickle`` (opt-in only),
or any object with ``dumps``/``loads``.

Every stored value carries the name of the serializer that wrote it, so a cache never hands
a value written in one format to another format's ``loads`` (a ``raw`` reader would return
pickled bytes as if they were the value; a ``json`` reader never unpickles anything).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

_orjson: Any
try:  # the "orjson" extra: decodes the JSON of a cache hit about 5x faster
    import orjson as _orjson
except ImportError:  # pragma: no cover - the tests cover both readers via json_loads_with
    _orjson = None

__all__ = ["JSON", "PICKLE", "RAW", "Serializer", "SerializerLike", "json_loads_with",
           "resolve_serializer"]


@runtime_checkable
class SerializerLike(Protocol):
    """What a custom serializer provides: ``dumps(value) -> bytes | str`` and
    ``loads(bytes) -> value``. An optional ``name`` (str) is stored with each value."""

    def dumps(self, value: Any) -> bytes | str:
        """Serialize ``value``; raise ``TypeError``/``ValueError`` if it cannot."""

    def loads(self, data: bytes) -> Any:
        """Rebuild a value from what ``dumps`` returned (as bytes)."""


class Serializer:
    """A named pair of functions turning values into bytes and back."""

    __slots__ = ("dumps", "loads", "name")

    def __init__(self, name: str, dumps: Any, loads: Any) -> None:
        self.name = name
        self.dumps = dumps
        self.loads = loads

    def __repr__(self) -> str:
        return f"Serializer({self.name!r})"


_json_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json_dumps(value: Any) -> bytes:
    return _json_encoder.encode(value).encode("utf-8")


# orjson reads integers beyond 64 bits as floats, silently; Python's json keeps them exact.
# A run of 19 digits anywhere (even inside a string) sends the value to json: always safe.
# The check maps every digit to "0" and everything else to " ", then looks for 19 zeros: a
# C-speed pass (~1 ms per MB, where a regex took 12-40 ms).
_DIGIT_MAP = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_RUN = b"0" * 19


def json_loads_with(fast: Any) -> Callable[[bytes], Any]:
    """The ``loads`` of the json serializer, given the ``orjson`` module (or None).

    orjson reads what Python's ``json`` reads to the same value, except integers beyond 64
    bits (sent to ``json`` by the digit check) and the ``NaN``/``Infinity`` literals, lone
    surrogates and UTF-16/32 or BOM-prefixed input, which orjson rejects: those fall back to
    ``json.loads``. (One refusal differs: orjson reads arrays nested up to 1024 deep, where
    ``json`` may hit Python's recursion limit a little before 1000.)
    """
    if fast is None:
        return json.loads
    fast_loads = fast.loads
    fast_error = fast.JSONDecodeError

    def loads(data: bytes) -> Any:
        if type(data) is bytes and _LONG_RUN not in data.translate(_DIGIT_MAP):
            try:
                return fast_loads(data)
            except fast_error:
                pass
        return json.loads(data)

    return loads


def _raw_dumps(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"the 'raw' serializer stores bytes, got {type(value).__name__}")


def _raw_loads(data: bytes) -> bytes:
    return data


def _pickle_dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


JSON = Serializer("json", _json_dumps, json_loads_with(_orjson))
RAW = Serializer("raw", _raw_dumps, _raw_loads)
PICKLE = Serializer("pickle", _pickle_dumps, pickle.loads)

_BUILTIN = {"json": JSON, "raw": RAW, "pickle": PICKLE}


def _custom(obj: Any) -> Serializer:
    name = getattr(obj, "name", None)
    if name is None:
        name = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if not isinstance(name, str) or not name:
        raise TypeError("serializer.name must be a non-empty str")
    if name in _BUILTIN:
        raise ValueError(f"a custom serializer must not call itself {name!r} (a built-in "
                         "serializer's name); give it another name")
    dumps = obj.dumps

    def dumps_bytes(value: Any) -> bytes:
        data = dumps(value)
        if isinstance(data, str):
            return data.encode("utf-8")
        if isinstance(data, (bytes, bytearray, memoryview)):
            return bytes(data)
        raise TypeError(f"serializer {name!r} dumps() returned {type(data).__name__}, "
                        "not bytes or str")

    return Serializer(name, dumps_bytes, obj.loads)


def resolve_serializer(spec: object) -> Serializer:
    """``"json"``, ``"raw"``, ``"pickle"``, a :class:`Serializer`, or any object with callable
    ``dumps`` and ``loads`` (``TypeError``/``ValueError`` naming ``serializer`` otherwise)."""
    if isinstance(spec, str):
        try:
            return _BUILTIN[spec]
        except KeyError:
            raise ValueError(f"serializer must be 'json', 'raw', 'pickle' or an object with "
                             f"dumps/loads, got {spec!r}") from None
    if isinstance(spec, Serializer):
        return spec
    if callable(getattr(spec, "dumps", None)) and callable(getattr(spec, "loads", None)):
        return _custom(spec)
    raise TypeError(f"serializer must be 'json', 'raw', 'pickle' or an object with callable "
                    f"dumps and loads, got {type(spec).__name__}")
