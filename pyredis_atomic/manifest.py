"""The scripts manifest (version 2): everything a caller in another language needs.

``pyredis-atomic scripts export --format manifest`` prints it; from Python it is
:func:`build_manifest` (or ``registry.manifest()``). It is validated by the JSON Schema
shipped next to this module (:data:`SCHEMA_PATH`).

For every script: name, SHA1, the exact source the server runs (includes spliced in), its
keys with their Redis type and a **key template**, its arguments with format, unit and the
default the Python API sends, the reply, flags and the minimum server version. For every
primitive: which scripts make up which operation and the protocol a caller must follow
around them (waiting, leases).

Nothing here is copied by hand from the Python code: key templates are the keys the Python
core builds for a name and a prefix made of placeholder characters, and defaults are the
arguments it sends when configured with the public constructors' defaults (read from their
signatures). A test checks the templates against the keys Python builds for hostile names.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._core import cache as cache_core
from ._core import counter as counter_core
from ._core import lock as lock_core
from ._core import monitor as monitor_core
from ._core import queue as queue_core
from ._core import ratelimit as ratelimit_core
from ._core import semaphore as semaphore_core
from ._core.argformats import FORMATS
from ._core.calls import Call
from ._core.functions import FUNCTIONS_REDIS, Library
from ._core.keys import DEFAULT_PREFIX, ESCAPES, escape_name
from ._core.script import Catalog, Script

__all__ = ["MANIFEST_FORMAT", "MANIFEST_VERSION", "SCHEMA_PATH", "build_manifest",
           "expand_template", "load_schema"]

MANIFEST_VERSION = 2
MANIFEST_FORMAT = "pyredis-atomic-manifest/2"
SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")

# Placeholder characters (Unicode private use: no name escaping touches them) that stand
# for the parts of a key the caller supplies.
_PLACEHOLDERS = {"\ue000": "prefix", "\ue001": "name", "\ue002": "key",
                 "\ue003": "request_id"}
_PREFIX, _NAME, _KEY, _REQUEST = _PLACEHOLDERS
# Placeholders whose value is escaped (see ESCAPING); the others go in as they are.
_ESCAPED = frozenset({"name", "key"})

ESCAPING = (
    "A key template is a str.format-style string: '{{' and '}}' stand for a literal '{' and "
    "'}'; '{prefix}' is the key prefix as given (default '" + DEFAULT_PREFIX + "'; it may "
    "not contain '{' or '}'); '{name}' (a primitive's name) and '{key}' (a cache entry's "
    "key) are escaped first: every '%' becomes '%25', then every '{' becomes '%7B' and "
    "every '}' becomes '%7D' (so a name can never end a hash tag early or pass for another "
    "name); '{request_id}' goes in as it is. Names, keys and request ids are non-empty "
    "UTF-8 strings (names and keys at most 4096 bytes, request ids at most 256)."
)


def expand_template(template: str, **values: str) -> str:
    """Fill a key template (the rule of :data:`ESCAPING`), as a caller in another language
    would."""
    return template.format(**{k: escape_name(v) if k in _ESCAPED else v
                              for k, v in values.items()})


def _template(key: str | bytes) -> str:
    text = key.decode() if isinstance(key, bytes) else key
    text = text.replace("{", "{{").replace("}", "}}")
    for char, name in _PLACEHOLDERS.items():
        text = text.replace(char, "{" + name + "}")
    return text


def _default(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _signature_default(factory: Callable[..., Any], parameter: str) -> Any:
    return inspect.signature(factory).parameters[parameter].default


@dataclass(frozen=True)
class _Sample:
    """One call a primitive's Python code builds, with the arguments that are the
    caller's own (``per_call``: no default) or the primitive's configuration
    (``configured``: no default either, but fixed per primitive instance)."""

    primitive: str
    call: Call[Any]
    per_call: frozenset[str] = frozenset()
    configured: frozenset[str] = frozenset()


def _samples(name: str = _NAME, prefix: str = _PREFIX, key: str = _KEY,
             request_id: str = _REQUEST) -> dict[str, _Sample]:
    """A call per script, built by the Python core with (by default) placeholder names and
    the public API's defaults."""
    from .cache import Cache
    from .lock import Lock
    from .ratelimit import RateLimiter
    from .semaphore import Semaphore

    out: dict[str, _Sample] = {}

    def add(primitive: str, call: Call[Any], per_call: str = "", configured: str = "") -> None:
        out[call.script] = _Sample(primitive, call, frozenset(per_call.split()),
                                   frozenset(configured.split()))

    lock = lock_core.LockSpec(name, _signature_default(Lock, "ttl"), prefix=prefix)
    add("lock", lock.acquire_call("token"), "token")
    add("lock", lock.release_call("token", 1), "token fence")
    add("lock", lock.extend_call("token"), "token")
    add("lock", lock.inspect_call("token"), "token")
    add("lock", lock_core.break_call(lock.keys))

    q = queue_core.QueueCore(name, prefix=prefix)
    msg = queue_core.Message("1-1", b"", 1, q.base)
    add("queue", q.push_call(b"payload"), "items")
    add("queue", q.claim_call(1, [msg]), "n acks")
    add("queue", q.nack_call(msg), "receipt")
    add("queue", q.extend_call(msg), "receipts")
    add("queue", q.stats_call())
    add("queue", q.dead_call())
    redrive = q.redrive_calls(["1-1"])
    assert redrive
    add("queue", redrive[0], "limit ids")
    add("queue", q.purge_call(False), "dead_only")
    add("queue", monitor_core.queue_call(name, prefix))

    cache = cache_core.CacheCore(name, ttl=60.0, prefix=prefix,
                                 **{p: _signature_default(Cache, p)
                                    for p in ("lock_ttl", "wait_timeout", "early_refresh",
                                              "stale_ttl", "cache_none", "fast_hits")})
    entry = cache.entry_key(key)
    opts = cache.defaults
    add("cache", cache.fetch_call(entry, "token", opts), "spec")
    add("cache", cache.release_call(entry, "token", opts), "token")
    add("cache", cache.fill_call(entry, "token", b"payload", "0", opts=opts, delta_ms=5),
        "token payload none delta_ms", "format ttl_ms copy_tag")
    add("cache", cache.set_call(entry, b"payload", "0", opts), "payload none",
        "format ttl_ms copy_tag")
    add("cache", cache.delete_call(entry))
    add("cache", cache.peek_call(entry), "", "format")
    add("cache", cache.inspect_call(entry))
    # The near cache's read: the shells call it bound, with (copy, entry) (Cache(near=...)).
    add("cache", Call(cache_core.NEAR_READ, (cache.copy_key(entry), entry), ()))

    counter = counter_core.CounterSpec(name, prefix=prefix)
    add("counter", counter.add_call(1, False, request_id), "delta", "config")
    add("counter", counter.get_call())
    add("counter", counter.set_call(0), "value", "config")
    add("counter", counter.reset_call())
    add("counter", counter.config_call())
    add("counter", counter.reconfigure_call(False), "fit", "config")

    limiter = ratelimit_core.RateLimiterSpec(name, 10, _signature_default(RateLimiter,
                                                                           "period"),
                                             prefix=prefix)
    add("ratelimit", limiter.hit_call(), "", "interval_us burst")
    add("ratelimit", limiter.peek_call(), "", "interval_us burst")
    add("ratelimit", limiter.reset_call())
    add("ratelimit", limiter.config_call())
    add("ratelimit", limiter.reconfigure_call(), "interval_us burst")

    sem = semaphore_core.SemaphoreSpec(name, 3, _signature_default(Semaphore, "ttl"),
                                       prefix=prefix)
    add("semaphore", sem.acquire_call("permit"), "permit", "limit")
    add("semaphore", sem.release_call("permit"), "permit", "limit")
    add("semaphore", sem.extend_call("permit"), "permit")
    add("semaphore", sem.count_call())
    add("semaphore", sem.holders_call())
    add("semaphore", sem.config_call())
    add("semaphore", sem.reconfigure_call(), "limit")
    return out


