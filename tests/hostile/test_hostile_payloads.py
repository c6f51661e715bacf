"""Payloads are data, never code: a pickle bomb stored wherever a primitive reads (a json or
raw cache entry, even one forged to claim another format; a queue payload and dead letter;
a lock's value; a counter; a semaphore permit; the CLI's views) is never unpickled unless
the user chose the pickle serializer. The bomb is live: unpickling it writes a marker file.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from pyredis_atomic import (
    AtomicError,
    BoundedCounter,
    Cache,
    DecodeError,
    Lock,
    ReliableQueue,
    Semaphore,
)
from pyredis_atomic.cli.main import cli


class _Bomb:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        code = f"__import__('pathlib').Path({str(self.marker)!r}).write_text('pwned')"
        return (eval, (code,))


@pytest.fixture
def bomb(tmp_path: Path) -> tuple[bytes, Path]:
    marker = tmp_path / "unpickled"
    return pickle.dumps(_Bomb(marker), protocol=pickle.HIGHEST_PROTOCOL), marker


def test_a_pickle_bomb_is_never_unpickled(bomb: tuple[bytes, Path], client: redis.Redis,
                                          redis_client: redis.Redis, redis_url: str) -> None:
    data, marker = bomb
    r = redis_client  # writes the bombs behind the primitives' backs

    # Cache: a pickle-written entry read by json and raw caches; an entry forged to claim
    # the json format; one forged with no format at all.
    writer = Cache(client, "c", ttl=60, serializer="pickle")
    writer.set("k", _Bomb(marker))
    assert not marker.exists()  # pickling the bomb does not run it
    with pytest.raises(DecodeError):
        Cache(client, "c", ttl=60).get("k")
    with pytest.raises(DecodeError):
        Cache(client, "c", ttl=60).get_or_set("k", lambda: "fresh")
    assert Cache(client, "c", ttl=60).inspect("k")["exists"]
    with pytest.raises(DecodeError):
        Cache(client, "c", ttl=60, serializer="raw").get("k")
    entry = writer.key_of("k")
    fields = {k.decode() if isinstance(k, bytes) else k: v
              for k, v in r.hgetall(entry).items()}
    fmt_field = next(k for k, v in fields.items() if v == b"pickle")
    r.hset(entry, fmt_field, b"json")  # forged: pickle bytes claiming to be json
    with pytest.raises(DecodeError):
        Cache(client, "c", ttl=60).get("k")
    with pytest.raises(DecodeError):  # a raw reader refuses what claims to be json
        Cache(client, "c", ttl=60, serializer="raw").get("k")
    r.hset(entry, fmt_field, b"raw")  # forged: claims raw, read by a raw cache: bytes back
    assert Cache(client, "c", ttl=60, serializer="raw").get("k") == data

    # Queue: payload bytes come back as bytes, from pop and from the dead letters.
    q = ReliableQueue(client, "q", max_deliveries=1)
    q.push(data)
    msg = q.pop()
    assert msg is not None
    assert msg.payload == data
    q.nack(msg)
    assert [d.payload for d in q.dead_letters()] == [data]

    # Lock, counter, semaphore: their keys hold the bomb.
    r.set("atomic:lock:{l}", data)
    assert not Lock(client, "l").acquire(blocking=False)
    Lock.inspect(client, "l")
    r.set("atomic:counter:{n}", data)
    with pytest.raises(AtomicError):
        BoundedCounter(client, "n").incr()
    r.zadd("atomic:semaphore:{s}:holders", {data: 2**50})
    assert Semaphore(client, "s", limit=5).count() == 1
    [(permit, _)] = Semaphore(client, "s", limit=5).holders()  # shown escaped, not run
    assert permit.startswith("\\x80")

    # The CLI's views (cache show with the json default, queue dead letters).
    runner = CliRunner()
    runner.invoke(cli, ["cache", "show", "c", "k", "--url", redis_url])
    runner.invoke(cli, ["queue", "dead", "q", "--url", redis_url])
    runner.invoke(cli, ["lock", "show", "l", "--url", redis_url])

    assert not marker.exists(), "a payload was unpickled"
    # The bomb is live: the one reader that opted into pickle does run it.
    r.hset(entry, fmt_field, b"pickle")
    writer.get("k")
    assert marker.exists()
