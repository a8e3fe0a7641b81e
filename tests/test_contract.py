"""The emulator against the shared API contract (../shared/pixxel-api/openapi.json).

Every response the emulator sends in the emulator tests is validated as it arrives (``ApiSession``
in conftest.py). Here: a sweep that provokes every status of every operation and validates each
body against both the published and the strict contract; proof that the checker can fail; and
that routes, query parameters and request bodies are the contract's, to the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from pydantic import BaseModel

from reconciler.emulator import Emulator, FaultConfig, api
from tests.conftest import ApiSession, ContractChecker

BENGALURU = "89a291cd-7ad8-5f86-aeee-55e92b0a0f5d"
KOCHI = "a4cb9e5f-39ca-5083-b695-e628f4e8019b"
NDVI = "cb668cf4-b6fc-5c37-a944-84c62fd95299"
BENGALURU_NDVI = "f4810809-db7f-5877-9305-3e51eb6a61a3"
VIZ = "/v0/aois/{aoi_id}/visualizations"
META = "/v0/aois/{aoi_id}/visualizations/{visualization_id}/metadata"
SLD = "/v0/aois/{aoi_id}/visualizations/{visualization_id}/sld"
NEW_INDEX = {
    "name": "Red-Edge-NDVI",
    "description": "NDVI over the red edge",
    "expression": "(B08 - B05) / (B08 + B05)",
    "expression_type": "index",
    "rescale": [-1, 1],
    "colormap": "rdylgn",
    "satellite_id": "0005c5bb-0bd2-4c80-9393-4a808341c54c",
}


class BothCheckers:
    """Checks each response against the published contract and the strict one."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.plain = ContractChecker(doc, strict=False)
        self.strict = ContractChecker(doc)

    def check(self, response: requests.Response) -> None:
        self.plain.check(response)
        self.strict.check(response)


