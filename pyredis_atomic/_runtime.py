"""What the sync API does differently from the asyncio one, below the driver: hand-written.

The generated sync modules (see ``scripts/unasync.py``) import these names ``from
._runtime``; their asyncio sources import the same names from
:mod:`pyredis_atomic.asyncio._runtime`. Keep the two modules' names and signatures alike.
"""

from __future__ import annotations

import heapq
import inspect
import itertools
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from redis.client import Pipeline, Redis
from redis.cluster import ClusterPipeline, RedisCluster

from ._core.validate import ClientKinds, bad_client

__all__ = ["IDLE", "Background", "Client", "Mutex", "check_cached", "check_client", "check_now",
           "durable_target", "every_node", "executor", "node_name", "on_node", "primaries",
           "run_loader", "settle"]


def primaries(client: Any) -> list[Any]:
    """Where a script must be loaded: a connection to every primary of a cluster, else the
    client itself."""
    if isinstance(client, RedisCluster):
        return [client.get_redis_connection(n) for n in client.get_primaries()]
    return [client]


def on_node(client: Any, node: Any, *command: Any) -> Any:
    """Send ``command`` to ``node`` (one of :func:`primaries`)."""
    return node.execute_command(*command)


def every_node(client: Any) -> list[Any]:
    """Every node of a cluster, replicas included (for :func:`on_node`), else the client."""
    if isinstance(client, RedisCluster):
        return [client.get_redis_connection(n) for n in client.get_nodes()]
    return [client]


def node_name(client: Any, node: Any) -> str:
    """``host:port`` (or the socket path) of ``node``, one of :func:`primaries` or
    :func:`every_node`."""
    kwargs = getattr(getattr(node, "connection_pool", None), "connection_kwargs", {})
    if kwargs.get("path"):
        return str(kwargs["path"])
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


def durable_target(client: Any, keys: Sequence[Any]) -> Any:
    """The connection a call and its ``WAIT`` go out on: on a cluster, the node that owns
    the keys (``WAIT`` counts the writes of its own connection)."""
    if isinstance(client, RedisCluster):
        node = client.get_node_from_key(keys[0]) if keys else client.get_random_node()
        return client.get_redis_connection(node)
    return client


# A sync mutex (the asyncio twin: asyncio.Lock), e.g. around a renewal in flight.
Mutex = threading.Lock

# How long a background worker thread idles with nothing to do before it exits.
IDLE = 5.0


def settle(outcome: object) -> object:
    """The result of a user callback (``on_lost``): as it is (the asyncio twin awaits one
    that returned an awaitable)."""
    return outcome


class Background:
    """Runs ``step(item)`` for each item at its due time (``time.monotonic()``) in one
    daemon thread per process, shared by every item of this scheduler; ``step`` returns
    the item's next due time, or None when it is done. Items whose ``active`` is False
    are dropped unrun. The thread exits after :data:`IDLE` seconds with nothing to do
    (the asyncio twin: one task per event loop, which ends when nothing is left)."""

    def __init__(self, step: Callable[[Any], float | None], name: str) -> None:
        self._step = step
        self._name = name
        self._guard = threading.Lock()
        self._worker: _Worker | None = None
        _SCHEDULERS.add(self)

    def add(self, item: Any, due: float) -> None:
        """Schedule ``item`` (an object with an ``active`` attribute) at ``due``."""
        worker = self._worker
        if worker is None:
            with self._guard:
                if self._worker is None:
                    self._worker = _Worker(self._step, self._name)
                worker = self._worker
        worker.add(item, due)

    def _forget(self) -> None:
        # A forked child has no worker thread: start afresh (its copies of the parent's
        # items are not run there; they belong to the parent).
        self._worker = None
        self._guard = threading.Lock()


class _Worker:
    """The heap and the thread of one :class:`Background`."""

    def __init__(self, step: Callable[[Any], float | None], name: str) -> None:
        self._step = step
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, item: Any, due: float) -> None:
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._seq), item))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name=self._name)
                self._thread.start()
            else:
                self._cond.notify()

    def _next(self) -> Any:
        with self._cond:
            while True:
                heap = self._heap
                while heap and not heap[0][2].active:
                    heapq.heappop(heap)
                if not heap:
                    self._cond.wait(IDLE)
                    if not self._heap:
                        self._thread = None
                        return None
                    continue
                delay = heap[0][0] - time.monotonic()
                if delay <= 0:
                    return heapq.heappop(heap)[2]
                self._cond.wait(delay)

    def _run(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            due = self._step(item)
            if due is not None:
                self.add(item, due)


_SCHEDULERS: weakref.WeakSet[Background] = weakref.WeakSet()


def _forget_workers() -> None:
    for scheduler in list(_SCHEDULERS):
        scheduler._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


def run_loader(loader: Callable[[], Any]) -> Any:
    """A cache loader's value. An awaitable is refused (closed first, so no "never
    awaited" warning): async loaders belong to the asyncio cache."""
    value = loader()
    if inspect.isawaitable(value):
        close = getattr(value, "close", None)
        if close is not None:
            close()
        raise TypeError("the loader returned an awaitable: use pyredis_atomic.asyncio.Cache "
                        "for async loaders")
    return value


def check_cached(func: Callable[..., Any]) -> None:
    """Refuse a coroutine function for the sync ``Cache.cached`` decorator."""
    if inspect.iscoroutinefunction(func):
        raise TypeError(f"{func.__qualname__} is a coroutine function: use "
                        "pyredis_atomic.asyncio.Cache to cache it")


# The clients the sync API takes (pipelines are refused: see check_client).
Client: TypeAlias = Redis | RedisCluster


_KINDS = ClientKinds((Redis, RedisCluster), (Pipeline, ClusterPipeline))


def check_client(client: object) -> Client:
    """``client`` if the sync API can use it, else ``TypeError`` naming ``client``: raised
    when a primitive is built, so an asyncio client, a pipeline or something that is not a
    client at all fails before anything is sent."""
    if _KINDS.ok(client):
        return client  # type: ignore[return-value]
    raise bad_client(client, wanted="a redis.Redis or redis.cluster.RedisCluster",
                     asyncio=False)


def check_now(check: Callable[..., Any], *args: Any) -> None:
    """Run ``check(*args)`` now, when an object is built (the asyncio twin cannot await
    there: its objects run the check before their first command instead)."""
    check(*args)


def executor(client: Any) -> Callable[..., Any]:
    """What sends a script command for the registry: the client's own ``execute_command``
    (the asyncio twin batches the calls of one loop turn into one pipeline)."""
    return client.execute_command  # type: ignore[no-any-return]
