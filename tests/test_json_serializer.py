"""The json serializer reads with orjson when it is installed (the ``orjson`` extra) and must
then decode every stored value exactly as the standard library does: same value, same
types, same refusals. These tests compare the two readers directly (no Redis involved: the
subject is a pure function); the cache tests run the installed reader against Redis."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyredis_atomic import Cache
from pyredis_atomic._core.serializers import JSON, json_loads_with

orjson: Any
try:
    import orjson  # in the dev extra: CI always has it
except ImportError:  # pragma: no cover
    orjson = None
needs_orjson = pytest.mark.skipif(orjson is None, reason="the orjson extra is not installed")
fast = json_loads_with(orjson)


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (NaN equals NaN; -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) ==
                                                     math.copysign(1, b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text()
    | st.integers() | st.integers(min_value=-(2**200), max_value=2**200),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@needs_orjson
@given(json_values, st.booleans())
def test_fast_reader_decodes_like_json(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"))
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return  # a lone surrogate with ensure_ascii=False cannot be stored at all
    assert _same(fast(data), json.loads(data))


@needs_orjson
@pytest.mark.parametrize("data", [
    b"18446744073709551616",             # beyond 64 bits: orjson would give a float
    b"-9223372036854775809",
    b"[1,2,123456789012345678901234567890]",
    b'{"id":99999999999999999999}',
    b"NaN", b"[Infinity,-Infinity]", b"1e400",  # literals/overflow orjson refuses
    b'"\\ud800"',                         # lone surrogate, escaped
    b"\xef\xbb\xbf[1]",                   # UTF-8 BOM
    "[1,2]".encode("utf-16"),             # json.loads detects UTF-16/32
    b'{"a":1,"a":2}',                     # duplicate keys: the last wins in both
    b"-0.0", b"1.5e-320", b"0.1", b"1e308", b"1e-400", b"1E+2", b"-1.0e-0",
    b"123456789012345678.5e3", b"[0.30000000000000004,5e-324]",
    b"0.1000000000000000055511151231257827", b"9007199254740993.000000000000000001",
    b"1.7976931348623159e308", b"[" + b"9" * 18 + b"," + b"9" * 19 + b"]",
])
def test_fast_reader_edge_cases(data: bytes) -> None:
    assert _same(fast(data), json.loads(data))


@needs_orjson
@pytest.mark.parametrize("data", [b"", b"{", b"[1,]", b"nul", b"\xff", b"'x'"])
def test_fast_reader_refuses_what_json_refuses(data: bytes) -> None:
    refused = (json.JSONDecodeError, UnicodeDecodeError)
    with pytest.raises(refused):
        json.loads(data)
    with pytest.raises(refused):
        fast(data)


def test_without_orjson_the_reader_is_json_loads() -> None:
    assert json_loads_with(None) is json.loads


@needs_orjson
def test_installed_reader_is_the_fast_one() -> None:
    # The dev extra installs orjson, so the serializer the cache uses must be the fast reader
    # (a regression here would silently cost ~5 us per hit).
    assert JSON.loads is not json.loads
    assert JSON.loads(b'{"a":[1,2.5,"x"]}') == {"a": [1, 2.5, "x"]}


def test_cache_round_trips_big_ints_and_specials_through_redis(client: Any) -> None:
    cache = Cache(client, "jsonfast", ttl=60.0)
    value = {"big": 2**80, "neg": -(2**70), "nan": math.nan, "inf": math.inf,
             "s": "\u00e9\U0001f600", "f": 0.1}
    cache.set("v", value)
    got = cache.get_or_set("v", lambda: pytest.fail("hit expected"))
    assert _same(got, value)
