"""A visualization with a problem of its own still has its other problems found, in the same
round: each at its own position, however many items before it were left out. What its valid
pieces declare is kept, marked incomplete, for online validation (``ValidationReport.partial``);
what cannot be checked even in part is said (``unchecked``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.spec.decls import ValidationReport
from reconciler.spec.load import validate_specs
from tests.planning import write_spec

#: Every visualization here has a problem of its own, and another one beside it.
ENTANGLED = """\
aois:
  - aoi: {name: North}
    visualizations:
      - index: NDVI
        assets: [North-A, North-A]
        colour: red
      - index: NDWI
        rollback:
          - {mode: dynamic, dates: [2024-02-30, 2024-05-06, 2024-05-06]}
          - {mode: dinamic, dates: [2024-05-06]}
          - {mode: dynamic, dates: [2024-08-19]}
      - assets: [North-B, 7, North-B]
  - aoi: North
    visualizations: [{index: NDVI}]
"""


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # positions read as a user sees them: specs/spec.yaml:5:27


def _validate(tmp_path: Path, text: str) -> ValidationReport:
    write_spec(tmp_path / "specs", text)
    return validate_specs(["specs"])


def _at(report: ValidationReport) -> list[tuple[int, int, str]]:
    return [(p.where.line, p.where.column, p.message) for p in report.problems if p.where]


def test_duplicates_beside_other_problems_of_the_same_visualization_are_found(
    tmp_path: Path,
) -> None:
    found = _at(_validate(tmp_path, ENTANGLED))
    # Beside an unknown key; beside a date that does not exist (the third of the list);
    # beside a rollback whose mode is wrong (the third rollback); beside a missing index and
    # an asset that is no text (the third asset).
    assert (5, 27, "asset North-A is listed twice") in found
    assert (9, 61, "date 2024-05-06 is listed twice") in found
    assert (
        11,
        20,
        "mode 'dynamic' has two rollback entries for this visualization; merge their dates",
    ) in found
    assert (12, 30, "asset North-B is listed twice") in found
    assert len(found) == 10, found


def test_what_the_valid_pieces_declare_is_kept_for_online_checks_and_marked(
    tmp_path: Path,
) -> None:
    report = _validate(tmp_path, ENTANGLED)
    assert report.specs is None and report.partial is not None
    assert report.checkable is report.partial
    (north,) = report.partial.aois
    typo, rollbacks, unindexed = north.visualizations
    assert (typo.index, typo.incomplete) == ("NDVI", ("colour",))
    assert typo.assets is not None and [a.value for a in typo.assets] == ["North-A"]
    assert rollbacks.incomplete == ("rollback",)
    assert [(r.mode, r.dates) for r in rollbacks.rollbacks] == [("dynamic", ("2024-05-06",))]
    assert [w.line for w in rollbacks.rollbacks[0].date_wheres] == [9]
    # No index to look up; the assets that are valid are still there, cut short.
    assert (unindexed.index, unindexed.incomplete) == ("", ("index", "assets"))
    assert unindexed.assets is not None and [a.value for a in unindexed.assets] == ["North-B"]


def test_what_cannot_be_checked_even_in_part_is_said_at_its_position(tmp_path: Path) -> None:
    report = _validate(tmp_path, ENTANGLED)
    assert [str(n) for n in report.unchecked] == [
        "specs/spec.yaml:13:5: not checked against the API: the visualizations of this entry, "
        "since its 'aoi' is not valid"
    ]
    (tmp_path / "specs" / "broken.yaml").write_text("aois: [\n", encoding="utf-8")
    (tmp_path / "specs" / "selector.yaml").write_text(
        "selectors:\n  - match: {name: [North]}\n    visualizations: [{index: NDVI}]\n",
        encoding="utf-8",
    )
    unchecked = [str(n) for n in validate_specs(["specs"]).unchecked]
    assert unchecked[:2] == [
        "specs/broken.yaml:1:1: not checked against the API: this file could not be read as a spec",
        "specs/selector.yaml:2:5: not checked against the API: the visualizations of this "
        "selector, since its 'match' is not valid",
    ]


def test_an_incomplete_declaration_is_not_compared_with_another(tmp_path: Path) -> None:
    """Without its impossible date, the first would seem to roll back other dates than the
    second: a conflict nobody wrote."""
    report = _validate(
        tmp_path,
        """\
        aois:
          - aoi: {name: North}
            visualizations:
              - index: NDVI
                rollback: [{mode: dynamic, dates: [2024-05-06, 2024-02-30]}]
              - index: NDVI
                rollback: [{mode: dynamic, dates: [2024-05-06, 2024-02-28]}]
        """,
    )
    assert [m for _, _, m in _at(report)] == [
        "'2024-02-30' is not a date: February 2024 has only 29 days (the last is 2024-02-29)"
    ]


def test_valid_specs_have_no_partial_declarations(tmp_path: Path) -> None:
    report = _validate(tmp_path, "aois:\n  - aoi: {name: North}\n    visualizations: []\n")
    assert report.problems == () and report.unchecked == ()
    assert report.partial is None and report.checkable is report.specs is not None
