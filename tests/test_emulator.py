"""The emulator over real HTTP: endpoints, validation, 409, lifecycle, legends, persistence, CLI.

Every response received through ``ApiSession`` is also validated against the shared contract
(see conftest.py), so these tests double as contract tests for what they exercise.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.emulator import DEMO_WORLD, MAX_PAGE_SIZE, Emulator, World
from reconciler.emulator.world import PROJECT_ID
from reconciler.errors import ConfigError
from tests.conftest import ApiSession
from tests.planning import run_cli

# Demo world ids (reconciler/emulator/demo_world.yaml).
BENGALURU = "89a291cd-7ad8-5f86-aeee-55e92b0a0f5d"
PUNE = "8ee03236-8358-5969-a280-c39238c3c46b"
NAGPUR = "1a3cd9bf-677d-5205-8fbf-1414083293b0"
KOCHI = "a4cb9e5f-39ca-5083-b695-e628f4e8019b"
KOCHI_A = "8b472a7b-a251-53af-ae94-6b71decf1faa"
AGRICULTURE = "2b91399d-6edb-54ca-948b-8bddabd28ed4"  # project of Bengaluru and Nagpur
WATER = "3477ad8e-1833-568f-8bff-e0685908bd6d"  # project of Pune and Kochi
KOCHI_B = "2f48038d-e47d-5247-bf41-e82ff9b5ce66"
BENGALURU_A = "4bbe45b3-ef5d-54f4-ba70-b6700fa56d61"
NDVI = "cb668cf4-b6fc-5c37-a944-84c62fd95299"
NDWI = "04d0a9cd-f653-558c-9d19-4103e6386d5a"
CHLOROPHYLL = "07d5b720-886c-56ff-88bb-2298b1ee62ed"  # custom, expression_type index
TRUE_COLOR = "fd0d7fb2-ac09-57a9-a3e1-5de17df7b6b5"  # custom composite
NIR_GRAY = "d0a2f9e6-3237-53c8-8327-38c35a013d3a"  # custom grayscale
BENGALURU_NDVI = "f4810809-db7f-5877-9305-3e51eb6a61a3"  # assets A (2024-05-06), B (2024-11-20)
BENGALURU_TRUE_COLOR = "b92ca99a-2d95-5d67-9c0c-89942b86460e"  # all Bengaluru assets
NAGPUR_FAILED = "a6c61636-b17f-506e-92e2-665375801ab6"

LIST_FIELDS = {
    "aoi_id", "created_at", "id", "index_id", "progress", "status", "tenant_id", "updated_at",
    "user_id", "assets", "index_name", "expression", "expression_type", "type", "rescale",
}  # fmt: skip
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00$")


def vizs(aoi: str) -> str:
    return f"/v0/aois/{aoi}/visualizations"


def metadata_url(aoi: str, viz: str) -> str:
    return f"/v0/aois/{aoi}/visualizations/{viz}/metadata"


def error_of(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    error: dict[str, Any] = body["error"]
    return error


def listing(session: ApiSession, aoi: str, **params: Any) -> list[dict[str, Any]]:
    response = session.get(vizs(aoi), params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["visualization"]
    return items


def find(session: ApiSession, aoi: str, viz_id: str) -> dict[str, Any]:
    items = listing(session, aoi, visualization_id=viz_id)
    assert len(items) == 1, items
    return items[0]


def create(session: ApiSession, aoi: str, index_id: str, **body: Any) -> requests.Response:
    return session.post(vizs(aoi), json={"index_id": index_id, **body})


def created(session: ApiSession, aoi: str, index_id: str, **body: Any) -> dict[str, Any]:
    """Create and (with no creation delay) read it back once it is final."""
    response = create(session, aoi, index_id, **body)
    assert response.status_code == 201, response.text
    return find(session, aoi, response.json()["id"])


def rollback(
    session: ApiSession, aoi: str, viz: str, index_id: str, mode: str, dates: list[str]
) -> requests.Response:
    body = {"index_id": index_id, "dates": dates, "visualization_mode": mode}
    return session.patch(metadata_url(aoi, viz), json=body)


def edit(session: ApiSession, aoi: str, viz: str, body: dict[str, Any]) -> requests.Response:
    return session.put(metadata_url(aoi, viz), json=body)


EDITED = [{"min": 0, "max": 1, "color": "#000000", "label": "edited"}]


def put_body(mode: str, legend: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A PUT metadata body; dynamic mode gets the dynamic_bins the contract requires."""
    body: dict[str, Any] = {"visualization_mode": mode, "legend": legend}
    if mode == "dynamic":
        body["dynamic_bins"] = 5
    return {**body, **extra}


# --- read endpoints ------------------------------------------------------------------------------


def test_lists_the_demo_aois(api_session: ApiSession) -> None:
    response = api_session.get("/v0/aois")
    assert response.status_code == 200
    body = response.json()
    names = [a["name"] for a in body["aois"]]
    assert names == ["Bengaluru-North", "Pune-East", "Nagpur-Farms", "Kochi-Coast"]
    assert body["pagination"] == {"total": 4, "offset": 0, "limit": 10}
    assert body["aois"][0]["aoi_id"] == BENGALURU
    assert body["aois"][0]["geometry"]["type"] == "Polygon"


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"aoi_name": "Pune-East"}, ["Pune-East"]),
        ({"aoi_id": NAGPUR}, ["Nagpur-Farms"]),
        ({"aoi_name": "Atlantis"}, []),
        ({"aoi_name": "Pune-East", "aoi_id": NAGPUR}, []),
        ({"project_ids": "not-our-project"}, []),
        ({"project_ids": WATER}, ["Pune-East", "Kochi-Coast"]),
        (
            {"project_ids": f"{AGRICULTURE},{WATER}"},
            ["Bengaluru-North", "Pune-East", "Nagpur-Farms", "Kochi-Coast"],
        ),
        ({"project_ids": f"not-ours, {WATER}"}, ["Pune-East", "Kochi-Coast"]),
        ({"project_ids": WATER, "aoi_name": "Pune-East"}, ["Pune-East"]),
        ({"project_ids": ""}, ["Bengaluru-North", "Pune-East", "Nagpur-Farms", "Kochi-Coast"]),
    ],
)
def test_aoi_filters(api_session: ApiSession, params: dict[str, str], names: list[str]) -> None:
    body = api_session.get("/v0/aois", params=params).json()
    assert [a["name"] for a in body["aois"]] == names
    assert body["pagination"]["total"] == len(names)


