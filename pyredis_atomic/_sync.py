"""The sync driver: performs the effects that core flows yield, on a redis-py client."""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Generator
from typing import Any, TypeVar

import redis
from redis import exceptions as redis_exc
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from . import otel as _otel
from ._core.calls import Block, Call, Durability, Sleep, check_wait_error
from ._core.lock import renewal_timeout, renewal_wait
from .registry import ScriptRegistry, default_registry

__all__ = ["CancelWatch", "Cancelled", "best_effort", "block_seconds", "block_slice", "drive",
           "perform", "run_bounded", "shield", "shielded", "warm_bounded"]

T = TypeVar("T")

MAX_BLOCK = 2.0

# What interrupts a sync call from outside (the asyncio twin: asyncio.CancelledError): the
# generated modules free what an interrupted call may have taken when it lands.
Cancelled = KeyboardInterrupt


class CancelWatch:
    """The asyncio driver's watch for a swallowed cancellation; a sync call cannot have
    one, so it never fires."""

    __slots__ = ()

    def requested(self) -> bool:
        """Always False."""
        return False


def shielded(clean_up: Callable[..., T], *args: Any) -> T:
    """``clean_up(*args)`` (the asyncio twin runs it in a task that a second cancellation
    cannot cut short)."""
    return clean_up(*args)


def best_effort(clean_up: Callable[..., Any], *args: Any) -> None:
    """Run ``clean_up(*args)``, ignoring its errors (the original error is what matters)."""
    with contextlib.suppress(Exception):
        clean_up(*args)


def shield(value: T) -> T:
    """``value`` as it is: a sync call has run to its end (the asyncio twin is
    ``asyncio.shield``)."""
    return value


def block_slice(client: Any) -> float:
    """The longest single ``BLPOP`` worth sending: well inside the client's socket timeout
    (redis-py cuts, and by default retries, calls that outlast it)."""
    kwargs: dict[str, Any] = {}
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        kwargs = getattr(pool, "connection_kwargs", {}) or {}
    else:
        manager = getattr(client, "nodes_manager", None)
        kwargs = getattr(manager, "connection_kwargs", {}) or {}
    timeout = kwargs.get("socket_timeout")
    if isinstance(timeout, (int, float)) and timeout > 0:
        return max(0.01, min(MAX_BLOCK, timeout * 0.5))
    return MAX_BLOCK


def perform(client: Any, effect: Any, registry: ScriptRegistry | None = None) -> Any:
    """Perform one effect and return its result."""
    if isinstance(effect, Call):
        return (registry or default_registry()).run(client, effect)
    if isinstance(effect, Block):
        if effect.then is not None:
            return _block_then(client, effect, effect.then, registry or default_registry())
        reply = _block(effect, lambda: client.execute_command(
            "BLPOP", effect.key, block_seconds(client, effect)))
        return None if reply is None else reply[1]
    if isinstance(effect, Sleep):
        time.sleep(effect.seconds)
        return None
    raise TypeError(f"unknown effect {effect!r}")


def block_seconds(client: Any, effect: Block) -> float:
    """The BLPOP timeout to send for ``effect`` (cut to the client's slice)."""
    return round(max(0.01, min(effect.seconds, block_slice(client))), 3)


def _block(effect: Block, send: Callable[[], Any], then: str | None = None) -> Any:
    """Run ``send`` (a BLPOP, alone or with script ``then`` behind it), mapping its
    failures (None: the wait ended early, see :func:`check_wait_error`)."""
    try:
        return send()
    except redis_exc.RedisError as exc:
        check_wait_error(exc, effect.key, then)
        return None


def _block_then(client: Any, effect: Block, call: Call[Any],
                registry: ScriptRegistry) -> Any:
    """BLPOP and ``call`` in one pipeline: Redis runs the call as soon as the wait ends.

    An error on the BLPOP (other than ``UNBLOCKED``) is raised as a plain wait's would be.
    An error reply of the call goes through the registry's recovery: on NOSCRIPT (nothing
    ran) the call is sent again as EVAL; any other error is mapped, never re-sent (a
    script that failed half-way may have written). Cluster clients wait and call in two
    steps.
    """
    if isinstance(client, RedisCluster):
        perform(client, Block(effect.key, effect.seconds), registry)
        return registry.run(client, call)
    script = registry.get(call.script)

    def send() -> Any:
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("BLPOP", effect.key, block_seconds(client, effect))
        registry.queue_cached(pipe, script, call)
        return pipe.execute(raise_on_error=False)

    command = registry.command_of(script)
    with _otel.pipelined_span(client, command, script.name, call.keys,
                              ("BLPOP", command)) as span:
        popped, reply = _block(effect, send, script.name)
        if isinstance(reply, Exception):
            _otel.reply_failed(span, reply)
    if isinstance(popped, redis_exc.ResponseError):
        check_wait_error(popped, effect.key)
    if isinstance(reply, Exception):
        reply = registry.recover(client, script, call.keys, call.args, reply, raw=call.raw)
    return call.decode(reply)


