"""Bool vs int, the same way everywhere (issue 14): every public constructor and method
refuses a ``bool`` where an int (or a number of seconds) is expected, and an ``int`` where a
bool flag is expected, with a ``TypeError`` naming the argument, before anything is sent.

The table below gives valid arguments for every public constructor and method; the test
finds the int / float / bool parameters of each by their annotations (so a new parameter
that the table lacks fails ``test_the_table_covers_every_public_argument``), swaps one at a
time for a value of the wrong kind and calls it on a client whose server does not exist: a
``TypeError`` naming the argument proves the check came first (any I/O would have raised a
connection error instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import typing
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

import pyredis_atomic
import pyredis_atomic.asyncio as aio

PRIMITIVES = ("Lock", "ReliableQueue", "Cache", "BoundedCounter", "Semaphore", "RateLimiter")
# Results the library builds (nobody passes them in) and registry plumbing the shells call
# with already-checked values.
NOT_INPUTS = {"CounterResult", "LockInfo", "Message", "RateLimitResult", "CacheEntryInfo",
              "QueueStats", "NearStats", "Failure", "CounterConfig", "RateLimitConfig",
              "SemaphoreConfig", "SemaphoreInfo"}
# Built without a client: (positional args, keyword args) of a valid constructor call.
PLAIN = {
    "Retry": ((), {"max_attempts": 5, "backoff": 1.0, "max_backoff": 300.0, "jitter": True}),
    "NearCache": ((), {"max_entries": 100, "max_bytes": 1 << 20, "ttl": 5.0,
                       "max_value_bytes": 1024, "max_staleness": 0.5, "shared": False}),
}
WORKER = {"concurrency": 2, "prefetch": 10, "handler_timeout": 1.0, "grace": 1.0,
          "poll": 0.5, "signals": False}
EXCLUDED_METHODS = {("ScriptRegistry", "recover"), ("AsyncScriptRegistry", "recover"),
                    ("ScriptRegistry", "run_durable"), ("AsyncScriptRegistry", "run_durable")}


def _message(queue: str = "atomic:queue:{q}") -> Any:
    return pyredis_atomic.Message("1-1", b"x", 1, queue)


def _loader() -> int:
    return 1


# class -> (positional args after the client, keyword args) of a valid constructor call
CONSTRUCTORS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "Lock": (("n",), {"ttl": 10.0, "timeout": None, "auto_renew": False}),
    "ReliableQueue": (("q",), {"visibility_timeout": 30.0, "max_deliveries": 5,
                               "allow_eviction": False}),
    "Cache": (("c",), {"ttl": 60.0, "lock_ttl": 10.0, "wait_timeout": 1.0,
                       "early_refresh": 1.0, "stale_ttl": 1.0, "cache_none": False,
                       "fast_hits": True, "near": False}),
    "BoundedCounter": (("c",), {"min": 0, "max": 100, "clamp": False, "initial": 0,
                                "ttl": 60.0, "request_ttl": 60.0}),
    "Semaphore": (("s",), {"limit": 2, "ttl": 30.0, "timeout": None}),
    "RateLimiter": (("r",), {"rate": 10.0, "period": 1.0, "burst": 5}),
}
# (class, method) -> (positional args, keyword args) of a valid call
METHODS: dict[tuple[str, str], tuple[tuple[Any, ...], dict[str, Any]]] = {
    ("Lock", "acquire"): ((), {"blocking": True, "timeout": 0.05}),
    ("Lock", "extend"): ((), {"ttl": 5.0}),
    ("ReliableQueue", "push"): ((b"x",), {"delay": 0.0, "priority": 1, "trace": False}),
    ("ReliableQueue", "push_many"): (([b"x"],), {"delay": 0.0, "priority": 1,
                                                  "trace": False}),
    ("ReliableQueue", "pop"): ((), {"timeout": 0.05}),
    ("ReliableQueue", "pop_many"): ((), {"n": 2, "timeout": 0.05}),
    ("ReliableQueue", "ack_and_pop"): ((_message(),), {"timeout": 0.05}),
    ("ReliableQueue", "nack"): ((_message(),), {"delay": 1.0, "counted": True}),
    ("ReliableQueue", "extend"): ((_message(),), {"visibility_timeout": 5.0}),
    ("ReliableQueue", "dead_letters"): ((), {"limit": 10, "offset": 0}),
    ("ReliableQueue", "requeue_expired"): ((), {"limit": 10}),
    ("ReliableQueue", "purge"): ((), {"dead_only": True}),
    ("Cache", "get_or_set"): (("k", _loader), {"ttl": 5.0, "lock_ttl": 5.0,
                                               "wait_timeout": 1.0, "early_refresh": 1.0,
                                               "stale_ttl": 1.0, "cache_none": True}),
    ("Cache", "set"): (("k", 1), {"ttl": 5.0, "stale_ttl": 1.0}),
    ("Cache", "cached"): ((), {"ttl": 5.0}),
    ("BoundedCounter", "incr"): ((), {"n": 1, "clamp": False}),
    ("BoundedCounter", "decr"): ((), {"n": 1, "clamp": False}),
    ("BoundedCounter", "set"): ((), {"value": 1}),
    ("BoundedCounter", "reconfigure"): ((), {"min": 0, "max": 100, "clamp": False,
                                             "clamp_value": False}),
    ("Semaphore", "acquire"): ((), {"blocking": True, "timeout": 0.05}),
    ("Semaphore", "extend"): (("permit",), {"ttl": 5.0}),
    ("RateLimiter", "hit"): ((), {"n": 1}),
    ("RateLimiter", "peek"): ((), {"n": 1}),
    ("RateLimiter", "reconfigure"): ((), {"rate": 10.0, "period": 1.0, "burst": 5}),
    ("Semaphore", "reconfigure"): ((), {"limit": 3}),
    ("Retry", "delay"): ((), {"attempt": 2}),
    ("Worker", "stop"): ((), {"grace": 1.0}),
}


def _kind(annotation: object) -> str | None:
    """"bool", "int", "float" (seconds) or None for the parameters this test is about."""
    args = list(typing.get_args(annotation)) or [annotation]
    if bool in args and float in args:
        # cache_none: True/False or a number of seconds, so 1 is one second (documented).
        return None
    if bool in args:
        return "bool"
    if int in args:
        return "int"
    if float in args:
        return "float"
    return None


def _wrong(kind: str) -> list[Any]:
    return [1, 0] if kind == "bool" else [True, False]


def _public_classes() -> list[tuple[Any, type]]:
    found = []
    for module in (pyredis_atomic, aio):
        for name in module.__all__:
            obj = getattr(module, name)
            if (inspect.isclass(obj) and not issubclass(obj, BaseException)
                    and name not in NOT_INPUTS):
                found.append((module, obj))
    return found


def _arguments() -> list[tuple[str, str, str, str, str]]:
    """(module, class, method, parameter, kind) of every int/float/bool public argument."""
    out = []
    for module, cls in _public_classes():
        for mname, func in inspect.getmembers(cls, inspect.isfunction):
            if mname.startswith("_") and mname != "__init__":
                continue
            if (cls.__name__, mname) in EXCLUDED_METHODS:
                continue
            hints = typing.get_type_hints(func)
            for p in inspect.signature(func).parameters.values():
                kind = _kind(hints.get(p.name))
                if kind is not None:
                    out.append((module.__name__, cls.__name__, mname, p.name, kind))
    return out


ARGUMENTS = _arguments()


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(module: str, cls_name: str, method: str, override: dict[str, Any]) -> Any:
    """Build the object (valid arguments) and make the call with ``override`` applied, on a
    client of a port nobody listens on. Returns what the call returned (awaited)."""
    port = _dead_port()
    asynchronous = module == "pyredis_atomic.asyncio"
    mod: Any = aio if asynchronous else pyredis_atomic

    async def run() -> Any:
        # No retries: a refused connection fails at once (the checks come before any I/O).
        options: dict[str, Any] = {"port": port, "socket_connect_timeout": 0.2}
        client: Any = (redis.asyncio.Redis(retry=AsyncRetry(NoBackoff(), 0), **options)
                       if asynchronous else redis.Redis(retry=Retry(NoBackoff(), 0), **options))
        try:
            result = _build_and_call(mod, cls_name, method, override, client)
            if inspect.isawaitable(result):
                result = await result
            return result
        finally:
            if asynchronous:
                await client.aclose()
            else:
                client.close()

    return asyncio.run(run())


def _build_and_call(mod: Any, cls_name: str, method: str, override: dict[str, Any],
                    client: Any) -> Any:
    cls = getattr(mod, cls_name)
    if cls_name == "Durability":
        kwargs = {"replicas": 1, "timeout": 1.0}
        return cls(**(kwargs | override))
    if cls_name in ("ScriptRegistry", "AsyncScriptRegistry"):
        if method == "__init__":
            return cls(**({"builtin": True} | override))
        if method == "results":  # no calls: nothing to decode, nothing sent
            return cls().results(client, [], [], **({"raise_on_error": True} | override))
        return cls().bind(client, "lock_acquire", **({"raw": False} | override))
    if cls_name in PLAIN:
        args, kwargs = PLAIN[cls_name]
        if method == "__init__":
            return cls(*args, **(kwargs | override))
        obj = cls(*args, **kwargs)
    elif cls_name == "Worker":
        queue = mod.ReliableQueue(client, "w")
        if method == "__init__":
            return cls(queue, _handler_for(mod), **(WORKER | override))
        obj = cls(queue, _handler_for(mod), **WORKER)
    else:
        args, kwargs = CONSTRUCTORS[cls_name]
        if method == "__init__":
            return cls(client, *args, **(kwargs | override))
        obj = cls(client, *args, **kwargs)
    margs, mkwargs = METHODS[(cls_name, method)]
    return getattr(obj, method)(*margs, **(mkwargs | override))


def _handler_for(mod: Any) -> Any:
    """A handler of the kind the worker of ``mod`` takes (a coroutine function for asyncio)."""
    if mod is aio:
        async def handle(msg: Any) -> None:
            return None
        return handle

    def handle_sync(msg: Any) -> None:
        return None
    return handle_sync


def _constructor_table(cls_name: str) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    if cls_name in PLAIN:
        return PLAIN[cls_name]
    if cls_name == "Worker":
        return ((), WORKER)
    return CONSTRUCTORS.get(cls_name)


def test_the_table_covers_every_public_argument() -> None:
    missing = []
    for _module, cls_name, method, param, _ in ARGUMENTS:
        if cls_name in ("Durability", "ScriptRegistry", "AsyncScriptRegistry"):
            continue
        table = _constructor_table(cls_name) if method == "__init__" else METHODS.get(
            (cls_name, method))
        if table is None or param not in table[1]:
            missing.append(f"{cls_name}.{method}({param})")
    assert not missing, f"add valid values for {missing} to the tables"
    assert {c for _, c, *_ in ARGUMENTS} >= set(PRIMITIVES)


@pytest.mark.parametrize(("module", "cls_name", "method", "param", "kind"), ARGUMENTS,
                         ids=[f"{m.split('.')[-1]}.{c}.{f}.{p}" for m, c, f, p, _ in ARGUMENTS])
def test_wrong_kind_is_refused_naming_the_argument(module: str, cls_name: str, method: str,
                                                   param: str, kind: str) -> None:
    for wrong in _wrong(kind):
        with pytest.raises(TypeError) as caught:
            _call(module, cls_name, method, {param: wrong})
        assert param in str(caught.value), (wrong, str(caught.value))


@pytest.mark.parametrize(("module", "cls_name", "method"),
                         sorted({(m, c, f) for m, c, f, _, _ in ARGUMENTS}))
def test_the_valid_call_gets_past_the_checks(module: str, cls_name: str, method: str) -> None:
    """The table's values are valid: the call gets as far as the network (a connection
    error, or nothing at all for calls that send nothing)."""
    errors: tuple[type[BaseException], ...] = (redis.ConnectionError, OSError,
                                               pyredis_atomic.AtomicError)
    with contextlib.suppress(*errors):
        _call(module, cls_name, method, {})