def test_aois_carry_their_project(api_session: ApiSession) -> None:
    body = api_session.get("/v0/aois").json()
    assert {a["name"]: a["project_id"] for a in body["aois"]} == {
        "Bengaluru-North": AGRICULTURE,
        "Pune-East": WATER,
        "Nagpur-Farms": AGRICULTURE,
        "Kochi-Coast": WATER,
    }


def test_world_file_projects_by_name_or_id_and_a_default(tmp_path: Path) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(
        MINIMAL_WORLD.replace(
            "aois:\n",
            "projects: [{name: Alpha}, {id: 11111111-2222-4333-8444-555555555555, name: Beta}]\n"
            "aois:\n"
            "  - {name: Field-2, project: Alpha}\n"
            "  - {name: Field-3, project: 11111111-2222-4333-8444-555555555555}\n",
        )
    )
    world = World.from_yaml(path)
    projects = {a.name: a.project_id for a in world.aois}
    assert projects["Field-3"] == "11111111-2222-4333-8444-555555555555"
    assert projects["Field-1"] == PROJECT_ID  # no project given: the default one
    assert projects["Field-2"] not in (PROJECT_ID, projects["Field-3"])


def test_get_aoi(api_session: ApiSession) -> None:
    body = api_session.get(f"/v0/aoi/{KOCHI}").json()
    assert body["name"] == "Kochi-Coast"
    assert body["aoi_id"] == KOCHI
    missing = api_session.get("/v0/aoi/no-such-aoi")
    assert missing.status_code == 404
    assert "no-such-aoi" in error_of(missing)["message"]


def test_indices_and_their_filters(api_session: ApiSession) -> None:
    body = api_session.get("/v0/indices", params={"limit": 100}).json()
    assert body["pagination"]["total"] == 7
    by_name = {i["name"]: i for i in body["indices"]}
    assert by_name["NDVI"]["type"] == "preset" and by_name["NDVI"]["id"] == NDVI
    assert by_name["True-Color"]["expression_type"] == "composite"

    presets = api_session.get("/v0/indices", params={"type": "preset"}).json()["indices"]
    assert [i["name"] for i in presets] == ["NDVI", "NDWI", "SAVI", "EVI"]
    grays = api_session.get("/v0/indices", params={"expression_type": "grayscale"}).json()
    assert [i["id"] for i in grays["indices"]] == [NIR_GRAY]
    one = api_session.get("/v0/indices", params={"index_id": CHLOROPHYLL}).json()["indices"]
    assert [i["name"] for i in one] == ["Chlorophyll-Red-Edge"]
    bad = api_session.get("/v0/indices", params={"type": "bogus"})
    assert bad.status_code == 400
    assert "type" in error_of(bad)["message"]


def test_assets_page_through_nagpur(api_session: ApiSession) -> None:
    first = api_session.get(f"/v0/aois/{NAGPUR}/assets").json()
    second = api_session.get(f"/v0/aois/{NAGPUR}/assets", params={"offset": 10}).json()
    assert first["pagination"] == {"total": 14, "offset": 0, "limit": 10}
    assert second["pagination"] == {"total": 14, "offset": 10, "limit": 10}
    assets = first["assets"] + second["assets"]
    assert len(first["assets"]) == 10 and len(second["assets"]) == 4
    assert [a["name"] for a in assets] == [f"Nagpur-{c}" for c in "ABCDEFGHIJKLMN"]
    assert assets[0]["date"] == "2024-01-05"
    assert all(a["aoi_id"] == NAGPUR and TIMESTAMP.match(a["created_at"]) for a in assets)
    assert api_session.get("/v0/aois/nope/assets").status_code == 404


def test_visualization_listing_pages_and_fields(api_session: ApiSession) -> None:
    first = api_session.get(vizs(NAGPUR)).json()
    second = api_session.get(vizs(NAGPUR), params={"offset": 10, "limit": 10}).json()
    assert first["pagination"] == {"total": 12, "offset": 0, "limit": 10}
    assert second["pagination"] == {"total": 12, "offset": 10, "limit": 10}
    items = first["visualization"] + second["visualization"]
    assert len(items) == 12 and len({v["id"] for v in items}) == 12
    assert items[0]["id"] == "6ad66965-e098-57d0-9f08-972fdcc7eac0"  # world file order
    assert items[-1]["id"] == NAGPUR_FAILED and items[-1]["status"] == "failed"
    for item in items:
        assert set(item) == LIST_FIELDS  # never metadata in a listing
        assert item["type"] == "custom"
        assert TIMESTAMP.match(item["updated_at"]) and TIMESTAMP.match(item["created_at"])
    ndvi = items[0]
    assert ndvi["index_name"] == "NDVI" and ndvi["expression_type"] == "index"
    assert [a["name"] for a in ndvi["assets"]] == ["Nagpur-A", "Nagpur-B", "Nagpur-C"]
    assert ndvi["rescale"] == [-1, 1] and ndvi["status"] == "success" and ndvi["progress"] == 100
    past_end = api_session.get(vizs(NAGPUR), params={"offset": 50}).json()
    assert past_end == {"visualization": [], "pagination": {"total": 12, "offset": 50, "limit": 10}}


def test_page_size_is_clamped_to_the_maximum(api_session: ApiSession) -> None:
    body = api_session.get(vizs(NAGPUR), params={"limit": 1000}).json()
    assert body["pagination"] == {"total": 12, "offset": 0, "limit": MAX_PAGE_SIZE}
    assert MAX_PAGE_SIZE == 100
    assert len(body["visualization"]) == 12
    one = api_session.get("/v0/aois", params={"limit": 1, "offset": 3}).json()
    assert [a["name"] for a in one["aois"]] == ["Kochi-Coast"]


def test_any_page_is_a_slice_of_the_whole(api_session: ApiSession) -> None:
    everything = listing(api_session, NAGPUR, limit=100)

    # Hypothesis runs inside the test, so the (read-only) emulator fixture serves every example.
    @settings(max_examples=40, deadline=None)
    @given(offset=st.integers(0, 20), limit=st.integers(1, 150))
    def check(offset: int, limit: int) -> None:
        page = api_session.get(vizs(NAGPUR), params={"offset": offset, "limit": limit}).json()
        size = min(limit, MAX_PAGE_SIZE)
        assert page["pagination"] == {"total": len(everything), "offset": offset, "limit": size}
        assert page["visualization"] == everything[offset : offset + size]

    check()


