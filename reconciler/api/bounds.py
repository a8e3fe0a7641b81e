"""How long and how large one API call may get: a deadline and a body size, enforced.

A call (``PixxelClient._request``: every attempt urllib3 makes for it, the waits between them,
and reading the final body) runs inside ``RequestBounds.call``, which

- gives it a deadline (``deadline`` seconds from its start, never past the run's deadline set
  with ``set_run_deadline``). A per-socket read timeout alone does not bound a call: a server
  that trickles a byte every few seconds, in its headers or its body, never trips it. So each
  connection the call sends on is armed with the deadline, and one watchdog thread shuts the
  socket down when it passes; the blocked read returns at once and the call fails as a
  ``DeadlineError``. The retry policy (``reconciler.api.retry.ApiRetry``) reads the same deadline
  to stop retrying when no further attempt fits in it, and counts the attempts for messages;
- reads the body itself (``read_body``) in bounded chunks, decompressed by urllib3 chunk by
  chunk, and refuses a body larger than ``max_body_bytes``: a declared ``Content-Length`` is
  refused before reading, a gzip bomb after at most one chunk past the bound.

``BoundedAdapter`` is the ``requests`` transport whose connections get armed; it is otherwise
requests' ``HTTPAdapter`` (pooling, TLS, proxies, retries).
"""

from __future__ import annotations

import contextlib
import http.client
import math
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import BaseHTTPResponse, HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import DecodeError, HTTPError, InvalidChunkLength, ReadTimeoutError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

from reconciler.errors import (
    ConfigError,
    CutShortError,
    DeadlineError,
    InvalidResponseError,
    RunDeadlineError,
    TransportError,
)

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_BODY_BYTES",
    "BoundedAdapter",
    "Call",
    "RequestBounds",
    "current_call",
    "read_body",
]

#: Seconds one call may take, every attempt and wait included. Generous: a page or a create
#: answers in well under a second; this only has to end what would otherwise never end.
DEFAULT_DEADLINE = 60.0
#: The largest answer accepted, after decompression. A page of 100 visualizations is tens of
#: KiB; what parsing makes of 16 MiB of the densest JSON still fits in about 200 MB.
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
#: Bytes read (and decompressed) at a time: the most a body can overshoot the bound.
_CHUNK = 64 * 1024


