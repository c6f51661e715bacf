"""The sync driver: performs the effects that core flows yield, on a redis-py client."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from redis import exceptions as redis_exc
from redis.client import NEVER_DECODE
from redis.cluster import RedisCluster

from ._core.calls import Block, Call, Sleep
from .errors import ConnectionLostError, ReplyTimeoutError
from .registry import ScriptRegistry, default_registry

__all__ = ["block_seconds", "block_slice", "drive", "perform"]

T = TypeVar("T")

MAX_BLOCK = 2.0


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


def _block(effect: Block, send: Callable[[], Any]) -> Any:
    """Run ``send`` (a BLPOP, alone or with a call behind it), mapping its failures."""
    try:
        return send()
    except redis_exc.TimeoutError as exc:
        raise ReplyTimeoutError(f"waiting on {effect.key!r} timed out: {exc}",
                                key=effect.key) from exc
    except redis_exc.ConnectionError as exc:
        raise ConnectionLostError(f"lost the connection waiting on {effect.key!r}: {exc}",
                                  key=effect.key) from exc
    except redis_exc.ResponseError as exc:
        # A failover turned the node into a replica and Redis ended the wait
        # ("UNBLOCKED ..."): nothing was popped, so it is a wait that ended early. The
        # flow re-checks and re-sends its call, which cluster routing takes to the new
        # primary.
        if not str(exc).startswith("UNBLOCKED"):
            raise
        return None


def _block_then(client: Any, effect: Block, call: Call[Any],
                registry: ScriptRegistry) -> Any:
    """BLPOP and ``call`` in one pipeline: Redis runs the call as soon as the wait ends.

    Calls that follow a wait are retry-safe by design (a lock's acquire, a queue's claim),
    so when the pipelined call failed in any way (NOSCRIPT after a script flush, an error
    reply) it is simply sent again through the registry, which recovers or maps the error.
    Cluster clients wait and call in two steps.
    """
    if isinstance(client, RedisCluster):
        perform(client, Block(effect.key, effect.seconds), registry)
        return registry.run(client, call)
    script = registry.get(call.script)

    def send() -> Any:
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("BLPOP", effect.key, block_seconds(client, effect))
        pipe.execute_command("EVALSHA", script.sha1, len(call.keys), *call.keys, *call.args,
                             **({NEVER_DECODE: True} if call.raw else {}))
        return pipe.execute(raise_on_error=False)

    replies = _block(effect, send)
    reply = replies[1] if isinstance(replies, list) else None
    if reply is None or isinstance(reply, Exception):
        return registry.run(client, call)
    return call.decode(reply)


def drive(client: Any, flow: Generator[Any, Any, T], registry: ScriptRegistry | None = None,
          effects: Callable[[Any], Any] | None = None) -> T:
    """Run a flow to its end: send each effect's result (or error, including
    ``KeyboardInterrupt``, so the flow can free what it holds) back into it. ``effects``
    performs them if given (a primitive with effects of its own), else :func:`perform`."""
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
