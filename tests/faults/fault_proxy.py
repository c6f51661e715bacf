"""A small TCP proxy on loopback that can delay or drop the server's replies.

It stands between a redis-py client and a real redis-server to simulate lost replies and
slow networks: the server has executed the command, the client never hears back (the
connection breaks, which is how a lost reply looks to redis-py: a ``redis.Redis(host=,
port=)`` client then re-sends the command on a new connection; a ``from_url`` client
raises). One module for every test that needs it (the lock tests and ``tests/faults``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

__all__ = ["FaultProxy"]


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``target``; faults apply to server -> client data."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._delay = 0.0
        self._drop_replies = 0
        self.dropped = 0
        self._closed = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``: give this to the client instead of the server's."""
        return f"redis://127.0.0.1:{self.port}/0"

    def delay_replies(self, seconds: float) -> None:
        """Hold every reply for ``seconds`` before passing it on."""
        with self._lock:
            self._delay = seconds

    def drop_replies(self, count: int = 1) -> None:
        """Swallow the next ``count`` replies and cut those connections (the command ran)."""
        with self._lock:
            self._drop_replies = count

    def drop_next_reply(self) -> None:
        """Swallow the next reply and cut that connection (the command ran)."""
        self.drop_replies(1)

    def heal(self) -> None:
        """Back to plain forwarding."""
        with self._lock:
            self._delay = 0.0
            self._drop_replies = 0

    def close(self) -> None:
        """Stop accepting and cut every connection."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            with contextlib.suppress(OSError):
                s.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if replies:
                    with self._lock:
                        delay, drop = self._delay, self._drop_replies > 0
                        if drop:
                            self._drop_replies -= 1
                            self.dropped += 1
                    if drop:
                        break  # the server answered; the client never hears it
                    if delay:
                        time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