@dataclass(eq=False)
class Call:
    """One call in flight: what it is, its deadline, and how its attempts went so far."""

    method: str
    shown: str  # path and query, as messages show them
    started: float  # time.monotonic()
    deadline: float  # time.monotonic() by which the call must be over
    run_reason: str | None = None  # set when the deadline is the run's, not the call's own
    #: Attempts that failed and went back to the retry policy (counted by ``ApiRetry``).
    failed_attempts: int = 0
    #: Set once the deadline cut a connection or stopped a retry.
    expired: bool = False
    connections: list[HTTPConnection] = field(default_factory=list)

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it passed)."""
        return self.deadline - time.monotonic()

    def elapsed(self) -> float:
        """Seconds since the call started."""
        return time.monotonic() - self.started

    def over(self, attempts: int | None) -> str:
        """'after 3 attempts over 12.4 s', 'after 1 attempt in 0.2 s'; None: 'after 0.2 s'."""
        if attempts is None:
            return f"after {self.elapsed():.1f} s"
        noun = "attempt" if attempts == 1 else "attempts"
        span = "in" if attempts == 1 else "over"
        return f"after {attempts} {noun} {span} {self.elapsed():.1f} s"

    def deadline_error(self, attempts: int | None) -> DeadlineError:
        """The ``DeadlineError`` for this call, saying which deadline ran out."""
        message = f"{self.method} {self.shown} failed {self.over(attempts)}: "
        if self.run_reason is not None:
            return RunDeadlineError(message + f"{self.run_reason}.", method=self.method)
        why = f"no complete answer within its {self.deadline - self.started:g} s deadline"
        return DeadlineError(message + f"{why}.", method=self.method)


_local = threading.local()


def current_call() -> Call | None:
    """The call this thread is making, if any (the retry policy reads its deadline)."""
    call: Call | None = getattr(_local, "call", None)
    return call


class RequestBounds:
    """The deadline and body size of every call of one client, and the run's deadline.

    :param deadline: seconds one call may take, every attempt, wait and the body included.
    :param max_body_bytes: the largest answer accepted, after decompression.
    """

    def __init__(
        self,
        deadline: float = DEFAULT_DEADLINE,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if not deadline > 0:
            raise ConfigError(f"The request deadline must be positive, got {deadline}.")
        if max_body_bytes < 1:
            raise ConfigError(f"The response size bound must be positive, got {max_body_bytes}.")
        self.deadline = float(deadline)
        self.max_body_bytes = max_body_bytes
        self._run_deadline: float | None = None
        self._run_reason = ""
        self._active: set[Call] = set()  # calls in flight (eq=False: by identity)
        self._active_lock = threading.Lock()

    def set_run_deadline(self, at: float | None, reason: str = "") -> None:
        """No call may run past ``at`` (``time.monotonic()``); ``reason`` says why, in errors.

        Calls in flight are cut when it passes, also those that started before it was set;
        later calls fail at once with ``reason``.
        """
        self._run_deadline = at
        self._run_reason = reason or "the run's time is up"
        if at is None:
            return
        with self._active_lock:
            earlier = [call for call in self._active if at < call.deadline]
            for call in earlier:
                call.deadline, call.run_reason = at, self._run_reason
        if earlier:
            _WATCHDOG.reschedule()

    @contextlib.contextmanager
    def call(self, method: str, shown: str) -> Iterator[Call]:
        """Run one call within its deadline (see the module docstring)."""
        now = time.monotonic()
        deadline, run_reason = now + self.deadline, None
        run_deadline = self._run_deadline
        if run_deadline is not None and run_deadline <= deadline:
            deadline, run_reason = run_deadline, self._run_reason
            if run_deadline <= now:
                raise RunDeadlineError(f"{method} {shown} not sent: {run_reason}.", method=method)
        call = Call(method, shown, now, deadline, run_reason)
        previous = current_call()
        _local.call = call
        with self._active_lock:
            self._active.add(call)
        try:
            yield call
        finally:
            with self._active_lock:
                self._active.discard(call)
            _local.call = previous
            _WATCHDOG.disarm(call)


# --- the watchdog ----------------------------------------------------------------------------


class _Watchdog:
    """One daemon thread that shuts down the socket of every armed connection past its deadline.

    Shutting a socket down (rather than closing it) is safe while another thread reads from
    it: the read returns at once, and urllib3 then closes the connection as broken.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[Call, HTTPConnection]] = {}
        self._thread: threading.Thread | None = None
        self._wakes_at = math.inf  # when the thread looks next (inf: when woken)

    def arm(self, conn: HTTPConnection, call: Call) -> None:
        with self._cond:
            self._armed[id(conn)] = (call, conn)
            call.connections.append(conn)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="reconciler-deadlines", daemon=True
                )
                self._thread.start()
            # Wake the thread only if this deadline comes before it looks anyway: a request
            # usually expires after those already armed, and waking it for every request
            # handed the interpreter to it and back each time (a sixth of a request's CPU).
            if call.deadline < self._wakes_at:
                self._wakes_at = call.deadline
                self._cond.notify()

    def reschedule(self) -> None:
        """Look again at once: an armed call's deadline moved earlier."""
        with self._cond:
            self._wakes_at = -math.inf
            self._cond.notify()

    def disarm(self, call: Call) -> None:
        with self._cond:
            for conn in call.connections:
                armed = self._armed.get(id(conn))
                if armed is not None and armed[0] is call:
                    del self._armed[id(conn)]

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [(c, conn) for c, conn in self._armed.values() if c.deadline <= now]
                for _, conn in due:
                    del self._armed[id(conn)]
                if not due:
                    soonest = min((c.deadline for c, _ in self._armed.values()), default=None)
                    self._wakes_at = math.inf if soonest is None else soonest
                    self._cond.wait(None if soonest is None else soonest - now)
                    continue
            for call, conn in due:
                call.expired = True
                sock = conn.sock
                if sock is not None:
                    with contextlib.suppress(OSError):  # closed meanwhile: nothing to cut
                        sock.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()


class _Armed:
    """Arms the connection with the current call's deadline each time it sends a request."""

    _raw_response: http.client.HTTPResponse | None = None

    def request(self, *args: Any, **kwargs: Any) -> None:
        call = current_call()
        if call is not None:
            if call.remaining() <= 0:
                call.expired = True
                raise Urllib3TimeoutError("the call's deadline passed before this attempt")
            _WATCHDOG.arm(self, call)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self) -> Any:
        try:
            return super().getresponse()  # type: ignore[misc]
        except HTTPError:
            # urllib3 refused headers that http.client had already read (say, two different
            # Content-Lengths) and dropped that response, which still holds the socket's file:
            # close it, or the socket stays open until the garbage collector finds it.
            if self._raw_response is not None:
                self._raw_response.close()
            raise
        finally:
            self._raw_response = None