@pytest.mark.parametrize(
    "params",
    [{"limit": "-1"}, {"limit": "0"}, {"limit": "ten"}, {"offset": "-5"}, {"offset": "1.5"}],
)
@pytest.mark.parametrize(
    "path", ["/v0/aois", "/v0/indices", vizs(NAGPUR), f"/v0/aois/{PUNE}/assets"]
)
def test_bad_pagination_is_400(api_session: ApiSession, path: str, params: dict[str, str]) -> None:
    response = api_session.get(path, params=params)
    assert response.status_code == 400
    (name,) = params
    assert name in error_of(response)["message"]


def test_visualization_filters(api_session: ApiSession) -> None:
    ndvi = listing(api_session, NAGPUR, index_id=NDVI)
    assert len(ndvi) == 5 and {v["index_id"] for v in ndvi} == {NDVI}
    composite = listing(api_session, NAGPUR, expression_type="composite")
    assert [v["index_name"] for v in composite] == ["True-Color"]
    assert len(listing(api_session, NAGPUR, type="custom", limit=100)) == 12
    owner = ndvi[0]["user_id"]
    assert len(listing(api_session, NAGPUR, user_id=owner, limit=100)) == 12
    assert listing(api_session, NAGPUR, user_id="someone-else") == []
    assert listing(api_session, NAGPUR, visualization_id=NAGPUR_FAILED)[0]["status"] == "failed"
    assert api_session.get(vizs(NAGPUR), params={"type": "preset"}).status_code == 400
    unknown = api_session.get(vizs("no-such-aoi"))
    assert unknown.status_code == 404


def test_unknown_paths_and_methods(api_session: ApiSession) -> None:
    missing = api_session.get("/v0/nothing-here")
    assert missing.status_code == 404
    assert "/v0/nothing-here" in error_of(missing)["message"]
    wrong = api_session.delete(vizs(PUNE))
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "GET, POST"
    assert error_of(wrong)["code"] == "method_not_allowed"
    assert api_session.post(metadata_url(PUNE, "x")).status_code == 405