# What a script replies, as a caller decodes it ("integer", "string", "array", or either).
_SHAPES = {
    "cache_delete": "integer", "cache_fetch": "string|array", "cache_fill": "integer",
    "cache_inspect": "array", "cache_near_read": "array", "cache_peek": "array",
    "cache_release": "integer",
    "cache_set": "integer", "counter_add": "integer|array", "counter_config": "string|nil",
    "counter_get": "integer", "counter_reconfigure": "array",
    "counter_reset": "integer", "counter_set": "integer", "lock_acquire": "integer",
    "lock_break": "array", "lock_extend": "integer", "lock_inspect": "array",
    "lock_release": "integer", "queue_claim": "array", "queue_dead": "array",
    "queue_extend": "integer", "queue_metrics": "array", "queue_nack": "integer",
    "queue_purge": "array",
    "queue_push": "string", "queue_redrive": "integer", "queue_stats": "array",
    "ratelimit_config": "string|nil", "ratelimit_hit": "string", "ratelimit_peek": "string",
    "ratelimit_reconfigure": "string", "ratelimit_reset": "integer",
    "semaphore_config": "string|nil", "semaphore_reconfigure": "string",
    "semaphore_acquire": "array", "semaphore_count": "integer", "semaphore_extend": "integer",
    "semaphore_holders": "array", "semaphore_release": "integer", "server_time": "array",
}

