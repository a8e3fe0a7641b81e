"""When a saved plan is stale: pure tests of what changed in the desired state, and one end to
end case where an AOI the plan changes is no longer declared."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import Result

from reconciler.core.plan import (
    AoiSnapshot,
    AoiSummary,
    Create,
    DesiredViz,
    Plan,
    RollbackTarget,
    VizSnapshot,
)
from reconciler.core.stale import check_not_stale, describe_desired_changes, describe_drift
from reconciler.emulator import Emulator
from reconciler.errors import StalePlanError
from tests.planning import BENGALURU, KOCHI, new_asset, run_cli, write_spec

NDVI = DesiredViz(
    label="NDVI over A (2024-05-06)",
    index_id="ndvi",
    assets=("a",),
    identity=("a",),
    resolution=None,
    rollbacks=(RollbackTarget("dynamic", ("2024-05-06",), 0),),
)
NAMES = {"aoi-1": "Field"}


def changes(before: DesiredViz | None, after: DesiredViz | None) -> list[str]:
    return describe_desired_changes(
        NAMES,
        {"aoi-1": {"k": before} if before else {}},
        {"aoi-1": {"k": after} if after else {}},
    )


def test_the_same_declaration_is_no_change() -> None:
    assert changes(NDVI, NDVI) == []
    # The label is how it reads, not what it is: a renamed asset alone is not a change.
    assert changes(NDVI, dataclasses.replace(NDVI, label="x")) == []


def test_new_imagery_under_a_policy_names_the_assets() -> None:
    evi = DesiredViz("EVI over all assets", "evi", None, ("a", "b"), None, ())
    after = dataclasses.replace(evi, identity=("a", "c", "d"))
    names = {"b": "B (2024-01-01)", "c": "C (2025-02-03)"}
    assert describe_desired_changes(
        NAMES, {"aoi-1": {"evi:all": evi}}, {"aoi-1": {"evi:all": after}}, names
    ) == [
        "AOI Field: EVI over all assets: now also over C (2025-02-03), d; "
        "no longer over B (2024-01-01)"
    ]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (dataclasses.replace(NDVI, resolution=10.0), "resolution default → 10"),
        (
            dataclasses.replace(NDVI, rollbacks=(RollbackTarget("dynamic", ("2024-05-06",), 2),)),
            "dynamic rollback revision 0 → 2",
        ),
        (
            dataclasses.replace(
                NDVI, rollbacks=(RollbackTarget("dynamic", ("2024-05-06", "2024-11-20"), 0),)
            ),
            "dynamic rollback dates 2024-05-06 → 2024-05-06, 2024-11-20",
        ),
        (dataclasses.replace(NDVI, rollbacks=()), "dynamic rollback removed"),
        (
            dataclasses.replace(
                NDVI, rollbacks=(*NDVI.rollbacks, RollbackTarget("theoretical", ("2024-05-06",)))
            ),
            "theoretical rollback added",
        ),
    ],
)
def test_what_changed_in_one_declaration(after: DesiredViz, expected: str) -> None:
    assert changes(NDVI, after) == [f"AOI Field: {after.label}: {expected}"]


def test_declarations_added_and_removed_and_an_aoi_gone() -> None:
    assert changes(NDVI, None) == [f"AOI Field: the specs no longer declare {NDVI.label}"]
    assert changes(None, NDVI) == [f"AOI Field: the specs now also declare {NDVI.label}"]
    assert describe_desired_changes(NAMES, {"aoi-1": {"k": NDVI}}, {}) == [
        "AOI Field: no longer declared in the specs"
    ]


def test_drift_is_told_one_visualization_at_a_time() -> None:
    def aoi(*ids: str) -> dict[str, AoiSnapshot]:
        snapshots = {
            i: VizSnapshot(index=f"IDX-{i}", assets=("a",), status="success", updated_at="t")
            for i in ids
        }
        return {"aoi-1": AoiSnapshot(name="Field", visualizations=snapshots, assets=None)}

    # Few visualizations in common: still one line each, never the whole AOI as one value.
    assert describe_drift(aoi(), aoi("v1", "v2")) == [
        "AOI Field: visualizations/v1 appeared (IDX-v1, success)",
        "AOI Field: visualizations/v2 appeared (IDX-v2, success)",
    ]
    assert describe_drift(aoi("v0"), aoi("v1", "v2", "v3")) == [
        "AOI Field: visualizations/v0 is gone (IDX-v0, success)",
        "AOI Field: visualizations/v1 appeared (IDX-v1, success)",
        "AOI Field: visualizations/v2 appeared (IDX-v2, success)",
        "AOI Field: visualizations/v3 appeared (IDX-v3, success)",
    ]


def test_check_not_stale_looks_only_at_the_aois_the_plan_changes() -> None:
    create = Create(
        aoi_id="aoi-1",
        aoi_name="Field",
        index_id="ndvi",
        index_name="NDVI",
        assets=None,
        resolution=None,
        where="s.yaml:1:1",
    )
    plan = Plan(
        creates=(create,),
        aois=(AoiSummary("aoi-1", "Field", 1, 0), AoiSummary("aoi-2", "Other", 1, 1)),
        desired={"aoi-1": {"k": NDVI}, "aoi-2": {"k": NDVI}},
        api_url="https://api",
    )
    # aoi-2's declarations changed: not an AOI this plan changes, so not stale.
    check_not_stale(
        plan, desired={"aoi-1": {"k": NDVI}, "aoi-2": {}}, observed={}, api_url="https://api"
    )
    with pytest.raises(StalePlanError) as caught:
        check_not_stale(
            plan, desired={"aoi-1": {}}, observed={}, api_url="https://other", replan="X"
        )
    message = str(caught.value)
    assert "the plan was made against https://api, not https://other" in message
    assert "AOI Field: the specs no longer declare NDVI over A" in message
    assert message.endswith("Make a new plan, review it and apply that one: X")


def run(emulator: Emulator, tmp_path: Path, *args: str) -> Result:
    """``reconciler ARGS`` against ``emulator``, with a state of its own in ``tmp_path``."""
    state = {"RECONCILER_STATE": str(tmp_path / "state.json")}  # never the checkout's own
    return run_cli(*args, url=emulator.url, key="test-key", env=state)


def test_apply_refuses_a_plan_whose_aoi_is_no_longer_declared(
    emulator: Emulator, tmp_path: Path
) -> None:
    write_spec(
        tmp_path / "specs",
        "aois:\n  - aoi: {name: Pune-East}\n    visualizations: [{index: NDVI}]\n"
        "  - aoi: {name: Kochi-Coast}\n    visualizations: []\n",
    )
    out = str(tmp_path / "p.json")
    planned = run(emulator, tmp_path, "plan", str(tmp_path / "specs"), "--out", out)
    assert planned.exit_code == 0, planned.output
    write_spec(tmp_path / "specs", "aois:\n  - aoi: {name: Kochi-Coast}\n    visualizations: []\n")
    refused = run(emulator, tmp_path, "apply", out, str(tmp_path / "specs"), "--yes")
    assert refused.exit_code == 1
    assert "AOI Pune-East: no longer declared in the specs" in refused.output
    assert f"reconciler plan {tmp_path / 'specs'} --out {out}" in refused.output


LISTED = """
aois:
  - aoi: {name: Bengaluru-North}
    visualizations:
      - index: NDVI
        assets: [Bengaluru-A, 2024-11-20]
        rollback: [{mode: dynamic, dates: [2024-05-06]}]
