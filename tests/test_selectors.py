"""Selectors: one declaration for many AOIs, planned and applied against the emulator."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Unpack

import pytest

from reconciler.api.types import Aoi
from reconciler.core import planfile
from reconciler.core.plan import AoiName, Plan
from reconciler.core.selectors import covered, listing_projects, match, summarize
from reconciler.emulator import Emulator
from reconciler.errors import Problem, ResolutionError, Where
from reconciler.render.markdown import render_markdown
from reconciler.render.text import render_text
from reconciler.run.engine import ApplyOptions, Engine
from reconciler.run.settings import Settings
from reconciler.spec.decls import SelectorDecl, Specs
from reconciler.spec.load import load_specs
from reconciler.state.store import StateStore
from tests.planning import BENGALURU, PUNE, ClientOptions, client_for, make_plan, write_spec

KOCHI = "a4cb9e5f-39ca-5083-b695-e628f4e8019b"
NAGPUR = "1a3cd9bf-677d-5205-8fbf-1414083293b0"
AGRICULTURE = "2b91399d-6edb-54ca-948b-8bddabd28ed4"
WATER = "3477ad8e-1833-568f-8bff-e0685908bd6d"


def engine_apply(emulator: Emulator, specs: Path, state: Path) -> None:
    """Apply as the command does: the engine also records what selectors matched."""
    with client_for(emulator) as client:
        engine = Engine(Settings(api_url=emulator.url, state=state), client=client)
        outcome = engine.apply([str(specs)], ApplyOptions(poll_interval=0.02, wait_timeout=10))
    assert outcome.ok, outcome


def created(plan: Plan) -> list[tuple[str, str]]:
    return sorted((c.aoi_name, c.index_name) for c in plan.creates)


def plan_of(
    emulator: Emulator,
    tmp_path: Path,
    text: str,
    *,
    targets: Sequence[str] = (),
    **client_options: Unpack[ClientOptions],
) -> Plan:
    specs = write_spec(tmp_path / "specs", text)
    return make_plan(emulator, specs, tmp_path / "state.json", targets=targets, **client_options)


def problems_of(emulator: Emulator, tmp_path: Path, text: str) -> list[Problem]:
    """The problems that make planning ``text`` fail."""
    with pytest.raises(ResolutionError) as caught:
        plan_of(emulator, tmp_path, text)
    return caught.value.problems


def test_a_glob_pattern_selects_by_name(emulator: Emulator, tmp_path: Path) -> None:
    plan = plan_of(
        emulator,
        tmp_path,
        """
        selectors:
          - match: {names: ["*-East", "Koch?-*"]}
            visualizations: [{index: EVI}]
        """,
    )
    assert created(plan) == [("Kochi-Coast", "EVI"), ("Pune-East", "EVI")]
    (summary,) = plan.selectors
    assert summary.key == "names: *-East, Koch?-*"
    assert summary.where == f"{tmp_path}/specs/spec.yaml:2:12"
    assert [a.name for a in summary.matched] == ["Kochi-Coast", "Pune-East"]


def test_a_list_of_names_and_ids(emulator: Emulator, tmp_path: Path) -> None:
    plan = plan_of(
        emulator,
        tmp_path,
        f"""
        selectors:
          - match: {{names: [Kochi-Coast]}}
            visualizations: [{{index: EVI}}]
          - match: {{ids: [{BENGALURU}]}}
            visualizations: [{{index: EVI}}]
        """,
    )
    assert created(plan) == [("Bengaluru-North", "EVI"), ("Kochi-Coast", "EVI")]


def test_every_criterion_given_must_hold(emulator: Emulator, tmp_path: Path) -> None:
    plan = plan_of(
        emulator,
        tmp_path,
        f"""
        aois: [{{aoi: {{name: Pune-East}}, visualizations: []}}]
        selectors:
          - match: {{names: ["*"], projects: [{AGRICULTURE}]}}
            visualizations: [{{index: EVI}}]
        """,
    )
    assert created(plan) == [("Bengaluru-North", "EVI"), ("Nagpur-Farms", "EVI")]


def test_a_plain_name_or_id_that_matches_nothing_is_a_spec_problem(
    emulator: Emulator, tmp_path: Path
) -> None:
    first, second = problems_of(
        emulator,
        tmp_path,
        """
        selectors:
          - match: {names: ["Nothing-*", Pune-Est], ids: [00000000-0000-4000-8000-000000000000]}
            visualizations: [{index: EVI}]
        """,
    )
    assert first.message == "unknown AOI 'Pune-Est' (closest: Pune-East)"
    assert first.where is not None
    assert (first.where.line, first.where.column) == (2, 34)
    assert second.message.startswith("unknown AOI id '00000000-0000-4000-8000-000000000000'")


def test_a_selector_that_matches_nothing_plans_nothing_and_says_so(
    emulator: Emulator, tmp_path: Path
) -> None:
    plan = plan_of(
        emulator,
        tmp_path,
        f"""
        aois: [{{aoi: {{name: Pune-East}}, visualizations: []}}]
        selectors:
          - match: {{names: ['Atlantis-*']}}
            visualizations: [{{index: EVI}}]
          - match: {{projects: [{WATER[:-1]}f]}}  # a typo in the project id
            visualizations: [{{index: EVI}}]
          - match: {{names: ['Pune-*']}}
            visualizations: []
        """,
    )
    assert not plan.has_changes
    assert [len(s.matched) for s in plan.selectors] == [0, 0, 1]
    no_match = [w for w in plan.warnings if w.kind == "no-match"]
    assert [(w.aoi_id, w.where) for w in no_match] == [("", s.where) for s in plan.selectors[:2]]
    assert no_match[1].message == (
        f"the selector (projects: {WATER[:-1]}f) matches no AOI, so it declares nothing; if it "
        "should match some, check its patterns and project ids for typos"
    )
    text = render_text(plan)
    assert "\nSpecs: 2 warnings\n" in text and "AOI  (" not in text
    markdown = render_markdown(plan)
    assert "* the selector (names: Atlantis-*) matches no AOI" in markdown
    assert "Nothing to change in: `Pune-East` (0 unchanged)." in markdown  # no nameless AOI


@pytest.fixture
def projects_world(make_emulator: Callable[..., Emulator], tmp_path: Path) -> Emulator:
    """20 AOIs in project North, 2 in project South."""
    lines = [
        "indices:",
        "  - {name: NDVI, type: preset, expression_type: index, expression: a, rescale: [-1, 1]}",
        "projects:",
        "  - {id: 11111111-1111-4111-8111-111111111111, name: North}",
        "  - {id: 22222222-2222-4222-8222-222222222222, name: South}",
        "aois:",
    ]
    for n in range(22):
        project = "North" if n < 20 else "South"
        lines.append(
            f"  - {{name: F{n:02d}, project: {project}, assets: [{{name: A, date: 2024-01-01}}]}}"
        )
    path = tmp_path / "world.yaml"
    path.write_text("\n".join(lines) + "\n")
    return make_emulator(world=path)


SOUTH = "22222222-2222-4222-8222-222222222222"


def test_project_selectors_list_only_their_projects(
    projects_world: Emulator, tmp_path: Path
) -> None:
    text = f"selectors: [{{match: {{projects: [{SOUTH}]}}, visualizations: [{{index: NDVI}}]}}]\n"
    projects_world.counter.reset()
    plan = plan_of(projects_world, tmp_path, text, page_size=3)
    assert created(plan) == [("F20", "NDVI"), ("F21", "NDVI")]
    assert projects_world.counter.count(route="/v0/aois") == 1  # 2 AOIs: one page, not 8

    # A per-AOI entry needs every AOI: one listing, shared, the projects told apart locally.
    projects_world.counter.reset()
    plan = plan_of(
        projects_world,
        tmp_path,
        text + "aois: [{aoi: {name: F00}, visualizations: [{index: NDVI}]}]\n",
        page_size=3,
    )
    assert created(plan) == [("F00", "NDVI"), ("F20", "NDVI"), ("F21", "NDVI")]
    assert projects_world.counter.count(route="/v0/aois") == 8


def test_overlapping_selectors_and_a_per_aoi_entry_are_one_visualization(
    emulator: Emulator, tmp_path: Path
) -> None:
    plan = plan_of(
        emulator,
        tmp_path,
        f"""
        aois:
          - aoi: {{name: Pune-East}}
            visualizations:
              - index: NDWI
                rollback: [{{mode: theoretical, dates: [2025-01-15]}}]
        selectors:
          - match: {{projects: [{WATER}]}}
            visualizations:
              - index: NDWI
              - {{index: EVI, resolution: 20}}
          - match: {{names: ["*-East", "*-Coast"]}}
            visualizations:
              - index: NDWI
              - index: EVI
          - match: {{ids: [{PUNE}]}}
            visualizations:
              - index: NDWI
                rollback: [{{mode: dynamic, dates: [2024-06-01]}}]
        """,
    )
    assert created(plan) == [("Kochi-Coast", "EVI"), ("Kochi-Coast", "NDWI"), ("Pune-East", "EVI")]
    assert {c.resolution for c in plan.creates if c.index_name == "EVI"} == {20}
    assert sorted((r.aoi_name, r.mode) for r in plan.rollbacks) == [
        ("Pune-East", "dynamic"),
        ("Pune-East", "theoretical"),
    ]
    assert [len(s.matched) for s in plan.selectors] == [2, 2, 1]  # in spec order


def test_conflicting_rollbacks_name_both_positions(emulator: Emulator, tmp_path: Path) -> None:
    (problem,) = problems_of(
        emulator,
        tmp_path,
        """
        aois:
          - aoi: {name: Pune-East}
            visualizations:
              - index: NDWI
                rollback: [{mode: dynamic, dates: [2025-01-15]}]
        selectors:
          - match: {names: ["Pune-*"]}
            visualizations:
              - index: NDWI
                assets: any
                rollback: [{mode: dynamic, dates: [2024-06-01]}]
        """,
    )
    spec = f"{tmp_path}/specs/spec.yaml"
    assert problem.where == Where(spec, 11, 20)
    assert problem.message == (
        "visualization 'NDWI' is declared twice with conflicting dynamic "
        f"rollbacks: dates 2024-06-01 here, dates 2025-01-15 at {spec}:5:20; roll a mode back "
        "in one place (or list the same dates and revision in both) (on AOI 'Pune-East', "
        "matched by this selector)"
    )


def test_a_problem_in_a_selector_is_reported_once_for_all_its_aois(
    emulator: Emulator, tmp_path: Path
) -> None:
    (problem,) = problems_of(
        emulator,
        tmp_path,
        "selectors: [{match: {names: ['*']}, visualizations: [{index: NVDI}]}]\n",
    )
    assert problem.message == (
        "unknown index 'NVDI' (closest: NDVI, NDWI, EVI) (on 4 AOIs matched by this selector: "
        "'Bengaluru-North', 'Kochi-Coast', 'Nagpur-Farms', 'Pune-East')"
    )


def test_one_mistake_in_a_selector_is_one_problem_whatever_the_aois(
    projects_world: Emulator, tmp_path: Path
) -> None:
    unknown, date = problems_of(
        projects_world,
        tmp_path,
        """
        selectors:
          - match: {names: ["F*"]}
            visualizations:
              - {index: NDVI, assets: [Nope]}
              - index: NDVI
                rollback: [{mode: dynamic, dates: [2030-01-01]}]
        """,
    )
    shown = "'F00', 'F01', 'F02', 'F03', 'F04' and 17 more"
    on_aois = f"(on 22 AOIs matched by this selector: {shown})"
    assert unknown.message == (
        "unknown asset 'Nope'; asset names and ids belong to one AOI: a selector selects assets "
        f"by date, or declares assets: all | any {on_aois}"
    )
    assert unknown.where is not None
    assert (unknown.where.line, unknown.where.column) == (4, 32)
    assert date.message == (
        f"rollback date 2030-01-01 is not a date of this visualization's assets {on_aois}"
    )


def test_a_selector_problem_on_one_aoi_keeps_its_details(
    emulator: Emulator, tmp_path: Path
) -> None:
    (problem,) = problems_of(
        emulator,
        tmp_path,
        """
        selectors:
          - match: {names: ["Kochi-*"]}
            visualizations: [{index: NDWI, assets: [Kochi-Z]}]
        """,
    )
    assert problem.message.startswith("unknown asset 'Kochi-Z'; asset names")
    assert problem.message.endswith(
        "(closest: Kochi-A, Kochi-B) (on AOI 'Kochi-Coast', matched by this selector)"
    )
    assert problem.message.count("Kochi-Coast") == 1


def test_targets_pick_among_the_aois_a_selector_matched(emulator: Emulator, tmp_path: Path) -> None:
    plan = plan_of(
        emulator,
        tmp_path,
        "selectors: [{match: {names: ['*']}, visualizations: [{index: EVI}]}]\n",
        targets=("Kochi-Coast",),
    )
    assert created(plan) == [("Kochi-Coast", "EVI")]
    assert len(plan.selectors[0].matched) == 4  # what it matches is shown whatever the targets


def test_an_aoi_that_stops_matching_is_shown_until_the_next_apply(
    emulator: Emulator, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    text = "selectors: [{match: {names: ['*-East']}, visualizations: [{index: EVI}]}]\n"
    engine_apply(emulator, write_spec(tmp_path / "specs", text), state)
    assert StateStore(state).load().selectors == {
        f"{tmp_path}/specs/spec.yaml": {"names: *-East": {PUNE: "Pune-East"}}
    }

    with emulator.lock:  # renamed in the console: the pattern no longer matches it
        aoi = emulator.world.aoi(PUNE)
        assert aoi is not None
        aoi.name = "Pune-Reservoirs"
    plan = plan_of(emulator, tmp_path, text)
    assert not plan.has_changes
    (summary,) = plan.selectors
    assert summary.matched == () and summary.unmatched == (AoiName(PUNE, "Pune-East"),)
    none, warning = plan.warnings  # it matches nothing now, and Pune is not declared
    assert (none.kind, none.aoi_id, none.where) == ("no-match", "", summary.where)
    assert (warning.kind, warning.aoi_id, warning.where) == ("unmatched", PUNE, summary.where)
    assert warning.message.startswith("no longer matched by the selector (names: *-East), which")

    # The selector edited instead: its old criteria are reported as gone.
    edited = text.replace("*-East", "*-Reservoirs")
    plan = plan_of(emulator, tmp_path, edited)
    assert [(s.key, s.where is None, len(s.matched), len(s.unmatched)) for s in plan.selectors] == [
        ("names: *-Reservoirs", False, 1, 0)
    ]
    engine_apply(emulator, tmp_path / "specs", state)  # nothing to create: the EVI exists
    assert [w.kind for w in plan_of(emulator, tmp_path, edited).warnings] == ["undeclared"]

    plan = plan_of(emulator, tmp_path, "aois: []\n" + text.replace("*-East", "Kochi-*"))
    gone = [s for s in plan.selectors if s.where is None]
    assert [(s.key, s.unmatched) for s in gone] == [
        ("names: *-Reservoirs", (AoiName(PUNE, "Pune-Reservoirs"),))
    ]
    assert any(
        w.kind == "unmatched" and "no longer in the specs" in w.message for w in plan.warnings
    )


VISUALIZATIONS = """\
    visualizations:
      - index: EVI
      - index: NDWI
        assets: any
      - {index: SAVI, resolution: 10}
