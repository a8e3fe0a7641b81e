"""The emulator's HTTP server: a real threaded server on 127.0.0.1 around a ``World``.

``Emulator`` owns the world, a lock, the request counter and the fault injector, and serves the
routes of ``api`` with ``http.server.ThreadingHTTPServer`` (one daemon thread per connection,
HTTP/1.1 keep-alive). For each API request, in order: count it, add latency, maybe inject a fault,
check the ``Authorization`` header, then run the handler under the lock, save the state file if
the world changed, and answer JSON.

Pagination: default limit 10; the maximum page size is 100 (a larger ``limit`` is clamped to 100
and ``pagination.limit`` says so); a negative or non-integer offset/limit is a 400.

Control endpoints for out-of-process tools (no auth, never counted nor faulted):
``GET /_emulator/requests`` returns ``{"total", "requests": {"GET /v0/aois": n, ...},
"faults_injected": {...}, "create_conflicts": n}`` (creates of visualizations or indices
answered 409; ``requests`` tells the two apart by route);
``POST /_emulator/reset-counter`` zeroes the counter.

The API key is never logged nor echoed: request logs carry only the request line.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from reconciler.emulator import api, views
from reconciler.emulator.faults import Fault, FaultConfig, FaultInjector, FaultKind, RequestCounter
from reconciler.emulator.world import FINAL_STATUSES, FinalStatus, World, user_id_for
from reconciler.errors import ApiError, ConfigError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
#: How often the serve loop checks for shutdown; small so stop() is quick in tests.
_POLL_INTERVAL = 0.01
#: A client that stalls mid-request (or idles on keep-alive) longer than this is disconnected.
_SOCKET_TIMEOUT = 30.0
#: Methods HTTP defines: on a known path the wrong one is 405; any other method is 501.
_HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
#: The calls that create something: only their answers can be "lost" after the fact, and a 409
#: from them means a client sent a create again.
_CREATES: tuple[api.Handler, ...] = (api.create_visualization, api.create_index)


class Emulator:
    """A stateful fake of the Pixxel API, served over real HTTP on 127.0.0.1.

    ``world``: a ``World``, a path to a YAML world file, or None for the bundled demo world.
    ``api_keys``: the keys the ``Authorization`` header may carry. ``port``: 0 picks a free one.
    ``creation_delay``: seconds a new visualization stays ``creating``. ``outcomes``: index name
    or id -> final status (``success``, ``failed``, ``partial_success``) of new visualizations.
    ``faults``: what to inject (assignable while running). ``state_file``: JSON file the world is
    loaded from if it exists, and saved to atomically after every change.

    Tests may read ``world``; mutate it only while holding ``lock``. ``clock`` (seconds since
    the epoch, default ``time.time``) may be replaced to drive the lifecycle without sleeping.
    """

    def __init__(
        self,
        world: World | Path | None = None,
        *,
        api_keys: Sequence[str] = ("test-key",),
        port: int = 0,
        creation_delay: float = 0.0,
        outcomes: Mapping[str, str] | None = None,
        faults: FaultConfig | None = None,
        state_file: Path | None = None,
    ) -> None:
        if isinstance(api_keys, str):
            raise ConfigError("api_keys must be a sequence of keys, not a single string")
        if not api_keys or any(not isinstance(k, str) or not k for k in api_keys):
            raise ConfigError("the emulator needs at least one non-empty API key")
        if creation_delay < 0:
            raise ConfigError(f"creation_delay must not be negative, got {creation_delay}")
        if not 0 <= port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, got {port}")
        self._keys = tuple(api_keys)
        self._port = port
        self.creation_delay = float(creation_delay)
        self.state_file = Path(state_file) if state_file is not None else None
        if self.state_file is not None and self.state_file.exists():
            self.world = World.load_state(self.state_file)
            log.info("loaded emulator state from %s", self.state_file)
        elif isinstance(world, World):
            self.world = world
        else:
            self.world = World.from_yaml(Path(world)) if world is not None else World.demo()
        self.outcomes = self._resolve_outcomes(outcomes or {})
        self.lock = threading.RLock()
        self.clock: Callable[[], float] = time.time
        self.counter = RequestCounter()
        self._injector = FaultInjector(faults or FaultConfig())
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _resolve_outcomes(self, outcomes: Mapping[str, str]) -> dict[str, FinalStatus]:
        resolved: dict[str, FinalStatus] = {}
        for ref, status in outcomes.items():
            index = self.world.index_by_ref(ref)
            if index is None:
                raise ConfigError(f"outcomes: no index named or with id {ref!r}")
            if status not in FINAL_STATUSES:
                raise ConfigError(
                    f"outcomes: {ref!r} -> {status!r}; expected one of {', '.join(FINAL_STATUSES)}"
                )
            resolved[index.id] = status
        return resolved

    # -- faults ---------------------------------------------------------------------------------

    @property
    def faults(self) -> FaultConfig:
        """The fault configuration in force."""
        return self._injector.config

    @faults.setter
    def faults(self, config: FaultConfig) -> None:
        # A fresh injector: the seed's sequence and the max_faults budget start over.
        self._injector = FaultInjector(config)

    @property
    def faults_injected(self) -> dict[str, int]:
        """Faults injected under the current configuration, by kind ("5xx", "429", ...)."""
        return self._injector.injected

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on (valid after ``start``)."""
        if self._server is None:
            raise ConfigError("the emulator is not running: call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT`` (valid after ``start``)."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> Emulator:
        """Bind 127.0.0.1 and serve in a daemon thread; ``ConfigError`` if the port is taken."""
        if self._server is not None:
            return self
        try:
            server = _Server((HOST, self._port), _Handler, self)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {self._port} on {HOST} is already in use; choose another "
                    "(port 0 picks a free one)"
                ) from exc
            raise ConfigError(f"cannot listen on {HOST}:{self._port}: {exc.strerror}") from exc
        self._server = server
        if self.state_file is not None and not self.state_file.exists():
            with self.lock:
                self.world.save_state(self.state_file)
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info("emulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        log.info("emulator stopped")

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- serving --------------------------------------------------------------------------------

    def _user_id(self, header: str | None) -> str | None:
        """The user id of the key in the header, or None if it is missing or wrong."""
        if not header:
            return None
        found = None
        for position, key in enumerate(self._keys):
            # Constant-time comparison, and no early exit: timing does not reveal the keys.
            if hmac.compare_digest(header.encode(), key.encode()) and found is None:
                found = user_id_for(position)
        return found

    def _serve(self, handler: _Handler) -> None:
        """Answer one request (called from the connection's thread)."""
        split = urlsplit(handler.path)
        path, method = split.path, handler.command
        if path.startswith("/_emulator/"):
            self._control(handler, method, path)
            return
        found = api.match(method, path)
        self.counter.add(method, found.template or RequestCounter.UNKNOWN_ROUTE)
        body = handler.read_body()
        if body is None:
            return
        if method not in _HTTP_METHODS:
            message = f"method {method!r} is not implemented; the API uses GET, POST, PUT, PATCH"
            handler.send_json(501, views.error("not_implemented", message))
            return
        injector = self._injector  # one configuration for the whole request
        if injector.config.latency_ms > 0:
            time.sleep(injector.config.latency_ms / 1000.0)
        is_create = found.route is not None and found.route.handler in _CREATES
        fault = injector.draw(is_create=is_create)
        if fault is not None and fault.kind is not FaultKind.LOST:
            self._inject(handler, fault, injector.config.retry_after)
            return
        status, payload, headers = self._answer(handler, method, path, found, split.query, body)
        if is_create and status == 409:
            self.counter.conflict()
        if fault is not None:  # a lost response: only once the create really happened
            if status == 201:
                log.info("fault: %s %s created, dropping the response", method, path)
                handler.drop()
                return
            injector.refund(fault)
        handler.send_json(status, payload, headers)

    def _answer(
        self,
        handler: _Handler,
        method: str,
        path: str,
        found: api.Match,
        raw_query: str,
        body: bytes,
    ) -> tuple[int, Any, dict[str, str]]:
        if found.route is None:
            exc = api.unmatched_error(method, path, found)
            headers = {"Allow": ", ".join(found.allowed)} if found.allowed else {}
            return _error_status(exc), _error_body(exc), headers
        user_id = self._user_id(handler.headers.get("Authorization"))
        if user_id is None:
            message = "missing or invalid API key: send it in the Authorization header"
            return 401, views.error("unauthorized", message), {}
        # First value of each parameter; blank values count as absent, like most APIs.
        query: dict[str, str] = {}
        for name, value in parse_qsl(raw_query):
            query.setdefault(name, value)
        with self.lock:
            now = self.clock()
            ctx = api.Context(
                world=self.world,
                now=now,
                user_id=user_id,
                creation_delay=self.creation_delay,
                outcomes=self.outcomes,
            )
            changed = bool(self.world.refresh(now))
            try:
                result = found.route.handler(ctx, found.params, query, body)
            except ApiError as exc:
                status, payload, mutated = _error_status(exc), _error_body(exc), False
            except Exception:
                # A bug in the emulator: answer like a server would, keep serving.
                log.exception("emulator error on %s %s", method, path)
                message = "internal emulator error (see the emulator's log)"
                status, payload, mutated = 500, views.error("internal_error", message), False
            else:
                status, payload, mutated = result.status, result.body, result.mutated
            if (changed or mutated) and self.state_file is not None:
                try:
                    self.world.save_state(self.state_file)
                except ConfigError as exc:
                    log.error("%s", exc)
                    message = "the emulator could not save its state file"
                    return 500, views.error("internal_error", message), {}
        return status, payload, {}

    def _inject(self, handler: _Handler, fault: Fault, retry_after: int) -> None:
        log.info("fault: %s on %s %s", fault.kind, handler.command, handler.path)
        if fault.kind is FaultKind.DROP:
            handler.drop()
        elif fault.kind is FaultKind.RATE_LIMIT:
            body = views.error(
                "rate_limited",
                f"too many requests; retry after {retry_after} s",
                {"retry_after": retry_after},
            )
            handler.send_json(429, body, {"Retry-After": str(retry_after)})
        else:
            body = views.error("server_error", f"injected fault: HTTP {fault.status}")
            handler.send_json(fault.status, body)

    def _control(self, handler: _Handler, method: str, path: str) -> None:
        if handler.read_body() is None:
            return
        route = f"{method} {path.rstrip('/')}"
        if route == "GET /_emulator/requests":
            pass
        elif route == "POST /_emulator/reset-counter":
            self.counter.reset()
        else:
            handler.send_json(404, views.error("not_found", f"no such endpoint: {method} {path}"))
            return
        snapshot = self.counter.snapshot()
        body = {
            "total": sum(snapshot.values()),
            "requests": snapshot,
            "faults_injected": self.faults_injected,
            "create_conflicts": self.counter.conflicts,
        }
        handler.send_json(200, body)


def _error_status(exc: ApiError) -> int:
    return exc.status or 500


def _error_body(exc: ApiError) -> dict[str, Any]:
    return views.error(exc.code or "error", exc.api_message or str(exc), exc.details)


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its emulator and can close its open connections."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], emulator: Emulator
    ) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanished mid-answer (killed, timed out, cut by its own deadline) is
        # routine for a test server, not worth a traceback on stderr.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.debug("client %s went away: %s", client_address, error)
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Cut keep-alive connections so no thread keeps serving after stop()."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the emulator; knows how to answer JSON or drop the connection."""

    protocol_version = "HTTP/1.1"  # keep-alive, so clients can pool connections
    server_version = "PixxelApiEmulator/1"
    timeout = _SOCKET_TIMEOUT
    # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms each.
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def _dispatch(self) -> None:
        self.server.emulator._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _dispatch

    def __getattr__(self, name: str) -> Any:
        # http.server answers a method without a do_<METHOD> with an HTML 501 page; every
        # method goes to the emulator instead, which answers JSON like the API (405 or 501).
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors (a malformed request line, headers too long) as the API's JSON."""
        text = message or self.responses.get(code, ("error",))[0]
        self.close_connection = True
        # An unparsable request line leaves HTTP/0.9, which would send no status or headers.
        self.request_version = self.protocol_version
        self.send_json(code, views.error("bad_request" if code < 500 else "error", text))

    def read_body(self) -> bytes | None:
        """The request body, or None after answering 400 for a bad Content-Length."""
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
            if length < 0:
                raise ValueError(raw)
        except ValueError:
            self.send_json(400, views.error("bad_request", f"invalid Content-Length {raw!r}"))
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def send_json(
        self, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        """Answer ``status`` with ``payload`` as JSON."""
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def drop(self) -> None:
        """Close the connection without any response, like a crashed peer or a broken network."""
        self.close_connection = True
        with contextlib.suppress(OSError):  # the peer may have gone already
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        # Only the request line and status: headers (the API key) are never logged. Formatted
        # only when someone reads it: this runs for every request.
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s", self.address_string(), format % args)
