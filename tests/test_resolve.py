"""The resolver: pure tests on hand-built declarations and listings (no network, no emulator).

One rule per test. Declarations are built with the small helpers below; every one gets a
position of its own, so a test can check that a problem points at the right place.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import pytest

from reconciler.api.types import Aoi, Asset, Index, Visualization
from reconciler.core.identity import Identity
from reconciler.core.observed import Observed, ObservedAoi
from reconciler.core.resolve import (
    DesiredVisualization,
    IndexLookup,
    Selection,
    mode_problem,
    needs_asset_listing,
    needs_assets_for_creates,
    resolve_desired,
    resolve_visualizations,
    select_aois,
)
from reconciler.errors import ConfigError, Problem, Where
from reconciler.spec.decls import AoiDecl, AssetSel, Mode, RollbackDecl, Specs, VisualizationDecl
from reconciler.spec.fields import looks_like_uuid
from reconciler.text import closest


def uid(n: int) -> str:
    """A UUID-shaped id (the spec loader tells ids from names by that shape)."""
    return f"00000000-0000-4000-8000-{n:012d}"


NORTH = Aoi(id=uid(1), name="Bengaluru-North")
SOUTH = Aoi(id=uid(2), name="Bengaluru-South")
AOIS = (NORTH, SOUTH)

NDVI = Index(id=uid(11), name="NDVI", type="preset")
NDWI = Index(id=uid(12), name="NDWI", type="preset")
CHL = Index(id=uid(13), name="Chlorophyll", type="custom", expression_type="index")
TRUE_COLOR = Index(id=uid(14), name="True-Color", type="custom", expression_type="composite")
GRAY = Index(id=uid(15), name="Gray-B08", type="custom", expression_type="grayscale")
INDICES = (NDVI, NDWI, CHL, TRUE_COLOR, GRAY)
LOOKUP = IndexLookup(INDICES)

A = Asset(id=uid(21), name="North-A", date="2024-05-06")
B = Asset(id=uid(22), name="North-B", date="2024-08-19")
C = Asset(id=uid(23), name="North-C", date="2024-11-20")
ASSETS = (A, B, C)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_lines = itertools.count(1)


def at() -> Where:
    """A fresh spec position, so every declaration can be told apart by where it is."""
    return Where("specs/test.yaml", next(_lines), 5)


def sel(value: str) -> AssetSel:
    """An asset selector of the kind the loader would infer: ISO date, UUID id, or name."""
    if _ISO_DATE.fullmatch(value):
        return AssetSel("date", value, at())
    return AssetSel("id" if looks_like_uuid(value) else "name", value, at())


def rollback(mode: Mode, *dates: str, revision: int = 0) -> RollbackDecl:
    ordered = tuple(sorted(dates))
    return RollbackDecl(mode, ordered, tuple(at() for _ in ordered), revision, at())


def viz(
    index: str = "NDVI",
    assets: Sequence[str] | None = None,
    *rollbacks: RollbackDecl,
    resolution: float | None = None,
) -> VisualizationDecl:
    return VisualizationDecl(
        index=index,
        index_where=at(),
        assets=None if assets is None else tuple(sel(a) for a in assets),
        resolution=resolution,
        rollbacks=rollbacks,
        where=at(),
    )


def entry(ref: str, *visualizations: VisualizationDecl) -> AoiDecl:
    """An ``aois`` entry, by id when ``ref`` looks like one, by name otherwise."""
    if looks_like_uuid(ref):
        return AoiDecl(ref, None, at(), visualizations)
    return AoiDecl(None, ref, at(), visualizations)


def specs(*entries: AoiDecl) -> Specs:
    return Specs(files=("specs/test.yaml",), fingerprint="", aois=entries)


def existing(index: Index, *assets: Asset, viz_id: str = uid(31)) -> Visualization:
    """A visualization of NORTH as the listing shows it."""
    return Visualization(
        id=viz_id,
        aoi_id=NORTH.id,
        index_id=index.id,
        index_name=index.name,
        status="success",
        assets=list(assets),
    )


def resolve(
    *visualizations: VisualizationDecl,
    assets: Sequence[Asset] | None = ASSETS,
    seen: Sequence[Visualization] = (),
) -> tuple[list[DesiredVisualization], list[Problem]]:
    """Resolve visualizations declared in one entry for NORTH."""
    decl = entry(NORTH.name, *visualizations)
    found, problems, from_selectors = resolve_visualizations(NORTH, [decl], LOOKUP, assets, seen)
    assert from_selectors == []  # no selector declared anything here
    return found, problems


def one(
    *visualizations: VisualizationDecl,
    assets: Sequence[Asset] | None = ASSETS,
    seen: Sequence[Visualization] = (),
) -> DesiredVisualization:
    """The single visualization that resolves without problems."""
    found, problems = resolve(*visualizations, assets=assets, seen=seen)
    assert problems == []
    (desired,) = found
    return desired


def problem_of(
    *visualizations: VisualizationDecl,
    assets: Sequence[Asset] | None = ASSETS,
    seen: Sequence[Visualization] = (),
) -> Problem:
    """The single problem resolving reports; what has a problem is not desired."""
    found, problems = resolve(*visualizations, assets=assets, seen=seen)
    assert found == []
    (problem,) = problems
    return problem


def selectors(decl: VisualizationDecl) -> tuple[AssetSel, ...]:
    assert decl.assets is not None
    return decl.assets


# --- AOIs ------------------------------------------------------------------------------------


def test_aoi_by_id() -> None:
    selection = select_aois(specs(entry(NORTH.id, viz())), AOIS)
    assert list(selection.groups) == [NORTH.id]
    assert selection.problems == ()


def test_aoi_by_name() -> None:
    decl = entry("Bengaluru-South", viz())
    selection = select_aois(specs(decl), AOIS)
    assert selection.groups == {SOUTH.id: (SOUTH, (decl,))}


def test_unknown_aoi_name_points_at_the_entry_with_the_closest_names() -> None:
    decl = entry("Bengaluru-Nort", viz())
    selection = select_aois(specs(decl), AOIS)
    (problem,) = selection.problems
    assert selection.groups == {}
    assert problem.where == decl.where
    assert problem.message.startswith("unknown AOI 'Bengaluru-Nort' (closest: Bengaluru-North")


def test_unknown_aoi_id_is_a_problem() -> None:
    decl = entry(uid(9), viz())
    (problem,) = select_aois(specs(decl), AOIS).problems
    assert problem.where == decl.where
    assert f"unknown AOI id '{uid(9)}'" in problem.message


def test_two_aois_with_one_name_ask_for_the_id() -> None:
    twins = (Aoi(id=uid(5), name="Farm"), Aoi(id=uid(6), name="Farm"))
    decl = entry("Farm", viz())
    (problem,) = select_aois(specs(decl), twins).problems
    assert problem.where == decl.where
    assert f"2 AOIs are named 'Farm' ({uid(5)}, {uid(6)}): refer to one by its id" in (
        problem.message
    )


def test_entries_naming_one_aoi_by_name_and_by_id_are_grouped_in_spec_order() -> None:
    by_name, by_id = entry(NORTH.name, viz()), entry(NORTH.id, viz("NDWI"))
    selection = select_aois(specs(by_name, by_id), AOIS)
    assert selection.groups == {NORTH.id: (NORTH, (by_name, by_id))}


def test_target_by_name_selects_only_that_aoi() -> None:
    selection = select_aois(
        specs(entry(NORTH.name, viz()), entry(SOUTH.id, viz())), AOIS, ["Bengaluru-South"]
    )
    assert list(selection.groups) == [SOUTH.id]


def test_target_by_id_selects_an_aoi_declared_by_name() -> None:
    selection = select_aois(
        specs(entry(NORTH.name, viz()), entry(SOUTH.name, viz())), AOIS, [NORTH.id]
    )
    assert list(selection.groups) == [NORTH.id]


def test_unknown_target_is_a_config_error_with_the_closest_declared_aoi() -> None:
    with pytest.raises(ConfigError, match=r"'Bengaluru-Sout' \(closest: Bengaluru-South"):
        select_aois(specs(entry(SOUTH.id, viz())), AOIS, ["Bengaluru-Sout"])


def test_target_of_an_undeclared_aoi_is_a_config_error() -> None:
    # SOUTH exists in the API, but no spec declares it: the target must not plan nothing.
    with pytest.raises(ConfigError, match="matches no AOI declared in the specs"):
        select_aois(specs(entry(NORTH.name, viz())), AOIS, [SOUTH.name])


def test_untargeted_entries_do_not_report_their_problems() -> None:
    selection = select_aois(
        specs(entry("No-Such-AOI", viz()), entry(NORTH.name, viz())), AOIS, [NORTH.name]
    )
    assert selection.problems == ()
    assert list(selection.groups) == [NORTH.id]


def test_target_as_written_reports_the_problem_of_that_entry() -> None:
    decl = entry("Bengaluru-Nort", viz())
    selection = select_aois(specs(decl), AOIS, ["Bengaluru-Nort"])
    assert [p.where for p in selection.problems] == [decl.where]


# --- closest ---------------------------------------------------------------------------------


def test_closest_puts_a_transposition_first() -> None:
    # NVDI-2 is closer by ratio, but swapped letters are the likeliest typo.
    assert closest("NVDI", ["NVDI-2", "NDVI"]) == " (closest: NDVI, NVDI-2)"


def test_closest_ignores_case() -> None:
    assert closest("ndvi", ["NDVI"]) == " (closest: NDVI)"


def test_closest_is_empty_when_nothing_is_close() -> None:
    assert closest("Chlorophyll", ["NDVI", "NDWI"]) == ""


# --- indices ---------------------------------------------------------------------------------


def test_index_by_name() -> None:
    assert LOOKUP.resolve("NDWI", at()) == NDWI


def test_index_by_id() -> None:
    assert LOOKUP.resolve(CHL.id, at()) == CHL


def test_unknown_index_points_at_the_reference_with_the_closest_names() -> None:
    where = at()
    problem = LOOKUP.resolve("NVDI", where)
    assert problem == Problem("unknown index 'NVDI' (closest: NDVI, NDWI)", where)


def test_two_indices_with_one_name_ask_for_the_id() -> None:
    twin = Index(id=uid(16), name="NDVI", type="custom", expression_type="index")
    where = at()
    problem = IndexLookup((*INDICES, twin)).resolve("NDVI", where)
    assert problem == Problem(
        f"2 indices are named 'NDVI' ({NDVI.id}, {twin.id}): use the id", where
    )


def test_an_index_problem_does_not_hide_the_asset_problems() -> None:
    decl = viz("NVDI", ["North-X"])
    found, problems = resolve(decl)
    assert found == []
    assert [p.where for p in problems] == [decl.index_where, selectors(decl)[0].where]


# --- assets ----------------------------------------------------------------------------------


def test_asset_by_name() -> None:
    desired = one(viz("NDVI", ["North-B"]))
    assert desired.assets == (B,)
    assert desired.identity == Identity.of(NDVI.id, [B.id])


def test_asset_by_id() -> None:
    assert one(viz("NDVI", [C.id])).assets == (C,)


def test_asset_by_date() -> None:
    desired = one(viz("NDVI", ["2024-05-06"]))
    assert desired.assets == (A,)
    assert desired.dates == frozenset({"2024-05-06"})


def test_assets_keep_the_spec_order() -> None:
    assert one(viz("NDVI", ["North-C", "2024-05-06"])).assets == (C, A)


def test_unknown_asset_name_names_the_closest_assets() -> None:
    decl = viz("NDVI", ["North-X"])
    problem = problem_of(decl)
    assert problem.where == selectors(decl)[0].where
    assert problem.message.startswith(
        "unknown asset 'North-X' in AOI 'Bengaluru-North' (closest: North-A"
    )


def test_an_asset_named_like_a_policy_points_at_the_policy() -> None:
    problem = problem_of(viz("NDVI", ["All"]))
    assert problem.message == (
        "unknown asset 'All' in AOI 'Bengaluru-North'; for the policy, write assets: all "
        "(without brackets)"
    )


def test_unknown_asset_id() -> None:
    problem = problem_of(viz("NDVI", [uid(99)]))
    assert problem.message == f"asset id '{uid(99)}' is not an asset of AOI 'Bengaluru-North'"


def test_date_without_an_asset_lists_the_asset_dates() -> None:
    problem = problem_of(viz("NDVI", ["2024-05-07"]))
    assert problem.message == (
        "no asset of AOI 'Bengaluru-North' is dated 2024-05-07; its asset dates are: "
        "2024-05-06, 2024-08-19, 2024-11-20"
    )


def test_date_of_two_assets_asks_for_a_name() -> None:
    twin = Asset(id=uid(24), name="North-A2", date=A.date)
    problem = problem_of(viz("NDVI", [A.date]), assets=(*ASSETS, twin))
    assert "2 assets of AOI 'Bengaluru-North' are dated 2024-05-06 (North-A, North-A2)" in (
        problem.message
    )


def test_name_of_two_assets_asks_for_the_id() -> None:
    twin = Asset(id=uid(24), name="North-A", date="2025-01-01")
    problem = problem_of(viz("NDVI", ["North-A"]), assets=(*ASSETS, twin))
    assert f"are named 'North-A' ({A.id}, {twin.id}): use the id" in problem.message


def test_asset_selected_twice_names_the_first_selector() -> None:
    decl = viz("NDVI", ["North-A", "2024-05-06"])
    problem = problem_of(decl)
    first, second = selectors(decl)
    assert problem == Problem(
        f"asset 'North-A' is selected twice: first at {first.where}", (second.where)
    )


def test_omitted_assets_are_all_of_the_aois_assets() -> None:
    desired = one(viz("NDVI"))
    assert desired.assets is None
    assert desired.identity == Identity.of(NDVI.id, [A.id, B.id, C.id])
    assert desired.dates == {A.date, B.date, C.date}


def test_resolution_is_carried() -> None:
    assert one(viz("NDVI", resolution=2.5)).resolution == 2.5


def test_ids_only_without_the_asset_listing_resolve_from_the_matching_visualization() -> None:
    decl = viz("NDVI", [B.id, A.id], rollback("dynamic", B.date))
    desired = one(decl, assets=None, seen=[existing(NDVI, A, B)])
    assert desired.assets == (B, A)  # names and dates come from the visualization's assets
    assert desired.dates == {A.date, B.date}
    assert desired.rollbacks[0].dates == (B.date,)


def test_ids_only_without_listing_or_match_is_reported_not_guessed() -> None:
    decl = viz("NDVI", [A.id])
    problem = problem_of(decl, assets=None, seen=[existing(NDWI, B)])
    assert problem.where == decl.where
    assert "were not read" in problem.message


def test_ids_only_shown_by_listed_visualizations_take_their_names_and_dates() -> None:
    desired = one(viz("NDVI", [A.id]), assets=None, seen=[existing(NDWI, A, B)])
    assert desired.assets == (A,)
    assert desired.identity == Identity.of(NDVI.id, [A.id])


def test_omitted_assets_without_the_listing_are_reported_not_guessed() -> None:
    problem = problem_of(viz("NDVI"), assets=None, seen=[existing(NDVI, A, B, C)])
    assert "the assets of AOI 'Bengaluru-North' were not read" in problem.message


# --- declared twice --------------------------------------------------------------------------


def test_same_visualization_declared_twice_alike_is_one() -> None:
    first, second = viz("NDVI", ["North-A"]), viz("NDVI", ["North-A"])
    found, problems = resolve(first, second)
    assert problems == []
    assert [d.decl for d in found] == [first]


def test_a_second_declaration_adds_a_resolution_and_a_rollback_of_another_mode() -> None:
    first = viz("NDVI", None, rollback("dynamic", A.date))
    second = viz("NDVI", None, rollback("theoretical", B.date), resolution=5)
    (merged,) = one_of(first, second)
    assert merged.resolution == 5
    assert [(r.mode, r.dates, r.where) for r in merged.rollbacks] == [
        ("dynamic", (A.date,), first.rollbacks[0].where),
        ("theoretical", (B.date,), second.rollbacks[0].where),
    ]


def one_of(*visualizations: VisualizationDecl) -> list[DesiredVisualization]:
    found, problems = resolve(*visualizations)
    assert problems == []
    return found


def test_conflicting_rollbacks_of_one_mode_name_both_positions() -> None:
    first = viz("NDVI", ["North-A", "North-B"], rollback("dynamic", A.date))
    second = viz(NDVI.id, [B.date, A.id], rollback("dynamic", B.date))
    found, (problem,) = resolve(first, second)
    assert [d.decl for d in found] == [first]
    assert problem.where == second.rollbacks[0].where
    assert problem.message == (
        "visualization 'NDVI' on AOI 'Bengaluru-North' is declared twice with conflicting "
        f"dynamic rollbacks: dates {B.date} here, dates {A.date} at {first.rollbacks[0].where}; "
        "roll a mode back in one place (or list the same dates and revision in both)"
    )


def test_another_revision_of_the_same_rollback_is_a_conflict() -> None:
    first = viz("NDVI", None, rollback("dynamic", A.date))
    second = viz("NDVI", None, rollback("dynamic", A.date, revision=1))
    _, (problem,) = resolve(first, second)
    assert "(revision 1) here" in problem.message


def test_two_resolutions_of_one_visualization_are_a_conflict() -> None:
    first, second = viz("NDVI", resolution=10), viz("NDVI", resolution=20)
    _, (problem,) = resolve(first, second)
    assert problem.where == second.where
    assert f"different resolutions: 20 here, 10 at {first.where}" in problem.message


def test_omitted_assets_and_every_asset_listed_are_one_visualization() -> None:
    first, second = viz("NDVI"), viz("NDVI", ["North-C", "North-B", "North-A"], resolution=3)
    (merged,) = one_of(first, second)
    assert merged.decl == first and merged.resolution == 3


def test_same_visualization_in_entries_by_name_and_by_id_conflicting() -> None:
    first = viz("NDVI", ["North-A"], rollback("dynamic", A.date))
    second = viz("NDVI", ["2024-05-06"], rollback("dynamic", A.date, revision=2))
    selection = select_aois(specs(entry(NORTH.name, first), entry(NORTH.id, second)), AOIS)
    observed = Observed(AOIS, INDICES, {NORTH.id: ObservedAoi(NORTH, (), ASSETS)})
    desired = resolve_desired(selection, observed)
    (problem,) = desired.problems
    assert problem.where == second.rollbacks[0].where
    assert f"at {first.rollbacks[0].where}" in problem.message


def test_same_assets_with_another_index_is_another_visualization() -> None:
    found, problems = resolve(viz("NDVI", ["North-A"]), viz("NDWI", ["North-A"]))
    assert problems == []
    assert [d.index for d in found] == [NDVI, NDWI]


# --- rollbacks -------------------------------------------------------------------------------


def test_rollback_is_resolved_with_its_dates_and_revision() -> None:
    desired = one(viz("NDVI", None, rollback("theoretical", C.date, A.date, revision=2)))
    (resolved,) = desired.rollbacks
    assert (resolved.mode, resolved.dates, resolved.revision) == (
        "theoretical",
        (A.date, C.date),
        2,
    )


@pytest.mark.parametrize(
    ("index", "mode", "rule"),
    [
        (CHL, "theoretical", "a custom index with expression_type 'index' has only a dynamic"),
        (TRUE_COLOR, "dynamic", "a composite index has no legends"),
        (GRAY, "dynamic", "a grayscale index has no legends"),
    ],
)
def test_rollback_of_a_mode_the_index_cannot_have_says_why(
    index: Index, mode: Mode, rule: str
) -> None:
    bad = rollback(mode, A.date)
    problem = problem_of(viz(index.name, ["North-A"], bad))
    assert problem.where == bad.where
    assert problem.message.startswith(
        f"index '{index.name}' has no {mode} legend to roll back: {rule}"
    )


@pytest.mark.parametrize("mode", ["dynamic", "theoretical"])
def test_a_preset_index_has_both_modes(mode: str) -> None:
    assert mode_problem(NDVI, mode, at()) is None


def test_custom_index_has_a_dynamic_legend() -> None:
    assert mode_problem(CHL, "dynamic", at()) is None


def test_custom_index_without_an_expression_type_is_a_problem_not_a_crash() -> None:
    # The contract does not require expression_type: a custom index may come without one.
    bare = Index(id=uid(17), name="Bare", type="custom")
    where = at()
    problem = mode_problem(bare, "dynamic", where)
    assert problem is not None
    assert problem.where == where
    assert problem.message.startswith("index 'Bare' has no dynamic legend to roll back: ")


def test_rollback_date_not_among_the_assets_dates_points_at_that_date() -> None:
    bad = rollback("dynamic", A.date, C.date)
    problem = problem_of(viz("NDVI", ["North-A", "North-B"], bad))
    assert problem.where == bad.date_wheres[1]
    assert problem.message == (
        "rollback date 2024-11-20 is not a date of this visualization's assets "
        "(its dates: 2024-05-06, 2024-08-19)"
    )


# --- what refresh must read ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("assets", "needed"),
    [
        (None, True),  # omitted: every asset is the identity
        (["North-A"], True),
        (["2024-05-06"], True),
        ([uid(21), "North-B"], True),
        ([uid(21), uid(22)], False),
    ],
)
def test_asset_listing_is_needed_unless_every_asset_is_an_id(
    assets: list[str] | None, needed: bool
) -> None:
    assert needs_asset_listing([entry(NORTH.name, viz("NDVI", assets))]) is needed


def test_asset_listing_is_needed_if_any_entry_of_the_aoi_needs_it() -> None:
    decls = [entry(NORTH.id, viz("NDVI", [A.id])), entry(NORTH.name, viz("NDWI", ["North-A"]))]
    assert needs_asset_listing(decls) is True


def test_an_entry_without_visualizations_needs_no_asset_listing() -> None:
    assert needs_asset_listing([entry(NORTH.name)]) is False


def test_ids_of_an_existing_visualization_need_no_assets_for_creates() -> None:
    decls = [entry(NORTH.name, viz("NDVI", [B.id, A.id]))]
    assert needs_assets_for_creates(decls, LOOKUP, [existing(NDVI, A, B)]) is False


def test_ids_of_a_visualization_to_create_need_the_assets() -> None:
    decls = [entry(NORTH.name, viz("NDVI", [A.id, C.id]))]
    assert needs_assets_for_creates(decls, LOOKUP, [existing(NDVI, A, B)]) is True


def test_ids_all_shown_by_listed_visualizations_need_no_assets() -> None:
    # Another index over the same assets, or a subset of one's: the listing names and dates them.
    decls = [entry(NORTH.name, viz("NDWI", [A.id, B.id]), viz("NDVI", [B.id]))]
    assert needs_assets_for_creates(decls, LOOKUP, [existing(NDVI, A, B)]) is False


def test_an_unknown_index_needs_no_assets_for_creates() -> None:
    # Nothing can be created: the resolver reports the index instead.
    decls = [entry(NORTH.name, viz("NVDI", [A.id]))]
    assert needs_assets_for_creates(decls, LOOKUP, []) is False


# --- everything at once ----------------------------------------------------------------------


def test_resolve_desired_keeps_the_selection_problems_and_aois() -> None:
    unknown = Problem("unknown AOI 'X'", at())
    selection = Selection({NORTH.id: (NORTH, (entry(NORTH.name, viz("NDVI")),))}, (unknown,))
    observed = Observed(AOIS, INDICES, {NORTH.id: ObservedAoi(NORTH, (), ASSETS)})
    desired = resolve_desired(selection, observed)
    assert desired.aois == (NORTH,)
    assert [d.index for d in desired.visualizations] == [NDVI]
    assert desired.problems == (unknown,)


def test_an_aoi_that_was_not_observed_is_reported() -> None:
    selection = select_aois(specs(entry(NORTH.name, viz("NDVI", [A.id]))), AOIS)
    desired = resolve_desired(selection, Observed(AOIS, INDICES, {}))
    assert desired.visualizations == ()
    (problem,) = desired.problems
    assert "were not read" in problem.message
