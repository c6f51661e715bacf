"""``BoundedCounter``: an integer counter that never leaves ``[min, max]``, atomically.

The racy recipe it replaces: ``GET``, compare in the client, ``INCR``. Two clients both
pass the check and push the value past its limit (stock below zero, quota over its cap).
Here the check and the change are one Lua script (``lua/counter_add.lua``).
"""

from __future__ import annotations

from .._core.counter import (
    DEFAULT_REQUEST_TTL,
    MAX_VALUE,
    MIN_VALUE,
    CounterResult,
    CounterSpec,
    bad_delta,
)
from .._core.keys import DEFAULT_PREFIX
from ._runtime import Client, check_client
from .registry import AsyncScriptRegistry, default_registry

__all__ = ["MAX_VALUE", "MIN_VALUE", "BoundedCounter", "CounterResult"]


class BoundedCounter:
    """An integer counter kept within ``[min, max]`` by one atomic script per change.

    ``min``/``max``: the bounds, either may be ``None`` (unbounded on that side, within
    the exact range ``±(2**53 - 1)``: :data:`MIN_VALUE`/:data:`MAX_VALUE`). ``initial``:
    the value of a counter that does not exist (yet, or any more). ``ttl``: seconds after
    its creation the counter expires (a fixed window: later changes do not extend it).
    ``prefix``: key namespace. ``request_ttl``: how long a ``request_id``'s reply is
    remembered (default one hour). ``registry``: the script registry to run on (default:
    the package's).

    Every operation is one script call; the counter key is ``<prefix>counter:{<name>}``.
    """


    __slots__ = ("_client", "_fast", "_get", "_high", "_keys", "_low", "_opt", "_opt_clamp",
                 "_registry", "_reset", "_spec")

    def __init__(
        self,
        client: Client,
        name: str,
        *,
        min: int | None = None,
        max: int | None = None,
        initial: int = 0,
        ttl: float | None = None,
        prefix: str = DEFAULT_PREFIX,
        request_ttl: float = DEFAULT_REQUEST_TTL,
        registry: AsyncScriptRegistry | None = None,
    ) -> None:
        client = check_client(client)
        self._spec = spec = CounterSpec(name, min=min, max=max, initial=initial, ttl=ttl,
                                        prefix=prefix, request_ttl=request_ttl)
        self._client = client
        self._registry = registry or default_registry()
        self._fast = self._registry.bind(client, "counter_add")
        self._keys = spec.keys
        self._high = spec.high
        self._low = spec.low
        self._opt = spec.options(False)
        self._opt_clamp = spec.options(True)
        self._get = spec.get_call()
        self._reset = spec.reset_call()


    # -- operations ----------------------------------------------------------------------
    async def incr(self, n: int = 1, *, clamp: bool = False,
                   request_id: str | None = None) -> CounterResult:
        """Add ``n`` (an int, may be 0 or negative) unless that would cross a bound.

        Reject (default): a change that would cross a bound is not made; the result has
        ``applied=False``, ``delta=0`` and the current value. ``clamp=True``: the value
        saturates at the bound and ``delta`` says how much was added (``applied`` is True
        only if all of it was). Never moves the value against the direction of ``n``.

        Re-sending: without ``request_id`` a re-sent increment (after a lost reply) is
        applied again. With a ``request_id`` (any str up to 256 bytes, unique per logical
        change) the first reply is remembered for ``request_ttl`` seconds and a re-send
        returns it without changing anything; reusing the id for another change raises
        :class:`~pyredis_atomic.ScriptError` (code ``REQUESTREUSED``).
        """
        if (request_id is None and n.__class__ is int and clamp.__class__ is bool
                and MIN_VALUE <= n <= MAX_VALUE):
            r = await self._fast(self._keys,
                                (n, self._high if n >= 0 else self._low,
                                 self._opt_clamp if clamp else self._opt))
            if r.__class__ is int:
                return CounterResult(True, r, n)
            return CounterResult(False, r[0], r[1])
        return await self._registry.run(self._client,
                                        self._spec.add_call(n, clamp, request_id))


    @property
    def name(self) -> str:
        """The counter's name."""
        return self._spec.name

    @property
    def key(self) -> str:
        """The Redis key holding the value."""
        return self._spec.key

    @property
    def min(self) -> int | None:
        """Lower bound, or None."""
        return self._spec.min

    @property
    def max(self) -> int | None:
        """Upper bound, or None."""
        return self._spec.max

    @property
    def initial(self) -> int:
        """The value of an absent counter."""
        return self._spec.initial

    @property
    def ttl(self) -> float | None:
        """Lifetime in seconds from creation, or None."""
        return self._spec.ttl

    def __repr__(self) -> str:
        return f"asyncio.BoundedCounter{self._spec.describe()}"

    async def decr(self, n: int = 1, *, clamp: bool = False,
                   request_id: str | None = None) -> CounterResult:
        """Subtract ``n``: exactly ``incr(-n, ...)``, with the same rules and re-send
        semantics (``delta`` in the result is the signed change, so negative here)."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise bad_delta(n)
        return await self.incr(-n, clamp=clamp, request_id=request_id)

    async def get(self) -> int:
        """The current value (``initial`` when the counter does not exist)."""
        return await self._registry.run(self._client, self._get)

    async def set(self, value: int) -> None:
        """Overwrite the value (``ValueError`` outside ``[min, max]``, before anything is
        sent). An existing counter keeps its expiry; a new one gets ``ttl``. Re-sending
        is harmless (the same value is written again)."""
        await self._registry.run(self._client, self._spec.set_call(value))

    async def reset(self) -> None:
        """Delete the counter: it reads as ``initial`` and its next change starts a new
        ``ttl`` window. Re-sending is harmless."""
        await self._registry.run(self._client, self._reset)