def drive(client: Any, flow: Generator[Any, Any, T], registry: ScriptRegistry | None = None,
          effects: Callable[[Any], Any] | None = None, watch: CancelWatch | None = None) -> T:
    """Run a flow to its end: send each effect's result (or error, including
    ``KeyboardInterrupt``, so the flow can free what it holds) back into it. ``effects``
    performs them if given (a primitive with effects of its own), else :func:`perform`.
    ``watch``: accepted for the asyncio twin's signature, unused."""
    try:
        effect = next(flow)
        while True:
            try:
                result = (effects(effect) if effects is not None
                          else perform(client, effect, registry))
            except BaseException as exc:  # let the flow decide; re-raised if not caught
                effect = flow.throw(exc)
            else:
                effect = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()


# -- calls bounded by a lease ---------------------------------------------------------------
class _Twin:
    """A client's twin for calls that must end by a deadline: the same server and options
    over a private pool, no retries, and socket/connect timeouts set before each call."""

    __slots__ = ("client", "pool", "socket_timeout", "warm")

    def __init__(self, client: Any) -> None:
        self.warm = False
        pool = client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        self.socket_timeout = kwargs.get("socket_timeout")
        # redis-py retries a failed call (3 times with backoff by default), each try up to
        # the socket timeout: that is how a renewal outlived its lease by seconds.
        kwargs["retry"] = Retry(NoBackoff(), 0)
        # A Sentinel pool's connections ask that pool (in connection_kwargs) for the master.
        self.pool = redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
        self.client = redis.Redis(connection_pool=self.pool)

    def within(self, seconds: float) -> Any:
        """The twin client, its timeouts within ``seconds`` of lease left."""
        timeout = renewal_timeout(seconds, self.socket_timeout)
        self.pool.connection_kwargs["socket_timeout"] = timeout
        self.pool.connection_kwargs["socket_connect_timeout"] = timeout
        # The idle connection (the renewer is its only user) keeps its socket: a new
        # timeout on it, not a new connection (a reconnect per renewal would be slow).
        for conn in getattr(self.pool, "_available_connections", ()):
            conn.socket_timeout = timeout
            conn.socket_connect_timeout = timeout
            sock = getattr(conn, "_sock", None)
            if sock is not None:
                sock.settimeout(timeout)
        return self.client


_TWINS: weakref.WeakKeyDictionary[Any, _Twin] = weakref.WeakKeyDictionary()


def _twin_of(client: Any, key: str | bytes | None) -> _Twin:
    target = client
    if isinstance(client, RedisCluster):
        node = client.get_node_from_key(key) if key else client.get_random_node()
        target = client.get_redis_connection(node)
    twin = _TWINS.get(target)
    if twin is None:
        twin = _TWINS[target] = _Twin(target)
    return twin


def warm_bounded(client: Any, seconds: float) -> None:
    """Connect the twin that :func:`run_bounded` will use (once per client), within
    ``seconds``: the first renewal then needs no connection handshake, which on a loaded
    machine can eat much of a short lease. A failure is left to the renewal; a cluster
    client's twins (one per node) connect on their first renewal."""
    if isinstance(client, RedisCluster) or not hasattr(client, "connection_pool"):
        return
    twin = _twin_of(client, None)
    if twin.warm:
        return
    with contextlib.suppress(redis_exc.RedisError, OSError):
        twin.within(seconds).ping()
        twin.warm = True


def run_bounded(client: Any, call: Call[T], seconds: float,
                registry: ScriptRegistry | None = None,
                durability: Durability | None = None) -> T:
    """Run ``call`` so that it ends within about ``seconds`` (a lease's time left), also
    when the server is unreachable: on a twin of ``client`` with its own connection, no
    retries and timeouts within ``seconds``. A cluster client's call goes to the twin of
    the node that holds the key (no redirections, so a failover in the cluster surfaces
    as an error, which the caller treats as a failed attempt). With ``durability``, the
    call is sent with ``WAIT`` (cut to fit in ``seconds``)."""
    twin = _twin_of(client, call.keys[0] if call.keys else None)
    registry = registry or default_registry()
    if durability is not None:
        return registry.run_durable(twin.within(seconds), call, durability.replicas,
                                    renewal_wait(seconds, durability.timeout))
    return registry.run(twin.within(seconds), call)
