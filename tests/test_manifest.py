"""Manifest v2: valid against its shipped JSON Schema, exact sources, and key templates that
expand to exactly the keys the Python API writes, for hostile names too."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

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
from pyredis_atomic._core.calls import Call
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


def test_the_escaping_is_also_given_as_data() -> None:
    """keys.escapes (replace each first by the second, in order) is escape_name, and
    keys.escaped names the placeholders it applies to, so a port needs no prose."""
    keys = MANIFEST["keys"]
    assert keys["escaped"] == ["key", "name"]
    for name in [*HOSTILE, "%7B%", "}}}{{{%%", "%257D"]:
        out = name
        for old, new in keys["escapes"]:
            out = out.replace(old, new)
        assert out == escape_name(name), name


def test_packed_arguments_name_their_fields() -> None:
    for script in SCRIPTS.values():
        for arg in script["args"]:
            assert ("fields" in arg) == (arg["format"] == "packed"), (script["name"], arg)
            if "fields" in arg and arg["default"] is not None:
                assert len(arg["default"].split(" ")) == len(arg["fields"])
    options = next(a for a in SCRIPTS["counter_add"]["args"] if a["name"] == "options")
    assert options["fields"] == ["clamp", "initial", "ttl_ms", "request_ttl_ms"]
    assert SCRIPTS["cache_fetch"]["args"][0]["fields"] == ["gap", "lease_ms", "token", "format"]


def _take_apart(layout: dict[str, Any] | None, reply: Any) -> Any:
    """A reply decoded by a returns.layout: the Python twin of tests/node/atomic.mjs's."""
    if layout is None:
        return reply
    if "items" in layout:
        if not isinstance(reply, list):
            return {layout["integer"]: reply}
        out = {item["name"]: _take_apart(item, reply[i])
               for i, item in enumerate(layout["items"])}
        if "rest" in layout:
            out[layout["rest"]] = reply[len(layout["items"]):]
        return out
    if "fields" in layout:
        parts = (reply.decode() if isinstance(reply, bytes) else reply).split(" ")
        out = dict(zip(layout["fields"], parts, strict=False))
        if "repeat" in layout:
            group, start = layout["repeat"], len(layout["fields"])
            out["groups"] = [dict(zip(group, parts[i:i + len(group)], strict=True))
                             for i in range(start, len(parts) - len(group) + 1, len(group))]
        return out
    return reply


def _raw(client: redis.Redis, script: str, args: list[Any], **values: str) -> Any:
    """``script`` sent as another language would: keys from the templates, by EVAL."""
    entry = SCRIPTS[script]
    keys = [expand_template(k["template"], prefix="atomic:", **values) for k in entry["keys"]]
    reply = client.execute_command("EVAL", entry["source"], len(keys), *keys, *args)
    return _take_apart(entry["returns"].get("layout"), reply)


def _default(script: str, arg: str) -> str:
    return str(next(a["default"] for a in SCRIPTS[script]["args"] if a["name"] == arg))


