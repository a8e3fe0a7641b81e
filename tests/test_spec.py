"""Spec loading and validation: one bad fixture per error case, good fixtures, file discovery.

Fixtures live in tests/fixtures/specs; tests run from that directory so the expected messages
carry the relative paths a user would see.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from reconciler.errors import SpecError, Where
from reconciler.spec import yamlsource
from reconciler.spec.decls import AoiDecl, AssetSel, RollbackDecl, Specs, VisualizationDecl
from reconciler.spec.load import load_specs, validate_specs
from reconciler.spec.models import SpecFile

FIXTURES = Path(__file__).parent / "fixtures" / "specs"
REPO = Path(__file__).parent.parent
DEMO_WORLD = REPO / "reconciler" / "emulator" / "demo_world.yaml"


@pytest.fixture(autouse=True)
def in_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)


def problems_of(*paths: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_specs(paths)
    return [str(p) for p in caught.value.problems]


# One fixture per error case: the exact `path:line:column: message` each must produce.
BAD: dict[str, list[str]] = {
    "bad-unknown-key.yaml": [
        "bad-unknown-key.yaml:5:9: unknown key 'rolback' (did you mean 'rollback'?)",
    ],
    "bad-unknown-key-far.yaml": [
        "bad-unknown-key-far.yaml:3:5: unknown key 'colour'; "
        "expected one of: aoi, visualizations, ignore",
    ],
    "bad-missing-key.yaml": [
        "bad-missing-key.yaml:4:9: missing required key 'index'",
    ],
    "bad-missing-aois.yaml": [
        "bad-missing-aois.yaml:1:1: missing required key 'aois' (or 'selectors')",
    ],
    "bad-date-invalid.yaml": [
        "bad-date-invalid.yaml:7:33: '2024-13-01' is not a date: there is no month 13 (months "
        "run from 01 to 12, as in 2024-05-06)",
    ],
    "bad-date-not-real.yaml": [
        "bad-date-not-real.yaml:7:21: '2024-02-30' is not a date: February 2024 has only 29 "
        "days (the last is 2024-02-29)",
    ],
    "bad-date-with-time.yaml": [
        "bad-date-with-time.yaml:7:21: expected a date without a time like 2024-05-06, "
        "got '2024-05-06 10:00:00'",
    ],
    "bad-date-number.yaml": [
        "bad-date-number.yaml:7:21: the number 20240506 is not a date: write 2024-05-06",
    ],
    "bad-dates-empty.yaml": [
        "bad-dates-empty.yaml:7:20: 'dates' must not be empty",
    ],
    "bad-date-twice.yaml": [
        "bad-date-twice.yaml:7:45: date 2024-05-06 is listed twice",
    ],
    "bad-mode-twice.yaml": [
        "bad-mode-twice.yaml:8:19: mode 'dynamic' has two rollback entries for this "
        "visualization; merge their dates",
    ],
    "bad-mode-unknown.yaml": [
        "bad-mode-unknown.yaml:6:19: 'mode' must be one of 'dynamic' or 'theoretical', "
        "got 'dinamic' (did you mean 'dynamic'?)",
    ],
    "bad-declared-twice.yaml": [
        "bad-declared-twice.yaml:11:20: visualization NDVI over [2024-11-20, Bengaluru-A] on AOI "
        "'Bengaluru-North' is declared twice with conflicting dynamic rollbacks: dates "
        "2024-11-20 here, dates 2024-05-06 at bad-declared-twice.yaml:6:20; roll a mode back in "
        "one place (or list the same dates and revision in both)",
    ],
    "bad-declared-twice-across": [
        "bad-declared-twice-across/b.yaml:5:9: visualization NDWI over all assets on AOI "
        "'Pune-East' is declared twice with different resolutions: 20 here, 10 at "
        "bad-declared-twice-across/a.yaml:4:9",
    ],
    "bad-version.yaml": [
        "bad-version.yaml:1:10: unsupported spec version 2; this reconciler reads version 1",
    ],
    "bad-empty.yaml": [
        "bad-empty.yaml:1:1: the file is empty; a spec file needs an 'aois' list "
        "(see 'reconciler schema')",
    ],
    "bad-comments-only.yaml": [
        "bad-comments-only.yaml:1:1: the file is empty; a spec file needs an 'aois' list "
        "(see 'reconciler schema')",
    ],
    "bad-syntax.yaml": [
        "bad-syntax.yaml:3:19: invalid YAML: expected ',' or '}', but got ':' "
        "(while parsing a flow mapping at line 2, column 10)",
    ],
    "bad-indentation.yaml": [
        "bad-indentation.yaml:5:8: invalid YAML: expected <block end>, but found "
        "'<block mapping start>' (while parsing a block collection at line 4, column 7); "
        "check the indentation of this line",
    ],
    "bad-two-documents.yaml": [
        "bad-two-documents.yaml:2:1: invalid YAML: a second document ('---') starts here; "
        "a spec file holds one",
    ],
    "bad-not-utf8.yaml": [
        "bad-not-utf8.yaml:2:23: the file is not valid UTF-8 from here on; save it as UTF-8 text",
    ],
    "bad-control-character.yaml": [
        "bad-control-character.yaml:2:27: a control or other non-printable character, which "
        "YAML does not allow; remove it",
    ],
    "bad-python-tag.yaml": [
        "bad-python-tag.yaml:2:10: unsupported YAML tag '!!python/object/apply:os.system': "
        "specs are plain YAML (mappings, lists, strings, numbers, dates); remove the tag",
    ],
    "bad-custom-tag.yaml": [
        "bad-custom-tag.yaml:2:17: unsupported YAML tag '!Ref': specs are plain YAML "
        "(mappings, lists, strings, numbers, dates); remove the tag",
    ],
    "bad-alias-bomb.yaml": [
        "bad-alias-bomb.yaml:1:32: the document expands to more than 200000 nodes (aliases "
        "expanding into a huge document?); refusing to load it",
    ],
    "bad-alias-loop.yaml": [
        "bad-alias-loop.yaml:1:7: an alias refers to a node that contains it (a loop)",
    ],
    "bad-duplicate-key.yaml": [
        "bad-duplicate-key.yaml:6:9: duplicate key 'index' (first at line 4, column 9); "
        "YAML keeps only one of them, so remove or merge the other",
    ],
    "bad-aoi-both.yaml": [
        "bad-aoi-both.yaml:2:10: give the AOI either by name ({name: ...}) or by id "
        "({id: ...}), not both",
    ],
    "bad-aoi-neither.yaml": [
        "bad-aoi-neither.yaml:2:11: unknown key 'nme' (did you mean 'name'?)",
    ],
    "bad-aoi-name-as-id.yaml": [
        "bad-aoi-name-as-id.yaml:2:10: 'Bengaluru-North' is not an AOI id (ids look like "
        "89a291cd-7ad8-5f86-aeee-55e92b0a0f5d); to give the AOI by name write "
        "aoi: {name: Bengaluru-North}",
    ],
    "bad-aoi-number.yaml": [
        "bad-aoi-number.yaml:2:10: expected an AOI id, {name: ...} or {id: ...}, got 42",
    ],
    "bad-resolution.yaml": [
        "bad-resolution.yaml:5:21: 'resolution' must be greater than 0, got -5",
    ],
    "bad-resolution-text.yaml": [
        "bad-resolution-text.yaml:5:21: 'resolution' must be a number, got '10m'",
    ],
    "bad-revision.yaml": [
        "bad-revision.yaml:8:23: 'revision' must be at least 0, got -1",
    ],
    "bad-selector-match.yaml": [
        "bad-selector-match.yaml:2:12: a selector needs at least one of: names, ids, projects",
        "bad-selector-match.yaml:4:20: 'names' must not be empty",
        "bad-selector-match.yaml:4:35: 'water' is not a project id (a UUID like "
        "2b91399d-6edb-54ca-948b-8bddabd28ed4)",
        "bad-selector-match.yaml:4:43: unknown key 'id' (did you mean 'ids'?)",
        "bad-selector-match.yaml:6:5: missing required key 'match'",
    ],
    "bad-selector-ids.yaml": [  # a name among ids: the hint is the selector's key for names
        "bad-selector-ids.yaml:2:19: 'Pune-East' is not an AOI id (ids look like "
        "89a291cd-7ad8-5f86-aeee-55e92b0a0f5d); to select AOIs by name write names: [Pune-East]",
    ],
    "bad-selector-pattern.yaml": [  # fnmatch would read these '[' literally: a typo
        "bad-selector-pattern.yaml:2:21: item 1 of 'names': 'Farm-[': the '[' at character 6 is "
        "never closed; expected a set like [abc] (one of a, b, c), or [[] for a literal '['",
        "bad-selector-pattern.yaml:2:54: item 4 of 'names': '[!]a': the '[' at character 1 is "
        "never closed; expected a set like [abc] (one of a, b, c), or [[] for a literal '['",
    ],
    "bad-assets-policy.yaml": [
        "bad-assets-policy.yaml:4:30: 'assets' must be a list of assets (like [Bengaluru-A]) or "
        "one of the policies all or any, got 'every'",
        "bad-assets-policy.yaml:5:31: 'assets': expected a list of assets, or the policy all or "
        "any, got 3",
        "bad-assets-policy.yaml:6:31: 'assets' must be a list of assets (like [Bengaluru-A]) or "
        "one of the policies all or any, got 'ANY' (did you mean 'any'?)",
    ],
    "bad-assets-empty.yaml": [
        "bad-assets-empty.yaml:5:17: 'assets' must not be empty; write 'all' (or omit the key) "
        "to use all of the AOI's assets",
    ],
    "bad-asset-twice.yaml": [
        "bad-asset-twice.yaml:5:44: asset Bengaluru-A is listed twice",
    ],
    "bad-asset-number.yaml": [
        "bad-asset-number.yaml:5:31: expected an asset id, name or ISO date, got 2024 "
        "(quote a name that YAML reads as a number or boolean)",
    ],
    "bad-null-value.yaml": [
        "bad-null-value.yaml:5:16: 'assets' needs a value; omit the key to use the default",
    ],
    "bad-index-number.yaml": [
        "bad-index-number.yaml:4:16: 'index' must be text, got 12 (quote it if it is a name)",
    ],
    "bad-not-mapping.yaml": [
        "bad-not-mapping.yaml:1:1: the file must be a mapping with an 'aois' list, got a list",
    ],
    "bad-visualizations-mapping.yaml": [
        "bad-visualizations-mapping.yaml:4:7: 'visualizations' must be a list, got a mapping",
    ],
    "bad-three-mistakes.yaml": [
        "bad-three-mistakes.yaml:6:21: 'resolution' must be greater than 0, got 0",
        "bad-three-mistakes.yaml:9:33: '2024-11-31' is not a date: November 2024 has only 30 "
        "days (the last is 2024-11-30)",
        "bad-three-mistakes.yaml:12:13: unknown key 'revison' (did you mean 'revision'?)",
    ],
}


@pytest.mark.parametrize("fixture", sorted(BAD))
def test_bad_fixture_reports_exact_position_and_message(fixture: str) -> None:
    assert problems_of(fixture) == BAD[fixture]


def test_every_bad_fixture_is_covered() -> None:
    on_disk = {p.name for p in FIXTURES.glob("bad-*")}
    assert on_disk == set(BAD)


def test_problems_of_all_files_are_reported_together() -> None:
    found = problems_of("bad-unknown-key.yaml", "bad-empty.yaml", "bad-date-twice.yaml")
    assert found == [
        BAD["bad-date-twice.yaml"][0],
        BAD["bad-empty.yaml"][0],
        BAD["bad-unknown-key.yaml"][0],
    ]


def test_duplicates_are_found_next_to_unrelated_schema_errors(tmp_path: Path) -> None:
    spec = tmp_path / "two.yaml"
    spec.write_text(
        "aois:\n"
        "  - aoi: {name: A}\n"
        "    visualizations:\n"
        "      - {index: NDVI, resolution: -1}\n"
        "      - index: NDWI\n"
        "        rollback: [{mode: dynamic, dates: [2024-01-01, 2024-01-01]}]\n"
    )
    found = [p.message for p in validate_specs([spec]).problems]
    assert found == [
        "'resolution' must be greater than 0, got -1",
        "date 2024-01-01 is listed twice",
    ]


def test_too_large_file_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * yamlsource.MAX_BYTES + b"\n")
    size = yamlsource.MAX_BYTES + 3
    with pytest.raises(SpecError) as caught:
        load_specs([big])
    assert [str(p) for p in caught.value.problems] == [
        f"{big}:1:1: the file is larger than the 1 MiB limit for one spec file "
        f"({size:,} bytes); split it into several files (every *.yaml under a directory is read)"
    ]


def test_deep_nesting_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("aois: " + "[" * 3000 + "]" * 3000 + "\n")
    found = [p.message for p in validate_specs([deep]).problems]
    assert len(found) == 1
    assert "nesting" in found[0]


def test_missing_paths_and_empty_directories_are_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a spec")
    with pytest.raises(SpecError) as caught:
        load_specs(["nope.yaml", empty, "good-minimal.yaml"])
    assert [str(p) for p in caught.value.problems] == [
        f"{empty}: no spec files (*.yaml, *.yml) in this directory",
        "nope.yaml: no such file or directory",
    ]


def test_size_is_checked_before_reading(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as handle:  # sparse: 8 GiB on paper, nothing on disk
        handle.truncate(8 * 1024**3)
    with pytest.raises(SpecError) as caught:
        load_specs([huge])
    assert "(8,589,934,592 bytes)" in str(caught.value)


def test_a_dense_document_is_refused_while_composed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yamlsource, "MAX_NODES", 1000)
    dense = tmp_path / "dense.yaml"
    dense.write_text("aois: [" + ",".join(["a"] * 5000) + "]\n")
    with pytest.raises(SpecError) as caught:
        load_specs([dense])
    [problem] = caught.value.problems
    assert problem.message.startswith("the document has more than 1,000 YAML nodes")
    assert problem.where is not None and problem.where.line == 1


def test_special_files_are_refused_without_being_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    (tmp_path / "null.yaml").symlink_to(os.devnull)
    # Opening the FIFO for reading would block until a writer came: it must not be opened.
    assert sorted(problems_of(str(tmp_path))) == [
        f"{fifo}: a FIFO (named pipe), not a spec file; refusing to read it",
        f"{tmp_path / 'null.yaml'}:1:1: a symlink that leads outside {tmp_path}; refusing to "
        "read it (spec files are read only from under the paths given)",
    ]
    assert problems_of(str(fifo)) == [
        f"{fifo}: a FIFO (named pipe), not a spec file; refusing to read it"
    ]


def test_a_fifo_swapped_in_after_discovery_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "late.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SpecError) as caught:
        yamlsource.read_yaml_file(fifo, "late.yaml")
    assert str(caught.value) == (
        "late.yaml: a FIFO (named pipe), not a spec file; refusing to read it"
    )


def test_symlink_loops_and_dangling_links_are_spec_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").symlink_to("b.yaml")
    (tmp_path / "b.yaml").symlink_to("a.yaml")
    (tmp_path / "gone.yaml").symlink_to("missing.yaml")
    loop = "a symlink loop (the link points, through other links, back at itself)"
    assert sorted(problems_of(str(tmp_path))) == [
        f"{tmp_path / 'a.yaml'}: {loop}",
        f"{tmp_path / 'b.yaml'}: {loop}",
        f"{tmp_path / 'gone.yaml'}: a symlink to a file that does not exist",
    ]
    assert problems_of(str(tmp_path / "a.yaml")) == [f"{tmp_path / 'a.yaml'}: {loop}"]


def test_a_directory_link_loop_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text("aois: []\n")
    (tmp_path / "again").symlink_to(tmp_path)
    assert validate_specs([tmp_path]).files == (str(tmp_path / "spec.yaml"),)


def test_a_file_reached_through_a_link_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text("aois: []\n")
    (tmp_path / "alias.yaml").symlink_to("spec.yaml")
    assert validate_specs([tmp_path]).files == (str(tmp_path / "alias.yaml"),)


# --- good specs ---------------------------------------------------------------------------------


def test_good_full_flattens_every_feature() -> None:
    specs = load_specs(["good-full.yaml"])
    assert isinstance(specs, Specs)
    assert specs.files == ("good-full.yaml",)
    assert specs.notes == ()
    path = "good-full.yaml"
    bengaluru, by_id, by_id_map = specs.aois
    assert isinstance(bengaluru, AoiDecl)
    assert (bengaluru.name, bengaluru.id, bengaluru.label) == (
        "Bengaluru-North",
        None,
        "Bengaluru-North",
    )
    assert bengaluru.where == Where(path, 7, 10)
    ndvi, by_index_id = bengaluru.visualizations
    assert isinstance(ndvi, VisualizationDecl)
    assert ndvi.index == "NDVI"
    assert ndvi.index_where == Where(path, 9, 16)
    assert ndvi.where == Where(path, 9, 9)
    assert ndvi.resolution == 2.5
    assert ndvi.assets == (
        AssetSel("name", "Bengaluru-A", Where(path, 10, 18)),
        AssetSel("date", "2024-11-20", Where(path, 10, 31)),
        AssetSel("id", "4bbe45b3-ef5d-54f4-ba70-b6700fa56d61", Where(path, 10, 45)),
    )
    dynamic, theoretical = ndvi.rollbacks
    # Dates come sorted, with their positions in the same order.
    assert dynamic == RollbackDecl(
        mode="dynamic",
        dates=("2024-05-06", "2025-11-14"),
        date_wheres=(Where(path, 14, 33), Where(path, 14, 21)),
        revision=3,
        where=Where(path, 13, 13),
    )
    # Merged from an `x-` anchor: positions point into the anchor.
    assert theoretical.mode == "theoretical"
    assert theoretical.dates == ("2024-11-20",)
    assert theoretical.date_wheres == (Where(path, 5, 11),)
    assert theoretical.revision == 0
    assert by_index_id.index == "cb668cf4-b6fc-5c37-a944-84c62fd95299"
    assert by_index_id.assets is None
    assert by_index_id.resolution is None
    assert by_index_id.rollbacks == ()
    assert (by_id.id, by_id.name, by_id.label) == (
        "89a291cd-7ad8-5f86-aeee-55e92b0a0f5d",
        None,
        "89a291cd-7ad8-5f86-aeee-55e92b0a0f5d",
    )
    assert by_id.visualizations == ()
    assert by_id_map.id == "8ee03236-8358-5969-a280-c39238c3c46b"
    assert by_id_map.name is None
    assert by_id_map.visualizations[0].resolution == 10.0


def test_minimal_spec_is_valid() -> None:
    specs = load_specs(["good-minimal.yaml"])
    assert specs.aois == ()
    assert specs.files == ("good-minimal.yaml",)


def test_mixed_aoi_forms_with_the_same_visualization_is_a_note_not_an_error() -> None:
    report = validate_specs(["good-mixed-forms.yaml"])
    assert report.valid
    assert report.specs is not None
    assert [str(n) for n in report.notes] == [
        "good-mixed-forms.yaml:10:9: AOI 8ee03236-8358-5969-a280-c39238c3c46b is given by id "
        "here and AOI 'Kochi-Coast' by name at good-mixed-forms.yaml:4:10; if they are the same "
        "AOI, its NDWI over all assets is declared differently here and at "
        "good-mixed-forms.yaml:6:9, which is an error ('plan' and 'validate --online' check "
        "this after resolving names)"
    ]
    assert report.specs.notes == report.notes


def test_selectors_and_asset_policies_load_with_their_positions() -> None:
    specs = load_specs(["good-selectors.yaml"])
    assert specs.aois == ()
    first, second = specs.selectors
    assert first.names == ("*-North", "Pune-East")
    assert [str(w) for w in first.name_wheres] == [
        "good-selectors.yaml:3:21",
        "good-selectors.yaml:3:32",
    ]
    assert str(first.where) == "good-selectors.yaml:3:12"
    assert first.key == "names: *-North, Pune-East"
    assert second.key == (
        "ids: a4cb9e5f-39ca-5083-b695-e628f4e8019b; projects: 3477ad8e-1833-568f-8bff-e0685908bd6d"
    )
    assert [
        (v.assets, v.asset_policy) for v in (*first.visualizations, *second.visualizations)
    ] == [
        (None, "any"),
        (None, "all"),
    ]
    assert second.visualizations[0].rollbacks[0].dates == ("2025-03-03",)
    assert specs.visualization_count == 2


def test_declarations_that_agree_are_one_offline() -> None:
    report = validate_specs(["good-declared-twice-alike.yaml"])
    assert report.problems == () and report.notes == ()
    assert report.specs is not None and report.specs.visualization_count == 3


def test_a_yaml_key_spelt_like_a_union_tag_is_just_an_unknown_key(tmp_path: Path) -> None:
    spec = tmp_path / "tag.yaml"
    spec.write_text("aois: []\naoi:id:\n")
    (problem,) = validate_specs([spec]).problems
    assert problem.message.startswith("unknown key 'aoi:id'")


def test_directories_load_recursively_sorted_skipping_hidden_and_other_files() -> None:
    specs = load_specs(["good-tree/"])
    assert specs.files == (
        "good-tree/a-first.yaml",
        "good-tree/teams/a.yaml",
        "good-tree/teams/b-team/nested.yaml",
        "good-tree/z-last.yml",
    )
    assert [a.label for a in specs.aois] == [
        "Bengaluru-North",
        "Kochi-Coast",
        "Nagpur-Farms",
        "Pune-East",
    ]


def test_paths_keep_the_order_given_and_each_file_is_read_once() -> None:
    specs = load_specs(["good-tree/z-last.yml", "good-tree", "./good-minimal.yaml"])
    assert specs.files == (
        "good-tree/z-last.yml",
        "good-tree/a-first.yaml",
        "good-tree/teams/a.yaml",
        "good-tree/teams/b-team/nested.yaml",
        "./good-minimal.yaml",
    )


def test_fingerprint_is_stable_and_tracks_content_and_paths(tmp_path: Path) -> None:
    first = load_specs(["good-tree"]).fingerprint
    assert first == load_specs(["good-tree"]).fingerprint
    assert len(first) == 64
    # "good-tree" and "good-tree/" display the same file paths, so they hash alike.
    assert first == load_specs(["good-tree/"]).fingerprint
    copy = tmp_path / "copy.yaml"
    copy.write_bytes((FIXTURES / "good-minimal.yaml").read_bytes())
    before = load_specs([copy]).fingerprint
    copy.write_bytes(b"aois: []  # changed\n")
    assert load_specs([copy]).fingerprint != before
    plain = load_specs(["good-minimal.yaml"]).fingerprint
    assert plain != load_specs(["./good-minimal.yaml"]).fingerprint


# --- the examples in specs/ ---------------------------------------------------------------------


def test_examples_are_valid_and_match_the_demo_world(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every reference in specs/ exists in the demo world, and each mode suits its index."""
    monkeypatch.chdir(REPO)
    specs = load_specs(["specs/"])
    world = yaml.safe_load(DEMO_WORLD.read_text())
    indices = {i["name"]: i for i in world["indices"]} | {i["id"]: i for i in world["indices"]}
    # The custom indices the examples declare are made by apply, before what uses them.
    indices |= {
        i.name: {"type": "custom", "expression_type": i.expression_type} for i in specs.indices
    }
    assert not {i.name for i in specs.indices} & {i["name"] for i in world["indices"]}
    aois = {a["name"]: a for a in world["aois"]} | {a["id"]: a for a in world["aois"]}
    modes_of = {
        ("preset", "index"): {"dynamic", "theoretical"},
        ("custom", "index"): {"dynamic"},
    }
    seen_kinds: set[str] = set()
    for decl in specs.aois:
        aoi = aois[decl.label]
        assets: list[dict[str, Any]] = aoi["assets"]
        for vis in decl.visualizations:
            index = indices[vis.index]
            chosen = assets
            if vis.assets is not None:
                chosen = []
                for sel in vis.assets:
                    seen_kinds.add(sel.kind)
                    field = {"date": "date", "id": "id", "name": "name"}[sel.kind]
                    match = [a for a in assets if str(a[field]) == sel.value]
                    assert len(match) == 1, f"{sel.where}: {sel.value} not in {decl.label}"
                    chosen += match
            dates = {str(a["date"]) for a in chosen}
            allowed = modes_of.get((index["type"], index["expression_type"]), set())
            for rollback in vis.rollbacks:
                assert rollback.mode in allowed, f"{rollback.where}: {rollback.mode}"
                assert set(rollback.dates) <= dates, f"{rollback.where}: {rollback.dates}"
            for legend in vis.legends:
                assert legend.mode in allowed, f"{legend.where}: {legend.mode}"
                assert set(legend.dates) <= dates, f"{legend.where}: {legend.dates}"
    # The examples show every way of writing things.
    assert seen_kinds == {"date", "id", "name"}
    assert {d.id is None for d in specs.aois} == {True, False}
    assert any(v.assets is None for d in specs.aois for v in d.visualizations)
    assert any(v.resolution for d in specs.aois for v in d.visualizations)
    rollbacks = [r for d in specs.aois for v in d.visualizations for r in v.rollbacks]
    assert {r.mode for r in rollbacks} == {"dynamic", "theoretical"}
    assert any(r.revision for r in rollbacks)
    legends = [lg for d in specs.aois for v in d.visualizations for lg in v.legends]
    assert {lg.mode for lg in legends} == {"dynamic", "theoretical"}
    assert specs.indices


