"""The asyncio ``BoundedCounter``: same core, same scripts, awaited I/O."""

from __future__ import annotations

from typing import Any

from .._core.counter import (
    DEFAULT_REQUEST_TTL,
    MAX_VALUE,
    MIN_VALUE,
    CounterResult,
    CounterSpec,
    CounterView,
    bad_delta,
)
from .._core.keys import DEFAULT_PREFIX
from .registry import default_registry

__all__ = ["BoundedCounter", "CounterResult"]


class BoundedCounter(CounterView):
    """The asyncio twin of :class:`pyredis_atomic.BoundedCounter` (same arguments, same
    semantics; the operations are coroutines)."""

    _repr_prefix = "asyncio."

    __slots__ = ("_client", "_fast", "_get", "_high", "_keys", "_low", "_opt", "_opt_clamp",
                 "_registry", "_reset", "_spec")

    def __init__(
        self,
        client: Any,
        name: str,
        *,
        min: int | None = None,
        max: int | None = None,
        initial: int = 0,
        ttl: float | None = None,
        prefix: str = DEFAULT_PREFIX,
        request_ttl: float = DEFAULT_REQUEST_TTL,
    ) -> None:
        self._spec = spec = CounterSpec(name, min=min, max=max, initial=initial, ttl=ttl,
                                        prefix=prefix, request_ttl=request_ttl)
        self._client = client
        self._registry = default_registry()
        self._fast = self._registry.bind(client, "counter_add")
        self._keys = spec.keys
        self._high = spec.high
        self._low = spec.low
        self._opt = spec.options(False)
        self._opt_clamp = spec.options(True)
        self._get = spec.get_call()
        self._reset = spec.reset_call()


    async def incr(self, n: int = 1, *, clamp: bool = False,
                   request_id: str | None = None) -> CounterResult:
        """See :meth:`pyredis_atomic.BoundedCounter.incr`."""
        if request_id is None and n.__class__ is int and MIN_VALUE <= n <= MAX_VALUE:
            r = await self._fast(self._keys,
                                (n, self._high if n >= 0 else self._low,
                                 self._opt_clamp if clamp else self._opt))
            if r.__class__ is int:
                return CounterResult(True, r, n)
            return CounterResult(False, r[0], r[1])
        return await self._registry.run(self._client,
                                        self._spec.add_call(n, clamp, request_id))

    async def decr(self, n: int = 1, *, clamp: bool = False,
                   request_id: str | None = None) -> CounterResult:
        """See :meth:`pyredis_atomic.BoundedCounter.decr`."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise bad_delta(n)
        return await self.incr(-n, clamp=clamp, request_id=request_id)

    async def get(self) -> int:
        """See :meth:`pyredis_atomic.BoundedCounter.get`."""
        return await self._registry.run(self._client, self._get)

    async def set(self, value: int) -> None:
        """See :meth:`pyredis_atomic.BoundedCounter.set`."""
        await self._registry.run(self._client, self._spec.set_call(value))

    async def reset(self) -> None:
        """See :meth:`pyredis_atomic.BoundedCounter.reset`."""
        await self._registry.run(self._client, self._reset)
