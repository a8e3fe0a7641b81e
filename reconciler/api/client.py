"""The Pixxel API client: one session, retries, a rate limit, typed answers and typed errors.

Everything reconciler sends to the API goes through ``PixxelClient._request``, the one place
that applies the rate limit, logs the request, and maps every non-2xx answer to an
``ApiError`` subclass by its status class. Retries live below it, in the session's transport
(by default a pooled ``HTTPAdapter`` with ``reconciler.api.retry.ApiRetry``), so a retried request
is still one call here. Tests and embedders can pass their own transport.

Nothing a server sends is trusted: each call has a deadline and a body size bound
(``reconciler.api.bounds``), bodies are checked before use (``reconciler.api.responses``), and
listings are paged at most ``max_pages`` pages.

The API key is a secret. It lives only in the ``Authorization`` header (set by ``_ApiKeyAuth``
on each request) and ``reconciler.redact`` scrubs it from every error message and log record
we control.

A client may be shared by many threads: the session is never mutated after construction, the
connection pool is sized for ``parallelism`` and thread-safe, and the rate limiter is locked.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from http.cookiejar import DefaultCookiePolicy
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from pydantic import ValidationError
from requests.adapters import BaseAdapter

from reconciler import __version__
from reconciler.api.bounds import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_BODY_BYTES,
    BoundedAdapter,
    Call,
    RequestBounds,
    read_body,
)
from reconciler.api.config import check_api_key, normalise_base_url
from reconciler.api.legends import Legend, legends_from_metadata, legends_from_sld_answer
from reconciler.api.listing import Listings, PageMap
from reconciler.api.responses import (
    ListingBudget,
    decode_json,
    try_decode_json,
    validation_summary,
)
from reconciler.api.retry import (
    RETRY_STATUSES,
    ApiRetry,
    RateLimiter,
    describe_error,
    header_fault,
    quiet_urllib3_retry_warnings,
)
from reconciler.api.types import (
    Aoi,
    Asset,
    Index,
    Visualization,
    VisualizationDetail,
    parse,
)
from reconciler.dates import iso_to_api_date
from reconciler.errors import (
    ApiError,
    ApiValidationError,
    ConfigError,
    ConflictError,
    CutShortError,
    ForbiddenError,
    InvalidResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnauthorizedError,
)
from reconciler.redact import REDACTED, install_redaction, redact, redact_bytes, redact_obj
from reconciler.text import shorten

__all__ = ["DEFAULT_MAX_PAGES", "MAX_PAGE_SIZE", "PixxelClient", "dedupe_by_id"]

log = logging.getLogger(__name__)

#: The largest page the API accepts (it clamps larger limits).
MAX_PAGE_SIZE = 100

#: A listing that has not ended after this many pages is an API bug, not data (at 100 a page,
#: 100,000 AOIs, assets or visualizations).
DEFAULT_MAX_PAGES = 1_000

T = TypeVar("T")
M = TypeVar("M")


# --------------------------------------------------------------------------------------------
# The API key in requests
# --------------------------------------------------------------------------------------------


class _ApiKeyAuth(requests.auth.AuthBase):
    """Puts the key in the ``Authorization`` header, and nowhere else (not even its repr)."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._key
        return request

    def __repr__(self) -> str:
        return f"{type(self).__name__}({REDACTED})"


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


