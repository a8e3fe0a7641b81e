"""How hard the client tries: the retry policy, and the rate limit that retries obey too.

``ApiRetry`` is urllib3's ``Retry`` (mounted on the session's adapter, below the client's one
request call) plus: a ``Retry-After`` cap (both forms, seconds and HTTP date; a malformed one
falls back to backoff), no retry of what cannot heal (a failed TLS certificate check, a
protocol mismatch), no retry that would not finish within the call's deadline
(``reconciler.api.bounds``), a count of attempts for the final error, a log line per retry and
the shared ``RateLimiter``. Nothing here sends a request or knows the API key.
"""

from __future__ import annotations

import http.client
import logging
import ssl
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    InvalidHeader,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
    SSLError,
)
from urllib3.util.retry import Retry

from reconciler.api.bounds import current_call
from reconciler.errors import ConfigError
from reconciler.text import shorten

__all__ = [
    "RETRY_STATUSES",
    "ApiRetry",
    "RateLimiter",
    "cannot_heal",
    "describe_error",
    "header_fault",
    "quiet_urllib3_retry_warnings",
]

# Retries are logged under the client's name: with -v they read as part of the request they
# belong to, next to its "GET ... -> 200" line.
log = logging.getLogger("reconciler.api.client")

#: Statuses worth another attempt: a request timeout, "too early", throttling and transient
#: server trouble. Every other 4xx says the request itself is wrong: repeating it cannot help.
RETRY_STATUSES: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})


class RateLimiter:
    """Spaces calls at most ``rate`` per second across all threads (no bursts).

    Each ``acquire`` reserves the next free slot under a lock and sleeps outside it, so
    waiting threads queue fairly without holding each other up. ``clock`` and ``sleep`` are
    injectable so the schedule can be tested without a real clock.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise ConfigError(f"The request rate limit must be positive, got {rate}.")
        self.rate = rate
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = float("-inf")

    def acquire(self) -> float:
        """Wait for this caller's slot; return how long it waited (seconds)."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate})"


class ApiRetry(Retry):
    """urllib3's ``Retry`` with a cap on ``Retry-After``, retry logging and the rate limit.

    Everything else (which statuses and errors retry, exponential backoff with jitter, counting
    attempts) is urllib3's. The extra state is carried through ``new()``, which urllib3 calls
    to make the next attempt's ``Retry``.
    """

    def __init__(
        self,
        *args: Any,
        retry_after_cap: float = 30.0,
        limiter: RateLimiter | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after_cap = retry_after_cap
        self.limiter = limiter

    def new(self, **kw: Any) -> ApiRetry:
        kw.setdefault("retry_after_cap", self.retry_after_cap)
        kw.setdefault("limiter", self.limiter)
        return super().new(**kw)

    def parse_retry_after(self, retry_after: str) -> float:
        # A server asking for ten minutes should not stall a plan for ten minutes: wait at
        # most the cap, then let the retry (or the typed error) happen. urllib3 reads both
        # forms (delay-seconds and HTTP-date); a malformed value would raise out of the
        # request, so it counts as absent and the backoff applies instead.
        try:
            seconds = super().parse_retry_after(retry_after)
        except (InvalidHeader, ValueError, OverflowError):
            log.debug("ignoring a malformed Retry-After: %s", shorten(retry_after, 60))
            return 0.0
        return min(seconds, self.retry_after_cap)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: urllib3.BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: TracebackType | None = None,
    ) -> ApiRetry:
        call = current_call()
        if call is not None:
            call.failed_attempts += 1
        if error is not None and cannot_heal(error):
            raise MaxRetryError(_pool, url or "", error)
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        if call is not None and (call.expired or call.remaining() <= new._next_wait(response)):
            # The next attempt would not finish in time: give up now, with the error in hand.
            call.expired = True
            reason = error or ResponseError(f"{response.status if response else ''} response")
            raise MaxRetryError(_pool, url or "", reason)
        cause = f"{response.status}" if response is not None else describe_error(error)
        done = len(new.history)
        planned = f"{done + new.total}" if isinstance(new.total, int) else "unbounded"
        log.info("%s %s -> %s; retry %d of %s", method, url, cause, done, planned)
        return new

    def _next_wait(self, response: urllib3.BaseHTTPResponse | None) -> float:
        """About how long ``sleep`` will wait before the next attempt (backoff has jitter)."""
        if self.respect_retry_after_header and response is not None:
            retry_after = self.get_retry_after(response)
            if retry_after:
                return retry_after
        return self.get_backoff_time()

    def sleep(self, response: urllib3.BaseHTTPResponse | None = None) -> None:
        super().sleep(response)
        # Retries are requests too: they count against the shared rate limit.
        if self.limiter is not None:
            self.limiter.acquire()


