"""The script registry: loads the ``lua/`` scripts and runs them with ``EVALSHA``.

Usage::

    from pyredis_atomic.asyncio.registry import AsyncScriptRegistry

    registry = AsyncScriptRegistry()  # the package's scripts
    await registry.load(client)  # SCRIPT LOAD each (all primaries on a cluster)
    await registry.call(client, "server_time", [], [])

``call`` sends ``EVALSHA`` (``EVALSHA_RO`` for read-only scripts where the server has it).
On ``NOSCRIPT`` nothing ran, so it re-sends the call as ``EVAL`` with the source, which
cannot miss even if the cache is flushed again at that moment, then ``SCRIPT LOAD``\\s the
script so later calls use the SHA again. This covers ``SCRIPT FLUSH``, restarts, failovers
and cluster nodes that never saw the script, with no action by the user.

On a pipeline (transactional or not, standalone or cluster) a call is queued as ``EVAL``
with the source: a flush between queueing and ``execute()`` cannot make it fail, at the cost
of sending the script's text. The I/O-free parts live in ``pyredis_atomic._core``.

Functions mode (``AsyncScriptRegistry(mode="functions")``): the same scripts, built into one
versioned Redis Functions library (:meth:`~pyredis_atomic._core.script.Catalog.library`),
run with ``FCALL`` (``FCALL_RO`` for read-only scripts), on pipelines too. The library is
deployed explicitly (:meth:`AsyncScriptRegistry.load_library`, ``pyredis-atomic functions
load``), never by a call: a call that meets a server without it raises
:class:`~pyredis_atomic.LibraryNotLoadedError` naming the library and the node, and a server
without Functions (Redis 6.2) :class:`~pyredis_atomic.ServerVersionError`; nothing ran.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from redis import exceptions as redis_exc
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.client import NEVER_DECODE

from .. import otel as _otel
from .._core import events
from .._core.calls import (
    Call,
    Key,
    connection_error,
    durability_error,
    encode_args,
    script_error,
    timeout_error,
    wait_failed,
    wait_millis,
    wrong_type_error,
)
from .._core.functions import (
    FUNCTIONS_REDIS,
    LIBRARY_PREFIX,
    Library,
    LibraryStatus,
    check_mode,
    library_missing_error,
    library_status,
    no_functions_error,
    parse_function_list,
)
from .._core.script import Catalog, Script, parse_server_version
from .._core.servers import is_wrong_type
from .._core.validate import check_flag
from ._runtime import (
    check_now,
    durable_target,
    every_node,
    executor,
    node_name,
    on_node,
    primaries,
)

__all__ = ["AsyncBoundScript", "AsyncScriptRegistry", "default_registry", "queue_evalsha"]

T = TypeVar("T")

# Clients whose server lacks EVALSHA_RO (Redis < 7.0): we fall back to EVALSHA for them.
_NO_RO: weakref.WeakSet[Any] = weakref.WeakSet()
# execute_command options: string replies as bytes whatever the client's decode_responses.
_RAW: dict[str, Any] = {NEVER_DECODE: True}
_DECODED: dict[str, Any] = {}
# Server version per client (INFO server, read once; None: unknown). Only scripts whose
# header asks for more than BASE_REDIS look it up (Script.version_check).
_VERSIONS: weakref.WeakKeyDictionary[Any, tuple[int, ...] | None] = weakref.WeakKeyDictionary()


async def server_version(client: Any) -> tuple[int, ...] | None:
    """The (Redis-compatible) version of ``client``'s server, the oldest over a cluster's
    primaries; read once per client and cached. None when ``INFO`` is denied."""
    try:
        return _VERSIONS[client]
    except KeyError:
        pass
    try:
        found = [parse_server_version(await on_node(client, target, "INFO", "server"))
                 for target in await primaries(client)]
        known = [v for v in found if v is not None]
        version = min(known) if known else None
    except redis_exc.ResponseError:  # INFO denied (ACL): the server answers for itself
        version = None
    _VERSIONS[client] = version
    return version


async def check_server(client: Any, script: Script) -> None:
    """Raise :class:`~pyredis_atomic.ServerVersionError` before ``script`` is sent to a
    server older than its header's ``Redis:`` (free for scripts that need no more than
    the package's floor)."""
    if script.version_check:
        script.check_server(await server_version(client))


