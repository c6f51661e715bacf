"""The near cache's invalidation listener for ``redis.asyncio`` clients: a task (one per
primary node on a cluster) on the loop that first used the cache. Hand-written: the sync
twin, a thread, is :mod:`pyredis_atomic._near`, whose docstring describes the protocol;
the shared logic is :mod:`pyredis_atomic._core.near`.

If the loop is blocked (or the task starved) for longer than ``max_staleness``, no pong is
read in time and hits go to Redis until it catches up: a blocked loop never makes a near
cache serve a value older than the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from redis.asyncio.cluster import RedisCluster

from .._core.near import (
    INVALIDATE_CHANNEL,
    LISTENER_NAME,
    MISS,
    Heartbeat,
    NearStore,
    invalidation,
    listener_kwargs,
    pong_payload,
)

__all__ = ["Flight", "Tracker", "settle", "wait_flight"]

log = logging.getLogger("pyredis_atomic.near")

BACKOFF = (0.05, 1.0)

Flight = asyncio.Event


async def wait_flight(flight: asyncio.Event, timeout: float | None) -> bool:
    """Wait for the caller that loads a key for this process (True: it finished)."""
    try:
        await asyncio.wait_for(flight.wait(), timeout)
    except asyncio.TimeoutError:
        return False
    return True


async def settle(store: NearStore, key: str, generation: int, timeout: float = 0.05) -> None:
    """Wait (at most ``timeout``) for the invalidation of a write this caller just made to
    ``key`` to be applied: a read that began before it would not be kept."""
    end = time.monotonic() + timeout
    # polled: an event per key would cost every invalidation a lookup; this runs only after
    # a caller's own fill, for a few milliseconds
    while not store.settled(key, generation) and time.monotonic() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.001)


class _Broken(Exception):
    """The tracking connection cannot be trusted any more."""


async def _targets(client: Any) -> list[tuple[str, Any, dict[str, Any]]]:
    """``(name, connection class, connection kwargs)`` of every primary to listen to."""
    if isinstance(client, RedisCluster):
        await client.initialize()
        return [(node.name, node.connection_class, dict(node.connection_kwargs))
                for node in client.get_primaries()]
    pool = client.connection_pool
    return [("standalone", pool.connection_class, dict(pool.connection_kwargs))]


class Tracker:
    """Keeps one :class:`NearStore` invalidated by the server, from a task."""

    def __init__(self, client: Any, store: NearStore) -> None:
        self.client = client
        self.store = store
        self._cluster = isinstance(client, RedisCluster)
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    def ensure_started(self) -> None:
        """Start the listener task on the running loop if it is not running."""
        if self._closed:
            return
        task = self._task
        if task is not None and not task.done():
            return
        if task is not None:
            self.store.clear()  # nothing proves what the previous task (or loop) kept
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name="pyredis-atomic-near")

    def covers(self) -> bool:
        """Whether every primary the client knows is listened to (see NearStore.covers)."""
        return not self._cluster or self.store.covers(
            node.name for node in self.client.get_primaries())

    async def close(self) -> None:
        """Stop listening (the store is cleared; hits are no longer served locally)."""
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            # bounded: the tasks also stop on their own at ``_closed`` (within a heartbeat),
            # should a cancellation be lost on the way (one was, in a 16-process stampede
            # test: close() then waited forever while the node task kept heartbeating)
            await asyncio.wait({task}, timeout=5)
            if not task.done():
                log.warning("near cache %r: the listener did not stop within 5 s",
                            self.store.head)
        self.store.clear()

    def abandon(self) -> None:
        """The cache was collected: stop without waiting (from a finalizer)."""
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                task.get_loop().call_soon_threadsafe(task.cancel)

    async def _run(self) -> None:
        delay = BACKOFF[0]
        last = ""
        while not self._closed:
            began = time.monotonic()
            try:
                await self._session()
            except Exception as exc:
                # the first failure of a kind is a warning; its repeats (a server that
                # stays down, an ACL without CLIENT or SUBSCRIBE) are not logged again
                quiet = repr(exc) == last and time.monotonic() - began < 5
                (log.debug if quiet else log.warning)(
                    "near cache %r: invalidation listener stopped (%r); local values cleared, "
                    "reads go to Redis until it is back", self.store.head, exc)
                last = repr(exc)
            self.store.clear()
            if time.monotonic() - began > 5:
                delay = BACKOFF[0]
            await asyncio.sleep(delay)
            delay = min(BACKOFF[1], delay * 2)
            if self._cluster:
                await self._refresh()

    async def _refresh(self) -> None:
        # see the sync twin: a primary demoted behind the client's back stays "primary"
        # to redis-py until one of its own commands is redirected
        try:
            await self.client.nodes_manager.initialize()
        except Exception as exc:  # the next session reports what is wrong
            log.debug("near cache: refreshing the cluster's topology failed: %r", exc)

    async def _session(self) -> None:
        targets = await _targets(self.client)
        self.store.expect_nodes([name for name, _, _ in targets])
        tasks = [asyncio.ensure_future(self._node(*t)) for t in targets]
        names = sorted(name for name, _, _ in targets)
        cluster = isinstance(self.client, RedisCluster)
        try:
            while not self._closed:
                done, _ = await asyncio.wait(tasks, timeout=0.05,
                                             return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    t.result()  # raises what ended it
                if done:
                    return
                if cluster and sorted(n.name for n in self.client.get_primaries()) != names:
                    raise _Broken("the cluster's primaries changed")
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    async def _node(self, name: str, cls: Any, kwargs: dict[str, Any]) -> None:
        store = self.store
        settings = listener_kwargs(kwargs)
        conn = cls(**settings)
        probe = cls(**{**settings, "client_name": LISTENER_NAME + "-probe"})
        reading: asyncio.Future[Any] | None = None
        try:
            await conn.connect()
            await probe.connect()
            await probe.send_command("ROLE")
            _check_role(await probe.read_response(), name)
            await conn.send_command("CLIENT", "ID")
            cid = await conn.read_response()
            await conn.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", cid, "BCAST",
                                    "PREFIX", store.head)
            if await conn.read_response() != b"OK":
                raise _Broken("CLIENT TRACKING was refused")
            await conn.send_command("SUBSCRIBE", INVALIDATE_CHANNEL)
            reply = await conn.read_response()
            if not (isinstance(reply, list) and reply[0] == b"subscribe"):
                raise _Broken(f"unexpected reply to SUBSCRIBE: {reply!r}")
            hb = Heartbeat(store.config.max_staleness, last=float("-inf"))
            while not self._closed:
                now = time.monotonic()
                if hb.late(now):
                    raise _Broken(f"no pong within {2 * hb.max_staleness:g} s")
                if hb.due(now):
                    await probe.send_command("ROLE")
                    await conn.send_command("PING", hb.ping(now))
                if reading is None:
                    # one read stays pending across timeouts: a read cut by a timeout
                    # could leave half a message in the parser
                    reading = asyncio.ensure_future(conn.read_response())
                done, _ = await asyncio.wait({reading}, timeout=hb.wait(time.monotonic()))
                if not done:
                    continue
                reply, reading = reading.result(), None
                found, keys = invalidation(reply)
                if found:
                    store.invalidated(keys)
                    continue
                payload = pong_payload(reply)
                if payload is MISS:
                    raise _Broken(f"unexpected message on the tracking connection: "
                                  f"{reply!r}")
                try:
                    sent = hb.pong(payload)
                except ValueError as exc:
                    raise _Broken(str(exc)) from exc
                _check_role(await probe.read_response(), name)
                store.proven(name, sent)
        finally:
            if reading is not None:
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reading
            for c in (conn, probe):
                with contextlib.suppress(Exception):
                    await c.disconnect()


def _check_role(reply: Any, name: str) -> None:
    if not (isinstance(reply, list) and reply and reply[0] == b"master"):
        raise _Broken(f"node {name} is not a primary (ROLE: {reply!r:.80})")
