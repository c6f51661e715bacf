"""State reports: the frozen dataclasses that ``inspect()``/``stats()`` return.

Each is also a read-only mapping of its fields (``stats["pending"]``, ``dict(stats)``,
``stats == {...}``), so code written when these were plain dicts keeps working, and
``as_dict()`` gives a plain dict for JSON.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

__all__ = ["Report", "SemaphoreHolder", "SemaphoreInfo"]


class Report(Mapping[str, Any]):
    """Base of the state reports (subclasses are ``@dataclass(frozen=True, eq=False)``:
    equality is the mapping's, with other reports and with dicts)."""

    __slots__ = ()

    def _present(self) -> list[str]:
        """The fields the mapping shows (all, unless a report leaves some out)."""
        return [f.name for f in fields(self)]  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        """The report as a plain dict (for JSON: the CLI's ``--json``)."""
        return {name: getattr(self, name) for name in self._present()}

    def __getitem__(self, key: str) -> Any:
        if key in self._present():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._present())

    def __len__(self) -> int:
        return len(self._present())


class SemaphoreHolder(NamedTuple):
    """One live permit of a semaphore: its id and the seconds left on its lease (a tuple
    ``(permit, ttl)``, as ``Semaphore.holders()`` returned before)."""

    permit: str
    ttl: float

    def as_dict(self) -> dict[str, Any]:
        """``{"permit": ..., "ttl": ...}`` (for JSON)."""
        return {"permit": self.permit, "ttl": self.ttl}


@dataclass(frozen=True, eq=False)
class SemaphoreInfo(Report):
    """What :meth:`Semaphore.inspect` reports (for operators and monitoring).

    ``name``: the semaphore's name. ``limit``: the limit stored with it (None: none stored
    yet). ``count``: permits held now. ``holders``: the live permits with the seconds left
    on their leases, earliest end first.
    """

    name: str
    limit: int | None
    count: int
    holders: tuple[SemaphoreHolder, ...]

    def as_dict(self) -> dict[str, Any]:
        """As a plain dict, each holder as ``{"permit": ..., "ttl": ...}`` (for JSON)."""
        out = super().as_dict()
        out["holders"] = [h.as_dict() for h in self.holders]
        return out
