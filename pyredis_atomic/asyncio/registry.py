"""The asyncio twin of :mod:`pyredis_atomic.registry`, for ``redis.asyncio`` clients.

Same discovery, arity checks, reply handling and NOSCRIPT recovery as the sync registry
(both build on :mod:`pyredis_atomic._core`); only the I/O is awaited.
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

from .._core.calls import (
    Call,
    Key,
    connection_error,
    durability_error,
    encode_args,
    script_error,
    timeout_error,
    wait_millis,
    wrong_type_error,
)
from .._core.script import Catalog, Script, parse_server_version
from ..registry import _DECODED, _RAW, BoundScript

__all__ = ["AsyncBoundScript", "AsyncScriptRegistry", "default_registry"]

T = TypeVar("T")

_NO_RO: weakref.WeakSet[Any] = weakref.WeakSet()
# Server version per client, as in the sync registry (read once, only for scripts whose
# header asks for more than BASE_REDIS).
_VERSIONS: weakref.WeakKeyDictionary[Any, tuple[int, ...] | None] = weakref.WeakKeyDictionary()


async def server_version(client: Any) -> tuple[int, ...] | None:
    """The (Redis-compatible) version of ``client``'s server, the oldest over a cluster's
    primaries; read once per client and cached. None when ``INFO`` is denied."""
    try:
        return _VERSIONS[client]
    except KeyError:
        pass
    try:
        found = []
        for target in await _targets(client):
            if isinstance(client, RedisCluster):
                info = await client.execute_command("INFO", "server", target_nodes=target)
            else:
                info = await target.info("server")
            found.append(parse_server_version(info))
        known = [v for v in found if v is not None]
        version = min(known) if known else None
    except redis_exc.ResponseError:  # INFO denied (ACL): the server answers for itself
        version = None
    _VERSIONS[client] = version
    return version


async def check_server(client: Any, script: Script) -> None:
    """Raise :class:`~pyredis_atomic.ServerVersionError` before ``script`` is sent to a
    server older than its header's ``Redis:`` (see the sync registry)."""
    if script.version_check:
        script.check_server(await server_version(client))


def _is_pipeline(client: Any) -> bool:
    return isinstance(client, (Pipeline, ClusterPipeline))


async def _targets(client: Any) -> list[Any]:
    if isinstance(client, RedisCluster):
        await client.initialize()  # a fresh cluster client knows no nodes yet; no-op after
        return list(client.get_primaries())
    return [client]