"""


def test_one_selector_plans_the_same_creates_as_per_aoi_entries(
    emulator: Emulator, tmp_path: Path
) -> None:
    names = ("Bengaluru-North", "Pune-East", "Nagpur-Farms", "Kochi-Coast")
    per_aoi = "aois:\n" + "".join(f"  - aoi: {{name: {n}}}\n" + VISUALIZATIONS for n in names)
    selector = "selectors:\n  - match: {names: ['*']}\n" + VISUALIZATIONS
    one = plan_of(emulator, tmp_path / "one", per_aoi)
    other = plan_of(emulator, tmp_path / "other", selector)

    def shape(plan: Plan) -> list[dict[str, object]]:
        return [
            {k: v for k, v in planfile.to_json(c).items() if k != "where"} for c in plan.creates
        ]

    assert len(one.creates) == 4 + 2 + 4  # EVI and SAVI everywhere, NDWI where none exists
    assert shape(one) == shape(other)


# --- pure: matching, the listing filter, summaries ----------------------------------------------


def selector(
    names: Sequence[str] = (), ids: Sequence[str] = (), projects: Sequence[str] = ()
) -> SelectorDecl:
    here = Where("s.yaml", 1, 1)
    return SelectorDecl(
        tuple(names), tuple(here for _ in names), tuple(ids), tuple(here for _ in ids),
        tuple(projects), here, (),
    )  # fmt: skip


AOIS = (
    Aoi(id="00000000-0000-4000-8000-000000000001", name="Farm-A", project_id="p1"),
    Aoi(id="00000000-0000-4000-8000-000000000002", name="Farm-B", project_id="p2"),
    Aoi(id="00000000-0000-4000-8000-000000000003", name="farm-c", project_id="p1"),
    Aoi(id="00000000-0000-4000-8000-000000000004", name="[x]", project_id=None),
)


@pytest.mark.parametrize(
    ("criteria", "names"),
    [
        ({"names": ["Farm-*"]}, ["Farm-A", "Farm-B"]),  # case-sensitive
        ({"names": ["farm-?", "Farm-B"]}, ["Farm-B", "farm-c"]),
        ({"names": ["[[]x]"]}, ["[x]"]),  # a glob character, escaped
        ({"projects": ["p1"]}, ["Farm-A", "farm-c"]),
        ({"names": ["*"], "projects": ["p2"]}, ["Farm-B"]),
        ({"ids": [AOIS[3].id], "projects": ["p1"]}, []),
    ],
)
def test_matching(criteria: dict[str, list[str]], names: list[str]) -> None:
    result = match(selector(**criteria), AOIS)
    assert sorted(a.name for a in result.matched) == sorted(names)
    assert result.problems == ()


def test_the_listing_is_filtered_only_when_every_declaration_names_projects() -> None:
    def specs(*selectors: SelectorDecl, aois: bool = False) -> Specs:
        entries = load_specs  # noqa: F841 (any non-empty tuple stands for per-AOI entries)
        return Specs((), "", ("x",) if aois else (), selectors=selectors)  # type: ignore[arg-type]

    assert listing_projects(specs(selector(projects=["b"]), selector(projects=["a", "b"]))) == (
        "a",
        "b",
    )
    assert listing_projects(specs(selector(projects=["a"]), selector(names=["*"]))) is None
    assert listing_projects(specs(selector(projects=["a"]), aois=True)) is None


def test_summaries_sort_aois_by_name_and_report_gone_selectors() -> None:
    result = match(selector(names=["*"]), AOIS[:2])
    previous = {
        "s.yaml": {
            "names: *": {AOIS[2].id: "farm-c", AOIS[0].id: "Farm-A"},
            "names: old-*": {AOIS[1].id: "Farm-B", AOIS[3].id: "[x]"},
        }
    }
    summaries, warnings = summarize([result], previous)
    assert [
        (s.key, [a.name for a in s.matched], [a.name for a in s.unmatched]) for s in summaries
    ] == [
        ("names: *", ["Farm-A", "Farm-B"], ["farm-c"]),
        ("names: old-*", [], ["[x]"]),  # Farm-B is still matched by a selector
    ]
    assert [(w.aoi_name, w.where) for w in warnings] == [("farm-c", "s.yaml:1:1"), ("[x]", None)]
    # An AOI the specs still declare is planned anyway: listed as dropped, but no warning.
    _, warnings = summarize([result], previous, declared={AOIS[2].id})
    assert [w.aoi_name for w in warnings] == ["[x]"]


def test_records_of_an_older_reconciler_still_count() -> None:
    """Before records named their spec file, they were kept under the file ""."""
    result = match(selector(names=["*"]), AOIS[:2])
    previous = {"": {"names: *": {AOIS[2].id: "farm-c"}, "names: old-*": {AOIS[3].id: "[x]"}}}
    summaries, _ = summarize([result], previous)
    assert [(s.key, s.where, [a.name for a in s.unmatched]) for s in summaries] == [
        ("names: *", "s.yaml:1:1", ["farm-c"]),
        ("names: old-*", None, ["[x]"]),
    ]


@pytest.mark.parametrize(
    ("file", "paths", "expected"),
    [
        ("specs/a.yaml", ["specs/"], True),
        ("specs/a.yaml", ["./specs"], True),
        ("specs/a.yaml", ["specs/a.yaml"], True),
        ("specs/a.yaml", ["specs/b.yaml"], False),
        ("specs/a.yaml", ["spec"], False),  # a prefix of the name is not a directory
        ("specs/sub/a.yaml", ["specs"], True),
        ("specs/a.yaml", ["."], True),
        ("../other/a.yaml", ["."], False),
        ("/abs/specs/a.yaml", ["/abs/specs/"], True),
        ("", ["specs/b.yaml"], True),  # an older reconciler's records: every plan reads them
    ],
)
def test_which_records_a_plan_reads(file: str, paths: list[str], expected: bool) -> None:
    assert covered(file, paths) is expected


def test_planning_some_files_keeps_to_their_selectors(emulator: Emulator, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    specs = tmp_path / "specs"
    write_spec(specs, "selectors: [{match: {names: ['*-East']}, visualizations: [{index: EVI}]}]\n")
    farms = "selectors: [{match: {names: ['*-Farms']}, visualizations: [{index: NDWI}]}]\n"
    write_spec(specs, farms, name="farms.yaml")
    engine_apply(emulator, specs, state)
    assert sorted(StateStore(state).load().selectors) == [
        f"{specs}/farms.yaml",
        f"{specs}/spec.yaml",
    ]

    # One file planned: no warning about the other file's AOIs, its selector not "gone".
    plan = make_plan(emulator, specs / "spec.yaml", state)
    assert [w.kind for w in plan.warnings] == ["undeclared"]  # Pune-East's NDWI
    assert [(s.key, len(s.matched), s.unmatched) for s in plan.selectors] == [
        ("names: *-East", 1, ())
    ]

    # Applying one file keeps the other's record; the next plan of both still knows it.
    engine_apply(emulator, specs / "spec.yaml", state)
    assert f"{specs}/farms.yaml" in StateStore(state).load().selectors
    (specs / "farms.yaml").write_text(farms.replace("*-Farms", "*-Coast"))
    plan = make_plan(emulator, specs, state)
    gone = [(s.key, [a.name for a in s.unmatched]) for s in plan.selectors if s.where is None]
    assert gone == [("names: *-Farms", ["Nagpur-Farms"])]

    # A file deleted from a directory planned is read as gone: its AOIs are reported.
    (specs / "farms.yaml").unlink()
    plan = make_plan(emulator, specs, state)
    assert [w.aoi_name for w in plan.warnings if w.kind == "unmatched"] == ["Nagpur-Farms"]
    engine_apply(emulator, specs, state)
    assert list(StateStore(state).load().selectors) == [f"{specs}/spec.yaml"]
