"""When saving the state or releasing its lock goes wrong at the end of an apply.

The changes have happened by then: the report, the summary and the exit status must still say
what was done, and the message must say where the records wait and whether the lock remains.
Against a moto S3 server of the test's own (it is stopped mid-apply) and the emulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from tests.conftest import OwnS3
from tests.planning import SECRET, SPEC, run_cli, write_spec

# Real processes and a storage server stopped mid-apply: seconds each.
pytestmark = pytest.mark.slow


def test_a_failed_final_save_still_reports_what_apply_did(
    make_emulator: Callable[..., Emulator], own_s3: OwnS3, tmp_path: Path
) -> None:
    # The creation waits long enough for the storage to vanish while the lock is held.
    world = make_emulator(api_keys=(SECRET,), creation_delay=1.5)
    checkout = write_spec(tmp_path / "job" / "specs", SPEC).parent
    url = f"s3://{own_s3.bucket}/reconciler/state.json"
    lock_key = f"{own_s3.bucket}/reconciler/state.json.lock"

    def stop_when_locked() -> None:
        fs = own_s3.fs()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if fs.exists(lock_key):
                time.sleep(0.3)
                own_s3.stop()
                return
            time.sleep(0.05)

    stopper = threading.Thread(target=stop_when_locked, daemon=True)
    stopper.start()
    old = Path.cwd()
    os.chdir(checkout)
    try:
        result = run_cli(
            "apply", "--yes", "--state", url, "--report", "report.json", url=world.url, key=SECRET
        )
    finally:
        os.chdir(old)
    stopper.join(timeout=60)
    assert not own_s3.running, "the storage was never stopped"

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    # The summary still says what happened ...
    assert "Apply complete: 1 created, 0 adopted, 1 rolled back" in result.output
    # ... the error where the records are, and how to break the lock left behind.
    journal = next((checkout / ".reconciler" / "journal").glob("*.jsonl"))
    assert "Error: cannot write the state" in result.output
    assert str(journal.relative_to(checkout)) in result.output
    assert "The lock is left behind, and every later apply" in result.output
    report = json.loads((checkout / "report.json").read_text())
    assert report["ok"] is False and report["summary"]["rolled_back"] == 1
    assert report["summary"]["created"] == 1 and len(report["items"]) == 2
    assert "cannot write the state" in report["state_error"]
    assert "clear it with: reconciler state unlock " in report["state_error"]
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    # The header, the rollback, the creation, and the AOIs finished (marked pending before
    # the first change, and saved to the storage then, while it still answered).
    assert len(lines) == 4 and sorted(lines[-1]["finished"]) == sorted(
        {item["aoi_id"] for item in report["items"]}
    )


_SIGNAL_IN_CLEANUP = textwrap.dedent(
    """
    import os, signal, sys, time
    from reconciler import shield
    from reconciler.run.signals import stop_on_signals
    from reconciler.state.store import StateStore

    def signalled(real):
        def call(*args):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.3)  # the handler runs here, in the middle of the cleanup
            return real(*args)
        return call

    with stop_on_signals():
        store = StateStore(sys.argv[1], flush_interval=600)
        with store.lock() as lock:
            store.record_fresh("v1", aoi_id="a1", legends={}, updated_at="t")
            store._snapshot.write = signalled(store._snapshot.write)  # the final save
            lock._remove_own = signalled(lock._remove_own)  # the release
    print("cleaned up; noted:", shield.noted(), flush=True)
    """
)


def test_signals_during_the_final_save_and_release_do_not_cut_them_short(
    own_s3: OwnS3, tmp_path: Path
) -> None:
    url = f"s3://{own_s3.bucket}/reconciler/state.json"
    done = subprocess.run(
        [sys.executable, "-c", _SIGNAL_IN_CLEANUP, url],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "noted: ['SIGTERM', 'SIGTERM']" in done.stdout
    assert "SIGTERM received while finishing: saving and reporting first" in done.stderr
    fs = own_s3.fs()
    saved = json.loads(fs.cat_file(f"{own_s3.bucket}/reconciler/state.json"))
    assert "v1" in saved["visualizations"]
    assert not fs.exists(f"{own_s3.bucket}/reconciler/state.json.lock")
