"""Legends as the client reads them (reconciler/api/legends.py): pure, one rule per test.

The same legend read from metadata JSON and from the SLD endpoint is one ``Legend`` with one
fingerprint: proved for every legend the emulator writes (auto-computed, re-binned, edited,
with gaps, drawn by hypothesis) through the emulator's own ``views.sld``. Hostile documents
(not XML, entity bombs, external entities, shapes we cannot read) are ``InvalidResponseError``
naming the call, with at most a short excerpt of what was sent.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.api.legends import (
    MAX_BINS,
    Legend,
    LegendBin,
    fingerprint,
    legend_from_items,
    legend_from_sld,
    legends_from_metadata,
    legends_from_sld_answer,
)
from reconciler.emulator import views
from reconciler.emulator.legends import MODES, Mode, auto_legend, equal_bins
from reconciler.emulator.world import World
from reconciler.errors import InvalidResponseError

WHAT = "POST /v0/aois/a-1/visualizations/v-1/sld"
SLD_NS = "http://www.opengis.net/sld"
ITEMS: list[dict[str, Any]] = [
    {"min": -1, "max": 0.2, "color": "#D7191C", "label": "Low", "area": 10.5},
    {"min": 0.2, "max": 1.0, "color": "#1a9641", "label": "High", "area": 3},
]
LEGEND: Legend = (
    LegendBin(-1.0, 0.2, "#d7191c", "Low"),
    LegendBin(0.2, 1.0, "#1a9641", "High"),
)
INDEX = World.demo().indices[0]


def sld(*entries: str, color_map: str = '<ColorMap type="intervals">', ns: str = SLD_NS) -> str:
    """An SLD document around ColorMapEntry elements, as a third party might write one."""
    xmlns = f' xmlns="{ns}"' if ns else ""
    return (
        f'<?xml version="1.0"?><StyledLayerDescriptor{xmlns} version="1.0.0"><NamedLayer>'
        "<UserStyle><FeatureTypeStyle><Rule><RasterSymbolizer>"
        f"{color_map}{''.join(entries)}</ColorMap>"
        "</RasterSymbolizer></Rule></FeatureTypeStyle></UserStyle></NamedLayer>"
        "</StyledLayerDescriptor>"
    )


def entry(quantity: str, color: str = "#000000", label: str = "", opacity: str = "1") -> str:
    parts = f'color="{color}" quantity="{quantity}" label="{label}" opacity="{opacity}"'
    return f"<ColorMapEntry {parts}/>"


def refused(document: str) -> str:
    """The message of the ``InvalidResponseError`` reading ``document`` must raise."""
    with pytest.raises(InvalidResponseError) as info:
        legend_from_sld(document, what=WHAT)
    message = str(info.value)
    assert message.startswith(WHAT), message
    return message


# --- the same legend, either way ---------------------------------------------------------------


def test_items_become_normalised_bins() -> None:
    assert legend_from_items(ITEMS) == LEGEND


def test_sld_quantities_are_the_json_numbers() -> None:
    spelt = sld(
        entry("-1.000", opacity="0"),
        entry("0.20", "#d7191c", "Low"),
        entry("1", "#1A9641", "High"),
    )
    assert legend_from_sld(spelt, what=WHAT) == LEGEND
    assert fingerprint(legend_from_sld(spelt, what=WHAT)) == fingerprint(legend_from_items(ITEMS))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (0.2, 0.20000000001),  # beyond 6 significant digits
        (1, 1.0),
        (-0.0, 0),
        (1234567, 1234570),
    ],
)
def test_numbers_compare_to_six_significant_digits(first: float, second: float) -> None:
    def one(bound: float) -> Legend:
        return legend_from_items([{"min": bound, "max": 2e6, "color": "#000", "label": ""}])

    assert one(first) == one(second)
    assert fingerprint(one(first)) == fingerprint(one(second))


def test_colours_are_lower_case_rrggbb() -> None:
    items = [{"color": c} for c in ("#ABC", " #AbCdEf ", "Red", "#abcd")]
    assert [b.color for b in legend_from_items(items)] == ["#aabbcc", "#abcdef", "red", "#abcd"]


def test_missing_parts_are_none_or_empty_and_areas_do_not_count() -> None:
    assert legend_from_items([{}]) == (LegendBin(None, None, "", ""),)
    assert legend_from_items([{**ITEMS[0], "area": 99, "area_percentage": 1}]) == LEGEND[:1]


def test_the_first_bin_without_a_start_has_no_min() -> None:
    read = legend_from_sld(sld(entry("0", "#fff", "a"), entry("1", "#000", "b")), what=WHAT)
    assert read == (LegendBin(None, 0.0, "#ffffff", "a"), LegendBin(0.0, 1.0, "#000000", "b"))


def test_a_transparent_entry_starts_the_next_bin_and_a_last_one_ends_nothing() -> None:
    document = sld(
        entry("0", opacity="0"),
        entry("1", "#111111", "a"),
        entry("2", opacity="0.0"),  # a gap from 1 to 2
        entry("3", "#222222", "b"),
        entry("4", opacity="0"),  # values above 3 are transparent: no bin
    )
    assert legend_from_sld(document, what=WHAT) == (
        LegendBin(0.0, 1.0, "#111111", "a"),
        LegendBin(2.0, 3.0, "#222222", "b"),
    )


def test_an_entry_without_opacity_is_drawn() -> None:
    document = sld('<ColorMapEntry color="#fff" quantity="1" label="x"/>')
    assert legend_from_sld(document, what=WHAT) == (LegendBin(None, 1.0, "#ffffff", "x"),)


@pytest.mark.parametrize("ns", ["", SLD_NS, "urn:elsewhere"])
def test_elements_match_on_local_names(ns: str) -> None:
    assert len(legend_from_sld(sld(entry("1", "#fff", "x"), ns=ns), what=WHAT)) == 1


def test_a_prefixed_document_reads_the_same() -> None:
    document = (
        f'<sld:StyledLayerDescriptor xmlns:sld="{SLD_NS}"><sld:ColorMap sld:type="intervals">'
        '<sld:ColorMapEntry color="#fff" quantity="0" opacity="0"/>'
        '<sld:ColorMapEntry sld:color="#000" sld:quantity="1" sld:label="x"/>'
        "</sld:ColorMap></sld:StyledLayerDescriptor>"
    )
    assert legend_from_sld(document, what=WHAT) == (LegendBin(0.0, 1.0, "#000000", "x"),)


def test_entries_outside_the_color_map_are_not_bins() -> None:
    document = sld(entry("1", "#fff", "x"), "<Other>" + entry("2", "#000", "y") + "</Other>")
    document = document.replace("</StyledLayerDescriptor>", entry("3") + "</StyledLayerDescriptor>")
    assert [b.label for b in legend_from_sld(document, what=WHAT)] == ["x"]


@pytest.mark.parametrize(
    "change",
    [{"min": -0.9}, {"max": 0.3}, {"color": "#d7191d"}, {"label": "Low "}, {"label": "low"}],
)
def test_every_part_of_a_bin_is_in_the_fingerprint(change: dict[str, Any]) -> None:
    changed = [{**ITEMS[0], **change}, ITEMS[1]]
    assert fingerprint(legend_from_items(changed)) != fingerprint(LEGEND)


def test_order_and_count_are_in_the_fingerprint() -> None:
    assert fingerprint(LEGEND[::-1]) != fingerprint(LEGEND)
    assert fingerprint(LEGEND[:1]) != fingerprint(LEGEND) != fingerprint(())


def test_a_fingerprint_is_short_stable_hex() -> None:
    assert re.fullmatch("[0-9a-f]{16}", fingerprint(LEGEND))
    assert fingerprint(LEGEND) == fingerprint(legend_from_items(ITEMS))
    # Stored in state files: the same legend must keep its fingerprint across releases.
    assert fingerprint(LEGEND) == "d0ee78001a8d536e"


# --- everything the emulator writes reads back as its items ------------------------------------


def round_trip(items: list[dict[str, Any]], mode: str = "dynamic") -> None:
    document = views.sld(INDEX, mode, "2024_05_06", items)
    read = legend_from_sld(document, what=WHAT)
    assert read == legend_from_items(items)
    assert fingerprint(read) == fingerprint(legend_from_items(items))


def auto(mode: Mode, assets: tuple[str, ...], rescale: tuple[int, int]) -> list[dict[str, Any]]:
    made = auto_legend(
        index_id=INDEX.id, mode=mode, asset_ids=assets, rescale=rescale, area_in_sq_m=1e6
    )
    return [dict(item) for item in made]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rescale", [(-1, 1), (0, 1), (0, 255), (-10000, 10000)])
@pytest.mark.parametrize("assets", [("a",), ("a", "b"), ("x", "y", "z")])
def test_auto_computed_legends_read_back_as_their_items(
    mode: Mode, rescale: tuple[int, int], assets: tuple[str, ...]
) -> None:
    round_trip(auto(mode, assets, rescale), mode)


@pytest.mark.parametrize("bins", range(1, 16))
def test_dynamic_bins_read_back_as_their_items(bins: int) -> None:
    round_trip(equal_bins(auto("dynamic", ("a",), (-1, 1)), bins))


@pytest.mark.parametrize(
    "edit",
    [
        [{"min": -1, "max": -0.5, "color": "#000", "label": "a"}, {"min": 0, "max": 1}],  # gap
        [{"min": 0, "max": 0.6, "label": "a"}, {"min": 0.4, "max": 1, "label": "b"}],  # overlap
        [{"min": 0.5, "max": 0.25, "color": "#FFFFFF", "label": "backwards"}],
        [{"min": 1, "max": 1.0, "label": "empty"}, {"min": 1.0, "max": 2}],
        [{"label": "tab\tnew\nline\r<&>\"'"}, {"label": "\x00\x1f\ufffe control"}],
    ],
)
def test_edited_legends_read_back_as_their_items(edit: list[dict[str, Any]]) -> None:
    base = auto("theoretical", ("a",), (-1, 1))
    round_trip([{**base[min(i, 4)], **item} for i, item in enumerate(edit)], "theoretical")


bounds = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False),
)
legend_items = st.lists(
    st.fixed_dictionaries(
        {"min": bounds, "max": bounds, "color": st.text(max_size=9), "label": st.text(max_size=20)}
    ),
    max_size=15,
)


@settings(max_examples=200, deadline=None)
@given(items=legend_items)
def test_any_legend_the_emulator_writes_reads_back_as_its_items(
    items: list[dict[str, Any]],
) -> None:
    round_trip(items)


# --- what is refused, and how ------------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<StyledLayerDescriptor><ColorMap type="intervals">
<ColorMapEntry color="#000" quantity="1" label="&lol9;"/></ColorMap></StyledLayerDescriptor>"""

