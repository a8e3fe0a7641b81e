"""``reconciler state copy SRC DST``: moving a state, to S3 say, under both locks.

Against a real S3-protocol server (moto, the ``s3`` fixture) and local files, through the
command line as a team adopting remote state runs it.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.state.lock import FileLock
from reconciler.state.records import State, VizRecord
from reconciler.state.store import StateStore
from tests.conftest import S3
from tests.planning import run_cli


def _state(path: Path | str, records: int) -> State:
    """A state at ``path`` with ``records`` records and one selector record."""
    store = StateStore(path)
    state = State(
        visualizations={
            f"viz-{n}": VizRecord(
                aoi_id="aoi-1",
                updated_at="2025-01-02T03:04:05Z",
                legends={"dynamic": {"2024-05-06": n}},
            )
            for n in range(records)
        },
        selectors={"specs/farms.yaml": {"names: Farm-*": {"aoi-1": "Farm-1"}}},
    )
    with store.lock():
        store.save(state)
    return state


def test_a_local_state_is_copied_to_s3_whole_and_left_as_it_was(tmp_path: Path, s3: S3) -> None:
    local = tmp_path / "state.json"
    state = _state(local, 3)
    before = local.read_bytes()

    copied = run_cli("state", "copy", str(local), s3.url())

    assert copied.exit_code == 0, copied.output
    assert "Copied 3 records and 1 selector record" in copied.output
    remote = StateStore(s3.url()).load()
    assert remote.visualizations == state.visualizations and remote.selectors == state.selectors
    assert local.read_bytes() == before
    bucket = s3.fs()
    assert not bucket.exists(s3.url() + ".lock") and not (tmp_path / "state.json.lock").exists()


def test_records_left_in_the_journal_are_copied_too(tmp_path: Path) -> None:
    local = tmp_path / "state.json"
    _state(local, 1)
    store = StateStore(local)
    with store.lock():
        store.record_rollback(
            "viz-9",
            aoi_id="aoi-2",
            mode="theoretical",
            dates=("2024-11-20",),
            revision=0,
            updated_at="2025-02-03T04:05:06Z",
        )
    copied = run_cli("state", "copy", str(local), str(tmp_path / "moved.json"))
    assert copied.exit_code == 0, copied.output
    assert set(StateStore(tmp_path / "moved.json").load().visualizations) == {"viz-0", "viz-9"}


def test_a_destination_with_records_is_refused_unless_forced(tmp_path: Path, s3: S3) -> None:
    _state(tmp_path / "state.json", 2)
    _state(s3.url(), 5)

    refused = run_cli("state", "copy", str(tmp_path / "state.json"), s3.url())
    assert refused.exit_code == 1
    assert "already holds 5 record(s); nothing was copied" in refused.output
    assert len(StateStore(s3.url()).load().visualizations) == 5

    forced = run_cli("state", "copy", str(tmp_path / "state.json"), s3.url(), "--force")
    assert forced.exit_code == 0, forced.output
    assert len(StateStore(s3.url()).load().visualizations) == 2


def test_a_held_lock_on_either_side_is_waited_for_or_refused(tmp_path: Path) -> None:
    source, destination = tmp_path / "a.json", tmp_path / "b.json"
    _state(source, 1)
    with FileLock(tmp_path / "b.json.lock", str(destination)):
        held = run_cli("state", "copy", str(source), str(destination))
    assert held.exit_code == 1
    assert "locked" in held.output and not destination.exists()


def test_the_same_location_twice_is_refused(tmp_path: Path) -> None:
    _state(tmp_path / "state.json", 1)
    same = run_cli("state", "copy", str(tmp_path / "state.json"), str(tmp_path / "state.json"))
    assert same.exit_code == 1
    assert "is both the source and the destination" in same.output
