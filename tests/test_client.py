"""The API client against the emulator over real HTTP on 127.0.0.1.

Nothing of ours is mocked. Faults come from the emulator's seeded fault injection and the
emulator's request counter proves how many attempts were made. Lying pagination, which no
honest emulator gives, comes from a tiny canned-answer server at the end of this file; single
odd answers and how each becomes an error are in test_client_errors.py. Retries use a tiny
backoff so fault tests stay fast; nothing asserts on time.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypedDict

import pytest
import requests
import yaml
from pydantic import ValidationError
from urllib3 import HTTPResponse

from reconciler.api.client import PixxelClient, dedupe_by_id
from reconciler.api.config import DEFAULT_API_URL
from reconciler.api.retry import ApiRetry
from reconciler.api.types import Asset, Index, Visualization, parse
from reconciler.emulator import Emulator, FaultConfig
from reconciler.errors import (
    ApiError,
    ApiValidationError,
    ConfigError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnauthorizedError,
)

DEMO = yaml.safe_load(
    (Path(__file__).parent.parent / "reconciler" / "emulator" / "demo_world.yaml").read_text()
)
AOIS = {a["name"]: a for a in DEMO["aois"]}
INDICES = {i["name"]: i for i in DEMO["indices"]}
NAGPUR = AOIS["Nagpur-Farms"]["id"]
KOCHI = AOIS["Kochi-Coast"]["id"]
NDVI = INDICES["NDVI"]["id"]
UNKNOWN = "00000000-0000-0000-0000-000000000000"

VIZ_ROUTE = "/v0/aois/{aoi_id}/visualizations"
ASSET_ROUTE = "/v0/aois/{aoi_id}/assets"


class Fast(TypedDict):
    """Retry fast in tests: the waits are urllib3's business, the counts are ours to check."""

    backoff_factor: float
    retry_after_cap: float


FAST = Fast(backoff_factor=0.001, retry_after_cap=0.01)


@pytest.fixture
def client(emulator: Emulator, api_key: str) -> Iterator[PixxelClient]:
    with PixxelClient(emulator.url, api_key, **FAST) as c:
        yield c


def faulty(make_emulator: Callable[..., Emulator], **faults: Any) -> Emulator:
    return make_emulator(faults=FaultConfig(**faults))


# ------------------------------------------------------------------------------ listings


def test_every_listing_pages_to_the_end(client: PixxelClient, emulator: Emulator) -> None:
    assert {a.name for a in client.list_aois()} == set(AOIS)
    assert {i.id for i in client.list_indices()} == {i["id"] for i in DEMO["indices"]}
    assets = client.list_assets(NAGPUR)
    assert [a.id for a in assets] == [a["id"] for a in AOIS["Nagpur-Farms"]["assets"]]
    assert all(isinstance(a, Asset) and len(a.date) == 10 for a in assets)
    vizs = client.list_visualizations(NAGPUR)
    assert len(vizs) == 12 and len({v.id for v in vizs}) == 12
    assert all(isinstance(v, Visualization) and v.aoi_id == NAGPUR for v in vizs)
    # Page size 100 (the API's maximum): Nagpur's 14 assets take one request, not two.
    assert emulator.counter.count("GET", ASSET_ROUTE) == 1


def test_page_size_smaller_than_the_data(emulator: Emulator, api_key: str) -> None:
    with PixxelClient(emulator.url, api_key, page_size=3) as small:
        assets = small.list_assets(NAGPUR)
        vizs = small.list_visualizations(NAGPUR)
    assert [a.id for a in assets] == [a["id"] for a in AOIS["Nagpur-Farms"]["assets"]]
    assert len({v.id for v in vizs}) == len(vizs) == 12
    assert emulator.counter.count("GET", ASSET_ROUTE) == 5  # ceil(14 / 3)
    assert emulator.counter.count("GET", VIZ_ROUTE) == 4  # ceil(12 / 3)
    # An asset listed by several visualizations, on one page or several, is one object.
    listed = [a for v in vizs for a in v.assets]
    by_id = {a.id: a for a in listed}
    assert len(by_id) < len(listed) and all(a is by_id[a.id] for a in listed)
    assert all(v.aoi_id is vizs[0].aoi_id for v in vizs)  # so is what they all repeat