def raw_exchange(emulator: Emulator, request: bytes) -> tuple[int, dict[str, str], Any]:
    """Send ``request`` as is; return the status, headers and JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


@pytest.mark.parametrize(
    ("request_line", "status", "code"),
    [
        (b"FROB /v0/aois HTTP/1.1", 501, "not_implemented"),
        (b"TRACE /v0/aois HTTP/1.1", 405, "method_not_allowed"),
        (b"CONNECT /v0/nothing HTTP/1.1", 404, "not_found"),
        (b"GET /v0/aois HTTP/9.9", 505, "error"),
        (b"GARBAGE", 400, "bad_request"),
    ],
)
def test_unknown_methods_and_malformed_requests_get_json_errors(
    emulator: Emulator, request_line: bytes, status: int, code: str
) -> None:
    request = request_line + b"\r\nHost: x\r\nAuthorization: test-key\r\nConnection: close\r\n\r\n"
    got, headers, body = raw_exchange(emulator, request)
    assert (got, body["error"]["code"]) == (status, code)
    assert headers["Content-Type"] == "application/json"
    assert set(body["error"]) == {"code", "message", "details"}


# --- auth --------------------------------------------------------------------------------------


def test_auth_is_required(
    make_emulator: Callable[..., Emulator], session_for: Callable[..., ApiSession]
) -> None:
    secret = "s3cret-key-value"
    emulator = make_emulator(api_keys=(secret, "second-key"))
    for key in (None, "wrong", secret + " ", "Bearer " + secret):
        response = session_for(emulator, api_key=key).get("/v0/aois")
        assert response.status_code == 401
        error = error_of(response)
        assert error["code"] == "unauthorized"
        assert secret not in response.text
    first = session_for(emulator, api_key=secret)
    second = session_for(emulator, api_key="second-key")
    assert first.get("/v0/aois").status_code == 200
    mine = created(first, KOCHI, NDVI)
    theirs = created(second, KOCHI, NDWI)
    assert mine["user_id"] != theirs["user_id"]
    assert secret not in json.dumps([mine, theirs]) and "second-key" not in json.dumps(theirs)
    # The same key always maps to the same user.
    assert created(first, KOCHI, CHLOROPHYLL)["user_id"] == mine["user_id"]


def test_emulator_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="API key"):
        Emulator(api_keys=())
    with pytest.raises(ConfigError, match="sequence"):
        Emulator(api_keys="k")
    with pytest.raises(ConfigError, match="creation_delay"):
        Emulator(creation_delay=-1)
    with pytest.raises(ConfigError, match="not running"):
        _ = Emulator().url


# --- create ------------------------------------------------------------------------------------


def test_create_answers_the_detail_and_lists_it(api_session: ApiSession) -> None:
    response = create(api_session, KOCHI, NDVI)
    assert response.status_code == 201
    detail = response.json()
    assert set(detail) == LIST_FIELDS | {"metadata"}
    assert detail["status"] == "creating" and detail["progress"] < 100
    assert detail["metadata"] == {"legend": {}}
    assert [a["id"] for a in detail["assets"]] == [KOCHI_A, KOCHI_B]  # omitted = all assets
    assert all(a["visualization_id"] == detail["id"] for a in detail["assets"])
    listed = find(api_session, KOCHI, detail["id"])
    assert listed["status"] == "success" and listed["progress"] == 100
    assert listed["updated_at"] > detail["updated_at"]  # the status change moved it
    assert listed["created_at"] == detail["created_at"]


def test_create_with_assets_and_resolution(api_session: ApiSession) -> None:
    response = create(api_session, KOCHI, NDWI, src_asset_ids=[KOCHI_B], resolution=5)
    assert response.status_code == 201
    detail = response.json()
    assert [a["id"] for a in detail["assets"]] == [KOCHI_B]
    assert detail["assets"][0]["resolution"] == 5
    assert detail["index_name"] == "NDWI" and detail["aoi_id"] == KOCHI


def test_same_asset_set_in_another_order_is_409(api_session: ApiSession) -> None:
    first = create(api_session, KOCHI, NDVI, src_asset_ids=[KOCHI_A, KOCHI_B])
    assert first.status_code == 201
    again = create(api_session, KOCHI, NDVI, src_asset_ids=[KOCHI_B, KOCHI_A])
    assert again.status_code == 409
    error = error_of(again)
    assert error["code"] == "conflict"
    assert error["details"] == {"visualization_id": first.json()["id"]}
    # Omitted assets mean all of them: the same set again.
    assert create(api_session, KOCHI, NDVI).status_code == 409
    assert len(listing(api_session, KOCHI)) == 1


def test_omitted_assets_conflict_with_explicit_all(api_session: ApiSession) -> None:
    assert create(api_session, KOCHI, NDWI).status_code == 201
    assert create(api_session, KOCHI, NDWI, src_asset_ids=[KOCHI_B, KOCHI_A]).status_code == 409
    # A demo visualization created without assets (True-Color on all of Bengaluru).
    bengaluru_all = [
        a["id"] for a in api_session.get(f"/v0/aois/{BENGALURU}/assets").json()["assets"]
    ]
    clash = create(api_session, BENGALURU, TRUE_COLOR, src_asset_ids=bengaluru_all[::-1])
    assert clash.status_code == 409
    assert error_of(clash)["details"]["visualization_id"] == BENGALURU_TRUE_COLOR


def test_any_order_of_the_same_assets_is_409(api_session: ApiSession) -> None:
    assets = [a["id"] for a in api_session.get(f"/v0/aois/{NAGPUR}/assets").json()["assets"]]
    chosen = assets[:4]
    first = create(api_session, NAGPUR, NDWI, src_asset_ids=chosen)
    assert first.status_code == 201

    @settings(max_examples=20, deadline=None)
    @given(order=st.permutations(chosen), repeats=st.integers(1, 2))
    def check(order: list[str], repeats: int) -> None:
        again = create(api_session, NAGPUR, NDWI, src_asset_ids=list(order) * repeats)
        assert again.status_code == 409
        assert error_of(again)["details"] == {"visualization_id": first.json()["id"]}

    check()


def test_other_index_or_asset_set_is_not_a_conflict(api_session: ApiSession) -> None:
    assert create(api_session, KOCHI, NDVI, src_asset_ids=[KOCHI_A]).status_code == 201
    assert create(api_session, KOCHI, NDVI, src_asset_ids=[KOCHI_B]).status_code == 201
    assert create(api_session, KOCHI, NDWI, src_asset_ids=[KOCHI_A]).status_code == 201
    # Duplicated ids in one request are the same set.
    dup = create(api_session, KOCHI, NDVI, src_asset_ids=[KOCHI_A, KOCHI_A])
    assert dup.status_code == 409


def _create_body(**fields: Any) -> bytes:
    return json.dumps({"index_id": NDVI, **fields}).encode()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "malformed JSON"),
        (b"", "body is required"),
        (b"[1, 2]", "must be a JSON object"),
        (b"{}", "index_id: Field required"),
        (b'{"index_id": 7}', "index_id: Input should be a valid string"),
        (b'{"index_id": "nope"}', "unknown index_id 'nope'"),
        (_create_body(src_asset_ids=KOCHI_A), "src_asset_ids"),
        (_create_body(src_asset_ids=[]), "must not be empty"),
        (_create_body(src_asset_ids=[BENGALURU_A]), "not in AOI 'Kochi-Coast'"),
        (_create_body(resolution="10"), "resolution"),
        (_create_body(resolution=-3), "resolution"),
    ],
)
def test_create_validation(api_session: ApiSession, body: bytes, fragment: str) -> None:
    response = api_session.post(
        vizs(KOCHI), data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert fragment in error_of(response)["message"]
    assert listing(api_session, KOCHI) == []  # nothing was created


def test_create_on_unknown_aoi_is_404(api_session: ApiSession) -> None:
    response = create(api_session, "no-such-aoi", NDVI)
    assert response.status_code == 404
    assert error_of(response)["details"] == {"aoi_id": "no-such-aoi"}


# --- lifecycle ---------------------------------------------------------------------------------


class FakeClock:
    """A clock tests move by hand, so the lifecycle is tested without sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_creating_then_success_follows_the_clock(
    make_emulator: Callable[..., Emulator], session_for: Callable[..., ApiSession]
) -> None:
    emulator = make_emulator(creation_delay=10)
    clock = emulator.clock = FakeClock()
    session = session_for(emulator)
    detail = create(session, KOCHI, NDVI).json()
    assert (detail["status"], detail["progress"]) == ("creating", 0)
    clock.now += 5
    halfway = find(session, KOCHI, detail["id"])
    assert (halfway["status"], halfway["progress"]) == ("creating", 50)
    assert halfway["updated_at"] == detail["updated_at"]  # reading is not a change
    legend_edit = edit(
        session,
        KOCHI,
        detail["id"],
        {"visualization_mode": "theoretical", "legend": {"2025_03_03": EDITED}},
    )
    assert legend_edit.status_code == 400
    assert "still creating" in error_of(legend_edit)["message"]
    clock.now += 5
    done = find(session, KOCHI, detail["id"])
    assert (done["status"], done["progress"]) == ("success", 100)
    assert done["updated_at"] > detail["updated_at"]


def test_creation_delay_in_real_time(
    make_emulator: Callable[..., Emulator], session_for: Callable[..., ApiSession]
) -> None:
    emulator = make_emulator(creation_delay=0.2)
    session = session_for(emulator)
    viz_id = create(session, KOCHI, NDVI).json()["id"]
    seen = []
    for _ in range(100):  # bounded: at most ~5 s
        seen.append(find(session, KOCHI, viz_id)["status"])
        if seen[-1] != "creating":
            break
        time.sleep(0.05)
    assert seen[-1] == "success"
    assert set(seen) <= {"creating", "success"}


def test_outcomes_set_the_final_status(
    make_emulator: Callable[..., Emulator], session_for: Callable[..., ApiSession]
) -> None:
    emulator = make_emulator(outcomes={"NDVI": "failed", CHLOROPHYLL: "partial_success"})
    session = session_for(emulator)
    failed = created(session, KOCHI, NDVI)
    partial = created(session, KOCHI, CHLOROPHYLL)
    ok = created(session, KOCHI, NDWI)
    assert (failed["status"], partial["status"], ok["status"]) == (
        "failed",
        "partial_success",
        "success",
    )
    refused = rollback(session, KOCHI, failed["id"], NDVI, "dynamic", ["2025_03_03"])
    assert refused.status_code == 400
    assert error_of(refused)["code"] == "visualization_failed"
    partial_rollback = rollback(
        session, KOCHI, partial["id"], CHLOROPHYLL, "dynamic", ["2025_03_03"]
    )
    assert partial_rollback.status_code == 200


