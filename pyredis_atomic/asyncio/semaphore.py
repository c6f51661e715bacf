"""The asyncio ``Semaphore``: same core, same scripts, awaited I/O."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any, TypeVar

from .._core.keys import DEFAULT_PREFIX
from .._core.semaphore import DEFAULT_TTL, SemaphoreSpec, SemaphoreView, acquire_flow
from ..errors import ConnectionLostError, SemaphoreLostError, SemaphoreTimeoutError
from ..semaphore import pop_held, push_held
from ._driver import drive
from .registry import default_registry

__all__ = ["Semaphore"]

T = TypeVar("T")


class Semaphore(SemaphoreView):
    """The asyncio twin of :class:`pyredis_atomic.Semaphore` (same arguments and
    semantics; operations are coroutines; ``async with sem:``)."""

    _repr_prefix = "asyncio."

    def __init__(self, client: Any, name: str, limit: int, ttl: float = DEFAULT_TTL, *,
                 timeout: float | None = None, prefix: str = DEFAULT_PREFIX) -> None:
        self._spec = SemaphoreSpec(name, limit, ttl, timeout=timeout, prefix=prefix)
        self._client = client
        self._registry = default_registry()
        self._count = self._spec.count_call()
        self._holders = self._spec.holders_call()


    async def acquire(self, blocking: bool = True, timeout: float | None = None, *,
                      permit: str | None = None) -> str | None:
        """See :meth:`pyredis_atomic.Semaphore.acquire`. Cancelling the task at any await
        point releases the permit if the attempt in flight took it (best effort; the
        lease bounds it in any case)."""
        blocking, timeout, permit = self._spec.acquire_args(blocking, timeout, permit)
        try:
            flow = acquire_flow(self._spec, permit, blocking, timeout)
            return await drive(self._client, flow, self._registry)
        except ConnectionLostError:
            raise
        except BaseException:
            await self._abandon(permit)
            raise

    async def _abandon(self, permit: str) -> None:
        # Shielded: a second cancellation must not stop the release half-way.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.shield(self.release(permit))

    async def release(self, permit: str) -> bool:
        """See :meth:`pyredis_atomic.Semaphore.release`."""
        return await self._registry.run(self._client, self._spec.release_call(permit))

    async def extend(self, permit: str, ttl: float | None = None) -> bool:
        """See :meth:`pyredis_atomic.Semaphore.extend`."""
        return await self._registry.run(self._client, self._spec.extend_call(permit, ttl))

    async def count(self) -> int:
        """See :meth:`pyredis_atomic.Semaphore.count`."""
        return await self._registry.run(self._client, self._count)

    async def holders(self) -> list[tuple[str, float]]:
        """See :meth:`pyredis_atomic.Semaphore.holders`."""
        return await self._registry.run(self._client, self._holders)

    async def __aenter__(self) -> str:
        permit = await self.acquire(True, self._spec.timeout)
        if permit is None:
            raise SemaphoreTimeoutError(
                f"no permit of semaphore {self.name!r} (limit {self.limit}) came free "
                f"within {self._spec.timeout} s", key=self._spec.holders_key)
        push_held(self, permit)
        return permit

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        permit = pop_held(self)
        released = await asyncio.shield(self.release(permit))
        if not released and exc_type is None:
            raise SemaphoreLostError(
                f"the permit of semaphore {self.name!r} expired while held (lease "
                f"{self.ttl} s): use a longer ttl or extend() it", key=self._spec.holders_key)