QUADRATIC = (
    f'<!DOCTYPE x [<!ENTITY a "{"x" * 50_000}">]><StyledLayerDescriptor><ColorMap '
    f'type="intervals"><ColorMapEntry quantity="1" label="{"&a;" * 50_000}"/></ColorMap>'
    "</StyledLayerDescriptor>"
)
EXTERNAL = (
    '<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]><StyledLayerDescriptor>'
    '<ColorMap type="intervals"><ColorMapEntry quantity="1" label="&secret;"/></ColorMap>'
    "</StyledLayerDescriptor>"
)


@pytest.mark.parametrize("document", [BILLION_LAUGHS, QUADRATIC, EXTERNAL])
def test_a_dtd_is_refused_so_no_entity_is_expanded(document: str) -> None:
    message = refused(document)
    assert "DTD" in message
    assert "lol" not in message and "root:" not in message


def test_the_stdlib_parser_alone_refuses_a_billion_laughs_too() -> None:
    # Why no defusedxml: even without the DTD refusal, expat (>= 2.4) stops the expansion.
    with pytest.raises(ET.ParseError, match="amplification"):
        ET.fromstring(BILLION_LAUGHS)


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ("", "not XML"),
        ("{}", "not XML"),
        ("<a><b></a>", "not XML (mismatched tag"),
        ("<StyledLayerDescriptor>&nbsp;</StyledLayerDescriptor>", "not XML (undefined entity"),
        ("<sld:ColorMap/>", "not XML (unbound prefix"),
        ("<StyledLayerDescriptor/>", "no ColorMap"),
        (sld(entry("1"), color_map="<ColorMap>"), "type 'ramp', not 'intervals'"),
        (sld(entry("1"), color_map='<ColorMap type="values">'), "type 'values'"),
        (sld(entry("one")), "ColorMapEntry 1 has quantity 'one', not a number"),
        (sld(entry("0", opacity="0"), entry("nan")), "ColorMapEntry 2 has quantity 'nan'"),
        (sld(entry("inf")), "quantity 'inf'"),
        (sld(entry("1_0")), "quantity '1_0'"),
        (sld(entry("1e400")), "not a finite number"),
        (sld('<ColorMapEntry color="#fff" label="x"/>'), "has quantity none, not a number"),
        (sld(entry("1", opacity="half")), "has opacity 'half', not a number"),
        (
            sld(entry("1")).replace("</RasterSymbolizer>", "<ColorMap/></RasterSymbolizer>"),
            "more than one ColorMap",
        ),
    ],
)
def test_what_cannot_be_read_is_refused_saying_why(document: str, fragment: str) -> None:
    assert fragment in refused(document)