# How a caller takes a reply apart (returns.layout), for the replies that pack several
# values: "fields" names the space-separated fields of a string reply (then "repeat" the
# group of fields that follows them once per item); "items" names the elements of an array
# reply (each may have fields of its own), "rest" the elements after them; "integer" names
# the value of an integer|array reply that is an integer. tests/test_manifest.py decodes real
# replies with these layouts and compares them with what the Python API reports.
_LAYOUTS: dict[str, dict[str, Any]] = {
    "queue_push": {"fields": [], "repeat": ["id"]},
    "queue_claim": {"items": [{"name": "header",
                               "fields": ["acked", "reclaimed", "wait_ms", "dead"],
                               "repeat": ["id", "deliveries"]}],
                    "rest": "payloads"},
    "counter_add": {"integer": "value", "items": [{"name": "value"}, {"name": "delta"}]},
    "ratelimit_hit": {"fields": ["allowed", "remaining", "retry_after_us", "reset_after_us"]},
    "ratelimit_peek": {"fields": ["allowed", "remaining", "retry_after_us",
                                  "reset_after_us"]},
    "semaphore_acquire": {"items": [{"name": "held"}, {"name": "ms"}]},
    # The stored configurations (nil when none is stored): fields named as the arguments
    # they go back into (counter_add's config fields; the limiter's and semaphore's args).
    "counter_config": {"fields": ["min", "max", "mode"]},
    "ratelimit_config": {"fields": ["interval_us", "burst"]},
    "semaphore_config": {"fields": ["limit"]},
}

