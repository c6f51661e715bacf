"""Manifest v2: valid against its shipped JSON Schema, exact sources, and key templates that
expand to exactly the keys the Python API writes, for hostile names too."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pytest
import redis
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from pyredis_atomic import (
    BoundedCounter,
    Cache,
    Lock,
    RateLimiter,
    ReliableQueue,
    Semaphore,
    default_registry,
)
from pyredis_atomic._core.keys import escape_name
from pyredis_atomic.cli.main import cli
from pyredis_atomic.manifest import (
    MANIFEST_VERSION,
    SCHEMA_PATH,
    _samples,
    build_manifest,
    expand_template,
    load_schema,
)

MANIFEST = build_manifest()
SCRIPTS = {s["name"]: s for s in MANIFEST["scripts"]}
# Names that try to break out of the hash tag, fake an escape or another primitive's name.
HOSTILE = ["a}b{c", "%7B", "{x}", "%", "}{", "lock:{n}:fences", "é ü 字 \u2028", "a b\tc\n"]
NAMES = st.one_of(st.sampled_from(HOSTILE),
                  st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1,
                          max_size=12))
PREFIXES = st.sampled_from(["atomic:", "", "my app:", "x%7B:"])


def test_the_manifest_is_valid_against_the_shipped_schema() -> None:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(MANIFEST, schema)
    assert MANIFEST["version"] == MANIFEST_VERSION == 2
    # The schema rejects what it should: it is not a schema that takes anything.
    broken = json.loads(json.dumps(MANIFEST))
    broken["scripts"][0]["sha1"] = "not a sha"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_the_schema_ships_inside_the_package() -> None:
    import pyredis_atomic

    assert SCHEMA_PATH.parent == Path(pyredis_atomic.__file__).parent
    assert SCHEMA_PATH.is_file()


def test_cli_and_python_export_the_same_manifest(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["scripts", "export", "--format", "manifest"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == MANIFEST == default_registry().manifest()


def test_every_package_script_is_described_in_full() -> None:
    registry = default_registry()
    assert set(SCRIPTS) == set(registry.names())
    for name, entry in SCRIPTS.items():
        script = registry[name]
        assert entry["source"] == script.source
        assert entry["sha1"] == hashlib.sha1(entry["source"].encode()).hexdigest()
        assert entry["returns"]["shape"] is not None, name
        if name != "server_time":
            assert entry["primitive"] is not None, name
            assert all(k["template"] for k in entry["keys"]), name


def test_a_catalog_of_other_scripts_only_has_those(tmp_path: Path) -> None:
    from pyredis_atomic import ScriptRegistry

    (tmp_path / "mine.lua").write_text("--[[\nMine.\n\nKEYS[1] k (string): a key\n"
                                       "ARGV[1] n (int > 0, ms): a lease\n\nReturns: 1\n]]\n"
                                       "return redis.call('PEXPIRE', KEYS[1], ARGV[1])\n")
    manifest = ScriptRegistry([tmp_path], builtin=False).manifest()
    jsonschema.validate(manifest, load_schema())
    assert [s["name"] for s in manifest["scripts"]] == ["mine"]
    assert manifest["scripts"][0]["args"][0]["unit"] == "ms"
    assert manifest["primitives"] == {}


def test_the_sources_load_as_the_sha1s(redis_client: redis.Redis) -> None:
    """What a Node or Go service would do: SCRIPT LOAD the manifest's source."""
    for entry in MANIFEST["scripts"]:
        assert redis_client.script_load(entry["source"]) == entry["sha1"]