def test_more_bins_than_any_legend_has_are_refused() -> None:
    document = sld(*(entry(str(i), "#000", "x") for i in range(MAX_BINS + 1)))
    assert f"more than {MAX_BINS} bins" in refused(document)


def test_a_refusal_quotes_only_a_short_excerpt() -> None:
    message = refused("not xml " + "x" * 100_000)
    assert len(message) < 300 and "not xml" in message
    label = "y" * 100_000
    message = refused(sld(f'<ColorMapEntry quantity="{label}"/>'))
    assert len(message) < 300


def test_a_document_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidResponseError, match="is a list, not a string"):
        legend_from_sld([], what=WHAT)  # type: ignore[arg-type]


# --- metadata ----------------------------------------------------------------------------------


def test_metadata_becomes_mode_then_iso_date() -> None:
    metadata = {
        "legend": {
            "2024_05_06": {"dynamic": ITEMS, "theoretical": ITEMS[:1]},
            "2024_11_20": {"dynamic": ITEMS[1:], "theoretical": None},
        }
    }
    assert legends_from_metadata(metadata, what="PUT m") == {
        "dynamic": {"2024-05-06": LEGEND, "2024-11-20": LEGEND[1:]},
        "theoretical": {"2024-05-06": LEGEND[:1]},
    }