# The operations of each primitive: the scripts a caller runs, and how.
_OPERATIONS: dict[str, dict[str, tuple[list[str], str]]] = {
    "lock": {
        "acquire": (["lock_acquire"], (
            "Call lock_acquire with a fresh random token (no ':' or space) and the lease "
            "ttl_ms. A reply > 0 is the fencing token: the lock is held. A reply < 0 means "
            "another token holds it and its lease ends in (-1 - reply) ms (0: it has no "
            "expiry). To wait, BLPOP the signal key for at most that long (and at most "
            "your own deadline), then call lock_acquire again with the same token; repeat. "
            "A release leaves one wake-up in the signal list, so the BLPOP returns at once; "
            "a crashed holder's lease running out ends the BLPOP by its timeout. A "
            "re-sent lock_acquire whose token already holds the lock answers its fence.")),
        "release": (["lock_release"], (
            "Call lock_release with the token and the fence of the acquisition, and "
            "wake_ms. 1: released (one wake-up is left in the signal list for the next "
            "waiter); 2: this acquisition was released before (a re-send whose first reply "
            "was lost); 0: not held by the token (lease expired, broken, or taken by "
            "another): the critical section may have overlapped another holder's.")),
        "extend": (["lock_extend"], (
            "Call lock_extend with the token and the new lease ttl_ms (from now) well "
            "before the lease ends; 0 means the lock is no longer held by the token.")),
        "inspect": (["lock_inspect"], "Read-only; may run on a replica (EVALSHA_RO)."),
        "break": (["lock_break"], (
            "An operator's tool: removes the holder whoever it is and wakes one waiter.")),
    },
    "queue": {
        "push": (["queue_push"], (
            "Call queue_push with delay_ms, dedup ('1' when the items are dedup key / "
            "payload pairs) and the payloads (at most 1000 per call). The reply is the ids, "
            "space-separated, in order.")),
        "pop": (["queue_claim"], (
            "Call queue_claim with the lease, max_deliveries, n (how many to claim), "
            "reclaim (housekeeping bound) and the receipts to acknowledge ('' for none). "
            "The reply's first element is 'acked reclaimed wait_ms dead id1 deliveries1 ...' "
            "followed by the payloads; the receipt of a claimed message is "
            "'<id>/<deliveries>'. When nothing was claimed and you want to wait, BLPOP the "
            "signal key for at most wait_ms (when it is >= 0; else until your own "
            "deadline), then call queue_claim again. A push or a requeue adds a wake-up "
            "token. Acknowledge a message by passing its receipt in the acks of the next "
            "queue_claim (n = 0 to only acknowledge); a lease not acknowledged or extended "
            "in time returns the message to pending (or, after max_deliveries, to the "
            "dead letters).")),
        "nack": (["queue_nack"], "Give a delivery back by its receipt, now or after delay_ms."),
        "extend": (["queue_extend"], "Renew a delivery's lease by its receipt."),
        "stats": (["queue_stats"], "Read-only; may run on a replica (EVALSHA_RO)."),
        "metrics": (["queue_metrics"], "Read-only, for monitoring (bounded time)."),
        "dead": (["queue_dead"], "List dead letters, oldest first, offset/limit."),
        "redrive": (["queue_redrive"], "Move dead letters back as new messages (new ids)."),
        "purge": (["queue_purge"], "Call again while the reply's second element is > 0."),
    },
    "cache": {
        "get_or_set": (["cache_fetch", "cache_fill", "cache_release"], (
            "Fast path: GET the copy key; a value that starts with the serializer's copy "
            "tag (copy_tags below) followed by '=' is a fresh hit (the payload follows); "
            "'~' is a fresh stored None; '!' and '-' are the same but only valid while "
            "early refresh is off. Otherwise call cache_fetch with spec '<gap> <lease_ms> "
            "<token> <format>' (gap: beta * -ln(u) for u uniform in (0, 1], 0 to disable "
            "early refresh; token: fresh per call). Replies: a bare string is the payload; "
            "{0, '', 1} a stored None; {1}: you hold the fill lease: load the value, then "
            "cache_fill with the same token (or cache_release if loading failed, so the "
            "next waiter takes over); {2, payload, none}: serve the payload and refresh it "
            "the same way; {3, pttl}: another caller is loading: BLPOP the wake key for at "
            "most pttl ms, then call cache_fetch again; {4, format}: the value was written "
            "with another serializer; {5, payload, none}: a stale value (past its ttl, "
            "within stale_ttl) served while another caller refreshes it. cache_fill "
            "answers 0 when the lease was lost (fenced off): the value was not stored.")),
        "get": (["cache_peek"], "Read-only: a fresh value or {0}; never loads, never waits."),
        "set": (["cache_set"], "Store unconditionally, revoking any fill lease."),
        "delete": (["cache_delete"], "Delete value, copy and lease; wake every waiter."),
        "inspect": (["cache_inspect"], "Read-only, for operators."),
        "near_read": (["cache_near_read"], (
            "Read-only: the fresh copy, its remaining life and the recompute time at one "
            "instant, for a process-local near cache (invalidated by client tracking).")),
    },
    "counter": {
        "add": (["counter_add"], (
            "Call counter_add with the signed delta, the counter's configuration "
            "'<min> <max> <mode>' (decimal integers, +-(2^53-1) for no bound, mode reject "
            "or clamp: exactly the text stored in the config key) and the packed options "
            "(their clamp flag chooses reject or clamp for this call only). KEYS[3] is the "
            "request key (for a change applied at most once per request id), or KEYS[1] "
            "again without one. An integer reply: the whole delta was made; an array "
            "{value, delta made}: it was clamped or rejected. The first call on a counter "
            "without a stored configuration stores its own; a call with another one fails "
            "with CONFIGMISMATCH (read the stored one with counter_config) and changes "
            "nothing.")),
        "get": (["counter_get"], "Read-only."),
        "set": (["counter_set"], (
            "The value must lie within the stored bounds (else OUTOFBOUNDS); the "
            "configuration is checked as for counter_add.")),
        "reset": (["counter_reset"], (
            "Delete the counter (it reads as initial again); the stored configuration "
            "stays.")),
        "config": (["counter_config"], (
            "Read-only: the stored configuration '<min> <max> <mode>', or nil.")),
        "reconfigure": (["counter_reconfigure"], (
            "The one way to change the stored configuration. fit 0: a value outside the "
            "new bounds refuses the change (OUTOFBOUNDS, nothing changed); fit 1: it is "
            "moved to the nearest new bound. Replies {previous configuration or '', value "
            "or '', moved 0/1}.")),
    },
    "ratelimit": {
        "hit": (["ratelimit_hit"], (
            "interval_us = period_seconds * 1e6 / rate (a decimal); burst: how many units "
            "a full limiter allows at once; cost: 1 <= cost <= burst. The reply is "
            "'allowed remaining retry_after_us reset_after_us'. The first hit stores "
            "'<interval_us> <burst>' in the config key; a later call whose interval "
            "differs by more than 1e-9 (relative) or whose burst differs fails with "
            "CONFIGMISMATCH and spends nothing (read the stored one with "
            "ratelimit_config).")),
        "peek": (["ratelimit_peek"], "Read-only: exactly what ratelimit_hit would answer."),
        "reset": (["ratelimit_reset"], (
            "Forget the state: the limiter is full again (the stored configuration "
            "stays).")),
        "config": (["ratelimit_config"], (
            "Read-only: the stored configuration '<interval_us> <burst>', or nil.")),
        "reconfigure": (["ratelimit_reconfigure"], (
            "The one way to change the stored configuration; units already spent stay "
            "spent and drain at the new interval from now on. Replies the previous "
            "configuration ('' for none).")),
    },
    "semaphore": {
        "acquire": (["semaphore_acquire"], (
            "Call semaphore_acquire with a fresh random permit id, the limit and the lease "
            "ttl_ms. {1, ttl_ms}: held. {0, ms}: all permits are taken; BLPOP the signal "
            "key for at most ms (and your own deadline), then call again with the same "
            "permit id. The first acquire stores the limit in the config key; a later one "
            "with another limit fails with CONFIGMISMATCH and takes nothing (read the "
            "stored one with semaphore_config).")),
        "release": (["semaphore_release"], "Release by permit id; wakes one waiter."),
        "extend": (["semaphore_extend"], "Renew a held permit's lease."),
        "count": (["semaphore_count"], "Read-only."),
        "holders": (["semaphore_holders"], "Read-only."),
        "config": (["semaphore_config"], "Read-only: the stored limit, or nil."),
        "reconfigure": (["semaphore_reconfigure"], (
            "The one way to change the stored limit; refused (OUTOFBOUNDS, nothing "
            "changed) while more permits are live than the new limit. Replies the previous "
            "limit ('' for none).")),
    },
}