"""
POLICY = "aois: [{aoi: {name: Kochi-Coast}, visualizations: [{index: EVI, assets: POLICY}]}]\n"


@pytest.mark.parametrize("policy", ["all", "any"])
def test_new_imagery_stales_only_declarations_over_a_policy(
    emulator: Emulator, tmp_path: Path, policy: str
) -> None:
    """Bengaluru's assets are listed (by name and date): new imagery there changes nothing.
    Kochi's EVI is created over all its assets: a new one there changes what would be made."""

    def plan(name: str, spec: str) -> str:
        out = str(tmp_path / f"{name}.json")
        specs = write_spec(tmp_path / name, spec)
        planned = run(emulator, tmp_path, "plan", str(specs), "--out", out)
        assert planned.exit_code == 0, planned.output
        return out

    listed, over_policy = plan("listed", LISTED), plan("policy", POLICY.replace("POLICY", policy))
    new_asset(emulator, BENGALURU, "Bengaluru-E", "2026-01-10")
    new_asset(emulator, KOCHI, "Kochi-C", "2026-01-12")
    applied = run(emulator, tmp_path, "apply", listed, str(tmp_path / "listed"), "--yes")
    assert applied.exit_code == 0, applied.output
    refused = run(emulator, tmp_path, "apply", over_policy, str(tmp_path / "policy"), "--yes")
    assert refused.exit_code == 1, refused.output
    reasons = refused.output.split("nothing was applied:\n")[1].split("\nMake a new plan")[0]
    label = "EVI over all assets" if policy == "all" else "EVI (any existing one)"
    assert reasons == f"  - AOI Kochi-Coast: {label}: now also over Kochi-C (2026-01-12)"
