"""A deliberately misbehaving HTTP server on 127.0.0.1, for testing the client's defences.

It speaks just enough HTTP to read a request, then carries out a scripted reply byte by byte:
whatever status line, headers and body the test wants (wrong lengths, broken chunks, gzip
bombs, endless bodies), with pauses anywhere (a trickle, a server that never answers), and
then closes the connection. Nothing here is an API: it is the peer a broken proxy or a hostile
server would be.

    with HostileServer() as server:
        server.replies = [Reply.json(200, {"indices": []})]
        PixxelClient(server.url, "key").list_indices()
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import socketserver
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

#: A step of a reply: bytes to send, or seconds to pause.
Step = bytes | float


@dataclass
class Reply:
    """What the server does with one request: these steps, then close the connection."""

    steps: list[Step] = field(default_factory=list)
    label: str = ""

    @classmethod
    def raw(
        cls,
        status: int,
        body: bytes,
        headers: Iterable[tuple[str, str]] = (),
        *,
        length: bool = True,
    ) -> Reply:
        """A plain reply; ``length``: send a (correct) Content-Length."""
        head = [(k, v) for k, v in headers]
        if length:
            head.append(("Content-Length", str(len(body))))
        return cls([status_and_headers(status, head), body], f"{status}")

    @classmethod
    def json(cls, status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> Reply:
        """A well-formed JSON reply."""
        body = json.dumps(payload).encode()
        return cls.raw(status, body, [("Content-Type", "application/json"), *headers])


def status_and_headers(status: int, headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} Whatever"] + [f"{k}: {v}" for k, v in headers]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def http_date(seconds_from_now: float) -> str:
    """An HTTP-date (RFC 7231), as ``Retry-After`` may carry."""
    return formatdate(time.time() + seconds_from_now, usegmt=True)


def gzip_bomb(decompressed: int) -> bytes:
    """Gzip of ``decompressed`` bytes of JSON-looking filler (compresses about 1000:1)."""
    out = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b" " * (1024 * 1024)
    parts = [out.compress(b'{"indices": ["')]
    for _ in range(decompressed // len(chunk)):
        parts.append(out.compress(chunk))
    parts.append(out.compress(b'"]}') + out.flush())
    return b"".join(parts)


def trickle(piece: bytes, pause: float, times: int) -> list[Step]:
    """``piece`` then a pause of ``pause`` seconds, ``times`` over."""
    return [step for _ in range(times) for step in (piece, pause)]


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data)


def chunked(body: bytes, size: int = 1000) -> bytes:
    """``body`` in HTTP/1.1 chunked transfer coding, terminated."""
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


class HostileServer:
    """A threaded server on 127.0.0.1 answering request *n* with ``replies[n]`` (last repeats).

    ``replies`` may also be a function of the request's head (bytes) returning a ``Reply``.
    ``requests`` keeps every request head received, ``connections`` counts connections
    accepted. ``tls``: serve HTTPS with this server context. ``stop()`` interrupts pauses.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.replies: list[Reply] | Callable[[bytes], Reply] = [Reply.json(200, {})]
        self.requests: list[bytes] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.hostile = self
        self._server.tls = tls
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    @property
    def connections(self) -> int:
        return self._server.accepted

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.close_all()
        self._server.server_close()
        self._thread.join(timeout=5)

    def next_reply(self, head: bytes) -> Reply:
        with self._lock:
            self.requests.append(head)
            if callable(self.replies):
                return self.replies(head)
            index = min(len(self.requests), len(self.replies)) - 1
            return self.replies[index]

    def pause(self, seconds: float) -> bool:
        """Sleep, unless stopping; True if the server is stopping."""
        return self._stopping.wait(seconds)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    hostile: HostileServer
    tls: ssl.SSLContext | None

    def __init__(self, *args: Any) -> None:
        self.accepted = 0
        self.open: set[socket.socket] = set()
        self.open_lock = threading.Lock()
        super().__init__(*args)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.open_lock:
            self.accepted += 1
            self.open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.open_lock:
            self.open.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        with self.open_lock:
            conns = list(self.open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(10)
        with contextlib.suppress(OSError):  # ssl.SSLError too: a client refusing our cert
            if self.server.tls is not None:
                sock = self.server.tls.wrap_socket(sock, server_side=True)
            for head in _requests(sock):
                reply = self.server.hostile.next_reply(head)
                for step in reply.steps:
                    if isinstance(step, bytes):
                        sock.sendall(step)
                    elif self.server.hostile.pause(float(step)):
                        return
                return  # every reply ends the connection


def _requests(sock: socket.socket) -> Iterator[bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            return
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        more = sock.recv(65536)
        if not more:
            return
        rest += more
    yield head
