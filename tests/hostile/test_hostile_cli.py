"""Every CLI command turns an AtomicError (here: a key of the wrong type) into one line on
stderr naming the key, and exit code 2: never a traceback."""

from __future__ import annotations

import pytest
import redis
from click.testing import CliRunner

from pyredis_atomic.cli.main import cli

# (command line after the sub-command's url, key to spoil with a list)
CASES = [
    (["lock", "show", "w"], "atomic:lock:{w}"),
    (["lock", "break", "w", "--yes"], "atomic:lock:{w}"),
    (["queue", "stats", "w"], "atomic:queue:{w}:pending"),
    (["queue", "dead", "w"], "atomic:queue:{w}:dead"),
    (["queue", "purge", "w", "--yes"], "atomic:queue:{w}:pending"),
    (["queue", "redrive", "w"], "atomic:queue:{w}:dead"),
    (["queue", "requeue-expired", "w"], "atomic:queue:{w}:inflight"),
    (["cache", "show", "c", "w"], "atomic:cache:c:{w}:e"),
    (["cache", "delete", "c", "w"], "atomic:cache:c:{w}:e"),
    (["counter", "get", "w"], "atomic:counter:{w}"),
    (["semaphore", "show", "w"], "atomic:semaphore:{w}:holders"),
]


@pytest.mark.parametrize(("args", "key"), CASES, ids=[" ".join(c[0][:2]) for c in CASES])
def test_atomic_error_is_one_line_and_exit_2(args: list[str], key: str,
                                             redis_client: redis.Redis, redis_url: str) -> None:
    if key.endswith(":pending"):
        redis_client.set(key, "not a list")  # pending is the one list here
    else:
        redis_client.rpush(key, "not what the primitive stores")
    result = CliRunner().invoke(cli, [*args, "--url", redis_url])
    # A traceback would show up as result.exception not being SystemExit.
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert key in lines[0]
    assert "Traceback" not in result.output
