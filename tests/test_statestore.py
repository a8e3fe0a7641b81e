"""The state store's journal: O(1) records that survive SIGKILL; real files and processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from reconciler.errors import StateError
from reconciler.state.records import State, VizRecord
from reconciler.state.store import StateStore

T0 = "2025-01-01T00:00:00Z"
T1 = "2025-01-02T00:00:00Z"


def _store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / ".reconciler" / "state.json")


def test_records_go_to_the_journal_and_a_flush_folds_them_into_the_file(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.record_fresh("v1", aoi_id="a1", legends={"dynamic": ["2024-05-06"]}, updated_at=T0)
    store.record_rollback(
        "v1", aoi_id="a1", mode="theoretical", dates=["2024-05-06"], revision=2, updated_at=T1
    )
    assert not store.path.exists()  # no whole-file write per record
    lines = store.journal_path.read_text().splitlines()
    assert json.loads(lines[0]) == {"journal": 3, "state": str(store.path)}
    assert [json.loads(line)["id"] for line in lines[1:]] == ["v1", "v1"]
    assert _store(tmp_path).load() == store.state  # readable before any flush

    store.flush()
    assert not store.journal_path.exists()
    on_disk = json.loads(store.path.read_text())
    assert on_disk["visualizations"]["v1"]["legends"] == {
        "dynamic": {"2024-05-06": 0},
        "theoretical": {"2024-05-06": 2},
    }
    store.flush()  # nothing new: nothing written
    assert not store.journal_path.exists()


_FULL_DISK = textwrap.dedent(
    """
    import resource, sys
    from reconciler.errors import StateError
    from reconciler.state.store import StateStore

    store = StateStore(sys.argv[1])
    store.record_fresh("v0", aoi_id="a1", legends={}, updated_at="t")
    size = store.journal_path.stat().st_size
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 10, hard))  # room for a part of a line
    try:
        store.record_fresh("v1", aoi_id="a1", legends={}, updated_at="t")
    except StateError as exc:
        print("failed:", exc)
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # the disk has room again
    store.record_fresh("v2", aoi_id="a1", legends={}, updated_at="t")
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_line_cut_short_by_a_full_disk_does_not_damage_the_journal(tmp_path: Path) -> None:
    path = tmp_path / ".reconciler" / "state.json"
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "failed: cannot write the state journal" in done.stdout
    # The next run reads every whole record: v1's cut line was taken back, v2 is whole.
    assert set(StateStore(path).load().visualizations) == {"v0", "v2"}


def test_selector_matches_are_journaled_and_replace_the_earlier_ones(tmp_path: Path) -> None:
    store = _store(tmp_path)
    a = {"a.yaml": {"names: A*": {"a1": "A-1"}}}
    b = {"b.yaml": {"names: B*": {"b1": "B-1"}}}
    store.record_selectors(a, replacing=lambda file: True)
    store.record_selectors(b, replacing=lambda file: file == "b.yaml")
    assert _store(tmp_path).load().selectors == {**a, **b}
    store.record_selectors({}, replacing=lambda file: file == "a.yaml")
    assert _store(tmp_path).load().selectors == b
    store.flush()
    assert json.loads(store.path.read_text())["selectors"] == b


def test_a_removal_is_journaled_too(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.record_fresh("v1", aoi_id="a1", legends={}, updated_at=T0)
    store.record_fresh("v2", aoi_id="a1", legends={}, updated_at=T0)
    store.flush()
    assert store.remove("v1") is True
    assert store.remove("nope") is False
    assert set(_store(tmp_path).load().visualizations) == {"v2"}


def test_replaying_a_journal_already_in_the_file_changes_nothing(tmp_path: Path) -> None:
    # A crash after the new file replaced the old but before the journal was removed.
    store = _store(tmp_path)
    store.record_fresh("v1", aoi_id="a1", legends={"dynamic": ["2024-05-06"]}, updated_at=T0)
    store.record_rollback(
        "v1",
        aoi_id="a1",
        mode="dynamic",
        dates=["2024-05-07"],
        revision=1,
        updated_at=T1,
        previous_updated_at=T0,
    )
    kept = tmp_path / "journal-copy"
    shutil.copy(store.journal_path, kept)
    store.flush()
    shutil.copy(kept, store.journal_path)
    assert _store(tmp_path).load() == store.state


def test_a_last_line_cut_short_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = _store(tmp_path)
    store.record_fresh("v1", aoi_id="a1", legends={}, updated_at=T0)
    with store.journal_path.open("ab") as fh:
        fh.write(b'{"id": "v2", "record": {"aoi_id": "a1", "updat')
    assert set(_store(tmp_path).load().visualizations) == {"v1"}
    assert "cut short" in caplog.text


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"not json", "not a JSON line"),
        (b"[1]", "not a JSON object"),
        (b'{"id": 3, "record": null}', 'expected {"id"'),
        (b'{"journal": 7}', "journal version 7"),
        (b'{"id": "v", "record": {"aoi_id": "a"}}', "$.updated_at: Field required"),
        (b'{"selectors": {"f.yaml": {"k": ["a1"]}}}', 'selector matches: $.selectors["f.yaml"].k'),
    ],
)
def test_a_damaged_journal_names_file_and_line(tmp_path: Path, line: bytes, expected: str) -> None:
    store = _store(tmp_path)
    store.record_fresh("v1", aoi_id="a1", legends={}, updated_at=T0)
    with store.journal_path.open("ab") as fh:
        fh.write(line + b"\n")
    with pytest.raises(StateError) as info:
        _store(tmp_path).load()
    message = str(info.value)
    assert message.startswith(f"{store.journal_path}:3")
    assert expected in message and f"Delete {store.journal_path}" in message