class AsyncScriptRegistry(Catalog):
    """The package's scripts (plus extra directories), runnable on ``redis.asyncio`` clients."""

    def __init__(self, directories: Iterable[str | Path] = (), *, builtin: bool = True) -> None:
        super().__init__(directories, builtin=builtin)

    async def load(self, client: Any, names: Iterable[str] | None = None) -> dict[str, str]:
        """``SCRIPT LOAD`` the scripts on the server or every cluster primary."""
        result: dict[str, str] = {}
        for target in await _targets(client):
            for name in names if names is not None else self.names():
                script = self.get(name)
                await check_server(client, script)
                if isinstance(client, RedisCluster):
                    sha = await client.execute_command("SCRIPT LOAD", script.source,
                                                       target_nodes=target)
                else:
                    sha = await target.script_load(script.source)
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
        for target in await _targets(client):
            if isinstance(client, RedisCluster):
                present = await client.execute_command("SCRIPT EXISTS", *shas,
                                                       target_nodes=target)
            else:
                present = await target.script_exists(*shas)
            absent.update(n for n, ok in zip(names, present, strict=True) if not ok)
        return sorted(absent)

    async def call(self, client: Any, name: str, keys: Sequence[Key] = (),
                   args: Sequence[Any] = ()) -> Any:
        """Run script ``name``; on a pipeline, queue it (as ``EVAL``) and return the pipeline."""
        script = self.get(name)
        keys = tuple(keys)
        argv = encode_args(args)
        script.check_arity(len(keys), len(argv))
        if _is_pipeline(client):
            client.execute_command("EVAL", script.source, len(keys), *keys, *argv)
            return client
        await check_server(client, script)
        return await self._run(client, script, keys, argv)

    async def run(self, client: Any, call: Call[T]) -> T:
        """Run a :class:`~pyredis_atomic._core.calls.Call` and decode its reply."""
        script = self.get(call.script)
        script.check_arity(len(call.keys), len(call.args))
        await check_server(client, script)
        return call.decode(await self._run(client, script, call.keys, call.args, call.raw))

    async def run_durable(self, client: Any, call: Call[T], replicas: int,
                          timeout: float) -> T:
        """Run ``call``, then ``WAIT`` for ``replicas`` replicas on the same connection
        (see :meth:`pyredis_atomic.registry.ScriptRegistry.run_durable`)."""
        script = self.get(call.script)
        script.check_arity(len(call.keys), len(call.args))
        await check_server(client, script)
        ms = wait_millis(replicas, timeout)
        if isinstance(client, RedisCluster):
            # WAIT counts the writes of its own connection, and redis.asyncio's cluster
            # client cannot pin a pipeline to one node's connection.
            raise TypeError("durability (WAIT) is not supported on redis.asyncio cluster "
                            "clients; use a sync RedisCluster or a standalone client")
        n = len(call.keys)
        try:
            for command, body in (("EVALSHA", script.sha1), ("EVAL", script.source)):
                pipe = client.pipeline(transaction=False)
                pipe.execute_command(command, body, n, *call.keys, *call.args)
                pipe.execute_command("WAIT", replicas, ms)
                reply, acknowledged = await pipe.execute(raise_on_error=False)
                if isinstance(reply, redis_exc.NoScriptError):
                    continue
                if isinstance(reply, redis_exc.ResponseError):
                    raise await self._translate(client, script, call.keys, reply) from reply
                if isinstance(reply, Exception):
                    raise reply
                if body is script.source:
                    await self._reload(client, script)
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
        """Queue a :class:`Call` on a ``redis.asyncio`` pipeline."""
        if not _is_pipeline(pipeline):
            raise TypeError(f"queue() wants a redis-py pipeline, got {type(pipeline).__name__}")
        script = self.get(call.script)
        script.check_arity(len(call.keys), len(call.args))
        pipeline.execute_command("EVAL", script.source, len(call.keys), *call.keys, *call.args)

    def bind(self, client: Any, name: str, *, raw: bool = False) -> AsyncBoundScript:
        """Script ``name`` bound to ``client``, for a primitive's hot path (a script whose
        header asks for a newer server than the package's floor checks it on its first call)."""
        script = self.get(name)
        if script.version_check:
            return _VersionCheckedBoundScript(self, client, script, raw=raw)
        return AsyncBoundScript(self, client, script, raw=raw)

    async def recover(self, client: Any, script: Script, keys: tuple[Key, ...],
                      argv: tuple[Any, ...], exc: Exception, *, raw: bool = False) -> Any:
        """Finish a call whose ``EVALSHA`` raised ``exc`` (see the sync registry)."""
        try:
            if not isinstance(exc, redis_exc.NoScriptError):
                raise exc
            reply = await client.execute_command("EVAL", script.source, len(keys), *keys,
                                                 *argv, **(_RAW if raw else _DECODED))
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
        if script.read_only and client not in _NO_RO and not isinstance(client, RedisCluster):
            try:
                return await client.execute_command("EVALSHA_RO", script.sha1, len(keys), *keys,
                                                    *argv, **options)
            except redis_exc.ResponseError as exc:
                if "unknown command" not in str(exc).lower():
                    raise
                _NO_RO.add(client)
        return await client.execute_command("EVALSHA", script.sha1, len(keys), *keys, *argv,
                                            **options)

    async def _reload(self, client: Any, script: Script) -> None:
        with contextlib.suppress(redis_exc.RedisError):
            await client.script_load(script.source)

    async def _translate(self, client: Any, script: Script, keys: tuple[Key, ...],
                         exc: redis_exc.ResponseError) -> Exception:
        if str(exc).startswith("WRONGTYPE"):
            types: list[str | None] = []
            for key in keys:
                try:
                    t = await client.type(key)
                except redis_exc.RedisError:
                    t = None
                types.append(t.decode() if isinstance(t, bytes) else t)
            return wrong_type_error(script, keys, types)
        return script_error(script, keys, exc)


class AsyncBoundScript(BoundScript):
    """One script bound to one ``redis.asyncio`` client (see :meth:`AsyncScriptRegistry.bind`);
    built like the sync :class:`~pyredis_atomic.registry.BoundScript`, called with ``await``."""

    __slots__ = ()

    async def __call__(
        self, keys: tuple[Key, ...], args: tuple[Any, ...]
    ) -> Any:
        """Run the script; the raw reply."""
        try:
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


_DEFAULT: AsyncScriptRegistry | None = None


def default_registry() -> AsyncScriptRegistry:
    """The asyncio registry of the package's own scripts, created on first use and shared."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = AsyncScriptRegistry()
    return _DEFAULT