def test_pages_after_the_first_can_be_read_at_once(emulator: Emulator, api_key: str) -> None:
    asked: list[list[int]] = []

    def at_once(read: Callable[[int], list[Any]], offsets: Sequence[int]) -> list[list[Any]]:
        asked.append(list(offsets))
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(read, offsets))

    with PixxelClient(emulator.url, api_key, page_size=1) as small:
        one_by_one = small.list_aois()
        emulator.counter.reset()
        together = small.list_aois(pages=at_once)
    assert [a.id for a in together] == [a.id for a in one_by_one] and len(AOIS) > 2
    assert asked == [list(range(1, len(AOIS)))]  # once, for every page after the first
    assert emulator.counter.count("GET", "/v0/aois") == len(AOIS)


def test_filters(client: PixxelClient) -> None:
    [pune] = client.list_aois(name="Pune-East")
    assert pune.id == AOIS["Pune-East"]["id"]
    [by_id] = client.list_aois(aoi_id=KOCHI)
    assert by_id.name == "Kochi-Coast"
    ndvi = client.list_visualizations(NAGPUR, index_id=NDVI)
    assert ndvi and all(v.index_id == NDVI for v in ndvi)
    some = client.list_visualizations(NAGPUR)[5]
    [only] = client.list_visualizations(NAGPUR, visualization_id=some.id)
    assert only.id == some.id
    assert client.get_aoi(NAGPUR).name == "Nagpur-Farms"


def test_index_legend_modes_follow_the_contract(client: PixxelClient) -> None:
    modes = {i.name: i.legend_modes for i in client.list_indices()}
    assert modes["NDVI"] == ("dynamic", "theoretical")
    assert modes["Chlorophyll-Red-Edge"] == ("dynamic",)
    assert modes["True-Color"] == () and modes["NIR-Grayscale"] == ()


def test_client_is_safe_to_share_between_threads(emulator: Emulator, api_key: str) -> None:
    with PixxelClient(emulator.url, api_key, parallelism=8, page_size=4) as shared:
        expected = [v.id for v in shared.list_visualizations(NAGPUR)]
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: shared.list_visualizations(NAGPUR), range(16)))
    assert all([v.id for v in r] == expected for r in results)


def test_more_threads_than_parallelism_share_its_connections(
    emulator: Emulator, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    shared = PixxelClient(emulator.url, api_key, parallelism=2, page_size=4)
    with shared, ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: shared.list_visualizations(NAGPUR), range(32)))
    opened = [r for r in caplog.records if "Starting new HTTP connection" in r.getMessage()]
    assert 1 <= len(opened) <= 2  # the other threads waited for one of the two connections


# ------------------------------------------------------------------------------ writes


def test_create_then_duplicate_is_a_conflict(client: PixxelClient) -> None:
    created = client.create_visualization(KOCHI, NDVI)
    assert created.aoi_id == KOCHI and created.index_id == NDVI and created.id
    with pytest.raises(ConflictError) as info:
        client.create_visualization(KOCHI, NDVI)
    err = info.value
    assert err.status == 409 and err.code and err.api_message
    assert err.method == "POST" and "/visualizations" in err.url
    assert str(err).startswith(f"POST /v0/aois/{KOCHI}/visualizations failed: 409 {err.code}")


NEW_INDEX: dict[str, Any] = {
    "name": "Red-Edge-NDVI",
    "description": "NDVI over the red edge",
    "expression": "(B08 - B05) / (B08 + B05)",
    "expression_type": "index",
    "rescale": (-1, 1),
    "colormap": "rdylgn",
    "satellite_id": "0005c5bb-0bd2-4c80-9393-4a808341c54c",
}


