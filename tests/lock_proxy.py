"""A TCP proxy in front of a test Redis that can drop one reply: the server applies the
command, the client never hears back (the connection breaks). It is how a lost reply looks
to redis-py, which then re-sends the command on a new connection."""

from __future__ import annotations

import contextlib
import socket
import threading


class ReplyDroppingProxy:
    """Forwards 127.0.0.1:<port> to ``host:port``; ``drop_next_reply()`` arms it."""

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self._armed = threading.Event()
        self._guard = threading.Lock()
        self.dropped = 0
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def drop_next_reply(self) -> None:
        """The next reply from the server is not delivered; both sockets are closed."""
        self._armed.set()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            with self._guard:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, False),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True),
                             daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if replies and self._armed.is_set():
                    self._armed.clear()
                    with self._guard:
                        self.dropped += 1
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._guard:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.close()
