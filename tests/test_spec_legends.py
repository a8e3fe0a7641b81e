"""The spec language of custom legends and custom indices: what it takes, and every mistake
said at its position."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.spec.decls import LegendContent, LegendItemDecl
from reconciler.spec.load import load_specs, validate_specs

SATELLITE = "0005c5bb-0bd2-4c80-9393-4a808341c54c"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def problems(text: str, name: str = "s.yaml") -> list[str]:
    Path(name).write_text(textwrap.dedent(text))
    return [str(p) for p in validate_specs([name]).problems]


def with_legend(legend: str, rollback: str = "") -> str:
    body = textwrap.indent(textwrap.dedent(legend), " " * 10)
    extra = textwrap.indent(textwrap.dedent(rollback), " " * 10)
    return (
        "aois:\n"
        "  - aoi: {name: North}\n"
        "    visualizations:\n"
        "      - index: NDVI\n" + (f"        rollback:\n{extra}" if rollback else "") + ""
        "        legend:\n" + body
    )


def test_a_legend_and_an_index_are_read_into_declarations() -> None:
    Path("s.yaml").write_text(
        "indices:\n"
        "  - {name: NDRE, expression: (B08-B05)/(B08+B05), expression_type: index,\n"
        f"     rescale: [-1, 1], colormap: rdylgn, satellite: {SATELLITE}}}\n"
        + with_legend(
            """\
            - mode: theoretical
              dates: [2024-11-20, 2024-05-06]
              items:
                - {min: -1, max: 0.2, color: "#D7191C", label: Bare}
                - {min: 0.2, max: 1, color: "#1a9641"}
            - {mode: dynamic, dates: [2024-05-06], bins: 5}
            """
        )
    )
    specs = load_specs(["s.yaml"])
    (index,) = specs.indices
    assert (index.name, index.rescale, index.satellite_id, index.description) == (
        "NDRE",
        (-1, 1),
        SATELLITE,
        "",
    )
    theoretical, dynamic = specs.aois[0].visualizations[0].legends
    assert theoretical.dates == ("2024-05-06", "2024-11-20")  # sorted
    assert theoretical.content == LegendContent(
        (
            LegendItemDecl(-1, 0.2, "#d7191c", "Bare"),  # colours compare without case
            LegendItemDecl(0.2, 1, "#1a9641", None),
        )
    )
    assert dynamic.content == LegendContent((), bins=5)
    assert str(theoretical.where) == "s.yaml:9:13"
    assert dynamic.content.as_record() == {"bins": 5, "items": []}


def test_rolled_back_and_custom_on_one_date_is_an_error_at_both_positions() -> None:
    found = problems(
        with_legend(
            """\
            - mode: dynamic
              dates: [2024-05-06]
              bins: 5
            """,
            rollback="- {mode: dynamic, dates: [2024-05-06, 2024-11-20]}\n",
        )
    )
    assert found == [
        "s.yaml:6:37: the dynamic legend of 2024-05-06 is rolled back here and given a custom "
        "legend at s.yaml:9:21: it is one or the other",
        "s.yaml:9:21: the dynamic legend of 2024-05-06 is given a custom legend here and "
        "rolled back at s.yaml:6:37: it is one or the other",
    ]


def test_each_mode_asks_for_what_it_needs() -> None:
    found = problems(
        with_legend(
            """\
            - mode: theoretical
              dates: [2024-05-06]
              bins: 3
              items: [{min: -1, color: "#000000"}]
            - mode: dynamic
              dates: [2024-11-20]
            - mode: dynamic
              dates: [2024-12-01]
              bins: 3
              items: [{color: "#000000"}]
            - mode: theoretical
              dates: [2024-12-02]
            """
        )
    )
    assert found == [
        "s.yaml:8:13: 'bins' is for dynamic legends; a theoretical legend lists its ranges in "
        "'items'",
        "s.yaml:9:21: missing required key 'max': every range of a theoretical legend has both "
        "bounds",
        "s.yaml:10:13: missing required key 'bins': how many equal-interval bins (1 to 15) the "
        "dynamic legend has",
        "s.yaml:15:20: 1 item for 3 bins: give one item per bin, or none to keep the API's colours",
        "s.yaml:16:13: a theoretical legend needs 'items': its ranges, each with min, max and "
        "color",
    ]


def test_ranges_ascend_without_overlapping_and_colours_are_hex() -> None:
    found = problems(
        with_legend(
            """\
            - mode: theoretical
              dates: [2024-05-06]
              items:
                - {min: -1, max: 0.2, color: "#d7191c"}
                - {min: 0.1, max: 1, color: "#1a9641"}
                - {min: 1, max: 0.5, color: "#1a9641"}
            - mode: dynamic
              dates: [2024-11-20]
              bins: 16
            - mode: theoretical
              dates: [2024-12-01]
              items:
                - {min: 0, max: 1, color: green}
                - min: 1
                  max: 2
                  color: #00ff00
            """
        )
    )
    assert found == [
        "s.yaml:10:23: min 0.1 is below 0.2, the max of item 1: ranges must ascend without "
        "overlapping",
        "s.yaml:11:31: the range 1 … 0.5 is empty: 'max' must be above 'min'",
        "s.yaml:14:19: 'bins' must be at most 15, got 16",
        "s.yaml:18:41: expected a colour like \"#1a9641\" (# and six hex digits), got 'green' "
        "(colour names are not taken: write the colour's hex form)",
        's.yaml:21:23: expected a colour like "#1a9641" (# and six hex digits), got nothing '
        "(null) (quote it: YAML reads an unquoted # as the start of a comment)",
    ]


def test_one_date_has_one_legend_per_mode() -> None:
    found = problems(
        with_legend(
            """\
            - {mode: dynamic, dates: [2024-05-06, 2024-05-06], bins: 2}
            - {mode: dynamic, dates: [2024-05-06], bins: 3}
            """
        )
    )
    assert found == [
        "s.yaml:6:49: date 2024-05-06 is listed twice",
        "s.yaml:7:37: the dynamic legend of 2024-05-06 is also given at s.yaml:6:37; a date "
        "has one legend per mode",
    ]


def test_declarations_of_one_visualization_must_agree_on_its_legends() -> None:
    Path("a.yaml").write_text(with_legend("- {mode: dynamic, dates: [2024-05-06], bins: 5}\n"))
    Path("b.yaml").write_text(
        with_legend("- {mode: dynamic, dates: [2024-05-06, 2024-11-20], bins: 4}\n")
    )
    Path("c.yaml").write_text(
        "aois:\n  - aoi: {name: North}\n    visualizations:\n      - index: NDVI\n"
        "        rollback: [{mode: dynamic, dates: [2024-05-06]}]\n"
    )
    assert [str(p) for p in validate_specs(["a.yaml", "b.yaml"]).problems] == [
        "b.yaml:6:13: visualization NDVI over all assets on AOI 'North' is declared twice with "
        "different dynamic legends of 2024-05-06: 4 auto-computed bins here, 5 auto-computed "
        "bins at a.yaml:6:13; give a date's legend in one place",
    ]
    # Which of the two to fix is the author's choice: both places say it.
    assert [str(p) for p in validate_specs(["a.yaml", "c.yaml"]).problems] == [
        "a.yaml:6:13: visualization NDVI over all assets on AOI 'North': its dynamic legend of "
        "2024-05-06 is given a custom legend here and rolled back at c.yaml:5:20; it is one "
        "or the other",
        "c.yaml:5:20: visualization NDVI over all assets on AOI 'North': its dynamic legend of "
        "2024-05-06 is rolled back here and given a custom legend at a.yaml:6:13; it is one "
        "or the other",
    ]


def test_an_index_declaration_is_checked_field_by_field() -> None:
    found = problems(
        """\
        indices:
          - name: "NDRE "
            expression: nothing
            expression_type: indx
            rescale: [1, 1]
            colormap: ""
            satellite: sat1
          - {name: X, expression: B08, expression_type: index, rescale: [1.5, 2],
             colormap: c, satellite: 0005c5bb-0bd2-4c80-9393-4a808341c54c}
          - {name: Y, expression: B08, expression_type: index, rescale: [1],
             colormap: c, satellite: 0005c5bb-0bd2-4c80-9393-4a808341c54c}
        """
    )
    assert found == [
        "s.yaml:2:11: 'NDRE ' begins or ends with spaces; remove them",
        "s.yaml:3:17: 'nothing' names no band: an expression reads bands like B08, as in "
        "(B08-B04)/(B08+B04)",
        "s.yaml:4:22: 'expression_type' must be one of 'composite', 'index' or 'grayscale', "
        "got 'indx' (did you mean 'index'?)",
        "s.yaml:5:14: the range [1, 1] is empty: write [low, high] with low below high",
        "s.yaml:6:15: 'colormap' must not be empty",
        "s.yaml:7:16: 'sat1' is not a satellite id (a UUID like "
        "2b91399d-6edb-54ca-948b-8bddabd28ed4)",
        "s.yaml:8:66: item 1 of 'rescale' must be a whole number, got 1.5",
        "s.yaml:10:65: 'rescale' must be two whole numbers [low, high], got 1 number",
    ]


def test_one_index_declared_in_two_files_must_be_the_same_declaration() -> None:
    one = (
        "indices:\n  - {name: NDRE, expression: B08, expression_type: index, rescale: [0, 1],\n"
        f"     colormap: c, satellite: {SATELLITE}}}\n"
    )
    Path("a.yaml").write_text(one)
    Path("b.yaml").write_text(one)
    Path("c.yaml").write_text(one.replace("rescale: [0, 1]", "rescale: [0, 2]"))
    assert len(load_specs(["a.yaml", "b.yaml"]).indices) == 1
    assert [str(p) for p in validate_specs(["a.yaml", "c.yaml"]).problems] == [
        "c.yaml:2:5: index 'NDRE' is declared again, differently (rescale), at a.yaml:2:5: "
        "declare it once",
    ]


def test_an_unquoted_colour_in_flow_style_is_named_in_the_yaml_error() -> None:
    (found,) = problems(
        with_legend("- {mode: dynamic, dates: [2024-05-06], bins: 1, items: [{color: #d7191c}]}\n")
    )
    assert found.endswith(
        "line 6 has an unquoted colour #d7191c, which YAML reads as the start of a comment: "
        'quote it ("#d7191c")'
    )


def test_a_label_the_api_could_not_hand_back_is_refused() -> None:
    (found,) = problems(
        with_legend(
            '- {mode: dynamic, dates: [2024-05-06], bins: 1, items: [{color: "#000000", '
            'label: "Low\\u0001"}]}\n'
        )
    )
    assert found.endswith("a label must be printable text, without control characters or tabs")


def test_a_bad_colour_hides_none_of_the_other_problems_of_its_legend() -> None:
    found = problems(
        with_legend(
            """\
            - mode: theoretical
              dates: [2024-05-06, 2024-05-06]
              items:
                - {min: 0.5, max: 0.2, color: "1a9641"}
                - {max: 1, color: "#1a9641"}
            """
        )
    )
    assert [p.split(": ", 1)[1] for p in found] == [
        "date 2024-05-06 is listed twice",
        "the range 0.5 … 0.2 is empty: 'max' must be above 'min'",
        "expected a colour like \"#1a9641\" (# and six hex digits), got '1a9641'",
        "missing required key 'min': every range of a theoretical legend has both bounds",
    ]
    Path("good.yaml").write_text(
        with_legend(
            """\
            - mode: theoretical
              dates: [2024-05-06]
              items: [{min: 0, max: 1, color: "#1a9641", label: "\\x07"}]
            """
        )
    )
    report = validate_specs(["good.yaml"])
    assert report.partial is not None
    assert report.partial.aois[0].visualizations[0].legends == ()  # stand-ins declare nothing
