#!/usr/bin/env python3
"""Generate the sync modules (and sync test twins) from their asyncio sources.

The asyncio code is the source; the sync code is written from it by token rewrites, the
approach of httpcore's ``unasync.py``: ``async def`` -> ``def``, ``await x`` -> ``x``,
``async with`` -> ``with``, ``AsyncX`` -> ``X``, ``redis.asyncio`` -> ``redis``, imports of
``..pkg`` -> ``.pkg``, the asyncio driver -> the sync driver, and so on (the table
``RULES`` below). Every generated file starts with a line naming its source and saying not
to edit it.

    python scripts/unasync.py           # rewrite every generated file
    python scripts/unasync.py --check   # exit 1 (and print a diff) if any differs

What truly differs between the two APIs (threads vs tasks, cancellation vs
``KeyboardInterrupt``, sleeping, locks, shielded clean-up) is NOT rewritten here: it lives
once in the hand-written drivers (``pyredis_atomic/_sync.py``,
``pyredis_atomic/asyncio/_driver.py``) and runtimes (``pyredis_atomic/_runtime.py``,
``pyredis_atomic/asyncio/_runtime.py``), which expose the same names, so a source imports
``from ._driver import ...`` / ``from ._runtime import ...`` and its sync twin gets the
sync versions.

Extending it:

- a new module: write ``pyredis_atomic/asyncio/<name>.py`` (any public module there is a
  source; ``_``-prefixed ones are hand-written), run the script, commit both files;
- a new test twin: add its pair to ``TEST_FILES`` (``tests/test_<x>_shared_async.py`` ->
  ``tests/test_<x>_shared_sync.py``). The tests of behaviour both APIs share live once, in the
  asyncio source; only what truly differs (threads vs tasks, processes, cancellation vs
  ``KeyboardInterrupt``, sync-only APIs) stays in hand-written ``tests/test_<x>.py`` /
  ``tests/test_<x>_async.py``. A shared test takes the asyncio fixtures (``aclient``,
  ``async_redis_client``, ``make_aclient``), sleeps, waits and runs things in the background
  through ``tests/twin_async.py`` (``sleep``, ``spawn``, ``Event``, ``settle``, ``running``,
  ``until``, ``REPR_PREFIX``), whose hand-written sync counterpart ``tests/twin_sync.py`` has
  threads, ``time.sleep`` and ``threading.Event``; ``TEST_RULES`` renames those. A helper module
  the shared tests import can be generated the same way (``tests/near_helpers_async.py`` ->
  ``near_helpers_sync.py``: ``from <x>_async import`` becomes ``from <x>_sync import``);
- a new async-only name: add a rule to ``RULES`` (a regex and its replacement, applied to
  every line in order), or to ``MODULE_RULES[<name>.py]`` when only that module needs it,
  e.g. a docstring sentence that must read differently for sync users;
- something that truly differs (a thread vs a task, a sleep, an interrupt): a function of
  the same name in both runtimes (or drivers), imported by the source.

The rewritten text then has its imports sorted by ``ruff`` (``--select I --fix``), since
the renamed imports (``..errors`` -> ``.errors``, ``._driver`` -> ``._sync``) change their
order; the dev extra installs ruff.
"""

from __future__ import annotations

import argparse
import difflib
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

Rule = tuple[str, str]

