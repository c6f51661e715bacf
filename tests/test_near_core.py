"""The near cache's I/O-free store: settings, LRU by entries and bytes, the install rule
(no read that raced an invalidation or a reset is kept), key mapping, the heartbeat."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyredis_atomic import NearCache
from pyredis_atomic._core.cache import CacheCore
from pyredis_atomic._core.near import DUE, MISS, Heartbeat, NearStore, invalidation, pong_payload

FAR = 1e12  # a deadline that never comes


def _store(**kwargs: object) -> NearStore:
    store = NearStore(NearCache(**kwargs), "atomic:cache:c:", lambda b: b)  # type: ignore[arg-type]
    store.expect_nodes(["n"])
    store.proven("n", time.monotonic() + 3600)
    return store


def _put(store: NearStore, key: str, value: object = "v", payload: bytes = b"v",
         deadline: float = FAR) -> bool:
    return store.install(key, store.ticket(key), payload, value, deadline, False, 0.0)


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"max_entries": 0}, ValueError), ({"max_entries": 1.5}, TypeError),
    ({"max_entries": True}, TypeError), ({"max_bytes": 0}, ValueError),
    ({"ttl": 0}, ValueError), ({"ttl": "1"}, TypeError), ({"ttl": float("nan")}, ValueError),
    ({"max_staleness": 0.01}, ValueError), ({"max_value_bytes": -1}, ValueError),
])
def test_settings_are_checked_and_named(kwargs: dict[str, object], error: type) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        NearCache(**kwargs)  # type: ignore[arg-type]


def test_resolve() -> None:
    assert NearCache.resolve(None) is None
    assert NearCache.resolve(False) is None
    assert NearCache.resolve(True) == NearCache()
    config = NearCache(max_entries=5)
    assert NearCache.resolve(config) is config
    with pytest.raises(TypeError, match="near"):
        NearCache.resolve(5)


def test_lru_by_entries() -> None:
    store = _store(max_entries=3)
    for k in "abc":
        assert _put(store, k)
    assert store.lookup("a", False) == "v"  # a is now the most recent
    assert _put(store, "d")
    assert store.lookup("b", False) is MISS
    assert {k for k in "acd" if store.lookup(k, False) is not MISS} == set("acd")
    assert store.stats().evictions == 1
    assert store.stats().size == 3


def test_lru_by_bytes_and_oversized_values() -> None:
    store = _store(max_bytes=1000, max_value_bytes=500)
    assert not _put(store, "big", payload=b"x" * 501)
    assert _put(store, "a", payload=b"x" * 300)
    assert _put(store, "b", payload=b"x" * 300)  # 2 * (300 + 1 + 200) > 1000: a goes
    assert store.lookup("a", False) is MISS
    assert store.lookup("b", False) == "v"
    assert store.stats().bytes <= 1000
    assert store.stats().refused == 1


def test_a_read_that_raced_an_invalidation_is_not_kept() -> None:
    store = _store()
    ticket = store.ticket("k")
    store.forget("k")  # the invalidation arrives while the read is in flight
    assert not store.install("k", ticket, b"old", "old", FAR, False, 0.0)
    assert store.lookup("k", False) is MISS
    ticket = store.ticket("k")
    store.invalidated(None)  # FLUSHDB
    assert not store.install("k", ticket, b"old", "old", FAR, False, 0.0)
    ticket = store.ticket("k")
    store.clear()  # connection trouble: no ticket is good any more, and hits stop
    assert not store.install("k", ticket, b"old", "old", FAR, False, 0.0)
    assert store.ticket("k") is None


def test_invalidation_after_the_install_removes_it() -> None:
    store = _store()
    assert _put(store, "k")
    store.invalidated([b"atomic:cache:c:{k}:f", b"atomic:cache:c:{k}:e", b"other"])
    assert store.lookup("k", False) is MISS
    assert store.stats().invalidations == 1


def test_expired_and_unproven_entries_are_not_served() -> None:
    store = _store()
    assert not _put(store, "gone", deadline=time.monotonic() - 1)
    assert _put(store, "soon", deadline=time.monotonic() + 0.05)
    time.sleep(0.06)
    assert store.lookup("soon", False) is MISS
    assert _put(store, "k")
    store.valid_until = time.monotonic() - 1  # no pong within max_staleness
    assert store.lookup("k", False) is MISS
    assert store.stats().bypassed == 1


def test_near_ttl_caps_the_deadline() -> None:
    store = _store(ttl=0.05)
    assert _put(store, "k")
    assert store.lookup("k", False) == "v"
    time.sleep(0.06)
    assert store.lookup("k", False) is MISS


def test_full_only_copies_and_late_draws() -> None:
    store = _store()
    assert store.install("f", store.ticket("f"), b"v", "v", FAR, True, 0.0)
    assert store.lookup("f", False) is MISS  # early refresh on: a '!' copy is not for it
    assert store.lookup("f", True) == "v"
    # a draw above FAST_GAP: served while now + delta * (draw - G) is before the deadline
    deadline = time.monotonic() + 10
    assert store.install("x", store.ticket("x"), b"v", "v", deadline, False, 1.0)
    assert store.lookup_late("x", False, 6.0) == "v"  # 1 s of margin needed, 10 left
    assert store.lookup_late("x", False, 100.0) is DUE  # 95 s needed: the script decides
    assert store.lookup_late("absent", False, 100.0) is MISS


def test_shared_values() -> None:
    store = NearStore(NearCache(shared=True), "h:", lambda b: [b])
    store.expect_nodes(["n"])
    store.proven("n", time.monotonic() + 3600)
    value = [b"p"]
    assert store.install("k", store.ticket("k"), b"p", value, FAR, False, 0.0)
    assert store.lookup("k", False) is value
    with pytest.raises(TypeError, match="shared"):
        NearCache(shared=1)  # type: ignore[arg-type]


def test_mutable_values_are_decoded_per_hit() -> None:
    store = NearStore(NearCache(), "h:", lambda b: [b])
    store.expect_nodes(["n"])
    store.proven("n", time.monotonic() + 3600)
    assert store.install("k", store.ticket("k"), b"p", [b"p"], FAR, False, 0.0)
    first = store.lookup("k", False)
    first.append(1)
    assert store.lookup("k", False) == [b"p"]


@given(st.text(min_size=1, max_size=30).filter(lambda s: "\x00" not in s),
       st.text(min_size=1, max_size=30))
def test_user_key_inverts_the_copy_key(name: str, key: str) -> None:
    try:
        core = CacheCore(name, ttl=10)
        entry, copy = core.keys_of(key)
    except (ValueError, TypeError):
        return  # not a valid name or key
    store = NearStore(NearCache(), core.head, lambda b: b)
    assert store.user_key(copy.encode()) == key
    assert store.user_key(entry) is None
    assert store.user_key(core.wake_key(entry)) is None


def test_multi_node_validity_is_the_oldest_proof() -> None:
    store = NearStore(NearCache(max_staleness=1.0), "h:", lambda b: b)
    store.expect_nodes(["a", "b"])
    now = time.monotonic()
    store.proven("a", now)
    assert store.ticket("k") is None  # b has not proven itself yet
    store.proven("b", now - 0.5)
    assert store.valid_until == pytest.approx(now + 0.5)
    store.proven("zzz", now + 100)  # not a node of this session: ignored
    assert store.valid_until == pytest.approx(now + 0.5)


def test_heartbeat() -> None:
    hb = Heartbeat(0.4, last=0.0)
    assert hb.due(0.1)
    payload = hb.ping(0.1)
    assert not hb.due(0.2)
    assert not hb.late(0.8)
    assert hb.late(0.91)
    with pytest.raises(ValueError, match="unexpected pong"):
        hb.pong(b"hb999")
    assert hb.pong(payload) == 0.1
    assert not hb.due(0.15)
    assert hb.due(0.2)
    with pytest.raises(ValueError, match="unexpected pong"):
        hb.pong(payload)  # nothing in flight


def test_message_decoding() -> None:
    assert invalidation([b"message", b"__redis__:invalidate", [b"a"]]) == (True, [b"a"])
    assert invalidation([b"message", b"__redis__:invalidate", None]) == (True, None)
    assert invalidation([b"message", b"other", [b"a"]]) == (False, None)
    assert pong_payload([b"pong", b"hb1"]) == b"hb1"
    assert pong_payload(b"PONG") is MISS


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=4),
    max_leaves=12)


@given(JSON_VALUES)
def test_the_per_entry_decoder_reads_what_the_serializer_reads(value: object) -> None:
    from pyredis_atomic._core.near import decoder_for
    from pyredis_atomic._core.serializers import JSON

    payload = JSON.dumps(value)
    decode = decoder_for(JSON.loads, payload)
    assert decode(payload) == JSON.loads(payload)
    if b"1234567890123456789" in payload:
        assert decode is JSON.loads  # a long run of digits: Python's json, exact
    big = JSON.dumps([2**70])
    assert decoder_for(JSON.loads, big) is JSON.loads
