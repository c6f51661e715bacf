"""What every sub-command shares: ``--url``/``--json`` options, connecting, the exit-code
convention, output that survives a closed pipe, progress on a terminal, clean failures.

Exit codes, the same for every command (documented in docs/cli.md):

* ``0`` (:data:`OK`): done; for a question, the positive answer (held, present, all loaded).
* ``1`` (:data:`NEGATIVE`): a negative answer: absent, not held, missing scripts, ids that are
  not dead letters. Nothing went wrong; the answer is "no".
* ``2`` (:data:`ERROR`): an error or a refused request: bad usage (click's own), a missing
  ``--yes``, an unknown script, a connection or Redis error, a value that cannot be decoded.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
import redis
from redis.cluster import RedisCluster

from ..errors import AtomicError

__all__ = [
    "ERROR",
    "NEGATIVE",
    "OK",
    "connect",
    "default_url",
    "echo",
    "emit_json",
    "fail",
    "handle_errors",
    "json_option",
    "jsonable",
    "mode_option",
    "progress",
    "script_registry",
    "url_option",
]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_URL = "redis://localhost:6379/0"
OK, NEGATIVE, ERROR = 0, 1, 2
MODE_ENV = "PYREDIS_ATOMIC_MODE"


def default_url() -> str:
    """``$REDIS_URL``, else ``redis://localhost:6379/0``."""
    return os.environ.get("REDIS_URL") or DEFAULT_URL


def url_option(func: F) -> F:
    """Add ``--url`` (default ``$REDIS_URL``, then localhost:6379) and ``--cluster``."""
    func = click.option("--cluster", is_flag=True,
                        help="Treat --url as a node of a Redis Cluster.")(func)
    return click.option(
        "--url", default=None, metavar="URL",
        help=f"Redis URL (default: $REDIS_URL, else {DEFAULT_URL}).",
    )(func)


def mode_option(func: F) -> F:
    """Add ``--functions`` / ``--scripts``: how the primitives' scripts are called (default
    ``$PYREDIS_ATOMIC_MODE``, else scripts). The command receives ``functions`` (a bool or
    ``None``) and passes it to :func:`script_registry`."""
    return click.option(
        "--functions/--scripts", "functions", default=None,
        help=f"Call the scripts as the Redis Functions library (FCALL / FCALL_RO, Redis 7.0+; "
             f"load it first with 'functions load') or by EVALSHA (default: ${MODE_ENV}, "
             f"else scripts).")(func)


_FUNCTIONS_REGISTRY: list[Any] = []


def script_registry(functions: bool | None) -> Any:
    """The script registry a primitive command runs on: the package's default one, or a
    functions-mode one (``--functions``, or ``$PYREDIS_ATOMIC_MODE=functions``). An unknown
    ``$PYREDIS_ATOMIC_MODE`` exits with code 2."""
    from ..registry import ScriptRegistry, default_registry

    if functions is None:
        mode = (os.environ.get(MODE_ENV) or "scripts").strip().lower()
        if mode not in ("scripts", "functions"):
            fail(f"${MODE_ENV} must be 'scripts' or 'functions', got {mode!r}")
        functions = mode == "functions"
    if not functions:
        return default_registry()
    if not _FUNCTIONS_REGISTRY:
        _FUNCTIONS_REGISTRY.append(ScriptRegistry(mode="functions"))
    return _FUNCTIONS_REGISTRY[0]


def json_option(func: F) -> F:
    """Add ``--json``: print one JSON document (the command's schema in docs/cli.md)."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON document instead of text (schema: docs/cli.md).")(func)


class _Stdout:
    """Whether stdout was closed under us (``| head``), and how many lines were lost."""

    closed = False
    dropped = 0


def echo(text: str = "", *, nl: bool = True) -> None:
    """Print to stdout; once the reader has gone (a closed pipe, ``| head -2``), drop the
    output but let the command finish its work, and say so on stderr at the end (see
    :func:`report_closed_stdout`). Writing to a closed pipe raises ``BrokenPipeError``
    (Python ignores SIGPIPE), which would otherwise stop the command half-way."""
    if _Stdout.closed:
        _Stdout.dropped += 1
        return
    try:
        click.echo(text, nl=nl)
    except BrokenPipeError:
        _Stdout.closed = True
        _Stdout.dropped += 1
        # Point fd 1 at /dev/null so that the interpreter's final flush cannot fail again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # no real fd (captured output)
            pass


def report_closed_stdout() -> None:
    """If stdout closed early, say on stderr that the output was cut, not the work."""
    if _Stdout.closed:
        click.echo(f"pyredis-atomic: stdout was closed early; {_Stdout.dropped} line(s) of "
                   "output not shown, the command still did all of its work", err=True)


def progress(text: str | None) -> None:
    """Show ``text`` as a one-line progress note on stderr when stderr is a terminal
    (nothing otherwise, so pipes and logs stay clean); ``None`` clears the line."""
    stream = sys.stderr
    if not stream.isatty():
        return
    stream.write("\r\x1b[K" + (text if text is not None else ""))
    stream.flush()


def jsonable(obj: Any) -> Any:
    """A state report as JSON data with the Python API's names: ``as_dict()`` when the
    object has one, a dataclass's fields, a mapping as is."""
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return dict(obj)
    return obj


def emit_json(doc: Any) -> None:
    """Print one JSON document on one line."""
    echo(json.dumps(doc, ensure_ascii=False, default=repr))


def fail(message: str, code: int = ERROR) -> NoReturn:
    """Print one line to stderr and exit with ``code`` (2: an error or a refused request)."""
    click.echo(f"pyredis-atomic: {message}", err=True)
    raise SystemExit(code)


def connect(url: str | None, cluster: bool = False) -> Any:
    """A connected client (``PING`` checked); a refused connection exits with code 2."""
    url = url or default_url()
    try:
        client: Any = (RedisCluster.from_url(url) if cluster
                       else redis.Redis.from_url(url, socket_connect_timeout=5))
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        fail(f"cannot connect to Redis at {url}: {exc}")
    except (ValueError, redis.RedisError) as exc:
        fail(f"cannot use Redis at {url}: {exc}")
    return client


def handle_errors(func: F) -> F:
    """Turn failures during a command into one line on stderr and exit code 2: bad input
    (``TypeError``/``ValueError`` naming the argument), Redis errors, and every
    :class:`~pyredis_atomic.AtomicError` (a key of the wrong type, a refusal by a script, a
    value that does not decode...), whose message names the key."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # Before AtomicError: ConnectionLostError and ReplyTimeoutError are both.
            fail(f"lost the connection to Redis: {exc}")
        except AtomicError as exc:
            fail(f"{type(exc).__name__}: {exc}")
        except redis.RedisError as exc:
            fail(f"Redis error: {exc}")
        except (TypeError, ValueError) as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]
