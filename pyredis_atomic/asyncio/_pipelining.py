"""Auto-pipelining for the asyncio API (asyncio only: the sync twin of :func:`executor` in
``pyredis_atomic/_runtime.py`` returns the client's own ``execute_command``).

The script calls that tasks make on one ``redis.asyncio.Redis`` client in the same turn of
the event loop go out together, as one pipeline (``transaction=False``) on one connection,
instead of one round trip on its own pooled connection each (on a cluster client: one
pipeline per node, see below); ioredis calls this
auto-pipelining. Each caller still gets its own reply or error (the pipeline runs with
``raise_on_error=False``), so the registry's handling above it is per call as before: a
``NOSCRIPT`` in one reply is recovered (``EVAL``, then ``SCRIPT LOAD``) for that call alone.

What is batched: the registry's script commands (``EVALSHA``/``EVALSHA_RO``, ``FCALL``/
``FCALL_RO``, the ``EVAL`` of a recovery) on ``redis.asyncio.Redis`` and
``redis.asyncio.cluster.RedisCluster`` clients. Never batched: blocking waits (``BLPOP``:
the drivers send them themselves), pipelines given as the client, ``WAIT`` for durability
(its own pipeline).

On a cluster client the turn's calls are grouped by the primary of their keys' slot (or the
node the registry named with ``target_nodes``) and each group goes out as one pipeline on
one connection of that node, the groups concurrently. redis-py's ``ClusterPipeline`` is not
used: on a connection or timeout error it re-runs the whole batch (every command whose
reply is falsy, ``0`` or nil, and the commands of nodes still in flight), after closing the
client's connections, which could run a script twice and disturb other callers. Here: the
calls refused by their node with ``MOVED`` (nothing of them ran) are re-sent, one pipeline
per node named, after patching the slot cache as redis-py does (``move_slot``); a call
refused with ``ASK``/``TRYAGAIN`` (or ``MOVED`` twice) is handed back to its caller, who
sends it alone through redis-py's own redirection handling; a call
whose node could not be picked from the slot cache (no cache yet, keys in several slots,
replica reads configured, a node flag as target) is sent the same way; any other error,
a lost connection included, reaches that call's caller and is never re-sent.

A call made while nothing is in flight on the client and no batch is being gathered is
sent at once by its caller, as without auto-pipelining (one task sees no change); the
calls that follow it in the same turn form the next batch. A batch that ends up with one
call is sent the same way, by its caller. A caller cancelled before the
batch is sent is left out of it (nothing of it runs); one cancelled after the batch was
sent loses its reply only (the script ran, as when a cancellation lands during a single
call's read), and the other callers are not disturbed.

Turned off (for every client, or one): :func:`set_auto_pipelining`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from redis import exceptions as redis_exc
from redis.asyncio.client import Pipeline, Redis
from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster

from .._core.validate import check_flag

__all__ = ["auto_pipelining", "executor", "set_auto_pipelining"]

Execute = Callable[..., Awaitable[Any]]

_DEFAULT = {"enabled": True}
# Per client: its batcher (made on first use), and the explicit choice of set_auto_pipelining.
_BATCHERS: weakref.WeakKeyDictionary[Any, _Batcher] = weakref.WeakKeyDictionary()
_CHOICE: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
# The answer "run it yourself" given to the caller of a call alone in its turn.
_SOLO: Any = object()
# Pipelines in flight: strong references (a task nobody awaits could be collected).
_IN_FLIGHT: set[asyncio.Task[None]] = set()


def set_auto_pipelining(enabled: bool, client: Any = None) -> None:
    """Turn auto-pipelining on or off for ``client`` (a ``redis.asyncio.Redis``), or, with
    no client, the default of every client without a choice of its own (on unless turned
    off). Takes effect from the next call, also for primitives already made."""
    enabled = check_flag(enabled, "enabled")
    if client is None:
        _DEFAULT["enabled"] = enabled
        return
    _CHOICE[client] = enabled


def auto_pipelining(client: Any = None) -> bool:
    """Whether calls on ``client`` are auto-pipelined (no client: the default). Pipelines
    never are."""
    if client is None:
        return _DEFAULT["enabled"]
    if not _batchable(client):
        return False
    return _CHOICE.get(client, _DEFAULT["enabled"])


_KINDS: dict[type, bool] = {}


def _batchable(client: Any) -> bool:
    kind = type(client)
    found = _KINDS.get(kind)
    if found is None:
        # redis.asyncio.Redis and its subclasses, not its pipelines (a Pipeline is a Redis);
        # redis.asyncio.cluster.RedisCluster (its ClusterPipeline is not a RedisCluster)
        found = _KINDS[kind] = ((issubclass(kind, Redis) and not issubclass(kind, Pipeline))
                                or issubclass(kind, RedisCluster))
    return found


def executor(client: Any) -> Execute:
    """What sends a script command for the registry on ``client``: its batcher's
    ``execute`` (same signature as ``execute_command``), or ``client.execute_command``
    itself for a client that is never batched (pipeline, anything else)."""
    if not _batchable(client):
        return client.execute_command  # type: ignore[no-any-return]
    batcher = _BATCHERS.get(client)
    if batcher is None:
        batcher = _BATCHERS[client] = _Batcher(client)
    return batcher.execute


class _Batcher:
    """The calls of one turn of the loop on one client, and the pipeline that sends them."""

    __slots__ = ("__weakref__", "_busy", "_client", "_loop", "_pending")

    def __init__(self, client: Any) -> None:
        # A weak reference: the batcher lives in a WeakKeyDictionary keyed by the client.
        self._client = weakref.ref(client)
        self._pending: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]] | None
        self._pending = None
        # The loop of the pending batch: a batch left behind by a loop that stopped before
        # its flush ran is never joined by a call on another loop.
        self._loop: asyncio.AbstractEventLoop | None = None
        # Round trips in flight (direct calls and pipelines): a call that finds none, and
        # no batch being gathered, has nobody to share a round trip with and goes at once.
        self._busy = 0

    async def execute(self, *args: Any, **options: Any) -> Any:
        client = self._client()
        if client is None:  # pragma: no cover - the caller holds the client
            raise RuntimeError("the client was garbage-collected")
        choice = _CHOICE.get(client)
        if not (_DEFAULT["enabled"] if choice is None else choice):
            return await client.execute_command(*args, **options)
        loop = asyncio.get_running_loop()
        pending = self._pending
        if self._busy == 0 and (pending is None or self._loop is not loop):
            return await self._direct(client, args, options)
        future: asyncio.Future[Any] = loop.create_future()
        if pending is None or self._loop is not loop:
            pending = self._pending = []
            self._loop = loop
            loop.call_soon(self._flush, pending)
        pending.append((args, options, future))
        reply = await future
        if reply is _SOLO:
            return await self._direct(client, args, options)
        return reply

    async def _direct(self, client: Any, args: tuple[Any, ...],
                      options: dict[str, Any]) -> Any:
        # A call alone: sent by its caller, as without auto-pipelining.
        self._busy += 1
        try:
            return await client.execute_command(*args, **options)
        finally:
            self._busy -= 1

    def _done(self, task: asyncio.Task[None]) -> None:
        # A pipeline's task ended. Its callers were woken before this runs (their wake-ups
        # were scheduled first), so their next calls joined a batch of their own.
        _IN_FLIGHT.discard(task)
        self._busy -= 1

    def _flush(self, pending: list[tuple[tuple[Any, ...], dict[str, Any],
                                         asyncio.Future[Any]]]) -> None:
        if self._pending is pending:
            self._pending = None
        live = [entry for entry in pending if not entry[2].done()]  # cancelled: left out
        if not live:
            return
        if len(live) == 1:
            live[0][2].set_result(_SOLO)
            return
        client = self._client()
        if client is None:  # pragma: no cover
            for _, _, future in live:
                future.cancel()
            return
        try:
            task = asyncio.get_running_loop().create_task(_send(client, live))
        except RuntimeError as exc:  # the loop is closing: nobody waits for ever
            for _, _, future in live:
                future.set_exception(exc)
            return
        _IN_FLIGHT.add(task)
        self._busy += 1
        task.add_done_callback(self._done)


async def _send(client: Any, batch: list[tuple[tuple[Any, ...], dict[str, Any],
                                               asyncio.Future[Any]]]) -> None:
    """One pipeline of the batch's commands; each reply (or error) to its own caller."""
    if isinstance(client, RedisCluster):
        try:
            await _send_cluster(client, batch)
        finally:  # nobody waits for ever, whatever went wrong
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(RuntimeError("auto-pipelining: no reply"))
        return
    try:
        pipe = client.pipeline(transaction=False)
        for args, options, _ in batch:
            pipe.execute_command(*args, **options)
        replies = await pipe.execute(raise_on_error=False)
    except asyncio.CancelledError:
        for _, _, future in batch:
            if not future.done():
                future.cancel()
        raise
    except BaseException as exc:  # the connection failed: every call sees the error
        for _, _, future in batch:
            if not future.done():
                future.set_exception(copy.copy(exc))
        if not isinstance(exc, Exception):
            raise
        return
    for (_, _, future), reply in zip(batch, replies, strict=True):
        if future.done():  # its caller was cancelled meanwhile: the reply is nobody's
            continue
        if isinstance(reply, Exception):
            future.set_exception(reply)
        else:
            future.set_result(reply)


