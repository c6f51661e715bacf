# GENERATED from tests/test_cache_shared_async.py by scripts/unasync.py: do not edit.
"""Cache against a real redis-server: the core API on every client mode (RESP2/RESP3 x
decode_responses), serializers, bad input, wrong types, prefixes and brace names,
re-sends, fencing, stale and early refresh, the decorator.

Shared by the two APIs: ``scripts/unasync.py`` writes ``test_cache_shared_sync.py`` from
``test_cache_shared_async.py`` (loaders that block: ``def`` here, plain functions
there; concurrent callers: tasks here, threads there, through ``twin_async``/``twin_sync``).
What only one API has is in ``test_cache.py`` (sync: async loaders refused) and
``test_cache_async.py`` (cancellation, the asyncio cluster client).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
import redis
from twin_sync import Event, sleep, spawn

from pyredis_atomic import Cache, DecodeError, EncodeError, WrongTypeError
from pyredis_atomic._core.cache import new_token
from pyredis_atomic._core.serializers import JSON

# -- basic behaviour ------------------------------------------------------------------------


def test_get_or_set_loads_once_then_hits(client: Any) -> None:
    cache = Cache(client, "products", ttl=30)
    calls: list[int] = []

    def loader() -> dict[str, Any]:
        calls.append(1)
        return {"id": 1, "tags": ["a", "é"]}

    assert cache.get_or_set("p1", loader) == {"id": 1, "tags": ["a", "é"]}
    assert cache.get_or_set("p1", loader) == {"id": 1, "tags": ["a", "é"]}
    assert cache.get("p1") == {"id": 1, "tags": ["a", "é"]}
    assert calls == [1]


def test_get_set_delete(client: Any) -> None:
    cache = Cache(client, "c", ttl=30)
    assert cache.get("k") is None
    assert cache.get("k", "dflt") == "dflt"
    cache.set("k", [1, 2])
    assert cache.get("k") == [1, 2]
    assert cache.delete("k") is True
    assert cache.delete("k") is False  # the re-send of a delete: False, nothing changes
    assert cache.get("k", 5) == 5


def test_set_none_is_a_value(client: Any) -> None:
    cache = Cache(client, "c", ttl=30)
    cache.set("k", None)
    assert cache.get("k", "missing") is None
    assert cache.get_or_set("k", lambda: pytest.fail("must not load")) is None


def test_ttl_expires(client: Any) -> None:
    cache = Cache(client, "c", ttl=0.15, early_refresh=0)
    cache.set("k", 1)
    assert cache.get("k") == 1
    sleep(0.3)
    assert cache.get("k") is None
    assert client.exists(cache.key_of("k")) == 0  # physically gone (no stale_ttl)
    assert cache.get_or_set("k", lambda: 2) == 2


def test_per_call_ttl(client: Any) -> None:
    cache = Cache(client, "c", ttl=60, early_refresh=0)
    cache.get_or_set("k", lambda: 1, ttl=0.1)
    assert 0 < client.pttl(cache.key_of("k")) <= 100
    cache.set("k2", 1, ttl=0.2)
    assert 0 < client.pttl(cache.key_of("k2")) <= 200


def test_caches_are_scoped_by_name(client: Any) -> None:
    a = Cache(client, "a", ttl=30)
    b = Cache(client, "b", ttl=30)
    a.set("k", 1)
    assert b.get("k") is None
    assert b.get_or_set("k", lambda: 2) == 2
    assert a.get("k") == 1


def test_keys_share_a_hash_tag(client: Any) -> None:
    cache = Cache(client, "shop", ttl=30, prefix="app1:")
    entry = cache.key_of("item:{42}")
    assert entry == "app1:cache:shop:{item:%7B42%7D}:e"
    assert cache._spec.wake_key(entry) == "app1:cache:shop:{item:%7B42%7D}:wake"


def test_brace_names_cannot_collide(client: Any) -> None:
    # Without escaping, cache "a:{b" with key "c" and cache "a" with key "b}:c"-like names
    # could produce the same Redis key; escaping makes the mapping one-to-one.
    one = Cache(client, "a}", ttl=30)
    two = Cache(client, "a", ttl=30)
    one.set("{x", "one")
    two.set("}{x", "two")
    assert one.get("{x") == "one"
    assert two.get("}{x") == "two"
    assert one.key_of("{x") != two.key_of("}{x")
    keys = {k.decode() if isinstance(k, bytes) else k for k in client.keys("*")}
    assert all(k.count("{") == k.count("}") == 1 for k in keys)


def test_prefix_isolates(client: Any) -> None:
    a = Cache(client, "c", ttl=30, prefix="one:")
    b = Cache(client, "c", ttl=30, prefix="two:")
    a.set("k", 1)
    assert b.get("k") is None
    assert all((k.decode() if isinstance(k, bytes) else k).startswith("one:")
               for k in client.keys("*"))


# -- serializers ----------------------------------------------------------------------------

JSON_VALUES = [0, -1.5, "text é ☃", [1, [2, None]], {"a": {"b": True}}, False, "", 2**60]


@pytest.mark.parametrize("value", JSON_VALUES)
def test_json_round_trip(client: Any, value: Any) -> None:
    cache = Cache(client, "j", ttl=30)
    cache.set("k", value)
    assert cache.get("k") == value
    assert cache.get_or_set("k2", lambda: value) == value
    assert cache.get_or_set("k2", lambda: pytest.fail("hit expected")) == value


@pytest.mark.parametrize("value", [b"", b"\x00\xff\xfe binary", bytes(range(256)) * 10])
def test_raw_round_trip(client: Any, value: bytes) -> None:
    cache = Cache(client, "r", ttl=30, serializer="raw")
    cache.set("k", value)
    assert cache.get("k") == value
    assert cache.get_or_set("k2", lambda: bytearray(value)) == bytearray(value)
    assert cache.get("k2") == value


@pytest.mark.parametrize("value", [{1, 2}, (1, "a", b"\xff"), {"d": 1.5j}, b"\x80\x81"])
def test_pickle_round_trip(client: Any, value: Any) -> None:
    cache = Cache(client, "p", ttl=30, serializer="pickle")
    cache.set("k", value)
    assert cache.get("k") == value
    cache.get_or_set("k2", lambda: value)
    assert cache.get("k2") == value


class Upper:
    """A custom serializer storing text upper-cased."""

    name = "upper"

    def dumps(self, value: Any) -> str:
        return str(value).upper()

    def loads(self, data: bytes) -> str:
        return data.decode("utf-8")


def test_custom_serializer(client: Any) -> None:
    cache = Cache(client, "u", ttl=30, serializer=Upper())
    cache.set("k", "abc")
    assert cache.get("k") == "ABC"


def test_serializer_mismatch_is_reported(client: Any) -> None:
    Cache(client, "m", ttl=30, serializer="pickle").set("k", {1, 2})
    raw = Cache(client, "m", ttl=30, serializer="raw")
    as_json = Cache(client, "m", ttl=30)
    with pytest.raises(DecodeError, match="'pickle' serializer") as info:
        raw.get("k")
    assert info.value.key == raw.key_of("k")
    with pytest.raises(DecodeError, match="'pickle'"):
        as_json.get_or_set("k", lambda: 1)


def _corrupt(client: Any, cache: Cache, key: str, payload: bytes) -> None:
    """Overwrite the stored value in both places a read may take it from: the entry hash
    (field ``p``) and the fresh copy a fast hit reads (its serializer tag kept)."""
    entry = cache.key_of(key)
    client.hset(entry, "p", payload)
    copy = cache._spec.copy_key(entry)
    if client.exists(copy):
        client.set(copy, cache._spec.hit_prefix + payload, keepttl=True)


@pytest.mark.parametrize("fast_hits", [True, False])
def test_corrupt_value_raises_decode_error_naming_key(client: Any,
                                                      fast_hits: bool) -> None:
    cache = Cache(client, "bad", ttl=30, fast_hits=fast_hits)
    cache.set("k", 1)
    _corrupt(client, cache, "k", b"\xff{not json")
    with pytest.raises(DecodeError) as info:
        cache.get("k")
    assert info.value.key == cache.key_of("k")
    assert "atomic:cache:bad:{k}:e" in str(info.value)
    with pytest.raises(DecodeError):
        cache.get_or_set("k", lambda: 2)
    with pytest.raises(DecodeError):
        cache.get_or_set("k", lambda: 2, early_refresh=0)


def test_corrupt_fresh_copy_alone_raises_decode_error(client: Any) -> None:
    # the copy is what a hit reads: corrupting only it must not return garbage either
    cache = Cache(client, "bad", ttl=30, early_refresh=0)
    cache.set("k", 1)
    entry = cache.key_of("k")
    client.set(cache._spec.copy_key(entry), cache._spec.hit_prefix + b"\xff{", keepttl=True)
    with pytest.raises(DecodeError) as info:
        cache.get_or_set("k", lambda: 2)
    assert info.value.key == entry


def test_json_cache_never_unpickles(client: Any) -> None:
    import pickle

    class Boom:
        def __reduce__(self) -> Any:
            return (pytest.fail, ("unpickled!",))

    cache = Cache(client, "safe", ttl=30)
    cache.set("k", 1)
    _corrupt(client, cache, "k", pickle.dumps(Boom()))
    with pytest.raises(DecodeError):
        cache.get("k")
    with pytest.raises(DecodeError):
        cache.get_or_set("k", lambda: 2, early_refresh=0)


def test_serializer_argument_checked() -> None:
    c = redis.Redis()  # never connected: construction sends nothing
    with pytest.raises(ValueError, match="serializer"):
        Cache(c, "x", ttl=1, serializer="yaml")
    with pytest.raises(TypeError, match="serializer"):
        Cache(c, "x", ttl=1, serializer=42)  # type: ignore[arg-type]
    assert Cache(c, "x", ttl=1, serializer=JSON)._spec.format == "json"


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "word"),
    [
        ({"ttl": 0}, ValueError, "ttl"),
        ({"ttl": -1}, ValueError, "ttl"),
        ({"ttl": math.nan}, ValueError, "ttl"),
        ({"ttl": math.inf}, ValueError, "ttl"),
        ({"ttl": "5"}, TypeError, "ttl"),
        ({"ttl": True}, TypeError, "ttl"),
        ({"ttl": 1, "lock_ttl": 0}, ValueError, "lock_ttl"),
        ({"ttl": 1, "wait_timeout": -1}, ValueError, "wait_timeout"),
        ({"ttl": 1, "early_refresh": -0.5}, ValueError, "early_refresh"),
        ({"ttl": 1, "early_refresh": math.nan}, ValueError, "early_refresh"),
        ({"ttl": 1, "stale_ttl": -1}, ValueError, "stale_ttl"),
        ({"ttl": 1, "cache_none": 0}, ValueError, "cache_none"),
        ({"ttl": 1, "cache_none": "yes"}, TypeError, "cache_none"),
        ({"ttl": 1, "prefix": "a{"}, ValueError, "prefix"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], exc: type[Exception], word: str) -> None:
    with pytest.raises(exc, match=word):
        Cache(redis.Redis(), "x", **kwargs)


def test_bad_call_arguments_send_nothing(client: Any) -> None:
    cache = Cache(client, "c", ttl=30)
    with pytest.raises(TypeError, match="loader"):
        cache.get_or_set("k", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="loader"):
        cache.get_or_set("k", None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl"):
        cache.get_or_set("k", lambda: 1, ttl=math.nan)
    with pytest.raises(ValueError, match="ttl"):
        cache.set("k", 1, ttl=0)
    with pytest.raises(TypeError, match="key"):
        cache.get(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key"):
        cache.get_or_set("", lambda: 1)
    with pytest.raises(EncodeError):
        cache.set("k", object())
    with pytest.raises(EncodeError, match="value") as info:
        cache.set("k", {1, 2})
    assert isinstance(info.value, TypeError)
    assert info.value.key == cache.key_of("k")
    assert client.keys("*") == []  # nothing was written


def test_unserializable_loader_result_frees_the_lease(client: Any) -> None:
    cache = Cache(client, "c", ttl=30)
    cache.set("old", 1)
    with pytest.raises(EncodeError, match="loader"):
        cache.get_or_set("k", object)
    info = cache.inspect("k")
    assert info["exists"] is False
    assert info["lease"] is None  # released at once, nothing half-written
    assert cache.get_or_set("k", lambda: 3) == 3


def test_wrong_type_key(client: Any) -> None:
    cache = Cache(client, "c", ttl=30)
    entry = cache.key_of("k")
    client.rpush(entry, "x")
    for op in (lambda: cache.get("k"), lambda: cache.get_or_set("k", lambda: 1),
               lambda: cache.set("k", 1), lambda: cache.delete("k")):
        with pytest.raises(WrongTypeError) as info:
            op()
        assert info.value.key == entry
    assert client.lrange(entry, 0, -1) in ([b"x"], ["x"])  # left unchanged
    string = cache.key_of("w")
    client.set(string, "string")
    with pytest.raises(WrongTypeError) as info:
        cache.get_or_set("w", lambda: 1)
    assert info.value.key == string


# -- loader errors, None, re-sends ----------------------------------------------------------


def test_loader_error_is_not_cached(client: Any) -> None:
    cache = Cache(client, "c", ttl=30)

    def boom() -> int:
        raise RuntimeError("db down")

    with pytest.raises(RuntimeError, match="db down"):
        cache.get_or_set("k", boom)
    assert cache.inspect("k")["lease"] is None
    assert cache.get_or_set("k", lambda: 7) == 7


def test_none_not_cached_by_default(client: Any) -> None:
    cache = Cache(client, "c", ttl=30)
    calls: list[int] = []

    def loader() -> None:
        calls.append(1)

    assert cache.get_or_set("k", loader) is None
    assert cache.get_or_set("k", loader) is None
    assert calls == [1, 1]
    assert cache.inspect("k")["lease"] is None


def test_cache_none_true_and_seconds(client: Any) -> None:
    cache = Cache(client, "c", ttl=30, cache_none=True)
    calls: list[int] = []

    def loader() -> None:
        calls.append(1)

    assert cache.get_or_set("k", loader) is None
    assert cache.get_or_set("k", loader) is None
    assert calls == [1]
    short = Cache(client, "s", ttl=30, cache_none=0.1, early_refresh=0)
    short.get_or_set("k", loader)
    assert 0 < client.pttl(short.key_of("k")) <= 100
    short.get_or_set("k2", lambda: 1)
    assert client.pttl(short.key_of("k2")) > 20_000


def test_fetch_resend_with_same_token_keeps_the_lease(client: Any) -> None:
    cache = Cache(client, "c", ttl=30)
    core = cache._spec
    entry = cache.key_of("k")
    token = new_token()
    first = cache._run(core.fetch_call(entry, token, core.defaults))
    again = cache._run(core.fetch_call(entry, token, core.defaults))
    assert first == again == [1]  # the re-send is still the loader, not a waiter
    other = cache._run(core.fetch_call(entry, new_token(), core.defaults))
    assert other[0] == 3
    assert 0 < other[1] <= 10_000


def test_fill_resend_applies_once(client: Any) -> None:
    cache = Cache(client, "c", ttl=30)
    core = cache._spec
    entry = cache.key_of("k")
    token = new_token()
    cache._run(core.fetch_call(entry, token, core.defaults))
    fill = core.fill_call(entry, token, b"1", "0", opts=core.defaults, delta_ms=5)
    assert cache._run(fill) == 1
    assert cache._run(fill) == 1  # re-sent after a lost reply: reports stored, no change
    assert cache.get("k") == 1
    release = core.release_call(entry, token, core.defaults)
    assert cache._run(release) == 0  # nothing to release any more


def test_set_resend_stores_same_value(client: Any) -> None:
    cache = Cache(client, "c", ttl=30)
    cache.set("k", {"v": 1})
    cache.set("k", {"v": 1})
    assert cache.get("k") == {"v": 1}


# -- fencing --------------------------------------------------------------------------------


def test_expired_lease_cannot_overwrite_newer_value(client: Any) -> None:
    cache = Cache(client, "c", ttl=30, lock_ttl=0.2, wait_timeout=5)
    slow_started = Event()

    def slow() -> str:
        slow_started.set()
        sleep(0.6)  # outlives its 0.2 s lease
        return "old"

    loading = spawn(cache.get_or_set, "k", slow)
    assert slow_started.wait(5)
    sleep(0.3)  # the slow loader's lease is over
    assert cache.get_or_set("k", lambda: "new") == "new"
    assert loading.result(5) == "old"  # its caller still gets its own value...
    assert cache.get("k") == "new"  # ...but it was not stored over the newer one


@pytest.mark.parametrize("op", ["set", "delete"])
def test_set_and_delete_fence_off_a_load_in_progress(client: Any, op: str) -> None:
    cache = Cache(client, "c", ttl=30, lock_ttl=10)
    started = Event()
    go = Event()

    def loader() -> str:
        started.set()
        go.wait(5)
        return "loaded-before-invalidation"

    loading = spawn(cache.get_or_set, "k", loader)
    assert started.wait(5)
    if op == "set":
        cache.set("k", "explicit")
    else:
        cache.delete("k")
    go.set()
    assert loading.result(5) == "loaded-before-invalidation"
    assert cache.get("k") == ("explicit" if op == "set" else None)


def test_waiters_are_woken_by_set(client: Any) -> None:
    cache = Cache(client, "c", ttl=30, lock_ttl=10, wait_timeout=8)
    started = Event()
    go = Event()

    def loader() -> str:
        started.set()
        go.wait(10)
        return "late"

    loading = spawn(cache.get_or_set, "k", loader)
    assert started.wait(5)
    waiter = spawn(cache.get_or_set, "k", lambda: "waiter-loaded")
    sleep(0.3)
    began = time.monotonic()
    cache.set("k", "explicit")
    assert waiter.result(5) == "explicit"
    assert time.monotonic() - began < 1.0  # woken, not left until lock_ttl/wait_timeout
    go.set()
    loading.result(5)


# -- stale serving and early refresh --------------------------------------------------------


def test_stale_value_served_while_one_refreshes(client: Any) -> None:
    cache = Cache(client, "c", ttl=0.2, stale_ttl=10, early_refresh=0)
    cache.set("k", "v1")
    sleep(0.3)  # logically expired, still kept for stale_ttl
    assert cache.get("k") is None  # a plain get does not serve stale values
    started = Event()

    def slow() -> str:
        started.set()
        sleep(0.8)
        return "v2"

    refreshing = spawn(cache.get_or_set, "k", slow)
    assert started.wait(5)
    began = time.monotonic()
    assert cache.get_or_set("k", lambda: pytest.fail("second loader")) == "v1"
    assert time.monotonic() - began < 0.5  # served at once, no waiting
    assert refreshing.result(5) == "v2"
    assert cache.get_or_set("k", lambda: pytest.fail("hit expected")) == "v2"


def test_stale_refresh_error_goes_to_refresher_only(client: Any) -> None:
    cache = Cache(client, "c", ttl=0.1, stale_ttl=10, early_refresh=0)
    cache.set("k", "v1")
    sleep(0.2)

    def boom() -> str:
        raise RuntimeError("refresh failed")

    with pytest.raises(RuntimeError):
        cache.get_or_set("k", boom)
    assert cache.get_or_set("k", lambda: "v2") == "v2"


def test_early_refresh_chooses_a_caller_before_expiry(client: Any) -> None:
    # With a huge beta the XFetch rule fires on the first read after a load whose
    # recompute time is not negligible: that caller reloads while the value is fresh.
    cache = Cache(client, "c", ttl=30, early_refresh=1e9)

    def loader() -> str:
        sleep(0.01)
        return "v1"

    assert cache.get_or_set("k", loader) == "v1"
    assert cache.get_or_set("k", lambda: "v2") == "v2"
    assert cache.get("k") == "v2"


def _slow_v1() -> str:
    sleep(0.01)
    return "v1"


def test_early_refresh_off_and_failure_serves_cached(client: Any) -> None:
    off = Cache(client, "off", ttl=30, early_refresh=0)
    off.get_or_set("k", _slow_v1)
    assert off.get_or_set("k", lambda: "v2") == "v1"
    on = Cache(client, "on", ttl=30, early_refresh=1e9)
    on.get_or_set("k", _slow_v1)

    def boom() -> str:
        raise RuntimeError("refresh failed")

    # the value is still fresh: a failed early refresh serves it and frees the lease
    assert on.get_or_set("k", boom) == "v1"
    assert on.inspect("k")["lease"] is None


def test_inspect(client: Any) -> None:
    cache = Cache(client, "c", ttl=30, stale_ttl=5)
    assert cache.inspect("k")["exists"] is False
    cache.get_or_set("k", lambda: [1])
    info = cache.inspect("k")
    assert info["exists"] is True
    assert info["value"] == [1]
    assert 29 < info["expires_in"] <= 30
    assert 34 < info["stale_until"] <= 35
    assert info["serializer"] == "json"
    assert info["waiters"] == 0


# -- decorator ------------------------------------------------------------------------------


def test_cached_decorator(client: Any) -> None:
    cache = Cache(client, "fn", ttl=30)
    calls: list[tuple[Any, ...]] = []

    @cache.cached(ttl=10)
    def product(pid: int, currency: str = "EUR") -> dict[str, Any]:
        calls.append((pid, currency))
        return {"pid": pid, "currency": currency}

    assert product(1) == {"pid": 1, "currency": "EUR"}
    assert product(pid=1) == {"pid": 1, "currency": "EUR"}
    assert product(1, "EUR") == {"pid": 1, "currency": "EUR"}
    assert product(1, currency="USD")["currency"] == "USD"
    assert calls == [(1, "EUR"), (1, "USD")]
    key = product.cache_key(1)  # type: ignore[attr-defined]
    assert key == f'{__name__}.test_cached_decorator.<locals>.product:' \
                  '{"currency":"EUR","pid":1}'
    assert 0 < client.pttl(cache.key_of(key)) <= 10_000
    assert product.invalidate(1) is True  # type: ignore[attr-defined]
    product(1)
    assert len(calls) == 3
    assert product.__name__ == "product"


def test_cached_decorator_custom_key_and_bad_ttl(client: Any) -> None:
    cache = Cache(client, "fn", ttl=30)

    @cache.cached(key=lambda obj: f"obj:{obj.id}")
    def load(obj: Any) -> int:
        return int(obj.id)

    class Obj:
        id = 5

    assert load(Obj()) == 5
    assert cache.get("obj:5") == 5

    @cache.cached
    def plain(x: Any) -> int:
        return 1

    with pytest.raises(TypeError, match="key="):
        plain(object())
    long_key = plain.cache_key("x" * 500)  # type: ignore[attr-defined]
    assert "sha256:" in long_key
    assert len(long_key) < 200
    with pytest.raises(ValueError, match="ttl"):
        cache.cached(ttl=-1)


def test_json_value_shape_is_documented(client: Any) -> None:
    # json turns tuples into lists: the loader's caller gets its own object, later callers
    # the decoded copy (documented).
    cache = Cache(client, "c", ttl=30)
    assert cache.get_or_set("k", lambda: (1, 2)) == (1, 2)
    assert cache.get_or_set("k", lambda: (1, 2)) == [1, 2]
    entry = cache.key_of("k")
    stored = client.hget(entry, "p")
    assert stored is not None
    assert json.loads(stored) == [1, 2]
    # the fresh copy a hit reads: "<len>:<serializer>" tag, kind "=" (a value), payload
    copy = client.get(cache._spec.copy_key(entry))
    assert copy is not None
    copy = copy.encode() if isinstance(copy, str) else copy
    assert copy == b"4:json=" + (stored.encode() if isinstance(stored, str) else stored)


def test_stampede_one_load_and_a_failed_load_handed_over(
    redis_client: Any,
) -> None:
    cache = Cache(redis_client, "s", ttl=30, lock_ttl=20, wait_timeout=10)
    calls: list[int] = []

    def loader() -> str:
        calls.append(1)
        sleep(0.3)
        if len(calls) == 1:
            raise RuntimeError("first load fails")
        return "v"

    began = time.monotonic()
    callers = [spawn(cache.get_or_set, "k", loader) for _ in range(20)]
    results: list[Any] = []
    for caller in callers:
        try:
            results.append(caller.result(10))
        except RuntimeError as exc:
            results.append(exc)
    assert len(calls) == 2
    assert sum(isinstance(r, RuntimeError) for r in results) == 1
    assert results.count("v") == 19
    assert time.monotonic() - began < 0.6 + 1.5  # woken, never left to lock_ttl


def test_decoding_client_reads_bytes(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True, protocol=3)
    try:
        cache = Cache(client, "d", ttl=30, serializer="raw")
        assert cache.get_or_set("k", lambda: b"\x80\xff") == b"\x80\xff"
        assert cache.get_or_set("k", lambda: b"") == b"\x80\xff"
        assert client.ping()  # the connection is still healthy
    finally:
        client.close()