@pytest.mark.parametrize(
    ("outcomes", "fragment"),
    [({"Nope": "failed"}, "no index"), ({"NDVI": "exploded"}, "expected one of")],
)
def test_bad_outcomes_are_config_errors(outcomes: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Emulator(outcomes=outcomes)


# --- legends -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index_id", "modes"),
    [
        (NDVI, {"dynamic", "theoretical"}),  # preset
        (CHLOROPHYLL, {"dynamic"}),  # custom, expression_type index
        (TRUE_COLOR, set()),  # composite
        (NIR_GRAY, set()),  # grayscale
    ],
)
def test_legend_modes_per_index_kind(
    api_session: ApiSession, index_id: str, modes: set[str]
) -> None:
    viz = created(api_session, KOCHI, index_id)
    for mode in ("dynamic", "theoretical"):
        response = rollback(api_session, KOCHI, viz["id"], index_id, mode, ["2025_03_03"])
        if mode in modes:
            assert response.status_code == 200, response.text
            legend = response.json()["metadata"]["legend"]
            assert set(legend) == {"2025_03_03", "2025_09_09"}  # every asset date
            assert set(legend["2025_09_09"]) == modes
        else:
            assert response.status_code == 400
            error = error_of(response)
            assert error["code"] == "mode_not_available"
            assert f"no {mode} legend" in error["message"]


def test_put_then_patch_restores_the_auto_computed_legend(api_session: ApiSession) -> None:
    viz, dates = BENGALURU_NDVI, ["2024_05_06", "2024_11_20"]
    auto = rollback(api_session, BENGALURU, viz, NDVI, "dynamic", dates).json()["metadata"]
    assert auto["legend"]["2024_05_06"]["dynamic"] != auto["legend"]["2024_11_20"]["dynamic"]
    put = edit(
        api_session,
        BENGALURU,
        viz,
        {"visualization_mode": "dynamic", "dynamic_bins": 1, "legend": {d: EDITED for d in dates}},
    )
    assert put.status_code == 200
    edited = put.json()["legend"]
    assert edited["2024_05_06"]["dynamic"][0]["label"] == "edited"
    assert edited["2024_05_06"]["dynamic"] != auto["legend"]["2024_05_06"]["dynamic"]
    assert edited["2024_05_06"]["theoretical"] == auto["legend"]["2024_05_06"]["theoretical"]
    restored = rollback(api_session, BENGALURU, viz, NDVI, "dynamic", ["2024_05_06"]).json()
    legend = restored["metadata"]["legend"]
    assert legend["2024_05_06"] == auto["legend"]["2024_05_06"]  # exactly auto-computed again
    assert legend["2024_11_20"]["dynamic"] == edited["2024_11_20"]["dynamic"]  # not listed


def test_legends_are_deterministic_across_emulators(
    make_emulator: Callable[..., Emulator], session_for: Callable[..., ApiSession]
) -> None:
    legends = []
    for _ in range(2):
        session = session_for(make_emulator())
        response = rollback(session, BENGALURU, BENGALURU_NDVI, NDVI, "theoretical", ["2024_05_06"])
        legends.append(response.json()["metadata"])
    assert legends[0] == legends[1]
    items = legends[0]["legend"]["2024_05_06"]["theoretical"]
    assert [i["min"] for i in items] == sorted(i["min"] for i in items)
    assert items[0]["min"] == -1 and items[-1]["max"] == 1  # theoretical: the whole rescale


def test_put_null_in_dynamic_mode_means_auto(api_session: ApiSession) -> None:
    viz = BENGALURU_NDVI
    auto = rollback(api_session, BENGALURU, viz, NDVI, "dynamic", ["2024_05_06"]).json()
    edit(api_session, BENGALURU, viz, put_body("dynamic", {"2024_05_06": EDITED}, dynamic_bins=1))
    reset = edit(api_session, BENGALURU, viz, put_body("dynamic", {"2024_05_06": None}))
    assert reset.status_code == 200
    assert reset.json()["legend"]["2024_05_06"] == auto["metadata"]["legend"]["2024_05_06"]


def dynamic_legend(response: requests.Response, date: str = "2024_05_06") -> list[dict[str, Any]]:
    """The dynamic legend of ``date`` in a PUT's answer."""
    assert response.status_code == 200, response.text
    legend: list[dict[str, Any]] = response.json()["legend"][date]["dynamic"]
    return legend


@pytest.mark.parametrize("bins", [1, 2, 3, 7, 15])
def test_dynamic_bins_are_that_many_equal_bins_over_the_auto_range(
    api_session: ApiSession, bins: int
) -> None:
    viz = BENGALURU_NDVI
    patched = rollback(api_session, BENGALURU, viz, NDVI, "dynamic", ["2024_05_06"]).json()
    auto = patched["metadata"]["legend"]["2024_05_06"]["dynamic"]
    put = put_body("dynamic", {"2024_05_06": None}, dynamic_bins=bins)
    legend = dynamic_legend(edit(api_session, BENGALURU, viz, put))
    assert len(legend) == bins
    assert legend[0]["min"] == auto[0]["min"] and legend[-1]["max"] == auto[-1]["max"]
    assert all(a["max"] == b["min"] for a, b in itertools.pairwise(legend))
    widths = [item["max"] - item["min"] for item in legend]
    assert max(widths) - min(widths) < 0.001  # equal but for rounding to 4 decimals
    for field in ("area", "area_percentage"):
        assert all(item[field] >= 0 for item in legend)
        total = sum(item[field] for item in auto)
        assert sum(item[field] for item in legend) == pytest.approx(total, abs=0.01 * bins)
    colors = [item["color"] for item in legend]
    assert all(re.fullmatch("#[0-9a-f]{6}", color) for color in colors)
    assert len(set(colors)) == bins and len({item["label"] for item in legend}) == bins
    if bins > 1:  # the ramp's ends are the auto legend's
        assert (colors[0], colors[-1]) == (auto[0]["color"], auto[-1]["color"])


