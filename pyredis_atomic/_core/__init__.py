"""The I/O-free core: script headers, key layout, argument checks, reply decoding, flows.

Nothing in this package talks to Redis. The sync front ends (``pyredis_atomic.*``) and the
asyncio front ends (``pyredis_atomic.asyncio.*``) drive the same core, so they cannot drift.
"""
