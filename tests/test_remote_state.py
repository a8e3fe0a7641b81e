"""Remote state on a real S3-protocol server (moto, 127.0.0.1) with the emulator as the API.

What CI jobs on different runners rely on: one state URL shared by plan and apply, a lock
object created only if absent, stale locks reported and broken, a state uploaded whole and
often, and clear errors for a missing extra or bad credentials.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from reconciler.emulator import Emulator
from reconciler.errors import StateError
from reconciler.state.holder import Holder, StateLockedError
from reconciler.state.lock import ObjectLock
from reconciler.state.store import StateStore
from tests.conftest import S3
from tests.planning import NDVI_BENGALURU_AB, SECRET, SPEC, run_cli, write_spec


def _checkout(root: Path, name: str) -> Path:
    """A fresh clone of the spec repository: its own working directory, no local state."""
    return write_spec(root / name / "specs", SPEC).parent


def _run(world: Emulator, cwd: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return run_cli(*args, url=world.url, key=SECRET, env=env)
    finally:
        os.chdir(old)


def _subprocess_env(s3: S3, world: Emulator) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PIXXEL_API_KEY": SECRET,
        "PIXXEL_API_URL": world.url,
        **s3.env,
    }


def _objects(s3: S3) -> list[str]:
    return sorted(p.split("/", 1)[1] for p in s3.fs().find(s3.bucket))


# ---- one state for plan and apply, wherever they run ------------------------------------------


@pytest.mark.slow
def test_apply_then_plan_from_another_checkout_shows_no_changes(
    world: Emulator, s3: S3, tmp_path: Path
) -> None:
    url = s3.url()
    merge_job = _checkout(tmp_path, "merge-job")
    pr_job = _checkout(tmp_path, "pr-job")

    applied = _run(world, merge_job, "apply", "--yes", "--state", url)
    assert applied.exit_code == 0, applied.output
    assert _objects(s3) == ["reconciler/state.json"]  # no lock object left behind
    assert not (merge_job / ".reconciler" / "state.json").exists()
    assert not list((merge_job / ".reconciler" / "journal").glob("*"))  # folded and removed

    # Another runner, another directory, the same URL (here through RECONCILER_STATE).
    plan = _run(world, pr_job, "plan", "--detailed-exitcode", env={"RECONCILER_STATE": url})
    assert plan.exit_code == 0, plan.output
    assert "No changes" in plan.output

    # Without the shared state the same plan would roll everything back again, and says why.
    alone = _run(world, pr_job, "plan", "--detailed-exitcode")
    assert alone.exit_code == 2
    assert "has no records" in alone.output and "docs/state.md" in alone.output

    shown = _run(world, pr_job, "state", "show", "--state", url, "--format", "json")
    data = json.loads(shown.output)
    assert data["location"] == url and data["lock"] is None and data["version"] == 2
    assert NDVI_BENGALURU_AB in data["visualizations"]  # rolled back
    assert len(data["visualizations"]) == 2  # ... and the one visualization created


def test_records_reach_the_remote_state_while_apply_runs(s3: S3, tmp_path: Path) -> None:
    store = StateStore(s3.url(), flush_interval=0.05, journal_dir=tmp_path / "journal")
    with store.lock():
        store.record_fresh("v1", aoi_id="a1", legends={"dynamic": ["2024-05-06"]}, updated_at="t")
        deadline = time.monotonic() + 10
        while "v1" not in _remote_records(s3):
            assert time.monotonic() < deadline, "the record was never uploaded"
            time.sleep(0.05)
        # Uploaded: nothing left to replay (the journal goes just after the upload lands).
        while store.journal_path.exists():
            assert time.monotonic() < deadline, "the journal was never emptied"
            time.sleep(0.05)
    assert _objects(s3) == ["reconciler/state.json"]


def _remote_records(s3: S3) -> dict[str, Any]:
    try:
        data = json.loads(s3.fs().cat_file(f"{s3.bucket}/reconciler/state.json"))
    except FileNotFoundError:
        return {}
    records: dict[str, Any] = data["visualizations"]
    return records


_RECORD_REMOTE = textwrap.dedent(
    """
    import sys
    from reconciler.state.store import StateStore
    store = StateStore(sys.argv[1], flush_interval=0.2)
    with store.lock():
        i = 0
        while True:
            store.record_fresh(f"v{i}", aoi_id="a1", legends={}, updated_at="t")
            print(i, flush=True)
            i += 1
    """
)


@pytest.mark.slow
def test_a_killed_job_loses_at_most_seconds_remotely_and_nothing_on_its_disk(
    s3: S3, tmp_path: Path
) -> None:
    url = s3.url()
    proc = subprocess.Popen(
        [sys.executable, "-c", _RECORD_REMOTE, url],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, **s3.env},
    )
    assert proc.stdout is not None
    started = 0.0
    last = -1
    for line in proc.stdout:
        last = int(line)
        started = started or time.monotonic()  # from the first record, however slow the start
        if time.monotonic() - started > 1.5:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)

    # The remote state was uploaded whole while the job ran: valid, and behind by little.
    remote = _remote_records(s3)
    assert remote and all(f"v{i}" in remote for i in range(len(remote)))
    # The lock stays: a killed job cannot release it, and another runner must not guess.
    holder = ObjectLock(s3.fs(), f"{s3.bucket}/reconciler/state.json.lock", url, url).read_holder()
    assert holder is not None and holder.pid == proc.pid

    # A rerun from the same directory on this machine replays the journal: nothing is lost.
    store = StateStore(url, journal_dir=tmp_path / ".reconciler" / "journal")
    assert store.unlock(holder.id) == holder
    with store.lock():
        pass
    remote = _remote_records(s3)
    assert all(f"v{i}" in remote for i in range(last + 1))
    assert not store.journal_path.exists()


# ---- the lock across runners ------------------------------------------------------------------


@pytest.mark.slow
def test_of_racing_runners_exactly_one_takes_the_lock(s3: S3) -> None:
    path = f"{s3.bucket}/reconciler/state.json.lock"
    start = threading.Barrier(6)
    won: list[ObjectLock] = []
    refused: list[str] = []

    def race() -> None:
        lock = ObjectLock(s3.fs(), path, "state", f"s3://{path}")
        start.wait(timeout=30)
        try:
            lock.acquire()
            won.append(lock)
        except StateLockedError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(won) == 1 and len(refused) == 5
    assert all("locked by another apply" in message for message in refused)
    won[0].release()
    assert _objects(s3) == []


_APPLY = [sys.executable, "-m", "reconciler", "apply", "--yes", "--parallelism", "2"]


@pytest.mark.slow
def test_a_concurrent_apply_fails_fast_or_waits_with_lock_timeout(
    make_emulator: Callable[..., Emulator], s3: S3, tmp_path: Path
) -> None:
    # The first apply waits for slow creations, holding the lock meanwhile.
    world = make_emulator(api_keys=(SECRET,), creation_delay=2.0)
    first_dir, second_dir = _checkout(tmp_path, "runner-1"), _checkout(tmp_path, "runner-2")
    url = s3.url()
    first = subprocess.Popen(
        [*_APPLY, "--state", url],
        cwd=first_dir,
        env=_subprocess_env(s3, world),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while "reconciler/state.json.lock" not in _objects(s3):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first apply never took the lock"
            time.sleep(0.05)

        started = time.monotonic()
        refused = _run(world, second_dir, "apply", "--yes", "--state", url)
        assert refused.exit_code == 1
        assert time.monotonic() - started < 10  # fails fast, does not wait
        assert "is locked by another apply: pid" in refused.output
        assert f"pid {first.pid} on host" in refused.output and "lock id" in refused.output

        waited = _run(world, second_dir, "apply", "--yes", "--state", url, "--lock-timeout", "1m")
        assert waited.exit_code == 0, waited.output
        assert first.wait(timeout=60) == 0, first.communicate()
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate(timeout=30)
    plan = _run(world, second_dir, "plan", "--detailed-exitcode", "--state", url)
    assert plan.exit_code == 0, plan.output
    assert _objects(s3) == ["reconciler/state.json"]


@pytest.mark.slow
def test_a_stale_lock_is_reported_and_broken_with_state_unlock(
    world: Emulator, s3: S3, tmp_path: Path
) -> None:
    url = s3.url()
    checkout = _checkout(tmp_path, "runner")
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    dead = Holder(
        id="0b7d3c1e-dead-4bad-8bad-5ca1ab1e0000",
        pid=4242,
        hostname="ci-runner-17",
        started_at=long_ago.isoformat(timespec="seconds"),
        heartbeat_at=long_ago.isoformat(timespec="seconds"),
        command="reconciler apply --yes",
    )
    s3.fs().pipe_file(f"{s3.bucket}/reconciler/state.json.lock", dead.to_json())

    refused = _run(
        world,
        checkout,
        "apply",
        "--yes",
        "--state",
        url,
        "--lock-timeout",
        "30s",
        "--report",
        "r.json",
    )
    assert refused.exit_code == 1  # at once: waiting would not make a stale lock go away
    assert "stale lock" in refused.output and "host ci-runner-17" in refused.output
    report = json.loads((checkout / "r.json").read_text())
    assert report["error"]["kind"] == "locked" and report["items"] == []
    unlock = f"reconciler state unlock {dead.id} --state {url}"
    assert unlock in refused.output

    shown = _run(world, checkout, "state", "show", "--state", url)
    assert shown.exit_code == 0 and "Locked by pid 4242 on host ci-runner-17" in shown.output

    wrong = _run(world, checkout, "state", "unlock", "not-that-one", "--state", url)
    assert wrong.exit_code == 1 and "not not-that-one" in wrong.output
    broke = _run(world, checkout, *unlock.split()[1:])
    assert broke.exit_code == 0 and "Broke the lock" in broke.output
    assert broke.output.lower().count("broke the lock") == 1  # said once, not logged too
    assert _objects(s3) == []

    assert _run(world, checkout, "apply", "--yes", "--state", url).exit_code == 0


@pytest.mark.slow
def test_state_rm_forgets_a_record_under_the_lock(world: Emulator, s3: S3, tmp_path: Path) -> None:
    url = s3.url()
    checkout = _checkout(tmp_path, "runner")
    assert _run(world, checkout, "apply", "--yes", "--state", url).exit_code == 0
    records = _remote_records(s3)
    victim = next(iter(records))

    missing = _run(world, checkout, "state", "rm", victim, "no-such-id", "--state", url)
    assert missing.exit_code == 1 and "no record of no-such-id" in missing.output
    assert set(_remote_records(s3)) == set(records)  # all or nothing

    removed = _run(world, checkout, "state", "rm", victim, "--state", url)
    assert removed.exit_code == 0, removed.output
    assert set(_remote_records(s3)) == set(records) - {victim}
    assert _objects(s3) == ["reconciler/state.json"]


# ---- clear errors -----------------------------------------------------------------------------

_WITHOUT_S3FS = textwrap.dedent(
    """
    import sys
    sys.modules["s3fs"] = None  # as if the [s3] extra were not installed
    from reconciler.cli.main import main
    sys.argv = ["reconciler", *sys.argv[1:]]
    main()
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("url", "blocked", "extra"),
    [
        ("s3://bucket/state.json", True, "reconciler[s3]"),
        ("gs://bucket/state.json", False, "reconciler[gcs]"),
    ],
)
def test_a_missing_extra_names_the_pip_install(
    world: Emulator, tmp_path: Path, url: str, blocked: bool, extra: str
) -> None:
    if not blocked:
        pytest.importorskip("fsspec")
        try:
            import gcsfs  # noqa: F401
        except ImportError:
            pass
        else:  # pragma: no cover - only where someone installed gcsfs by hand
            pytest.skip("gcsfs is installed here: the s3 case covers a missing extra")
    checkout = _checkout(tmp_path, "runner")
    code = (
        [sys.executable, "-c", _WITHOUT_S3FS] if blocked else [sys.executable, "-m", "reconciler"]
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PIXXEL_API_KEY": SECRET,
        "PIXXEL_API_URL": world.url,
    }
    result = subprocess.run(
        [*code, "plan", "--state", url],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert f"pip install '{extra}'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_credentials_are_a_clear_error_without_the_secret(
    world: Emulator, s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = _checkout(tmp_path, "runner")
    aws_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRETKEY"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAREALKEY00000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", aws_secret)
    s3.set_auth(enforced=True)
    try:
        results = [
            _run(world, checkout, "apply", "--yes", "--state", s3.url()),
            _run(world, checkout, "plan", "--state", s3.url()),
            _run(world, checkout, "-vv", "state", "show", "--state", s3.url()),
        ]
    finally:
        s3.set_auth(enforced=False)
    for result in results:
        assert result.exit_code == 1, result.output
        assert "access denied" in result.output and "AWS_ACCESS_KEY_ID" in result.output
        assert "Traceback" not in result.output
        assert aws_secret not in result.output and SECRET not in result.output