def test_dynamic_bins_are_the_same_every_time(api_session: ApiSession) -> None:
    put = put_body("dynamic", {"2024_05_06": None}, dynamic_bins=4)
    first = dynamic_legend(edit(api_session, BENGALURU, BENGALURU_NDVI, put))
    other = put_body("dynamic", {"2024_05_06": None}, dynamic_bins=9)
    assert dynamic_legend(edit(api_session, BENGALURU, BENGALURU_NDVI, other)) != first
    assert dynamic_legend(edit(api_session, BENGALURU, BENGALURU_NDVI, put)) == first


def test_dynamic_items_override_their_bin(api_session: ApiSession) -> None:
    viz = BENGALURU_NDVI
    put = put_body("dynamic", {"2024_05_06": None}, dynamic_bins=3)
    base = dynamic_legend(edit(api_session, BENGALURU, viz, put))
    items = [
        {"label": "dry"},
        {"color": "#123456", "min": None, "max": None},
        {"min": 0.1, "max": 0.2, "color": "#abcdef", "label": "wet"},
    ]
    put = put_body("dynamic", {"2024_05_06": items}, dynamic_bins=3)
    legend = dynamic_legend(edit(api_session, BENGALURU, viz, put))
    assert legend == [
        {**base[0], "label": "dry"},
        {**base[1], "color": "#123456"},
        {**base[2], "min": 0.1, "max": 0.2, "color": "#abcdef", "label": "wet"},
    ]


def test_as_many_dynamic_items_as_bins(api_session: ApiSession) -> None:
    put = put_body("dynamic", {"2024_05_06": EDITED * 2}, dynamic_bins=3)
    response = edit(api_session, BENGALURU, BENGALURU_NDVI, put)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert "2 legend item(s) but dynamic_bins is 3" in error["message"]
    assert error["details"] == {"date": "2024_05_06", "items": 2, "dynamic_bins": 3}


def test_theoretical_mode_ignores_dynamic_bins(api_session: ApiSession) -> None:
    put = put_body("theoretical", {"2024_05_06": EDITED}, dynamic_bins=3)
    response = edit(api_session, BENGALURU, BENGALURU_NDVI, put)
    assert response.status_code == 200, response.text
    (item,) = response.json()["legend"]["2024_05_06"]["theoretical"]
    assert {k: item[k] for k in ("min", "max", "color", "label")} == EDITED[0]


def test_updated_at_moves_on_every_change(api_session: ApiSession) -> None:
    stamps = [find(api_session, BENGALURU, BENGALURU_NDVI)["updated_at"]]
    theoretical = {"visualization_mode": "theoretical", "legend": {"2024_05_06": EDITED}}
    for _ in range(3):
        put = edit(api_session, BENGALURU, BENGALURU_NDVI, theoretical)
        assert put.status_code == 200
        stamps.append(find(api_session, BENGALURU, BENGALURU_NDVI)["updated_at"])
        patch = rollback(
            api_session, BENGALURU, BENGALURU_NDVI, NDVI, "theoretical", ["2024_05_06"]
        )
        stamps.append(patch.json()["updated_at"])
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_updated_at_is_strictly_monotonic_within_a_microsecond(emulator: Emulator) -> None:
    world = emulator.world
    with emulator.lock:
        frozen = world.clock / 1_000_000
        stamps = [world.tick(frozen) for _ in range(5)]
    assert stamps == sorted(set(stamps))


def patch_body(dates: Any = ("2024_05_06",), mode: str = "dynamic", **over: Any) -> dict[str, Any]:
    listed = list(dates) if isinstance(dates, tuple) else dates
    return {"index_id": NDVI, "dates": listed, "visualization_mode": mode, **over}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (patch_body(mode="bogus"), "visualization_mode"),
        ({"index_id": NDVI, "dates": ["2024_05_06"]}, "visualization_mode: Field required"),
        ({"index_id": NDVI, "visualization_mode": "dynamic"}, "dates: Field required"),
        ({"dates": ["2024_05_06"], "visualization_mode": "dynamic"}, "index_id: Field required"),
        (patch_body(()), "dates"),
        (patch_body("2024_05_06"), "dates"),
        (patch_body(("2024-05-06",)), "2024_05_06"),
        (patch_body(("2024_02_30",)), "2024_02_30"),
        (patch_body((20240506,)), "dates[0]"),
        (patch_body(("2023_01_01",)), "date(s) 2023_01_01"),
        (patch_body(("2025_05_02",)), "its dates: 2024_05_06, 2024_11_20"),
        (patch_body(index_id=NDWI), "not the index of visualization"),
    ],
)
def test_patch_validation(api_session: ApiSession, body: dict[str, Any], fragment: str) -> None:
    response = api_session.patch(metadata_url(BENGALURU, BENGALURU_NDVI), json=body)
    assert response.status_code == 400, response.text
    assert fragment in error_of(response)["message"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"visualization_mode": "dynamic", "legend": {"2024_05_06": EDITED}}, "dynamic_bins"),
        (put_body("dynamic", {"2024_05_06": EDITED}, dynamic_bins=16), "dynamic_bins"),
        (put_body("dynamic", {"2024_05_06": EDITED}, dynamic_bins=0), "dynamic_bins"),
        (put_body("dynamic", {"2024_05_06": EDITED}), "1 legend item(s) but dynamic_bins is 5"),
        (put_body("theoretical", {}), "at least one date"),
        (put_body("theoretical", {"2024_05_06": []}), "at least one legend item"),
        (put_body("theoretical", {"2024_05_06": None}), "only allowed in dynamic"),
        (put_body("theoretical", {"2030_01_01": EDITED}), "date(s) 2030_01_01"),
        (put_body("theoretical", {"2024-05-06": EDITED}), "2024_05_06"),
        (put_body("theoretical", {"2024_05_06": [{"min": "low"}]}), "min"),
        (put_body("sideways", {"2024_05_06": EDITED}), "visualization_mode"),
        ({"legend": {"2024_05_06": EDITED}}, "visualization_mode: Field required"),
        ({"visualization_mode": "theoretical"}, "legend: Field required"),
    ],
)
def test_put_validation(api_session: ApiSession, body: dict[str, Any], fragment: str) -> None:
    response = api_session.put(metadata_url(BENGALURU, BENGALURU_NDVI), json=body)
    assert response.status_code == 400, response.text
    assert fragment in error_of(response)["message"]