def test_create_index_answers_the_index_then_409(client: PixxelClient) -> None:
    created = client.create_index(**NEW_INDEX)
    assert (created.name, created.type, created.expression_type) == (
        "Red-Edge-NDVI",
        "custom",
        "index",
    )
    assert created.rescale == (-1, 1) and created.bands == ("B05", "B08")
    assert (created.description, created.colormap) == (NEW_INDEX["description"], "rdylgn")
    assert created.satellite_id == NEW_INDEX["satellite_id"]
    assert created.legend_modes == ("dynamic",)
    assert created in client.list_indices()  # listed with every field it was created with
    with pytest.raises(ConflictError) as info:
        client.create_index(**{**NEW_INDEX, "description": "another", "rescale": [0, 1]})
    err = info.value
    assert err.status == 409 and err.details == {
        "index_id": created.id,
        "name": "Red-Edge-NDVI",
        "type": "custom",
    }
    assert str(err).startswith("POST /v0/indices failed: 409 conflict")


def test_create_index_carries_the_apis_400(client: PixxelClient) -> None:
    with pytest.raises(ApiValidationError) as info:
        client.create_index(**{**NEW_INDEX, "rescale": (1, 0)})
    assert info.value.status == 400 and "rescale" in str(info.value)


def test_listed_indices_carry_their_contract_fields(client: PixxelClient) -> None:
    ndvi = next(i for i in client.list_indices() if i.id == NDVI)
    assert (ndvi.rescale, ndvi.bands, ndvi.colormap) == ((-1, 1), ("B04", "B08"), "rdylgn")
    assert ndvi.description == INDICES["NDVI"]["description"] and ndvi.satellite_id


def test_bad_request_carries_the_apis_message(client: PixxelClient) -> None:
    with pytest.raises(ApiValidationError) as info:
        client.create_visualization(KOCHI, NDVI, src_asset_ids=["not-an-asset"])
    err = info.value
    assert err.status == 400 and err.code and err.api_message
    assert f"400 {err.code}: {err.api_message}" in str(err)


def test_rollback_sends_api_dates_and_returns_detail(client: PixxelClient) -> None:
    viz = next(v for v in client.list_visualizations(NAGPUR) if v.index_id == NDVI and v.assets)
    dates = sorted({a.date for a in viz.assets})[:2]
    before = viz.updated_at
    detail = client.rollback_metadata(NAGPUR, viz.id, index_id=NDVI, mode="dynamic", dates=dates)
    assert detail.id == viz.id and detail.metadata is not None
    assert detail.updated_at != before
    with pytest.raises(ApiValidationError):  # refused locally: never sent
        client.rollback_metadata(NAGPUR, viz.id, index_id=NDVI, mode="dynamic", dates=["May 6"])


def test_update_metadata_returns_the_metadata(client: PixxelClient) -> None:
    viz = next(v for v in client.list_visualizations(NAGPUR) if v.index_id == NDVI and v.assets)
    iso = viz.assets[0].date  # ISO is turned into the API's "2024_05_06"; the API form passes
    for day in (iso, iso.replace("-", "_")):
        legend = {day: [{"min": 0, "max": 1, "color": "#000000", "label": "all"}]}
        meta = client.update_metadata(NAGPUR, viz.id, mode="theoretical", legend=legend)
        assert isinstance(meta, dict) and iso.replace("-", "_") in meta["legend"]


def test_unknown_aoi_is_not_found(client: PixxelClient) -> None:
    with pytest.raises(NotFoundError) as info:
        client.list_visualizations(UNKNOWN)
    assert info.value.status == 404 and info.value.code and info.value.api_message
    with pytest.raises(NotFoundError):
        client.get_aoi(UNKNOWN)


def test_ids_cannot_change_the_path(client: PixxelClient) -> None:
    # A hostile id stays one path segment: it is not found, it does not reach another route.
    with pytest.raises(NotFoundError):
        client.list_assets(f"{NAGPUR}/../../aois?x=")


def test_wrong_key_is_unauthorized_and_never_shown(emulator: Emulator) -> None:
    wrong = "wrong-key-5f3a"
    with PixxelClient(emulator.url, wrong) as bad, pytest.raises(UnauthorizedError) as info:
        bad.list_aois()
    err = info.value
    assert err.status == 401 and err.code and err.api_message
    assert wrong not in str(err) and wrong not in repr(err) and wrong not in repr(vars(err))
    assert "PIXXEL_API_KEY" in str(err)