# Applied to every line of every source, in this order (re.sub).
RULES: list[Rule] = [
    # syntax
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    # (await f(x)).y -> f(x).y: no parentheses left around a plain call
    (r"(?<![\w)\]])\(await ([\w.]+\([^()]*(?:\([^()]*\)[^()]*)*\))\)", r"\1"),
    (r"\bawait ", ""),
    (r"__aenter__", "__enter__"),
    (r"__aexit__", "__exit__"),
    (r"__aiter__", "__iter__"),
    (r"__anext__", "__next__"),
    (r"\bStopAsyncIteration\b", "StopIteration"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncGenerator\b", "Generator"),
    # redis-py
    (r"``redis\.asyncio`` client", "redis-py client"),
    (r"^import redis\.asyncio\n", ""),
    (r"\bredis\.asyncio\.(client|cluster|retry|connection|sentinel)\b", r"redis.\1"),
    (r"\bredis\.asyncio\b", "redis"),
    (r"\.aclose\(\)", ".close()"),
    # the package: asyncio/x.py imports ..x -> x.py imports .x; the drivers
    (r"\bpyredis_atomic\.asyncio\._driver\b", "pyredis_atomic._sync"),
    (r"\bpyredis_atomic\.asyncio\.", "pyredis_atomic."),
    (r"^from \.\.", "from ."),
    (r"^(\s*)from \.\.", r"\1from ."),
    (r"\bfrom \._driver import\b", "from ._sync import"),
    (r"\bfrom pyredis_atomic\.asyncio import\b", "from pyredis_atomic import"),
    # names: AsyncScriptRegistry -> ScriptRegistry, _AsyncRenewer -> _Renewer, ...
    (r"\bAsync([A-Z][A-Za-z0-9]*)", r"\1"),
    (r"\b_Async([A-Z][A-Za-z0-9]*)", r"_\1"),
    (r'\bf"asyncio\.', 'f"'),  # reprs: asyncio.Lock(...) -> Lock(...)
    # tests
    (r"\bpytest_asyncio\.fixture\b", "pytest.fixture"),
    (r"^import pytest_asyncio\n", ""),
    (r"\baclient\b", "client"),
    (r"\baredis\b", "redis_client"),
]

PKG = "pyredis_atomic"

# Rules of one module only (by its file name in pyredis_atomic/asyncio/): applied to the
# whole text first (so they may span lines: write ``\s+`` where the source may wrap), then
# RULES line by line. Use them for what must read differently for sync users (docstrings),
# never for code: code that differs belongs in the drivers/runtimes.
MODULE_RULES: dict[str, list[Rule]] = {
    "lock.py": [
        (r"\nCancellation: a cancelled ``acquire`` gives back[^\n]*\n[^\n]*\n[^\n]*\n", ""),
        (r"a background task \(one per event loop for all its locks\)",
         "a background thread (one per process for all locks)"),
        (r"\(in the renewer task;\s+a coroutine function is awaited\)", "(in the renewer thread)"),
        (r"between tasks only", "between threads only"),
        (r"Interrupted \(cancelled\)", "Interrupted (KeyboardInterrupt...)"),
        (r"``async with`` statement", "``with`` statement"),
    ],
    "queue.py": [
        (r"\nCancellation: a task cancelled while a claim(.|\n)*?nothing is lost\.\n", ""),
    ],
    "cache.py": [
        (r"\nCancellation: a caller cancelled while it holds(.|\n)*?owns nothing\.\n", ""),
        (r"on a ``redis.asyncio`` client \(standalone or\s+``RedisCluster``\); loaders are "
         r"zero-argument callables returning an awaitable \(an\s+``async def`` function\) "
         r"or a plain value\.", "on a redis-py client (standalone or ``RedisCluster``)."),
        (r"``loader\(\)``'s result \(awaited if it is\s+awaitable\), stored",
         "``loader()``'s result, stored"),
        (r"\n\s*For ``async def`` functions; plain ones work too(.|\n)*?is awaited\)\.", ""),
    ],
    "semaphore.py": [
        (r"``async with sem:``", "``with sem:``"),
    ],
}

# Test twins: (asyncio source, generated sync file, rules of this pair only). Only tests
# written for both APIs; tests of one API stay hand-written in their own files.
TEST_FILES: list[tuple[str, str, list[Rule]]] = [
    ("tests/test_interrupts_async.py", "tests/test_interrupts_sync.py", []),
    ("tests/test_registry_async.py", "tests/test_registry_sync.py", []),
    ("tests/test_lock_shared_async.py", "tests/test_lock_shared_sync.py", []),
    ("tests/queue_helpers_async.py", "tests/queue_helpers.py", []),
    ("tests/test_queue_shared_async.py", "tests/test_queue_shared_sync.py",
     [(r"\bfrom queue_helpers_async import\b", "from queue_helpers import")]),
    ("tests/test_cache_shared_async.py", "tests/test_cache_shared_sync.py", []),
    ("tests/test_worker_shared_async.py", "tests/test_worker_shared_sync.py", []),
    ("tests/test_worker_renewer_shared_async.py", "tests/test_worker_renewer_shared_sync.py",
     []),
    ("tests/near_helpers_async.py", "tests/near_helpers_sync.py", []),
    ("tests/test_cache_near_shared_async.py", "tests/test_cache_near_shared_sync.py", []),
    ("tests/test_counter_shared_async.py", "tests/test_counter_shared_sync.py", []),
    ("tests/test_semaphore_shared_async.py", "tests/test_semaphore_shared_sync.py", []),
    ("tests/test_ratelimit_shared_async.py", "tests/test_ratelimit_shared_sync.py", []),
]

# Applied, after RULES, to every line of the test twins only: the test helpers and the
# fixtures that have an asyncio and a sync version of the same name.
TEST_RULES: list[Rule] = [
    # tests/twin_async.py (tasks, asyncio.sleep) -> tests/twin_sync.py (threads, time.sleep),
    # and test helpers generated like the tests: <x>_async.py -> <x>_sync.py
    (r"^from (\w+)_async import\b", r"from \1_sync import"),
    (r"\bmake_aclient\b", "make_client"),
    (r"\basync_redis_client\b", "redis_client"),
]


def _files(root: Path) -> list[tuple[str, str, list[Rule]]]:
    """Every (source, target, rules): each public module of ``pyredis_atomic/asyncio/``
    (a name not starting with ``_``: the drivers, runtimes and ``__init__`` are
    hand-written) generates ``pyredis_atomic/<name>.py``; then the test twins."""
    found = sorted(p.name for p in (root / PKG / "asyncio").glob("*.py")
                   if not p.name.startswith("_"))
    return [(f"{PKG}/asyncio/{name}", f"{PKG}/{name}", MODULE_RULES.get(name, []))
            for name in found] + TEST_FILES


FILES = _files(ROOT)

HEADER = "# GENERATED from {source} by scripts/unasync.py: do not edit.\n"


def _compile(rules: list[Rule]) -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(p, re.MULTILINE), r) for p, r in rules]