def _packed_fields(doc: str) -> list[str]:
    """The field names of a packed argument, from the first '"<a> <b> ..."' of its header's
    doc (the fields are sent space-separated, in that order)."""
    m = re.search(r'"((?:<[a-z_]+> )*<[a-z_]+>)"', doc)
    if m is None:
        raise ValueError(f"a packed argument's doc must give its fields as \"<a> <b> ...\": "
                         f"{doc!r}")
    return re.findall(r"<([a-z_]+)>", m.group(1))


def _script_entry(script: Script, sample: _Sample | None, library: Library) -> dict[str, Any]:
    keys = []
    for i, k in enumerate(script.keys):
        entry: dict[str, Any] = {"index": k.index, "name": k.name, "type": k.redis_type,
                                 "doc": k.doc, "template": None}
        if sample is not None and i < len(sample.call.keys):
            entry["template"] = _template(sample.call.keys[i])
        if k.variadic:
            entry["variadic"] = True
        keys.append(entry)
    args = []
    for i, a in enumerate(script.args):
        fmt = FORMATS[a.format]
        arg: dict[str, Any] = {"index": a.index, "name": a.name, "doc": a.doc,
                               "format": a.format, "format_description": fmt.description,
                               "schema": fmt.schema, "unit": a.unit, "default": None}
        if (sample is not None and not a.variadic and i < len(sample.call.args)
                and a.name not in sample.per_call and a.name not in sample.configured):
            arg["default"] = _default(sample.call.args[i])
        if sample is not None and a.name in sample.configured:
            arg["configured"] = True
        if a.variadic:
            arg["variadic"] = True
        if a.format == "packed":
            arg["fields"] = _packed_fields(a.doc)
        args.append(arg)
    return {
        "name": script.name,
        "sha1": script.sha1,
        "summary": script.summary,
        "source": script.source,
        "includes": list(script.includes),
        "keys": keys,
        "args": args,
        "returns": {"shape": _SHAPES.get(script.name), "doc": script.returns,
                    **({"layout": _LAYOUTS[script.name]} if script.name in _LAYOUTS else {})},
        "flags": sorted(script.flags),
        "min_redis": ".".join(str(v) for v in script.min_redis),
        "primitive": sample.primitive if sample is not None else None,
        "function": {"name": library.function(script.name),
                     "command": "FCALL_RO" if script.read_only else "FCALL",
                     "flags": ["no-writes"] if script.read_only else []},
    }