def test_a_url_without_a_key_is_refused(world: Emulator, tmp_path: Path) -> None:
    result = _run(world, _checkout(tmp_path, "runner"), "plan", "--state", "s3://just-a-bucket")
    assert result.exit_code == 1
    assert "expected s3://BUCKET/PATH/state.json" in result.output


def _object_lock(s3: S3, **options: float) -> ObjectLock:
    path = f"{s3.bucket}/reconciler/state.json.lock"
    return ObjectLock(s3.fs(), path, s3.url(), f"s3://{path}", **options)


@pytest.mark.slow
def test_a_lock_object_of_a_dead_process_here_is_stale_at_once(s3: S3) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    holder = Holder.for_this_process()
    holder = Holder(**{**holder.to_dict(), "pid": int(dead.stdout), "id": "L-dead"})
    s3.fs().pipe_file(f"{s3.bucket}/reconciler/state.json.lock", holder.to_json())
    with pytest.raises(StateLockedError, match="its process is no longer running") as info:
        _object_lock(s3).acquire()
    assert "reconciler state unlock L-dead" in str(info.value)


@pytest.mark.slow
def test_an_unreadable_lock_object_is_held_and_cannot_be_unlocked_by_id(s3: S3) -> None:
    s3.fs().pipe_file(f"{s3.bucket}/reconciler/state.json.lock", b"{garbage")
    with pytest.raises(StateLockedError, match="does not hold valid lock details"):
        _object_lock(s3).acquire()
    with pytest.raises(StateError, match="has no lock id"):
        _object_lock(s3).break_lock("anything")
    assert _object_lock(s3).read_holder() is None


