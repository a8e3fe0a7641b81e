"""What an apply set out to change and did not finish stays marked in the state (``pending``),
and the next pull request's plan (``plan --changed-since``) plans it beside what the pull request
changed, so the leftovers are in that review. Real git, the emulator over HTTP, a proxy that
refuses what an API can refuse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from reconciler.state.records import State
from reconciler.state.store import StateStore
from tests.faultproxy import Action, Fault, FaultProxy
from tests.planning import API_KEY, BENGALURU, PUNE, run_cli
from tests.test_changed_since import repo  # noqa: F401  (a fixture)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _state() -> dict[str, object]:
    data: dict[str, object] = json.loads(Path("state.json").read_text())
    return data


def test_a_failed_rollback_leaves_its_aoi_pending_for_the_next_pull_request(
    repo: Path,  # noqa: F811
    emulator: Emulator,
) -> None:
    # The rollbacks are refused (Bengaluru-North's); the creates go through (both AOIs).
    with FaultProxy(emulator.url) as proxy:
        proxy.faults = [Fault("PATCH", "/metadata", Action.FAIL, times=None, status=422)]
        failed = run_cli("apply", "--yes", "--state", "state.json", url=proxy.url, key=API_KEY)
    assert failed.exit_code == 1, failed.output
    state = _state()
    assert state["version"] == 3 and state["pending"] == {BENGALURU: "Bengaluru-North"}

    # A pull request that changes nothing else: its plan reads Bengaluru-North all the same.
    planned = run_cli(
        "plan",
        "--changed-since",
        "main",
        "--state",
        "state.json",
        "--out",
        "pr.json",
        "--detailed-exitcode",
        url=emulator.url,
        key=API_KEY,
    )
    assert planned.exit_code == 2, planned.output
    text = " ".join(planned.output.split())
    assert "With them: Bengaluru-North, which an earlier apply set out to change and did not " in (
        text
    )
    saved = json.loads(Path("pr.json").read_text())
    assert saved["changed_since"]["pending"] == ["Bengaluru-North"]
    assert [(r["aoi_name"], r["mode"]) for r in saved["rollbacks"]] == [
        ("Bengaluru-North", "dynamic")
    ]
    assert not saved["creates"]  # Pune-East was finished: not read, not planned
    shown = run_cli("show", "pr.json", "--format", "markdown")
    assert "which an earlier apply set out to change and did not finish" in shown.output

    # Applying the reviewed plan finishes it: nothing is pending any more.
    applied = run_cli(
        "apply", "pr.json", "--yes", "--state", "state.json", url=emulator.url, key=API_KEY
    )
    assert applied.exit_code == 0, applied.output
    state = _state()
    assert "pending" not in state and state["version"] in (1, 2)
    again = run_cli(
        "plan", "--changed-since", "main", "--state", "state.json", url=emulator.url, key=API_KEY
    )
    assert "No AOI's declarations changed since main" in again.output


def test_an_apply_with_nothing_left_to_do_clears_what_was_pending(
    repo: Path,  # noqa: F811
    emulator: Emulator,
) -> None:
    store = StateStore(Path("state.json"))
    with store.lock():
        store.mark_pending({PUNE: "Pune-East", "gone": "Not-Declared"})
    # A pull request's plan looks only for the pending AOIs that are still declared.
    plan = run_cli(
        "plan", "--changed-since", "main", "--state", "state.json", url=emulator.url, key=API_KEY
    )
    assert plan.exit_code == 0, plan.output
    assert "With them: Pune-East, which an earlier apply" in " ".join(plan.output.split())
    assert "Not-Declared" not in plan.output
    # An apply of every AOI finishes them all: Pune-East was read (and done), and nothing
    # declares the other any more.
    applied = run_cli("apply", "--yes", "--state", "state.json", url=emulator.url, key=API_KEY)
    assert applied.exit_code == 0, applied.output
    assert "pending" not in _state()


def test_an_apply_of_some_aois_leaves_the_others_pending(
    repo: Path,  # noqa: F811
    emulator: Emulator,
) -> None:
    store = StateStore(Path("state.json"))
    with store.lock():
        store.mark_pending({PUNE: "Pune-East", BENGALURU: "Bengaluru-North"})
    some = ("--target", "Pune-East", "--state", "state.json")
    assert run_cli("plan", *some, "--out", "p.json", url=emulator.url, key=API_KEY).exit_code == 0
    # A saved plan of one AOI re-reads that AOI only: the other stays pending.
    applied = run_cli(
        "apply", "p.json", "--yes", "--state", "state.json", url=emulator.url, key=API_KEY
    )
    assert applied.exit_code == 0, applied.output
    assert _state()["pending"] == {BENGALURU: "Bengaluru-North"}
    again = run_cli("apply", *some, "--yes", url=emulator.url, key=API_KEY)
    assert again.exit_code == 0  # nothing was left to do there
    assert _state()["pending"] == {BENGALURU: "Bengaluru-North"}


def test_pending_aois_survive_a_kill_and_are_replayed(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = StateStore(path)
    store.mark_pending({PUNE: "Pune-East", BENGALURU: "Bengaluru-North"})
    store.finish_pending([PUNE])
    # Never flushed (as after a SIGKILL): the journal alone has them.
    assert not path.exists()
    assert StateStore(path).load().pending == {BENGALURU: "Bengaluru-North"}
    store.flush()
    assert json.loads(path.read_text())["pending"] == {BENGALURU: "Bengaluru-North"}


def test_pending_round_trips_and_an_empty_one_keeps_the_older_version() -> None:
    state = State(pending={PUNE: "Pune-East"})
    data = state.to_dict()
    assert data["version"] == 3 and data["pending"] == {PUNE: "Pune-East"}
    assert State.from_dict(data, source="s").pending == {PUNE: "Pune-East"}
    assert state.finish_pending([PUNE]) and not state.finish_pending([PUNE])
    assert state.to_dict() == {"version": 1, "visualizations": {}}
    assert not state.mark_pending({}) and state.mark_pending({BENGALURU: "Bengaluru-North"})


def test_a_damaged_pending_line_in_the_journal_is_named(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    journal = tmp_path / "state.json.journal"
    journal.write_text('{"journal": 3, "state": "x"}\n{"pending": {"a": 1}}\n')
    with pytest.raises(Exception, match=r"state.json.journal:2: .*not valid pending AOIs"):
        StateStore(path).load()
