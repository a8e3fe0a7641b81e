"""An HTTP proxy on 127.0.0.1 that passes requests to a real server and breaks chosen ones.

Put in front of moto's S3 server, it makes the storage faults a CI runner meets: an answer
lost after the server acted on the request (the connection drops before a byte of it comes
back), a 5xx instead of an answer, a connection closed before the request got anywhere. Every
other request goes through as sent, on a fresh connection to the server (only its
``Connection`` and ``Expect`` headers change: the proxy answers ``100 Continue`` itself), so
what the client and the server say to each other is their own protocol.

    with FaultProxy(moto_endpoint) as proxy:
        proxy.faults = [Fault("PUT", ".lock", Action.LOSE_ANSWER, header="if-none-match")]
        ...  # point AWS_ENDPOINT_URL_S3 at proxy.url
        assert proxy.applied() == 1

It is bounded: one client connection carries one request (every answer says
``Connection: close``), sockets time out, a request or answer larger than ``MAX_BYTES`` is
refused, and the proxy stops by itself after ``lifetime`` seconds if nobody stops it.
"""

from __future__ import annotations

import contextlib
import enum
import socket
import socketserver
import struct
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

#: The largest request or answer passed on, in bytes (lock and state objects are tiny).
MAX_BYTES = 16 * 1024 * 1024

#: How long a socket may stay silent before the exchange is given up, in seconds.
SOCKET_TIMEOUT = 15.0


class Action(enum.Enum):
    """What a fault does to a request it matches."""

    #: Pass the request on, wait for the server's answer, then close the client's connection
    #: without sending any of it: the server acted, the client cannot know.
    LOSE_ANSWER = "lose-answer"
    #: Answer with ``status`` and an S3 error document; the server never sees the request.
    FAIL = "fail"
    #: Close the client's connection at once (a reset); the server never sees the request.
    RESET = "reset"


@dataclass
class Fault:
    """Break requests with one of ``methods`` whose path ends with ``path_suffix``.

    ``methods`` is one method or several separated by spaces (``"HEAD GET"``: every read).
    ``header`` (lower case) must also be present when given, e.g. ``if-none-match`` for a
    conditional create. The first ``skip`` matching requests pass untouched; then ``times``
    of them are broken (None: every one from then on).
    """

    methods: str
    path_suffix: str
    action: Action
    times: int | None = 1
    skip: int = 0
    header: str = ""
    status: int = 503
    #: Matching requests seen so far, and how many of them were broken.
    matched: int = 0
    applied: int = 0

    def matches(self, method: str, path: str, headers: dict[str, str]) -> bool:
        return (
            method in self.methods.split()
            and path.endswith(self.path_suffix)
            and (not self.header or self.header in headers)
        )

    def take(self) -> bool:
        """Count one matching request; whether this one is to be broken."""
        self.matched += 1
        if self.matched <= self.skip:
            return False
        if self.times is not None and self.applied >= self.times:
            return False
        self.applied += 1
        return True


@dataclass(frozen=True)
class Exchange:
    """One request the proxy saw: what it was and what became of it."""

    method: str
    path: str
    #: The status the client got, or None when it got no answer.
    status: int | None
    #: The fault's action when one broke it, else None.
    fault: Action | None = None
    #: Whether the server received the request.
    forwarded: bool = True