# --- the JSON Schema ----------------------------------------------------------------------------


def _as_json(path: Path) -> Any:
    # Editors read YAML 1.2, where 2024-05-06 is a string: mimic that.
    return json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))


def test_schema_accepts_the_examples_and_rejects_mistakes() -> None:
    schema = SpecFile.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for example in sorted((REPO / "specs").glob("*.yaml")):
        assert list(validator.iter_errors(_as_json(example))) == [], example
    for good in (
        "good-full.yaml",
        "good-minimal.yaml",
        "good-mixed-forms.yaml",
        "good-selectors.yaml",
    ):
        assert list(validator.iter_errors(_as_json(FIXTURES / good))) == [], good
    for bad in (
        "bad-unknown-key.yaml",
        "bad-mode-unknown.yaml",
        "bad-dates-empty.yaml",
        "bad-aoi-both.yaml",
        "bad-aoi-name-as-id.yaml",
        "bad-resolution.yaml",
        "bad-version.yaml",
        "bad-selector-match.yaml",
        "bad-assets-policy.yaml",
        "bad-missing-aois.yaml",
    ):
        assert list(validator.iter_errors(_as_json(FIXTURES / bad))), bad


def test_schema_documents_every_field() -> None:
    schema = SpecFile.model_json_schema()
    for name, definition in [("SpecFile", schema), *schema["$defs"].items()]:
        for field, prop in definition.get("properties", {}).items():
            assert prop.get("title") and prop.get("description"), f"{name}.{field}"
            assert "null" not in json.dumps(prop), f"{name}.{field} offers null"
