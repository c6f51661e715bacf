"""Hostile arguments for the fuzz tests, and the judge of one call's outcome.

The contract every public method keeps (see ``pyredis_atomic.errors``):

* it works, or
* it raises ``TypeError``/``ValueError`` *before anything is sent* (checked here against
  the server's ``INFO commandstats``: a rejected call must not have run a single command),
  or
* it raises an :class:`~pyredis_atomic.AtomicError` subclass at run time.

Anything else (a raw redis-py ``ResponseError``, a ``KeyError``/``AttributeError``/
``IndexError`` from our own code, a ``UnicodeDecodeError`` after the call went out...)
fails the test.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import redis
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from pyredis_atomic import AtomicError

# A multi-megabyte value: big enough to cross redis-py's and Lua's buffer sizes.
BIG = 2 * 1024 * 1024 + 7
BIG_BYTES = b"\xfe" * BIG
BIG_TEXT = "\u00e9" * (BIG // 2)

LONE_SURROGATES = st.sampled_from(["\ud800", "x\udfff", "\udc80abc", "{\ud83d}"])
ODD_TEXT = st.sampled_from([
    "", " ", "{", "}", "{}", "}{", "a{b}c", "x}:y", "%7B", "%", "\x00", "a\x00b", "\u00e9\u2713",
    "\U0001f642", "*", "a/1", "1-1", "a b", "\n", "-", ":", "atomic:lock:{x}", "n" * 5000,
])
TEXT = st.one_of(st.text(max_size=12), ODD_TEXT, LONE_SURROGATES)

HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 2**53 - 1, 2**53, 2**53 + 1, -(2**53) - 1, 2**63, 10**30]),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e-9, 1e300, -1e-300]),
    TEXT,
    st.binary(max_size=12),
    st.sampled_from([b"\xff\xfe", bytearray(b"ab"), memoryview(b"mv")]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.sampled_from([object(), Ellipsis, 1 + 2j, Decimal("1.5"), Fraction(1, 3),
                     Decimal("NaN"), print, type]),
)

def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Valid names: anything non-empty, valid Unicode, at most 4096 UTF-8 bytes.
NAME = st.one_of(
    st.text(min_size=1, max_size=16).filter(_utf8_ok),
    st.sampled_from(["{", "}", "{}", "}{", "a{b}c", "x}:y", "%7B", "%7D", "%", "a\x00b", "é✓🙂",
                     "*", ":", "lock:{x}", "n" * 4096]),
)


def _slow(value: object) -> bool:
    """A valid number of seconds that would make a blocking call wait for long."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0.05 < value <= 400 * 24 * 3600)


# Arguments that bound a wait: short valid ones, or anything invalid (never a long wait).
def _short(value: Any) -> Any:
    return 0.02 if value is None or _slow(value) else value


WAIT = st.one_of(st.just(0), st.floats(0, 0.03), HOSTILE.map(_short))


def arg(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value (so that calls get through to the server), else a hostile one."""
    return st.one_of(valid, valid, HOSTILE)


def pick_known(data: st.DataObject, known: list[Any], other: st.SearchStrategy[Any],
               label: str) -> Any:
    """One of ``known`` (mostly) or a value of ``other``, drawn the same way whatever
    ``known`` holds: what is known can depend on timing (a lease that ran out, a wait that
    timed out), and a draw whose shape followed it would make hypothesis's replays
    inconsistent (FlakyStrategyDefinition)."""
    use_known = data.draw(st.integers(0, 3), label=f"{label} from known") > 0
    index = data.draw(st.integers(0, 63), label=f"{label} index")
    value = data.draw(other, label=label)
    return known[index % len(known)] if use_known and known else value


# -- the judge --------------------------------------------------------------------------------
# Sent when a client connects (or by the probe itself): not the primitive's doing.
_SETUP = ("cmdstat_info", "cmdstat_hello", "cmdstat_select", "cmdstat_auth", "cmdstat_ping")


def text(value: Any) -> str:
    """A reply string as ``str`` whether the client decodes or not."""
    return value.decode() if isinstance(value, bytes) else str(value)


def command_counts(probe: redis.Redis) -> dict[str, int]:
    """Calls per command on the server, without the probe's and connection set-up's."""
    stats = probe.info("commandstats")
    return {name: int(v["calls"]) for name, v in stats.items()
            if name not in _SETUP and not name.startswith("cmdstat_client")}


@dataclass
class Outcome:
    """What one call did: ``ok`` with its ``value``, or the exception it raised."""

    ok: bool
    value: Any = None
    error: BaseException | None = None
    calls: list[str] = field(default_factory=list)


def _judge(exc: BaseException, before: dict[str, int], after: dict[str, int],
           what: str, allowed: tuple[type[BaseException], ...]) -> Outcome:
    _event(f"{what}: {type(exc).__name__}")
    if isinstance(exc, (AtomicError, allowed)):
        return Outcome(False, error=exc)
    if isinstance(exc, (TypeError, ValueError)) and not isinstance(exc, UnicodeError):
        sent = {k: after.get(k, 0) - before.get(k, 0) for k in after
                if after.get(k, 0) != before.get(k, 0)}
        assert not sent, f"{what} was rejected with {exc!r} after sending {sent}"
        assert str(exc), f"{what}: {type(exc).__name__} without a message"
        return Outcome(False, error=exc)
    raise AssertionError(f"{what} raised {type(exc).__name__}: {exc!r}") from exc


def _event(text: str) -> None:
    """Tally outcomes (``--hypothesis-show-statistics``) when run under hypothesis."""
    if currently_in_test_context():
        event(text)


def attempt(probe: redis.Redis, what: str, func: Callable[..., Any], *args: Any,
            allowed: tuple[type[BaseException], ...] = (), **kwargs: Any) -> Outcome:
    """Call ``func`` and judge the outcome (see the module docstring)."""
    before = command_counts(probe)
    try:
        value = func(*args, **kwargs)
    except Exception as exc:
        return _judge(exc, before, command_counts(probe), what, allowed)
    _event(f"{what}: ok")
    return Outcome(True, value)


async def attempt_async(probe: redis.Redis, what: str, func: Callable[..., Awaitable[Any]],
                        *args: Any, allowed: tuple[type[BaseException], ...] = (),
                        **kwargs: Any) -> Outcome:
    """:func:`attempt` for coroutine functions (constructors go through :func:`attempt`)."""
    before = command_counts(probe)
    try:
        value = await func(*args, **kwargs)
    except Exception as exc:
        return _judge(exc, before, command_counts(probe), what, allowed)
    _event(f"{what}: ok")
    return Outcome(True, value)


def kwargs_of(data: st.DataObject, spec: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    """Draw a keyword argument for some of ``spec``'s names (each left out half the time)."""
    out: dict[str, Any] = {}
    for name, strategy in spec.items():
        if data.draw(st.booleans(), label=f"pass {name}"):
            out[name] = data.draw(strategy, label=name)
    return out