def cannot_heal(error: BaseException) -> bool:
    """True for a transport failure that another attempt cannot fix.

    A certificate that fails verification (expired, self-signed, for another host) or a peer
    that does not speak TLS stays that way; retrying only delays the error.
    """
    if not isinstance(error, SSLError):
        return False
    causes = [*error.args, error.__cause__, error.__context__]
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        return True
    text = str(error)
    return "CERTIFICATE_VERIFY_FAILED" in text or "WRONG_VERSION_NUMBER" in text


def describe_error(error: BaseException | None) -> str:
    """A short, key-free description of a transport failure."""
    if isinstance(error, MaxRetryError) and error.reason is not None:
        error = error.reason
    if isinstance(error, NewConnectionError):
        return "cannot connect (connection refused or host unreachable)"
    if isinstance(error, ConnectTimeoutError):
        return "connect timed out"
    if isinstance(error, ReadTimeoutError):
        return "no answer in time (read timeout)"
    if isinstance(error, SSLError):
        if cannot_heal(error):
            return f"TLS verification failed (not retried: it cannot heal): {shorten(str(error))}"
        return f"TLS error: {shorten(str(error))}"
    if isinstance(error, ProtocolError):
        fault = header_fault(error)
        if fault is not None:
            return f"answered with a head that was refused: {fault}"
        return "connection dropped before an answer arrived"
    if error is None:
        return "unknown error"
    return f"{type(error).__name__}: {shorten(str(error))}"


def header_fault(error: BaseException | None) -> str | None:
    """What was wrong with the head of an answer that http.client refused to read, if that is
    why the request failed; None for any other failure.

    urllib3 reports such an answer like a dropped connection, but it is another fault: the
    peer answered, with a status line or headers beyond what is read.
    """
    if isinstance(error, MaxRetryError):
        error = error.reason
    if not isinstance(error, ProtocolError):
        return None
    cause = next((a for a in error.args if isinstance(a, http.client.HTTPException)), None)
    if isinstance(cause, http.client.LineTooLong):
        limit = getattr(http.client, "_MAXLINE", 65536)
        return f"its status line or a header line is longer than {limit:,} bytes"
    # http.client raises the base class itself for one thing only: too many header lines.
    if type(cause) is http.client.HTTPException:
        return f"it has more than {getattr(http.client, '_MAXHEADERS', 100)} headers"
    return None


def _drop_urllib3_retry_warnings(record: logging.LogRecord) -> bool:
    """Drop urllib3's own "Retrying (...)" warnings: ``ApiRetry`` logs each retry at INFO.

    Without this a flaky network fills a normal run's stderr with urllib3 internals (the
    Retry object's repr and the raw exception). If urllib3 rewords the message, the only
    cost is that its warnings show again.
    """
    return not (isinstance(record.msg, str) and record.msg.startswith("Retrying ("))


def quiet_urllib3_retry_warnings() -> None:
    """Stop urllib3 from warning about each retry that ``ApiRetry`` already logs."""
    logging.getLogger("urllib3.connectionpool").addFilter(_drop_urllib3_retry_warnings)
