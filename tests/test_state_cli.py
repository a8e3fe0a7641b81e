"""'reconciler state' on a local state, and how interruptions reach the command line."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from reconciler.cli.console import handle_errors
from reconciler.cli.main import cli
from reconciler.run.signals import interrupt_exit_code, stop_on_signals
from reconciler.state.store import StateStore
from tests.planning import run_cli

T0 = "2025-01-01T00:00:00Z"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / ".reconciler" / "state.json"
    store = StateStore(path)
    store.record_fresh(
        "viz-1", aoi_id="aoi-1", legends={"dynamic": ["2024-05-06", "2024-05-07"]}, updated_at=T0
    )
    store.record_fresh("viz-2", aoi_id="aoi-1", legends={}, updated_at="")
    store.flush()
    return path


def _state(*args: str) -> Result:
    return run_cli("state", *args)


def test_show_lists_records_per_aoi(state: Path) -> None:
    shown = _state("show")
    assert shown.exit_code == 0
    assert (
        shown.output.splitlines()[0] == "State .reconciler/state.json: 2 visualizations recorded."
    )
    assert (
        "AOI aoi-1\n  visualization viz-1\n    updated_at  2025-01-01T00:00:00Z\n" in shown.output
    )
    assert "    dynamic     2024-05-06 (revision 0), 2024-05-07 (revision 0)" in shown.output
    assert "viz-2\n    updated_at  (unknown)\n    legends     (none recorded)" in shown.output
    assert "Locked" not in shown.output


def test_show_names_the_aois_an_apply_did_not_finish(state: Path) -> None:
    store = StateStore(state)
    with store.lock():
        store.mark_pending({"aoi-2": "Pune-East", "aoi-1": "Evil\x1b[31m"})
    text = _state("show").output
    assert text.splitlines()[1] == (
        "Pending (an apply set out to change them and did not finish): Evil\\x1b[31m (aoi-1), "
        "Pune-East (aoi-2)."
    )
    data = json.loads(_state("show", "--format", "json").output)
    assert data["pending"] == {"aoi-1": "Evil\x1b[31m", "aoi-2": "Pune-East"}
    assert data["version"] == 3
    # Forgotten by hand, like a record, and in one go with records; all or nothing.
    wrong = _state("rm", "aoi-2", "nothing-here")
    assert wrong.exit_code == 1 and "no record of nothing-here (neither a" in wrong.output
    assert StateStore(state).load().pending.keys() == {"aoi-1", "aoi-2"}
    done = _state("rm", "aoi-2", "viz-1")
    assert done.exit_code == 0, done.output
    assert "Removed 1 record and 1 pending mark from .reconciler/state.json." in done.output
    assert StateStore(state).load().pending == {"aoi-1": "Evil\x1b[31m"}


def test_show_json_and_the_lock_while_held(state: Path) -> None:
    with StateStore(state).lock() as lock:
        data = json.loads(_state("show", "--format", "json").output)
        text = _state("show").output
    assert lock.holder is None  # released
    assert data["location"] == ".reconciler/state.json"
    assert data["lock"]["pid"] == os.getpid()
    assert data["visualizations"]["viz-1"]["legends"] == {
        "dynamic": {"2024-05-06": 0, "2024-05-07": 0}
    }
    assert f"Locked by pid {os.getpid()} on host" in text


def test_rm_and_its_lock(state: Path) -> None:
    with StateStore(state).lock():
        held = _state("rm", "viz-1")
        assert held.exit_code == 1 and "is locked by another apply" in held.output
    assert _state("rm", "viz-1", "--lock-timeout", "2s").exit_code == 0
    assert set(StateStore(state).load().visualizations) == {"viz-2"}
    bad = _state("rm", "viz-2", "--lock-timeout", "soon")
    assert bad.exit_code != 0 and "'soon' is not a duration" in bad.output


def test_unlock_of_an_unlocked_state(state: Path) -> None:
    result = _state("unlock", "some-id")
    assert result.exit_code == 1 and "is not locked" in result.output


def test_sandbox_state_is_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shown = _state("show", "--sandbox")
    assert "State .reconciler/sandbox/state.json: 0 visualizations recorded." in shown.output


@pytest.mark.parametrize(("value", "seconds"), [("0", 0), ("90", 90), ("1m30s", 90), ("2h", 7200)])
def test_lock_timeout_durations(state: Path, value: str, seconds: float) -> None:
    from reconciler.cli.options import parse_duration

    assert parse_duration(click.Context(cli), click.Option(["--x"]), value) == seconds


# ---- interruptions --------------------------------------------------------------------------


def test_sigterm_becomes_a_keyboard_interrupt_once(caplog: pytest.LogCaptureFixture) -> None:
    with stop_on_signals():
        with pytest.raises(KeyboardInterrupt, match="stopped by SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)  # the handler's exception ends the sleep at once
        os.kill(os.getpid(), signal.SIGTERM)  # again while stopping: ignored, said so
        time.sleep(0.05)
        assert interrupt_exit_code() == 143
    assert "SIGTERM received while already stopping" in caplog.text
    with stop_on_signals():  # a new block starts over
        assert interrupt_exit_code() == 130
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_an_interrupted_command_exits_130_without_a_traceback() -> None:
    @click.command()
    @handle_errors
    def slow() -> None:
        raise KeyboardInterrupt

    result = CliRunner().invoke(slow, [])
    assert result.exit_code == 130
    assert "Error: interrupted (Ctrl-C)" in result.output
    assert "Traceback" not in result.output
