# GENERATED from pyredis_atomic/asyncio/semaphore.py by scripts/unasync.py: do not edit.
"""``Semaphore``: at most ``limit`` holders at once, cluster-wide; crashed holders' slots
come back when their lease ends.

The racy recipe it replaces: a counter of held slots (``INCR`` to enter, ``DECR`` to
leave) that leaks a slot forever whenever a holder crashes between the two, plus
fixed-sleep polling by the waiters.
"""

from __future__ import annotations

from types import TracebackType

from ._core.keys import DEFAULT_PREFIX
from ._core.reports import SemaphoreHolder, SemaphoreInfo
from ._core.semaphore import (
    DEFAULT_TTL,
    SemaphoreConfig,
    SemaphoreSpec,
    acquire_flow,
    pop_held,
    push_held,
)
from ._runtime import Client, check_client
from ._sync import best_effort, drive, shield
from .errors import ConnectionLostError, SemaphoreLostError, SemaphoreTimeoutError
from .registry import ScriptRegistry, default_registry

__all__ = ["Semaphore"]

class Semaphore:
    """A counting semaphore: at most ``limit`` permits are held at once.

    Each permit is a random id with a lease of ``ttl`` seconds (server clock): a holder
    that crashes frees its slot when the lease ends; a live holder that needs longer
    calls :meth:`extend`. Waiters block on a Redis list that each release signals (no
    fixed-sleep polling), bounded by the earliest lease end. ``timeout``: how long
    ``with sem:`` waits (None: forever). ``prefix``: key namespace. ``registry``: the
    script registry to run on (default: the package's).

    Stored configuration: the first acquire stores ``limit`` next to the holders
    (``<prefix>semaphore:{<name>}:config``, kept for good) and every later acquire, from
    any client in any language, is checked against it inside the script: a semaphore
    built with another limit raises :class:`~pyredis_atomic.ConfigMismatchError` and
    takes nothing (so no caller can hold more than the stored limit). :meth:`reconfigure`
    changes it. Release and extend are not checked (they never take a slot).

    Keys: ``<prefix>semaphore:{<name>}:holders`` (zset), ``...:signal`` (list) and
    ``...:config`` (string).
    """


    def __init__(self, client: Client, name: str, limit: int, ttl: float = DEFAULT_TTL, *,
                 timeout: float | None = None, prefix: str = DEFAULT_PREFIX,
                 registry: ScriptRegistry | None = None) -> None:
        client = check_client(client)
        self._spec = SemaphoreSpec(name, limit, ttl, timeout=timeout, prefix=prefix)
        self._client = client
        self._registry = registry or default_registry()
        self._count = self._spec.count_call()
        self._holders = self._spec.holders_call()


    @property
    def name(self) -> str:
        """The semaphore's name."""
        return self._spec.name

    @property
    def limit(self) -> int:
        """How many permits may be held at once."""
        return self._spec.limit

    @property
    def ttl(self) -> float:
        """Lease of a permit, in seconds."""
        return self._spec.ttl

    @property
    def key(self) -> str:
        """The sorted set of live permits."""
        return self._spec.holders_key

    def __repr__(self) -> str:
        return f"Semaphore{self._spec.describe()}"

    def acquire(self, blocking: bool = True, timeout: float | None = None, *,
                permit: str | None = None) -> str | None:
        """Take a permit; return its id, or None if none came free in time.

        ``blocking=False``: one attempt. ``timeout``: seconds to wait (None: forever).
        ``permit``: the id to use (default: a fresh random one). Re-sending is safe: an
        acquire re-sent with the same ``permit`` (e.g. after a lost reply) holds one slot,
        not two, and renews its lease. If the call fails midway (timeout, interrupt), the
        permit is released on a best-effort basis and in any case expires after ``ttl``.
        """
        blocking, timeout, permit = self._spec.acquire_args(blocking, timeout, permit)
        try:
            flow = acquire_flow(self._spec, permit, blocking, timeout)
            return drive(self._client, flow, self._registry)
        except ConnectionLostError:
            raise  # the server is out of reach: the lease frees the slot
        except BaseException:
            self._abandon(permit)
            raise

    def _abandon(self, permit: str) -> None:
        # An attempt may have been applied before it failed: give the slot back now rather
        # than after the lease. Best effort only; the original error is what matters.
        best_effort(self.release, permit)

    def release(self, permit: str) -> bool:
        """Give a permit back and wake one waiter. True if it was held; False if it was
        already released or its lease had ended (so releasing twice is harmless, and
        re-sending a release is safe)."""
        return self._registry.run(self._client, self._spec.release_call(permit))

    def extend(self, permit: str, ttl: float | None = None) -> bool:
        """Renew a held permit's lease to ``ttl`` seconds from now (default: the
        semaphore's ``ttl``). False if the permit was released or had expired: it must
        not be used any more. Re-sending is safe."""
        return self._registry.run(self._client, self._spec.extend_call(permit, ttl))

    def count(self) -> int:
        """How many permits are held now (expired leases not counted)."""
        return self._registry.run(self._client, self._count)

    def holders(self) -> list[SemaphoreHolder]:
        """The live permits and the seconds left on their leases, earliest end first."""
        return self._registry.run(self._client, self._holders)

    def inspect(self) -> SemaphoreInfo:
        """The semaphore's state as the server has it: its stored limit, the permits held
        and their leases (read-only; two reads, so a permit may come or go between them)."""
        holders = self.holders()
        stored = self.stored_config()
        return SemaphoreInfo(self._spec.name, None if stored is None else stored.limit,
                             len(holders), tuple(holders))

    @property
    def config(self) -> SemaphoreConfig:
        """This semaphore's configuration (what its acquires send; see
        :meth:`stored_config` for what the server holds)."""
        return self._spec.config

    def stored_config(self) -> SemaphoreConfig | None:
        """The configuration stored with the semaphore (None: none stored yet; the next
        acquire or :meth:`reconfigure` stores one). Read-only."""
        return self._registry.run(self._client, self._spec.config_call())

    def reconfigure(self, limit: int) -> SemaphoreConfig | None:
        """Replace the stored limit and use it from now on; return the previous stored
        configuration (None if there was none).

        Permits are never revoked: when more permits are live than the new limit, nothing
        changes and :class:`~pyredis_atomic.ScriptError` (code ``OUTOFBOUNDS``) is raised
        (retry once enough were released or their leases ended), so the semaphore never
        holds more than its stored limit. A raised limit wakes waiters for the slots now
        free. Other clients still built with the old limit get
        :class:`~pyredis_atomic.ConfigMismatchError` on acquire from then on. Re-sending
        is harmless.
        """
        spec = self._spec.reconfigured(limit)
        previous = self._registry.run(self._client, spec.reconfigure_call())
        self._spec = spec
        return previous

    def __enter__(self) -> str:
        permit = self.acquire(True, self._spec.timeout)
        if permit is None:
            raise SemaphoreTimeoutError(
                f"no permit of semaphore {self.name!r} (limit {self.limit}) came free "
                f"within {self._spec.timeout} s", key=self._spec.holders_key)
        push_held(self, permit)
        return permit

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        permit = pop_held(self)
        released = shield(self.release(permit))
        if not released and exc_type is None:
            raise SemaphoreLostError(
                f"the permit of semaphore {self.name!r} expired while held (lease "
                f"{self.ttl} s): use a longer ttl or extend() it", key=self._spec.holders_key)
