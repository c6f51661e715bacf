"""The ``pyredis-atomic cache`` commands and the cache demo, against a spawned server."""

from __future__ import annotations

import json

import redis
from click.testing import CliRunner

from pyredis_atomic import Cache
from pyredis_atomic.cli.commands.cache import command
from pyredis_atomic.cli.demos import cache as demo


def test_show_and_delete(redis_url: str, redis_client: redis.Redis) -> None:
    cache = Cache(redis_client, "products", ttl=30)
    cache.set("p1", {"name": "x"})
    runner = CliRunner()
    shown = runner.invoke(command, ["show", "products", "p1", "--url", redis_url])
    assert shown.exit_code == 0, shown.output
    assert "value: {'name': 'x'}" in shown.stdout
    shown = runner.invoke(command, ["show", "products", "p1", "--url", redis_url, "--json"])
    info = json.loads(shown.stdout)
    assert info["value"] == {"name": "x"}
    assert info["exists"] is True
    gone = runner.invoke(command, ["delete", "products", "p1", "p2", "--url", redis_url])
    assert gone.exit_code == 1  # p2 had no value: a negative answer, named
    assert "deleted 1 of 2" in gone.output
    assert "no value: p2" in gone.output
    missing = runner.invoke(command, ["show", "products", "p1", "--url", redis_url])
    assert missing.exit_code == 1


def test_show_binary_and_refused_connection(redis_url: str, redis_client: redis.Redis) -> None:
    Cache(redis_client, "b", ttl=30, serializer="raw").set("k", b"\xff")
    runner = CliRunner()
    out = runner.invoke(command, ["show", "b", "k", "--serializer", "raw", "--url", redis_url])
    assert out.exit_code == 0
    assert "\\xff" in out.output
    # Without --serializer the entry's own (raw) decodes it; a wrong one is an error.
    auto = runner.invoke(command, ["show", "b", "k", "--url", redis_url, "--json"])
    assert auto.exit_code == 0, auto.output
    assert json.loads(auto.stdout)["value_base64"] == "/w=="
    wrong = runner.invoke(command, ["show", "b", "k", "--serializer", "json", "--url", redis_url])
    assert wrong.exit_code == 2
    assert "DecodeError" in wrong.stderr
    assert wrong.stdout == ""
    refused = runner.invoke(command, ["show", "b", "k", "--url", "redis://127.0.0.1:1/0"])
    assert refused.exit_code == 2


def test_demo_tells_the_story(redis_client: redis.Redis) -> None:
    lines: list[str] = []
    demo.run(redis_client, lines.append, "demo:")
    text = "\n".join(lines)
    assert "-> 1 database query" in text
    assert "stampede" in text
    assert redis_client.keys("*") == []
