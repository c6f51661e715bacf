"""Every ```python block of README.md and docs/**/*.md runs as written, ON ITS OWN: each in a
fresh namespace, against a freshly flushed real server, so a reader can copy any one block
into a file and run it.

How an example reaches a server: it writes what a user with a local Redis writes,
``redis.Redis()`` (or ``redis.asyncio.Redis()``; ``RedisCluster(host="localhost",
port=7000)`` for a cluster), and this test points exactly those constructor calls at the
harness's server (the Redis on 6379 is not ours to touch). A block that builds a client any
other way (another host, ``from_url``, other arguments) fails here instead of reaching a server
this test cannot redirect.

Which blocks run is said by the fence language: ``python`` runs; anything else does not
(``py`` for fragments such as the racy recipes, ``sh``/``console`` for commands, ``text`` for
output, ``json``, ``lua``, ``mermaid``, ...). A fence without a language fails, so every
block says which it is.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

# An opening fence (possibly indented, inside a list or a tab), its language, and the body up
# to the closing fence at the same indentation.
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>```+)(?P<lang>[^\n`]*)\n"
                   r"(?P<body>.*?)^(?P=indent)(?P=ticks)[ \t]*$", re.M | re.S)
# The languages a fence may carry; only "python" runs.
NOT_RUN = {"py", "sh", "console", "text", "json", "lua", "mermaid", "toml", "yaml", "ini",
           "javascript", "js", "typescript", "go", "java", "ruby", "rust", "diff"}


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language and its (dedented) code."""

    path: Path
    line: int
    lang: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _blocks() -> list[Block]:
    out = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            lang = m["lang"].strip().split(" ", 1)[0].lstrip("{.").rstrip("}")
            out.append(Block(path, line, lang, textwrap.dedent(m["body"])))
    return out


BLOCKS = _blocks()
RUNNABLE = [b for b in BLOCKS if b.lang == "python"]

# The client constructions an example may contain, and what this test turns them into.
STANDALONE = re.compile(r"\b(redis\.asyncio\.Redis|redis\.Redis)\(\)")
CLUSTER = re.compile(r'\b((?:redis\.asyncio\.cluster\.|redis\.cluster\.)?RedisCluster)\('
                     r'host="localhost", port=7000\)')
ANY_CLIENT = re.compile(r"\b(?:Redis|RedisCluster)\s*\(|\bfrom_url\s*\(")


def test_there_are_examples_and_every_fence_names_its_language() -> None:
    assert len(RUNNABLE) >= 6
    unmarked = [b.where for b in BLOCKS if not b.lang]
    assert not unmarked, f"fences without a language (python runs, py/sh/text don't): {unmarked}"
    unknown = sorted({f"{b.where} {b.lang}" for b in BLOCKS
                      if b.lang != "python" and b.lang not in NOT_RUN})
    assert not unknown, f"unknown fence languages (add to NOT_RUN if meant): {unknown}"


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.where for b in RUNNABLE])
def test_example_runs_on_its_own(block: Block, request: pytest.FixtureRequest) -> None:
    code = block.code
    wanted = len(ANY_CLIENT.findall(code))
    made = 0
    if STANDALONE.search(code):
        url = urlsplit(request.getfixturevalue("redis_url"))  # flushed for this block
        db = (url.path or "/0").lstrip("/") or "0"
        args = f"host={url.hostname!r}, port={url.port or 6379}, db={db}"
        if url.password:
            args += f", username={url.username!r}, password={url.password!r}"
        code, n = STANDALONE.subn(lambda m: f"{m[1]}({args})", code)
        made += n
    if CLUSTER.search(code):
        cluster = request.getfixturevalue("redis_cluster")
        cluster.flushall()
        node = cluster.primaries[0]
        code, n = CLUSTER.subn(lambda m: f"{m[1]}(host={node.host!r}, port={node.port})", code)
        made += n
    assert made == wanted, (
        f"{block.where} builds a Redis client this test cannot point at its server: write "
        'redis.Redis() / redis.asyncio.Redis() / RedisCluster(host="localhost", port=7000)')
    namespace: dict[str, object] = {"__name__": "__docs_example__"}
    try:
        exec(compile(code, block.where, "exec"), namespace)
    except Exception as exc:
        pytest.fail(f"{block.where} failed on its own: {exc!r}\n{block.code}")
