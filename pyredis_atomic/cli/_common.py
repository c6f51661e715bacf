"""What every sub-command shares: the ``--url`` option, connecting, and clean failures."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click
import redis
from redis.cluster import RedisCluster

from ..errors import AtomicError

__all__ = ["connect", "default_url", "fail", "handle_errors", "url_option"]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_URL = "redis://localhost:6379/0"


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


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit with ``code``."""
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
    """Turn failures during a command into one line on stderr and exit code 2: Redis
    errors, and every :class:`~pyredis_atomic.AtomicError` (a key of the wrong type, a
    refusal by a script, a value that does not decode...), whose message names the key."""

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
        return None

    return wrapper  # type: ignore[return-value]