def test_put_mode_the_index_cannot_have(api_session: ApiSession) -> None:
    body = {"visualization_mode": "dynamic", "dynamic_bins": 5, "legend": {"2024_05_06": EDITED}}
    response = edit(api_session, BENGALURU, BENGALURU_TRUE_COLOR, body)
    assert response.status_code == 400
    assert error_of(response)["details"]["allowed_modes"] == []


def test_metadata_calls_404(api_session: ApiSession) -> None:
    body = {"index_id": NDVI, "dates": ["2024_05_06"], "visualization_mode": "dynamic"}
    for aoi, viz in [
        ("no-such-aoi", BENGALURU_NDVI),
        (BENGALURU, "no-such-viz"),
        (PUNE, BENGALURU_NDVI),
    ]:
        patch = api_session.patch(metadata_url(aoi, viz), json=body)
        put = api_session.put(metadata_url(aoi, viz), json={"visualization_mode": "dynamic"})
        assert (patch.status_code, put.status_code) == (404, 404)
        assert error_of(patch)["code"] == "not_found"


# --- persistence -------------------------------------------------------------------------------


def test_state_survives_a_restart(
    tmp_path: Path,
    make_emulator: Callable[..., Emulator],
    session_for: Callable[..., ApiSession],
) -> None:
    state = tmp_path / "state.json"
    first = make_emulator(state_file=state, api_keys=("persist-key",))
    assert state.exists()  # seeded at start
    session = session_for(first, api_key="persist-key")
    new = created(session, KOCHI, NDVI)
    edit(session, BENGALURU, BENGALURU_NDVI, put_body("theoretical", {"2024_05_06": EDITED}))
    before = find(session, BENGALURU, BENGALURU_NDVI)
    first.stop()
    assert "persist-key" not in state.read_text()
    assert not [p for p in tmp_path.iterdir() if p != state]  # no temporary files left behind

    second = make_emulator(state_file=state, api_keys=("persist-key",))
    session = session_for(second, api_key="persist-key")
    assert find(session, KOCHI, new["id"]) == new
    assert find(session, BENGALURU, BENGALURU_NDVI) == before
    assert create(session, KOCHI, NDVI).status_code == 409
    patched = rollback(session, BENGALURU, BENGALURU_NDVI, NDVI, "theoretical", ["2024_11_20"])
    theoretical = patched.json()["metadata"]["legend"]["2024_05_06"]["theoretical"]
    assert theoretical[0]["label"] == "edited"  # the manual edit survived
    assert patched.json()["updated_at"] > before["updated_at"]


def test_a_broken_state_file_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text('{"indices": "nope"}')
    with pytest.raises(ConfigError, match=r"state file .*state\.json"):
        Emulator(state_file=state)


def test_a_state_file_with_a_non_iso_asset_date_is_refused(tmp_path: Path) -> None:
    # Legend keys are derived from asset dates: another spelling would break requests later.
    data = json.loads(World.demo().to_json())
    data["aois"][0]["assets"][0]["date"] = "2024_05_06"
    state = tmp_path / "state.json"
    state.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"aois\[0\]\.assets\[0\]\.date: .*ISO date"):
        World.load_state(state)


def test_an_unwritable_state_file_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "missing" / "state.json"
    with pytest.raises(ConfigError, match=r"cannot write state file .*state\.json"):
        World.demo().save_state(state)
    assert not (tmp_path / "missing").exists()  # the emulator does not invent directories


# --- worlds ------------------------------------------------------------------------------------


def test_demo_world_shape() -> None:
    assert DEMO_WORLD.is_file()
    world = World.demo()
    assert len(world.aois) >= 3
    kinds = {(i.type, i.expression_type) for i in world.indices}
    assert {("preset", "index"), ("custom", "index"), ("custom", "composite")} <= kinds
    nagpur = world.aoi_by_name("Nagpur-Farms")
    assert nagpur is not None and len(nagpur.assets) > 10
    assert len(world.visualizations_of(nagpur.id)) > 10


MINIMAL_WORLD = """
indices:
  - {name: NDVI, type: preset, expression_type: index, expression: "(B08 - B04) / (B08 + B04)",
     rescale: [-1, 1]}
aois:
  - name: Field-1
    assets:
      - {name: One, date: 2024-05-06}
      - {name: Two, date: "2024-06-07"}
visualizations:
  - {aoi: Field-1, index: NDVI}
"""


def test_world_files_without_ids(tmp_path: Path) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(MINIMAL_WORLD)
    world, again = World.from_yaml(path), World.from_yaml(path)
    assert world.to_json() == again.to_json()  # derived ids, timestamps and legends are stable
    (viz,) = world.visualizations
    aoi = world.aois[0]
    assert viz.asset_ids == [a.id for a in aoi.assets]  # no assets = all of them
    assert set(viz.legend) == {"2024_05_06", "2024_06_07"}
    with Emulator(path) as emulator:
        response = requests.get(f"{emulator.url}/v0/aois", headers={"Authorization": "test-key"})
        assert [a["name"] for a in response.json()["aois"]] == ["Field-1"]