def test_every_operation_and_status_conforms(
    openapi: dict[str, Any], make_emulator: Callable[..., Emulator]
) -> None:
    emulator = make_emulator(creation_delay=60)
    checkers = BothCheckers(openapi)
    s = ApiSession(emulator.url, "test-key", checkers)
    anonymous = ApiSession(emulator.url, None, checkers)
    meta = f"/v0/aois/{BENGALURU}/visualizations/{BENGALURU_NDVI}/metadata"
    rollback = {"index_id": NDVI, "dates": ["2024_05_06"], "visualization_mode": "dynamic"}
    edit = {"visualization_mode": "theoretical", "legend": {"2024_05_06": [{"min": 0}]}}
    sld = f"/v0/aois/{BENGALURU}/visualizations/{BENGALURU_NDVI}/sld"
    both_modes = {"dates": ["2024_05_06"], "visualization_modes": ["dynamic", "theoretical"]}
    both_null = {"2024_05_06": None, "2024_11_20": None}

    s.get("/v0/aois", params={"aoi_name": "Kochi-Coast"})
    anonymous.get("/v0/aois")
    s.get(f"/v0/aoi/{KOCHI}")
    s.get("/v0/aoi/missing")
    s.get("/v0/indices", params={"limit": 100})
    s.get("/v0/indices", params={"type": "nope"})
    s.post("/v0/indices", json=NEW_INDEX)
    s.post("/v0/indices", json=NEW_INDEX)
    s.post("/v0/indices", json={**NEW_INDEX, "rescale": [1]})
    anonymous.post("/v0/indices", json=NEW_INDEX)
    s.get("/v0/indices", params={"type": "custom"})  # the new index in the listing
    s.get(f"/v0/aois/{KOCHI}/assets")
    s.get("/v0/aois/missing/assets")
    s.get(f"/v0/aois/{BENGALURU}/visualizations")
    s.get(f"/v0/aois/{BENGALURU}/visualizations", params={"limit": -1})
    s.get("/v0/aois/missing/visualizations")
    s.post(f"/v0/aois/{KOCHI}/visualizations", json={"index_id": NDVI})  # creating, metadata {}
    s.post(f"/v0/aois/{KOCHI}/visualizations", json={"index_id": NDVI})
    s.post(f"/v0/aois/{KOCHI}/visualizations", json={})
    s.post("/v0/aois/missing/visualizations", json={"index_id": NDVI})
    anonymous.post(f"/v0/aois/{KOCHI}/visualizations", json={"index_id": NDVI})
    s.get(f"/v0/aois/{KOCHI}/visualizations")  # a creating item in a listing
    s.put(meta, json=edit)
    one_of_three = {**edit, "visualization_mode": "dynamic", "dynamic_bins": 3}
    assert s.put(meta, json=one_of_three).status_code == 400
    seven = {"visualization_mode": "dynamic", "dynamic_bins": 7, "legend": both_null}
    assert len(s.put(meta, json=seven).json()["legend"]["2024_11_20"]["dynamic"]) == 7
    later = {"dates": ["2024_11_20"], "visualization_modes": ["dynamic"]}
    document = s.post(sld, json=later).json()["sld"]["dynamic"]["2024_11_20"]
    assert document.count('opacity="1"') == 7
    s.put(meta, json={"visualization_mode": "bogus"})
    s.put(f"/v0/aois/{BENGALURU}/visualizations/missing/metadata", json=edit)
    s.patch(meta, json=rollback)
    s.patch(meta, json={**rollback, "visualization_mode": "bogus"})
    s.patch(f"/v0/aois/{BENGALURU}/visualizations/missing/metadata", json=rollback)
    s.post(sld, json=both_modes)
    s.post(sld, json={**both_modes, "dates": []})
    s.post(f"/v0/aois/{BENGALURU}/visualizations/missing/sld", json=both_modes)
    anonymous.post(sld, json=both_modes)
    s.get("/v0/unknown")
    s.delete(f"/v0/aois/{KOCHI}/visualizations")
    emulator.faults = FaultConfig(error_rate=1.0, max_faults=1)
    s.get("/v0/aois")
    emulator.faults = FaultConfig(rate_limit_rate=1.0, max_faults=1)
    s.get(f"/v0/aois/{BENGALURU}/visualizations")

    checked = {(m, t, status) for m, t, status in checkers.strict.checked}
    server_errors = {c for c in checked if c[0] == "GET" and c[1] == "/v0/aois" and c[2] >= 500}
    assert server_errors, checked
    expected = {
        ("GET", "/v0/aois", 200),
        ("GET", "/v0/aois", 401),
        ("GET", "/v0/aoi/{aoi_id}", 200),
        ("GET", "/v0/aoi/{aoi_id}", 404),
        ("GET", "/v0/indices", 200),
        ("GET", "/v0/indices", 400),
        ("POST", "/v0/indices", 201),
        ("POST", "/v0/indices", 400),
        ("POST", "/v0/indices", 401),
        ("POST", "/v0/indices", 409),
        ("GET", "/v0/aois/{aoi_id}/assets", 200),
        ("GET", "/v0/aois/{aoi_id}/assets", 404),
        ("GET", VIZ, 200),
        ("GET", VIZ, 400),
        ("GET", VIZ, 404),
        ("GET", VIZ, 429),
        ("POST", VIZ, 201),
        ("POST", VIZ, 400),
        ("POST", VIZ, 401),
        ("POST", VIZ, 404),
        ("POST", VIZ, 409),
        ("DELETE", VIZ, 405),
        ("PUT", META, 200),
        ("PUT", META, 400),
        ("PUT", META, 404),
        ("PATCH", META, 200),
        ("PATCH", META, 400),
        ("PATCH", META, 404),
        ("POST", SLD, 200),
        ("POST", SLD, 400),
        ("POST", SLD, 401),
        ("POST", SLD, 404),
        ("GET", "/v0/unknown", 404),
    }
    assert expected <= checked, expected - checked


