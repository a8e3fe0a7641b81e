"""The Pixxel API client: one session, retries, a rate limit, typed answers and typed errors.

Everything reconciler sends to the API goes through ``PixxelClient._request``, the one place
that applies the rate limit, logs the request, and maps every non-2xx answer to an
``ApiError`` subclass by its status class. Retries live below it, in urllib3's ``Retry``
mounted on the session's adapter, so a retried request is still one call here.

The API key is a secret. It lives only in the ``Authorization`` header (set by ``_ApiKeyAuth``
on each request) and is redacted from every repr, error message and log record we control.

A client may be shared by many threads: the session is never mutated after construction, the
connection pool is sized for ``parallelism`` and thread-safe, and the rate limiter is locked.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
import urllib3
from pydantic import BaseModel, TypeAdapter, ValidationError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util.retry import Retry

from reconciler import __version__
from reconciler.apitypes import Aoi, Asset, Index, Pagination, Visualization, VisualizationDetail
from reconciler.errors import (
    ApiError,
    ApiValidationError,
    ConfigError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnauthorizedError,
)

__all__ = [
    "DEFAULT_API_URL",
    "RETRY_STATUSES",
    "ApiRetry",
    "PixxelClient",
    "RateLimiter",
    "dedupe_by_id",
    "resolve_api_key",
]

log = logging.getLogger(__name__)

#: Where the CLI points the client when neither --api-url nor PIXXEL_API_URL says otherwise.
DEFAULT_API_URL = "https://api.pixxel.space"

#: Statuses worth another attempt: throttling and transient server trouble.
RETRY_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})

#: The largest page the API accepts (it clamps larger limits).
MAX_PAGE_SIZE = 100

#: Secrets shorter than this are not scrubbed from log text: replacing "ab" everywhere would
#: mangle unrelated messages. They are still never logged by us.
_MIN_REDACTABLE = 4
_REDACTED = "***"

#: A listing that has not ended after this many pages is an API bug, not data.
_MAX_PAGES = 10_000

#: How much of a non-JSON error body to quote in a message.
_SNIPPET_CHARS = 200

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


# --------------------------------------------------------------------------------------------
# The API key
# --------------------------------------------------------------------------------------------


def resolve_api_key(key_file: Path | None, environ: Mapping[str, str]) -> str:
    """Find the API key: ``--api-key-file`` if given, else ``PIXXEL_API_KEY``.

    Surrounding whitespace is stripped (files usually end with a newline). Every failure is a
    ``ConfigError`` naming where the key was looked for, never quoting any of its content.
    """
    if key_file is not None:
        try:
            text = Path(key_file).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"API key file {key_file} does not exist.") from None
        except IsADirectoryError:
            raise ConfigError(f"API key file {key_file} is a directory, not a file.") from None
        except UnicodeDecodeError:
            # The codec error quotes bytes of the file: say only that it is not text.
            raise ConfigError(f"API key file {key_file} is not UTF-8 text.") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConfigError(f"Cannot read API key file {key_file}: {reason}.") from None
        key = text.strip()
        if not key:
            raise ConfigError(f"API key file {key_file} is empty.")
        _check_key(key, f"API key file {key_file}")
        return key

    if "PIXXEL_API_KEY" in environ:
        key = environ["PIXXEL_API_KEY"].strip()
        if not key:
            raise ConfigError(
                "PIXXEL_API_KEY is set but empty. Put your API key in it, or use "
                "--api-key-file FILE."
            )
        _check_key(key, "PIXXEL_API_KEY")
        return key

    raise ConfigError(
        "No API key. Set the PIXXEL_API_KEY environment variable, or pass --api-key-file FILE "
        "(a file holding only the key). To try reconciler without a key, add --sandbox to run "
        "against the bundled emulator."
    )


def _check_key(key: str, source: str) -> None:
    """Refuse keys that cannot travel in a header.

    requests would otherwise raise ``InvalidHeader`` quoting the whole header value, key
    included, in its message.
    """
    if not key.isascii() or not key.isprintable():
        raise ConfigError(
            f"The API key from {source} contains line breaks, control or non-ASCII characters; "
            "it must be a single line of plain text."
        )


class _ApiKeyAuth(requests.auth.AuthBase):
    """Puts the key in the ``Authorization`` header, and nowhere else (not even its repr)."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._key
        return request

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_REDACTED})"


