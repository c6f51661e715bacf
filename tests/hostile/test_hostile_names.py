"""Names with ``{``/``}`` (and ``%``, the escape character) aimed at each other's keys, on
every primitive of the catalog (``tests/primitives.py``) at once: no key is shared by two
primitives (or two cache entries), every primitive keeps its keys in one hash slot, and each
reads back only its own state. Also on a real Redis Cluster, where a broken hash tag would
be a CROSSSLOT error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from primitives import CATALOG
from redis.crc import key_slot

import pyredis_atomic
from pyredis_atomic import Cache

# Each name is aimed at the keys of another: "x}:signal" at lock "x"'s signal list,
# "x}:pending" at queue "x"'s pending list, "%7Dx" at the escaped form of "}x", ...
NAMES = ["x", "x}:y", "x}", "{x}", "}x", "%7Dx", "x%7D", "x}:signal", "x}:fences",
         "x}:pending", "x}:holders", "x}:request:r", "{x", "x:{y}", "%", "%25", "}{", "{}"]
# Cache (name, entry key) pairs aimed at each other's entries: the cache name sits outside
# the hash tag, the entry key inside it.
CACHE_ENTRIES = [("a", "k"), ("a", "k}:e"), ("a", "{k}"), ("a:{k}", "k"), ("a:{k}:e", "x"),
                 ("a:", "k"), ("a", ":k"), ("a:{k", "x"), ("a}", "k"), ("a%7Bk%7D", "k"),
                 ("a", "%7Bk%7D"), ("a:%7Bk", "x")]


@dataclass
class Owned:
    """A primitive under test, the keys it may write, and a check of its own state."""

    label: str
    keys: set[str]
    prefixes: tuple[str, ...] = ()
    checks: list[Any] = field(default_factory=list)

    def owns(self, key: str) -> bool:
        return key in self.keys or (bool(self.prefixes) and key.startswith(self.prefixes))


def exercise(client: Any) -> list[Owned]:
    """Write with every primitive of the catalog under every crafted name; return what each
    owns."""
    owned: list[Owned] = []
    for i, name in enumerate(NAMES):
        for primitive in CATALOG:
            if not primitive.named:
                continue
            obj = primitive.build(pyredis_atomic, client, name, "atomic:")
            done = primitive.exercise(obj, i, "atomic:")
            owned.append(Owned(f"{primitive.name} {name!r}", done.keys, done.prefixes,
                               [done.check]))

    for j, (cname, key) in enumerate(CACHE_ENTRIES):
        cache = Cache(client, cname, ttl=60)
        value = {"cache": cname, "key": key, "n": j}
        cache.set(key, value)
        entry = cache.key_of(key)
        # The entry hash, its wake-up list and its fast-hit copy.
        owned.append(Owned(f"cache {cname!r}[{key!r}]",
                           {entry, entry[:-1] + "wake", entry[:-1] + "f"},
                           checks=[lambda c=cache, k=key, v=value: c.get(k) == v]))
    return owned


def check(owned: list[Owned], server_keys: Iterable[str]) -> None:
    """Disjoint key sets, one slot per primitive, every key owned once, own state intact."""
    seen: dict[str, str] = {}
    for item in owned:
        assert len({key_slot(k.encode()) for k in item.keys}) == 1, item
        for key in item.keys:
            assert key not in seen, f"{item.label} and {seen[key]} share {key!r}"
            seen[key] = item.label
    for key in server_keys:
        owners = [item.label for item in owned if item.owns(key)]
        assert len(owners) == 1, f"{key!r} is claimed by {owners}"
    for item in owned:
        for ok in item.checks:
            assert ok(), item.label


def test_crafted_names_never_share_a_key_across_primitives(redis_client: Any) -> None:
    owned = exercise(redis_client)
    keys = [k.decode() for k in redis_client.scan_iter(count=1000)]
    assert len(keys) > 5 * len(NAMES)  # the exercise really wrote
    check(owned, keys)


@pytest.mark.cluster
def test_brace_heavy_names_on_a_cluster(redis_cluster_client: Any) -> None:
    """Every primitive works under every crafted name on a 3-primary cluster (a key outside
    the primitive's slot would fail with CROSSSLOT) and the names spread over the nodes."""
    owned = exercise(redis_cluster_client)
    keys = [k.decode() for k in redis_cluster_client.scan_iter(count=1000)]
    check(owned, keys)
    slots = {key_slot(k.encode()) for k in keys}
    nodes = {redis_cluster_client.get_node_from_key(k).name for k in keys}
    assert len(slots) > len(NAMES)
    assert len(nodes) == 3
