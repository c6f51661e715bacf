"""The asyncio driver: performs the effects that core flows yield, on a redis.asyncio client."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

import redis.asyncio
from redis import exceptions as redis_exc
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .. import otel as _otel
from .._core.calls import Block, Call, Durability, Sleep, check_wait_error
from .._core.lock import renewal_timeout, renewal_wait
from .._sync import block_seconds
from .registry import AsyncScriptRegistry, default_registry

__all__ = ["CancelWatch", "Cancelled", "best_effort", "drive", "perform", "run_bounded", "shield",
           "shielded", "warm_bounded"]

# What interrupts an asyncio call from outside (the sync twin: KeyboardInterrupt).
Cancelled = asyncio.CancelledError

# Protect an awaitable from the caller's cancellation (the sync twin returns its argument).
shield = asyncio.shield

T = TypeVar("T")


async def perform(client: Any, effect: Any, registry: AsyncScriptRegistry | None = None) -> Any:
    """Perform one effect and return its result (see the sync driver for the details)."""
    if isinstance(effect, Call):
        return await (registry or default_registry()).run(client, effect)
    if isinstance(effect, Block):
        if effect.then is not None:
            return await _block_then(client, effect, effect.then,
                                     registry or default_registry())
        reply = await _block(effect, _ended_by_cancel(client.execute_command(
            "BLPOP", effect.key, block_seconds(client, effect))))
        return None if reply is None else reply[1]
    if isinstance(effect, Sleep):
        await asyncio.sleep(effect.seconds)
        return None
    raise TypeError(f"unknown effect {effect!r}")


async def _ended_by_cancel(wait: Awaitable[Any]) -> Any:
    """Await a blocking command so that cancelling the caller ends it at once.

    redis.asyncio swallows a cancellation that lands before it has sent the command, which
    then blocks for its whole timeout (a BLPOP: up to the 2 s slice). So the command runs
    in a task of its own; when the caller is cancelled, that task is cancelled again until
    it has ended (a cancellation during the read drops the connection, which ends the
    BLPOP on the server too), then the caller's cancellation goes on. A few attempts at
    most (redis-py's own clean-up must not be cut short for ever); a wait that outlives
    them ends on its own, within its timeout.
    """
    task = asyncio.ensure_future(wait)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        for _ in range(RECANCELS):
            if task.done():
                break
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task], timeout=0.05)
        if task.done():
            _retrieve(task)
        else:
            _background.add(task)
            task.add_done_callback(_retrieve)
        raise


RECANCELS = 4


def _retrieve(task: asyncio.Future[Any]) -> None:
    # The abandoned wait's outcome is nobody's: mark it retrieved (no "never retrieved"
    # warning) and drop the strong reference.
    _background.discard(task)
    if not task.cancelled():
        task.exception()


async def _block(effect: Block, sent: Awaitable[Any], then: str | None = None) -> Any:
    try:
        return await sent
    except redis_exc.RedisError as exc:
        check_wait_error(exc, effect.key, then)
        return None


async def _block_then(client: Any, effect: Block, call: Call[Any],
                      registry: AsyncScriptRegistry) -> Any:
    """BLPOP and ``call`` pipelined (see the sync driver's ``_block_then``)."""
    if isinstance(client, RedisCluster):
        await perform(client, Block(effect.key, effect.seconds), registry)
        return await registry.run(client, call)
    script = registry.get(call.script)
    pipe = client.pipeline(transaction=False)
    pipe.execute_command("BLPOP", effect.key, block_seconds(client, effect))
    registry.queue_cached(pipe, script, call)
    command = registry.command_of(script)
    with _otel.pipelined_span(client, command, script.name, call.keys,
                              ("BLPOP", command)) as span:
        popped, reply = await _block(
            effect, _ended_by_cancel(pipe.execute(raise_on_error=False)), script.name)
        if isinstance(reply, Exception):
            _otel.reply_failed(span, reply)
    if isinstance(popped, redis_exc.ResponseError):
        check_wait_error(popped, effect.key)
    if isinstance(reply, Exception):
        reply = await registry.recover(client, script, call.keys, call.args, reply,
                                       raw=call.raw)
    return call.decode(reply)


class CancelWatch:
    """Notices a cancellation of the current task that redis.asyncio swallowed.

    redis.asyncio (measured with redis-py 8.1) loses a cancellation that arrives before a
    command is sent: the command then runs to its end (a BLPOP for its full timeout) and
    returns normally. Drivers ask :meth:`requested` between two effects so the cancellation
    is not lost. Only requests made after the watch was created count (a task may carry
    older ones that its code chose to suppress). Python 3.11+; never fires before.
    """

    __slots__ = ("_base", "_cancelling")

    def __init__(self) -> None:
        self._cancelling = getattr(asyncio.current_task(), "cancelling", None)
        self._base = self._cancelling() if self._cancelling is not None else 0

    def requested(self) -> bool:
        """True once the task has been asked to cancel since the watch began."""
        return self._cancelling is not None and self._cancelling() > self._base


async def shielded(clean_up: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``clean_up(*args)`` to its end even if the caller is cancelled again meanwhile:
    the cancellation is raised once the clean-up has finished, so a cancelled task never
    ends with its clean-up still pending (the sync twin just calls it)."""
    return await _shielded(clean_up(*args))  # type: ignore[no-any-return]


async def _shielded(coro: Awaitable[Any]) -> Any:
    """:func:`shielded` for an awaitable already made. A strong reference keeps the task
    alive should even the wait for it be cancelled."""
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


_background: set[asyncio.Future[Any]] = set()


async def best_effort(clean_up: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """Run ``clean_up(*args)`` shielded, ignoring its errors and a second cancellation
    meanwhile (the original error is what matters; the clean-up goes on in the
    background)."""
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.shield(clean_up(*args))


async def drive(client: Any, flow: Generator[Any, Any, T],
                registry: AsyncScriptRegistry | None = None,
                effects: Callable[[Any], Awaitable[Any]] | None = None,
                watch: CancelWatch | None = None) -> T:
    """Run a flow to its end; ``effects`` performs them if given (a primitive with effects
    of its own), else :func:`perform`.

    Errors, including ``CancelledError``, are thrown into the flow, so it can free what its
    last step may have taken. A cancellation requested while an effect ran is thrown in
    after it, even when redis.asyncio swallowed it (see :class:`CancelWatch`). Effects
    after a cancellation (clean-up) run shielded. Anything held on the server is bounded by
    its lease in any case. ``watch``: one the caller created before its own first call
    (so a cancellation swallowed there still counts).
    """
    watch = watch or CancelWatch()
    cancelled = False
    try:
        effect = next(flow)
        while True:
            try:
                step = (effects(effect) if effects is not None
                        else perform(client, effect, registry))
                result = await (_shielded(step) if cancelled else step)
            except BaseException as exc:  # let the flow decide; re-raised if not caught
                if isinstance(exc, asyncio.CancelledError):
                    cancelled = True
                elif not cancelled and watch.requested():
                    cancelled = True
                    exc = asyncio.CancelledError()
                effect = flow.throw(exc)
            else:
                if not cancelled and watch.requested():
                    cancelled = True
                    effect = flow.throw(asyncio.CancelledError())
                else:
                    effect = flow.send(result)
    except StopIteration as stop:
        if cancelled:
            # The flow cleaned up and returned: the cancellation still stands.
            raise asyncio.CancelledError() from None
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()


# -- calls bounded by a lease (see the sync driver) -----------------------------------------
class _Twin:
    """A client's twin for calls that must end by a deadline: its own pool, no retries,
    socket and connect timeouts set before each call."""

    __slots__ = ("client", "pool", "socket_timeout", "warm")

    def __init__(self, client: Any) -> None:
        self.warm = False
        pool = client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        self.socket_timeout = kwargs.get("socket_timeout")
        kwargs["retry"] = Retry(NoBackoff(), 0)
        self.pool = redis.asyncio.ConnectionPool(connection_class=pool.connection_class,
                                                 **kwargs)
        self.client = redis.asyncio.Redis(connection_pool=self.pool)

    def within(self, seconds: float) -> Any:
        timeout = renewal_timeout(seconds, self.socket_timeout)
        self.pool.connection_kwargs["socket_timeout"] = timeout
        self.pool.connection_kwargs["socket_connect_timeout"] = timeout
        # redis.asyncio reads a connection's socket_timeout at every read: set it on the
        # idle connection rather than making a new one.
        for conn in getattr(self.pool, "_available_connections", ()):
            conn.socket_timeout = timeout
            conn.socket_connect_timeout = timeout
        return self.client


_TWINS: weakref.WeakKeyDictionary[Any, _Twin] = weakref.WeakKeyDictionary()


async def warm_bounded(client: Any, seconds: float) -> None:
    """Connect the twin :func:`run_bounded` will use (once per client), within
    ``seconds`` (see the sync driver). A failure is left to the renewal."""
    if isinstance(client, RedisCluster) or not hasattr(client, "connection_pool"):
        return
    twin = _TWINS.get(client)
    if twin is None:
        twin = _TWINS[client] = _Twin(client)
    if twin.warm:
        return
    with contextlib.suppress(redis_exc.RedisError, OSError):
        await twin.within(seconds).ping()
        twin.warm = True


async def run_bounded(client: Any, call: Call[T], seconds: float,
                      registry: AsyncScriptRegistry | None = None,
                      durability: Durability | None = None) -> T:
    """Run ``call`` so that it ends within about ``seconds`` (a lease's time left), also
    when the server is unreachable: on a twin of ``client`` with its own connection, no
    retries and timeouts within ``seconds``. A cluster client keeps its own routing, cut
    by ``asyncio.wait_for`` at ``seconds`` (a late reply is dropped with its connection)."""
    registry = registry or default_registry()

    def run(target: Any) -> Awaitable[T]:
        if durability is None:
            return registry.run(target, call)
        return registry.run_durable(target, call, durability.replicas,
                                    renewal_wait(seconds, durability.timeout))

    if isinstance(client, RedisCluster) or not hasattr(client, "connection_pool"):
        try:
            return await asyncio.wait_for(run(client), seconds)
        except asyncio.TimeoutError as exc:
            raise redis_exc.TimeoutError(f"no reply within {seconds:.3f} s") from exc
    twin = _TWINS.get(client)
    if twin is None:
        twin = _TWINS[client] = _Twin(client)
    return await run(twin.within(seconds))
