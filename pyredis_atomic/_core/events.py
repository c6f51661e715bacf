"""Structured events: what the library reports through :mod:`logging`, under stable names.

Every event has a name that never changes between releases (``lock.lost``,
``queue.lease_lost``, ...), a logger (``pyredis_atomic.<area>``), a level, and fields passed
as ``extra``: a record carries ``record.event`` plus the fields as attributes
(``record.lock``, ``record.fence``, ...), ready for a JSON formatter or a filter::

    class OnlyLost(logging.Filter):
        def filter(self, record):
            return getattr(record, "event", None) == "lock.lost"

Levels: an event that means something went wrong (a lock or a lease lost, a risky server
setting) is a WARNING; a rare recovery the library handled itself (``NOSCRIPT``) is INFO;
everything that can happen on a hot path in normal operation (a cache waiting for another
process's loader, a message dead-lettered) is DEBUG, so the hot path
never logs at INFO or above. Nothing is formatted unless the logger is enabled for the
level.

Listeners (the OpenTelemetry instrumentation counts events as metrics) get every event
with its fields, whatever the log level.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["EVENTS", "Listener", "add_listener", "emit", "remove_listener"]

Listener = Callable[[str, dict[str, Any]], None]

_WARNING, _INFO, _DEBUG = logging.WARNING, logging.INFO, logging.DEBUG

# name -> (logger name, level, what it means). The names and fields are a public contract:
# add events, never rename one (docs/observability.md lists them).
EVENTS: dict[str, tuple[str, int, str]] = {
    "lock.lost": ("pyredis_atomic.lock", _WARNING,
                  "a lock held by this process was found lost (its lease ran out or it was "
                  "broken): fields lock, fence, action (renew, extend, release)"),
    "lock.renewal_failed": ("pyredis_atomic.lock", _WARNING,
                            "an automatic renewal failed on the connection and will be "
                            "retried while the lease lasts: fields lock, fence, error"),
    "queue.lease_lost": ("pyredis_atomic.queue", _WARNING,
                         "an ack, nack or extend found the delivery no longer current (its "
                         "lease ran out and it was requeued or redelivered): fields queue, "
                         "action, count (how many of the receipts sent)"),
    "queue.dead_lettered": ("pyredis_atomic.queue", _DEBUG,
                            "a nack on the last allowed delivery sent the message to the "
                            "dead letters: fields queue, message_id, deliveries, failure_type "
                            "(the recorded failure's type, \"\" when none)"),
    "queue.expired_dead_lettered": ("pyredis_atomic.queue", _DEBUG,
                                    "a claim's sweep sent messages whose last allowed "
                                    "delivery's lease ran out to the dead letters: fields "
                                    "queue, count"),
    "queue.eviction_policy": ("pyredis_atomic.queue", _WARNING,
                              "the server's maxmemory-policy may evict the queue's keys and "
                              "allow_eviction=True accepted the risk: fields queue, policy"),
    "script.noscript": ("pyredis_atomic.registry", _INFO,
                        "a server did not have a script (flushed, restarted, failed over): "
                        "the call was re-sent as EVAL and the script loaded again: fields "
                        "script, sha"),
    "cache.wait_timeout": ("pyredis_atomic.cache", _INFO,
                           "waited wait_timeout for another process's loader and loads "
                           "itself: fields cache, key"),
    "cache.refresh_failed": ("pyredis_atomic.cache", _WARNING,
                             "an early refresh failed; the cached value was served: fields "
                             "cache, key, error"),
    "cache.fill_lost": ("pyredis_atomic.cache", _WARNING,
                        "a loaded value was not stored because the fill lease was lost: "
                        "fields cache, key"),
    "cache.stale_served": ("pyredis_atomic.cache", _DEBUG,
                           "a get_or_set served a stale value (past its ttl, within "
                           "stale_ttl) while another caller refreshes it: fields cache, key"),
    "cache.stampede_wait": ("pyredis_atomic.cache", _DEBUG,
                            "a get_or_set found another process loading the key and waited "
                            "for its value: fields cache, key"),
}

_LOGGERS = {name: logging.getLogger(logger) for name, (logger, _, _) in EVENTS.items()}
_LEVELS = {name: level for name, (_, level, _) in EVENTS.items()}
_LISTENERS: list[Listener] = []


def emit(event: str, message: str, *args: object, **fields: Any) -> None:
    """Log ``event`` (``message % args``) with ``fields`` as ``extra``, and tell the
    listeners. ``event`` must be one of :data:`EVENTS`."""
    logger = _LOGGERS[event]
    level = _LEVELS[event]
    if logger.isEnabledFor(level):
        # stacklevel=2: the record points at the library code that emitted the event.
        logger.log(level, message, *args, extra={"event": event, **fields}, stacklevel=2)
    for listener in _LISTENERS:
        listener(event, fields)


def add_listener(listener: Listener) -> None:
    """Call ``listener(event, fields)`` for every event from now on."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def remove_listener(listener: Listener) -> None:
    """Stop calling ``listener`` (no error if it was not added)."""
    if listener in _LISTENERS:
        _LISTENERS.remove(listener)
