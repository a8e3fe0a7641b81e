"""Property: whatever a server answers, the client returns the right result or its own error.

Hypothesis draws answers from a hostile space (any status, headers, framing, compression,
truncation, delays, bodies from honest listings to garbage, deep nesting, bombs), and a real
server on 127.0.0.1 (``tests/hostile.py``) sends them. Every outcome must be the listing the
server meant (when it meant one honestly) or a ``ReconcilerError``, within the call's deadline,
in bounded memory. The examples are few and the delays short, so this stays a few seconds.
"""

from __future__ import annotations

import gzip
import json
import os
import time
import tracemalloc
import zlib
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.api.client import PixxelClient
from reconciler.api.types import Index
from reconciler.errors import ReconcilerError
from tests.hostile import HostileServer, Reply, chunked, gzip_bomb, http_date, status_and_headers

KEY = "hostile-property-key-31f0"
DEADLINE = 0.6
#: How far past its deadline a call may end: the watchdog's reaction and the test's own work.
SLACK = 0.5
MEMORY_BOUND_MB = 200
BOMB = gzip_bomb(64 * 1024 * 1024)  # 64 MiB once inflated, past the 16 MiB bound


@dataclass(frozen=True)
class Scenario:
    """One drawn answer, and the listing it honestly means (None: it means nothing usable)."""

    reply: Reply
    expected: list[str] | None