def test_defaults_are_what_the_python_api_sends() -> None:
    args = {(s, a["name"]): a["default"] for s, e in SCRIPTS.items() for a in e["args"]}
    assert args[("lock_acquire", "ttl_ms")] == "10000"  # Lock(ttl=10.0)
    assert args[("queue_claim", "lease_ms")] == "30000"  # visibility_timeout=30.0
    assert args[("queue_claim", "max_deliveries")] == "5"
    assert args[("queue_claim", "reclaim")] == "100"
    assert args[("semaphore_acquire", "ttl_ms")] == "30000"
    assert args[("counter_add", "options")] == "0 0 0 3600000"
    assert args[("lock_acquire", "token")] is None  # the caller's own


def test_templates_state_the_escaping_once() -> None:
    assert "%25" in MANIFEST["keys"]["escaping"]
    assert SCRIPTS["lock_acquire"]["keys"][1]["template"] == "{prefix}lock:{{{name}}}:fences"
    for entry in MANIFEST["primitives"].values():
        assert entry["operations"]
    lock = MANIFEST["primitives"]["lock"]["operations"]["acquire"]["protocol"]
    assert "BLPOP the signal key" in lock


@settings(max_examples=30)
@given(name=NAMES, prefix=PREFIXES, key=NAMES, request_id=NAMES)
def test_templates_expand_to_the_keys_the_core_builds(
    name: str, prefix: str, key: str, request_id: str
) -> None:
    for script, sample in _samples(name, prefix, key, request_id).items():
        templates = [k["template"] for k in SCRIPTS[script]["keys"]]
        built = [k.decode() if isinstance(k, bytes) else k for k in sample.call.keys]
        assert [expand_template(t, name=name, prefix=prefix, key=key, request_id=request_id)
                for t in templates] == built, script


def _expanded(primitive: str, **values: str) -> set[str]:
    keys = MANIFEST["primitives"][primitive]["keys"].values()
    return {expand_template(t, **values) for t in keys}


@settings(max_examples=15)
@given(name=NAMES, prefix=PREFIXES)
def test_the_api_writes_only_keys_of_its_templates(
    name: str, prefix: str, redis_client: redis.Redis
) -> None:
    """Real operations on a real server: every key they leave is one the templates name."""
    redis_client.flushall()
    lock = Lock(redis_client, name, prefix=prefix)
    lock.acquire()
    lock.release()
    q = ReliableQueue(redis_client, name, prefix=prefix)
    q.push(b"a", dedup_key="d")
    q.push(b"b", delay=60)
    msg = q.pop()
    assert msg is not None
    q.nack(msg, delay=0)
    counter = BoundedCounter(redis_client, name, max=10, prefix=prefix)
    counter.incr(1, request_id="r1")
    limiter = RateLimiter(redis_client, name, rate=5, prefix=prefix)
    limiter.hit()
    sem = Semaphore(redis_client, name, limit=2, prefix=prefix)
    permit = sem.acquire()
    assert permit is not None
    sem.release(permit)
    cache = Cache(redis_client, name, ttl=60.0, prefix=prefix)
    cache.get_or_set(name, lambda: 1)

    written = {k.decode() if isinstance(k, bytes) else k for k in redis_client.keys("*")}
    want = set()
    for primitive in ("lock", "queue", "ratelimit", "semaphore"):
        want |= _expanded(primitive, name=name, prefix=prefix)
    want |= _expanded("counter", name=name, prefix=prefix, request_id="r1")
    want |= _expanded("cache", name=name, prefix=prefix, key=name)
    assert written <= want, written - want
    # Every primitive left its main key, so the check covered all of them.
    for must in (f"{prefix}lock:{{{escape_name(name)}}}:fences",
                 f"{prefix}queue:{{{escape_name(name)}}}:payload",
                 f"{prefix}counter:{{{escape_name(name)}}}",
                 f"{prefix}counter:{{{escape_name(name)}}}:request:r1",
                 f"{prefix}ratelimit:{{{escape_name(name)}}}",
                 f"{prefix}semaphore:{{{escape_name(name)}}}:signal",
                 f"{prefix}cache:{escape_name(name)}:{{{escape_name(name)}}}:e"):
        assert must in written, (must, written)