# ------------------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    "fault",
    [{"error_rate": 1.0}, {"rate_limit_rate": 1.0}, {"drop_rate": 1.0}],
    ids=["5xx", "429", "dropped"],
)
def test_retries_converge(
    make_emulator: Callable[..., Emulator], api_key: str, fault: dict[str, float]
) -> None:
    emu = faulty(make_emulator, seed=7, max_faults=3, **fault)
    with PixxelClient(emu.url, api_key, **FAST) as c:
        aois = c.list_aois()
    assert {a.name for a in aois} == set(AOIS)
    assert emu.counter.count("GET", "/v0/aois") == 4  # three faults, then the answer


def test_mixed_faults_give_the_same_answer(
    make_emulator: Callable[..., Emulator], api_key: str
) -> None:
    clean = make_emulator()
    emu = faulty(
        make_emulator, seed=3, error_rate=0.2, rate_limit_rate=0.2, drop_rate=0.2, max_faults=8
    )
    with (
        PixxelClient(clean.url, api_key) as a,
        PixxelClient(emu.url, api_key, page_size=4, **FAST) as b,
    ):
        assert b.list_visualizations(NAGPUR) == a.list_visualizations(NAGPUR)
        assert b.list_assets(NAGPUR) == a.list_assets(NAGPUR)
    assert emu.counter.total > 3 + 4  # more requests than pages: some were retries


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"error_rate": 1.0}, ServerError),
        ({"rate_limit_rate": 1.0}, RateLimitedError),
        ({"drop_rate": 1.0}, TransportError),
    ],
    ids=["5xx", "429", "dropped"],
)
def test_retry_budget_exhausted_is_the_typed_error(
    make_emulator: Callable[..., Emulator],
    api_key: str,
    fault: dict[str, float],
    error: type[ApiError],
) -> None:
    emu = faulty(make_emulator, seed=1, **fault)
    with PixxelClient(emu.url, api_key, retries=2, **FAST) as c, pytest.raises(error) as info:
        c.list_indices()
    assert emu.counter.count("GET", "/v0/indices") == 3  # one try plus two retries
    assert str(info.value).startswith("GET /v0/indices?offset=0&limit=100 failed")
    assert re.search(r"\b3 (attempts|times)", str(info.value))  # says how many were made
    assert info.value.method == "GET"


def test_read_timeouts_are_retried(make_emulator: Callable[..., Emulator], api_key: str) -> None:
    emu = faulty(make_emulator, latency_ms=300)
    with (
        PixxelClient(emu.url, api_key, timeout=(5.0, 0.05), retries=1, **FAST) as c,
        pytest.raises(TransportError, match="read timeout") as info,
    ):
        c.list_indices()
    assert info.value.status is None
    assert emu.counter.count("GET", "/v0/indices") == 2


def test_lost_create_response_becomes_a_conflict(
    make_emulator: Callable[..., Emulator], api_key: str
) -> None:
    emu = faulty(make_emulator, seed=0, lost_response_rate=1.0, max_faults=1)
    with PixxelClient(emu.url, api_key, **FAST) as c:
        with pytest.raises(ConflictError):
            c.create_visualization(KOCHI, NDVI)
        assert emu.counter.count("POST", VIZ_ROUTE) == 2  # created, answer lost, retried
        assert len(c.list_visualizations(KOCHI, index_id=NDVI)) == 1  # and no duplicate