def world_with(old: str, new: str) -> str:
    return MINIMAL_WORLD.replace(old, new)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("indices: [", "not valid YAML"),
        ("- just a list", "expected a mapping"),
        ("aois: []", "indices: Field required"),
        (world_with("expression:", "expresion:"), "indices[0].expresion: Extra inputs"),
        (world_with("2024-05-06", "May 6th"), "aois[0].assets[0].date"),
        (world_with("type: preset", "type: fancy"), "indices[0].type"),
        (world_with("[-1, 1]", "[1, -1]"), "low < high"),
        (world_with("[-1, 1]", "[-1, 0.5]"), "indices[0].rescale"),
        (world_with("{aoi: Field-1,", "{aoi: Field-9,"), "no AOI named or with id 'Field-9'"),
        (world_with("index: NDVI}", "index: NDXI}"), "no index named"),
        (world_with("index: NDVI}", "index: NDVI, assets: [Three]}"), "has no asset 'Three'"),
        (world_with("index: NDVI}", "index: NDVI, status: creating}"), "status"),
        (world_with("name: Two", "name: One"), "asset of AOI 'Field-1' name 'One' is used twice"),
        (world_with("  - name: Field-1", "  - name: Field-1\n    project: Gamma"), "no project"),
        (MINIMAL_WORLD + "  - {aoi: Field-1, index: NDVI, assets: [Two, One]}", "duplicates"),
    ],
)
def test_bad_world_files(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad-world.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as caught:
        World.from_yaml(path)
    message = str(caught.value)
    assert str(path) in message
    assert fragment in message


def test_missing_world_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read world file"):
        Emulator(tmp_path / "nope.yaml")


# --- request counter ---------------------------------------------------------------------------


def test_counter_counts_every_request(emulator: Emulator, api_session: ApiSession) -> None:
    api_session.get("/v0/aois")
    api_session.get(vizs(NAGPUR))
    api_session.get(vizs(PUNE), params={"offset": 10})
    create(api_session, KOCHI, NDVI)
    requests.get(f"{emulator.url}/v0/aois")  # unauthorized still counts
    api_session.get("/v0/what")
    counter = emulator.counter
    assert counter.total == 6
    assert counter.count("GET", "/v0/aois/{aoi_id}/visualizations") == 2
    assert counter.count(route="/v0/aois") == 2
    assert counter.count("POST") == 1
    assert counter.snapshot() == {
        "GET /v0/aois": 2,
        "GET /v0/aois/{aoi_id}/visualizations": 2,
        "GET <unknown>": 1,
        "POST /v0/aois/{aoi_id}/visualizations": 1,
    }
    over_http = requests.get(f"{emulator.url}/_emulator/requests").json()
    assert over_http["total"] == 6 and over_http["requests"] == counter.snapshot()
    assert counter.total == 6  # reading the counter is not counted
    assert over_http["create_conflicts"] == 0
    assert create(api_session, KOCHI, NDVI).status_code == 409
    assert requests.get(f"{emulator.url}/_emulator/requests").json()["create_conflicts"] == 1
    reset = requests.post(f"{emulator.url}/_emulator/reset-counter").json()
    assert reset["total"] == 0 and counter.total == 0 and reset["create_conflicts"] == 0
    assert requests.get(f"{emulator.url}/_emulator/nothing").status_code == 404
    counter.add("GET", "/v0/aois")
    counter.reset()
    assert counter.snapshot() == {}


# --- CLI ---------------------------------------------------------------------------------------


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    """Start `reconciler emulator` on a free port; return the process, its URL and output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines = []
    assert process.stdout is not None
    for _ in range(20):  # bounded: the banner is a handful of lines
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Press Ctrl-C"):
            break
    match = next((m for line in lines if (m := re.search(r"http://127\.0\.0\.1:\d+", line))), None)
    if match is None:
        process.kill()
        pytest.fail(f"no URL in the emulator's output: {lines} {process.communicate()}")
    return process, match.group(0), lines


def _stop_cli(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, out, err


@pytest.mark.slow
def test_cli_serves_until_ctrl_c() -> None:
    process, url, banner = _start_cli("--api-key", "k", "--api-key", "k2")
    try:
        assert "API key: k (and 1 more)" in banner
        assert f"Try: curl -H 'Authorization: k' {url}/v0/aois" in banner
        ok = requests.get(f"{url}/v0/aois", headers={"Authorization": "k"}, timeout=10)
        assert [a["name"] for a in ok.json()["aois"]][:2] == ["Bengaluru-North", "Pune-East"]
        denied = requests.get(f"{url}/v0/aois", timeout=10)
        assert denied.status_code == 401 and "error" in denied.json()
        create_body = {"index_id": NDVI}
        headers = {"Authorization": "k2"}
        first = requests.post(f"{url}{vizs(PUNE)}", json=create_body, headers=headers, timeout=10)
        second = requests.post(f"{url}{vizs(PUNE)}", json=create_body, headers=headers, timeout=10)
        assert (first.status_code, second.status_code) == (201, 409)
        bogus = {"index_id": NDWI, "dates": ["2024_06_01"], "visualization_mode": "bogus"}
        patch = requests.patch(
            f"{url}{metadata_url(PUNE, '1532fbc7-71c6-5a5e-b8b9-3814b5e9cfeb')}",
            json=bogus,
            headers=headers,
            timeout=10,
        )
        assert patch.status_code == 400
    finally:
        code, out, err = _stop_cli(process)
    assert code == 0, err
    assert "Emulator stopped." in out
    assert "Traceback" not in err


@pytest.mark.slow
def test_cli_generates_a_key_and_keeps_state(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    process, url, banner = _start_cli("--state-file", str(state), "--creation-delay", "0")
    try:
        key = next(line.split(": ", 1)[1] for line in banner if line.startswith("API key: "))
        assert len(key) >= 16
        response = requests.post(
            f"{url}{vizs(KOCHI)}",
            json={"index_id": NDVI},
            headers={"Authorization": key},
            timeout=10,
        )
        assert response.status_code == 201
    finally:
        code, _, err = _stop_cli(process)
    assert code == 0, err
    assert key not in state.read_text()
    assert response.json()["id"] in state.read_text()


def test_cli_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("emulator", "--port", str(port))
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--faults", "5xx,meteor"], "meteor"),
        (["--outcome", "NDVI"], "INDEX=STATUS"),
        (["--fault-rate", "2"], "fault-rate"),
    ],
)
def test_cli_usage_errors(args: list[str], fragment: str) -> None:
    result = run_cli("emulator", "--port", "0", *args)
    assert result.exit_code == 1  # as every usage error: 2 means "changes"
    assert fragment in result.output


def test_cli_bad_world_file(tmp_path: Path) -> None:
    world = tmp_path / "w.yaml"
    world.write_text("aois: []\n")
    result = run_cli("emulator", "--port", "0", "--world", str(world))
    assert result.exit_code == 1
    assert "w.yaml is invalid" in result.output and "indices" in result.output
    assert "Traceback" not in result.output


def test_world_lookups_follow_changes_to_its_lists() -> None:
    world = World.demo()
    nagpur = world.aoi_by_name("Nagpur-Farms")
    assert nagpur is not None
    first = world.visualizations_of(nagpur.id)[0]
    assert world.visualization(nagpur.id, first.id) is first
    assert world.find_same(nagpur.id, first.index_id, reversed(first.asset_ids)) is first

    world.visualizations = [v for v in world.visualizations if v.id != first.id]

    assert world.visualization(nagpur.id, first.id) is None
    assert world.find_same(nagpur.id, first.index_id, first.asset_ids) is None
    assert first not in world.visualizations_of(nagpur.id)
