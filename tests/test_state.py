"""The rollback state file: its model, loading, atomic saving; real files under tmp_path."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.errors import StateError
from reconciler.state.holder import StateLockedError
from reconciler.state.records import DEFAULT_STATE_PATH, State, VizRecord
from reconciler.state.store import StateStore

T0 = "2025-01-01T00:00:00Z"
T1 = "2025-01-02T00:00:00Z"
T2 = "2025-01-03T00:00:00Z"


def _store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / ".reconciler" / "state.json")


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


# ---- the in-memory model ----------------------------------------------------------------------


def test_default_path() -> None:
    assert Path(".reconciler/state.json") == DEFAULT_STATE_PATH


def test_record_rollback_merges_and_sets_updated_at() -> None:
    state = State()
    state.record_rollback(
        "v1", aoi_id="a1", mode="dynamic", dates=["2024-05-06"], revision=0, updated_at=T0
    )
    state.record_rollback(
        "v1",
        aoi_id="a1",
        mode="dynamic",
        dates=["2024-05-07"],
        revision=2,
        updated_at=T1,
        previous_updated_at=T0,
    )
    state.record_rollback(
        "v1", aoi_id="a1", mode="theoretical", dates=["2024-05-06"], revision=1, updated_at=T2
    )
    record = state.get("v1")
    assert record is not None
    assert record.updated_at == T2
    assert record.legends == {
        "dynamic": {"2024-05-06": 0, "2024-05-07": 2},
        "theoretical": {"2024-05-06": 1},
    }
    assert record.revision_of("dynamic", "2024-05-07") == 2
    assert record.revision_of("dynamic", "2024-05-08") is None
    assert record.revision_of("theoretical", "2024-05-07") is None
    assert state.get("nope") is None


def test_record_rollback_after_someone_elses_edit_drops_untrusted_records() -> None:
    # Recorded at T0; someone edited (now T1); our PATCH of one mode answers T2. The other
    # mode's record predates the edit, so it must not survive under the fresh updated_at.
    state = State()
    state.record_fresh(
        "v1",
        aoi_id="a1",
        legends={"dynamic": ["2024-05-06"], "theoretical": ["2024-05-06"]},
        updated_at=T0,
    )
    state.record_rollback(
        "v1",
        aoi_id="a1",
        mode="dynamic",
        dates=["2024-05-06"],
        revision=0,
        updated_at=T2,
        previous_updated_at=T1,
    )
    record = state.get("v1")
    assert record is not None
    assert record.legends == {"dynamic": {"2024-05-06": 0}}
    assert record.updated_at == T2


def test_record_fresh_replaces() -> None:
    state = State()
    state.record_rollback(
        "v1", aoi_id="a1", mode="dynamic", dates=["2024-01-01"], revision=5, updated_at=T0
    )
    state.record_fresh(
        "v1",
        aoi_id="a1",
        legends={"dynamic": ["2024-05-06", "2024-05-07"], "theoretical": []},
        updated_at=T1,
        revision=3,
    )
    assert state.get("v1") == VizRecord(
        aoi_id="a1", updated_at=T1, legends={"dynamic": {"2024-05-06": 3, "2024-05-07": 3}}
    )


@pytest.mark.parametrize("bad", [["2024_05_06"], ["20240506"], ["2024-13-01"], "2024-05-06"])
def test_record_refuses_non_iso_dates(bad: object) -> None:
    with pytest.raises(StateError, match="2024-05-06"):
        State().record_rollback(
            "v1",
            aoi_id="a1",
            mode="dynamic",
            dates=bad,  # type: ignore[arg-type]
            revision=0,
            updated_at=T0,
        )


@pytest.mark.parametrize("bad", [-1, True, "1"])
def test_record_refuses_bad_revision(bad: object) -> None:
    with pytest.raises(StateError, match="revision"):
        State().record_fresh(
            "v1",
            aoi_id="a1",
            legends={},
            updated_at=T0,
            revision=bad,  # type: ignore[arg-type]
        )


_ids = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
_legends = st.dictionaries(
    st.sampled_from(["dynamic", "theoretical"]),
    st.dictionaries(st.dates().map(lambda d: d.isoformat()), st.integers(0, 10**6), min_size=1),
)
_records = st.builds(VizRecord, aoi_id=_ids, updated_at=_ids, legends=_legends)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_ids, _records, max_size=5))
def test_to_dict_from_dict_round_trip(visualizations: dict[str, VizRecord]) -> None:
    state = State(visualizations=visualizations)
    text = json.dumps(state.to_dict())
    assert State.from_dict(json.loads(text), source="x") == state


# ---- load and save ----------------------------------------------------------------------------


def test_missing_file_is_empty_state(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.load() == State()
    assert store.state == State()
    assert not store.path.exists()  # reading never creates anything


def test_save_load_round_trip_and_format(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.record_rollback(
        "v2",
        aoi_id="a1",
        mode="dynamic",
        dates=["2024-05-07", "2024-05-06"],
        revision=1,
        updated_at=T0,
    )
    store.record_fresh("v1", aoi_id="a1", legends={"theoretical": ["2024-05-06"]}, updated_at=T1)
    store.flush()  # records go to the journal at once, into the file itself on a flush
    assert not store.journal_path.exists()
    text = store.path.read_text()
    data = json.loads(text)
    assert data["version"] == 1
    # Human-readable and stable: indent 2, sorted keys, so a committed file diffs well.
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert list(data["visualizations"]) == ["v1", "v2"]
    loaded = StateStore(store.path).load()
    assert loaded == store.state
    assert loaded.get("v2") == VizRecord(
        aoi_id="a1", updated_at=T0, legends={"dynamic": {"2024-05-06": 1, "2024-05-07": 1}}
    )


def test_selector_matches_are_kept_only_once_there_are_some(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.record_fresh("v1", aoi_id="a1", legends={}, updated_at=T0)
    store.flush()
    assert "selectors" not in json.loads(store.path.read_text())  # files stay as they were
    farms = {"specs/farms.yaml": {"names: Farm-*": {"a1": "Farm-1"}}}
    store.record_selectors(farms, replacing=lambda file: True)
    assert StateStore(store.path).load().selectors == farms  # from the journal
    store.flush()
    written = store.path.stat().st_mtime_ns
    assert json.loads(store.path.read_text())["selectors"] == farms
    loaded = StateStore(store.path).load()
    assert loaded.selectors == farms and loaded.get("v1")
    store.record_selectors(farms, replacing=lambda file: True)
    store.flush()
    assert store.path.stat().st_mtime_ns == written  # unchanged: not written again
    store.record_selectors({}, replacing=lambda file: True)
    store.flush()
    assert "selectors" not in json.loads(store.path.read_text())


def test_selector_matches_of_files_not_read_are_kept(tmp_path: Path) -> None:
    state = State()
    farms = {"names: Farm-*": {"a1": "Farm-1"}}
    state.record_selectors(
        {"specs/farms.yaml": farms, "specs/water.yaml": {"ids: w": {}}}, replacing=bool
    )
    # An apply of water.yaml alone: farms.yaml's record stays, water.yaml's is replaced.
    changed = state.record_selectors(
        {"specs/water.yaml": {"ids: x": {"a2": "Lake"}}},
        replacing=lambda file: file == "specs/water.yaml",
    )
    assert changed
    assert state.selectors == {
        "specs/farms.yaml": farms,
        "specs/water.yaml": {"ids: x": {"a2": "Lake"}},
    }
    # The file read has no selector any more (deleted, or its selectors removed): dropped.
    state.record_selectors({}, replacing=lambda file: file == "specs/farms.yaml")
    assert list(state.selectors) == ["specs/water.yaml"]


def test_selector_matches_of_an_older_reconciler_are_read_under_no_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    old = {"names: Farm-*": {"a1": "Farm-1"}, "names: Atlantis-*": {}}
    path.write_text(json.dumps({"version": 1, "visualizations": {}, "selectors": old}))
    assert StateStore(path).load().selectors == {"": old}


def test_selector_matches_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": 1, "visualizations": {}, "selectors": {"k": ["a1"]}}))
    with pytest.raises(StateError, match=r"\$\.selectors\.k"):
        StateStore(path).load()


def test_record_without_load_keeps_existing_records(tmp_path: Path) -> None:
    first = _store(tmp_path)
    first.record_fresh("v1", aoi_id="a1", legends={"dynamic": ["2024-05-06"]}, updated_at=T0)
    second = StateStore(first.path)  # never load()ed: recording must not wipe v1
    second.record_fresh("v2", aoi_id="a1", legends={}, updated_at=T1)
    assert set(StateStore(first.path).load().visualizations) == {"v1", "v2"}


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    store = _store(tmp_path)
    for i in range(5):
        store.record_rollback(
            f"v{i}", aoi_id="a1", mode="dynamic", dates=["2024-05-06"], revision=0, updated_at=T0
        )
    store.save(store.state)
    assert sorted(os.listdir(store.path.parent)) == ["state.json"]


def test_save_into_unwritable_place_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    store = StateStore(blocker / "state.json")
    with pytest.raises(StateError, match=r"cannot write state file .*not-a-dir"):
        store.save(State())


def test_corrupt_json(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.path.parent.mkdir(parents=True)
    store.path.write_text('{"version": 1,\n  "visualizations": {')
    with pytest.raises(StateError) as info:
        store.load()
    message = str(info.value)
    assert str(store.path) in message
    assert "not valid JSON (line 2" in message


def test_not_utf8(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(b'{"version": 1, "visualizations": {"\xff": 1}}')
    with pytest.raises(StateError, match="not UTF-8"):
        store.load()


def test_unreadable_path_is_a_state_error(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.path.mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(StateError, match=r"cannot read state file"):
        store.load()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"version": 4, "visualizations": {}}, "version 4: it was written by a newer reconciler"),
        ({"version": "1", "visualizations": {}}, 'version "1"'),
        ({"version": 0, "visualizations": {}}, "reads versions 1 and 2 and 3"),
        ({"visualizations": {}}, 'no "version"'),
        ([1, 2], "expected a JSON object, found an array"),
    ],
)
def test_wrong_version_or_shape(tmp_path: Path, data: object, expected: str) -> None:
    store = _store(tmp_path)
    _write_json(store.path, data)
    with pytest.raises(StateError, match=expected) as info:
        store.load()
    assert str(store.path) in str(info.value)


@pytest.mark.parametrize(
    ("record", "json_path"),
    [
        ({"aoi_id": 7, "updated_at": T0, "legends": {}}, '$.visualizations["v-1"].aoi_id'),
        ({"aoi_id": "a", "legends": {}}, '$.visualizations["v-1"].updated_at'),
        (
            {"aoi_id": "a", "updated_at": T0, "legends": {"dynamic": {"2024-05-06": "1"}}},
            '$.visualizations["v-1"].legends.dynamic["2024-05-06"]',
        ),
        (
            {"aoi_id": "a", "updated_at": T0, "legends": {"dynamic": {"2024-05-06": True}}},
            '$.visualizations["v-1"].legends.dynamic["2024-05-06"]',
        ),
        (
            {"aoi_id": "a", "updated_at": T0, "legends": {"dynamic": {"2024_05_06": 1}}},
            '$.visualizations["v-1"].legends.dynamic["2024_05_06"] (the key)',
        ),
        (
            {"aoi_id": "a", "updated_at": T0, "legends": {"dynamic": ["2024-05-06"]}},
            '$.visualizations["v-1"].legends.dynamic',
        ),
        (
            {"aoi_id": "a", "updated_at": T0, "legends": {}, "api_key": "x"},
            '$.visualizations["v-1"].api_key',
        ),
    ],
)
def test_wrong_types_name_file_and_json_path(
    tmp_path: Path, record: dict[str, object], json_path: str
) -> None:
    store = _store(tmp_path)
    _write_json(store.path, {"version": 1, "visualizations": {"v-1": record}})
    with pytest.raises(StateError) as info:
        store.load()
    message = str(info.value)
    assert message.startswith(f"{store.path}: not a state file this reconciler wrote")
    assert f"\n  {json_path}: " in message


def test_concurrent_records_lose_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    threads_n, per_thread = 8, 50
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n)

    def work(t: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(per_thread):
                # Half share one visualization (merging into one record), half are separate.
                day = f"2024-{1 + i // 28:02d}-{1 + i % 28:02d}"
                if t % 2:
                    store.record_rollback(
                        "shared",
                        aoi_id="a1",
                        mode=f"mode{t}",
                        dates=[day],
                        revision=i,
                        updated_at=T0,
                    )
                else:
                    store.record_fresh(
                        f"v{t}-{i}", aoi_id="a1", legends={"dynamic": [day]}, updated_at=T0
                    )
                    # Incremental: once record_* returns, the record is on disk (a fresh store
                    # reads it), and no other thread's write can take it away again.
                    if i % 5 == 0:
                        on_disk = StateStore(store.path).load().visualizations
                        assert all(f"v{t}-{j}" in on_disk for j in range(i + 1))
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert not errors
    on_disk = StateStore(store.path).load()
    fresh = [vid for vid in on_disk.visualizations if vid != "shared"]
    assert len(fresh) == (threads_n // 2) * per_thread
    shared = on_disk.get("shared")
    assert shared is not None
    assert sorted(shared.legends) == [f"mode{t}" for t in range(1, threads_n, 2)]
    assert all(len(dates) == per_thread for dates in shared.legends.values())
    store.flush()
    assert StateStore(store.path).load() == on_disk
    assert sorted(os.listdir(store.path.parent)) == ["state.json"]


# ---- the apply lock (reconciler.state.lock does the locking; see test_lock.py) -------------


def test_lock_is_the_lock_file_beside_the_state_and_names_the_state(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with store.lock():
        assert store.lock_path == store.path.with_name("state.json.lock")
        assert json.loads(store.lock_path.read_text())["pid"] == os.getpid()
        with pytest.raises(StateLockedError) as info, StateStore(store.path).lock():
            pass  # pragma: no cover - taking it raises
        assert str(info.value).startswith(f"{store.path} is locked by another apply")
        assert "--lock-timeout" in str(info.value)
    assert not store.lock_path.exists()


def test_lock_reloads_state_written_meanwhile(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.load() == State()
    StateStore(store.path).record_fresh("v1", aoi_id="a1", legends={}, updated_at=T0)
    with store.lock():
        assert store.state.get("v1") is not None


def test_lock_released_after_exception(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(RuntimeError), store.lock():
        raise RuntimeError("boom")
    assert not store.lock_path.exists()
    with pytest.raises(KeyboardInterrupt), store.lock():
        raise KeyboardInterrupt
    assert not store.lock_path.exists()


def test_lock_released_when_state_file_is_corrupt(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _write_json(store.path, {"version": 9})
    with pytest.raises(StateError, match="version 9"), store.lock():
        pass  # pragma: no cover - the reload inside lock() raises first
    assert not store.lock_path.exists()


def test_custom_legends_and_fingerprints_round_trip_as_version_2() -> None:
    state = State()
    state.record_fresh("v1", aoi_id="a1", legends={"dynamic": ["2024-05-06"]}, updated_at="t1")
    assert state.to_dict()["version"] == 1  # nothing only version 2 can say yet
    legend = {"bins": None, "items": [{"min": -1.0, "max": 1.0, "color": "#000000", "label": None}]}
    state.record_legend(
        "v1",
        aoi_id="a1",
        mode="theoretical",
        legends={"2024-05-06": legend},
        updated_at="t2",
        previous_updated_at="t1",
        fingerprints={"2024-05-06": "f" * 16},
    )
    state.record_rollback(
        "v1",
        aoi_id="a1",
        mode="dynamic",
        dates=["2024-05-06"],
        revision=0,
        updated_at="t3",
        previous_updated_at="t2",
        fingerprints={"2024-05-06": "e" * 16},
    )
    data = state.to_dict()
    assert data["version"] == 2
    again = State.from_dict(json.loads(json.dumps(data)), source="s")
    record = again.get("v1")
    assert record is not None
    assert record.custom_of("theoretical", "2024-05-06") == legend
    assert record.content_of("dynamic", "2024-05-06") == "e" * 16
    assert record.dated() == [("dynamic", "2024-05-06"), ("theoretical", "2024-05-06")]
    # Rolled back now: the custom record of that (mode, date) goes.
    state.record_rollback(
        "v1", aoi_id="a1", mode="theoretical", dates=["2024-05-06"], revision=0, updated_at="t4"
    )
    v1 = state.get("v1")
    assert v1 is not None and v1.custom_of("theoretical", "2024-05-06") is None
    assert v1.content_of("theoretical", "2024-05-06") is None


def test_a_custom_legend_that_is_not_one_is_refused() -> None:
    with pytest.raises(StateError, match="cannot record custom legend"):
        State().record_legend(
            "v1", aoi_id="a1", mode="dynamic", legends={"2024-05-06": {"bins": "5"}}, updated_at="t"
        )
    data = {
        "version": 2,
        "visualizations": {
            "v1": {
                "aoi_id": "a1",
                "updated_at": "t",
                "legends": {},
                "custom": {"dynamic": {"2024-05-06": {"bins": 5, "items": [{"color": 1}]}}},
            }
        },
    }
    with pytest.raises(StateError, match="custom"):
        State.from_dict(data, source="s")