def unasync_text(text: str, source: str, extra: list[Rule] | None = None,
                 line_rules: list[Rule] | None = None) -> str:
    """The sync twin of ``text`` (the asyncio source at ``source``), imports unsorted.

    Each line is rewritten by the rules; then continuation lines that were aligned under an
    open bracket (``def f(a,`` / ``      b)``) are moved with that bracket, since ``async def``
    -> ``def`` and ``await x`` -> ``x`` shift it left. ``line_rules`` (the test twins':
    :data:`TEST_RULES`) are applied after :data:`RULES`.
    """
    for pattern, replacement in _compile(extra or []):
        text = pattern.sub(replacement, text)
    rules = _compile(RULES + (line_rules or []))
    old_lines = text.splitlines(keepends=True)
    new_lines: list[str] = []
    for old in old_lines:
        line = old
        for pattern, replacement in rules:
            line = pattern.sub(replacement, line)
        new_lines.append(line)
    if len(new_lines) == len(old_lines):  # (a rule that drops a whole line: no realigning)
        _realign(old_lines, new_lines)
    return HEADER.format(source=source) + "".join(new_lines)


def _column_map(old: str, new: str) -> list[int]:
    """For each column of ``old``, its column in ``new`` (rules only cut and replace)."""
    cols = [0] * (len(old) + 1)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for i in range(i1, i2 + 1):
            cols[i] = j1 + min(i - i1, j2 - j1) if tag != "equal" else j1 + (i - i1)
    return cols


def _realign(old_lines: list[str], new_lines: list[str]) -> None:
    """Re-indent visually aligned continuation lines of ``new_lines`` in place."""
    opening: dict[int, tuple[int, int]] = {}  # row -> (row, col) of the bracket open at it
    stack: list[tuple[int, int]] = []
    last_row = 0
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO("".join(old_lines)).readline))
    except (tokenize.TokenError, SyntaxError):
        return
    for tok in tokens:
        row = tok.start[0] - 1
        if row != last_row and stack and tok.type not in (tokenize.NL, tokenize.COMMENT):
            opening.setdefault(row, stack[-1])
        last_row = row if tok.type != tokenize.STRING else tok.end[0] - 1
        if tok.type == tokenize.OP and tok.string in "([{":
            stack.append((row, tok.start[1]))
        elif tok.type == tokenize.OP and tok.string in ")]}" and stack:
            stack.pop()
    shift: dict[int, int] = {}  # row -> columns its indentation moved by
    maps: dict[int, list[int]] = {}
    for row in sorted(opening):
        brow, bcol = opening[row]
        old = old_lines[row]
        indent = len(old) - len(old.lstrip(" "))
        if indent != bcol + 1:
            continue  # a hanging indent: unaffected by what the line above lost
        if brow not in maps:
            maps[brow] = _column_map(old_lines[brow], new_lines[brow])
        want = maps[brow][bcol] + shift.get(brow, 0) + 1
        new = new_lines[row]
        have = len(new) - len(new.lstrip(" "))
        if want != have:
            new_lines[row] = " " * want + new.lstrip(" ")
            shift[row] = want - have


def sort_imports(text: str, target: str, root: Path = ROOT) -> str:
    """``text`` with its imports sorted as ``ruff`` wants them (renamed imports move)."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "I", "--fix", "--quiet",
         "--stdin-filename", target, "-"],
        input=text, capture_output=True, text=True, cwd=root, check=False)
    if done.returncode not in (0, 1) or not done.stdout:
        raise SystemExit(f"ruff failed on {target}: {done.stderr.strip()}")
    return done.stdout


def generate(source: str, target: str, extra: list[Rule], root: Path = ROOT) -> str:
    """The generated text of ``target`` (paths relative to ``root``)."""
    text = (root / source).read_text(encoding="utf-8")
    line_rules = TEST_RULES if source.startswith("tests/") else None
    return sort_imports(unasync_text(text, source, extra, line_rules), target, root)


def main(argv: list[str] | None = None) -> int:
    """Regenerate (or with ``--check`` compare) every file in :data:`FILES`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and print a diff if a file differs")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the checkout to work on (default: this script's)")
    args = parser.parse_args(argv)
    stale = 0
    for source, target, extra in _files(args.root):
        want = generate(source, target, extra, args.root)
        path = args.root / target
        have = path.read_text(encoding="utf-8") if path.exists() else ""
        if have == want:
            continue
        if args.check:
            stale += 1
            sys.stdout.writelines(difflib.unified_diff(
                have.splitlines(keepends=True), want.splitlines(keepends=True),
                f"{target} (committed)", f"{target} (generated from {source})"))
        else:
            path.write_text(want, encoding="utf-8")
            print(f"wrote {target}")
    if stale:
        print(f"\n{stale} generated file(s) differ from their asyncio source: run "
              "python scripts/unasync.py and commit the result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