@pytest.mark.parametrize("metadata", [None, {}, {"legend": None}, {"legend": {}}])
def test_metadata_without_legends_has_none(metadata: Any) -> None:
    assert legends_from_metadata(metadata, what="PUT m") == {}


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ([], "the metadata is a list, not an object"),
        ({"legend": []}, "'legend' is a list, not an object"),
        ({"legend": {"2024-05-06": {}}}, "key '2024-05-06' is not a date like 2024_05_06"),
        ({"legend": {"2024_02_30": {}}}, "key '2024_02_30' is not a date"),
        ({"legend": {"2024_05_06": []}}, "legend.2024_05_06 is a list, not an object"),
        ({"legend": {"2024_05_06": {"dynamic": {}}}}, "the legend is an object, not a list"),
        ({"legend": {"2024_05_06": {"dynamic": [1]}}}, "item 1 is the number 1, not an object"),
        ({"legend": {"2024_05_06": {"dynamic": [{"min": "0"}]}}}, "item 1's min is a string"),
        ({"legend": {"2024_05_06": {"dynamic": [{"max": True}]}}}, "max is a boolean"),
        ({"legend": {"2024_05_06": {"dynamic": [{}, {"color": 1}]}}}, "item 2's color is"),
        ({"legend": {"2024_05_06": {"dynamic": [{"label": []}]}}}, "label is a list"),
    ],
)
def test_metadata_of_the_wrong_shape_is_refused(metadata: Any, fragment: str) -> None:
    with pytest.raises(InvalidResponseError) as info:
        legends_from_metadata(metadata, what="PUT /v0/aois/a/visualizations/v/metadata")
    assert str(info.value).startswith("PUT /v0/aois/a/visualizations/v/metadata")
    assert fragment in str(info.value)


# --- an SLD answer -----------------------------------------------------------------------------

DOCUMENT = views.sld(INDEX, "dynamic", "2024_05_06", ITEMS)


def test_an_answer_gives_every_mode_and_date_asked_for() -> None:
    answer = {"sld": {"dynamic": {"2024_05_06": DOCUMENT, "2024_11_20": DOCUMENT}}}
    read = legends_from_sld_answer(answer, modes=["dynamic"], dates=["2024_05_06"], what=WHAT)
    assert read == {"dynamic": {"2024-05-06": LEGEND}}  # what was not asked for is not read
    answer["sld"]["theoretical"] = {"2024_05_06": "not even XML"}
    assert legends_from_sld_answer(answer, modes=["dynamic"], dates=["2024_05_06"], what=WHAT)


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (None, "no 'sld' object"),
        ({"sld": []}, "no 'sld' object"),
        ({"sld": {}}, "no object of dynamic documents"),
        ({"sld": {"dynamic": "x"}}, "no object of dynamic documents"),
        ({"sld": {"dynamic": {}}}, "no document for the dynamic legend of 2024-05-06"),
        ({"sld": {"dynamic": {"2024_05_06": 7}}}, "is the number 7, not a string of SLD"),
        ({"sld": {"dynamic": {"2024_05_06": "<x/>"}}}, "legend of 2024-05-06): the SLD has no"),
    ],
)
def test_an_answer_missing_what_was_asked_is_refused(answer: Any, fragment: str) -> None:
    with pytest.raises(InvalidResponseError) as info:
        legends_from_sld_answer(answer, modes=["dynamic"], dates=["2024_05_06"], what=WHAT)
    assert str(info.value).startswith(WHAT)
    assert fragment in str(info.value)
