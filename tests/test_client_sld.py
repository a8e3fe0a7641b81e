"""The client's legend calls over real HTTP: ``set_legend`` / ``update_metadata`` (PUT),
``read_sld`` (POST .../sld) against the emulator, and ``read_sld`` against a hostile server.

What a PUT answers and what the SLD endpoint reads back afterwards are the same legends, to
the fingerprint; an answer that lacks what was asked, or holds a document we cannot read, is
an ``InvalidResponseError`` naming the call, never a guess and never the key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.api.client import PixxelClient
from reconciler.api.legends import LegendBin, fingerprint, legend_from_items
from reconciler.emulator import Emulator
from reconciler.errors import ApiValidationError, InvalidResponseError
from tests.hostile import HostileServer, Reply
from tests.test_client_legends import BILLION_LAUGHS, EXTERNAL
from tests.test_emulator import BENGALURU, BENGALURU_NDVI, CHLOROPHYLL, KOCHI, NDVI

DATES = ["2024-05-06", "2024-11-20"]  # BENGALURU_NDVI's asset dates
BOTH = ["dynamic", "theoretical"]
SLD_PATH = f"/v0/aois/{BENGALURU}/visualizations/{BENGALURU_NDVI}/sld"
META_ROUTE = "/v0/aois/{aoi_id}/visualizations/{visualization_id}/metadata"
EDIT: list[dict[str, Any]] = [
    {"min": -1, "max": -0.5, "color": "#FF0000", "label": "dry"},
    {"min": 0, "max": 1, "color": "#0000ff", "label": "wet"},  # a gap from -0.5 to 0
]
KEY = "sld-hostile-key-93b1"


@pytest.fixture
def client(emulator: Emulator, api_key: str) -> Iterator[PixxelClient]:
    with PixxelClient(emulator.url, api_key, backoff_factor=0.001) as c:
        yield c


# --- against the emulator ----------------------------------------------------------------------


def test_read_sld_after_a_put_shows_the_put_legend(client: PixxelClient) -> None:
    before = client.read_sld(BENGALURU, BENGALURU_NDVI, modes=BOTH, dates=DATES)
    put = client.set_legend(BENGALURU, BENGALURU_NDVI, mode="theoretical", legend={DATES[0]: EDIT})
    assert put["theoretical"]["2024-05-06"] == legend_from_items(EDIT)
    read = client.read_sld(BENGALURU, BENGALURU_NDVI, modes=BOTH, dates=DATES)
    assert read == put  # every mode and date, exactly as the PUT answered them
    assert read["theoretical"]["2024-05-06"] != before["theoretical"]["2024-05-06"]
    assert read["dynamic"] == before["dynamic"]  # the other mode is untouched


def test_dynamic_bins_come_back_in_the_answer_and_the_sld(client: PixxelClient) -> None:
    put = client.set_legend(
        BENGALURU, BENGALURU_NDVI, mode="dynamic", legend={DATES[1]: None}, dynamic_bins=3
    )
    assert len(put["dynamic"]["2024-11-20"]) == 3
    read = client.read_sld(BENGALURU, BENGALURU_NDVI, modes=["dynamic"], dates=[DATES[1]])
    assert fingerprint(read["dynamic"]["2024-11-20"]) == fingerprint(put["dynamic"]["2024-11-20"])


def test_items_are_sent_as_given_null_bounds_included(client: PixxelClient) -> None:
    base = client.set_legend(
        BENGALURU, BENGALURU_NDVI, mode="dynamic", legend={DATES[0]: None}, dynamic_bins=2
    )["dynamic"]["2024-05-06"]
    items: list[dict[str, Any]] = [
        {"min": None, "max": None, "color": "#abcdef", "label": "a"},
        {"label": "b"},
    ]
    put = client.set_legend(
        BENGALURU, BENGALURU_NDVI, mode="dynamic", legend={DATES[0]: items}, dynamic_bins=2
    )
    # Null bounds keep the bin's own; what is left out keeps the bin's value.
    assert put["dynamic"]["2024-05-06"] == (
        LegendBin(base[0].min, base[0].max, "#abcdef", "a"),
        LegendBin(base[1].min, base[1].max, base[1].color, "b"),
    )


def test_a_rollback_reads_back_as_the_legend_before_the_edit(client: PixxelClient) -> None:
    auto = client.read_sld(BENGALURU, BENGALURU_NDVI, modes=["dynamic"], dates=DATES)
    client.set_legend(
        BENGALURU, BENGALURU_NDVI, mode="dynamic", legend={DATES[0]: EDIT}, dynamic_bins=2
    )
    edited = client.read_sld(BENGALURU, BENGALURU_NDVI, modes=["dynamic"], dates=DATES)
    assert edited != auto
    client.rollback_metadata(BENGALURU, BENGALURU_NDVI, index_id=NDVI, mode="dynamic", dates=DATES)
    assert client.read_sld(BENGALURU, BENGALURU_NDVI, modes=["dynamic"], dates=DATES) == auto


def test_dates_in_the_apis_form_are_answered_in_iso(client: PixxelClient) -> None:
    read = client.read_sld(
        BENGALURU, BENGALURU_NDVI, modes=["dynamic", "dynamic"], dates=["2024_05_06"] * 2
    )
    assert list(read) == ["dynamic"] and list(read["dynamic"]) == ["2024-05-06"]
    assert len(read["dynamic"]["2024-05-06"]) == 5


def test_update_metadata_still_answers_the_metadata(client: PixxelClient) -> None:
    meta = client.update_metadata(
        BENGALURU, BENGALURU_NDVI, mode="dynamic", legend={DATES[0]: None}, dynamic_bins=4
    )
    assert len(meta["legend"]["2024_05_06"]["dynamic"]) == 4


def test_null_outside_dynamic_mode_is_refused_and_never_sent(
    client: PixxelClient, emulator: Emulator
) -> None:
    with pytest.raises(ApiValidationError, match="dynamic mode only"):
        client.set_legend(BENGALURU, BENGALURU_NDVI, mode="theoretical", legend={DATES[0]: None})
    assert emulator.counter.count("PUT", META_ROUTE) == 0


def test_a_mode_the_index_cannot_have_is_the_apis_400(client: PixxelClient) -> None:
    viz = client.create_visualization(KOCHI, CHLOROPHYLL)
    assert client.read_sld(KOCHI, viz.id, modes=["dynamic"], dates=["2025-03-03"])
    with pytest.raises(ApiValidationError) as info:
        client.read_sld(KOCHI, viz.id, modes=["theoretical"], dates=["2025-03-03"])
    assert info.value.code == "mode_not_available"


# --- against a hostile server ------------------------------------------------------------------

FINE = '<ColorMap type="intervals"><ColorMapEntry color="#fff" quantity="1"/></ColorMap>'


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        ([], "no 'sld' object"),
        ({"sld": None}, "no 'sld' object"),
        ({"sld": {"theoretical": {"2024_05_06": FINE}}}, "no object of dynamic documents"),
        ({"sld": {"dynamic": {"2024_11_20": FINE}}}, "no document for the dynamic legend of"),
        ({"sld": {"dynamic": {"2024_05_06": ["<x/>"]}}}, "is a list, not a string of SLD"),
        ({"sld": {"dynamic": {"2024_05_06": "<html>502</html>"}}}, "the SLD has no ColorMap"),
        ({"sld": {"dynamic": {"2024_05_06": "<ColorMap"}}}, "the SLD is not XML"),
        ({"sld": {"dynamic": {"2024_05_06": BILLION_LAUGHS}}}, "DTD"),
        ({"sld": {"dynamic": {"2024_05_06": EXTERNAL}}}, "DTD"),
        ({"sld": {"dynamic": {"2024_05_06": f"{KEY} says no"}}}, "not XML"),
    ],
)
def test_an_sld_answer_we_cannot_use_is_an_invalid_response(
    hostile: HostileServer, answer: Any, fragment: str
) -> None:
    hostile.replies = [Reply.json(200, answer)]
    with (
        PixxelClient(hostile.url, KEY, retries=0) as api,
        pytest.raises(InvalidResponseError) as info,
    ):
        api.read_sld(BENGALURU, BENGALURU_NDVI, modes=["dynamic"], dates=["2024-05-06"])
    message = str(info.value)
    assert message.startswith(f"POST {SLD_PATH}"), message
    assert fragment in message
    assert KEY not in message and len(message) < 400
    assert len(hostile.requests) == 1


def test_a_put_answer_we_cannot_use_is_an_invalid_response(hostile: HostileServer) -> None:
    hostile.replies = [Reply.json(200, {"legend": {"2024_05_06": {"dynamic": "all of it"}}})]
    with (
        PixxelClient(hostile.url, KEY, retries=0) as api,
        pytest.raises(InvalidResponseError) as info,
    ):
        api.set_legend(BENGALURU, BENGALURU_NDVI, mode="dynamic", legend={DATES[0]: None})
    path = f"/v0/aois/{BENGALURU}/visualizations/{BENGALURU_NDVI}/metadata"
    assert str(info.value).startswith(f"PUT {path}: legend.2024_05_06.dynamic")
    hostile.replies = [Reply.json(200, ["not", "metadata"])]
    with PixxelClient(hostile.url, KEY, retries=0) as api, pytest.raises(InvalidResponseError):
        api.update_metadata(BENGALURU, BENGALURU_NDVI, mode="dynamic", legend={DATES[0]: None})