def test_a_remote_lock_broken_while_held_stops_the_writes(s3: S3, tmp_path: Path) -> None:
    store = StateStore(
        s3.url(),
        flush_interval=60,
        journal_dir=tmp_path,
        # Beats far apart against the breaker's second look, as with the defaults.
        lock_options={"heartbeat_interval": 0.5},
    )
    stopped: list[str] = []
    store.on_lock_lost = stopped.append
    with (
        pytest.raises(StateError, match="was broken while this apply held it"),
        store.lock() as lock,
    ):
        assert lock.holder is not None
        store.record_fresh("v1", aoi_id="a1", legends={}, updated_at="t")
        breaker = StateStore(
            s3.url(), journal_dir=tmp_path / "other", lock_options={"recheck_after": 0.2}
        )
        breaker.unlock(lock.holder.id)
        deadline = time.monotonic() + 10
        while not lock.lost:
            assert time.monotonic() < deadline, "the broken lock was never noticed"
            time.sleep(0.02)
        assert stopped and "broken or taken over" in stopped[0]
        store.flush()  # refused: someone else may own the state now
    assert _remote_records(s3) == {}  # nothing written over another owner's state
    assert "v1" in store.journal_path.read_text()  # kept for the next run here


def test_a_lock_its_live_holder_writes_again_as_it_is_broken_is_removed_again(
    s3: S3, caplog: pytest.LogCaptureFixture
) -> None:
    holding = _object_lock(s3, heartbeat_interval=3600)
    holding.acquire()
    assert holding.holder is not None
    fs = s3.fs()
    path = f"{s3.bucket}/reconciler/state.json.lock"
    written = holding.holder.to_json()

    def late_heartbeat() -> None:
        # The holder's heartbeat read its lock just before the delete, and writes it after.
        deadline = time.monotonic() + 10
        while fs.exists(path) and time.monotonic() < deadline:
            fs.invalidate_cache()
            time.sleep(0.005)
        fs.pipe_file(path, written)

    racer = threading.Thread(target=late_heartbeat)
    racer.start()
    try:
        breaker = _object_lock(s3, recheck_after=0.3)
        assert breaker.break_lock(holding.holder.id).id == holding.holder.id
    finally:
        racer.join()
    assert breaker.read_holder() is None  # gone for good: the holder's next beat sees it
    assert "still running" in caplog.text
    assert not holding.confirm() and holding.lost
    holding.release()


