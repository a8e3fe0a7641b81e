"""A proxy on 127.0.0.1 in front of the emulator that spoils chosen answers, as a broken API,
load balancer or network would.

Every request is passed to the emulator as it came (method, path, query, key and body) unless
a spoiler takes it: a spoiler sees the request and may forward it itself (changed or not) and
answer something else, or answer without forwarding at all. What it answers is an ``Answer``
(a whole HTTP answer) or ``Raw`` bytes sent as they are, after which the connection closes
(an answer cut short, headers no client reads).

    with ApiProxy(emulator.url) as proxy:
        proxy.spoilers.append(forbidden(PUNE))
        run_cli("plan", url=proxy.url, key=...)

It is bounded: sockets time out, every forward has a timeout, and ``stop`` (or leaving the
``with``) ends it; its threads are daemons.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

#: Seconds a forward to the emulator, or a silent client, may take.
TIMEOUT = 15.0


@dataclass(frozen=True)
class Request:
    """A request as the proxy received it."""

    method: str
    path: str
    query: dict[str, str]  # the first value of each parameter
    key: str  # the Authorization header ("" when absent)
    body: bytes = b""

    def matches(self, method: str, path: str) -> bool:
        """This method, and a path that ``path`` (a regular expression) matches whole."""
        return self.method == method and re.fullmatch(path, self.path) is not None

    @property
    def offset(self) -> int:
        return int(self.query.get("offset", "0"))


@dataclass(frozen=True)
class Answer:
    """A whole answer: a status and a body, JSON unless told otherwise."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)

    @classmethod
    def json(cls, status: int, payload: Any) -> Answer:
        return cls(status, json.dumps(payload).encode())

    def data(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Raw:
    """Bytes sent as they are; then the connection closes."""

    data: bytes


Forward = Callable[[Request], Answer]
#: Sees each request and how to forward it; None passes the request on untouched.
Spoiler = Callable[[Request, Forward], Answer | Raw | None]


@dataclass
class ApiProxy:
    """Forwards to ``upstream`` (the emulator's URL), letting ``spoilers`` answer instead."""

    upstream: str
    spoilers: list[Spoiler] = field(default_factory=list)
    #: Every request received, in order.
    seen: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ApiProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def count(self, method: str, path: str = ".*") -> int:
        """Requests received with this method whose path ``path`` matches whole."""
        with self._lock:
            return sum(r.matches(method, path) for r in self.seen)

    def forward(self, request: Request) -> Answer:
        """``request`` as the emulator answers it."""
        headers = {"Authorization": request.key} if request.key else {}
        if request.body:
            headers["Content-Type"] = "application/json"
        query = f"?{urlencode(request.query)}" if request.query else ""
        answer = requests.request(
            request.method,
            self.upstream + request.path + query,
            headers=headers,
            data=request.body or None,
            timeout=TIMEOUT,
        )
        return Answer(answer.status_code, answer.content)

    def answer(self, request: Request) -> Answer | Raw:
        with self._lock:
            self.seen.append(request)
            spoilers = list(self.spoilers)
        for spoil in spoilers:
            spoiled = spoil(request, self.forward)
            if spoiled is not None:
                return spoiled
        return self.forward(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: ApiProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = TIMEOUT
    server: _Server

    def _any(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=split.path,
            query=dict(reversed(parse_qsl(split.query))),
            key=self.headers.get("Authorization", ""),
            body=self.rfile.read(length) if length else b"",
        )
        answer = self.server.proxy.answer(request)
        if isinstance(answer, Raw):
            self.wfile.write(answer.data)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_PATCH = _any

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the key travels in a header; nothing of a request is logged


# --- spoilers --------------------------------------------------------------------------------

#: Where an AOI's visualizations are listed and created.
VISUALIZATIONS = r"/v0/aois/[^/]+/visualizations"
WRITES = ("POST", "PUT", "PATCH")


def error_answer(status: int, code: str, message: str) -> Answer:
    """An answer with the contract's error body."""
    return Answer.json(status, {"error": {"code": code, "message": message, "details": None}})


class _Times:
    """How many more requests a spoiler may spoil (None: every one), from any thread."""

    def __init__(self, times: int | None) -> None:
        self._left = times
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Whether this request is to be spoiled (and counts it)."""
        with self._lock:
            if self._left is None:
                return True
            if self._left == 0:
                return False
            self._left -= 1
            return True


def pages_of(size: int) -> Spoiler:
    """Every listing gives at most ``size`` items a page (and says so): small worlds page too."""

    def spoil(request: Request, forward: Forward) -> Answer | None:
        if request.method != "GET" or "limit" not in request.query:
            return None
        if int(request.query["limit"]) <= size:
            return None
        return forward(replace(request, query={**request.query, "limit": str(size)}))

    return spoil


def repeating_pages(path: str, key: str, *, times: int | None = None) -> Spoiler:
    """Pages after the first of the listings at ``path`` start one item early: each repeats
    the last item of the page before and misses the listing's last, ``total`` unchanged, as
    a listing whose items moved while it was paged would. ``times``: only so many pages (None:
    every one)."""
    left = _Times(times)

    def spoil(request: Request, forward: Forward) -> Answer | None:
        if not request.matches("GET", path) or request.offset == 0 or not left.take():
            return None
        honest = forward(request).data()
        early = forward(
            replace(request, query={**request.query, "offset": str(request.offset - 1)})
        )
        data = early.data()
        data[key] = data[key][: len(honest[key])]
        data["pagination"] = honest["pagination"]
        return Answer.json(200, data)

    return spoil


def statuses(change: Callable[[dict[str, Any]], str | None]) -> Spoiler:
    """Visualizations in answers (created, rolled back or listed) get the status ``change``
    gives them (None: as they are)."""

    def restate(item: dict[str, Any]) -> dict[str, Any]:
        status = change(item)
        return item if status is None else {**item, "status": status}

    def spoil(request: Request, forward: Forward) -> Answer | None:
        if not request.path.startswith("/v0/aois/") or "/visualizations" not in request.path:
            return None
        answer = forward(request)
        if answer.status >= 300:
            return answer
        data = copy.deepcopy(answer.data())
        if isinstance(data.get("visualization"), list):
            data["visualization"] = [restate(item) for item in data["visualization"]]
        elif "status" in data:
            data = restate(data)
        return Answer.json(answer.status, data)

    return spoil


def cut_short(method: str, path: str, *, times: int | None = None, forward: bool = True) -> Spoiler:
    """Answers to ``method`` on ``path`` arrive with their status and headers and half their
    body, then the connection breaks. ``forward``: the emulator does carry the request out
    (else the answer is a made-up 201 for a request it never saw). ``times``: only so many."""
    left = _Times(times)

    def spoil(request: Request, send: Forward) -> Raw | None:
        if not request.matches(method, path) or not left.take():
            return None
        answer = send(request) if forward else Answer.json(201, {"id": "never-sent"})
        head = f"HTTP/1.1 {answer.status} Whatever\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {len(answer.body)}\r\nConnection: close\r\n\r\n"
        return Raw(head.encode() + answer.body[: len(answer.body) // 2])

    return spoil


def forbidden(aoi_id: str) -> Spoiler:
    """This key may list the AOI but nothing under it: every call there answers 403."""

    def spoil(request: Request, forward: Forward) -> Answer | None:
        if not request.path.startswith(f"/v0/aois/{aoi_id}/"):
            return None
        return error_answer(403, "forbidden", f"this key may not access AOI {aoi_id}")

    return spoil


@dataclass
class Revoked:
    """The key is revoked after ``writes`` writes went through: every request then answers
    401. ``rejected`` counts the writes refused so."""

    writes: int
    rejected: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Request, forward: Forward) -> Answer | None:
        with self._lock:
            write = request.method in WRITES
            if self.writes > 0:
                self.writes -= write
                return None
            self.rejected += write
        return error_answer(401, "unauthorized", "this API key was revoked")
