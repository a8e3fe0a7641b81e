"""The emulator's SLD endpoint over real HTTP: what each document says, that it follows every
legend change and comes back identical when a legend is put back, its 400s and 404s, faults.

Every response received through ``ApiSession`` is also validated against the shared contract.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.emulator import Emulator, FaultConfig
from tests.conftest import ApiSession
from tests.test_emulator import (
    BENGALURU,
    BENGALURU_NDVI,
    BENGALURU_TRUE_COLOR,
    CHLOROPHYLL,
    KOCHI,
    NAGPUR,
    NAGPUR_FAILED,
    NDVI,
    PUNE,
    create,
    edit,
    error_of,
    put_body,
    rollback,
)

SLD_NS = "{http://www.opengis.net/sld}"
SLD_ROUTE = "/v0/aois/{aoi_id}/visualizations/{visualization_id}/sld"
DATES = ["2024_05_06", "2024_11_20"]  # the dates of BENGALURU_NDVI's assets
#: What XML 1.0 cannot carry; the emulator writes U+FFFD in its place.
NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

MakeEmulator = Callable[..., Emulator]
SessionFor = Callable[..., ApiSession]
Bin = tuple[float, float, str, str]  # min, max, color, label


def sld_url(aoi: str, viz: str) -> str:
    return f"/v0/aois/{aoi}/visualizations/{viz}/sld"


def ask(session: ApiSession, aoi: str, viz: str, dates: Any, modes: Any) -> requests.Response:
    return session.post(sld_url(aoi, viz), json={"dates": dates, "visualization_modes": modes})


def slds(
    session: ApiSession,
    modes: list[str],
    dates: list[str] = DATES,
    aoi: str = BENGALURU,
    viz: str = BENGALURU_NDVI,
) -> dict[str, dict[str, str]]:
    response = ask(session, aoi, viz, dates, modes)
    assert response.status_code == 200, response.text
    documents: dict[str, dict[str, str]] = response.json()["sld"]
    return documents


def one(session: ApiSession, mode: str, date: str = "2024_05_06") -> str:
    """The SLD of one legend of BENGALURU_NDVI."""
    return slds(session, [mode], [date])[mode][date]


def fingerprint(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def parse(document: str) -> ET.Element:
    declaration, _, rest = document.partition("\n")
    assert declaration == '<?xml version="1.0" encoding="UTF-8"?>'
    root = ET.fromstring(rest)
    assert root.tag == f"{SLD_NS}StyledLayerDescriptor"
    assert root.get("version") == "1.0.0"
    return root


def bins(document: str) -> list[Bin]:
    """The legend an SLD describes, read back as an intervals ColorMap is read."""
    color_map = parse(document).find(
        f"{SLD_NS}NamedLayer/{SLD_NS}UserStyle/{SLD_NS}FeatureTypeStyle/{SLD_NS}Rule/"
        f"{SLD_NS}RasterSymbolizer/{SLD_NS}ColorMap"
    )
    assert color_map is not None and color_map.get("type") == "intervals"
    found: list[Bin] = []
    start: float | None = None
    for entry in color_map:
        assert entry.tag == f"{SLD_NS}ColorMapEntry"
        quantity = float(entry.attrib["quantity"])
        if entry.get("opacity") == "0":  # nothing is drawn below it: the next bin starts here
            assert "label" not in entry.attrib
            start = quantity
            continue
        assert start is not None, "a bin without a start"
        found.append((start, quantity, entry.attrib["color"], entry.attrib["label"]))
        start = quantity
    return found


def as_bins(items: list[dict[str, Any]]) -> list[Bin]:
    return [(float(i["min"]), float(i["max"]), i["color"], i["label"]) for i in items]


def current_legend(session: ApiSession, mode: str, date: str) -> list[dict[str, Any]]:
    """BENGALURU_NDVI's legend of (mode, date) as it is, read through a change of the OTHER
    mode (the API answers legends only to changes; a change of one mode keeps the other)."""
    if mode == "dynamic":
        response = rollback(session, BENGALURU, BENGALURU_NDVI, NDVI, "theoretical", [date])
        assert response.status_code == 200, response.text
        dynamic: list[dict[str, Any]] = response.json()["metadata"]["legend"][date][mode]
        return dynamic
    response = edit(session, BENGALURU, BENGALURU_NDVI, put_body("dynamic", {date: None}))
    assert response.status_code == 200, response.text
    theoretical: list[dict[str, Any]] = response.json()["legend"][date][mode]
    return theoretical


# --- what the documents say ----------------------------------------------------------------------


def test_every_requested_mode_and_date_is_answered(api_session: ApiSession) -> None:
    documents = slds(api_session, ["theoretical", "dynamic"])
    assert set(documents) == {"dynamic", "theoretical"}
    for mode, by_date in documents.items():
        assert set(by_date) == set(DATES)
        for date, document in by_date.items():
            style = parse(document).find(f"{SLD_NS}NamedLayer/{SLD_NS}UserStyle/{SLD_NS}Name")
            assert style is not None and style.text == f"NDVI {mode} {date}"
    assert len({d for by_date in documents.values() for d in by_date.values()}) == 4
    assert set(slds(api_session, ["dynamic"])) == {"dynamic"}  # only the modes asked for


def test_duplicates_count_once(api_session: ApiSession) -> None:
    documents = slds(api_session, ["dynamic", "dynamic"], ["2024_11_20", "2024_11_20"])
    assert list(documents) == ["dynamic"] and list(documents["dynamic"]) == ["2024_11_20"]


@pytest.mark.parametrize("mode", ["dynamic", "theoretical"])
def test_the_document_carries_the_legend(api_session: ApiSession, mode: str) -> None:
    legend = current_legend(api_session, mode, "2024_05_06")
    assert len(legend) == 5
    assert bins(one(api_session, mode)) == as_bins(legend)


def test_a_custom_index_has_a_dynamic_document_only(api_session: ApiSession) -> None:
    viz = create(api_session, KOCHI, CHLOROPHYLL).json()["id"]
    documents = slds(api_session, ["dynamic"], ["2025_03_03"], aoi=KOCHI, viz=viz)
    assert len(bins(documents["dynamic"]["2025_03_03"])) == 5
    refused = ask(api_session, KOCHI, viz, ["2025_03_03"], ["dynamic", "theoretical"])
    assert refused.status_code == 400
    error = error_of(refused)
    assert error["code"] == "mode_not_available"
    assert error["details"] == {"index_id": CHLOROPHYLL, "allowed_modes": ["dynamic"]}


def test_the_same_world_gives_the_same_documents(
    make_emulator: MakeEmulator, session_for: SessionFor
) -> None:
    first, second = (session_for(make_emulator()) for _ in range(2))
    both = ["dynamic", "theoretical"]
    assert slds(first, both) == slds(second, both)
    assert slds(first, both) == slds(first, both)  # reading changes nothing


# --- it follows the legend -----------------------------------------------------------------------

EDIT: list[dict[str, Any]] = [
    {"min": -1, "max": 0, "color": "#000000", "label": "low"},
    {"min": 0, "max": 1, "color": "#ffffff", "label": "high"},
]


def test_put_changes_it_and_a_rollback_puts_it_back(api_session: ApiSession) -> None:
    auto = {mode: one(api_session, mode) for mode in ("dynamic", "theoretical")}
    later_date = one(api_session, "theoretical", "2024_11_20")
    put = edit(api_session, BENGALURU, BENGALURU_NDVI, put_body("theoretical", {DATES[0]: EDIT}))
    assert put.status_code == 200
    edited = one(api_session, "theoretical")
    assert fingerprint(edited) != fingerprint(auto["theoretical"])
    assert bins(edited) == as_bins(EDIT)
    assert one(api_session, "dynamic") == auto["dynamic"]  # the other mode is untouched
    assert one(api_session, "theoretical", "2024_11_20") == later_date  # and the other date

    back = rollback(api_session, BENGALURU, BENGALURU_NDVI, NDVI, "theoretical", [DATES[0]])
    assert back.status_code == 200
    assert fingerprint(one(api_session, "theoretical")) == fingerprint(auto["theoretical"])


def test_putting_a_legend_back_gives_the_same_document(api_session: ApiSession) -> None:
    other = [{**EDIT[0], "label": "other"}, EDIT[1]]
    seen = []
    for legend in (EDIT, other, EDIT):
        put = put_body("dynamic", {DATES[0]: legend}, dynamic_bins=len(legend))
        assert edit(api_session, BENGALURU, BENGALURU_NDVI, put).status_code == 200
        seen.append(fingerprint(one(api_session, "dynamic")))
    assert seen[0] == seen[2] != seen[1]


def test_putting_the_auto_computed_legend_by_hand_gives_its_document(
    api_session: ApiSession,
) -> None:
    auto = one(api_session, "theoretical")
    legend = current_legend(api_session, "theoretical", DATES[0])
    by_hand = [{k: item[k] for k in ("min", "max", "color", "label")} for item in legend]
    edit(api_session, BENGALURU, BENGALURU_NDVI, put_body("theoretical", {DATES[0]: EDIT}))
    assert one(api_session, "theoretical") != auto
    put = edit(api_session, BENGALURU, BENGALURU_NDVI, put_body("theoretical", {DATES[0]: by_hand}))
    assert put.status_code == 200
    assert one(api_session, "theoretical") == auto


def test_null_in_dynamic_mode_gives_the_auto_computed_document(api_session: ApiSession) -> None:
    auto = one(api_session, "dynamic")
    edited = put_body("dynamic", {DATES[0]: EDIT}, dynamic_bins=len(EDIT))
    edit(api_session, BENGALURU, BENGALURU_NDVI, edited)
    assert one(api_session, "dynamic") != auto
    edit(api_session, BENGALURU, BENGALURU_NDVI, put_body("dynamic", {DATES[0]: None}))
    assert one(api_session, "dynamic") == auto


@pytest.mark.parametrize("count", [1, 3, 12])
def test_dynamic_bins_reach_the_document(api_session: ApiSession, count: int) -> None:
    put = put_body("dynamic", {DATES[0]: None}, dynamic_bins=count)
    response = edit(api_session, BENGALURU, BENGALURU_NDVI, put)
    assert response.status_code == 200, response.text
    legend = response.json()["legend"][DATES[0]]["dynamic"]
    assert len(legend) == count
    assert bins(one(api_session, "dynamic")) == as_bins(legend)
    assert len(bins(one(api_session, "dynamic", DATES[1]))) == 5  # the date not put


@pytest.mark.parametrize(
    "change",
    [
        {"color": "#000001"},
        {"label": "Low "},
        {"min": -0.9999},
        {"max": 0.0001},
    ],
)
def test_every_part_of_a_bin_is_in_the_document(
    api_session: ApiSession, change: dict[str, Any]
) -> None:
    edit(api_session, BENGALURU, BENGALURU_NDVI, put_body("theoretical", {DATES[0]: EDIT}))
    before = one(api_session, "theoretical")
    changed = [{**EDIT[0], **change}, EDIT[1]]
    edit(api_session, BENGALURU, BENGALURU_NDVI, put_body("theoretical", {DATES[0]: changed}))
    after = one(api_session, "theoretical")
    assert fingerprint(after) != fingerprint(before)
    assert bins(after) == as_bins(changed)


def test_a_number_has_one_spelling(api_session: ApiSession) -> None:
    floats = [{**item, "min": float(item["min"]), "max": float(item["max"])} for item in EDIT]
    documents = []
    for legend in (EDIT, floats):
        edit(api_session, BENGALURU, BENGALURU_NDVI, put_body("theoretical", {DATES[0]: legend}))
        documents.append(one(api_session, "theoretical"))
    assert documents[0] == documents[1]
    assert 'quantity="-1"' in documents[0] and 'quantity="1"' in documents[0]


def test_gaps_between_bins_are_transparent(api_session: ApiSession) -> None:
    gapped = [{**EDIT[0], "max": -0.5}, EDIT[1]]  # nothing between -0.5 and 0
    edit(api_session, BENGALURU, BENGALURU_NDVI, put_body("theoretical", {DATES[0]: gapped}))
    document = one(api_session, "theoretical")
    assert bins(document) == as_bins(gapped)
    root = parse(document)
    opacities = [e.get("opacity") for e in root.iter(f"{SLD_NS}ColorMapEntry")]
    assert opacities == ["0", "1", "0", "1"]


def test_any_label_or_colour_is_escaped(api_session: ApiSession) -> None:
    # Hypothesis runs inside the test, so the emulator fixture serves every example.
    @settings(max_examples=40, deadline=None)
    @given(label=st.text(max_size=30), color=st.text(max_size=12))
    def check(label: str, color: str) -> None:
        legend = [{"min": 0, "max": 1, "color": color, "label": label}]
        put = edit(
            api_session, BENGALURU, BENGALURU_NDVI, put_body("theoretical", {DATES[0]: legend})
        )
        assert put.status_code == 200
        (read,) = bins(one(api_session, "theoretical"))  # it parses as XML
        assert read == (0.0, 1.0, NOT_XML.sub("\ufffd", color), NOT_XML.sub("\ufffd", label))

    check()


# --- 400 and 404 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"dates": [], "visualization_modes": ["dynamic"]}, "dates: List should have at least 1"),
        ({"dates": DATES, "visualization_modes": []}, "visualization_modes: List should have"),
        ({"visualization_modes": ["dynamic"]}, "dates: Field required"),
        ({"dates": DATES}, "visualization_modes: Field required"),
        ({"dates": "2024_05_06", "visualization_modes": ["dynamic"]}, "dates: Input should be"),
        ({"dates": ["2024-05-06"], "visualization_modes": ["dynamic"]}, "dates[0]: Value error"),
        ({"dates": ["2024_02_30"], "visualization_modes": ["dynamic"]}, "2024_02_30"),
        ({"dates": ["20240506"], "visualization_modes": ["dynamic"]}, "like 2024_05_06"),
        ({"dates": [20240506], "visualization_modes": ["dynamic"]}, "dates[0]"),
        ({"dates": DATES, "visualization_modes": ["bogus"]}, "visualization_modes[0]"),
        ({"dates": DATES, "visualization_modes": "dynamic"}, "visualization_modes: Input"),
        ({"dates": ["2030_01_01"], "visualization_modes": ["dynamic"]}, "date(s) 2030_01_01"),
        (
            {"dates": ["2024_05_06", "2025_05_02"], "visualization_modes": ["dynamic"]},
            "its dates: 2024_05_06, 2024_11_20",
        ),
    ],
)
def test_sld_validation(api_session: ApiSession, body: dict[str, Any], fragment: str) -> None:
    response = api_session.post(sld_url(BENGALURU, BENGALURU_NDVI), json=body)
    assert response.status_code == 400, response.text
    assert fragment in error_of(response)["message"]


def test_an_unknown_date_is_named(api_session: ApiSession) -> None:
    response = ask(api_session, BENGALURU, BENGALURU_NDVI, ["2030_01_01", *DATES], ["dynamic"])
    error = error_of(response)
    assert error["code"] == "unknown_date"
    assert error["details"] == {"unknown_dates": ["2030_01_01"], "dates": DATES}


@pytest.mark.parametrize("mode", ["dynamic", "theoretical"])
def test_a_mode_a_composite_cannot_have_is_400(api_session: ApiSession, mode: str) -> None:
    response = ask(api_session, BENGALURU, BENGALURU_TRUE_COLOR, ["2024_05_06"], [mode])
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "mode_not_available" and f"no {mode} legend" in error["message"]
    assert error["details"]["allowed_modes"] == []


def test_a_failed_visualization_has_no_documents(api_session: ApiSession) -> None:
    dates = [
        a["date"].replace("-", "_")
        for a in api_session.get(f"/v0/aois/{NAGPUR}/assets").json()["assets"]
    ]
    response = ask(api_session, NAGPUR, NAGPUR_FAILED, dates[:1], ["dynamic"])
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "visualization_failed"
    assert "no legends to read" in error["message"]


def test_a_creating_visualization_has_no_documents_yet(
    make_emulator: MakeEmulator, session_for: SessionFor
) -> None:
    session = session_for(make_emulator(creation_delay=3600))
    viz = create(session, KOCHI, NDVI).json()["id"]
    response = ask(session, KOCHI, viz, ["2025_03_03"], ["dynamic"])
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "visualization_not_ready"
    assert "can be read once its status is success" in error["message"]


@pytest.mark.parametrize(
    ("aoi", "viz", "fragment"),
    [
        ("no-such-aoi", BENGALURU_NDVI, "AOI 'no-such-aoi' not found"),
        (BENGALURU, "no-such-viz", "visualization 'no-such-viz' not found"),
        (PUNE, BENGALURU_NDVI, "not found on AOI 'Pune-East'"),  # another AOI's
    ],
)
def test_unknown_aoi_or_visualization_is_404(
    api_session: ApiSession, aoi: str, viz: str, fragment: str
) -> None:
    response = ask(api_session, aoi, viz, ["2024_05_06"], ["dynamic"])
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "not_found" and fragment in error["message"]


def test_404_comes_before_a_bad_body(api_session: ApiSession) -> None:
    response = api_session.post(sld_url(BENGALURU, "no-such-viz"), json={})
    assert response.status_code == 404


def test_sld_needs_the_key(emulator: Emulator, session_for: SessionFor) -> None:
    anonymous = session_for(emulator, api_key=None)
    assert ask(anonymous, BENGALURU, BENGALURU_NDVI, DATES, ["dynamic"]).status_code == 401


def test_only_post(api_session: ApiSession) -> None:
    response = api_session.get(sld_url(BENGALURU, BENGALURU_NDVI))
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


# --- faults and the counter ----------------------------------------------------------------------


def test_the_counter_sees_sld_requests(emulator: Emulator, api_session: ApiSession) -> None:
    slds(api_session, ["dynamic"])
    ask(api_session, BENGALURU, BENGALURU_NDVI, [], ["dynamic"])
    assert emulator.counter.snapshot() == {f"POST {SLD_ROUTE}": 2}


@pytest.mark.parametrize(
    ("faults", "seen"),
    [
        (FaultConfig(error_rate=1.0, max_faults=1), "server_error"),
        (FaultConfig(rate_limit_rate=1.0, max_faults=1), "rate_limited"),
        (FaultConfig(drop_rate=1.0, max_faults=1), "drop"),
    ],
)
def test_faults_reach_the_sld_endpoint(
    make_emulator: MakeEmulator, session_for: SessionFor, faults: FaultConfig, seen: str
) -> None:
    emulator = make_emulator(faults=faults)
    session = session_for(emulator)
    try:
        met = error_of(ask(session, BENGALURU, BENGALURU_NDVI, DATES, ["dynamic"]))["code"]
    except requests.ConnectionError:
        met = "drop"
    assert met == seen
    assert sum(emulator.faults_injected.values()) == 1
    assert set(slds(session, ["dynamic"])) == {"dynamic"}


def test_an_sld_answer_is_never_lost(make_emulator: MakeEmulator, session_for: SessionFor) -> None:
    # Only creates lose their answers: reading an SLD again is always harmless.
    emulator = make_emulator(faults=FaultConfig(lost_response_rate=1.0))
    assert set(slds(session_for(emulator), ["dynamic"])) == {"dynamic"}
    assert emulator.faults_injected == {}
