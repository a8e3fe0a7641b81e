"""The rate limiter's schedule and the retry policy's share of it, on an injected clock."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from reconciler.api.retry import ApiRetry, RateLimiter, describe_error
from reconciler.errors import ConfigError


def test_rate_limiter_spaces_calls_across_threads() -> None:
    now = [100.0]
    waits: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            waits.append(seconds)

    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    with ThreadPoolExecutor(8) as pool:
        got = sorted(pool.map(lambda _: limiter.acquire(), range(8)))
    # Eight callers at the same instant get eight distinct slots, 0.25 s apart.
    assert got == pytest.approx([i * 0.25 for i in range(8)])
    assert sorted(waits) == pytest.approx([i * 0.25 for i in range(1, 8)])
    now[0] += 60.0  # after a quiet minute there is no debt and no burst credit
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(0.25)
    with pytest.raises(ConfigError):
        RateLimiter(0)


def test_retries_count_against_the_rate_limit() -> None:
    waits: list[float] = []
    limiter = RateLimiter(2.0, clock=lambda: 0.0, sleep=waits.append)
    retry = ApiRetry(total=3, limiter=limiter).new()  # the copy urllib3 makes keeps it
    retry.sleep()
    retry.sleep()
    assert waits == [0.5]  # the second retry waited for its slot


def test_transport_failures_are_described_by_their_cause() -> None:
    cause = NewConnectionError(None, "Errno 111")  # type: ignore[arg-type]
    refused = MaxRetryError(None, "/v0/aois", reason=cause)  # type: ignore[arg-type]
    assert describe_error(refused) == "cannot connect (connection refused or host unreachable)"
    assert describe_error(ProtocolError("reset")) == "connection dropped before an answer arrived"
    assert describe_error(None) == "unknown error"


def test_an_unknown_failure_is_named_and_quoted_on_one_short_line() -> None:
    described = describe_error(OSError("first line\nsecond " + "x" * 500))
    assert described.startswith("OSError: first line second xxx")
    assert "\n" not in described and len(described) < 220