class _NoExclusiveCreate:
    """A file system like an fsspec backend too old to create an object only if absent."""

    def pipe_file(self, path: str, value: bytes) -> None:  # no mode="create"
        raise AssertionError("never called with only two arguments")  # pragma: no cover


def test_a_backend_without_conditional_create_cannot_lock() -> None:
    lock = ObjectLock(_NoExclusiveCreate(), "b/state.json.lock", "x://b/state.json", "x://b/k")
    with pytest.raises(StateError, match="cannot create an object only if it is absent"):
        lock.acquire()


def test_very_verbose_logs_show_no_cloud_credentials(
    world: Emulator, s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN0123456789abcdef"
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    checkout = _checkout(tmp_path, "runner")
    result = _run(world, checkout, "-vv", "apply", "--yes", "--state", s3.url())
    assert result.exit_code == 0, result.output
    assert "DEBUG reconciler" in result.output  # -vv still shows our own debugging
    assert token not in result.output and "X-Amz-Security-Token" not in result.output
    assert s3.env["AWS_SECRET_ACCESS_KEY"] not in result.output
    assert "Credential=" not in result.output  # no signed request headers at all


def test_cloud_secret_variables_are_redacted_from_what_is_printed() -> None:
    from reconciler.redact import install_environment_secrets, redact

    key = "c2VjcmV0LWF6dXJlLXN0b3JhZ2Uta2V5LTAxMjM0NTY3OA=="
    install_environment_secrets(
        {"AZURE_STORAGE_CONNECTION_STRING": f"AccountName=acct;AccountKey={key};Endpoint=x"}
    )
    assert key not in redact(f"cannot open: AccountKey={key}")


def test_a_plan_on_a_missing_bucket_is_an_error_not_an_empty_state(
    world: Emulator, s3: S3, tmp_path: Path
) -> None:
    url = f"s3://{s3.bucket}-missing/reconciler/state.json"
    result = _run(world, _checkout(tmp_path, "runner"), "plan", "--state", url)
    assert result.exit_code == 1, result.output
    assert f"the bucket (or container) '{s3.bucket}-missing' does not exist" in result.output
    assert "Traceback" not in result.output


class _Hooked:
    """The s3fs file system of a test, with a hook run after each read of the lock object."""

    def __init__(self, fs: Any) -> None:
        self._fs = fs
        self.after_read: Callable[[], object] | None = None

    def cat_file(self, path: str) -> bytes:
        data: bytes = self._fs.cat_file(path)
        if self.after_read is not None:
            hook, self.after_read = self.after_read, None
            hook()
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs, name)


