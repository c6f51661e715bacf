"""``pyredis-atomic queue ...`` against a real server."""

from __future__ import annotations

import json

import redis
from click.testing import CliRunner
from queue_helpers import expire_all

from pyredis_atomic import ReliableQueue
from pyredis_atomic.cli.main import cli


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_queue_commands(redis_client: redis.Redis, redis_url: str) -> None:
    q = ReliableQueue(redis_client, "ops", max_deliveries=1)
    q.push_many([b"a", b"\xff\xfe", b"c"])
    for m in q.pop_many(2):
        q.nack(m)  # max_deliveries=1: both dead
    held = q.pop()
    assert held is not None

    code, out = _run("queue", "stats", "ops", "--url", redis_url)
    assert code == 0
    assert "pending: 0" in out
    assert "in_flight: 1" in out
    assert "dead: 2" in out
    code, out = _run("queue", "stats", "ops", "--url", redis_url, "--json")
    assert json.loads(out)["dead"] == 2

    code, out = _run("queue", "dead", "ops", "--url", redis_url, "--json")
    assert code == 0
    rows = json.loads(out)
    assert rows[0]["payload"] == "a"
    assert rows[1]["payload_base64"] == "//4="
    assert {r["dead_reason"] for r in rows} == {"nacked"}  # the name Message uses
    code, out = _run("queue", "dead", "ops", "--url", redis_url)
    assert "(2 dead letter(s) shown, from offset 0)" in out
    code, out = _run("queue", "dead", "ops", "--url", redis_url, "--json", "--offset", "1")
    assert [r["id"] for r in json.loads(out)] == [rows[1]["id"]]

    expire_all(redis_client, q)
    code, out = _run("queue", "requeue-expired", "ops", "--url", redis_url)
    assert (code, out.strip()) == (0, "requeued 1 expired lease(s)")
    assert q.stats()["pending"] == 1  # delivery 1 of the CLI's default max of 5: requeued
    again = q.pop()
    assert again is not None
    expire_all(redis_client, q)
    code, out = _run("queue", "requeue-expired", "ops", "--url", redis_url,
                     "--max-deliveries", "2")
    assert q.stats()["dead"] == 3  # delivery 2 of max 2: dead
    assert q.redrive([again.id]) == 1

    code, out = _run("queue", "redrive", "ops", "--url", redis_url, "--id", rows[0]["id"])
    assert (code, out.strip()) == (0, "redrove 1 dead letter(s)")
    assert (q.stats()["pending"], q.stats()["dead"]) == (2, 1)
    code, out = _run("queue", "redrive", "ops", "--url", redis_url)
    assert out.strip() == "redrove 1 dead letter(s)"
    assert (q.stats()["pending"], q.stats()["dead"]) == (3, 0)

    code, out = _run("queue", "purge", "ops", "--url", redis_url)
    assert code == 2  # refused
    assert "--yes" in out
    code, out = _run("queue", "purge", "ops", "--url", redis_url, "--yes")
    assert (code, out.strip()) == (0, "deleted 3 message(s)")
    assert q.stats()["pending"] == q.stats()["dead"] == 0


def test_queue_cli_errors(redis_client: redis.Redis, redis_url: str) -> None:
    redis_client.set("atomic:queue:{typed}:pending", "x")
    code, out = _run("queue", "stats", "typed", "--url", redis_url)
    assert code == 2
    assert "atomic:queue:{typed}:pending" in out
    code, out = _run("queue", "stats", "x", "--url", redis_url, "--prefix", "a{")
    assert code == 2
    assert "prefix" in out
