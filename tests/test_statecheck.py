"""The plan's warnings about the state itself, on the emulator: empty, or shared by two writers."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.emulator import Emulator
from tests.conftest import REPO_ROOT
from tests.planning import BENGALURU, NDVI_BENGALURU_AB, client_for, make_plan, run_apply

SPECS = REPO_ROOT / "specs"  # the examples: rollbacks on several existing visualizations


def test_two_states_over_one_world_are_called_out(emulator: Emulator, tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.json", tmp_path / "theirs.json"

    first = make_plan(emulator, SPECS, ours)
    assert [w.kind for w in first.warnings].count("state") == 1  # empty: every rollback planned
    assert run_apply(emulator, first, ours).ok
    converged = make_plan(emulator, SPECS, ours)
    assert not converged.has_changes
    assert not [w for w in converged.warnings if w.kind == "state"]

    # A second writer with its own state rolls everything back again. The legends read back
    # are as ours left them, so our plan has nothing to do...
    assert run_apply(emulator, make_plan(emulator, SPECS, theirs), theirs).ok
    assert not make_plan(emulator, SPECS, ours).has_changes
    # ... unless our records cannot tell (an older reconciler wrote them without the legends'
    # fingerprints): then every one of them looks edited, and the plan says why rather than
    # just listing rollbacks.
    data = json.loads(ours.read_text())
    for record in data["visualizations"].values():
        record.pop("content", None)
    ours.write_text(json.dumps(data))
    shared = make_plan(emulator, SPECS, ours)
    moved = {r.visualization_id for r in shared.rollbacks if r.reason == "changed"}
    assert len(moved) >= 3
    (warning,) = [w for w in shared.warnings if w.kind == "state"]
    assert f"{len(moved)} of the " in warning.message
    assert "another writer" in warning.message and "docs/state.md" in warning.message


def test_the_first_moved_record_is_called_out(emulator: Emulator, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    assert run_apply(emulator, make_plan(emulator, SPECS, state), state).ok
    with client_for(emulator) as client:
        client.update_metadata(
            BENGALURU,
            NDVI_BENGALURU_AB,
            mode="theoretical",
            legend={"2024_11_20": [{"min": 0, "max": 1, "color": "#ffffff", "label": "Edited"}]},
        )
    plan = make_plan(emulator, SPECS, state)
    assert {(r.visualization_id, r.mode) for r in plan.rollbacks} == {
        (NDVI_BENGALURU_AB, "theoretical")
    }
    (warning,) = [w for w in plan.warnings if w.kind == "state"]
    # One record moved: a hand edit and a second writer look alike, and both are named.
    assert warning.message.startswith("1 visualization the state ")
    assert "If nobody edited those legends" in warning.message
    assert "second state over the same AOIs" in warning.message