def test_retry_after_is_honoured_but_capped(
    make_emulator: Callable[..., Emulator], api_key: str
) -> None:
    emu = faulty(make_emulator, seed=0, rate_limit_rate=1.0, retry_after=120)
    answer = requests.get(f"{emu.url}/v0/aois", headers={"Authorization": api_key}, timeout=5)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "120"
    with PixxelClient(emu.url, api_key, retry_after_cap=2.5) as c:
        assert c._retry.get_retry_after(answer.raw) == 2.5
    # Under the cap the server's word stands, also in HTTP-date form (urllib3 parses both).
    retry = ApiRetry(total=3, retry_after_cap=30.0)
    assert retry.get_retry_after(HTTPResponse(headers={"Retry-After": "7"})) == 7
    assert retry.new().retry_after_cap == 30.0  # survives urllib3 copying it per attempt
    past = HTTPResponse(headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry.get_retry_after(past) == 0


# ------------------------------------------------------------------------------ the key


def test_key_never_reaches_logs_errors_or_reprs(
    make_emulator: Callable[..., Emulator], caplog: pytest.LogCaptureFixture
) -> None:
    key = "sekrit-key-93b1"
    emu = make_emulator(
        api_keys=(key,), faults=FaultConfig(seed=2, error_rate=0.5, drop_rate=0.5, max_faults=2)
    )
    caplog.set_level(logging.DEBUG)
    with PixxelClient(emu.url, key, **FAST) as c:
        c.list_aois()
        with pytest.raises(NotFoundError) as info:
            c.get_aoi(UNKNOWN)
        assert key not in repr(c) and key not in str(vars(c)) and key not in repr(c._session.auth)
    assert key not in str(info.value) and key not in repr(info.value)
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        "GET /v0/aois?offset=0&limit=100 -> 200 in" in m and "(attempt 3)" in m for m in messages
    )
    assert any("retry 1 of 5" in m for m in messages)
    assert not [m for m in messages if m.startswith("Retrying (")]  # urllib3's duplicate
    assert not [m for m in messages if key in m]


def test_logging_filter_redacts_the_key(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    key = "another-secret-77"
    with PixxelClient(emulator.url, key):
        pass
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3.connectionpool").debug("header was %s", key)
    logging.getLogger("reconciler").warning("oops %s", key)
    assert [r.getMessage() for r in caplog.records][-2:] == ["header was ***", "oops ***"]


# ------------------------------------------------------------------------------ configuration


@pytest.mark.parametrize("url", ["http://api.pixxel.space", "http://10.1.2.3:8080", "http://[::2]"])
def test_plain_http_is_refused_for_remote_hosts(url: str) -> None:
    with pytest.raises(ConfigError, match="http://"):
        PixxelClient(url, "k")


@pytest.mark.parametrize(
    "url",
    [
        DEFAULT_API_URL,
        "https://api.example.com/",
        "http://127.0.0.1:9",
        "http://127.8.0.1",
        "http://localhost:8765",
        "http://[::1]:8765",
    ],
)
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    with PixxelClient(url, "k") as c:  # constructing does no request
        assert c.base_url == url.rstrip("/")


@pytest.mark.parametrize("url", ["ftp://x", "https://", "https://me:pw@host", "https://h:99999"])
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        PixxelClient(url, "k")
    assert "pw" not in str(info.value)


# ------------------------------------------------------------------------------ pure helpers


def test_dedupe_keeps_first_occurrence() -> None:
    items = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)]
    assert dedupe_by_id(items, key=lambda i: i[0]) == [("a", 1), ("b", 2), ("c", 4)]


def test_models_are_lenient_about_extras_and_strict_about_identity() -> None:
    idx = parse(
        Index, {"id": "i", "name": "X", "type": "custom", "expression_type": "grayscale", "new": 1}
    )
    assert idx.legend_modes == ()
    assert (idx.rescale, idx.bands, idx.description, idx.colormap) == (None, (), None, None)
    assert parse(Index, {"id": "i", "name": "X", "type": "custom", "bands": None}).bands == ()
    with pytest.raises(ValidationError):  # the contract's rescale is integers
        parse(Index, {"id": "i", "name": "X", "type": "custom", "rescale": [0.5, 1]})
    asset = parse(Asset, {"id": "a", "name": "A", "date": "2024-05-06T00:00:00Z"})
    assert asset.date == "2024-05-06"
    viz = parse(Visualization, {"id": "v", "aoi_id": "a", "index_id": "i", "assets": None})
    assert viz.assets == []
    with pytest.raises(ValueError):
        parse(Asset, {"id": "a", "name": "A", "date": "yesterday"})
    with pytest.raises(ValidationError) as huge:
        parse(Asset, {"id": "a", "name": "A", "date": "20240506" + "x" * 5000})
    message = huge.value.errors(include_input=False)[0]["msg"]
    assert message.endswith("got '20240506" + "x" * 30 + "…") and len(message) < 120