def test_the_lock_folds_a_journal_left_behind(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.record_fresh("v1", aoi_id="a1", legends={}, updated_at=T0)  # never flushed
    with _store(tmp_path).lock() as lock:
        assert lock.held
        assert not store.journal_path.exists()
        assert "v1" in json.loads(store.path.read_text())["visualizations"]


def test_leaving_the_lock_writes_the_file_and_removes_the_journal(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with store.lock():
        store.record_fresh("v1", aoi_id="a1", legends={}, updated_at=T0)
        assert store.journal_path.exists()
    assert not store.journal_path.exists() and not store.lock_path.exists()
    assert StateStore(store.path).load().get("v1") == VizRecord(aoi_id="a1", updated_at=T0)


def test_save_replaces_everything(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.record_fresh("v1", aoi_id="a1", legends={}, updated_at=T0)
    store.save(State())
    assert _store(tmp_path).load() == State()
    assert not store.journal_path.exists()


def test_a_remote_state_has_no_local_path(tmp_path: Path) -> None:
    pytest.importorskip("s3fs")
    store = StateStore("s3://bucket/state.json", journal_dir=tmp_path)
    assert store.remote and store.label == "s3://bucket/state.json"
    assert store.journal_path.parent == tmp_path
    with pytest.raises(StateError, match="remote state: it has no local path"):
        _ = store.path


# ---- SIGKILL at any point ---------------------------------------------------------------------

_RECORD_FOREVER = textwrap.dedent(
    """
    import sys
    from reconciler.state.store import StateStore
    store = StateStore(sys.argv[1], flush_interval=0.01)
    with store.lock():
        i = 0
        while True:
            store.record_fresh(f"v{i}", aoi_id="a1", legends={"dynamic": ["2024-05-06"]},
                               updated_at="2025-01-01T00:00:00Z")
            if i % 3 == 0:
                store.record_rollback(f"v{i}", aoi_id="a1", mode="dynamic",
                                      dates=["2024-05-07"], revision=1,
                                      updated_at="2025-01-02T00:00:00Z",
                                      previous_updated_at="2025-01-01T00:00:00Z")
            print(i, flush=True)  # recorded: whatever happens next, it must be kept
            i += 1
            if i % 200 == 0:
                store.flush()  # also die during whole-file writes
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("after", [1, 150, 420])
def test_sigkill_at_any_point_loses_no_finished_record(tmp_path: Path, after: int) -> None:
    path = tmp_path / ".reconciler" / "state.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", _RECORD_FOREVER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    last = -1
    for line in proc.stdout:
        last = int(line)
        if last >= after:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert last >= after

    # Consistent and complete: every record that was reported is there, as written.
    state = StateStore(path).load()
    for i in range(last + 1):
        record = state.get(f"v{i}")
        assert record is not None, f"v{i} was lost"
        if i % 3 == 0:
            assert record.legends["dynamic"] == {"2024-05-06": 0, "2024-05-07": 1}, i
            assert record.updated_at == T1

    # The next run takes the dead process's lock over, folds the journal, and goes on.
    with StateStore(path).lock():
        pass
    assert not (path.parent / "state.json.journal").exists()
    assert not (path.parent / "state.json.lock").exists()
    assert len(StateStore(path).load().visualizations) >= last + 1


def test_records_made_while_the_file_is_written_stay_in_the_journal(tmp_path: Path) -> None:
    # The whole-file write (an upload, for a remote state) runs without holding up records:
    # a record that lands meanwhile is not in that file, so its journal line must survive.
    store = _store(tmp_path)
    store.record_fresh("v1", aoi_id="a1", legends={}, updated_at=T0)
    write = store._snapshot.write

    def slow_write(data: bytes) -> None:
        worker = threading.Thread(
            target=store.record_fresh,
            args=("v2",),
            kwargs={"aoi_id": "a1", "legends": {}, "updated_at": T1},
        )
        worker.start()
        worker.join(timeout=30)  # would deadlock if the write held the records' mutex
        assert not worker.is_alive()
        write(data)

    store._snapshot.write = slow_write  # type: ignore[method-assign]
    store.flush()
    assert set(json.loads(store.path.read_text())["visualizations"]) == {"v1"}
    lines = store.journal_path.read_text().splitlines()
    assert json.loads(lines[0])["journal"] == 3 and [json.loads(x)["id"] for x in lines[1:]] == [
        "v2"
    ]
    assert set(_store(tmp_path).load().visualizations) == {"v1", "v2"}
    store._snapshot.write = write  # type: ignore[method-assign]
    store.flush()
    assert not store.journal_path.exists()
    assert set(json.loads(store.path.read_text())["visualizations"]) == {"v1", "v2"}
