"""Test helpers that read the same thing on every supported server (Redis 6.2, 7.x,
Valkey 7.2/8.x), where the direct command exists only on newer ones."""

from __future__ import annotations

from typing import Any

from pyredis_atomic._core.servers import ServerVersion, has_feature, parse_server_version

# TIME, PTTL, TIME in one script: when both TIMEs fall in the same millisecond, PTTL was
# computed in that millisecond too (on Redis 6.2 PTTL is `expire - now`), so time + PTTL
# is the key's absolute expiry, exactly. Used only where PEXPIRETIME is missing: since
# 7.0 PTTL inside a script counts from the script's start, not from now.
_EXPIRY_LUA = """
local t1 = redis.call('TIME')
local pttl = redis.call('PTTL', KEYS[1])
local t2 = redis.call('TIME')
return {t1[1] * 1000 + math.floor(t1[2] / 1000), pttl, t2[1] * 1000 + math.floor(t2[2] / 1000)}
"""


def server_of(client: Any) -> ServerVersion:
    """``(name, version)`` of the server ``client`` talks to."""
    return parse_server_version(client.info("server"))


def pexpiretime(client: Any, key: str | bytes) -> int:
    """``PEXPIRETIME key`` (absolute expiry in ms, -1 without one, -2 when missing), also
    on Redis 6.2, which lacks the command."""
    if has_feature(server_of(client), "PEXPIRETIME"):
        return int(client.execute_command("PEXPIRETIME", key))
    return pexpiretime_by_script(client, key)


def pexpiretime_by_script(client: Any, key: str | bytes) -> int:
    """What ``PEXPIRETIME`` answers, computed from ``TIME`` and ``PTTL`` (see above)."""
    for _ in range(100):
        before, pttl, after = (int(x) for x in client.eval(_EXPIRY_LUA, 1, key))
        if pttl < 0:
            return pttl
        if before == after:
            return before + pttl
    raise AssertionError("TIME never stayed in one millisecond around PTTL")
