"""The GitLab Code Quality report (``validate --format gitlab``): pure tests on problems built
by hand. GitLab reads entries by their fields and tells new problems from fixed ones by their
fingerprints, comparing a merge request's report with its target branch's."""

from __future__ import annotations

import json
from typing import Any

from reconciler.errors import Problem, Where
from reconciler.render.gitlab import render_validation_gitlab

UNKNOWN_AOI = "unknown AOI 'Bengaluru-Nort' (closest: Bengaluru-North)"


def _report(problems: list[Problem], notes: list[Problem] | None = None) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(render_validation_gitlab(problems, notes or []))
    return entries


def test_a_problem_is_an_entry_at_its_file_and_line() -> None:
    (entry,) = _report([Problem(UNKNOWN_AOI, Where("specs/a.yaml", 2, 10))])
    fingerprint = entry.pop("fingerprint")
    assert entry == {
        "description": UNKNOWN_AOI,
        "check_name": "reconciler-validate",
        "severity": "major",
        "location": {"path": "specs/a.yaml", "lines": {"begin": 2}},
    }
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0


def test_a_note_is_information() -> None:
    (entry,) = _report([], [Problem("not checked against the API: …", Where("specs/a.yaml", 9, 5))])
    assert (entry["severity"], entry["check_name"]) == ("info", "reconciler-validate-note")


def test_a_fingerprint_stays_when_lines_move_and_differs_between_problems() -> None:
    before = _report([Problem(UNKNOWN_AOI, Where("specs/a.yaml", 2, 10))])[0]["fingerprint"]
    moved = _report([Problem(UNKNOWN_AOI, Where("specs/a.yaml", 12, 10))])[0]["fingerprint"]
    assert moved == before
    elsewhere = _report([Problem(UNKNOWN_AOI, Where("specs/b.yaml", 2, 10))])[0]["fingerprint"]
    other = _report([Problem("unknown index 'NDVX'", Where("specs/a.yaml", 2, 10))])
    assert len({before, elsewhere, other[0]["fingerprint"]}) == 3


def test_two_equal_problems_in_one_file_are_two_entries_with_their_own_fingerprints() -> None:
    twice = _report(
        [
            Problem(UNKNOWN_AOI, Where("specs/a.yaml", 2, 10)),
            Problem(UNKNOWN_AOI, Where("specs/a.yaml", 9, 10)),
        ]
    )
    assert [e["location"]["lines"]["begin"] for e in twice] == [2, 9]
    assert twice[0]["fingerprint"] != twice[1]["fingerprint"]


def test_paths_are_the_repositorys_and_texts_printable() -> None:
    (entry,) = _report([Problem("unknown index 'ND\x1b[31mVI'", Where("./specs/a.yaml", 3, 1))])
    assert entry["location"]["path"] == "specs/a.yaml"
    assert entry["description"] == "unknown index 'ND\\x1b[31mVI'"


def test_a_problem_without_a_position_has_no_entry() -> None:
    assert _report([Problem("nowhere/: no such file or directory")]) == []
    assert render_validation_gitlab([], []) == "[]\n"