# Script calls whose keys follow the number of keys (args: command, body, numkeys, keys...).
_SCRIPT_COMMANDS = frozenset(("EVALSHA", "EVALSHA_RO", "EVAL", "EVAL_RO", "FCALL", "FCALL_RO"))
# Replies of a node that refused a command (nothing of it ran): sent again, where it belongs.
_REFUSED = (redis_exc.MovedError, redis_exc.AskError, redis_exc.TryAgainError)


def _node_of(client: Any, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
    """The node a call goes to on a cluster client, or None to leave it to redis-py's own
    routing (sent alone by its caller)."""
    target = options.get("target_nodes")
    if target is not None:
        return target if isinstance(target, ClusterNode) else None
    if client.read_from_replicas or getattr(client, "load_balancing_strategy", None):
        return None  # the node is redis-py's choice per call
    command = args[0]
    if command in _SCRIPT_COMMANDS:
        keys = args[3:3 + int(args[2])]
    elif command == "GET":
        keys = args[1:2]
    else:
        return None
    if not keys:
        return None
    slot = client.keyslot(keys[0])
    for key in keys[1:]:
        if client.keyslot(key) != slot:
            return None  # redis-py raises its own error for it
    try:
        return client.nodes_manager.get_node_from_slot(slot)
    except redis_exc.RedisError:  # the slot is not covered: redis-py waits and retries
        return None


async def _send_cluster(client: Any, batch: list[tuple[tuple[Any, ...], dict[str, Any],
                                                       asyncio.Future[Any]]]) -> None:
    """The batch on a cluster client: one pipeline per node, the nodes concurrently."""
    groups: dict[str, tuple[Any, list[tuple[PipelineCommand, asyncio.Future[Any]]]]] = {}
    for position, (args, options, future) in enumerate(batch):
        if future.done():
            continue
        # a topology refresh pending (after a lost connection): redis-py's routing does it
        node = None if getattr(client, "_initialize", False) else _node_of(client, args, options)
        if node is None:
            future.set_result(_SOLO)  # its caller sends it, through redis-py's routing
            continue
        sent = options
        if "target_nodes" in options:
            sent = {k: v for k, v in options.items() if k != "target_nodes"}
        group = groups.get(node.name)
        if group is None:
            group = groups[node.name] = (node, [])
        group[1].append((PipelineCommand(position, *args, **sent), future))
    if not groups:
        return
    if len(groups) == 1:
        node, calls = next(iter(groups.values()))
        await _send_node(client, node, calls)
        return
    tasks = [asyncio.ensure_future(_send_node(client, node, calls))
             for node, calls in groups.values()]
    try:
        await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        raise


async def _send_node(client: Any, node: Any,
                     calls: list[tuple[PipelineCommand, asyncio.Future[Any]]],
                     redirected: bool = False) -> None:
    # One node's calls: one pipeline on one of its connections (ClusterNode.execute_pipeline
    # stores each reply or error in its command; it raises only if no reply could be read).
    calls = [call for call in calls if not call[1].done()]  # cancelled meanwhile: left out
    if not calls:
        return
    try:
        await node.execute_pipeline([command for command, _ in calls])
    except asyncio.CancelledError:
        for _, future in calls:
            if not future.done():
                future.cancel()
        raise
    except BaseException as exc:  # nothing read: every call sees the error, none re-sent
        if isinstance(exc, (redis_exc.ConnectionError, redis_exc.TimeoutError)):
            client._initialize = True  # as redis-py does: the next call refreshes the slots
        for _, future in calls:
            if not future.done():
                future.set_exception(copy.copy(exc))
        if not isinstance(exc, Exception):
            raise
        return
    moved: dict[str, tuple[Any, list[tuple[PipelineCommand, asyncio.Future[Any]]]]] = {}
    errors: dict[int, redis_exc.MovedError] = {}
    for command, future in calls:
        if future.done():  # its caller was cancelled meanwhile: the reply is nobody's
            continue
        reply = command.result
        if isinstance(reply, _REFUSED):
            # Refused, nothing of it ran. MOVED: re-sent here, in one pipeline per new
            # owner (below); ASK and TRYAGAIN (a slot migrating): by its caller alone,
            # through redis-py's ASKING and retry handling.
            target = None
            if isinstance(reply, redis_exc.MovedError) and not redirected:
                target = client.get_node(host=reply.host, port=reply.port)
            if target is None:
                future.set_result(_SOLO)
            else:
                assert isinstance(reply, redis_exc.MovedError)
                group = moved.get(target.name)
                if group is None:
                    group = moved[target.name] = (target, [])
                errors[reply.slot_id] = reply
                group[1].append((command, future))
        elif isinstance(reply, Exception):
            if isinstance(reply, (redis_exc.ConnectionError, redis_exc.TimeoutError)):
                client._initialize = True
            future.set_exception(reply)
        else:
            future.set_result(reply)
    if moved:
        for error in errors.values():  # the slot cache patched as redis-py does on MOVED
            with contextlib.suppress(Exception):
                patched = client.nodes_manager.move_slot(error)
                if inspect.isawaitable(patched):  # a coroutine in recent redis-py
                    await patched
        # Not redis-py's own MOVED path: it rebuilds the slot cache every
        # reinitialize_steps MOVEDs, which drops connections in use, and retries the calls
        # that lost theirs (16 concurrent counter calls after a stale slot ran 17 times on
        # redis-py 8.1, unbatched). Refused again: sent alone by its caller.
        await asyncio.gather(*(_send_node(client, target, group, True)
                               for target, group in moved.values()))