def test_a_heartbeat_that_outlives_release_does_not_recreate_the_lock(s3: S3) -> None:
    path = f"{s3.bucket}/reconciler/state.json.lock"
    fs = _Hooked(s3.fs())
    lock = ObjectLock(fs, path, s3.url(), f"s3://{path}", heartbeat_interval=3600)
    lock.acquire()
    holder = lock.holder
    assert holder is not None
    # The store answers the heartbeat's read so late that release() has removed the lock by
    # the time the heartbeat would write.
    fs.after_read = lock.release
    lock._beat(holder.beat())
    assert not s3.fs().exists(path)


class _Broken:
    """A file system whose reads fail with an error that is no storage failure (a bug)."""

    def __init__(self, fs: Any) -> None:
        self._fs = fs
        self.broken = False

    def cat_file(self, path: str) -> bytes:
        if self.broken:
            raise ValueError("unexpected")
        data: bytes = self._fs.cat_file(path)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs, name)


def test_a_heartbeat_failing_unexpectedly_marks_the_lock_lost(s3: S3) -> None:
    path = f"{s3.bucket}/reconciler/state.json.lock"
    fs = _Broken(s3.fs())
    lock = ObjectLock(fs, path, s3.url(), f"s3://{path}", heartbeat_interval=0.05)
    lost: list[str] = []
    lock.on_lost = lost.append
    lock.acquire()
    try:
        fs.broken = True
        deadline = time.monotonic() + 10
        while not lock.lost:
            assert time.monotonic() < deadline, "the failed heartbeat was never noticed"
            time.sleep(0.02)
        assert lost and "heartbeat" in lost[0] and "ValueError" in lost[0]
    finally:
        fs.broken = False
        lock.release()


