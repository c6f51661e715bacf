"""The README's ``python`` examples run as written, in order, against a real server
(``redis.Redis()`` is pointed at the test's server instead of localhost:6379). Fragments
that are not meant to run (the racy recipes) are marked ``py`` instead."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyredis_atomic.testing import RedisServer

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 6


def test_readme_examples_run(redis_server: RedisServer) -> None:
    namespace: dict[str, object] = {"__name__": "readme"}
    where = f"host={redis_server.host!r}, port={redis_server.port}"
    with redis_server.client() as c:
        c.flushall()
    for i, block in enumerate(BLOCKS, start=1):
        code = (block.replace("redis.asyncio.Redis()", f"redis.asyncio.Redis({where})")
                .replace("redis.Redis()", f"redis.Redis({where})"))
        # Never let an example reach a server on the default port (6379 is not ours).
        assert "Redis()" not in code, f"block {i} builds a client this test cannot redirect"
        try:
            exec(compile(code, f"README.md python block {i}", "exec"), namespace)
        except Exception as exc:
            pytest.fail(f"README python block {i} failed: {exc!r}\n{block}")