def _iso_to_api_date(value: str) -> str:
    """``"2024-05-06"`` → ``"2024_05_06"``, the form the metadata calls take."""
    # Lenient on purpose: callers of update_metadata may already hold the API's spelling.
    try:
        return iso_to_api_date(str(value).strip().replace("_", "-"))
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
    :param timeout: (connect, read) timeouts in seconds for each attempt (read: each socket
        read; the whole call is bounded by ``deadline``).
    :param retries: extra attempts after a 429, 500, 502, 503, 504, dropped connection or
        timeout, for every method (a repeated create answers 409, which callers treat as
        "already present"; the metadata calls are idempotent).
    :param backoff_factor: exponential backoff base in seconds (urllib3's formula, plus up to
        one factor of random jitter).
    :param retry_after_cap: never wait longer than this for a ``Retry-After``.
    :param page_size: items per listing page; the API accepts at most 100.
    :param deadline: seconds one call may take, every attempt, wait and the whole body
        included (see ``reconciler.api.bounds``).
    :param max_body_bytes: the largest answer accepted, after decompression.
    :param max_pages: a listing still going after this many pages is an error.
    :param transport: what sends each request, mounted for ``http://`` and ``https://`` in
        place of the default pooled ``HTTPAdapter`` with ``ApiRetry``. It then owns retries
        and pooling (``retries``, ``backoff_factor``, ``retry_after_cap`` and the pool size
        from ``parallelism`` do not apply; the rate limit, timeouts, the body bound and the
        deadline between reads still do), must be
        safe to share between threads if the client is, and is closed with the client.
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
        transport: BaseAdapter | None = None,
        deadline: float = DEFAULT_DEADLINE,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        self.base_url, loopback = normalise_base_url(base_url)
        if not api_key:
            raise ConfigError("The API key is empty.")
        check_api_key(api_key, "the caller")
        if parallelism < 1:
            raise ConfigError(f"Parallelism must be at least 1, got {parallelism}.")
        if retries < 0:
            raise ConfigError(f"Retries must be 0 or more, got {retries}.")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"Page size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}.")
        if len(timeout) != 2 or not all(t > 0 for t in timeout):
            raise ConfigError(f"Timeouts must be two positive numbers, got {timeout}.")
        if max_pages < 1:
            raise ConfigError(f"The page cap must be at least 1, got {max_pages}.")
        self._bounds = RequestBounds(deadline, max_body_bytes)
        self.max_pages = max_pages

        install_redaction(api_key)
        quiet_urllib3_retry_warnings()
        self.parallelism = parallelism
        self.page_size = page_size
        self._listings = Listings(self._request, page_size=page_size, max_pages=max_pages)
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self._limiter = RateLimiter(max_rps) if max_rps is not None else None
        # A given transport retries on its own terms, so we cannot say how often it tried.
        self._max_attempts = retries + 1 if transport is None else None
        self._backoff = backoff_factor

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
        adapter = transport
        if adapter is None:
            # pool_block: a thread beyond ``parallelism`` waits for a free connection instead
            # of opening one more (and throwing it away after), so the API never sees more
            # than ``parallelism`` connections from us, whoever shares the client.
            adapter = BoundedAdapter(
                pool_connections=1,
                pool_maxsize=parallelism,
                pool_block=True,
                max_retries=self._retry,
            )
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
        # What Session.request would merge into every request, merged once: the API's host
        # never changes, and merging per request (requests checks runtime protocols there)
        # cost a fifth of the client's CPU per request.
        self._send_settings = session.merge_environment_settings(
            self.base_url, {}, True, None, None
        )

    # ----------------------------------------------------------------------------- plumbing

    def __repr__(self) -> str:
        return (
            f"PixxelClient(base_url={self.base_url!r}, parallelism={self.parallelism}, "
            f"max_rps={self._limiter.rate if self._limiter else None})"
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def _counted(self, attempts: int) -> int | None:
        # A given transport retries on its own terms: how often it tried is unknown here.
        return attempts if self._max_attempts is not None else None

    def set_run_deadline(self, at: float | None, reason: str = "") -> None:
        """End every call by ``at`` (``time.monotonic()``), e.g. a run's ``--timeout``.

        Calls in flight are cut when it passes; later ones fail at once. Either way the
        ``DeadlineError`` says ``reason``.
        """
        self._bounds.set_run_deadline(at, reason)

    def __enter__(self) -> PixxelClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _prepare(
        self, method: str, path: str, params: Mapping[str, Any] | None, json_body: Any
    ) -> requests.PreparedRequest:
        """The request as ``Session.prepare_request`` would make it, without merging anew.

        The session's headers, key and (always empty) cookie jar are the same for every
        request, so they go straight into the prepared request.
        """
        session = self._session
        prepared = requests.PreparedRequest()
        prepared.prepare(
            method=method,
            url=self.base_url + path,
            headers=session.headers,
            params={k: v for k, v in (params or {}).items() if v is not None},
            json=json_body,
            auth=session.auth,
            cookies=session.cookies,
        )
        return prepared

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        budget: ListingBudget | None = None,
    ) -> Any:
        """Send one request (urllib3 retries below) and return its decoded JSON body.

        ``budget``, for a listing's pages, counts the body's bytes before it is parsed.

        Every non-2xx status becomes the ``ApiError`` subclass for its class; a 2xx that is
        not JSON we can use becomes an ``InvalidResponseError``; running out of time a
        ``DeadlineError``.
        """
        prepared = self._prepare(method, path, params, json_body)
        shown = prepared.path_url  # what logs and errors show: path and query, no host, no key
        with self._bounds.call(method, shown) as call:
            before = 0  # attempts of earlier sends whose answers were cut short
            while True:
                response = self._send(prepared, call)
                attempts = before + _attempts(response)
                try:
                    body = read_body(response, call, self._bounds.max_body_bytes)
                    break
                except CutShortError as exc:
                    self._after_cut(call, exc, attempts)
                    before = attempts
            elapsed = call.over(self._counted(attempts))
        if budget is not None and 200 <= response.status_code < 300:
            budget.spend(len(body))
        # A server echoing the key (in an id, a name, a message) must not plant it in plans,
        # state or output: it is scrubbed before anything reads the answer.
        body = redact_bytes(body)
        log.debug(
            "%s %s -> %d in %d ms (attempt %d)",
            method,
            shown,
            response.status_code,
            _ms(call.started),
            attempts,
        )
        if not 200 <= response.status_code < 300:
            retry_after = response.headers.get("Retry-After")
            error = self._error(method, shown, response.status_code, body, attempts, elapsed)
            if retry_after and isinstance(error, RateLimitedError | ServerError):
                error = type(error)(
                    f"{error} The API asked to retry after {shorten(retry_after, 40)!r}.",
                    **_fields(error),
                )
            raise error
        if not body.strip():
            return None
        return decode_json(body, f"{method} {shown}", response.status_code)

    def _send(self, prepared: requests.PreparedRequest, call: Call) -> requests.Response:
        """One send of ``prepared`` (urllib3 retries below), its body not read yet.

        ``TransportError`` (or ``DeadlineError``) when no answer came, after the retries.
        """
        method, shown = call.method, call.shown
        if self._limiter is not None:
            self._limiter.acquire()
        try:
            # stream: the body is read by bounds.read_body, in bounded chunks within the
            # deadline.
            return self._session.send(
                prepared, timeout=self.timeout, allow_redirects=False, **self._send_settings
            )
        except requests.RequestException as exc:
            reason = exc.args[0] if exc.args and isinstance(exc.args[0], Exception) else exc
            described = describe_error(reason)
            took = _ms(call.started)
            log.debug("%s %s -> failed in %d ms: %s", method, shown, took, described)
            attempts = self._counted(max(call.failed_attempts, 1))
            if call.expired:
                raise call.deadline_error(attempts) from None
            fault = header_fault(reason)
            what = (
                f"no answer from {self.base_url}: {described}"
                if fault is None
                else f"{self.base_url} answered with a head too large to read: {fault}"
            )
            raise TransportError(
                f"{method} {shown} failed {call.over(attempts)}: {what}.",
                method=method,
                url=self.base_url + shown,
            ) from None

    def _after_cut(self, call: Call, exc: CutShortError, attempts: int) -> None:
        """An answer whose body was cut short after ``attempts`` attempts of the call: wait to
        send a read again, or raise.

        Reads (GET) are sent again like after a dropped connection, while the call has attempts
        (``retries``) and time left; anything else is not, since it may have been carried out
        (a create is looked up by its caller instead). With a given transport, which owns
        retries, nothing is sent again.
        """
        call.failed_attempts += 1
        budget = self._max_attempts
        if call.method != "GET" or budget is None:
            raise exc
        url = self.base_url + call.shown
        if attempts >= budget:
            raise CutShortError(
                f"{exc} Gave up {call.over(attempts)}.", method=call.method, url=url
            ) from None
        wait = self._backoff * 2 ** (attempts - 1) + random.uniform(0, self._backoff)
        if wait >= call.remaining():
            raise CutShortError(
                f"{exc} No time was left for another attempt ({call.over(attempts)}).",
                method=call.method,
                url=url,
            ) from None
        log.info(
            "%s %s -> answer cut short; retry %d of %d",
            call.method,
            call.shown,
            attempts,
            budget - 1,
        )
        time.sleep(wait)

    def _error(
        self, method: str, shown: str, status: int, body: bytes, attempts: int, elapsed: str
    ) -> ApiError:
        """Build the typed error for a non-2xx answer, keeping the API's code and message."""
        code: str | None = None
        api_message: str | None = None
        details: object = None
        payload = try_decode_json(body) if body.strip() else None
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            code = shorten(str(error["code"]), 80) if error.get("code") is not None else None
            api_message = shorten(str(error["message"]), 500) if error.get("message") else None
            details = redact_obj(error.get("details"))
        elif body.strip():
            api_message = shorten(redact(body.decode("utf-8", "replace")))

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
                f"still rate limited {elapsed}; lower --max-rps or --parallelism",
            )
        elif 400 <= status < 500:
            cls, hint = ApiValidationError, ""
        elif status >= 500:
            cls, hint = ServerError, f"the API kept failing; gave up {elapsed}"
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
        """Validate an API answer; a shape we do not understand is an ``InvalidResponseError``."""
        try:
            return parse(model, data)
        except ValidationError as exc:
            raise InvalidResponseError(
                f"The API's answer to {what} is not what we expect: {validation_summary(exc)}"
            ) from None

    # ----------------------------------------------------------------------------- the API

    def list_aois(
        self,
        *,
        name: str | None = None,
        aoi_id: str | None = None,
        project_ids: Sequence[str] | None = None,
        pages: PageMap | None = None,
    ) -> list[Aoi]:
        """Every AOI the key can see, optionally filtered by the API on name, id or projects.

        ``project_ids``: AOIs of any of these projects (sent comma separated, as the API takes
        them). ``pages``: reads the pages after the first concurrently and returns them in
        offset order, as a thread pool's ``map`` does; without it a thousand AOIs are ten
        pages read one after the other. Its threads must not include the calling thread.
        """
        projects = ",".join(project_ids) if project_ids is not None else None
        return self._listings.read(
            "/v0/aois",
            "aois",
            Aoi,
            {"aoi_name": name, "aoi_id": aoi_id, "project_ids": projects},
            pages=pages,
        )

    def get_aoi(self, aoi_id: str) -> Aoi:
        """One AOI by id (``NotFoundError`` if it does not exist for this key)."""
        path = f"/v0/aoi/{_seg(aoi_id)}"
        return self._parse(Aoi, self._request("GET", path), f"GET {path}")

    def list_indices(self) -> list[Index]:
        """Every index, preset and custom."""
        return self._listings.read("/v0/indices", "indices", Index)

    def list_assets(self, aoi_id: str) -> list[Asset]:
        """Every asset of an AOI."""
        return self._listings.read(f"/v0/aois/{_seg(aoi_id)}/assets", "assets", Asset)

    def list_visualizations(
        self,
        aoi_id: str,
        *,
        index_id: str | None = None,
        visualization_id: str | None = None,
    ) -> list[Visualization]:
        """Every visualization of an AOI, optionally filtered by index or id."""
        return self._listings.read(
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
        legend: Mapping[str, Sequence[Mapping[str, Any]] | None],
        dynamic_bins: int | None = None,
    ) -> dict[str, Any]:
        """Replace the ``mode`` legend (a manual edit: what creates drift). Returns the metadata.

        ``legend`` maps a date (ISO ``"2024-05-06"`` or the API's ``"2024_05_06"``) to its
        legend items, sent as given (a None value as null: in dynamic mode, auto-computed). A
        date whose items are None (the auto-computed bins) is sent as null; the contract allows
        that in dynamic mode only, so in any other it is refused here, never sent.
        ``set_legend`` is the same call with the answer read as legends.
        """
        path = f"/v0/aois/{_seg(aoi_id)}/visualizations/{_seg(visualization_id)}/metadata"
        return self._put_metadata(path, mode, legend, dynamic_bins)

    def set_legend(
        self,
        aoi_id: str,
        visualization_id: str,
        *,
        mode: str,
        legend: Mapping[str, Sequence[Mapping[str, Any]] | None],
        dynamic_bins: int | None = None,
    ) -> dict[str, dict[str, Legend]]:
        """``update_metadata``, answering the legends as they are after it: mode -> ISO date ->
        ``Legend`` (every date of the visualization, every mode its index has).

        The answer is what the API made of the items (auto-computed values filled in), so its
        fingerprints are the ones ``read_sld`` will find for the same legends.
        """
        path = f"/v0/aois/{_seg(aoi_id)}/visualizations/{_seg(visualization_id)}/metadata"
        data = self._put_metadata(path, mode, legend, dynamic_bins)
        return legends_from_metadata(data, what=f"PUT {path}")

    def _put_metadata(
        self,
        path: str,
        mode: str,
        legend: Mapping[str, Sequence[Mapping[str, Any]] | None],
        dynamic_bins: int | None,
    ) -> dict[str, Any]:
        dated: dict[str, list[dict[str, Any]] | None] = {}
        for day, items in legend.items():
            if items is None and mode != "dynamic":
                raise ApiValidationError(
                    f"The {mode} legend of {shorten(str(day), 40)} is null (auto-computed), "
                    "which the API allows in dynamic mode only; give its items."
                )
            dated[_iso_to_api_date(day)] = None if items is None else [dict(i) for i in items]
        body: dict[str, Any] = {"visualization_mode": mode, "legend": dated}
        if dynamic_bins is not None:
            body["dynamic_bins"] = dynamic_bins
        data = self._request("PUT", path, json_body=body)
        if not isinstance(data, dict):
            raise InvalidResponseError(f"The API's answer to PUT {path} is not a JSON object.")
        return data

    def read_sld(
        self,
        aoi_id: str,
        visualization_id: str,
        *,
        modes: Sequence[str],
        dates: Sequence[str],
    ) -> dict[str, dict[str, Legend]]:
        """The legends of ``modes`` x ``dates`` (ISO) as they are now: mode -> ISO date ->
        ``Legend``, read from the SLD endpoint, the one read of a legend that changes nothing.

        An answer without one of the requested modes or dates, or whose document is not a
        legend we can read, is an ``InvalidResponseError`` naming the call.
        """
        wanted_modes = list(dict.fromkeys(modes))
        keys = list(dict.fromkeys(_iso_to_api_date(day) for day in dates))
        body = {"dates": keys, "visualization_modes": wanted_modes}
        path = f"/v0/aois/{_seg(aoi_id)}/visualizations/{_seg(visualization_id)}/sld"
        data = self._request("POST", path, json_body=body)
        return legends_from_sld_answer(data, modes=wanted_modes, dates=keys, what=f"POST {path}")

    def create_index(
        self,
        *,
        name: str,
        description: str,
        expression: str,
        expression_type: str,
        rescale: tuple[int, int] | Sequence[int],
        colormap: str,
        satellite_id: str,
    ) -> Index:
        """Create a custom index; ``ConflictError`` (409) means an index of that name exists.

        There is no update or delete: callers adopt an index answered 409 by its name (a
        create retried after a lost response ends the same way).
        """
        body = {
            "name": name,
            "description": description,
            "expression": expression,
            "expression_type": expression_type,
            "rescale": list(rescale),
            "colormap": colormap,
            "satellite_id": satellite_id,
        }
        data = self._request("POST", "/v0/indices", json_body=body)
        return self._parse(Index, data, "POST /v0/indices")


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


def _fields(error: ApiError) -> dict[str, Any]:
    """An ``ApiError``'s keyword arguments, to rebuild it with another message."""
    return {
        "method": error.method,
        "url": error.url,
        "status": error.status,
        "code": error.code,
        "api_message": error.api_message,
        "details": error.details,
    }