class _KeepsRawResponse(http.client.HTTPConnection):
    """Below urllib3's connection class: remembers the response http.client made last."""

    _raw_response: http.client.HTTPResponse | None = None

    def getresponse(self) -> http.client.HTTPResponse:
        response = super().getresponse()
        self._raw_response = response
        return response


class _ArmedHTTPConnection(_Armed, HTTPConnection, _KeepsRawResponse):
    pass


class _ArmedHTTPSConnection(_Armed, HTTPSConnection, _KeepsRawResponse):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _ArmedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _ArmedHTTPSConnection


_ARMED_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class BoundedAdapter(HTTPAdapter):
    """requests' ``HTTPAdapter`` whose connections are armed with each call's deadline.

    Takes ``HTTPAdapter``'s arguments. Through a SOCKS proxy (its own connection classes)
    only the socket timeouts apply.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _ARMED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # An HTTP(S) proxy's manager pools plain urllib3 connections, which we arm; a SOCKS
        # proxy's pools connections of its own, left as they are.
        plain = {"http": HTTPConnectionPool, "https": HTTPSConnectionPool}
        if dict(manager.pool_classes_by_scheme) == plain:
            manager.pool_classes_by_scheme = _ARMED_POOLS
        return manager


# --- the body --------------------------------------------------------------------------------


def read_body(response: requests.Response, call: Call, max_bytes: int) -> bytes:
    """The whole (decompressed) body of ``response``, within ``call``'s deadline and ``max_bytes``.

    Raises ``InvalidResponseError`` for a body over the bound, ``DeadlineError`` when the
    deadline passed, ``CutShortError`` when the body stopped coming (the connection broke or
    went silent), ``TransportError`` when it cannot be read (decompressed, or its chunks
    framed). The response is closed on any failure (its connection is not reused).
    """
    what = f"{call.method} {call.shown}"
    declared = _declared_length(response)
    if declared is not None and declared > max_bytes:
        response.close()
        raise _too_large(what, response.status_code, max_bytes, declared)
    raw = response.raw
    read = _chunk_reader(raw)
    body = bytearray()
    try:
        while True:
            if call.remaining() <= 0:
                call.expired = True
                raise call.deadline_error(call.failed_attempts + 1)
            chunk = read()
            if not chunk:
                break
            body += chunk
            if len(body) > max_bytes:
                raise _too_large(what, response.status_code, max_bytes, None)
    except (HTTPError, http.client.HTTPException, OSError, ValueError) as exc:
        response.close()
        if call.expired:
            raise call.deadline_error(call.failed_attempts + 1) from None
        kind = CutShortError if _stopped(exc) else TransportError
        raise kind(
            f"{what} answered {response.status_code}, then {_body_failure(exc, len(body))}.",
            method=call.method,
        ) from None
    except BaseException:
        response.close()
        raise
    return bytes(body)


def _stopped(exc: BaseException) -> bool:
    """Whether a failed read of a body means it stopped coming (another attempt may bring it
    whole), rather than that what came cannot be read (corrupt compression, garbage where a
    chunk's size belongs), which another attempt would only bring again."""
    if isinstance(exc, DecodeError):
        return False
    causes = [exc, *exc.args, exc.__cause__, exc.__context__]
    # A chunk size line that is empty is where the connection closed; one with bytes is garbage.
    return not any(isinstance(c, InvalidChunkLength) and c.length.strip() for c in causes)


def _body_failure(exc: BaseException, received: int) -> str:
    """What went wrong while reading a body, in words."""
    if isinstance(exc, DecodeError):
        return "its body could not be decompressed (corrupt or mislabelled Content-Encoding)"
    if isinstance(exc, ReadTimeoutError):
        return f"stopped sending (read timeout) after {received:,} bytes of the body"
    return f"the connection broke after {received:,} bytes of the body (answer cut short)"


def _chunk_reader(raw: Any) -> Any:
    if isinstance(raw, BaseHTTPResponse):
        # read1: return what one socket read brings (read(n) would wait for all n bytes, which
        # a trickling server never sends); decode_content: urllib3 decompresses at most one
        # chunk's worth at a time.
        return lambda: raw.read1(_CHUNK, decode_content=True)
    return lambda: raw.read(_CHUNK)  # a test transport's file-like body


def _declared_length(response: requests.Response) -> int | None:
    # Only a plain body's Content-Length says how large it will be once decoded.
    if response.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        return None
    try:
        return int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None


def _too_large(
    what: str, status: int, max_bytes: int, declared: int | None
) -> InvalidResponseError:
    size = f" ({declared:,} bytes)" if declared is not None else ""
    return InvalidResponseError(
        f"{what} answered {status} with a body larger than the {max_bytes:,}-byte bound{size}; "
        "refusing to read it.",
        status=status,
    )
