"""The near cache's invalidation listener for redis-py clients: a daemon thread (one per
primary node on a cluster). Hand-written: the asyncio twin, a task, is
:mod:`pyredis_atomic.asyncio._near`; what they share (the store, the heartbeat rule, the
message decoding) is :mod:`pyredis_atomic._core.near`.

Per node the listener opens two connections of the client's own connection class and
settings (so TLS, auth and the db carry over), never retried behind its back:
the *tracking* connection (RESP2, ``CLIENT TRACKING ON REDIRECT <itself> BCAST PREFIX
<head>``, subscribed to ``__redis__:invalidate``) and a *probe* that asks ``ROLE`` with
every heartbeat, so a node that stops being a primary (a failover) ends the session.
Any failure ends the session: the store is cleared and bypassed, and the listener
reconnects with a backoff (50 ms doubling to 1 s).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any

from redis.cluster import RedisCluster

from ._core.near import (
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

POLL = 0.05  # longest a node thread blocks before it looks at its stop flag
BACKOFF = (0.05, 1.0)

Flight = threading.Event


def wait_flight(flight: threading.Event, timeout: float | None) -> bool:
    """Wait for the caller that loads a key for this process (True: it finished)."""
    return flight.wait(timeout)


def settle(store: NearStore, key: str, generation: int, timeout: float = 0.05) -> None:
    """Wait (at most ``timeout``) for the invalidation of a write this caller just made to
    ``key`` to be applied: a read that began before it would not be kept."""
    end = time.monotonic() + timeout
    while not store.settled(key, generation) and time.monotonic() < end:
        time.sleep(0.001)


class _Broken(Exception):
    """The tracking connection cannot be trusted any more."""


def _targets(client: Any) -> list[tuple[str, Any, dict[str, Any]]]:
    """``(name, connection class, pool kwargs)`` of every primary to listen to."""
    if isinstance(client, RedisCluster):
        out = []
        for node in client.get_primaries():
            pool = node.redis_connection.connection_pool
            out.append((node.name, pool.connection_class, dict(pool.connection_kwargs)))
        return out
    pool = client.connection_pool
    return [("standalone", pool.connection_class, dict(pool.connection_kwargs))]


class Tracker:
    """Keeps one :class:`NearStore` invalidated by the server, from a daemon thread."""

    def __init__(self, client: Any, store: NearStore) -> None:
        self.client = client
        self.store = store
        self._cluster = isinstance(client, RedisCluster)
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        _LIVE.add(self)

    def ensure_started(self) -> None:
        """Start the listener if it is not running (cheap when it is)."""
        if self._thread is not None or self._closed.is_set():
            return
        with self._start_lock:
            if self._thread is None and not self._closed.is_set():
                t = threading.Thread(target=self._run, name="pyredis-atomic-near",
                                     daemon=True)
                t.start()
                self._thread = t

    def covers(self) -> bool:
        """Whether every primary the client knows is listened to (see NearStore.covers)."""
        return not self._cluster or self.store.covers(
            node.name for node in self.client.get_primaries())

    def close(self) -> None:
        """Stop listening (the store is cleared; hits are no longer served locally)."""
        self._closed.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(5)
        self.store.clear()

    def abandon(self) -> None:
        """The cache was collected: stop without waiting (from a finalizer)."""
        self._closed.set()

    def _after_fork(self) -> None:
        # The child has the parent's entries but not its thread: nothing proves them.
        self.store.clear()
        self._thread = None
        self._start_lock = threading.Lock()

    # -- the thread -------------------------------------------------------------------------
    def _run(self) -> None:
        delay = BACKOFF[0]
        last = ""
        while not self._closed.is_set():
            began = time.monotonic()
            try:
                self._session()
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
            if self._closed.wait(delay):
                return
            delay = min(BACKOFF[1], delay * 2)
            if self._cluster:
                self._refresh()

    def _refresh(self) -> None:
        # The client's view of the primaries may be what broke the session: a primary
        # demoted behind its back (a failover, or Redis 7 making a node that gave away its
        # last slot a replica) stays "primary" to redis-py until one of its own commands
        # is redirected, and the next session would fail on it again, forever bypassing
        # the near cache of a client whose reads all go elsewhere.
        try:
            self.client.nodes_manager.initialize()
        except Exception as exc:  # the next session reports what is wrong
            log.debug("near cache: refreshing the cluster's topology failed: %r", exc)

    def _session(self) -> None:
        targets = _targets(self.client)
        self.store.expect_nodes([name for name, _, _ in targets])
        if len(targets) == 1:
            self._node(*targets[0], stop=self._closed)
            return
        stop = threading.Event()
        errors: list[BaseException] = []

        def run(target: tuple[str, Any, dict[str, Any]]) -> None:
            try:
                self._node(*target, stop=stop)
            except BaseException as exc:  # reported to the session below
                errors.append(exc)
            finally:
                stop.set()

        threads = [threading.Thread(target=run, args=(t,), daemon=True,
                                    name=f"pyredis-atomic-near-{t[0]}") for t in targets]
        for t in threads:
            t.start()
        names = sorted(name for name, _, _ in targets)
        try:
            while not stop.wait(POLL):
                if self._closed.is_set():
                    return
                # a primary the client learned of (failover, resharding) is not listened to
                if sorted(n.name for n in self.client.get_primaries()) != names:
                    raise _Broken("the cluster's primaries changed")
        finally:
            stop.set()
            for t in threads:
                t.join(5)
        if errors:
            raise errors[0]

    def _node(self, name: str, cls: Any, kwargs: dict[str, Any], *,
              stop: threading.Event) -> None:
        store = self.store
        settings = listener_kwargs(kwargs)
        conn = cls(**settings)
        probe = cls(**{**settings, "client_name": LISTENER_NAME + "-probe"})
        try:
            conn.connect()
            probe.connect()
            probe.send_command("ROLE")
            _check_role(probe.read_response(), name)
            conn.send_command("CLIENT", "ID")
            cid = conn.read_response()
            conn.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", cid, "BCAST", "PREFIX",
                              store.head)
            if conn.read_response() != b"OK":
                raise _Broken("CLIENT TRACKING was refused")
            conn.send_command("SUBSCRIBE", INVALIDATE_CHANNEL)
            reply = conn.read_response()
            if not (isinstance(reply, list) and reply[0] == b"subscribe"):
                raise _Broken(f"unexpected reply to SUBSCRIBE: {reply!r}")
            hb = Heartbeat(store.config.max_staleness, last=float("-inf"))
            while not stop.is_set():
                now = time.monotonic()
                if hb.late(now):
                    raise _Broken(f"no pong within {2 * hb.max_staleness:g} s")
                if hb.due(now):
                    probe.send_command("ROLE")
                    conn.send_command("PING", hb.ping(now))
                if not conn.can_read(min(POLL, hb.wait(time.monotonic()))):
                    continue
                reply = conn.read_response()
                found, keys = invalidation(reply)
                if found:
                    store.invalidated(keys)
                    continue
                payload = pong_payload(reply)
                if payload is MISS:
                    # e.g. a plain PONG: the connection was re-made without tracking
                    raise _Broken(f"unexpected message on the tracking connection: "
                                  f"{reply!r}")
                try:
                    sent = hb.pong(payload)
                except ValueError as exc:
                    raise _Broken(str(exc)) from exc
                _check_role(probe.read_response(), name)
                store.proven(name, sent)
        finally:
            for c in (conn, probe):
                try:
                    c.disconnect()
                except Exception:  # closing is best effort
                    log.debug("near cache: closing a listener connection failed", exc_info=True)


def _check_role(reply: Any, name: str) -> None:
    if not (isinstance(reply, list) and reply and reply[0] == b"master"):
        raise _Broken(f"node {name} is not a primary (ROLE: {reply!r:.80})")


_LIVE: weakref.WeakSet[Tracker] = weakref.WeakSet()


def _reset_in_child() -> None:
    for tracker in list(_LIVE):
        tracker._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