class _RedactingFilter(logging.Filter):
    """Replaces known secrets in log records with ``***`` (defence in depth).

    We never log the key; this catches a third party (or a future bug) that does. One
    instance is shared by every client, so installing it twice is harmless.
    """

    def __init__(self) -> None:
        super().__init__("")
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        if len(secret) >= _MIN_REDACTABLE:
            with self._lock:
                self._secrets.add(secret)

    def redact(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, _REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the handler's problem, not ours
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


_redactor = _RedactingFilter()


def _drop_urllib3_retry_warnings(record: logging.LogRecord) -> bool:
    """Drop urllib3's own "Retrying (...)" warnings: ``ApiRetry`` logs each retry at INFO.

    Without this a flaky network fills a normal run's stderr with urllib3 internals (the
    Retry object's repr and the raw exception). If urllib3 rewords the message, the only
    cost is that its warnings show again.
    """
    return not (isinstance(record.msg, str) and record.msg.startswith("Retrying ("))


def _install_redaction(secret: str) -> None:
    """Attach the shared redacting filter to the reconciler and urllib3 loggers.

    A logger's filters only see records logged on that very logger, not those propagated
    from its children, so the filter goes on every existing ``reconciler.*`` / ``urllib3.*``
    logger too (urllib3 logs from ``urllib3.connectionpool`` and friends).
    """
    _redactor.add(secret)
    names = ["reconciler", "urllib3", __name__]
    names += [
        name
        for name in list(logging.Logger.manager.loggerDict)
        if name.startswith(("reconciler.", "urllib3."))
    ]
    for name in names:
        logging.getLogger(name).addFilter(_redactor)  # addFilter ignores duplicates
    logging.getLogger("urllib3.connectionpool").addFilter(_drop_urllib3_retry_warnings)


# --------------------------------------------------------------------------------------------
# Retries and rate limit
# --------------------------------------------------------------------------------------------


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

    def new(self, **kw: Any) -> ApiRetry:  # type: ignore[override]
        kw.setdefault("retry_after_cap", self.retry_after_cap)
        kw.setdefault("limiter", self.limiter)
        return super().new(**kw)

    def parse_retry_after(self, retry_after: str) -> float:
        # A server asking for ten minutes should not stall a plan for ten minutes: wait at
        # most the cap, then let the retry (or the typed error) happen.
        return min(super().parse_retry_after(retry_after), self.retry_after_cap)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: urllib3.BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: TracebackType | None = None,
    ) -> ApiRetry:
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        cause = f"{response.status}" if response is not None else _describe_error(error)
        done = len(new.history)
        planned = f"{done + new.total}" if isinstance(new.total, int) else "unbounded"
        log.info("%s %s -> %s; retry %d of %s", method, url, cause, done, planned)
        return new

    def sleep(self, response: urllib3.BaseHTTPResponse | None = None) -> None:
        super().sleep(response)
        # Retries are requests too: they count against the shared rate limit.
        if self.limiter is not None:
            self.limiter.acquire()


def _describe_error(error: BaseException | None) -> str:
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
        return f"TLS error: {_shorten(str(error))}"
    if isinstance(error, ProtocolError):
        return "connection dropped before an answer arrived"
    if error is None:
        return "unknown error"
    return f"{type(error).__name__}: {_shorten(str(error))}"


