"""Plain-socket servers on loopback for the revocation-fetch tests (docs/signing.md §12).

``record`` accepts, counts and closes every connection (the "internal service" an attacker
points a certificate at: it must see nothing); ``slow`` answers 200 and then drips one byte at a
time, never finishing; ``huge`` streams an endless body without a length; ``redirect`` answers
302 to another URL.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Literal

Mode = Literal["record", "slow", "huge", "redirect"]


class LoopbackServer:
    """A TCP server on 127.0.0.1 with one behaviour; ``connections`` counts accepted sockets."""

    def __init__(self, mode: Mode, *, redirect_to: str = "") -> None:
        self.mode = mode
        self.redirect_to = redirect_to
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def host(self) -> str:
        """``host:port``, the allowlist entry for this server."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            if self.mode == "record":
                return
            conn.settimeout(5)
            try:
                _read_head(conn)
                if self.mode == "redirect":
                    conn.sendall(
                        f"HTTP/1.1 302 Found\r\nLocation: {self.redirect_to}\r\n"
                        "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
                    )
                    return
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nConnection: close\r\n\r\n"
                )
                chunk = b"\x00" if self.mode == "slow" else b"\x30" * 65536
                while not self._stop.is_set():
                    conn.sendall(chunk)
                    if self.mode == "slow":
                        time.sleep(0.05)
            except OSError:  # the client gave up: what the tests expect
                return


def _read_head(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        part = conn.recv(4096)
        if not part:
            return
        data += part
