"""Custom indices in the emulator over real HTTP: POST /v0/indices, its 409 and 400s, the new
index in the listing, in visualizations and in the state file, and faults on the create.

Every response received through ``ApiSession`` is also validated against the shared contract.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from reconciler.emulator import Emulator, FaultConfig, World
from reconciler.emulator.api import expression_bands
from reconciler.emulator.world import SATELLITE_ID, derived_id
from tests.conftest import ApiSession
from tests.test_emulator import KOCHI, NDVI, TIMESTAMP, create, error_of, rollback

INDICES = "/v0/indices"
TD1 = "0004ab8d-0ad1-4d62-8a3f-fe18a7000e70"
#: The fields of ``atlas.IndexCreateResponse`` and of a listed ``atlas.IndexEntity``.
INDEX_FIELDS = {
    "bands", "colormap", "created_at", "description", "expression", "expression_type", "id",
    "name", "rescale", "satellite_id", "type", "updated_at",
}  # fmt: skip
DEMO_INDEX_COUNT = 7

MakeEmulator = Callable[..., Emulator]
SessionFor = Callable[..., ApiSession]


def index_body(**changes: Any) -> dict[str, Any]:
    """A valid ``atlas.IndexCreateRequest``, with ``changes`` applied."""
    body: dict[str, Any] = {
        "name": "Red-Edge-NDVI",
        "description": "NDVI over the red edge",
        "expression": "(B08 - B05) / (B08 + B05)",
        "expression_type": "index",
        "rescale": [-1, 1],
        "colormap": "rdylgn",
        "satellite_id": SATELLITE_ID,
    }
    return {**body, **changes}


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in index_body().items() if k != field}


def all_indices(session: ApiSession, **params: str) -> list[dict[str, Any]]:
    response = session.get(INDICES, params={"limit": "100", **params})
    assert response.status_code == 200, response.text
    body = response.json()
    items: list[dict[str, Any]] = body["indices"]
    assert body["pagination"]["total"] == len(items)
    return items


def new_index(session: ApiSession, **changes: Any) -> dict[str, Any]:
    response = session.post(INDICES, json=index_body(**changes))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# --- create --------------------------------------------------------------------------------------


def test_create_answers_the_index_and_lists_it(api_session: ApiSession) -> None:
    response = api_session.post(INDICES, json=index_body())
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == INDEX_FIELDS
    sent = index_body()
    assert {k: created[k] for k in sent} == sent  # every field as sent, nothing normalised
    assert created["type"] == "custom"
    assert created["bands"] == ["B05", "B08"]
    assert created["id"] == derived_id("index", "Red-Edge-NDVI")
    assert TIMESTAMP.match(created["created_at"])
    assert created["updated_at"] == created["created_at"]

    listed = all_indices(api_session)
    assert len(listed) == DEMO_INDEX_COUNT + 1
    assert listed[-1] == created  # the listing's fields, in creation order
    assert all_indices(api_session, index_id=created["id"]) == [created]
    customs = [i["name"] for i in all_indices(api_session, type="custom")]
    assert customs[-1] == "Red-Edge-NDVI"
    assert all(i["type"] == "preset" for i in all_indices(api_session, type="preset"))


def test_the_id_comes_from_the_name_alone(
    make_emulator: MakeEmulator, session_for: SessionFor
) -> None:
    ids = [new_index(session_for(make_emulator()))["id"] for _ in range(2)]
    assert ids[0] == ids[1]
    other = new_index(session_for(make_emulator()), name="Red-Edge-NDVI-2")
    assert other["id"] != ids[0]


def test_an_id_a_world_file_gave_away_is_not_reused(tmp_path: Path) -> None:
    taken = derived_id("index", "Newcomer")
    path = tmp_path / "world.yaml"
    path.write_text(
        "indices:\n"
        f"  - {{id: {taken}, name: Old, type: preset, expression_type: index,"
        " expression: B04, rescale: [0, 1]}\n"
        "aois: [{name: Field-1}]\n"
    )
    with Emulator(path) as emulator:
        headers = {"Authorization": "test-key"}
        response = requests.post(
            emulator.url + INDICES, json=index_body(name="Newcomer"), headers=headers, timeout=10
        )
        assert response.status_code == 201, response.text
        assert response.json()["id"] not in (taken, "")
        with emulator.lock:
            assert len({i.id for i in emulator.world.indices}) == 2


@pytest.mark.parametrize(
    ("expression", "bands"),
    [
        ("(B08 - B04) / (B08 + B04)", ["B04", "B08"]),
        ("2.5 * (B08 - B04) / (B08 + 6 * B04 - 7.5 * B02 + 1)", ["B02", "B04", "B08"]),
        ("B12 + B2 + B02", ["B02", "B2", "B12"]),  # by band number, each spelling once
        ("B104/B05", ["B05", "B104"]),
        ("AB05 + B05x + B07_ + B03", ["B03"]),  # whole words only
        ("1 + 2", []),
    ],
)
def test_bands_are_the_ones_the_expression_names(expression: str, bands: list[str]) -> None:
    assert expression_bands(expression) == bands


def test_composite_and_grayscale_indices(api_session: ApiSession) -> None:
    composite = new_index(
        api_session,
        name="False-Color",
        expression="B08,B04,B03",
        expression_type="composite",
        rescale=[0, 3000],
        colormap="",
        satellite_id=TD1,
    )
    assert (composite["bands"], composite["colormap"]) == (["B03", "B04", "B08"], "")
    assert composite["satellite_id"] == TD1
    gray = new_index(api_session, name="Red-Gray", expression="B04", expression_type="grayscale")
    assert [i["name"] for i in all_indices(api_session, expression_type="grayscale")][-1] == (
        gray["name"]
    )
    assert all_indices(api_session, satellite_id=TD1) == [composite]


# --- 409 -----------------------------------------------------------------------------------------


def test_a_taken_name_is_409_naming_the_index(api_session: ApiSession) -> None:
    first = new_index(api_session)
    again = api_session.post(INDICES, json=index_body(expression="B04 / B08"))
    assert again.status_code == 409
    error = error_of(again)
    assert error["code"] == "conflict"
    assert error["details"] == {"index_id": first["id"], "name": "Red-Edge-NDVI", "type": "custom"}
    assert len(all_indices(api_session)) == DEMO_INDEX_COUNT + 1  # nothing more was created


def test_names_are_unique_across_preset_and_custom_indices(api_session: ApiSession) -> None:
    clash = api_session.post(INDICES, json=index_body(name="NDVI"))
    assert clash.status_code == 409
    assert error_of(clash)["details"] == {"index_id": NDVI, "name": "NDVI", "type": "preset"}


@pytest.mark.parametrize("name", ["ndvi", "NDVI-", "NDVl", "N D V I"])
def test_names_compare_exactly(api_session: ApiSession, name: str) -> None:
    # Case and every character count, as a unique column compares them.
    assert new_index(api_session, name=name)["name"] == name
    names = [i["name"] for i in all_indices(api_session)]
    assert names.count("NDVI") == 1 and names.count(name) == 1


# --- 400 -----------------------------------------------------------------------------------------


REQUIRED = (
    "name",
    "description",
    "expression",
    "expression_type",
    "rescale",
    "colormap",
    "satellite_id",
)


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        *[(without(field), field, "Field required") for field in REQUIRED],
        (index_body(name=""), "name", "must not be empty"),
        (index_body(name="   "), "name", "must not be empty"),
        (index_body(name=" Padded"), "name", "must not start or end with whitespace"),
        (index_body(name=7), "name", "Input should be a valid string"),
        (index_body(description=None), "description", "Input should be a valid string"),
        (index_body(rescale="0,1"), "rescale", "Input should be a valid list"),
        (index_body(rescale=[0.5, 1]), "rescale[0]", "Input should be a valid integer"),
        (index_body(rescale=[0, 1.0]), "rescale[1]", "Input should be a valid integer"),
        (index_body(rescale=[True, 2]), "rescale[0]", "Input should be a valid integer"),
        (index_body(rescale=[0, "1"]), "rescale[1]", "Input should be a valid integer"),
        (index_body(rescale=[1]), "rescale", "expected two integers [low, high] with low < high"),
        (index_body(rescale=[]), "rescale", "expected two integers"),
        (index_body(rescale=[0, 1, 2]), "rescale", "expected two integers"),
        (index_body(rescale=[1, 1]), "rescale", "got [1, 1]"),
        (index_body(rescale=[1, -1]), "rescale", "got [1, -1]"),
        (index_body(expression="1 + 2"), "expression", "must name at least one band"),
        (index_body(expression=""), "expression", "must name at least one band"),
        (index_body(expression=["B04"]), "expression", "Input should be a valid string"),
        (index_body(expression_type="ratio"), "expression_type", "Input should be 'index'"),
        (index_body(expression_type=None), "expression_type", "Input should be 'index'"),
        (index_body(colormap=3), "colormap", "Input should be a valid string"),
        (index_body(satellite_id=42), "satellite_id", "Input should be a valid string"),
        (
            index_body(satellite_id="0002a3a3-00a2-4b55-842b-44d8202c6d60"),
            "satellite_id",
            "unknown satellite '0002a3a3-00a2-4b55-842b-44d8202c6d60'; known: "
            f"{TD1} (Pixxel-TD1), {SATELLITE_ID} (Pixxel-TD2)",
        ),
    ],
)
def test_create_validation(
    api_session: ApiSession, body: dict[str, Any], field: str, fragment: str
) -> None:
    response = api_session.post(INDICES, json=body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert f"{field}: " in error["message"] and fragment in error["message"]
    assert [problem["field"] for problem in error["details"]] == [field]
    assert len(all_indices(api_session)) == DEMO_INDEX_COUNT  # nothing was created


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [(b"", "body is required"), (b"{nope", "malformed JSON"), (b"[]", "must be a JSON object")],
)
def test_a_body_that_is_no_object_is_400(
    api_session: ApiSession, raw: bytes, fragment: str
) -> None:
    response = api_session.post(INDICES, data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert fragment in error_of(response)["message"]


def test_every_problem_is_named_at_once(api_session: ApiSession) -> None:
    response = api_session.post(INDICES, json=index_body(rescale=[2, 1], expression_type="x"))
    fields = [problem["field"] for problem in error_of(response)["details"]]
    assert fields == ["rescale", "expression_type"]


def test_create_needs_the_key(
    emulator: Emulator, session_for: SessionFor, api_session: ApiSession
) -> None:
    refused = session_for(emulator, api_key=None).post(INDICES, json=index_body())
    assert refused.status_code == 401
    assert len(all_indices(api_session)) == DEMO_INDEX_COUNT


# --- the new index in use ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression_type", "modes"),
    [("index", {"dynamic"}), ("composite", set()), ("grayscale", set())],
)
def test_a_new_index_gets_the_legend_modes_of_a_custom_index(
    api_session: ApiSession, expression_type: str, modes: set[str]
) -> None:
    index = new_index(api_session, expression_type=expression_type, rescale=[0, 5])
    made = create(api_session, KOCHI, index["id"])
    assert made.status_code == 201, made.text
    assert made.json()["index_name"] == "Red-Edge-NDVI"
    assert made.json()["rescale"] == [0, 5]
    for mode in ("dynamic", "theoretical"):
        response = rollback(
            api_session, KOCHI, made.json()["id"], index["id"], mode, ["2025_03_03"]
        )
        if mode in modes:
            assert response.status_code == 200, response.text
            legend = response.json()["metadata"]["legend"]["2025_03_03"]
            assert set(legend) == modes
            bounds = [(item["min"], item["max"]) for item in legend[mode]]
            assert bounds[0][0] >= 0 and bounds[-1][1] <= 5  # computed over the index's rescale
        else:
            assert response.status_code == 400
            assert error_of(response)["details"]["allowed_modes"] == sorted(modes)


def test_a_visualization_of_a_new_index_is_409_when_made_again(api_session: ApiSession) -> None:
    index = new_index(api_session)
    first = create(api_session, KOCHI, index["id"])
    assert first.status_code == 201
    again = create(api_session, KOCHI, index["id"])
    assert again.status_code == 409
    assert error_of(again)["details"] == {"visualization_id": first.json()["id"]}


# --- persistence ---------------------------------------------------------------------------------


def test_a_new_index_survives_a_restart(
    tmp_path: Path, make_emulator: MakeEmulator, session_for: SessionFor
) -> None:
    state = tmp_path / "state.json"
    first = make_emulator(state_file=state)
    index = new_index(session_for(first))
    assert index["id"] in state.read_text()  # saved as soon as it was made
    first.stop()

    second = make_emulator(state_file=state)
    session = session_for(second)
    assert all_indices(session, index_id=index["id"]) == [index]
    assert session.post(INDICES, json=index_body()).status_code == 409
    assert create(session, KOCHI, index["id"]).status_code == 201
    assert World.load_state(state).to_json() == state.read_text()


def test_a_new_index_moves_the_clock(emulator: Emulator, api_session: ApiSession) -> None:
    with emulator.lock:
        before = emulator.world.clock
    index = new_index(api_session)
    with emulator.lock:
        (made,) = [i for i in emulator.world.indices if i.id == index["id"]]
        assert made.created_at == emulator.world.clock > before


# --- faults and the counter ----------------------------------------------------------------------


def test_a_lost_answer_still_creates_the_index(
    make_emulator: MakeEmulator, session_for: SessionFor
) -> None:
    emulator = make_emulator(faults=FaultConfig(lost_response_rate=1.0, max_faults=1))
    session = session_for(emulator)
    with pytest.raises(requests.ConnectionError):
        session.post(INDICES, json=index_body())
    listed = all_indices(session, type="custom")
    assert listed[-1]["name"] == "Red-Edge-NDVI"
    retry = session.post(INDICES, json=index_body())
    assert retry.status_code == 409  # the client's retry learns it exists, and which it is
    assert error_of(retry)["details"]["index_id"] == listed[-1]["id"]
    assert emulator.faults_injected == {"lost": 1}
    assert emulator.counter.conflicts == 1
    assert emulator.counter.count("POST", INDICES) == 2


def test_a_refused_create_spends_no_lost_answer(
    make_emulator: MakeEmulator, session_for: SessionFor
) -> None:
    emulator = make_emulator(faults=FaultConfig(lost_response_rate=1.0, max_faults=1))
    session = session_for(emulator)
    assert session.post(INDICES, json=index_body(name="NDVI")).status_code == 409
    assert session.post(INDICES, json=index_body(rescale=[1])).status_code == 400
    assert emulator.faults_injected == {"lost": 0}
    with pytest.raises(requests.ConnectionError):
        session.post(INDICES, json=index_body())


@pytest.mark.parametrize(
    ("faults", "seen"),
    [
        (FaultConfig(error_rate=1.0, max_faults=1), "server_error"),
        (FaultConfig(rate_limit_rate=1.0, max_faults=1), "rate_limited"),
        (FaultConfig(drop_rate=1.0, max_faults=1), "drop"),
    ],
)
def test_a_faulted_create_changes_nothing(
    make_emulator: MakeEmulator, session_for: SessionFor, faults: FaultConfig, seen: str
) -> None:
    emulator = make_emulator(faults=faults)
    session = session_for(emulator)
    try:
        met = error_of(session.post(INDICES, json=index_body()))["code"]
    except requests.ConnectionError:
        met = "drop"
    assert met == seen
    assert len(all_indices(session)) == DEMO_INDEX_COUNT
    assert new_index(session)["name"] == "Red-Edge-NDVI"  # the budget is spent: it goes through


def test_the_counter_sees_index_creates(emulator: Emulator, api_session: ApiSession) -> None:
    new_index(api_session)
    api_session.post(INDICES, json=index_body())
    api_session.get(INDICES)
    snapshot = requests.get(f"{emulator.url}/_emulator/requests", timeout=10).json()
    assert snapshot["requests"] == {"GET /v0/indices": 1, "POST /v0/indices": 2}
    assert snapshot["create_conflicts"] == 1


def test_indices_take_get_and_post_only(api_session: ApiSession) -> None:
    wrong = api_session.delete(INDICES)
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "GET, POST"
    assert json.loads(wrong.text)["error"]["details"] == {"allowed": ["GET", "POST"]}