def test_reply_layouts_take_real_replies_apart(redis_client: redis.Redis) -> None:
    """Replies decoded with returns.layout agree with what the Python API reports, and the
    queue's receipt template acknowledges what was claimed."""
    layouts = {s["name"] for s in MANIFEST["scripts"] if "layout" in s["returns"]}
    assert {"queue_push", "queue_claim", "counter_add", "ratelimit_hit"} <= layouts
    jsonschema.validate(MANIFEST, load_schema())

    pushed = _raw(redis_client, "queue_push", ["0", "0", "0", b"a", b"\x00\xff"], name="q")
    ids = [g["id"] for g in pushed["groups"]]
    q = ReliableQueue(redis_client, "q")
    assert q.stats().pending == 2
    head = [_default("queue_claim", "lease_ms"), _default("queue_claim", "max_deliveries")]
    claim = _raw(redis_client, "queue_claim",
                 [*head, "5", _default("queue_claim", "reclaim"), ""], name="q")
    assert [g["id"] for g in claim["header"]["groups"]] == ids
    assert [g["deliveries"] for g in claim["header"]["groups"]] == ["1", "1"]
    assert claim["payloads"] == [b"a", b"\x00\xff"]
    assert claim["header"]["acked"] == "0"
    assert q.stats().in_flight == 2
    template = MANIFEST["primitives"]["queue"]["receipt"]
    receipts = [template.format(**g) for g in claim["header"]["groups"]]
    acked = _raw(redis_client, "queue_claim",
                 [*head, "0", _default("queue_claim", "reclaim"), " ".join(receipts)], name="q")
    assert acked["header"]["acked"] == "2"
    assert q.stats().in_flight == 0

    counter = BoundedCounter(redis_client, "c", max=10)
    counter.incr(8)
    layout = SCRIPTS["counter_add"]["returns"]["layout"]
    for delta, clamp, want in [(5, True, {"value": 10, "delta": 2}), (-1, False, {"value": 9})]:
        call = counter._spec.add_call(delta, clamp)  # the arguments Python sends, raw
        reply = redis_client.execute_command("EVAL", SCRIPTS["counter_add"]["source"],
                                             len(call.keys), *call.keys, *call.args)
        assert _take_apart(layout, reply) == want
    assert counter.get() == 9

    limiter = RateLimiter(redis_client, "r", rate=10, period=1.0, burst=3)
    for _ in range(3):
        limiter.hit()
    hit = _raw(redis_client, "ratelimit_hit", ["100000", "3", "1"], name="r")
    assert set(hit) == {"allowed", "remaining", "retry_after_us", "reset_after_us"}
    assert (hit["allowed"], hit["remaining"]) == ("0", "0")
    assert int(hit["retry_after_us"]) > 0

    sem = Semaphore(redis_client, "s", limit=1)
    assert sem.acquire() is not None
    taken = _raw(redis_client, "semaphore_acquire", ["p2", "1", "30000"], name="s")
    assert taken["held"] == 0
    assert 0 < taken["ms"] <= 30_000


def test_stored_configurations_decode_into_the_arguments_they_go_back_into(
    redis_client: redis.Redis
) -> None:
    """A configuration read with <kind>_config, taken apart by its layout, gives the values
    of the configured arguments the Python core sends (the counter: its config's fields)."""
    counter = BoundedCounter(redis_client, "c", min=-5, max=10, clamp=True)
    counter.incr(1)
    limiter = RateLimiter(redis_client, "r", rate=7, period=3.0, burst=4)
    limiter.hit()
    sem = Semaphore(redis_client, "s", limit=3)
    assert sem.acquire() is not None
    calls: list[tuple[str, Call[Any]]] = [
        ("counter_add", counter._spec.add_call(1, False)),
        ("ratelimit_hit", limiter._spec.hit_call()),
        ("semaphore_acquire", sem._spec.acquire_call("p"))]
    for script, call in calls:
        kind = script.split("_")[0]
        config = SCRIPTS[f"{kind}_config"]
        key = expand_template(config["keys"][0]["template"], prefix="atomic:", name=kind[0])
        reply = redis_client.execute_command("EVAL", config["source"], 1, key)
        fields = _take_apart(config["returns"]["layout"], reply)
        args = [a.decode() if isinstance(a, bytes) else str(a) for a in call.args]
        sent = {a["name"]: args[a["index"] - 1] for a in SCRIPTS[script]["args"]}
        if script == "counter_add":
            packed = next(a for a in SCRIPTS[script]["args"] if a["name"] == "config")
            assert list(fields) == packed["fields"]
            assert " ".join(fields.values()) == sent["config"]
        else:
            assert fields == {name: sent[name] for name in fields}, script
    empty = SCRIPTS["semaphore_config"]
    assert redis_client.execute_command("EVAL", empty["source"], 1, "{none}") is None