def queue_evalsha(pipe: Any, script: Script, call: Call[Any]) -> None:
    """Queue ``call`` as ``EVALSHA`` of ``script`` on a sync or asyncio pipeline (the
    drivers' wait-then-call pipeline; the caller recovers from NOSCRIPT itself)."""
    pipe.execute_command("EVALSHA", script.sha1, len(call.keys), *call.keys, *call.args,
                         **(_RAW if call.raw else _DECODED))


async def require_functions(client: Any) -> tuple[int, ...] | None:
    """The server's version; :class:`~pyredis_atomic.ServerVersionError` when it has no
    Redis Functions (older than 7.0; None: unknown, the server answers for itself)."""
    version = await server_version(client)
    if version is not None and version < FUNCTIONS_REDIS:
        raise no_functions_error(version, _where(client))
    return version


def _where(client: Any, keys: Sequence[Key] = ()) -> str | None:
    # The node a call went to, for messages: a cluster's node for the first key's slot.
    try:
        if _is_cluster(client):
            return str(client.get_node_from_key(keys[0]).name) if keys else None
        return node_name(client, client)
    except Exception:  # a name for a message only: never fail because of it
        return None


# redis-py's classes have a Protocol metaclass, so a failing isinstance() costs
# microseconds: these answers are kept per class (they depend on the class alone).
_PIPELINE: dict[type, bool] = {}
_CLUSTER: dict[type, bool] = {}


def _is_pipeline(client: Any) -> bool:
    kind = type(client)
    found = _PIPELINE.get(kind)
    if found is None:
        found = _PIPELINE[kind] = issubclass(kind, (Pipeline, ClusterPipeline))
    return found


def _is_cluster(client: Any) -> bool:
    kind = type(client)
    found = _CLUSTER.get(kind)
    if found is None:
        found = _CLUSTER[kind] = issubclass(kind, RedisCluster)
    return found


# _on_replica's answer when the call must go to the primary instead.
_MISSED = object()


def _read_node(client: Any, keys: tuple[Key, ...]) -> Any:
    """The node a read-only script should read from on a cluster client created with
    ``read_from_replicas=True`` or a ``load_balancing_strategy`` (the one redis-py itself
    would pick for a read of the first key's slot), else ``None``."""
    strategy = getattr(client, "load_balancing_strategy", None)
    if not keys or not (getattr(client, "read_from_replicas", False) or strategy):
        return None
    slot = client.keyslot(keys[0])
    try:
        if strategy is not None:
            return client.nodes_manager.get_node_from_slot(slot,
                                                           load_balancing_strategy=strategy)
        return client.nodes_manager.get_node_from_slot(slot, read_from_replicas=True)
    except (redis_exc.RedisError, redis_exc.RedisClusterException, LookupError):
        # slots not known yet (an asyncio cluster client before its first command): the
        # primary route initializes them
        return None