def _shorten(text: str, limit: int = _SNIPPET_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def dedupe_by_id(items: Iterable[T], key: Callable[[T], Hashable]) -> list[T]:
    """Keep the first item for each id, in order.

    A listing paged while the data moves can show an item on two pages; the first sighting
    wins so the result does not depend on how far the data moved.
    """
    seen: set[Hashable] = set()
    kept: list[T] = []
    for item in items:
        ident = key(item)
        if ident not in seen:
            seen.add(ident)
            kept.append(item)
    return kept


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _normalise_base_url(base_url: str) -> tuple[str, bool]:
    """Check the API URL; return it without a trailing slash, and whether it is loopback."""
    shown = _shorten(base_url, 120)
    try:
        parts = urlsplit(base_url.strip())
    except ValueError:
        raise ConfigError(f"API URL {shown!r} is not a valid URL.") from None
    if "@" in parts.netloc:
        # Credentials in the URL would end up in logs and messages (so this message does not
        # quote the URL); the key has its own place.
        raise ConfigError(
            "API URL must not contain a user name or password; pass the key with "
            "PIXXEL_API_KEY or --api-key-file."
        )
    try:
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigError(f"API URL {shown!r} is not a valid URL (bad host or port).") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(
            f"API URL {shown!r} must start with https:// and name a host, e.g. {DEFAULT_API_URL}."
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"API URL {shown!r} must not have a query string or fragment.")
    loopback = _is_loopback(host)
    if parts.scheme == "http" and not loopback:
        raise ConfigError(
            f"Refusing plain http:// for {host}: the API key would travel unencrypted. Use "
            "https://, or http:// only for a local emulator (localhost, 127.0.0.1, ::1)."
        )
    return parts.geturl().rstrip("/"), loopback


def _iso_to_api_date(value: str) -> str:
    """``"2024-05-06"`` → ``"2024_05_06"``, the form the metadata calls take."""
    try:
        return dt.date.fromisoformat(str(value).strip().replace("_", "-")).strftime("%Y_%m_%d")
    except ValueError:
        raise ApiValidationError(
            f"{value!r} is not an ISO date like 2024-05-06; the API would refuse it."
        ) from None


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


class PixxelClient:
    """A thread-safe client for the parts of the Pixxel API reconciler uses.

    :param base_url: the API root, e.g. ``https://api.pixxel.space``. ``http://`` is accepted
        only for loopback hosts (a local emulator).
    :param api_key: sent as the ``Authorization`` header; never logged or shown.
    :param parallelism: how many threads will share this client; sizes the connection pool.
    :param max_rps: at most this many requests per second (retries included), across threads.
    :param timeout: (connect, read) timeouts in seconds for each attempt.
    :param retries: extra attempts after a 429, 500, 502, 503, 504, dropped connection or
        timeout, for every method (a repeated create answers 409, which callers treat as
        "already present"; the metadata calls are idempotent).
    :param backoff_factor: exponential backoff base in seconds (urllib3's formula, plus up to
        one factor of random jitter).
    :param retry_after_cap: never wait longer than this for a ``Retry-After``.
    :param page_size: items per listing page; the API accepts at most 100.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        parallelism: int = 8,
        max_rps: float | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        retries: int = 5,
        backoff_factor: float = 0.5,
        retry_after_cap: float = 30.0,
        page_size: int = MAX_PAGE_SIZE,
    ) -> None:
        self.base_url, loopback = _normalise_base_url(base_url)
        if not api_key:
            raise ConfigError("The API key is empty.")
        _check_key(api_key, "the caller")
        if parallelism < 1:
            raise ConfigError(f"Parallelism must be at least 1, got {parallelism}.")
        if retries < 0:
            raise ConfigError(f"Retries must be 0 or more, got {retries}.")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"Page size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}.")
        if len(timeout) != 2 or not all(t > 0 for t in timeout):
            raise ConfigError(f"Timeouts must be two positive numbers, got {timeout}.")

        _install_redaction(api_key)
        self.parallelism = parallelism
        self.page_size = page_size
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self._limiter = RateLimiter(max_rps) if max_rps is not None else None

        self._retry = ApiRetry(
            total=retries,
            # None = every method. Safe for this API: see the class docstring.
            allowed_methods=None,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            backoff_jitter=backoff_factor,
            # Give the final 429/5xx back to _request so it becomes a typed error with the
            # API's message, instead of urllib3's generic "too many 503 error responses".
            raise_on_status=False,
            respect_retry_after_header=True,
            retry_after_cap=retry_after_cap,
            limiter=self._limiter,
        )
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=parallelism, max_retries=self._retry)
        session = requests.Session()
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.auth = _ApiKeyAuth(api_key)
        # Refuse every cookie: the API needs none, and a shared jar that each response writes
        # (say, a load balancer's sticky-session cookie) is the one part of a Session that
        # threads would mutate concurrently.
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        session.headers["Accept"] = "application/json"
        session.headers["User-Agent"] = f"reconciler/{__version__}"
        if loopback:
            # A local emulator is never behind a proxy; without this an HTTP(S)_PROXY in the
            # environment would route 127.0.0.1 through it.
            session.trust_env = False
        self._session = session

    # ----------------------------------------------------------------------------- plumbing

    def __repr__(self) -> str:
        return (
            f"PixxelClient(base_url={self.base_url!r}, parallelism={self.parallelism}, "
            f"max_rps={self._limiter.rate if self._limiter else None})"
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def __enter__(self) -> PixxelClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> Any:
        """Send one request (urllib3 retries below) and return its decoded JSON body.

        Every non-2xx status becomes the ``ApiError`` subclass for its class; a 2xx that is
        not JSON becomes a plain ``ApiError``.
        """
        request = requests.Request(
            method,
            self.base_url + path,
            params={k: v for k, v in (params or {}).items() if v is not None},
            json=json_body,
        )
        prepared = self._session.prepare_request(request)
        shown = prepared.path_url  # what logs and errors show: path and query, no host, no key
        settings = self._session.merge_environment_settings(prepared.url, {}, None, None, None)
        if self._limiter is not None:
            self._limiter.acquire()
        started = time.monotonic()
        try:
            response = self._session.send(
                prepared, timeout=self.timeout, allow_redirects=False, **settings
            )
            body = response.content  # read here so a body cut short is a transport failure
        except requests.RequestException as exc:
            reason = exc.args[0] if exc.args and isinstance(exc.args[0], Exception) else exc
            described = _describe_error(reason)
            log.debug("%s %s -> failed in %d ms: %s", method, shown, _ms(started), described)
            # MaxRetryError means urllib3 used every attempt; anything else (a body cut short)
            # failed on the attempt it happened in.
            tries = (
                f" after {self._retry.total + 1} attempts"
                if isinstance(reason, MaxRetryError)
                else ""
            )
            raise TransportError(
                f"{method} {shown} failed{tries}: no answer from {self.base_url}: {described}.",
                method=method,
                url=self.base_url + shown,
            ) from None
        attempts = _attempts(response)
        log.debug(
            "%s %s -> %d in %d ms (attempt %d)",
            method,
            shown,
            response.status_code,
            _ms(started),
            attempts,
        )
        if not 200 <= response.status_code < 300:
            raise self._error(method, shown, response.status_code, body, attempts)
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except ValueError:
            raise ApiError(
                f"{method} {shown} answered {response.status_code} but not with JSON: "
                f"{_shorten(_redact(body.decode('utf-8', 'replace')))!r}",
                method=method,
                url=self.base_url + shown,
                status=response.status_code,
            ) from None

    def _error(self, method: str, shown: str, status: int, body: bytes, attempts: int) -> ApiError:
        """Build the typed error for a non-2xx answer, keeping the API's code and message."""
        code: str | None = None
        api_message: str | None = None
        details: object = None
        try:
            payload = json.loads(body) if body.strip() else None
        except ValueError:
            payload = None
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            code = str(error["code"]) if error.get("code") is not None else None
            api_message = _redact(str(error["message"])) if error.get("message") else None
            details = _redact_obj(error.get("details"))
        elif body.strip():
            api_message = _shorten(_redact(body.decode("utf-8", "replace")))

        cls: type[ApiError]
        if status == 401:
            cls, hint = UnauthorizedError, "check PIXXEL_API_KEY or --api-key-file"
        elif status == 403:
            cls, hint = ForbiddenError, "this API key may not do this"
        elif status == 404:
            cls, hint = NotFoundError, ""
        elif status == 409:
            cls, hint = ConflictError, ""
        elif status == 429:
            cls, hint = (
                RateLimitedError,
                f"still rate limited after {attempts} attempts; "
                + ("lower --max-rps or --parallelism"),
            )
        elif 400 <= status < 500:
            cls, hint = ApiValidationError, ""
        elif status >= 500:
            cls, hint = ServerError, f"the API failed {attempts} times in a row"
        else:  # 1xx/3xx: we never follow redirects (the key must not travel elsewhere)
            cls, hint = ApiError, "unexpected answer"

        text = f"{method} {shown} failed: {status}"
        if code:
            text += f" {code}"
        if api_message:
            text += f": {api_message}"
        if hint:
            text += f" ({hint})"
        return cls(
            text,
            method=method,
            url=self.base_url + shown,
            status=status,
            code=code,
            api_message=api_message,
            details=details,
        )

    @staticmethod
    def _parse(model: type[M], data: Any, what: str) -> M:
        """Validate an API answer; a shape we do not understand is an ``ApiError``."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise ApiError(
                f"The API's answer to {what} is not what we expect: {_summary(exc)}"
            ) from None

    def _paginate(
        self, path: str, key: str, item_type: type[M], params: Mapping[str, Any] | None = None
    ) -> list[M]:
        """Fetch every page of a listing and return its items, de-duplicated by id.

        Pages follow ``pagination.total``; the next offset advances by the items received and
        the limit shrinks to what the API says it allows. An empty page ends the listing even
        if ``total`` promised more, so a shrinking listing cannot loop forever.
        """
        adapter = TypeAdapter(list[item_type])  # type: ignore[valid-type]
        items: list[M] = []
        offset, limit = 0, self.page_size
        for _ in range(_MAX_PAGES):
            what = f"GET {path} (offset {offset})"
            query = {**(params or {}), "offset": offset, "limit": limit}
            data = self._request("GET", path, params=query)
            if not isinstance(data, dict):
                raise ApiError(f"The API's answer to {what} is not a JSON object.")
            raw = data.get(key)
            if raw is None:
                raw = []  # Go services send null for an empty list
            try:
                page = adapter.validate_python(raw)
            except ValidationError as exc:
                raise ApiError(
                    f"The API's answer to {what} has unexpected '{key}': {_summary(exc)}"
                ) from None
            pagination = self._parse(Pagination, data.get("pagination") or {}, what)
            if not page:
                break
            items.extend(page)
            offset += len(page)
            if pagination.limit is not None and 0 < pagination.limit < limit:
                limit = pagination.limit
            if pagination.total is not None:
                if offset >= pagination.total:
                    break
            elif len(page) < limit:
                break  # no total: a short page is the last one
        else:
            # Only reachable if the API ignores offset and never reports a total.
            raise ApiError(f"GET {path} did not end after {_MAX_PAGES} pages; giving up.")
        return dedupe_by_id(items, key=lambda item: item.id)  # type: ignore[attr-defined]

    # ----------------------------------------------------------------------------- the API

    def list_aois(
        self,
        *,
        name: str | None = None,
        aoi_id: str | None = None,
        project_ids: Sequence[str] | None = None,
    ) -> list[Aoi]:
        """Every AOI the key can see, optionally filtered by the API on name, id or projects.

        ``project_ids``: AOIs of any of these projects (sent comma separated, as the API takes
        them).
        """
        projects = ",".join(project_ids) if project_ids is not None else None
        return self._paginate(
            "/v0/aois",
            "aois",
            Aoi,
            {"aoi_name": name, "aoi_id": aoi_id, "project_ids": projects},
        )

    def get_aoi(self, aoi_id: str) -> Aoi:
        """One AOI by id (``NotFoundError`` if it does not exist for this key)."""
        path = f"/v0/aoi/{_seg(aoi_id)}"
        return self._parse(Aoi, self._request("GET", path), f"GET {path}")

    def list_indices(self) -> list[Index]:
        """Every index, preset and custom."""
        return self._paginate("/v0/indices", "indices", Index)

    def list_assets(self, aoi_id: str) -> list[Asset]:
        """Every asset of an AOI."""
        return self._paginate(f"/v0/aois/{_seg(aoi_id)}/assets", "assets", Asset)

    def list_visualizations(
        self,
        aoi_id: str,
        *,
        index_id: str | None = None,
        visualization_id: str | None = None,
    ) -> list[Visualization]:
        """Every visualization of an AOI, optionally filtered by index or id."""
        return self._paginate(
            f"/v0/aois/{_seg(aoi_id)}/visualizations",
            "visualization",  # sic: the API names the list in the singular
            Visualization,
            {"index_id": index_id, "visualization_id": visualization_id},
        )

    def create_visualization(
        self,
        aoi_id: str,
        index_id: str,
        *,
        src_asset_ids: Sequence[str] | None = None,
        resolution: float | None = None,
    ) -> VisualizationDetail:
        """Create a visualization; ``ConflictError`` (409) means it already exists.

        A create retried after a lost response also ends in ``ConflictError``: callers look
        the visualization up and adopt it.
        """
        body: dict[str, Any] = {"index_id": index_id}
        if src_asset_ids is not None:
            body["src_asset_ids"] = list(src_asset_ids)
        if resolution is not None:
            body["resolution"] = resolution
        path = f"/v0/aois/{_seg(aoi_id)}/visualizations"
        data = self._request("POST", path, json_body=body)
        return self._parse(VisualizationDetail, data, f"POST {path}")

    def rollback_metadata(
        self,
        aoi_id: str,
        visualization_id: str,
        *,
        index_id: str,
        mode: str,
        dates: Sequence[str],
    ) -> VisualizationDetail:
        """Roll the ``mode`` legend of ``dates`` (ISO) back to the auto-computed one."""
        body = {
            "index_id": index_id,
            "dates": [_iso_to_api_date(d) for d in dates],
            "visualization_mode": mode,
        }
        path = f"/v0/aois/{_seg(aoi_id)}/visualizations/{_seg(visualization_id)}/metadata"
        data = self._request("PATCH", path, json_body=body)
        return self._parse(VisualizationDetail, data, f"PATCH {path}")

    def update_metadata(
        self,
        aoi_id: str,
        visualization_id: str,
        *,
        mode: str,
        legend: Mapping[str, list[dict]],
        dynamic_bins: int | None = None,
    ) -> dict:
        """Replace the ``mode`` legend (a manual edit: what creates drift). Returns the metadata.

        ``legend`` maps a date (ISO ``"2024-05-06"`` or the API's ``"2024_05_06"``) to its
        legend items, sent as given.
        """
        dated = {_iso_to_api_date(day): items for day, items in legend.items()}
        body: dict[str, Any] = {"visualization_mode": mode, "legend": dated}
        if dynamic_bins is not None:
            body["dynamic_bins"] = dynamic_bins
        path = f"/v0/aois/{_seg(aoi_id)}/visualizations/{_seg(visualization_id)}/metadata"
        data = self._request("PUT", path, json_body=body)
        if not isinstance(data, dict):
            raise ApiError(f"The API's answer to PUT {path} is not a JSON object.")
        return data


def _seg(value: str) -> str:
    """Quote an id for use as one path segment (an id must never change the path)."""
    return quote(str(value), safe="")


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _attempts(response: requests.Response) -> int:
    """How many attempts urllib3 made for this response (1 when it was not retried)."""
    retries = getattr(response.raw, "retries", None)
    history = getattr(retries, "history", ()) or ()
    return len(history) + 1


def _redact(text: str) -> str:
    return _redactor.redact(text)


def _redact_obj(value: object) -> object:
    """Redact secrets from every string inside an API ``details`` value."""
    if isinstance(value, str):
        return _redact(value)
    if isinstance(value, list):
        return [_redact_obj(v) for v in value]
    if isinstance(value, dict):
        return {k: _redact_obj(v) for k, v in value.items()}
    return value


def _summary(exc: ValidationError) -> str:
    """The first problems of a pydantic error, without echoing input values."""
    errors = exc.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more
