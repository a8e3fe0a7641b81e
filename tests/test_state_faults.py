"""The state lock when the storage misbehaves: answers lost, deletes refused.

moto's S3 server on 127.0.0.1 behind a fault proxy (tests/faultproxy.py), the emulator as the
API, reconciler through its command line. What must hold: a lock whose create landed but whose
answer was lost is this run's own (no "locked by another apply" naming itself, nothing left
behind); a delete that fails for a moment is retried; a lock that cannot be removed fails the
command, in the exit status and the report, with the exact command that clears it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result

from reconciler.emulator import Emulator
from reconciler.state.holder import Holder, parse_holder
from reconciler.state.lock import RELEASE_TRIES, FileLock
from tests.conftest import S3
from tests.faultproxy import Action, Fault, FaultProxy
from tests.planning import NDVI_BENGALURU_AB, SECRET, SPEC, run_cli, write_spec

# Whole applies against a proxied storage server, some waiting out the release's retries.
pytestmark = pytest.mark.slow

LOCK = "reconciler/state.json.lock"


@dataclass(frozen=True)
class FaultyS3:
    """A bucket on the session's moto server, reached by the code under test only through
    ``proxy``; ``s3.fs()`` looks at the bucket directly, past the faults."""

    s3: S3
    proxy: FaultProxy

    @property
    def url(self) -> str:
        return self.s3.url()

    def lock_holder(self) -> Holder | None:
        """The holder in the lock object now (None: there is no lock object)."""
        fs = self.s3.fs()
        key = f"{self.s3.bucket}/{LOCK}"
        if not fs.exists(key):
            return None
        holder = parse_holder(fs.cat_file(key))
        assert holder is not None, "the lock object holds no valid holder details"
        return holder

    def records(self) -> dict[str, object]:
        """The visualizations the remote state records."""
        raw = self.s3.fs().cat_file(f"{self.s3.bucket}/reconciler/state.json")
        data: dict[str, object] = json.loads(raw)["visualizations"]
        return data


@pytest.fixture
def faulty(s3: S3, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyS3]:
    with FaultProxy(s3.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        # One try per SDK call: a fault on N requests is then N failed calls, whatever retry
        # depth the SDK would have chosen (users set this too; the store cannot count on more).
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        yield FaultyS3(s3, proxy)


def _checkout(root: Path) -> Path:
    return write_spec(root / "job" / "specs", SPEC).parent


def _run(world: Emulator, cwd: Path, *args: str) -> Result:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return run_cli(*args, url=world.url, key=SECRET)
    finally:
        os.chdir(old)


def _apply(world: Emulator, cwd: Path, url: str) -> tuple[Result, dict[str, object]]:
    """``apply --yes`` of the spec in ``cwd`` against the state ``url``, and its report."""
    result = _run(world, cwd, "apply", "--yes", "--state", url, "--report", "report.json")
    assert "Traceback" not in result.output
    report: dict[str, object] = json.loads((cwd / "report.json").read_text())
    return result, report


def _unlock_command(output: str) -> list[str]:
    """The words of the ``reconciler state unlock`` command a message ends with."""
    start = output.rindex("reconciler state unlock ")
    return output[start:].split()


def _clears(world: Emulator, cwd: Path, command: list[str]) -> None:
    """Run ``command`` (``reconciler state unlock ...``) as a person would, and check it."""
    assert command[:3] == ["reconciler", "state", "unlock"], command
    done = _run(world, cwd, *command[1:])
    assert done.exit_code == 0, done.output
    assert "Broke the lock on" in done.output


# ---- taking the lock: a lost answer ------------------------------------------------------------


def test_a_lost_answer_to_the_lock_create_leaves_the_lock_ours(
    world: Emulator, faulty: FaultyS3, tmp_path: Path
) -> None:
    # The server creates the lock; its answer never arrives; the SDK tries again and is told
    # the lock already exists. It is ours.
    faulty.proxy.faults = [Fault("PUT", LOCK, Action.LOSE_ANSWER, header="if-none-match")]
    checkout = _checkout(tmp_path)

    result, report = _apply(world, checkout, faulty.url)

    creates = [e.status for e in faulty.proxy.seen("PUT", LOCK)][:2]
    assert creates == [None, 412], "the fault was not met as intended"
    assert result.exit_code == 0, result.output
    assert "locked by another apply" not in result.output
    assert report["ok"] is True and report["state_error"] == "" and report["error"] is None
    assert faulty.lock_holder() is None  # released at the end, nothing left behind
    assert NDVI_BENGALURU_AB in faulty.records()

    again = _run(world, checkout, "plan", "--detailed-exitcode", "--state", faulty.url)
    assert again.exit_code == 0, again.output
    assert "No changes" in again.output


def test_a_create_whose_every_answer_is_lost_is_recognised_as_ours(
    world: Emulator, faulty: FaultyS3, tmp_path: Path
) -> None:
    # No answer to any try: the SDK gives up with a connection error, and only reading the lock
    # tells that the first try created it.
    lost = Fault("PUT", LOCK, Action.LOSE_ANSWER, header="if-none-match", times=None)
    faulty.proxy.faults = [lost]

    result, report = _apply(world, _checkout(tmp_path), faulty.url)

    assert lost.applied >= 2, "the SDK should have tried more than once"
    assert result.exit_code == 0, result.output
    assert report["ok"] is True and report["error"] is None
    assert faulty.lock_holder() is None
    assert NDVI_BENGALURU_AB in faulty.records()


def test_a_create_and_read_back_both_unanswered_end_with_the_command_that_clears_the_lock(
    world: Emulator, faulty: FaultyS3, tmp_path: Path
) -> None:
    faulty.proxy.faults = [
        Fault("PUT", LOCK, Action.LOSE_ANSWER, header="if-none-match", times=None),
        Fault("HEAD GET", LOCK, Action.FAIL, times=None),
    ]
    checkout = _checkout(tmp_path)

    result, report = _apply(world, checkout, faulty.url)

    assert result.exit_code == 1, result.output
    # Nothing was changed, and the lock the first try created is named by its id.
    error = report["error"]
    assert isinstance(error, dict) and error["kind"] == "state"
    assert report["items"] == [] and report["ok"] is False
    holder = faulty.lock_holder()
    assert holder is not None and holder.pid == os.getpid()
    command = f"reconciler state unlock {holder.id} --state {faulty.url}"
    assert command in result.output and command in error["message"]
    assert "unknown whether the lock was created" in error["message"]

    faulty.proxy.faults = []
    _clears(world, checkout, _unlock_command(result.output))
    assert faulty.lock_holder() is None
    again, report = _apply(world, checkout, faulty.url)
    assert again.exit_code == 0, again.output


# ---- releasing the lock -----------------------------------------------------------------------


def test_a_lock_delete_that_fails_once_is_retried(
    world: Emulator, faulty: FaultyS3, tmp_path: Path
) -> None:
    faulty.proxy.faults = [Fault("DELETE", LOCK, Action.FAIL, status=503)]

    result, report = _apply(world, _checkout(tmp_path), faulty.url)

    assert [e.status for e in faulty.proxy.seen("DELETE", LOCK)] == [503, 204]
    assert result.exit_code == 0, result.output
    assert report["ok"] is True and report["state_error"] == ""
    assert faulty.lock_holder() is None


def test_a_lock_that_cannot_be_deleted_fails_apply_with_the_command_that_clears_it(
    world: Emulator, faulty: FaultyS3, tmp_path: Path
) -> None:
    faulty.proxy.faults = [Fault("DELETE", LOCK, Action.FAIL, status=500, times=None)]
    checkout = _checkout(tmp_path)

    result, report = _apply(world, checkout, faulty.url)

    assert len(faulty.proxy.seen("DELETE", LOCK)) == RELEASE_TRIES
    holder = faulty.lock_holder()
    assert holder is not None, "the lock should still be there"
    command = f"reconciler state unlock {holder.id} --state {faulty.url}"
    # The changes happened and are reported; the lock left behind fails the run all the same.
    assert result.exit_code == 1, result.output
    assert "Apply complete: 1 created, 0 adopted, 1 rolled back" in result.output
    assert f"clear it with: {command}" in result.output
    assert report["ok"] is False and report["error"] is None
    state_error = report["state_error"]
    assert isinstance(state_error, str) and command in state_error
    assert "could not release the state lock" in state_error
    assert NDVI_BENGALURU_AB in faulty.records()  # the state itself was saved

    # It is no false alarm: the next apply is refused ...
    faulty.proxy.faults = []
    blocked, report = _apply(world, checkout, faulty.url)
    assert blocked.exit_code == 1 and holder.id in blocked.output
    # ... until the command given clears it; then the plan is the right one.
    _clears(world, checkout, _unlock_command(result.output))
    plan = _run(world, checkout, "plan", "--detailed-exitcode", "--state", faulty.url)
    assert plan.exit_code == 0, plan.output
    assert "No changes" in plan.output


def test_a_lock_left_by_an_apply_with_nothing_to_do_is_an_error_too(
    world: Emulator, faulty: FaultyS3, tmp_path: Path
) -> None:
    checkout = _checkout(tmp_path)
    first, _ = _apply(world, checkout, faulty.url)
    assert first.exit_code == 0, first.output
    faulty.proxy.faults = [Fault("DELETE", LOCK, Action.RESET, times=None)]

    result, report = _apply(world, checkout, faulty.url)

    assert "No changes" in result.output
    holder = faulty.lock_holder()
    assert holder is not None
    assert result.exit_code == 1, result.output
    assert report["ok"] is False and report["error"] is None and report["items"] == []
    state_error = report["state_error"]
    assert isinstance(state_error, str)
    assert f"reconciler state unlock {holder.id} --state {faulty.url}" in state_error


def test_a_lost_answer_to_the_lock_delete_is_no_lock_left_behind(
    world: Emulator, faulty: FaultyS3, tmp_path: Path
) -> None:
    # The server deletes the lock, every answer is lost: the lock is gone, and saying it is
    # left behind would send a person to clear a lock that is not there.
    lost = Fault("DELETE", LOCK, Action.LOSE_ANSWER, times=None)
    faulty.proxy.faults = [lost]

    result, report = _apply(world, _checkout(tmp_path), faulty.url)

    assert lost.applied >= 1
    assert result.exit_code == 0, result.output
    assert report["ok"] is True and report["state_error"] == ""
    assert faulty.lock_holder() is None


# ---- state rm takes the lock too ----------------------------------------------------------------


def test_state_rm_takes_the_lock_despite_a_lost_answer(
    world: Emulator, faulty: FaultyS3, tmp_path: Path
) -> None:
    checkout = _checkout(tmp_path)
    applied, _ = _apply(world, checkout, faulty.url)
    assert applied.exit_code == 0, applied.output
    faulty.proxy.faults = [Fault("PUT", LOCK, Action.LOSE_ANSWER, header="if-none-match")]

    result = _run(world, checkout, "state", "rm", NDVI_BENGALURU_AB, "--state", faulty.url)

    assert faulty.proxy.applied(Action.LOSE_ANSWER) == 1
    assert result.exit_code == 0, result.output
    assert "Removed 1 record" in result.output
    assert NDVI_BENGALURU_AB not in faulty.records()
    assert faulty.lock_holder() is None


def test_state_rm_that_cannot_release_the_lock_says_what_it_did_and_how_to_clear_it(
    world: Emulator, faulty: FaultyS3, tmp_path: Path
) -> None:
    checkout = _checkout(tmp_path)
    applied, _ = _apply(world, checkout, faulty.url)
    assert applied.exit_code == 0, applied.output
    faulty.proxy.faults = [Fault("DELETE", LOCK, Action.FAIL, times=None)]

    result = _run(world, checkout, "state", "rm", NDVI_BENGALURU_AB, "--state", faulty.url)

    holder = faulty.lock_holder()
    assert holder is not None
    assert result.exit_code == 1, result.output
    assert f"removed 1 record(s) from {faulty.url}; but could not release" in result.output
    assert f"reconciler state unlock {holder.id} --state {faulty.url}" in result.output
    assert NDVI_BENGALURU_AB not in faulty.records()
    faulty.proxy.faults = []
    _clears(world, checkout, _unlock_command(result.output))
    assert faulty.lock_holder() is None


# ---- the local lock file ------------------------------------------------------------------------

_FILL_LOCK_UNDER_A_SIZE_LIMIT = textwrap.dedent(
    """
    import resource, signal, sys
    from pathlib import Path
    from reconciler.errors import StateError
    from reconciler.state.lock import FileLock

    # Writes past 64 bytes fail, as on a full disk (the holder details are longer).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
    try:
        FileLock(Path(sys.argv[1]), "state.json").acquire()
    except StateError as exc:
        print("refused:", exc)
    else:
        print("taken")
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_lock_file_that_cannot_be_filled_is_not_left_behind(tmp_path: Path) -> None:
    path = tmp_path / "state.json.lock"
    done = subprocess.run(
        [sys.executable, "-c", _FILL_LOCK_UNDER_A_SIZE_LIMIT, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # A half-written lock would hold no valid details and block every apply for a minute.
    assert not path.exists(), done.stdout
    assert f"refused: cannot write the holder details into lock file {path}" in done.stdout
    lock = FileLock(path, "state.json")
    lock.acquire()
    assert lock.release()
