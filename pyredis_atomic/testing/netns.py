"""Network partitions on this machine: a network namespace joined to the host by a veth pair.

A :class:`Partition` makes a namespace and a veth pair with a /30 of 10.0.0.0/8 on it (the
host end ``host_address``, the namespace end ``address``); run a server inside with
``RedisServer(netns=p.name, bind=p.address)`` (or a client, with ``ip netns exec``).
:meth:`Partition.cut` sets the namespace end of the link down: the host keeps its route
(marked ``linkdown``) and the veth drops every packet, so connections see silence, as in a
real partition, and no packet leaves the machine. :meth:`Partition.heal` sets it up again.

Needs root (``CAP_NET_ADMIN``) and the ``ip`` tool; :func:`partitions_supported` says
whether this process can make one. The namespace and links are removed on
:meth:`Partition.close` and at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import shutil
import subprocess
import weakref
from typing import Any

__all__ = ["Partition", "PartitionError", "partitions_supported"]

_counter = itertools.count()
_LIVE: weakref.WeakSet[Partition] = weakref.WeakSet()


class PartitionError(RuntimeError):
    """An ``ip`` command failed while making or changing a partition."""


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PartitionError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def partitions_supported() -> bool:
    """True when this process runs as root and has the ``ip`` tool."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


class Partition:
    """A namespace ``name`` reached from the host over a veth pair (see the module doc).

    Names and the subnet derive from the process id and a counter, so parallel test runs
    on one machine (several helpers, several CI servers) never collide.
    """

    def __init__(self) -> None:
        n = next(_counter) % 16
        pid = os.getpid()
        # 2**18 pids x 16 partitions, each a /30 of 10.0.0.0/8.
        index = (pid % 2**18) * 16 + n
        base = index * 4
        octets = (10, (base >> 16) & 255, (base >> 8) & 255, base & 255)
        self.name = f"pra{pid}n{n}"
        self.host_link = f"pa{pid}h{n}"
        self.ns_link = f"pa{pid}s{n}"
        self.host_address = f"{octets[0]}.{octets[1]}.{octets[2]}.{octets[3] + 1}"
        self.address = f"{octets[0]}.{octets[1]}.{octets[2]}.{octets[3] + 2}"
        self.is_cut = False
        self._made = False

    def open(self) -> Partition:
        """Make the namespace and the link (up)."""
        if self._made:
            return self
        self.close()  # leftovers of a crashed run with a recycled pid
        self._made = True
        _LIVE.add(self)
        try:
            _ip("netns", "add", self.name)
            _ip("link", "add", self.host_link, "type", "veth", "peer", "name", self.ns_link)
            _ip("link", "set", self.ns_link, "netns", self.name)
            _ip("addr", "add", f"{self.host_address}/30", "dev", self.host_link)
            _ip("link", "set", self.host_link, "up")
            self.exec_ip("addr", "add", f"{self.address}/30", "dev", self.ns_link)
            self.exec_ip("link", "set", self.ns_link, "up")
            self.exec_ip("link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise
        return self

    def exec_ip(self, *args: str) -> None:
        """``ip`` inside the namespace."""
        _ip("netns", "exec", self.name, "ip", *args)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` prefixed to run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def cut(self) -> None:
        """Drop every packet both ways (the namespace end of the link goes down)."""
        self.exec_ip("link", "set", self.ns_link, "down")
        self.is_cut = True

    def heal(self) -> None:
        """Let packets through again."""
        self.exec_ip("link", "set", self.ns_link, "up")
        self.is_cut = False

    @contextlib.contextmanager
    def partitioned(self) -> Any:
        """``with p.partitioned(): ...``: cut for the body, healed after it."""
        self.cut()
        try:
            yield self
        finally:
            self.heal()

    def close(self) -> None:
        """Remove the namespace (which removes both ends of the link). Safe to repeat."""
        with contextlib.suppress(PartitionError):
            _ip("link", "del", self.host_link)
        with contextlib.suppress(PartitionError):
            _ip("netns", "del", self.name)
        self._made = False

    def __enter__(self) -> Partition:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "cut" if self.is_cut else "up"
        return f"<Partition {self.name} {self.host_address} <-> {self.address} {state}>"


@atexit.register
def _close_leftovers() -> None:
    for partition in list(_LIVE):
        with contextlib.suppress(Exception):
            partition.close()