@pytest.mark.slow
def test_a_flush_checks_the_lock_right_before_writing(s3: S3, tmp_path: Path) -> None:
    store = StateStore(
        s3.url(),
        flush_interval=3600,
        journal_dir=tmp_path,
        lock_options={"heartbeat_interval": 3600},  # the heartbeat will not notice in time
    )
    with store.lock() as lock:
        assert lock.holder is not None
        store.record_fresh("v1", aoi_id="a1", legends={}, updated_at="t")
        breaker = StateStore(
            s3.url(), journal_dir=tmp_path / "other", lock_options={"recheck_after": 0.05}
        )
        breaker.unlock(lock.holder.id)
        other = StateStore(s3.url(), journal_dir=tmp_path / "other")
        with other.lock():  # another apply owns the state now, and leaves it empty
            assert not lock.lost
            with pytest.raises(StateError, match="was broken while this apply held it"):
                store.flush()
            assert lock.lost
    assert _remote_records(s3) == {}
    assert "v1" in store.journal_path.read_text()


def test_a_plan_ignores_a_remote_journal_left_in_its_directory(s3: S3, tmp_path: Path) -> None:
    from reconciler.state.journal import Journal
    from reconciler.state.records import State

    store = StateStore(s3.url(), flush_interval=3600, journal_dir=tmp_path)
    left = State()
    left.record_fresh("v1", aoi_id="a1", legends={}, updated_at="t")
    journal = Journal(store.journal_path, store.label)  # what a killed apply leaves behind
    journal.append("v1", left.get("v1"))
    journal.close()
    # Read-only: the same state whatever the directory it is read from.
    assert store.load().get("v1") is None
    assert StateStore(s3.url(), journal_dir=tmp_path).load().get("v1") is None
    # The lock holder folds the records in and saves them.
    with store.lock():
        assert store.state.get("v1") is not None
    assert "v1" in _remote_records(s3)
    assert not store.journal_path.exists()


def test_an_unsupported_state_url_is_a_clear_error(world: Emulator, tmp_path: Path) -> None:
    checkout = _checkout(tmp_path, "runner")
    result = _run(world, checkout, "plan", "--state", "http://x/state.json")
    assert result.exit_code == 1
    assert "http:// is not a supported state location" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_a_plan_says_when_the_state_is_locked(world: Emulator, s3: S3, tmp_path: Path) -> None:
    checkout = _checkout(tmp_path, "runner")
    assert "is locked" not in _run(world, checkout, "plan", "--state", s3.url()).output
    lock = _object_lock(s3, heartbeat_interval=3600)
    with lock:
        assert lock.holder is not None
        result = _run(world, checkout, "plan", "--state", s3.url())
        assert result.exit_code == 0, result.output
        assert f"is locked by an apply in progress: pid {os.getpid()}" in result.output
        assert lock.holder.id in result.output
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    holder = Holder(**{**Holder.for_this_process().to_dict(), "heartbeat_at": old.isoformat()})
    s3.fs().pipe_file(f"{s3.bucket}/reconciler/state.json.lock", holder.to_json())
    result = _run(world, checkout, "plan", "--state", s3.url())
    assert result.exit_code == 0, result.output
    assert "is locked by a stale lock" in result.output
    assert f"reconciler state unlock {holder.id} --state {s3.url()}" in result.output