def build_manifest(catalog: Catalog | None = None) -> dict[str, Any]:
    """The manifest (version 2) of ``catalog``'s scripts (default: the package's own)."""
    if catalog is None:
        from .registry import default_registry

        catalog = default_registry()
    samples = _samples()
    library = catalog.library()
    scripts = [_script_entry(catalog[n], samples.get(n), library) for n in catalog.names()]
    by_name = {s["name"]: s for s in scripts}
    primitives: dict[str, Any] = {}
    for primitive, operations in _OPERATIONS.items():
        if not all(n in by_name for names, _ in operations.values() for n in names):
            continue  # a catalog without the package's scripts (builtin=False)
        keys: dict[str, str] = {}
        for ops in operations.values():
            for name in ops[0]:
                for k in by_name[name]["keys"]:
                    if k["template"] is not None:
                        keys.setdefault(k["name"], k["template"])
        primitives[primitive] = {
            "keys": keys,
            "operations": {op: {"scripts": names, "protocol": protocol}
                           for op, (names, protocol) in operations.items()},
        }
    if "queue" in primitives:
        # A delivery's receipt, as the Python core makes it from a claimed id and count.
        marker = 987654321  # stands for the delivery count (no id holds '\ue010')
        receipt = queue_core.Message("\ue010", b"", marker, "").receipt
        primitives["queue"]["receipt"] = receipt.replace("\ue010", "{id}").replace(
            str(marker), "{deliveries}")
    if "cache" in primitives:
        primitives["cache"]["copy_tags"] = {
            name: cache_core.copy_tag(name).decode() for name in ("json", "raw", "pickle")}
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "keys": {"escaping": ESCAPING, "default_prefix": DEFAULT_PREFIX,
                 "placeholders": sorted(_PLACEHOLDERS.values()),
                 "escaped": sorted(_ESCAPED),
                 "escapes": [list(pair) for pair in ESCAPES]},
        "errors": (
            "Every script checks its KEYS and ARGV counts and argument formats before it "
            "touches a key and answers 'ERR pyredis-atomic <script>: ...' naming the "
            "argument; such a call writes nothing."),
        "functions": {
            "library": library.name,
            "version": library.version,
            "min_redis": ".".join(str(v) for v in FUNCTIONS_REDIS),
            "doc": (
                "The same scripts as one Redis Functions library (Redis 7.0+, Valkey): "
                "'pyredis-atomic functions load' loads it on every primary ('functions "
                "show' prints the code). Call a script as '<function.command> "
                "<function.name> numkeys key... arg...', the keys and arguments as for "
                "EVALSHA. A missing library answers 'ERR Function not found' (nothing "
                "ran): load it, there is no EVAL fallback."),
        },
        "scripts": scripts,
        "primitives": primitives,
    }


def load_schema() -> dict[str, Any]:
    """The JSON Schema of the manifest."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema
