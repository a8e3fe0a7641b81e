"""Asset policies when new imagery arrives: `assets: all` (the default) and `assets: any`."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.api.types import Visualization
from reconciler.core.plan import Plan
from reconciler.emulator import Emulator
from reconciler.errors import ResolutionError
from reconciler.run.engine import Engine
from reconciler.run.settings import Settings
from reconciler.spec.load import validate_specs
from tests.planning import KOCHI, PUNE, client_for, make_plan, new_asset, run_apply, write_spec

PUNE_NDWI = "1532fbc7-71c6-5a5e-b8b9-3814b5e9cfeb"  # NDWI over all three Pune assets


def plan_of(emulator: Emulator, tmp_path: Path, policy: str | None, rollback: str = "") -> Plan:
    text = "aois:\n  - aoi: {name: Pune-East}\n    visualizations:\n      - index: NDWI\n"
    if policy:
        text += f"        assets: {policy}\n"
    if rollback:
        text += f"        rollback: {rollback}\n"
    return make_plan(emulator, write_spec(tmp_path / "specs", text), tmp_path / "state.json")


@pytest.mark.parametrize("policy", [None, "all"], ids=["omitted", "all"])
def test_all_creates_a_new_one_and_says_why(
    emulator: Emulator, tmp_path: Path, policy: str | None
) -> None:
    assert not plan_of(emulator, tmp_path, policy).has_changes
    new_asset(emulator, PUNE, "Pune-D", "2025-12-01")
    plan = plan_of(emulator, tmp_path, policy)
    (create,) = plan.creates
    assert create.assets is None and len(create.identity) == 4
    (warning,) = plan.warnings  # the old one is explained here, not listed as undeclared
    assert (warning.kind, warning.visualization_id) == ("new-assets", PUNE_NDWI)
    assert warning.where == create.where
    assert warning.message == (
        f"1 new asset (Pune-D 2025-12-01) since visualization {PUNE_NDWI} ('NDWI' over 3 "
        "assets, 2024-06-01 … "
        f"2025-06-10): a new one over all 4 assets is created (assets: all); {PUNE_NDWI} "
        "stays, the API has no delete"
    )

    run_apply(emulator, plan, tmp_path / "state.json")
    after = plan_of(emulator, tmp_path, policy)
    assert not after.has_changes
    assert [(w.kind, w.visualization_id) for w in after.warnings] == [("undeclared", PUNE_NDWI)]


def test_all_says_nothing_about_one_that_never_covered_all_assets(
    emulator: Emulator, tmp_path: Path
) -> None:
    # Nagpur's Chlorophyll-Red-Edge covers the two 2025 passes only, made when twelve older
    # assets existed: the one over all of them does not follow it.
    text = (
        "aois: [{aoi: {name: Nagpur-Farms},\n"
        "        visualizations: [{index: Chlorophyll-Red-Edge, assets: all}]}]\n"
    )
    plan = make_plan(emulator, write_spec(tmp_path / "specs", text), tmp_path / "state.json")
    assert len(plan.creates) == 1
    assert {w.kind for w in plan.warnings} == {"undeclared"}


def test_any_accepts_what_exists_when_assets_arrive(emulator: Emulator, tmp_path: Path) -> None:
    new_asset(emulator, PUNE, "Pune-D", "2025-12-01")
    emulator.counter.reset()
    plan = plan_of(emulator, tmp_path, "any")
    assert not plan.has_changes and plan.warnings == ()
    assert plan.aois[0].unchanged == 1
    # Settled by the visualization listing alone: no asset listing read.
    assert emulator.counter.count(route="/v0/aois/{aoi_id}/assets") == 0


def test_any_rolls_back_on_the_visualization_it_settles_on(
    emulator: Emulator, tmp_path: Path
) -> None:
    rollback = "[{mode: theoretical, dates: [2025-01-15]}]"
    (change,) = plan_of(emulator, tmp_path, "any", rollback).rollbacks
    assert change.visualization_id == PUNE_NDWI


def test_any_creates_over_all_assets_when_none_exists(emulator: Emulator, tmp_path: Path) -> None:
    text = "aois: [{aoi: {name: Kochi-Coast}, visualizations: [{index: EVI, assets: any}]}]\n"
    plan = make_plan(emulator, write_spec(tmp_path / "specs", text), tmp_path / "state.json")
    (create,) = plan.creates
    assert create.assets is None and len(create.identity) == 2
    run_apply(emulator, plan, tmp_path / "state.json")
    new_asset(emulator, KOCHI, "Kochi-C", "2026-01-01")
    assert not make_plan(emulator, tmp_path / "specs", tmp_path / "state.json").has_changes


def test_any_sticks_to_the_one_it_created_when_a_larger_one_appears(
    emulator: Emulator, tmp_path: Path
) -> None:
    text = (
        "aois: [{aoi: {name: Kochi-Coast}, visualizations: [{index: EVI, assets: any,\n"
        "  rollback: [{mode: dynamic, dates: [2025-03-03]}]}]}]\n"
    )
    specs, state = write_spec(tmp_path / "specs", text), tmp_path / "state.json"
    plan = make_plan(emulator, specs, state)
    run_apply(emulator, plan, state)
    (ours,) = [v.id for v in list_evi(emulator)]
    # Someone makes an EVI over more assets by hand: larger, and newer.
    later = new_asset(emulator, KOCHI, "Kochi-C", "2026-01-01")
    with client_for(emulator) as client:
        index_id = list_evi(emulator)[0].index_id
        assets = [a.id for a in client.list_assets(KOCHI)]
        assert later in assets
        theirs = client.create_visualization(KOCHI, index_id, src_asset_ids=assets).id
    plan = make_plan(emulator, specs, state)
    # Still settled on ours (the state has its records): no rollback moves to theirs.
    assert (plan.creates, plan.rollbacks) == ((), ())
    assert [(w.kind, w.visualization_id) for w in plan.warnings] == [("undeclared", theirs)]
    assert ours != theirs

    # A rollback date only theirs has: plan (and so validate --online, which reads the same
    # state) checks it against ours, the one apply would roll back.
    moved = write_spec(tmp_path / "moved", text.replace("2025-03-03", "2026-01-01"))
    with pytest.raises(ResolutionError, match="2026-01-01"):
        make_plan(emulator, moved, state)
    with client_for(emulator) as client:
        engine = Engine(Settings(api_url=emulator.url, state=state), client=client)
        online = engine.validate([str(moved)], online=True)
    assert [p.message for p in online.problems] and "2026-01-01" in online.problems[0].message


def list_evi(emulator: Emulator) -> list[Visualization]:
    with client_for(emulator) as client:
        return [v for v in client.list_visualizations(KOCHI) if v.index_name == "EVI"]


def test_any_prefers_one_that_did_not_fail(emulator: Emulator, tmp_path: Path) -> None:
    # Nagpur's NDVIs: four over three assets each, one over Nagpur-M that failed.
    text = (
        "aois: [{aoi: {name: Nagpur-Farms}, visualizations: [{index: NDVI, assets: any,\n"
        "  rollback: [{mode: dynamic, dates: [2024-10-04]}]}]}]\n"
    )
    plan = make_plan(emulator, write_spec(tmp_path / "specs", text), tmp_path / "state.json")
    (change,) = plan.rollbacks  # the newest of the largest: J, K, L
    assert change.visualization_id == "d17b2df7-eae7-5807-8fa5-661c39f02570"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("al", "'assets' must be a list of assets (like [Bengaluru-A]) or one of the policies "
         "all or any, got 'al' (did you mean 'all'?)"),
        ("Kochi-A", "'assets' must be a list of assets (like [Bengaluru-A]) or one of the "
         "policies all or any, got 'Kochi-A'"),
        ("5", "'assets': expected a list of assets, or the policy all or any, got 5"),
        ("[]", "'assets' must not be empty; write 'all' (or omit the key) to use all of the "
         "AOI's assets"),
    ],
)  # fmt: skip
def test_validate_knows_the_policies(tmp_path: Path, value: str, message: str) -> None:
    entry = f"{{aoi: {{name: Kochi-Coast}}, visualizations: [{{index: EVI, assets: {value}}}]}}"
    spec = write_spec(tmp_path, f"aois: [{entry}]\n")
    (problem,) = validate_specs([str(spec)]).problems
    assert problem.message == message
    assert problem.where is not None
    assert (problem.where.line, problem.where.column) == (1, 73)