class AsyncScriptRegistry(Catalog):
    """The package's scripts (plus any extra directories), runnable on ``redis.asyncio`` clients.

    ``directories``: extra folders of ``.lua`` files following the same header convention.
    ``builtin``: include the package's own scripts (default True).
    ``mode``: ``"scripts"`` (default: ``EVALSHA``, ``EVAL`` on ``NOSCRIPT``) or
    ``"functions"`` (``FCALL``/``FCALL_RO`` of the library :meth:`load_library` deploys;
    Redis 7.0+). ``library``: the library's name in functions mode (default
    ``pyredis_atomic_<version>``).
    """

    def __init__(self, directories: Iterable[str | Path] = (), *, builtin: bool = True,
                 mode: str = "scripts", library: str | None = None) -> None:
        super().__init__(directories, builtin=builtin)
        self.mode = check_mode(mode)
        #: The library called in functions mode (None in scripts mode).
        self.functions: Library | None = (
            self.library(library) if self.mode == "functions" else None)

    def _by_reference(self, script: Script) -> tuple[str, str]:
        # The command and body of a call by reference to the server's copy.
        lib = self.functions
        if lib is None:
            return "EVALSHA", script.sha1
        return ("FCALL_RO" if script.read_only else "FCALL"), lib.function(script.name)

    def command_of(self, script: Script) -> str:
        """The command a call by reference sends: ``EVALSHA``, or ``FCALL``/``FCALL_RO`` in
        functions mode (the name a script span reports as ``db.operation.name``)."""
        return self._by_reference(script)[0]

    def _queued(self, script: Script) -> tuple[str, str]:
        # What a pipeline queues: the source (cannot miss) or the function.
        if self.functions is None:
            return "EVAL", script.source
        return self._by_reference(script)

    def queue_cached(self, pipe: Any, script: Script, call: Call[Any]) -> None:
        """Queue ``call`` on a pipeline by reference to the server's copy: ``EVALSHA`` (the
        caller recovers from NOSCRIPT through :meth:`recover`), or ``FCALL``/``FCALL_RO`` in
        functions mode (the drivers' wait-then-call pipeline)."""
        command, body = self._by_reference(script)
        pipe.execute_command(command, body, len(call.keys), *call.keys, *call.args,
                             **(_RAW if call.raw else _DECODED))

    # -- the Functions library -----------------------------------------------------------
    async def load_library(self, client: Any, *, name: str | None = None,
                           replace: bool = False) -> dict[str, str]:
        """``FUNCTION LOAD`` the library (this registry's, else the default one named
        ``name``) on the server or every primary; node -> what was done (``loaded``,
        ``replaced``, ``unchanged``). A node holding the same library name with other code
        is ``replaced`` only with ``replace=True`` (else ``RuntimeError`` naming it); nodes
        that already have it are left alone. Raises ``ServerVersionError`` before Redis 7.0.
        """
        lib = self.functions if (self.functions and name is None) else self.library(name)
        await require_functions(client)
        done: dict[str, str] = {}
        for target in await primaries(client):
            where = node_name(client, target)
            present = parse_function_list(await on_node(
                client, target, "FUNCTION", "LIST", "LIBRARYNAME", lib.name, "WITHCODE"))
            state = present.get(lib.name)
            if state is not None and state.code == lib.code:
                done[where] = "unchanged"
                continue
            if state is not None and not replace:
                raise RuntimeError(f"{where} has another library named {lib.name!r} (other "
                                   f"code); load with replace=True (--replace) to overwrite it")
            args = ("REPLACE", lib.code) if state is not None else (lib.code,)
            await on_node(client, target, "FUNCTION", "LOAD", *args)
            done[where] = "replaced" if state is not None else "loaded"
        return done

    async def library_status(self, client: Any, *, name: str | None = None,
                             replicas: bool = True) -> list[LibraryStatus]:
        """Where the library is and is not: one :class:`LibraryStatus` per node (every
        node of a cluster, replicas included unless ``replicas=False``; else the server).
        ``ServerVersionError`` before Redis 7.0."""
        lib = self.functions if (self.functions and name is None) else self.library(name)
        await require_functions(client)
        nodes = await (every_node(client) if replicas else primaries(client))
        found: list[LibraryStatus] = []
        for target in nodes:
            listing = parse_function_list(await on_node(
                client, target, "FUNCTION", "LIST", "LIBRARYNAME", f"{LIBRARY_PREFIX}_*",
                "WITHCODE"))
            found.append(library_status(node_name(client, target), lib, listing))
        return found

    async def delete_library(self, client: Any, *, name: str | None = None) -> list[str]:
        """``FUNCTION DELETE`` the library on every primary that has it (replicas follow);
        the nodes it was deleted from."""
        lib = self.functions if (self.functions and name is None) else self.library(name)
        target_name = name or lib.name
        await require_functions(client)
        deleted: list[str] = []
        for target in await primaries(client):
            try:
                await on_node(client, target, "FUNCTION", "DELETE", target_name)
            except redis_exc.ResponseError as exc:
                if "library not found" not in str(exc).lower():
                    raise
            else:
                deleted.append(node_name(client, target))
        return deleted

    # -- loading -------------------------------------------------------------------------
    async def load(self, client: Any, names: Iterable[str] | None = None) -> dict[str, str]:
        """``SCRIPT LOAD`` the scripts (all, or ``names``) on the server or every primary.

        Returns name -> sha1. Raises ``RuntimeError`` if a server returns another SHA than
        the one computed locally (the file was changed under the registry's feet).
        """
        result: dict[str, str] = {}
        for target in await primaries(client):
            for name in names if names is not None else self.names():
                script = self.get(name)
                await check_server(client, script)
                sha = await on_node(client, target, "SCRIPT LOAD", script.source)
                sha = sha.decode() if isinstance(sha, bytes) else str(sha)
                if sha != script.sha1:
                    raise RuntimeError(f"server returned sha {sha} for {name!r}, "
                                       f"expected {script.sha1}")
                result[name] = sha
        return result

    async def missing(self, client: Any) -> list[str]:
        """Names of the scripts that the server (or any cluster primary) does not have."""
        names = self.names()
        shas = [self[n].sha1 for n in names]
        absent: set[str] = set()
        for target in await primaries(client):
            present = await on_node(client, target, "SCRIPT EXISTS", *shas)
            absent.update(n for n, ok in zip(names, present, strict=True) if not ok)
        return sorted(absent)

    # -- calling -------------------------------------------------------------------------
    async def call(self, client: Any, name: str, keys: Sequence[Key] = (),
                   args: Sequence[Any] = ()) -> Any:
        """Run script ``name``; on a pipeline, queue it and return the pipeline.

        Raises ``ValueError`` (before sending anything) when the number of keys or
        arguments does not match the script's header.
        """
        script, keys, argv = self._checked(name, keys, args)
        if _is_pipeline(client):
            client.execute_command(*self._queued(script), len(keys), *keys, *argv)
            return client
        await check_server(client, script)
        return await self._run(client, script, keys, argv)

    def _checked(self, name: str, keys: Sequence[Key],
                 args: Sequence[Any]) -> tuple[Script, tuple[Key, ...], tuple[Any, ...]]:
        # What call() and queue() send, checked against the script's header (nothing sent
        # yet): the script, the keys, the encoded arguments.
        script = self.get(name)
        keys = tuple(keys)
        argv = encode_args(args)
        script.check_arity(len(keys), len(argv))
        return script, keys, argv

    async def run(self, client: Any, call: Call[T]) -> T:
        """Run a :class:`~pyredis_atomic._core.calls.Call` and decode its reply."""
        script = self.get(call.script)
        script.check_arity(len(call.keys), len(call.args))
        await check_server(client, script)
        return call.decode(await self._run(client, script, call.keys, call.args, call.raw))

    async def run_durable(self, client: Any, call: Call[T], replicas: int,
                          timeout: float) -> T:
        """Run ``call``, then ``WAIT`` until ``replicas`` replicas have it, on the same
        connection. Raises :class:`~pyredis_atomic.DurabilityError` (the write stays
        applied on the primary) if fewer acknowledge it within ``timeout`` seconds.

        ``WAIT`` cannot run inside a script, so both go out in one pipeline on the node
        that owns the keys; on ``NOSCRIPT`` the pair is re-sent with ``EVAL``.
        """
        script = self.get(call.script)
        script.check_arity(len(call.keys), len(call.args))
        await check_server(client, script)
        ms = wait_millis(replicas, timeout)
        target = durable_target(client, call.keys)
        n = len(call.keys)
        rounds = ((self._by_reference(script),) if self.functions is not None
                  else (("EVALSHA", script.sha1), ("EVAL", script.source)))
        try:
            for command, body in rounds:
                pipe = target.pipeline(transaction=False)
                pipe.execute_command(command, body, n, *call.keys, *call.args)
                pipe.execute_command("WAIT", replicas, ms)
                with _otel.pipelined_span(target, command, script.name, call.keys,
                                          (command, "WAIT")) as span:
                    reply, acknowledged = await pipe.execute(raise_on_error=False)
                    if isinstance(reply, Exception):
                        _otel.reply_failed(span, reply)
                    elif not isinstance(acknowledged, Exception):
                        span.set_attribute("pyredis_atomic.replicas.acknowledged",
                                           int(acknowledged))
                if isinstance(reply, redis_exc.NoScriptError):
                    continue  # nothing ran; the EVAL round cannot miss
                if isinstance(reply, redis_exc.ResponseError):
                    raise await self._translate(target, script, call.keys, reply) from reply
                if isinstance(reply, Exception):
                    raise reply
                if body is script.source:
                    await self._reload(target, script)
                if isinstance(acknowledged, Exception):
                    raise wait_failed(script, call.keys, replicas, acknowledged) \
                        from acknowledged
                if int(acknowledged) < replicas:
                    raise durability_error(script, call.keys, replicas, int(acknowledged),
                                           timeout)
                return call.decode(reply)
        except redis_exc.TimeoutError as exc:
            raise timeout_error(script, call.keys, exc) from exc
        except redis_exc.ConnectionError as exc:
            raise connection_error(script, call.keys, exc) from exc
        raise AssertionError("unreachable: EVAL cannot answer NOSCRIPT")

    def queue(self, pipeline: Any, call: Call[Any]) -> None:
        """Queue a :class:`Call` on a redis-py pipeline (decode its reply after execute,
        with :meth:`results` to get the package's errors), checked and encoded as
        :meth:`call` does (nothing is queued if that fails)."""
        if not _is_pipeline(pipeline):
            raise TypeError(f"queue() wants a redis-py pipeline, got {type(pipeline).__name__}")
        script, keys, argv = self._checked(call.script, call.keys, call.args)
        pipeline.execute_command(*self._queued(script), len(keys), *keys, *argv)

    async def results(self, client: Any, calls: Sequence[Call[Any]], replies: Sequence[Any],
                      *, raise_on_error: bool = True) -> list[Any]:
        """The decoded replies of ``calls`` queued on a pipeline with :meth:`queue` (in
        order; ``replies``: what ``execute(raise_on_error=False)`` returned for them), with
        a failed call's error reply mapped to the package's error as :meth:`run` maps it
        (``LibraryNotLoadedError`` naming the node in functions mode, ``ServerVersionError``
        on Redis 6.2, ``WrongTypeError``, ``ConfigMismatchError``, ``ScriptError``...).
        Raises the first such error, or with ``raise_on_error=False`` puts it in the
        failed call's place. ``client``: the client the pipeline came from (not the
        pipeline: a wrong type is named by asking ``TYPE``). Nothing is re-sent."""
        raise_on_error = check_flag(raise_on_error, "raise_on_error")
        if _is_pipeline(client):
            raise TypeError("results() wants the client the pipeline came from, not the "
                            "pipeline")
        if len(calls) != len(replies):
            raise ValueError(f"results(): {len(calls)} calls but {len(replies)} replies")
        out: list[Any] = []
        for call, reply in zip(calls, replies, strict=True):
            if not isinstance(reply, Exception):
                out.append(call.decode(reply))
                continue
            script = self.get(call.script)
            error: Exception
            if isinstance(reply, redis_exc.ResponseError):
                error = await self._translate(client, script, call.keys, reply)
            elif isinstance(reply, redis_exc.TimeoutError):
                error = timeout_error(script, call.keys, reply)
            elif isinstance(reply, redis_exc.ConnectionError):
                error = connection_error(script, call.keys, reply)
            else:
                error = reply
            if error is not reply:
                error.__cause__ = reply
            if raise_on_error:
                raise error
            out.append(error)
        return out

    def bind(self, client: Any, name: str, *, raw: bool = False) -> AsyncBoundScript:
        """Script ``name`` bound to ``client``: the leanest call for a primitive's hot path
        (no per-call lookup or arity check; the primitive built the keys and arguments).
        A script whose header asks for a newer server than the package's floor checks the
        server's version (read once per client) before it is sent."""
        script = self.get(name)
        if self.functions is not None:
            return _BoundFunction(self, client, script, raw=check_flag(raw, "raw"))
        if script.version_check:
            bound = _VersionCheckedBoundScript(self, client, script, raw=check_flag(raw, "raw"))
            check_now(check_server, client, script)
            return bound
        return AsyncBoundScript(self, client, script, raw=check_flag(raw, "raw"))

    async def recover(self, client: Any, script: Script, keys: tuple[Key, ...],
                      argv: tuple[Any, ...], exc: Exception, *, raw: bool = False) -> Any:
        """Finish a call whose ``EVALSHA`` raised ``exc``: on ``NOSCRIPT`` (nothing ran)
        re-send it as ``EVAL`` and ``SCRIPT LOAD`` the script; otherwise raise the
        package's error for ``exc``. Nothing that may have run is re-sent."""
        try:
            if self.functions is not None or not isinstance(exc, redis_exc.NoScriptError):
                raise exc
            # EVAL cannot miss, even if the cache is flushed again at this instant.
            events.emit("script.noscript", "script %r (sha %s) was not on the server: re-sent "
                        "as EVAL and loaded again", script.name, script.sha1,
                        script=script.name, sha=script.sha1)
            reply = await self._send(
                client, "EVAL", script.source, script, keys, argv, _RAW if raw else _DECODED)
            await self._reload(client, script)
            return reply
        except redis_exc.ResponseError as err:
            raise await self._translate(client, script, keys, err) from err
        except redis_exc.TimeoutError as err:
            raise timeout_error(script, keys, err) from err
        except redis_exc.ConnectionError as err:
            raise connection_error(script, keys, err) from err

    async def _run(self, client: Any, script: Script, keys: tuple[Key, ...],
                   argv: tuple[Any, ...], raw: bool = False) -> Any:
        try:
            return await self._evalsha(client, script, keys, argv, _RAW if raw else _DECODED)
        except redis_exc.RedisError as exc:
            return await self.recover(client, script, keys, argv, exc, raw=raw)

    async def _evalsha(self, client: Any, script: Script, keys: tuple[Key, ...],
                       argv: tuple[Any, ...], options: dict[str, Any]) -> Any:
        # EVALSHA_RO lets read-only scripts run on replicas (Redis < 7.0 lacks it). redis-py's
        # cluster routing understands only EVALSHA, which it sends to the primary, so for a
        # cluster client that reads from replicas the node is picked here (_read_node).
        if self.functions is not None:
            return await self._fcall(client, script, keys, argv, options)
        if script.read_only and client not in _NO_RO:
            if _is_cluster(client):
                node = _read_node(client, keys)
                if node is not None:
                    reply = await self._on_replica(client, node, script, keys, argv, options)
                    if reply is not _MISSED:
                        return reply
            else:
                try:
                    return await self._send(
                        client, "EVALSHA_RO", script.sha1, script, keys, argv, options)
                except redis_exc.ResponseError as exc:
                    if "unknown command" not in str(exc).lower():
                        raise
                    _NO_RO.add(client)
        return await self._send(
            client, "EVALSHA", script.sha1, script, keys, argv, options)

    async def _fcall(self, client: Any, script: Script, keys: tuple[Key, ...],
                     argv: tuple[Any, ...], options: dict[str, Any]) -> Any:
        # Functions mode. redis-py routes FCALL on a cluster by asking a node COMMAND
        # GETKEYS first (a round trip per call): the node is picked here instead, the
        # replica redis-py's read_from_replicas / load balancing picks for a read-only one.
        command, body = self._by_reference(script)
        if _is_cluster(client) and keys:
            node = _read_node(client, keys) if script.read_only else None
            if node is not None:
                try:
                    return await self._send(client, command, body, script, keys, argv,
                                            {**options, "target_nodes": node})
                except (redis_exc.ConnectionError, redis_exc.TimeoutError,
                        redis_exc.AskError, redis_exc.ClusterDownError,
                        redis_exc.TryAgainError):
                    pass  # to the primary, always safe for a script that writes nothing
                except redis_exc.ResponseError as exc:
                    if "function not found" in str(exc).lower() and self.functions:
                        # the replica lacks it: name the replica, not the key's primary
                        raise library_missing_error(self.functions, script.name,
                                                    getattr(node, "name", None)) from exc
                    raise
            options = _routed(client, keys, options)
        return await self._send(client, command, body, script, keys, argv, options)

    async def _send(
        self, client: Any, command: str, body: str, script: Script, keys: tuple[Key, ...],
        argv: tuple[Any, ...], options: dict[str, Any],
    ) -> Any:
        # Every script a registry sends goes out here: one span per call when instrumented.
        # executor(): the asyncio client's auto-pipelining batcher (see _pipelining).
        state = _otel.STATE
        if state is None or not state.tracing:
            return await executor(client)(command, body, len(keys), *keys, *argv, **options)
        with _otel.script_span(state, client, command, script.name, keys):
            return await executor(client)(command, body, len(keys), *keys, *argv, **options)

    async def _on_replica(self, client: Any, node: Any, script: Script,
                          keys: tuple[Key, ...], argv: tuple[Any, ...],
                          options: dict[str, Any]) -> Any:
        # A read-only script on the node redis-py's read_from_replicas / load balancing
        # picked for the key's slot. Since Redis 7.0 SCRIPT LOAD does not reach replicas:
        # on NOSCRIPT run it as EVAL_RO (cannot miss, and the replica refuses any write)
        # and load it there. _MISSED sends the caller to the primary, which is always
        # safe for a script that writes nothing: a slot that moved, a replica that is
        # down, a server without EVALSHA_RO.
        try:
            try:
                return await self._send(client, "EVALSHA_RO", script.sha1, script, keys, argv,
                                        {**options, "target_nodes": node})
            except redis_exc.NoScriptError:
                reply = await self._send(client, "EVAL_RO", script.source, script, keys, argv,
                                         {**options, "target_nodes": node})
                with contextlib.suppress(redis_exc.RedisError):
                    await client.execute_command("SCRIPT LOAD", script.source,
                                                 target_nodes=node)
                return reply
        except (redis_exc.ConnectionError, redis_exc.TimeoutError, redis_exc.AskError,
                redis_exc.ClusterDownError, redis_exc.TryAgainError):
            return _MISSED  # AskError covers MovedError
        except redis_exc.ResponseError as exc:
            if "unknown command" in str(exc).lower():  # Redis < 7.0: no EVALSHA_RO
                _NO_RO.add(client)
                return _MISSED
            raise

    async def _reload(self, client: Any, script: Script) -> None:
        # Keep the script in the server's cache (Redis 8 evicts scripts that only EVAL
        # brought in). The call already succeeded: a failure here must not be reported as
        # a failure of the call, and the next call recovers the same way.
        with contextlib.suppress(redis_exc.RedisError):
            await client.script_load(script.source)

    async def _translate(self, client: Any, script: Script, keys: tuple[Key, ...],
                         exc: redis_exc.ResponseError) -> Exception:
        if self.functions is not None:
            message = str(exc).lower()
            if "function not found" in message:
                return library_missing_error(self.functions, script.name, _where(client, keys))
            if "unknown command" in message and "fcall" in message:
                version = None
                with contextlib.suppress(redis_exc.RedisError):
                    version = await server_version(client)
                return no_functions_error(version, _where(client, keys), script.name)
            text = str(exc)
            located = self.functions.located_as_script(text)
            if located != text:  # the script's own line, as EVAL reports it
                exc = type(exc)(located)
        if is_wrong_type(str(exc)):  # raised directly, or inside a script on 6.2
            types: list[str | None] = []
            for key in keys:
                try:
                    t = await client.type(key)
                except redis_exc.RedisError:
                    t = None
                types.append(t.decode() if isinstance(t, bytes) else t)
            return wrong_type_error(script, keys, types)
        return script_error(script, keys, exc)


