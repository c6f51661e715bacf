"""The asyncio driver: performs the effects that core flows yield, on a redis.asyncio client."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from redis import exceptions as redis_exc

from .._core.calls import Block, Call, Flow, Sleep
from .._sync import block_slice
from ..errors import ConnectionLostError, ReplyTimeoutError
from .registry import AsyncScriptRegistry, default_registry

__all__ = ["drive", "perform"]

T = TypeVar("T")


async def perform(client: Any, effect: Any, registry: AsyncScriptRegistry | None = None) -> Any:
    """Perform one effect and return its result."""
    if isinstance(effect, Call):
        return await (registry or default_registry()).run(client, effect)
    if isinstance(effect, Block):
        seconds = max(0.01, min(effect.seconds, block_slice(client)))
        try:
            reply = await client.execute_command("BLPOP", effect.key, round(seconds, 3))
        except redis_exc.TimeoutError as exc:
            raise ReplyTimeoutError(f"waiting on {effect.key!r} timed out: {exc}",
                                    key=effect.key) from exc
        except redis_exc.ConnectionError as exc:
            raise ConnectionLostError(f"lost the connection waiting on {effect.key!r}: {exc}",
                                      key=effect.key) from exc
        return None if reply is None else reply[1]
    if isinstance(effect, Sleep):
        await asyncio.sleep(effect.seconds)
        return None
    raise TypeError(f"unknown effect {effect!r}")


async def drive(client: Any, flow: Flow[T], registry: AsyncScriptRegistry | None = None) -> T:
    """Run a flow to its end. Cancellation is thrown into the flow, so it can clean up
    what needs no I/O; anything held on the server is bounded by its lease."""
    try:
        effect = next(flow)
        while True:
            try:
                result = await perform(client, effect, registry)
            except Exception as exc:
                effect = flow.throw(exc)
            else:
                effect = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()
