"""How the client turns each answer it cannot use into a typed error, one rule per test.

Answers come from ``CannedTransport``, a transport handed to ``PixxelClient(transport=...)``
that returns canned ``requests.Response`` objects: no server, no sockets. These are answers
the emulator, being honest, never gives; behaviour across requests (paging, retries, faults)
is tested against the emulator in test_client.py.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import ProtocolError

from reconciler.api.client import PixxelClient
from reconciler.errors import (
    ApiError,
    ApiValidationError,
    ConflictError,
    ForbiddenError,
    InvalidResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnauthorizedError,
)

URL = "https://api.test"
KEY = "client-errors-key-5e1d"
AOI = "aoi-1"
REQUEST_LINE = f"GET /v0/aoi/{AOI}"

Answer = tuple[int, bytes, Mapping[str, str]] | requests.RequestException


class CannedTransport(BaseAdapter):
    """Answers each request with the next canned answer (the last one repeats).

    An answer is ``(status, body, headers)``, or an exception to raise as a transport failure
    would. Every request sent is kept in ``sent``.
    """

    def __init__(self, *answers: Answer) -> None:
        super().__init__()
        self.answers = list(answers)
        self.sent: list[requests.PreparedRequest] = []
        self.closed = False

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        self.sent.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, requests.RequestException):
            raise answer
        status, body, headers = answer
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(headers)
        response.raw = io.BytesIO(body)
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        self.closed = True


def reply(status: int, body: object = b"", **headers: str) -> Answer:
    """A canned answer; a body that is not bytes or str is sent as JSON."""
    if isinstance(body, str):
        data = body.encode()
    elif isinstance(body, bytes):
        data = body
    else:
        data = json.dumps(body).encode()
    return status, data, headers


def api_error(code: str, message: str, details: object = None) -> dict[str, object]:
    """An error body as the API contract shapes it."""
    return {"error": {"code": code, "message": message, "details": details}}


def get_aoi_error(*answers: Answer) -> ApiError:
    """The error ``get_aoi`` raises when the API gives these answers."""
    client = PixxelClient(URL, KEY, transport=CannedTransport(*answers))
    with client, pytest.raises(ApiError) as info:
        client.get_aoi(AOI)
    return info.value


# ------------------------------------------------------------------------------ status classes


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ApiValidationError),
        (401, UnauthorizedError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, ApiValidationError),
        (418, ApiValidationError),
        (429, RateLimitedError),
        (500, ServerError),
        (503, ServerError),
        (501, ServerError),
        (302, ApiError),
    ],
)
def test_each_status_becomes_the_error_of_its_class(status: int, error: type[ApiError]) -> None:
    err = get_aoi_error(reply(status, api_error("nope", "not for you")))
    assert type(err) is error
    assert err.status == status
    assert (err.method, err.url) == ("GET", f"{URL}/v0/aoi/{AOI}")


def test_401_says_where_the_key_comes_from() -> None:
    text = str(get_aoi_error(reply(401, api_error("unauthorized", "bad key"))))
    assert "PIXXEL_API_KEY" in text and "--api-key-file" in text


def test_403_says_the_key_lacks_permission() -> None:
    assert "may not do this" in str(get_aoi_error(reply(403)))


def test_429_after_retries_suggests_slowing_down() -> None:
    text = str(get_aoi_error(reply(429, api_error("rate_limited", "slow down"))))
    assert "still rate limited" in text and "--max-rps" in text and "--parallelism" in text


def test_5xx_after_retries_says_the_api_kept_failing() -> None:
    # A given transport retries on its own terms: the client says how long, not how often.
    assert "(the API kept failing; gave up after 0.0 s)" in str(get_aoi_error(reply(503)))


def test_a_redirect_is_not_followed() -> None:
    transport = CannedTransport(reply(302, Location="https://elsewhere.test/v0/aoi/x"))
    with PixxelClient(URL, KEY, transport=transport) as client, pytest.raises(ApiError) as info:
        client.get_aoi(AOI)
    assert len(transport.sent) == 1  # the key never travels to the other host
    assert "unexpected answer" in str(info.value)


# ------------------------------------------------------------------------------ error bodies


def test_the_apis_code_message_and_details_are_kept() -> None:
    details = {"field": "index_id", "reasons": ["unknown"]}
    err = get_aoi_error(reply(422, api_error("invalid", "index_id is unknown", details)))
    assert (err.code, err.api_message, err.details) == ("invalid", "index_id is unknown", details)


def test_the_message_reads_request_status_code_and_api_message() -> None:
    err = get_aoi_error(reply(404, api_error("not_found", "no such AOI")))
    assert str(err) == f"{REQUEST_LINE} failed: 404 not_found: no such AOI"


def test_an_empty_error_body_leaves_only_the_status() -> None:
    err = get_aoi_error(reply(404))
    assert str(err) == f"{REQUEST_LINE} failed: 404"
    assert (err.code, err.api_message, err.details) == (None, None, None)


def test_a_non_json_error_body_is_quoted_on_one_short_line() -> None:
    err = get_aoi_error(reply(400, "Bad gateway said:\n" + "x" * 5000))
    assert err.code is None
    assert err.api_message is not None and err.api_message.startswith("Bad gateway said: xxx")
    assert "\n" not in str(err) and len(str(err)) < 400


def test_json_without_the_error_object_is_quoted_as_text() -> None:
    err = get_aoi_error(reply(400, {"error": "boom"}))
    assert err.code is None
    assert err.api_message == '{"error": "boom"}'


def test_the_key_echoed_in_an_error_body_is_redacted() -> None:
    body = api_error("unauthorized", f"key {KEY} is revoked", {"key": KEY, "seen": [KEY]})
    err = get_aoi_error(reply(401, body))
    assert err.api_message == "key *** is revoked"
    assert err.details == {"key": "***", "seen": ["***"]}
    assert KEY not in str(err) and KEY not in repr(vars(err))


def test_the_key_echoed_in_a_non_json_error_body_is_redacted() -> None:
    err = get_aoi_error(reply(500, f"<pre>Authorization: {KEY}</pre>"))
    assert err.api_message == "<pre>Authorization: ***</pre>"
    assert KEY not in str(err)


# ------------------------------------------------------------------------------ 2xx we cannot use


def test_a_non_json_2xx_is_an_invalid_response_quoting_the_body() -> None:
    err = get_aoi_error(reply(200, f"<html>maintenance, key {KEY}</html>"))
    assert type(err) is InvalidResponseError and err.status == 200
    assert "answered 200 but not with JSON" in str(err)
    assert "<html>maintenance, key ***</html>" in str(err)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"indices": [{"name": 1}]}', "unexpected 'indices'"),
        ('{"indices": [], "pagination": {"total": "many"}}', "'pagination.total' is a string"),
        ("[]", "not a JSON object"),
        ('{"indice": []}', "no 'indices' list (it has 'indice': misspelt?)"),
        ('{"pagination": {"total": 3}}', "Refusing to read it as an empty listing"),
        ('{"indices": {}}', "'indices' is an object, not a list"),
        ('{"indices": [], "pagination": []}', "'pagination' is a list, not an object"),
        ('{"indices": [], "pagination": {"total": -1}}', "not a whole number >= 0"),
        ('{"indices": [], "pagination": {"limit": true}}', "'pagination.limit' is a boolean"),
        ('{"indices": [], "pagination": {"offset": 5}}', "ignores the offset"),
        (
            '{"indices": [{"id": "a", "name": "A", "type": "preset"}], "pagination": {"total": 0}}',
            "'pagination.total' is 0, but this page alone reaches item 1",
        ),
    ],
)
def test_a_listing_of_the_wrong_shape_is_an_invalid_response(body: str, expected: str) -> None:
    transport = CannedTransport(reply(200, body))
    with PixxelClient(URL, KEY, transport=transport) as client, pytest.raises(ApiError) as info:
        client.list_indices()
    assert type(info.value) is InvalidResponseError
    assert expected in str(info.value) and "GET /v0/indices" in str(info.value)


# ------------------------------------------------------------------------------ the transport


def test_a_transport_failure_is_a_transport_error_without_a_status() -> None:
    dropped = requests.ConnectionError(ProtocolError("Connection aborted."))
    err = get_aoi_error(dropped)
    assert type(err) is TransportError and err.status is None
    assert str(err) == (
        f"{REQUEST_LINE} failed after 0.0 s: no answer from {URL}: "
        "connection dropped before an answer arrived."
    )


def test_requests_carry_the_key_only_in_the_authorization_header() -> None:
    transport = CannedTransport(reply(200, {"id": AOI, "name": "A"}))
    with PixxelClient(URL, KEY, transport=transport) as client:
        client.get_aoi(AOI)
    [sent] = transport.sent
    assert sent.headers["Authorization"] == KEY
    assert sent.url == f"{URL}/v0/aoi/{AOI}"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["User-Agent"].startswith("reconciler/")


def test_the_transport_is_closed_with_the_client() -> None:
    transport = CannedTransport(reply(200, {}))
    with PixxelClient(URL, KEY, transport=transport):
        assert not transport.closed
    assert transport.closed