@dataclass
class FaultProxy:
    """A proxy on 127.0.0.1 in front of ``upstream`` (``http://host:port``)."""

    upstream: str
    lifetime: float = 300.0
    faults: list[Fault] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        if parts.scheme != "http" or parts.hostname != "127.0.0.1" or parts.port is None:
            raise ValueError(f"upstream must be http://127.0.0.1:PORT, not {self.upstream!r}")
        self._target = (parts.hostname, parts.port)
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._stopped = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving and close every connection (once; later calls do nothing)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._timer.cancel()
        self._server.shutdown()
        self._server.close_all()
        self._server.server_close()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def applied(self, action: Action | None = None) -> int:
        """How many requests a fault broke (with ``action``, when given)."""
        with self._lock:
            return sum(1 for e in self.exchanges if e.fault is not None and e.fault in _any(action))

    def seen(self, method: str, path_suffix: str) -> list[Exchange]:
        """The requests with ``method`` whose path ends with ``path_suffix``, in order."""
        with self._lock:
            return [
                e for e in self.exchanges if e.method == method and e.path.endswith(path_suffix)
            ]

    # -- for the handler --

    def fault_for(self, method: str, path: str, headers: dict[str, str]) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path, headers) and fault.take():
                    return fault
            return None

    def note(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def forward(self, request: bytes) -> bytes:
        """Send ``request`` to the server on a connection of its own; its whole answer."""
        with socket.create_connection(self._target, timeout=SOCKET_TIMEOUT) as upstream:
            upstream.sendall(request)
            answer = b""
            while True:
                more = upstream.recv(65536)
                if not more:
                    return answer
                answer += more
                if len(answer) > MAX_BYTES:
                    raise OSError(f"the server's answer exceeds {MAX_BYTES} bytes")


def _any(action: Action | None) -> tuple[Action, ...]:
    return tuple(Action) if action is None else (action,)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy

    def __init__(self, *args: Any) -> None:
        self.open: set[socket.socket] = set()
        self.open_lock = threading.Lock()
        super().__init__(*args)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.open_lock:
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
        sock.settimeout(SOCKET_TIMEOUT)
        proxy = self.server.proxy
        with contextlib.suppress(OSError, ValueError):
            read = _read_request(sock)
            if read is None:
                return
            head, body = read
            method, path, headers = _parse_head(head)
            fault = proxy.fault_for(method, path, headers)
            if fault is not None and fault.action is Action.RESET:
                proxy.note(Exchange(method, path, None, Action.RESET, forwarded=False))
                _reset(sock)
                return
            if fault is not None and fault.action is Action.FAIL:
                proxy.note(Exchange(method, path, fault.status, Action.FAIL, forwarded=False))
                sock.sendall(_s3_error(fault.status, head_only=method == "HEAD"))
                return
            answer = proxy.forward(_closing(head) + body)
            if fault is not None:  # LOSE_ANSWER: the server acted; say nothing of it
                proxy.note(Exchange(method, path, None, Action.LOSE_ANSWER))
                _reset(sock)
                return
            proxy.note(Exchange(method, path, _status(answer)))
            sock.sendall(_closing_answer(answer))


def _read_request(sock: socket.socket) -> tuple[bytes, bytes] | None:
    """One request's head (without its blank line) and its body as sent (None: no request)."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            return None
        data += more
        if len(data) > MAX_BYTES:
            raise ValueError("request head too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    _, _, headers = _parse_head(head)
    if headers.get("expect", "").lower() == "100-continue":
        # The client holds the body back until told to go on (botocore does, for uploads).
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while not _chunked_complete(rest):
            more = sock.recv(65536)
            if not more:
                return None
            rest += more
            if len(rest) > MAX_BYTES:
                raise ValueError("request body too large")
        return head, rest
    length = int(headers.get("content-length", "0"))
    if length > MAX_BYTES:
        raise ValueError("request body too large")
    while len(rest) < length:
        more = sock.recv(65536)
        if not more:
            return None
        rest += more
    return head, rest[:length]


def _chunked_complete(body: bytes) -> bool:
    """Whether ``body`` holds a whole chunked body (through its last chunk and trailers)."""
    at = 0
    while True:
        end = body.find(b"\r\n", at)
        if end < 0:
            return False
        size = int(body[at:end].split(b";", 1)[0].strip() or b"0", 16)
        at = end + 2
        if size == 0:
            return body.find(b"\r\n\r\n", at - 2) >= 0
        at += size + 2
        if at > len(body):
            return False


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, unquote(urlsplit(target).path), headers


def _closing(head: bytes) -> bytes:
    """``head`` asking the server to close the connection after its answer, and the blank line.

    Without ``Expect``: the body follows at once, as the client was already told to go on.
    """
    lines = [
        line
        for line in head.split(b"\r\n")
        if not line.lower().startswith((b"connection:", b"keep-alive:", b"expect:"))
    ]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n"


def _closing_answer(answer: bytes) -> bytes:
    """``answer`` saying ``Connection: close``: the client must not send another request here."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + sep + body


def _status(answer: bytes) -> int | None:
    try:
        return int(answer.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def _s3_error(status: int, *, head_only: bool) -> bytes:
    """An S3 error answer; to a HEAD, its head alone (an answer to HEAD has no body)."""
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
        b"<Message>injected by the test's fault proxy</Message></Error>"
    )
    head = (
        f"HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head if head_only else head + body


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` so that the peer gets a reset, not a clean end of an answer."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
