"""What the asyncio API does differently from the sync one, below the driver: hand-written.

The sync twin is :mod:`pyredis_atomic._runtime` (same names, same signatures); see
``scripts/unasync.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import inspect
import itertools
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

from redis.asyncio.client import Pipeline, Redis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster

from .._core.validate import ClientKinds, bad_client
from ._pipelining import executor

__all__ = ["Background", "Client", "Mutex", "check_cached", "check_client", "check_now",
           "durable_target", "every_node", "executor", "node_name", "on_node", "primaries",
           "run_loader", "settle"]


async def primaries(client: Any) -> list[Any]:
    """Where a script must be loaded: every primary node of a cluster, else the client."""
    if isinstance(client, RedisCluster):
        await client.initialize()  # a fresh cluster client knows no nodes yet; no-op after
        return list(client.get_primaries())
    return [client]


async def on_node(client: Any, node: Any, *command: Any) -> Any:
    """Send ``command`` to ``node`` (one of :func:`primaries`)."""
    if node is client:
        return await client.execute_command(*command)
    return await client.execute_command(*command, target_nodes=node)


async def every_node(client: Any) -> list[Any]:
    """Every node of a cluster, replicas included (for :func:`on_node`), else the client."""
    if isinstance(client, RedisCluster):
        await client.initialize()
        return list(client.get_nodes())
    return [client]


def node_name(client: Any, node: Any) -> str:
    """``host:port`` (or the socket path) of ``node``, one of :func:`primaries` or
    :func:`every_node`."""
    name = getattr(node, "name", None)
    if isinstance(name, str) and node is not client:
        return name
    kwargs = getattr(getattr(node, "connection_pool", None), "connection_kwargs", {})
    if kwargs.get("path"):
        return str(kwargs["path"])
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


def durable_target(client: Any, keys: Sequence[Any]) -> Any:
    """The connection a call and its ``WAIT`` go out on (the client itself)."""
    if isinstance(client, RedisCluster):
        # WAIT counts the writes of its own connection, and redis.asyncio's cluster
        # client cannot pin a pipeline to one node's connection.
        raise TypeError("durability (WAIT) is not supported on redis.asyncio cluster "
                        "clients; use a sync RedisCluster or a standalone client")
    return client


# An asyncio mutex (the sync twin: threading.Lock), e.g. around a renewal in flight.
Mutex = asyncio.Lock


async def settle(outcome: object) -> object:
    """The result of a user callback (``on_lost``), awaited if it is awaitable (a plain
    function or a coroutine function may be given)."""
    if inspect.isawaitable(outcome):
        return await outcome
    return outcome


class Background:
    """Runs ``await step(item)`` for each item at its due time (``time.monotonic()``) in
    one task per event loop, shared by every item of this scheduler on that loop; ``step``
    returns the item's next due time, or None when it is done. Items whose ``active`` is
    False are dropped unrun. The task ends when nothing is left, so no task outlives the
    last item (the sync twin: one thread per process)."""

    def __init__(self, step: Callable[[Any], Awaitable[float | None]], name: str) -> None:
        self._step = step
        self._name = name
        # No reference to the loops: keyed weakly by them.
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Worker] = (
            weakref.WeakKeyDictionary())

    def add(self, item: Any, due: float) -> None:
        """Schedule ``item`` (an object with an ``active`` attribute) at ``due``."""
        loop = asyncio.get_running_loop()
        worker = self._loops.get(loop)
        if worker is None:
            worker = self._loops[loop] = _Worker(self._step, self._name)
        worker.add(item, due)


class _Worker:
    """The heap and the task of one :class:`Background` on one event loop."""

    def __init__(self, step: Callable[[Any], Awaitable[float | None]], name: str) -> None:
        self._step = step
        self._name = name
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, item: Any, due: float) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), item))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)
        else:
            self._wakeup.set()

    async def _run(self) -> None:
        heap = self._heap
        while True:
            while heap and not heap[0][2].active:
                heapq.heappop(heap)
            if not heap:
                return
            delay = heap[0][0] - time.monotonic()
            if delay > 0:
                self._wakeup.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), delay)
                continue
            item = heapq.heappop(heap)[2]
            due = await self._step(item)
            if due is not None:
                heapq.heappush(heap, (due, next(self._seq), item))


async def run_loader(loader: Callable[[], Any]) -> Any:
    """A cache loader's value: its result, awaited if it is awaitable."""
    result = loader()
    return (await result) if inspect.isawaitable(result) else result


def check_cached(func: Callable[..., Any]) -> None:
    """Any function may be cached by the asyncio ``Cache.cached`` (the sync twin refuses
    coroutine functions)."""


# The clients the asyncio API takes (pipelines are refused: see check_client).
Client: TypeAlias = Redis | RedisCluster


_KINDS = ClientKinds((Redis, RedisCluster), (Pipeline, ClusterPipeline))


def check_client(client: object) -> Client:
    """``client`` if the asyncio API can use it, else ``TypeError`` naming ``client``:
    raised when a primitive is built, so a sync client, a pipeline or something that is not
    a client at all fails before anything is sent (a sync client would run the command,
    then fail on ``await``)."""
    if _KINDS.ok(client):
        return client  # type: ignore[return-value]
    raise bad_client(client, wanted="a redis.asyncio.Redis or redis.asyncio.RedisCluster",
                     asyncio=True)


def check_now(check: Callable[..., Any], *args: Any) -> None:
    """Nothing: an asyncio check cannot be awaited while an object is built, so the object
    runs it before its first command (the sync twin runs ``check(*args)`` here)."""
