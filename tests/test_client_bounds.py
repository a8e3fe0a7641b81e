"""The client against a misbehaving server: every case ends in time, in bounded memory, typed.

Each test is one thing a broken or hostile peer does (``tests/hostile.py`` serves it over a
real socket): trickling, never answering, huge or compressed bodies, deep nesting, listings of
the wrong shape, endless pagination, both ``Retry-After`` forms, TLS that cannot be trusted.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import tracemalloc
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Unpack

import pytest
import trustme

from reconciler.api import bounds
from reconciler.api.client import PixxelClient
from reconciler.errors import (
    ApiError,
    ApiValidationError,
    CutShortError,
    DeadlineError,
    InvalidResponseError,
    RateLimitedError,
    ReconcilerError,
    TransportError,
)
from tests.hostile import (
    HostileServer,
    Reply,
    chunked,
    gzip_bomb,
    http_date,
    status_and_headers,
    trickle,
)
from tests.planning import ClientOptions

KEY = "bounds-test-key-7c2a"
INDEX = {"id": "i-1", "name": "NDVI", "type": "preset"}
LISTING = {"indices": [INDEX], "pagination": {"limit": 100, "offset": 0, "total": 1}}
MB = 1024 * 1024


def client(hostile: HostileServer, **options: Unpack[ClientOptions]) -> PixxelClient:
    bounded: ClientOptions = {
        "timeout": (1.0, 2.0),
        "deadline": 1.5,
        "backoff_factor": 0.01,
        "retry_after_cap": 5.0,
    }
    return PixxelClient(hostile.url, KEY, **(bounded | options))


def outcome(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result or the ReconcilerError raised, seconds taken, peak MB allocated)."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = call()
    except ReconcilerError as exc:
        result = exc
    finally:
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1] / MB
        tracemalloc.stop()
    return result, elapsed, peak


# --- time ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        Reply([status_and_headers(200, [("Content-Length", "200")]), *trickle(b"x", 0.2, 200)]),
        Reply([b"HTTP/1.1 200 OK\r\n", *trickle(b"X-Slow: yes\r\n", 0.2, 200)]),
        Reply([60.0]),
    ],
    ids=["trickling body", "trickling headers", "never answers"],
)
def test_a_call_ends_at_its_deadline_whatever_the_server_does(
    hostile: HostileServer, reply: Reply
) -> None:
    hostile.replies = [reply]
    with client(hostile, deadline=0.8) as api:
        error, elapsed, _ = outcome(api.list_indices)
    assert isinstance(error, DeadlineError)
    assert 0.75 < elapsed < 1.6
    assert "no complete answer within its 0.8 s deadline" in str(error)
    assert str(error).startswith("GET /v0/indices?offset=0&limit=100 failed after ")


def test_the_run_deadline_cuts_calls_in_flight_and_refuses_new_ones(
    hostile: HostileServer,
) -> None:
    hostile.replies = [Reply([60.0])]
    with client(hostile, deadline=30.0) as api:
        api.set_run_deadline(time.monotonic() + 0.5, "the run's --timeout (0.5 s) is up")
        error, elapsed, _ = outcome(api.list_indices)
        assert isinstance(error, DeadlineError) and elapsed < 1.5
        assert "the run's --timeout (0.5 s) is up" in str(error)
        later, elapsed, _ = outcome(api.list_indices)
    assert str(later) == (
        "GET /v0/indices?offset=0&limit=100 not sent: the run's --timeout (0.5 s) is up."
    )
    assert elapsed < 0.1


def test_a_run_deadline_set_during_a_call_cuts_that_call_too(hostile: HostileServer) -> None:
    # A second Ctrl-C sets the run's deadline to now while requests are in flight.
    hostile.replies = [Reply([60.0])]
    with client(hostile, deadline=30.0) as api:
        cut = threading.Timer(0.3, api.set_run_deadline, (time.monotonic(), "interrupted again"))
        cut.start()
        error, elapsed, _ = outcome(api.list_indices)
        cut.join()
    assert isinstance(error, DeadlineError) and elapsed < 2, elapsed
    assert "interrupted again" in str(error)


# --- size and shape ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            Reply([status_and_headers(200, [("Content-Length", str(300 * MB))]), b"x" * 1000]),
            "larger than the 16,777,216-byte bound (314,572,800 bytes)",
        ),
        (Reply([status_and_headers(200, []), b" " * (40 * MB)]), "larger than the 16,777,216"),
        (
            Reply.raw(200, gzip_bomb(256 * MB), [("Content-Encoding", "gzip")]),
            "larger than the 16,777,216",
        ),
        (Reply.raw(200, b"[" * 100_000 + b"]" * 100_000), "JSON nested too deeply"),
        (Reply.raw(200, b"[" + b"[]," * (2 * MB) + b"[]]"), "more than 200,000 JSON values"),
        (Reply.raw(200, b'{"indices": ["\xff"]}'), "a body that is not UTF-8 text"),
        (Reply.raw(200, b"<html>busy</html>"), "answered 200 but not with JSON"),
        (Reply.raw(200, b"{" * 5000), "answered 200 but not with JSON"),
        (
            Reply.raw(200, b"\x1f\x8b garbage", [("Content-Encoding", "gzip")]),
            "could not be decompressed",
        ),
        (
            Reply([status_and_headers(200, [("Content-Length", "1000")]), b'{"indi']),
            "the connection broke after 6 bytes of the body",
        ),
        (
            Reply([status_and_headers(200, [("Transfer-Encoding", "chunked")]), b"zz\r\nab"]),
            "the connection broke",
        ),
        (Reply.raw(200, b'{"indices": [' + b"1," * 1000 + b"1]}"), "answer has 1,001"),
        (Reply.raw(200, b'{"indices": [NaN]}'), "NaN is not a JSON value"),
    ],
    ids=[
        "declared 300 MB",
        "40 MB undeclared",
        "gzip bomb",
        "deep nesting",
        "dense JSON",
        "not UTF-8",
        "HTML",
        "unterminated",
        "bad gzip",
        "cut short",
        "bad chunks",
        "many items",
        "NaN",
    ],
)
def test_answers_we_cannot_hold_are_typed_errors_in_bounded_memory(
    hostile: HostileServer, reply: Reply, expected: str
) -> None:
    hostile.replies = [reply]
    with client(hostile, deadline=10.0) as api:
        error, elapsed, peak = outcome(api.list_indices)
    assert isinstance(error, InvalidResponseError | TransportError), error
    assert expected in str(error)
    assert elapsed < 5 and peak < 200
    # None of these heal, but a body that stopped coming may come whole next time.
    assert (len(hostile.requests) > 1) == isinstance(error, CutShortError)


def small_values(size: int) -> bytes:
    """A JSON body of about ``size`` bytes: one short string per 17 bytes (under 1M in 15 MB)."""
    return b'{"indices": [' + b'"abcdefghijklmn",' * (size // 17) + b"1]}"


def test_a_body_of_many_small_values_is_refused_before_it_costs_much() -> None:
    from reconciler.api.responses import decode_json

    body = small_values(15 * MB)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidResponseError, match="JSON values"):
            decode_json(body, "GET /v0/indices", 200)
        # The largest body the value bound lets through, parsed: well under the 200 MB line.
        within = b"[" + b"1," * 199_000 + b"1]"
        assert len(decode_json(within, "GET /v0/indices", 200)) == 199_001
        peak = tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()
    assert peak < 60


def test_four_large_answers_at_once_stay_under_the_memory_line(hostile: HostileServer) -> None:
    import concurrent.futures

    # Just under the value bound and the size bound: each is legal, four at once must not add up.
    item = b'{"id":"i-%02d","name":"' + b"n" * 1400 + b'","type":"preset"}'
    items = b",".join(item % n for n in range(100))  # a hundred ids: a listing that adds up
    body = b'{"indices": [' + items + b"], " + b'"pad": "' + b"x" * (15 * MB)
    body += b'", "pagination": {"total": 100, "offset": 0, "limit": 100}}'
    hostile.replies = lambda head: Reply.raw(200, body)
    with client(hostile, deadline=20.0, parallelism=4) as api:
        tracemalloc.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                results = list(pool.map(lambda _: api.list_indices(), range(4)))
            peak = tracemalloc.get_traced_memory()[1] / MB
        finally:
            tracemalloc.stop()
    assert [len(r) for r in results] == [100] * 4
    assert peak < 200


@pytest.mark.slow
def test_a_listing_stops_at_its_byte_budget(hostile: HostileServer) -> None:
    counter = iter(range(10**9))
    pad = "p" * (500 * 1024)

    def page(head: bytes) -> Reply:
        item = {**INDEX, "id": f"i-{next(counter)}", "name": pad}
        return Reply.json(200, {"indices": [item]})  # legal 500 KB pages that never end

    hostile.replies = page
    with client(hostile, page_size=1, max_pages=1000, deadline=20.0) as api:
        error, _, peak = outcome(api.list_indices)
    assert isinstance(error, InvalidResponseError)
    assert str(error).startswith("GET /v0/indices: the listing's 132 pages add up to ")
    assert "more than the 67,108,864-byte bound for one listing" in str(error)
    assert peak < 200


def test_a_gzipped_answer_within_the_bound_is_read(hostile: HostileServer) -> None:
    body = Reply.json(200, LISTING).steps[1]
    assert isinstance(body, bytes)
    import gzip

    hostile.replies = [Reply.raw(200, gzip.compress(body), [("Content-Encoding", "gzip")])]
    with client(hostile) as api:
        assert [i.name for i in api.list_indices()] == ["NDVI"]


def test_a_chunked_answer_is_read(hostile: HostileServer) -> None:
    body = Reply.json(200, LISTING).steps[1]
    assert isinstance(body, bytes)
    head = status_and_headers(200, [("Transfer-Encoding", "chunked")])
    hostile.replies = [Reply([head, chunked(body, 7)])]
    with client(hostile) as api:
        assert [i.name for i in api.list_indices()] == ["NDVI"]


def test_a_listing_without_its_list_is_never_an_empty_listing(hostile: HostileServer) -> None:
    hostile.replies = [Reply.json(200, {"visualizations": [], "pagination": {"total": 0}})]
    with client(hostile) as api, pytest.raises(InvalidResponseError) as caught:
        api.list_visualizations("aoi-1")
    assert str(caught.value) == (
        "GET /v0/aois/aoi-1/visualizations (offset 0): the answer has no 'visualization' list "
        "(it has 'visualizations': misspelt?); it has 'pagination', 'visualizations'. Refusing "
        "to read it as an empty listing."
    )


def test_endless_pagination_stops_at_the_page_cap(hostile: HostileServer) -> None:
    counter = iter(range(10**9))

    def page(head: bytes) -> Reply:
        item = {**INDEX, "id": f"i-{next(counter)}"}
        return Reply.json(200, {"indices": [item]})  # full pages, no total: never ends

    hostile.replies = page
    with client(hostile, page_size=1, max_pages=30) as api:
        error, _, _ = outcome(api.list_indices)
    assert isinstance(error, InvalidResponseError)
    assert "GET /v0/indices did not end after 30 pages (30 items); giving up" in str(error)
    assert len(hostile.requests) == 30


def test_a_total_beyond_the_page_cap_is_refused_at_once(hostile: HostileServer) -> None:
    hostile.replies = [Reply.json(200, {"indices": [INDEX], "pagination": {"total": 10**12}})]
    with client(hostile, max_pages=30) as api, pytest.raises(InvalidResponseError) as caught:
        api.list_indices()
    assert "reports 1,000,000,000,000 items" in str(caught.value)
    assert len(hostile.requests) == 1


# --- retries -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "retry_after",
    [lambda: "1", lambda: http_date(2)],
    ids=["seconds", "HTTP date"],
)
def test_both_retry_after_forms_are_honoured(
    hostile: HostileServer, retry_after: Callable[[], str]
) -> None:
    hostile.replies = [
        Reply.json(429, {}, [("Retry-After", retry_after())]),
        Reply.json(200, LISTING),
    ]
    with client(hostile, deadline=10.0) as api:
        result, elapsed, _ = outcome(api.list_indices)
    assert [i.name for i in result] == ["NDVI"]
    assert 0.9 < elapsed < 3.0  # an HTTP date has whole seconds: 1-2 s from now


def test_a_malformed_retry_after_falls_back_to_backoff(hostile: HostileServer) -> None:
    hostile.replies = [Reply.json(503, {}, [("Retry-After", "soon-ish")]), Reply.json(200, LISTING)]
    with client(hostile) as api:
        assert [i.name for i in api.list_indices()] == ["NDVI"]


def test_a_retry_after_beyond_the_deadline_stops_retrying_and_says_so(
    hostile: HostileServer,
) -> None:
    hostile.replies = [Reply.json(429, {}, [("Retry-After", "60")])]
    with client(hostile, retry_after_cap=120.0) as api:
        error, elapsed, _ = outcome(api.list_indices)
    assert isinstance(error, RateLimitedError) and elapsed < 1
    assert "after 1 attempt in" in str(error)
    assert "The API asked to retry after '60'." in str(error)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_4xx_that_cannot_heal_is_not_retried(hostile: HostileServer, status: int) -> None:
    hostile.replies = [Reply.json(status, {"error": {"code": "no", "message": "no"}})]
    with client(hostile) as api, pytest.raises(ApiError):
        api.list_indices()
    assert len(hostile.requests) == 1


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_statuses_that_may_heal_are_retried(hostile: HostileServer, status: int) -> None:
    hostile.replies = [Reply.json(status, {}), Reply.json(200, LISTING)]
    with client(hostile) as api:
        assert [i.name for i in api.list_indices()] == ["NDVI"]
    assert len(hostile.requests) == 2


def test_the_final_error_says_how_many_attempts_over_how_long(hostile: HostileServer) -> None:
    hostile.replies = [Reply.json(503, {"error": {"code": "down", "message": "down"}})]
    with client(hostile, retries=3, deadline=10.0) as api, pytest.raises(ApiError) as caught:
        api.list_indices()
    assert "(the API kept failing; gave up after 4 attempts over " in str(caught.value)
    assert len(hostile.requests) == 4

    hostile.replies = [Reply([b""])]  # connection closed without an answer, every time
    with client(hostile, retries=2, deadline=10.0) as api, pytest.raises(TransportError) as dropped:
        api.list_indices()
    assert " failed after 3 attempts over " in str(dropped.value)


def test_tls_that_fails_verification_is_not_retried() -> None:
    ca = trustme.CA()  # a CA the client does not trust
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with HostileServer(tls=context) as hostile:
        hostile.replies = [Reply.json(200, LISTING)]
        with client(hostile, retries=5, backoff_factor=1.0) as api:
            error, elapsed, _ = outcome(api.list_indices)
        assert hostile.connections == 1
    assert isinstance(error, TransportError) and elapsed < 1
    assert "TLS verification failed (not retried: it cannot heal)" in str(error)
    assert "CERTIFICATE_VERIFY_FAILED" in str(error)


def test_a_4xx_error_body_is_bounded_too(hostile: HostileServer) -> None:
    hostile.replies = [Reply.raw(400, b'{"error": {"message": "' + b"x" * (40 * MB) + b'"}}')]
    with client(hostile, deadline=10.0) as api:
        error, _, peak = outcome(api.list_indices)
    assert isinstance(error, InvalidResponseError) and "larger than" in str(error)
    assert not isinstance(error, ApiValidationError) and peak < 200


def test_a_call_armed_after_a_longer_one_is_still_cut_at_its_own_deadline() -> None:
    # The watchdog is woken only for a deadline sooner than the one it waits for: one that
    # comes later must not make it miss one that comes sooner.
    watchdog = bounds._Watchdog()
    long_side, long_peer = socket.socketpair()
    short_side, short_peer = socket.socketpair()
    with long_side, long_peer, short_side, short_peer:
        now = time.monotonic()
        long_call = bounds.Call("GET", "/long", now, now + 30)
        watchdog.arm(SimpleNamespace(sock=long_side), long_call)  # type: ignore[arg-type]
        time.sleep(0.2)  # the watchdog now waits for the long one
        now = time.monotonic()
        short_call = bounds.Call("GET", "/short", now, now + 0.2)
        watchdog.arm(SimpleNamespace(sock=short_side), short_call)  # type: ignore[arg-type]
        short_side.settimeout(5)
        assert short_side.recv(1) == b""  # shut down by the watchdog, well before 5 s
        assert short_call.expired and not long_call.expired
        watchdog.disarm(long_call)