class AsyncBoundScript:
    """One script bound to one client (see :meth:`AsyncScriptRegistry.bind`).

    ``bound(keys, args)`` sends ``EVALSHA`` straight away; failures go through
    :meth:`AsyncScriptRegistry.recover`, so NOSCRIPT recovery and error mapping are the
    registry's own.
    """

    __slots__ = ("_client", "_execute", "_options", "_raw", "_registry", "script", "sha")

    def __init__(self, registry: AsyncScriptRegistry, client: Any, script: Script, *,
                 raw: bool = False) -> None:
        self._registry = registry
        execute = getattr(client, "execute_command", None)
        if not callable(execute):
            raise TypeError(f"client must be a redis-py client, got {type(client).__name__}")
        self._client = client
        self._execute = executor(client)  # auto-pipelined on an asyncio client
        self._raw = raw
        self._options = _RAW if raw else _DECODED
        self.script = script
        self.sha = script.sha1

    async def __call__(self, keys: tuple[Key, ...], args: tuple[Any, ...]) -> Any:
        """Run the script; the raw reply."""
        try:
            state = _otel.STATE
            if state is not None and state.tracing:  # the same call inside a span
                with _otel.script_span(state, self._client, "EVALSHA", self.script.name, keys):
                    return await self._execute(
                        "EVALSHA", self.sha, len(keys), *keys, *args, **self._options)
            return await self._execute("EVALSHA", self.sha, len(keys), *keys, *args,
                                       **self._options)
        except redis_exc.RedisError as exc:
            return await self._registry.recover(self._client, self.script, keys, args, exc,
                                                raw=self._raw)