def test_the_checker_catches_broken_bodies(openapi: dict[str, Any]) -> None:
    strict, plain = ContractChecker(openapi), ContractChecker(openapi, strict=False)
    item = {
        "aoi_id": "a", "assets": [], "created_at": "t", "expression": "e",
        "expression_type": "index", "id": "i", "index_id": "x", "index_name": "n",
        "progress": 100, "rescale": [0, 1], "status": "success", "tenant_id": "t",
        "type": "custom", "updated_at": "t", "user_id": "u",
    }  # fmt: skip
    listing = {"pagination": {"limit": 10, "offset": 0, "total": 1}, "visualization": [item]}
    assert strict.errors("GET", f"/v0/aois/{KOCHI}/visualizations", 200, listing) == []

    def broken(**changes: Any) -> dict[str, Any]:
        return {**listing, "visualization": [{**item, **changes}]}

    with_metadata = broken(metadata={"legend": {}})
    assert strict.errors("GET", f"/v0/aois/{KOCHI}/visualizations", 200, with_metadata)
    without_status = {k: v for k, v in item.items() if k != "status"}
    missing = {**listing, "visualization": [without_status]}
    assert strict.errors("GET", f"/v0/aois/{KOCHI}/visualizations", 200, missing)
    bad_rescale = broken(rescale=[0.5, 1])  # the documented extras are checked too
    assert strict.errors("GET", f"/v0/aois/{KOCHI}/visualizations", 200, bad_rescale)
    for checker in (strict, plain):
        bad_enum = broken(status="done")
        assert checker.errors("GET", f"/v0/aois/{KOCHI}/visualizations", 200, bad_enum)
        bad_progress = broken(progress="100%")
        assert checker.errors("GET", f"/v0/aois/{KOCHI}/visualizations", 200, bad_progress)
        assert checker.errors("GET", "/v0/aois", 401, {"error": {"code": 401}})
        assert checker.errors("GET", "/v0/aois", 200, {"aois": "none"})
        with pytest.raises(AssertionError, match="not in the contract"):
            checker.schema_ref("GET", "/v0/aois", 204)
    assert strict.errors("GET", "/v0/aois", 404, {"error": {"code": "x", "message": "m"}})
    created = {
        **NEW_INDEX, "bands": ["B05", "B08"], "created_at": "t", "id": "i", "type": "custom",
        "updated_at": "t",
    }  # fmt: skip
    assert strict.errors("POST", "/v0/indices", 201, created) == []
    no_bands = {k: v for k, v in created.items() if k != "bands"}
    assert strict.errors("POST", "/v0/indices", 201, no_bands)
    sld = f"/v0/aois/{KOCHI}/visualizations/v/sld"
    assert strict.errors("POST", sld, 200, {"sld": {"dynamic": {"2024_05_06": "<x/>"}}}) == []
    for checker in (strict, plain):
        assert checker.errors("POST", "/v0/indices", 201, {**created, "type": "other"})
        assert checker.errors("POST", sld, 200, {"sld": {"dynamic": {"2024_05_06": 1}}})
        assert checker.errors("POST", sld, 200, {"sld": {"dynamic": "<x/>"}})


def test_routes_are_the_contract_paths(openapi: dict[str, Any]) -> None:
    for route in api.ROUTES:
        operations = openapi["paths"].get(route.template, {})
        assert route.method.lower() in operations, f"{route.method} {route.template}"


#: Contract query parameters the emulator deliberately ignores (documented in api.AoiQuery).
IGNORED_QUERY = {("/v0/aois", "created_at"), ("/v0/aois", "updated_at")}


@pytest.mark.parametrize(
    ("template", "model"),
    [
        ("/v0/aois", api.AoiQuery),
        ("/v0/indices", api.IndexQuery),
        ("/v0/aois/{aoi_id}/assets", api._Query),
        (VIZ, api.VisualizationQuery),
    ],
)
def test_query_parameters_are_the_contract_ones(
    openapi: dict[str, Any], template: str, model: type[BaseModel]
) -> None:
    parameters = openapi["paths"][template]["get"]["parameters"]
    documented = {p["name"] for p in parameters if p["in"] == "query"}
    documented -= {name for t, name in IGNORED_QUERY if t == template}
    assert set(model.model_fields) == documented


@pytest.mark.parametrize(
    ("schema", "model"),
    [
        ("atlas.VisualizationCreateRequest", api.CreateBody),
        ("atlas.VisualizationMetadataRollbackRequest", api.RollbackBody),
        ("atlas.VisualizationMetadataUpdateRequest", api.UpdateBody),
        ("atlas.LegendItemUpdateRequest", api.LegendItemIn),
        ("atlas.IndexCreateRequest", api.IndexCreateBody),
        ("atlas.SLDRequest", api.SldBody),
    ],
)
def test_request_bodies_are_the_contract_ones(
    openapi: dict[str, Any], schema: str, model: type[BaseModel]
) -> None:
    declared = openapi["components"]["schemas"][schema]
    assert set(model.model_fields) == set(declared["properties"])
    required = {name for name, field in model.model_fields.items() if field.is_required()}
    assert required == set(declared.get("required", []))
