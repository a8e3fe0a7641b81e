"""SIGTERM, SIGHUP and Ctrl-C: real ``reconciler`` processes against the emulator.

CI cancels a job with SIGTERM. Apply must then stop like after Ctrl-C: start nothing new, keep
the state, write the report, release the lock, print the summary, and exit 128 + the signal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.emulator import Emulator, FaultConfig
from reconciler.state.store import StateStore
from tests.conftest import S3
from tests.planning import (
    NDVI_BENGALURU_AB,
    NDVI_ROLLED_BACK,
    SECRET,
    aoi,
    run_process,
    spec,
    viz,
    write_spec,
)

# Every test here runs reconciler processes and signals them mid-run: seconds each.
pytestmark = pytest.mark.slow

# Bengaluru: one rollback, recorded at once. Pune: two creates, the second never started while
# apply waits for the first (slow lifecycle) when the signal comes.
SPEC = spec(
    aoi("Bengaluru-North", NDVI_ROLLED_BACK),
    aoi("Pune-East", viz("NDWI"), viz("NDVI"), viz("True-Color")),
)


class Reconciler:
    """A ``reconciler`` child process whose stderr is collected line by line as it comes."""

    def __init__(self, cwd: Path, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.stderr):
            assert self.proc.poll() is None, "".join(self.stderr)
            assert time.monotonic() < deadline, f"never printed {text!r}: {''.join(self.stderr)}"
            time.sleep(0.02)

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        with self.proc.stdout:
            out = self.proc.stdout.read()
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        self.proc.stderr.close()
        return code, out, "".join(self.stderr)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "specs", SPEC).parent


def _env(world: Emulator, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PIXXEL_API_KEY": SECRET,
        "PIXXEL_API_URL": world.url,
        **extra,
    }


def _wait_for_requests(world: Emulator, child: Reconciler) -> None:
    deadline = time.monotonic() + 60
    while world.counter.total == 0:
        assert child.proc.poll() is None, "".join(child.stderr)
        assert time.monotonic() < deadline, "the child never reached the API"
        time.sleep(0.02)
    time.sleep(0.1)


def test_a_flood_of_signals_during_and_after_changes_still_reports_every_change(
    make_emulator: Callable[..., Emulator], project: Path
) -> None:
    # CI cancels with SIGINT, then SIGTERM; an impatient user presses Ctrl-C again and again.
    # However many arrive, wherever they land, the report tells every change.
    world = make_emulator(api_keys=(SECRET,), creation_delay=3.0)
    apply = Reconciler(project, _env(world), "apply", "--yes", "--report", "report.json")
    apply.wait_for("rolled back: NDVI on Bengaluru-North")  # a change is made
    deadline = time.monotonic() + 30
    sent = 0
    while apply.proc.poll() is None and time.monotonic() < deadline:
        apply.proc.send_signal(signal.SIGINT if sent % 2 == 0 else signal.SIGTERM)
        sent += 1
        time.sleep(0.005)
    returncode, out, err = apply.finish()

    # The first signal names the status; one that lands after the command ended and gave
    # the signals back ends the process as that signal does (a shell shows 130 or 143).
    assert sent >= 2 and returncode in (130, -signal.SIGINT, -signal.SIGTERM), out + err
    assert "Traceback" not in out + err and "Apply interrupted (Ctrl-C)" in out
    report = json.loads((project / "report.json").read_text())
    assert report["error"] is None and report["interrupted"] is True
    assert report["stop_reason"] == "interrupted (Ctrl-C)"
    assert len(report["items"]) == 3  # every change of SPEC, however it ended
    assert report["summary"]["rolled_back"] == 1
    assert not (project / ".reconciler" / "state.json.lock").exists()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_during_apply_stops_cleanly_and_the_next_apply_converges(
    make_emulator: Callable[..., Emulator], project: Path, signum: int, code: int
) -> None:
    world = make_emulator(api_keys=(SECRET,), creation_delay=3.0)
    env = _env(world)
    apply = Reconciler(project, env, "apply", "--yes", "--report", "report.json")
    apply.wait_for("rolled back: NDVI on Bengaluru-North")  # recorded in the state
    apply.wait_for("waiting for")  # a create sent; now waiting for it to become usable
    apply.proc.send_signal(signum)
    returncode, out, err = apply.finish()

    name = signal.Signals(signum).name
    assert returncode == code, out + err
    assert f"stopped by {name}: finishing requests in flight" in err
    assert f"Apply interrupted (stopped by {name})" in out
    assert "Traceback" not in out + err
    report = json.loads((project / "report.json").read_text())
    assert report["interrupted"] is True and report["ok"] is False
    assert report["summary"]["created"] >= 1  # created, waited for: said so, not lost
    # What the signal cut short (not started, or created and not yet usable) says why.
    unfinished = [
        i for i in report["items"] if i["outcome"] == "skipped" or i["status"] == "creating"
    ]
    assert unfinished and all(f"stopped by {name}" in i["message"] for i in unfinished)
    state_dir = project / ".reconciler"
    assert sorted(p.name for p in state_dir.iterdir()) == ["state.json"]  # no lock, no journal
    assert NDVI_BENGALURU_AB in StateStore(state_dir / "state.json").load().visualizations

    again = run_process(project, "apply", "--yes", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert run_process(project, "plan", "--detailed-exitcode", env=env).returncode == 0


def test_sigterm_during_apply_on_a_remote_state_uploads_it_and_releases_the_lock(
    make_emulator: Callable[..., Emulator], project: Path, s3: S3
) -> None:
    world = make_emulator(api_keys=(SECRET,), creation_delay=3.0)
    env = _env(world, **s3.env, RECONCILER_STATE=s3.url())
    apply = Reconciler(project, env, "apply", "--yes")
    apply.wait_for("rolled back: NDVI on Bengaluru-North")
    apply.wait_for("waiting for")
    apply.proc.send_signal(signal.SIGTERM)
    returncode, out, err = apply.finish()
    assert returncode == 143, out + err
    assert sorted(p.split("/", 1)[1] for p in s3.fs().find(s3.bucket)) == ["reconciler/state.json"]
    remote = json.loads(s3.fs().cat_file(f"{s3.bucket}/reconciler/state.json"))
    assert NDVI_BENGALURU_AB in remote["visualizations"]
    assert run_process(project, "apply", "--yes", env=env).returncode == 0
    assert run_process(project, "plan", "--detailed-exitcode", env=env).returncode == 0


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [(signal.SIGINT, 130, "interrupted (Ctrl-C)"), (signal.SIGTERM, 143, "stopped by SIGTERM")],
)
def test_an_interrupted_plan_exits_with_the_signal_and_no_traceback(
    make_emulator: Callable[..., Emulator], project: Path, signum: int, code: int, said: str
) -> None:
    world = make_emulator(api_keys=(SECRET,), faults=FaultConfig(latency_ms=400))
    plan = Reconciler(project, _env(world), "plan", "--parallelism", "1")
    _wait_for_requests(world, plan)  # inside the refresh: a request in flight
    plan.proc.send_signal(signum)
    returncode, out, err = plan.finish()
    assert returncode == code, out + err
    assert f"Error: {said}\n" in err
    assert "Traceback" not in out + err
    assert not (project / ".reconciler").exists()  # plan never writes state


def test_apply_interrupted_before_any_change_still_writes_a_report(
    make_emulator: Callable[..., Emulator], project: Path
) -> None:
    world = make_emulator(api_keys=(SECRET,), faults=FaultConfig(latency_ms=400))
    apply = Reconciler(
        project, _env(world), "apply", "--yes", "--parallelism", "1", "--report", "r.json"
    )
    _wait_for_requests(world, apply)  # planning: reading the API
    apply.proc.send_signal(signal.SIGTERM)
    returncode, out, err = apply.finish()
    assert returncode == 143, out + err
    report = json.loads((project / "r.json").read_text())
    assert report["ok"] is False and report["error"]["kind"] == "interrupted"
    assert "stopped by SIGTERM" in report["error"]["message"]
    assert report["interrupted"] is True and report["stop_reason"] == "stopped by SIGTERM"
    assert not (project / ".reconciler" / "state.json.lock").exists()
