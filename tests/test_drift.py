"""``reconciler drift``: read-only, and its exit status tells the kinds of drift apart.

Against the emulator, as a scheduled job runs it: merged specs not applied are pending (2); an
ignored visualization is in sync (0); one made by hand and declared nowhere has moved (3); a
declared one the API finished as failed is unhealthy (4). Then the classification itself, on
plans built by hand, one rule each.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.core.drift import classify
from reconciler.core.plan import (
    AoiSnapshot,
    Create,
    Plan,
    PlanWarning,
    Rollback,
    VizSnapshot,
)
from reconciler.emulator import Emulator
from reconciler.state.records import State, VizRecord
from tests.planning import API_KEY, PUNE, client_for, run_cli, write_spec

#: Pune-East's NDVI declared; its NDWI, made outside the specs, left alone by a rule.
SPEC = """
aois:
  - aoi: {name: Pune-East}
    ignore:
      - index: NDWI
    visualizations:
      - index: NDVI
"""


def drift(emulator: Emulator, specs: Path, state: Path, *args: str) -> tuple[int, str]:
    result = run_cli(
        "drift", str(specs), "--state", str(state), *args, url=emulator.url, key=API_KEY
    )
    return result.exit_code, result.stdout


def apply(emulator: Emulator, specs: Path, state: Path) -> None:
    result = run_cli(
        "apply", str(specs), "--state", str(state), "--yes", url=emulator.url, key=API_KEY
    )
    assert result.exit_code == 0, result.output


def test_pending_then_in_sync_then_moved(
    make_emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = make_emulator(creation_delay=0)
    specs, state = write_spec(tmp_path / "specs", SPEC), tmp_path / "state.json"

    code, out = drift(emulator, specs, state)
    assert code == 2, out
    assert "Drift: pending: merged specs are not applied yet (exit 2)." in out
    assert "AOI Pune-East: create NDVI: declared, not created yet" in out
    assert not state.exists()  # read-only: no state written

    apply(emulator, specs, state)
    recorded = state.read_bytes()
    code, out = drift(emulator, specs, state)
    assert code == 0, out  # Pune-East's NDWI is ignored by the rule
    assert "Drift: in sync" in out

    # Someone makes a visualization in the console that no spec declares.
    with client_for(emulator) as client:
        client.create_visualization(PUNE, index_id=_index_id(emulator, "EVI"))
    code, out = drift(emulator, specs, state, "--format", "json")
    document = json.loads(out)
    assert code == 3 and document["status"] == "moved" and document["exit_code"] == 3
    (finding,) = document["findings"]
    assert finding["kind"] == "moved" and finding["aoi_name"] == "Pune-East"
    assert finding["why"] == "made outside the specs, and no ignore rule covers it"
    assert state.read_bytes() == recorded  # still read-only


def test_a_declared_visualization_finished_as_failed_is_unhealthy(
    make_emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = make_emulator(creation_delay=0, outcomes={"NDVI": "failed"})
    specs, state = write_spec(tmp_path / "specs", SPEC), tmp_path / "state.json"
    failed = run_cli(
        "apply", str(specs), "--state", str(state), "--yes", url=emulator.url, key=API_KEY
    )
    assert failed.exit_code == 1  # the create failed
    code, out = drift(emulator, specs, state, "--format", "markdown")
    assert code == 4, out
    assert out.startswith("### reconciler drift: unhealthy (1 unhealthy)")
    assert "fix them in the Pixxel console" in out
    assert out.endswith("<!-- reconciler-drift -->\n")


def test_an_error_is_exit_1_and_a_document_in_json(
    make_emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = make_emulator()
    specs = write_spec(tmp_path / "specs", SPEC.replace("index: NDVI", "index: NVDI"))
    code, out = drift(emulator, specs, tmp_path / "state.json", "--format", "json")
    assert code == 1
    assert json.loads(out)["error"]["kind"] == "spec"


def _index_id(emulator: Emulator, name: str) -> str:
    with client_for(emulator) as client:
        (index,) = [i for i in client.list_indices() if i.name == name]
    return index.id


# --- the classification, one rule each ----------------------------------------------------------

AOI, NAME = "aoi-1", "Field"


def _create(assets: tuple[()] | None = None) -> Create:
    return Create(
        aoi_id=AOI,
        aoi_name=NAME,
        index_id="ndvi",
        index_name="NDVI",
        assets=assets,
        resolution=None,
        where="s.yaml:1:1",
    )


def _rollback(reason: str) -> Rollback:
    return Rollback(
        aoi_id=AOI,
        aoi_name=NAME,
        visualization_id="v1",
        index_id="ndvi",
        index_name="NDVI",
        mode="dynamic",
        dates=("2024-05-06",),
        reason=reason,  # type: ignore[arg-type]
        detail="",
        revision=0,
        where="s.yaml:2:2",
    )


def _warning(kind: str) -> PlanWarning:
    return PlanWarning(kind=kind, aoi_id=AOI, aoi_name=NAME, message=kind)  # type: ignore[arg-type]


def _plan(*changes: Create | Rollback, warnings: tuple[PlanWarning, ...] = ()) -> Plan:
    observed = {AOI: AoiSnapshot(NAME, {"v1": VizSnapshot("ndvi", (), "success", "t")})}
    return Plan(
        creates=tuple(c for c in changes if isinstance(c, Create)),
        rollbacks=tuple(r for r in changes if isinstance(r, Rollback)),
        warnings=warnings,
        observed=observed,
    )


@pytest.mark.parametrize(
    ("plan", "status"),
    [
        (_plan(), "in-sync"),
        (_plan(_create()), "pending"),
        (_plan(_rollback("no-record")), "pending"),
        (_plan(_rollback("revision")), "pending"),
        (_plan(warnings=(_warning("creating"),)), "pending"),
        (_plan(_rollback("changed")), "moved"),
        (_plan(warnings=(_warning("undeclared"),)), "moved"),
        (_plan(warnings=(_warning("unmatched"),)), "moved"),
        (_plan(_create(), warnings=(_warning("new-assets"),)), "moved"),
        (_plan(warnings=(_warning("failed"),)), "unhealthy"),
        (_plan(warnings=(_warning("partial_success"),)), "unhealthy"),
        (_plan(warnings=(_warning("state"), _warning("no-match"))), "in-sync"),
        (_plan(_create(), _rollback("changed"), warnings=(_warning("failed"),)), "unhealthy"),
        (_plan(_create(), _rollback("changed")), "moved"),
    ],
)
def test_each_change_and_warning_has_its_kind_and_the_worst_wins(plan: Plan, status: str) -> None:
    assert classify(plan, State()).status == status


def test_a_declared_visualization_gone_from_where_the_state_remembers_one_has_moved() -> None:
    remembered = State(visualizations={"gone-1": VizRecord(aoi_id=AOI, updated_at="t")})
    assert classify(_plan(_create()), remembered).status == "moved"
    elsewhere = State(visualizations={"gone-1": VizRecord(aoi_id="aoi-2", updated_at="t")})
    assert classify(_plan(_create()), elsewhere).status == "pending"
    listed = State(visualizations={"v1": VizRecord(aoi_id=AOI, updated_at="t")})
    assert classify(_plan(_create()), listed).status == "pending"
