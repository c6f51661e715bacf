"""The documentation site builds with ``mkdocs build --strict``: a broken link, a missing
anchor, a page left out of ``nav:`` or an API reference to a name that no longer exists
fails here (and in CI), not on the published site."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "index.html").is_file()
    assert (tmp_path / "reference" / "index.html").is_file()


def test_readme_links_work_on_pypi() -> None:
    # PyPI renders README.md away from the repository: a relative link or image there is
    # broken, so every link must be absolute (or there must be none).
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)", text) + re.findall(r"^\[[^\]]+\]:\s*(\S+)", text,
                                                               re.M)
    relative = [t for t in targets if not re.match(r"https?://", t)]
    assert not relative, f"README.md links that break on PyPI: {relative}"
