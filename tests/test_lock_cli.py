"""``pyredis-atomic lock show/break`` and the lock demo, against a spawned server."""

from __future__ import annotations

import dataclasses
import json

import pytest
import redis
from click.testing import CliRunner

from pyredis_atomic import Lock, LockNotOwnedError
from pyredis_atomic.cli.demos import lock as lock_demo
from pyredis_atomic.cli.main import cli


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_show_a_free_held_and_broken_lock(redis_client: redis.Redis, redis_url: str) -> None:
    code, out, _ = _run("lock", "show", "orders:42", "--url", redis_url)
    assert code == 1  # not held: a negative answer
    assert "free, never acquired" in out
    code, out, _ = _run("lock", "show", "orders:42", "--url", redis_url, "--json")
    assert (code, json.loads(out)) == (1, None)  # as Lock.inspect: None
    lock = Lock(redis_client, "orders:42", ttl=30.0)
    lock.acquire()
    code, out, _ = _run("lock", "show", "orders:42", "--url", redis_url)
    assert code == 0
    assert "HELD" in out
    assert "fence 1" in out
    assert "atomic:lock:{orders:42}" in out
    code, out, _ = _run("lock", "show", "orders:42", "--url", redis_url, "--json")
    doc = json.loads(out)
    assert doc["held"] is True
    assert doc["fence"] == 1
    assert 29.0 < doc["ttl"] <= 30.0

    code, _, err = _run("lock", "break", "orders:42", "--url", redis_url)
    assert code == 2  # refused
    assert "--yes" in err
    assert lock.owned()  # nothing happened without --yes
    code, out, _ = _run("lock", "break", "orders:42", "--url", redis_url, "--yes")
    assert code == 0
    assert "broken (holder's fence 1)" in out
    assert not redis_client.exists("atomic:lock:{orders:42}")
    with pytest.raises(LockNotOwnedError):
        lock.release()  # the holder finds out
    code, out, _ = _run("lock", "show", "orders:42", "--url", redis_url, "--json")
    doc = json.loads(out)
    assert code == 1
    assert doc["held"] is False
    assert doc["lost_fence"] == 1
    info = Lock.inspect(redis_client, "orders:42")
    assert info is not None
    assert doc == dataclasses.asdict(info)
    code, out, _ = _run("lock", "break", "orders:42", "--url", redis_url, "--yes")
    assert code == 1
    assert "was not held" in out


def test_show_with_a_prefix_and_bad_names(redis_client: redis.Redis, redis_url: str) -> None:
    Lock(redis_client, "x", prefix="app1:").acquire()
    code, out, _ = _run("lock", "show", "x", "--prefix", "app1:", "--url", redis_url)
    assert code == 0
    assert "HELD" in out
    assert "app1:lock:{x}" in out
    code, _, err = _run("lock", "show", "x", "--prefix", "a{", "--url", redis_url)
    assert code == 2
    assert "prefix must not contain" in err


def test_show_names_a_key_of_the_wrong_type(redis_client: redis.Redis, redis_url: str) -> None:
    redis_client.rpush("atomic:lock:{q}", "x")
    code, _, err = _run("lock", "show", "q", "--url", redis_url)
    assert code == 2
    assert "atomic:lock:{q}" in err


def test_an_unreachable_server_is_one_line_and_exit_2() -> None:
    code, _, err = _run("lock", "show", "x", "--url", "redis://127.0.0.1:1/0")
    assert code == 2
    assert "cannot connect" in err


def test_the_demo_tells_the_story(redis_client: redis.Redis) -> None:
    lines: list[str] = []
    lock_demo.run(redis_client, lines.append, "demo:")
    text = "\n".join(lines)
    assert "refused (stale fence)" in text
    assert "raises LockNotOwnedError" in text
    assert "B still owns it: True" in text
    assert "C holds the lock" in text