class _VersionCheckedBoundScript(AsyncBoundScript):
    """A bound script that checks the server's version before each call (cached per client
    after the first): only for scripts whose header asks for more than the floor."""

    __slots__ = ()

    async def __call__(self, keys: tuple[Key, ...], args: tuple[Any, ...]) -> Any:
        await check_server(self._client, self.script)
        return await super().__call__(keys, args)


def _routed(client: Any, keys: tuple[Key, ...], options: dict[str, Any]) -> dict[str, Any]:
    # FCALL on a cluster client: sent to the primary of the first key's slot (redis-py
    # follows MOVED/ASK from there); redis-py's own routing when the slots are not known yet.
    try:
        node = client.nodes_manager.get_node_from_slot(client.keyslot(keys[0]))
    except (redis_exc.RedisError, redis_exc.RedisClusterException, LookupError):
        return options
    return {**options, "target_nodes": node}


class _BoundFunction(AsyncBoundScript):
    """A bound script in functions mode: ``FCALL``/``FCALL_RO`` of its function (routed by
    the registry on a cluster client)."""

    __slots__ = ("_cluster", "_command", "_function")

    def __init__(self, registry: AsyncScriptRegistry, client: Any, script: Script, *,
                 raw: bool = False) -> None:
        super().__init__(registry, client, script, raw=raw)
        self._command, self._function = registry._by_reference(script)
        self._cluster = _is_cluster(client)

    async def __call__(self, keys: tuple[Key, ...], args: tuple[Any, ...]) -> Any:
        """Run the function; the raw reply."""
        try:
            if self._cluster:
                return await self._registry._fcall(self._client, self.script, keys, args,
                                                   self._options)
            state = _otel.STATE
            if state is not None and state.tracing:
                with _otel.script_span(state, self._client, self._command, self.script.name,
                                       keys):
                    return await self._execute(self._command, self._function, len(keys),
                                               *keys, *args, **self._options)
            return await self._execute(self._command, self._function, len(keys), *keys,
                                       *args, **self._options)
        except redis_exc.RedisError as exc:
            return await self._registry.recover(self._client, self.script, keys, args, exc,
                                                raw=self._raw)


_DEFAULT: AsyncScriptRegistry | None = None


def default_registry() -> AsyncScriptRegistry:
    """The registry of the package's own scripts, created on first use and shared."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = AsyncScriptRegistry()
    return _DEFAULT