# ------------------------------------------------------------------------------ odd answers
# Answers the emulator never gives (it is honest): served by a canned-answer server.

Canned = dict[str, tuple[int, str]]  # path with query -> (status, body)


@dataclass
class CannedServer:
    url: str
    answers: Canned
    cookies_received: list[str]


@pytest.fixture
def canned() -> Iterator[CannedServer]:
    answers: Canned = {}
    cookies: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if "Cookie" in self.headers:
                cookies.append(self.headers["Cookie"])
            status, body = answers.get(self.path, (404, '{"error": {"code": "not_found"}}'))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Set-Cookie", "AWSALB=sticky; Path=/")  # as load balancers do
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield CannedServer(f"http://127.0.0.1:{server.server_address[1]}", answers, cookies)
    finally:
        server.shutdown()
        server.server_close()


def _page(items: list[dict[str, str]], total: int, limit: int = 100) -> str:
    return json.dumps({"indices": items, "pagination": {"total": total, "limit": limit}})


def _idx(n: int) -> dict[str, str]:
    return {"id": f"i{n}", "name": f"I{n}", "type": "preset"}


def test_pagination_that_lies_and_repeats_ends_naming_the_listing(canned: CannedServer) -> None:
    answers = canned.answers
    # The API allows only 2 per page, repeats i1 on page two, and claims 9 items but has 4:
    # whatever is missing, a listing read so is not whole.
    answers["/v0/indices?offset=0&limit=100"] = (200, _page([_idx(0), _idx(1)], 9, limit=2))
    answers["/v0/indices?offset=2&limit=2"] = (200, _page([_idx(1), _idx(2)], 9, limit=2))
    answers["/v0/indices?offset=4&limit=2"] = (200, _page([_idx(3)], 9, limit=2))
    answers["/v0/indices?offset=5&limit=2"] = (200, _page([], 9, limit=2))
    with PixxelClient(canned.url, "k", retries=0) as c, pytest.raises(InvalidResponseError) as e:
        c.list_indices()
    assert str(e.value).startswith("GET /v0/indices: the listing could not be read consistently")
    assert "'pagination.total' is 9, but the pages hold 4 distinct items" in str(e.value)


def _aoi_page(names: list[str], total: int) -> str:
    aois = [{"aoi_id": f"id-{n}", "name": n} for n in names]
    return json.dumps({"aois": aois, "pagination": {"total": total, "limit": 2}})


def test_pages_read_at_once_go_on_in_order_after_a_short_one(canned: CannedServer) -> None:
    answers = canned.answers
    # Six AOIs, two a page; a3 moved away while the pages were read, then came back.
    answers["/v0/aois?offset=0&limit=2"] = (200, _aoi_page(["a0", "a1"], 6))
    answers["/v0/aois?offset=2&limit=2"] = (200, _aoi_page(["a2"], 6))
    answers["/v0/aois?offset=4&limit=2"] = (200, _aoi_page(["a4", "a5"], 6))
    answers["/v0/aois?offset=3&limit=2"] = (200, _aoi_page(["a3", "a4"], 6))
    answers["/v0/aois?offset=5&limit=2"] = (200, _aoi_page(["a5"], 6))

    def at_once(read: Callable[[int], list[Any]], offsets: Sequence[int]) -> list[list[Any]]:
        return [read(at) for at in offsets]

    with PixxelClient(canned.url, "k", retries=0, page_size=2) as c:
        found = c.list_aois(pages=at_once)
    assert [a.name for a in found] == ["a0", "a1", "a2", "a4", "a5", "a3"]


def test_cookies_are_never_sent_back(canned: CannedServer) -> None:
    # Every answer sets a sticky-session cookie; a jar that kept it would be shared state
    # that every thread's response writes to.
    canned.answers["/v0/indices?offset=0&limit=100"] = (200, _page([_idx(0)], 2, limit=1))
    canned.answers["/v0/indices?offset=1&limit=1"] = (200, _page([_idx(1)], 2, limit=1))
    with PixxelClient(canned.url, "k", retries=0) as c:
        assert len(c.list_indices()) == 2
    assert canned.cookies_received == []