# --- bodies --------------------------------------------------------------------------------------

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
indices = st.lists(
    st.fixed_dictionaries(
        {"name": names, "type": st.sampled_from(["preset", "custom"])},
        optional={"expression_type": st.sampled_from(["index", "composite"])},
    ),
    max_size=5,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def honest_listing(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    items = [{**item, "id": f"i-{n}"} for n, item in enumerate(draw(indices))]
    pagination = {"limit": 100, "offset": 0, "total": len(items)}
    body = {"indices": items, "pagination": draw(st.sampled_from([pagination, None]))}
    if body["pagination"] is None:
        del body["pagination"]
    return json.dumps(body).encode(), [i["name"] for i in items]


@st.composite
def broken_listing(draw: st.DrawFn) -> bytes:
    items = [{**item, "id": f"i-{n}"} for n, item in enumerate(draw(indices))]
    body: dict[str, Any] = {"indices": items, "pagination": {"total": len(items)}}
    mutation = draw(st.sampled_from(["key", "items", "item", "total", "offset", "pagination"]))
    if mutation == "key":
        body[draw(st.sampled_from(["indice", "index", "Indices", "data"]))] = body.pop("indices")
    elif mutation == "items":
        body["indices"] = draw(json_values.filter(lambda v: not isinstance(v, list)))
    elif mutation == "item":
        body["indices"] = [*items, draw(json_values)]
    elif mutation == "total":
        body["pagination"]["total"] = draw(st.sampled_from([-1, "3", 1.5, True, len(items) - 1]))
    elif mutation == "offset":
        body["pagination"]["offset"] = draw(st.integers(1, 10))
    else:
        body["pagination"] = draw(json_values.filter(lambda v: not isinstance(v, dict | None)))
    if mutation == "total" and body["pagination"]["total"] == len(items) - 1 and not items:
        body["pagination"]["total"] = -1  # an empty page with total -1: still impossible
    return json.dumps(body).encode()


bodies = st.one_of(
    st.builds(lambda v: json.dumps(v).encode(), json_values),
    broken_listing(),
    st.binary(max_size=300),
    st.sampled_from([10, 900, 5000, 200_000]).map(lambda n: b"[" * n + b"]" * n),
    st.sampled_from([b"", b"null", b"<html>busy</html>", b"\xff\xfe{}", b'{"indices": [1,']),
    st.just(b"[" + b"0," * 1_200_000 + b"0]"),  # more values than we parse
    st.just(b" " * (17 * 1024 * 1024)),  # past the size bound
)


# --- framing -------------------------------------------------------------------------------------

statuses = st.sampled_from(
    [200, 200, 201, 204, 301, 400, 401, 403, 404, 408, 409, 422, 425, 429, 500, 503, 504]
) | st.integers(100, 599)
delays = st.sampled_from([0.0] * 12 + [0.05, 2 * DEADLINE])
extra_headers = st.lists(
    st.sampled_from(
        [
            ("Retry-After", "0"),
            ("Retry-After", "3"),
            ("Retry-After", http_date(2)),
            ("Retry-After", "soon"),
            ("Retry-After", "9" * 40),
            ("Content-Type", "text/html"),
            ("X-Junk", "x" * 5000),
            ("Set-Cookie", "sticky=1; Path=/"),
        ]
    ),
    max_size=3,
)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    status = draw(statuses)
    honest = draw(st.booleans())
    if honest:
        body, expected = draw(honest_listing())
    else:
        body, expected = draw(bodies), None
    encoding = draw(st.sampled_from(["identity"] * 4 + ["gzip", "deflate", "mislabelled", "bomb"]))
    headers = list(draw(extra_headers))
    if encoding == "gzip":
        body = gzip.compress(body)
    elif encoding == "deflate":
        body = zlib.compress(body)
    if encoding != "identity":
        headers.append(("Content-Encoding", "gzip" if encoding != "deflate" else "deflate"))
    if encoding == "bomb":
        body = BOMB
    framing = draw(st.sampled_from(["length"] * 4 + ["close", "chunked", "short", "garbage"]))
    if framing == "length":
        head = [*headers, ("Content-Length", str(len(body)))]
    elif framing == "chunked":
        head = [*headers, ("Transfer-Encoding", "chunked")]
    elif framing == "short":  # promises more than it sends, then closes
        head = [*headers, ("Content-Length", str(len(body) + 10))]
    elif framing == "garbage":
        head = [*headers, ("Content-Length", draw(st.sampled_from(["abc", "-5", "1, 2"])))]
    else:
        head = headers
    payload = chunked(body) if framing == "chunked" else body
    if draw(st.booleans()) and len(payload) > 2:  # cut the answer short
        payload = payload[: draw(st.integers(0, len(payload) - 1))]
        honest = False
    delay = draw(delays)
    steps: list[bytes | float] = [delay, status_and_headers(status, head)]
    trickle = draw(st.sampled_from([0.0] * 8 + [0.1]))
    if trickle and payload:
        steps += [payload[:1], trickle, payload[1:2], trickle, payload[2:]]
    else:
        steps.append(payload)
    usable = (
        honest
        and delay < DEADLINE / 2
        and status == 200
        and framing in ("length", "close", "chunked")
        and encoding in ("identity", "gzip", "deflate")
    )
    return Scenario(Reply(steps), expected if usable else None)


# --- the property --------------------------------------------------------------------------------


@pytest.mark.slow
@settings(
    max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "30")),  # more: a deeper hunt
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios())
def test_every_answer_ends_in_the_right_result_or_our_own_error(
    hostile: HostileServer, scenario: Scenario
) -> None:
    hostile.replies = [scenario.reply]
    api = PixxelClient(
        hostile.url,
        KEY,
        timeout=(DEADLINE, DEADLINE),
        deadline=DEADLINE,
        retries=1,
        backoff_factor=0.01,
        retry_after_cap=0.2,
    )
    tracemalloc.start()
    started = time.monotonic()
    try:
        result: list[Index] | ReconcilerError = api.list_indices()
    except ReconcilerError as exc:
        result = exc
    finally:
        elapsed = time.monotonic() - started
        peak_mb = tracemalloc.get_traced_memory()[1] / (1024 * 1024)
        tracemalloc.stop()
        api.close()
    assert elapsed < DEADLINE + SLACK, f"took {elapsed:.2f} s: {result!r}"
    assert peak_mb < MEMORY_BOUND_MB
    if scenario.expected is not None:
        assert isinstance(result, list), result
        assert [i.name for i in result] == scenario.expected
    else:
        assert isinstance(result, list | ReconcilerError)
    if isinstance(result, ReconcilerError):
        assert str(result).strip() and KEY not in str(result)
