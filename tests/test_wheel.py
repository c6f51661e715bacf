"""The wheel carries the Lua scripts: built, installed into a fresh virtualenv (not
editable), it finds and loads every script."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from pyredis_atomic import default_registry
from pyredis_atomic.testing import RedisServer

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

PROBE = """
import json, sys, redis, pyredis_atomic
from pyredis_atomic import default_registry
from pyredis_atomic._core.script import builtin_lua_dir
from pyredis_atomic.manifest import build_manifest, load_schema
r = default_registry()
manifest = build_manifest()
client = redis.Redis(port=int(sys.argv[1]))
loaded = r.load(client)
print(json.dumps({"file": pyredis_atomic.__file__, "lua": str(builtin_lua_dir()),
                  "loaded": loaded, "missing": r.missing(client),
                  "time": r.call(client, "server_time"),
                  "sources": {e["name"]: e["source"] for e in manifest["scripts"]},
                  "schema": load_schema()["title"]}))
"""


def test_wheel_installs_and_loads_every_script(tmp_path: Path, redis_server: RedisServer) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)],
        cwd=ROOT, check=True, capture_output=True, timeout=300,
    )
    (wheel,) = dist.glob("*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    work = tmp_path / "elsewhere"  # not the checkout: nothing can come from ../lua
    work.mkdir()
    with redis_server.client() as c:
        c.script_flush()
    out = subprocess.run([str(py), "-c", PROBE, str(redis_server.port)], cwd=work,
                         check=True, capture_output=True, text=True, timeout=120)
    report = json.loads(out.stdout)
    site = str(env_dir)
    assert report["file"].startswith(site), report["file"]
    assert report["lua"].startswith(site), report["lua"]
    expected = {name: default_registry().get(name).sha1 for name in default_registry().names()}
    assert report["loaded"] == expected
    assert report["missing"] == []
    assert len(report["time"]) == 2
    # The wheel carries lua/includes and the manifest's schema: the expanded sources (what
    # the SHA1s are of) are the checkout's, byte for byte.
    assert report["sources"] == {n: default_registry()[n].source
                                 for n in default_registry().names()}
    assert report["schema"].startswith("pyredis-atomic scripts manifest")
    cli = subprocess.run([str(env_dir / "bin" / "pyredis-atomic"), "scripts", "list"],
                         cwd=work, check=True, capture_output=True, text=True, timeout=60)
    assert all(name in cli.stdout for name in expected)
