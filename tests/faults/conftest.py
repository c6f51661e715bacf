"""Fixtures of the fault tests: worker threads, and servers behind a network partition (a
namespace and a veth pair, see :mod:`pyredis_atomic.testing.netns`).

The partition tests need root; CI runs as root, so they never skip there. A developer
without root sets ``PYREDIS_ATOMIC_NO_NETNS=1`` to skip them knowingly; without it, a
machine that cannot make a namespace fails them (a fault test that skips silently is a
test that cannot fail).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from faults.fault_proxy import FaultProxy
from faults.helpers import Workers
from pyredis_atomic.registry import default_registry
from pyredis_atomic.testing import RedisServer
from pyredis_atomic.testing.netns import Partition, partitions_supported


@pytest.fixture
def workers() -> Iterator[Workers]:
    w = Workers()
    yield w
    w.stop.set()


@pytest.fixture
def partition() -> Iterator[Partition]:
    """A namespace joined to the host by a veth pair (removed afterwards)."""
    if not partitions_supported():
        if os.environ.get("PYREDIS_ATOMIC_NO_NETNS") == "1":
            pytest.skip("PYREDIS_ATOMIC_NO_NETNS=1: partition tests skipped on request")
        pytest.fail("partition tests need root and the ip tool "
                    "(set PYREDIS_ATOMIC_NO_NETNS=1 to skip them knowingly)")
    with Partition() as p:
        yield p


@pytest.fixture
def far_server(partition: Partition) -> Iterator[RedisServer]:
    """A redis-server inside the namespace: the host reaches it over the link
    (``far_server.host``), processes inside the namespace on 127.0.0.1."""
    with RedisServer(netns=partition.name, bind=f"{partition.address} 127.0.0.1") as server:
        yield server


@pytest.fixture
def proxy(redis_server: RedisServer, redis_url: str) -> Iterator[FaultProxy]:
    """A TCP proxy in front of the test server (flushed first: ``redis_url``) that can drop
    or delay its replies."""
    p = FaultProxy(redis_server.host, redis_server.port)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def retrying(proxy: FaultProxy) -> Iterator[redis.Redis]:
    """A client through the proxy that re-sends after a broken connection (the default)."""
    c = redis.Redis(host="127.0.0.1", port=proxy.port)
    default_registry().load(c)  # so the dropped reply is the operation's own EVALSHA
    yield c
    c.close()
