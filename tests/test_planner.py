"""The planner: pure tests on hand-built desired, observed and state data (no network).

One rule per test (DESIGN.md, "Semantics"). Desired visualizations are built directly, not
through the resolver, so a failure here is the planner's.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Sequence

import pytest

from reconciler.api.types import Aoi, Asset, Index, Visualization
from reconciler.core import planfile
from reconciler.core.identity import Identity
from reconciler.core.ignore import IgnoreRule, IgnoreRules
from reconciler.core.observed import Observed, ObservedAoi
from reconciler.core.plan import AoiSummary, AssetRef, Plan, RollbackTarget
from reconciler.core.planner import build_plan
from reconciler.core.resolve import Desired, DesiredVisualization, ResolvedRollback
from reconciler.errors import Problem, ResolutionError, TooManyChangesError, Where
from reconciler.spec.decls import AssetSel, IgnoreDecl, Mode, VisualizationDecl
from reconciler.state.records import State, VizRecord

NORTH = Aoi(id="aoi-north", name="Bengaluru-North")
SOUTH = Aoi(id="aoi-south", name="Bengaluru-South")

NDVI = Index(id="idx-ndvi", name="NDVI", type="preset")
NDWI = Index(id="idx-ndwi", name="NDWI", type="preset")
CHL = Index(id="idx-chl", name="Chlorophyll", type="custom", expression_type="index")
TRUE_COLOR = Index(id="idx-tc", name="True-Color", type="custom", expression_type="composite")
INDICES = (NDVI, NDWI, CHL, TRUE_COLOR)

A = Asset(id="asset-a", name="North-A", date="2024-05-06")
B = Asset(id="asset-b", name="North-B", date="2024-08-19")
C = Asset(id="asset-c", name="North-C", date="2024-11-20")
S = Asset(id="asset-s", name="South-A", date="2024-03-02")

T0 = "2025-01-01T00:00:00Z"
T1 = "2025-01-02T00:00:00Z"

_lines = itertools.count(1)


def at() -> Where:
    """A fresh spec position."""
    return Where("specs/test.yaml", next(_lines), 5)


def rollback(mode: Mode, *dates: str, revision: int = 0) -> ResolvedRollback:
    return ResolvedRollback(mode, dates, revision, at())


def want(
    index: Index = NDVI,
    assets: Sequence[Asset] = (A, B),
    *rollbacks: ResolvedRollback,
    aoi: Aoi = NORTH,
    omitted: bool = False,
    resolution: float | None = None,
) -> DesiredVisualization:
    """A resolved declaration of ``index`` over ``assets`` (all of the AOI's when ``omitted``)."""
    decl = VisualizationDecl(
        index=index.name,
        index_where=at(),
        assets=None if omitted else tuple(AssetSel("id", a.id, at()) for a in assets),
        resolution=resolution,
        rollbacks=(),
        where=at(),
    )
    return DesiredVisualization(
        aoi=aoi,
        index=index,
        assets=None if omitted else tuple(assets),
        identity=Identity.of(index.id, (a.id for a in assets)),
        dates=frozenset(a.date for a in assets),
        resolution=resolution,
        rollbacks=rollbacks,
        decl=decl,
    )


def viz(
    viz_id: str,
    index: Index = NDVI,
    assets: Sequence[Asset] = (A, B),
    *,
    aoi: Aoi = NORTH,
    status: str = "success",
    updated_at: str = T0,
) -> Visualization:
    """A visualization as the API lists it."""
    return Visualization(
        id=viz_id,
        aoi_id=aoi.id,
        index_id=index.id,
        index_name=index.name,
        status=status,
        updated_at=updated_at,
        assets=list(assets),
    )


def world(*visualizations: Visualization, aois: Sequence[Aoi] = (NORTH,)) -> Observed:
    """What refresh would have read for ``aois``."""
    return Observed(
        aois=tuple(aois),
        indices=INDICES,
        by_aoi={
            aoi.id: ObservedAoi(aoi, tuple(v for v in visualizations if v.aoi_id == aoi.id))
            for aoi in aois
        },
    )


def record(
    viz_id: str = "v1",
    *,
    updated_at: str = T0,
    **legends: dict[str, int],
) -> State:
    """A state remembering, for ``viz_id``, legends per mode (date -> revision)."""
    return State({viz_id: VizRecord(aoi_id=NORTH.id, updated_at=updated_at, legends=legends)})


def plan(
    wanted: Sequence[DesiredVisualization], observed: Observed, state: State | None = None
) -> Plan:
    desired = Desired(
        aois=tuple(seen.aoi for seen in observed.by_aoi.values()),
        visualizations=tuple(wanted),
    )
    return build_plan(desired, observed, state or State())


# --- creates ---------------------------------------------------------------------------------


def test_missing_visualization_is_created_with_its_identity_and_legend_modes() -> None:
    wanted = want(NDVI, (B, A), resolution=10.0)
    (create,) = plan([wanted], world()).creates
    assert (create.aoi_id, create.index_id, create.index_name) == (NORTH.id, NDVI.id, "NDVI")
    assert create.assets == (AssetRef(A.id, A.name, A.date), AssetRef(B.id, B.name, B.date))
    assert create.identity == (A.id, B.id)
    assert create.legend_modes == ("dynamic", "theoretical")
    assert create.resolution == 10.0
    assert create.where == str(wanted.where)


def test_create_of_omitted_assets_leaves_them_to_the_api_but_keeps_the_identity() -> None:
    (create,) = plan([want(NDVI, (C, A, B), omitted=True)], world()).creates
    assert create.assets is None
    assert create.identity == (A.id, B.id, C.id)


def test_create_of_an_index_without_legends_has_no_legend_modes() -> None:
    (create,) = plan([want(TRUE_COLOR)], world()).creates
    assert create.legend_modes == ()


def test_create_carries_its_rollbacks_instead_of_planning_them() -> None:
    # A fresh visualization starts auto-computed; apply rolls back only if it adopts one (409).
    result = plan([want(NDVI, (A, B), rollback("dynamic", A.date, revision=3))], world())
    (create,) = result.creates
    assert create.rollbacks == (RollbackTarget("dynamic", (A.date,), 3),)
    assert result.rollbacks == ()


def test_identity_ignores_the_order_of_the_assets() -> None:
    result = plan([want(NDVI, (B, A))], world(viz("v1", NDVI, (A, B))))
    assert result.creates == ()


def test_same_assets_under_another_index_is_created() -> None:
    result = plan([want(NDWI, (A, B))], world(viz("v1", NDVI, (A, B))))
    assert [c.index_id for c in result.creates] == [NDWI.id]


# --- present, undeclared, status -------------------------------------------------------------


def test_present_visualization_plans_nothing() -> None:
    result = plan([want(NDVI, (A, B))], world(viz("v1", NDVI, (A, B))))
    assert not result.has_changes
    assert result.warnings == ()


def test_undeclared_visualization_is_a_warning_never_a_change() -> None:
    result = plan([], world(viz("v9", NDWI, (A,))))
    assert not result.has_changes
    (warning,) = result.warnings
    assert (warning.kind, warning.visualization_id, warning.aoi_id) == (
        "undeclared",
        "v9",
        NORTH.id,
    )
    assert "left alone" in warning.message


def test_a_declared_visualization_is_not_also_reported_undeclared() -> None:
    result = plan([want(NDVI, (A,))], world(viz("v1", NDVI, (A,)), viz("v2", NDVI, (A, B))))
    assert [(w.kind, w.visualization_id) for w in result.warnings] == [("undeclared", "v2")]


def test_failed_visualization_warns_and_skips_its_rollbacks() -> None:
    wanted = want(NDVI, (A, B), rollback("dynamic", A.date))
    result = plan([wanted], world(viz("v1", status="failed")))
    assert result.rollbacks == ()
    assert result.creates == ()  # the API has no delete: it cannot be recreated
    assert [(w.kind, w.visualization_id) for w in result.warnings] == [("failed", "v1")]
    assert result.warnings[0].where == str(wanted.where)


@pytest.mark.parametrize("status", ["creating", "partial_success"])
def test_unfinished_visualization_warns_and_keeps_its_rollbacks(status: str) -> None:
    wanted = want(NDVI, (A, B), rollback("dynamic", A.date))
    result = plan([wanted], world(viz("v1", status=status)))
    assert [(w.kind, w.visualization_id) for w in result.warnings] == [(status, "v1")]
    assert [r.visualization_id for r in result.rollbacks] == ["v1"]


# --- rollbacks -------------------------------------------------------------------------------


def test_rollback_without_a_record_is_planned_as_no_record() -> None:
    wanted = want(NDVI, (A, B), rollback("dynamic", A.date, B.date, revision=1))
    (change,) = plan([wanted], world(viz("v1"))).rollbacks
    assert (change.visualization_id, change.mode, change.dates) == (
        "v1",
        "dynamic",
        (A.date, B.date),
    )
    assert (change.reason, change.revision) == ("no-record", 1)
    assert change.where == str(wanted.rollbacks[0].where)


def test_recorded_rollback_of_an_unchanged_visualization_plans_nothing() -> None:
    state = record(dynamic={A.date: 0, B.date: 0})
    result = plan(
        [want(NDVI, (A, B), rollback("dynamic", A.date, B.date))], world(viz("v1")), state
    )
    assert result.rollbacks == ()


def test_moved_updated_at_plans_every_date_as_changed() -> None:
    state = record(updated_at=T0, dynamic={A.date: 0, B.date: 0})
    observed = world(viz("v1", updated_at=T1))
    (change,) = plan(
        [want(NDVI, (A, B), rollback("dynamic", A.date, B.date))], observed, state
    ).rollbacks
    assert (change.reason, change.dates) == ("changed", (A.date, B.date))
    assert T0 in change.detail and T1 in change.detail


def test_bumped_revision_plans_only_the_dates_recorded_at_a_lower_revision() -> None:
    state = record(dynamic={A.date: 1, B.date: 2})
    wanted = want(NDVI, (A, B), rollback("dynamic", A.date, B.date, revision=2))
    (change,) = plan([wanted], world(viz("v1")), state).rollbacks
    assert (change.reason, change.dates, change.revision) == ("revision", (A.date,), 2)
    assert f"{A.date}: revision 1 → 2" in change.detail


def test_new_date_in_the_spec_is_no_record_for_that_date_only() -> None:
    state = record(dynamic={A.date: 0})
    wanted = want(NDVI, (A, B), rollback("dynamic", A.date, B.date))
    (change,) = plan([wanted], world(viz("v1")), state).rollbacks
    assert (change.reason, change.dates) == ("no-record", (B.date,))


def test_a_record_of_another_mode_does_not_count() -> None:
    state = record(dynamic={A.date: 0})
    wanted = want(NDVI, (A, B), rollback("theoretical", A.date))
    (change,) = plan([wanted], world(viz("v1")), state).rollbacks
    assert (change.mode, change.reason, change.dates) == ("theoretical", "no-record", (A.date,))


def test_dates_pending_for_different_reasons_name_the_strongest() -> None:
    state = record(dynamic={A.date: 0})
    wanted = want(NDVI, (A, B), rollback("dynamic", A.date, B.date, revision=1))
    (change,) = plan([wanted], world(viz("v1")), state).rollbacks
    assert (change.reason, change.dates) == ("revision", (A.date, B.date))


def test_one_rollback_per_mode_with_all_its_dates_sorted() -> None:
    wanted = want(
        NDVI,
        (A, B, C),
        rollback("theoretical", C.date, A.date),
        rollback("dynamic", C.date, B.date, A.date),
    )
    result = plan([wanted], world(viz("v1", NDVI, (A, B, C))))
    assert [(r.mode, r.dates) for r in result.rollbacks] == [
        ("dynamic", (A.date, B.date, C.date)),
        ("theoretical", (A.date, C.date)),
    ]


def test_a_record_of_another_visualization_does_not_count() -> None:
    state = record("v-other", dynamic={A.date: 0})
    wanted = want(NDVI, (A, B), rollback("dynamic", A.date))
    (change,) = plan([wanted], world(viz("v1")), state).rollbacks
    assert change.reason == "no-record"


# --- the plan as a whole ---------------------------------------------------------------------


def _busy_world() -> tuple[list[DesiredVisualization], Observed]:
    wanted = [
        want(NDVI, (A, B), rollback("dynamic", A.date), rollback("theoretical", B.date)),
        want(NDWI, (A,)),
        want(NDWI, (B,)),
        want(CHL, (A, B, C), omitted=True),
        want(NDVI, (S,), rollback("dynamic", S.date), aoi=SOUTH),
        want(NDWI, (S,), aoi=SOUTH),
    ]
    observed = world(
        viz("v1", NDVI, (A, B)),
        viz("v2", TRUE_COLOR, (A,)),
        viz("v3", NDWI, (C,), status="failed"),
        viz("v4", NDVI, (S,), aoi=SOUTH),
        viz("v5", CHL, (S,), aoi=SOUTH),
        aois=(NORTH, SOUTH),
    )
    return wanted, observed


def test_plan_order_does_not_depend_on_the_input_order() -> None:
    wanted, observed = _busy_world()
    expected = planfile.document(plan(wanted, observed))
    rng = random.Random(7)
    for _ in range(5):
        shuffled_wanted = rng.sample(wanted, len(wanted))
        by_aoi = {
            aoi_id: ObservedAoi(
                seen.aoi, tuple(rng.sample(seen.visualizations, len(seen.visualizations)))
            )
            for aoi_id, seen in rng.sample(list(observed.by_aoi.items()), len(observed.by_aoi))
        }
        shuffled = Observed(observed.aois, observed.indices, by_aoi)
        assert planfile.document(plan(shuffled_wanted, shuffled)) == expected


def test_plan_is_ordered_by_aoi_name_then_index_name() -> None:
    wanted, observed = _busy_world()
    result = plan(wanted, observed)
    assert [(c.aoi_name, c.index_name) for c in result.creates] == [
        ("Bengaluru-North", "Chlorophyll"),
        ("Bengaluru-North", "NDWI"),
        ("Bengaluru-North", "NDWI"),
        ("Bengaluru-South", "NDWI"),
    ]
    assert [c.identity for c in result.creates[1:3]] == [(A.id,), (B.id,)]  # then by asset
    assert [(r.aoi_name, r.mode) for r in result.rollbacks] == [
        ("Bengaluru-North", "dynamic"),
        ("Bengaluru-North", "theoretical"),
        ("Bengaluru-South", "dynamic"),
    ]


def test_summaries_count_declared_and_unchanged_per_aoi() -> None:
    state = record("v4", dynamic={S.date: 0})
    wanted, observed = _busy_world()
    result = plan(wanted, observed, state)
    assert result.aois == (
        AoiSummary(NORTH.id, NORTH.name, declared=4, unchanged=0),
        AoiSummary(SOUTH.id, SOUTH.name, declared=2, unchanged=1),
    )
    assert result.summary() == {
        "index": 0,
        "create": 4,
        "rollback": 2,
        "legend": 0,
        "warning": 3,
        "unchanged": 1,
        "ignored": 0,
        "unreadable": 0,
    }


def test_an_aoi_with_nothing_declared_is_summarised_too() -> None:
    result = plan([], world(viz("v9")))
    assert result.aois == (AoiSummary(NORTH.id, NORTH.name, declared=0, unchanged=0),)


def test_the_plan_keeps_what_it_observed_and_where_from() -> None:
    observed = world(viz("v1", updated_at=T1))
    desired = Desired(aois=(NORTH,), visualizations=())
    result = build_plan(desired, observed, State(), api_url="https://x", targets=["N"])
    assert result.observed[NORTH.id].visualizations["v1"].updated_at == T1
    assert (result.api_url, result.targets) == ("https://x", ("N",))


def test_the_plan_keeps_the_desired_state_of_the_aois_it_changes_only() -> None:
    wanted = [
        want(NDVI, (A, B), rollback("dynamic", A.date), resolution=10.0),
        want(NDWI, (S,), aoi=SOUTH),
    ]
    observed = world(viz("v1"), viz("v2", NDWI, (S,), aoi=SOUTH), aois=(NORTH, SOUTH))
    result = plan(wanted, observed)  # no state: North's rollback is pending; South is unchanged
    assert set(result.desired) == {NORTH.id} == result.affected_aois
    (kept,) = result.desired[NORTH.id].values()
    assert (kept.index_id, kept.assets, kept.resolution) == (NDVI.id, (A.id, B.id), 10.0)
    assert kept.rollbacks == (RollbackTarget("dynamic", (A.date,), 0),)
    assert kept.label == "NDVI over North-A (2024-05-06), North-B (2024-08-19)"


def _rules(*decls: IgnoreDecl, aoi: Aoi | None = None) -> IgnoreRules:
    resolved = tuple(
        IgnoreRule(d, {NDVI.name: NDVI.id, TRUE_COLOR.name: TRUE_COLOR.id}.get(d.index or ""))
        for d in decls
    )
    if aoi is None:
        return IgnoreRules(everywhere=resolved)
    return IgnoreRules(by_aoi={aoi.id: resolved})


def test_ignore_rules_count_undeclared_visualizations_instead_of_warning() -> None:
    by_index = IgnoreDecl("True-Color", None, "quick looks", Where("specs/i.yaml", 2, 5))
    by_id = IgnoreDecl(None, "v3", None, Where("specs/i.yaml", 4, 5))
    observed = world(viz("v1"), viz("v2", TRUE_COLOR, (A,)), viz("v3", NDWI, (C,)), viz("v4", NDWI))
    desired = Desired(aois=(NORTH,), visualizations=(want(NDVI, (A, B)),))
    result = build_plan(desired, observed, State(), ignore=_rules(by_index, by_id))
    assert [(i.visualization_id, i.rule, i.reason) for i in result.ignored] == [
        ("v2", "specs/i.yaml:2:5", "quick looks"),
        ("v3", "specs/i.yaml:4:5", None),
    ]
    assert [w.visualization_id for w in result.warnings] == ["v4"]
    assert result.summary()["ignored"] == 2


def test_ignore_rules_never_touch_a_declared_visualization_nor_another_aoi() -> None:
    rule = IgnoreDecl("NDVI", None, None, Where("specs/i.yaml", 2, 5))
    observed = world(
        viz("v1", status="failed"), viz("v2", aoi=SOUTH, assets=(S,)), aois=(NORTH, SOUTH)
    )
    desired = Desired(aois=(NORTH, SOUTH), visualizations=(want(NDVI, (A, B)),))
    result = build_plan(desired, observed, State(), ignore=_rules(rule, aoi=NORTH))
    assert [(w.kind, w.visualization_id) for w in result.warnings] == [
        ("failed", "v1"),
        ("undeclared", "v2"),
    ]
    assert result.ignored == ()


def test_a_desired_state_with_problems_raises_resolution_error() -> None:
    problem = Problem("unknown index 'NVDI'", at())
    desired = Desired(aois=(NORTH,), visualizations=(), problems=(problem,))
    with pytest.raises(ResolutionError) as caught:
        build_plan(desired, world(), State())
    assert caught.value.problems == [problem]


# --- safety ----------------------------------------------------------------------------------


def _two_changes() -> Plan:
    result = plan([want(NDVI, (A,)), want(NDWI, (A,))], world())
    assert len(result.changes) == 2
    return result


def test_a_plan_over_the_limit_is_unsafe() -> None:
    with pytest.raises(TooManyChangesError, match="2 changes, more than --max-changes 1"):
        _two_changes().raise_if_unsafe(1)


def test_a_plan_at_the_limit_is_safe() -> None:
    _two_changes().raise_if_unsafe(2)


def test_force_passes_a_plan_over_the_limit() -> None:
    _two_changes().raise_if_unsafe(1, force=True)


def test_no_limit_passes_any_plan() -> None:
    _two_changes().raise_if_unsafe(None)


def test_creates_that_differ_only_in_ids_have_a_fixed_order_too() -> None:
    # Two indices may share a name and two assets a name and date (the spec then uses ids).
    twin_index = Index(id="idx-ndvi-2", name="NDVI", type="preset")
    twin_asset = Asset(id="asset-a2", name=A.name, date=A.date)
    wanted = [want(NDVI, (A,)), want(twin_index, (A,)), want(NDVI, (twin_asset,))]
    expected = planfile.document(plan(wanted, world()))
    for order in itertools.permutations(wanted):
        assert planfile.document(plan(order, world())) == expected


# --- assets: all, when new assets arrived ---------------------------------------------------


def with_assets(*visualizations: Visualization, assets: Sequence[Asset] = (A, B, C)) -> Observed:
    """NORTH as refresh reads it for a declaration over all assets: with its asset listing."""
    return Observed(
        (NORTH,), INDICES, {NORTH.id: ObservedAoi(NORTH, visualizations, tuple(assets))}
    )


def test_all_names_the_visualization_that_covered_all_assets_before() -> None:
    before = viz("v0", assets=(A, B))  # C, dated after B, arrived later
    plan = build_plan(
        Desired((NORTH,), (want(NDVI, (A, B, C), omitted=True),)), with_assets(before), State()
    )
    (create,) = plan.creates
    (note,) = plan.warnings  # instead of an "undeclared" warning about v0
    assert (note.kind, note.visualization_id, note.where) == ("new-assets", "v0", create.where)
    assert note.message.startswith(
        "1 new asset (North-C 2024-11-20) since visualization v0 ('NDVI' over 2 assets,"
    )


def test_all_names_at_most_five_new_assets() -> None:
    new = [Asset(id=f"asset-n{k}", name=f"N{k}", date=f"2025-0{k}-01") for k in range(1, 8)]
    plan = build_plan(
        Desired((NORTH,), (want(NDVI, (A, *new), omitted=True),)),
        with_assets(viz("v0", assets=(A,)), assets=(A, *new)),
        State(),
    )
    (note,) = plan.warnings
    assert note.message.startswith(
        "7 new assets (N1 2025-01-01, N2 2025-02-01, N3 2025-03-01, N4 2025-04-01, "
        "N5 2025-05-01 and 2 more) since visualization v0"
    )


def test_all_names_no_predecessor_that_missed_an_older_asset() -> None:
    partial = viz("v0", assets=(B, C))  # A is older than C: v0 never covered all assets
    plan = build_plan(
        Desired((NORTH,), (want(NDVI, (A, B, C), omitted=True),)), with_assets(partial), State()
    )
    assert [w.kind for w in plan.warnings] == ["undeclared"]


def test_all_trusts_creation_times_over_dates_when_the_api_gives_them() -> None:
    # An old acquisition delivered late: dated before C, created after the visualization.
    late = Asset(
        id="asset-late", name="North-Late", date="2024-01-01", created_at="2025-03-01T00:00:00Z"
    )
    partial = dataclasses.replace(viz("v0", assets=(A, B, C)), created_at="2025-02-01T00:00:00Z")
    plan = build_plan(
        Desired((NORTH,), (want(NDVI, (A, B, C, late), omitted=True),)),
        with_assets(partial, assets=(A, B, C, late)),
        State(),
    )
    assert [w.kind for w in plan.warnings] == ["new-assets"]


def test_a_list_of_assets_never_names_a_predecessor() -> None:
    plan = build_plan(
        Desired((NORTH,), (want(NDVI, (A, B, C)),)), with_assets(viz("v0", assets=(A, B))), State()
    )
    assert [w.kind for w in plan.warnings] == ["undeclared"]
