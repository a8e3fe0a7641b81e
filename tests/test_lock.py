"""The apply lock file: exclusivity, holder details, stale locks; real files under tmp_path."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reconciler.errors import StateError
from reconciler.run.engine import Engine
from reconciler.run.settings import Settings
from reconciler.state.holder import (
    LockWaitTimeoutError,
    StaleLockError,
    StateLockedError,
    _command_line,
)
from reconciler.state.lock import LOCK_GRACE_SECONDS, STALE_AFTER_SECONDS, FileLock

LABEL = ".reconciler/state.json"


def _lock_path(tmp_path: Path) -> Path:
    return tmp_path / ".reconciler" / "state.json.lock"


def _lock(lock_path: Path) -> FileLock:
    return FileLock(lock_path, LABEL)


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)  # reaped, so the pid is really gone (a zombie would still answer)
    return proc.pid


def _holder(pid: int, hostname: str | None = None) -> dict[str, object]:
    return {
        "pid": pid,
        "hostname": hostname or socket.gethostname(),
        "started_at": "2025-01-01T00:00:00+00:00",
        "command": "reconciler apply --yes",
    }


# ---- taking and releasing -------------------------------------------------------------------


def test_lock_is_exclusive_and_says_who_holds_it(tmp_path: Path) -> None:
    path = _lock_path(tmp_path)
    with _lock(path):
        holder = json.loads(path.read_text())
        assert holder["pid"] == os.getpid()
        assert holder["hostname"] == socket.gethostname()
        assert set(holder) == {"id", "pid", "hostname", "started_at", "heartbeat_at", "command"}
        with pytest.raises(StateLockedError) as info, _lock(path):
            pass  # pragma: no cover - taking it raises
        message = str(info.value)
        assert message.startswith(f"{LABEL} is locked by another apply")
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in message
        assert f"since {holder['started_at']}" in message
        assert "lock id " in message and "retry with --lock-timeout" in message
        assert path.exists()  # the refused attempt did not break the holder's lock
    assert not path.exists()
    with _lock(path):  # and it can be taken again
        pass


def test_acquire_and_release_without_with(tmp_path: Path) -> None:
    lock = _lock(_lock_path(tmp_path))
    assert not lock.held
    lock.acquire()
    assert lock.held
    assert lock.lock_path.exists()
    lock.release()
    assert not lock.held
    assert not lock.lock_path.exists()


def test_release_of_a_lock_not_held_does_nothing(tmp_path: Path) -> None:
    path = _lock_path(tmp_path)
    with _lock(path):
        _lock(path).release()  # not ours: must not remove the holder's file
        assert path.exists()


def test_acquiring_twice_is_a_bug(tmp_path: Path) -> None:
    with _lock(_lock_path(tmp_path)) as lock, pytest.raises(RuntimeError, match="already held"):
        lock.acquire()


def test_lock_released_after_exception(tmp_path: Path) -> None:
    path = _lock_path(tmp_path)
    with pytest.raises(RuntimeError), _lock(path):
        raise RuntimeError("boom")
    assert not path.exists()
    with pytest.raises(KeyboardInterrupt), _lock(path):
        raise KeyboardInterrupt
    assert not path.exists()


def test_lock_creates_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.json.lock"
    with _lock(path):
        assert path.exists()


def test_lock_in_an_impossible_place_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(StateError, match=r"cannot create .*not-a-dir"), _lock(blocker / "x.lock"):
        pass  # pragma: no cover - taking it raises


def test_release_does_not_remove_someone_elses_lock(tmp_path: Path) -> None:
    path = _lock_path(tmp_path)
    with _lock(path):
        path.unlink()  # a user removed it by hand and another apply took it
        path.write_text(json.dumps(_holder(os.getpid())))
        replacement = path.read_text()
    assert path.read_text() == replacement


# ---- lock files left behind -----------------------------------------------------------------


def test_stale_lock_from_dead_process_is_taken_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _lock_path(tmp_path)
    pid = _dead_pid()
    _write_json(path, _holder(pid))
    with caplog.at_level(logging.WARNING, logger="reconciler.state.lock"), _lock(path):
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert f"pid {pid}" in caplog.text
    assert "no longer running" in caplog.text
    assert not path.exists()


def test_racing_takeovers_of_a_stale_lock_have_one_winner(tmp_path: Path) -> None:
    path = _lock_path(tmp_path)
    _write_json(path, _holder(_dead_pid()))
    racers = 8
    start = threading.Barrier(racers)
    mutex = threading.Lock()
    tried = threading.Semaphore(0)
    outcome = {"holding": 0, "max_holding": 0, "won": 0, "refused": 0}
    unexpected: list[BaseException] = []

    def race() -> None:
        try:
            start.wait(timeout=30)
            with _lock(path):
                with mutex:
                    outcome["won"] += 1
                    outcome["holding"] += 1
                    outcome["max_holding"] = max(outcome["max_holding"], outcome["holding"])
                # Hold until every other racer has tried, so a second winner would overlap.
                for _ in range(racers - 1):
                    tried.acquire(timeout=10)
                with mutex:
                    outcome["holding"] -= 1
        except StateLockedError:
            with mutex:
                outcome["refused"] += 1
            tried.release()
        except BaseException as exc:
            unexpected.append(exc)
            tried.release()

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not unexpected
    assert outcome["max_holding"] == 1
    assert outcome["won"] + outcome["refused"] == racers
    assert outcome["won"] >= 1
    assert not path.exists()


def test_lock_of_a_live_process_is_respected(tmp_path: Path) -> None:
    # A lock file naming a running process (here: this one) is held, even without a flock.
    path = _lock_path(tmp_path)
    _write_json(path, _holder(os.getpid()))
    with pytest.raises(StateLockedError, match=f"pid {os.getpid()}"), _lock(path):
        pass  # pragma: no cover
    assert path.exists()  # not ours to remove


def test_lock_from_another_host_is_never_taken_over(tmp_path: Path) -> None:
    # Its heartbeat is recent: held, whatever its pid means here.
    path = _lock_path(tmp_path)
    holder = {**_holder(_dead_pid(), hostname="build-agent-7.example"), "id": "L-1"}
    holder["heartbeat_at"] = _iso(time.time() - 5)
    _write_json(path, holder)
    with pytest.raises(StateLockedError) as info, _lock(path):
        pass  # pragma: no cover
    assert not isinstance(info.value, StaleLockError)
    message = str(info.value)
    assert "on host build-agent-7.example" in message
    assert "lock id L-1" in message and "--lock-timeout" in message
    assert path.exists()


def test_lock_from_another_host_with_an_old_heartbeat_is_reported_stale(tmp_path: Path) -> None:
    path = _lock_path(tmp_path)
    holder = {**_holder(4242, hostname="build-agent-7.example"), "id": "L-2"}
    holder["heartbeat_at"] = _iso(time.time() - STALE_AFTER_SECONDS - 30)
    _write_json(path, holder)
    with pytest.raises(StaleLockError) as info:
        _lock(path).acquire(timeout=30)  # stale: reported at once, not waited for
    message = str(info.value)
    assert "stale" in message and "heartbeat is older than" in message
    assert f"reconciler state unlock L-2 --state {LABEL}" in message
    assert info.value.holder is not None and info.value.holder.id == "L-2"
    assert path.exists()  # reported, never removed without a human

    # The unlock command breaks exactly that lock; then the lock can be taken.
    with pytest.raises(StateError, match="not L-3"):
        _lock(path).break_lock("L-3")
    assert _lock(path).break_lock("L-2").hostname == "build-agent-7.example"
    assert not path.exists()
    with pytest.raises(StateError, match="not locked"):
        _lock(path).break_lock("L-2")
    with _lock(path):
        pass


def test_an_old_lock_without_heartbeat_counts_from_its_start(tmp_path: Path) -> None:
    # Written by an older reconciler: no id, no heartbeat; started long ago on another host.
    path = _lock_path(tmp_path)
    _write_json(path, _holder(4242, hostname="build-agent-7.example"))
    with pytest.raises(StaleLockError, match=f"delete {path}"), _lock(path):
        pass  # pragma: no cover


@pytest.mark.parametrize("content", ["{not json", '{"pid": "12"}'])
def test_unreadable_lock_is_held_during_grace_then_taken_over(tmp_path: Path, content: str) -> None:
    path = _lock_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(StateLockedError, match=f"^{LABEL} is locked: .*another apply may be"):
        _lock(path).acquire()
    old = time.time() - LOCK_GRACE_SECONDS - 5
    os.utime(path, (old, old))
    with _lock(path):
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_empty_lock_file_without_holder_is_taken(tmp_path: Path) -> None:
    # With flock, nobody holding it means nobody is about to write it: it is crash debris.
    path = _lock_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("")
    with _lock(path):
        assert json.loads(path.read_text())["pid"] == os.getpid()


# ---- other processes ------------------------------------------------------------------------

_HOLD_LOCK = """
import sys
from reconciler.state.lock import FileLock
with FileLock(sys.argv[1], "state"):
    print("locked", flush=True)
    sys.stdin.readline()  # hold until the test says so (or closes stdin)
"""


def _hold_in_subprocess(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    path = _lock_path(tmp_path)
    proc = _hold_in_subprocess(path)
    try:
        with pytest.raises(StateLockedError, match=f"pid {proc.pid} on host"), _lock(path):
            pass  # pragma: no cover
    finally:
        proc.communicate("\n", timeout=30)
    assert proc.returncode == 0
    assert not path.exists()  # the child released it on its way out
    with _lock(path):
        pass


def test_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    path = _lock_path(tmp_path)
    proc = _hold_in_subprocess(path)
    proc.kill()  # no cleanup runs: the lock file stays behind
    proc.communicate(timeout=30)
    assert path.exists()
    with _lock(path):
        assert json.loads(path.read_text())["pid"] == os.getpid()


# ---- the holder's command line --------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["/usr/bin/reconciler", "apply", "--yes"], "reconciler apply --yes"),
        (["reconciler", "--api-key", "s3cret", "apply"], "reconciler --api-key *** apply"),
        (["reconciler", "--api-key=s3cret", "apply"], "reconciler --api-key=*** apply"),
        (["reconciler", "--TOKEN", "s3cret"], "reconciler --TOKEN ***"),
        (["reconciler", "apply", "keyring"], "reconciler apply keyring"),  # not an option
    ],
)
def test_command_line_hides_secret_option_values(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], shown: str
) -> None:
    monkeypatch.setattr(sys, "argv", argv)
    assert _command_line() == shown


# ---- waiting, heartbeat, lost locks ---------------------------------------------------------


@pytest.mark.slow
def test_lock_timeout_waits_for_the_holder_then_takes_it(tmp_path: Path) -> None:
    path = _lock_path(tmp_path)
    proc = _hold_in_subprocess(path)
    with pytest.raises(StateLockedError, match=r"gave up after --lock-timeout 0.3 s"):
        _lock(path).acquire(timeout=0.3)
    threading.Timer(0.5, proc.communicate, args=("\n",)).start()
    started = time.monotonic()
    lock = _lock(path)
    lock.acquire(timeout=30)
    try:
        assert time.monotonic() - started >= 0.4  # it did wait for the other process
        assert json.loads(path.read_text())["pid"] == os.getpid()
    finally:
        lock.release()
    proc.wait(timeout=30)


def test_timeout_bounds_the_wait_for_the_lock(tmp_path: Path) -> None:
    proc = _hold_in_subprocess(_lock_path(tmp_path))
    try:
        settings = Settings(state=tmp_path / ".reconciler" / "state.json", lock_timeout=60)
        engine = Engine(dataclasses.replace(settings, timeout=0.5))
        started = time.monotonic()
        with pytest.raises(
            StateLockedError, match=r"Gave up waiting for it: --timeout of 0.5 s"
        ) as info:
            engine.state_rm(["viz-1"])
        assert "retry with --lock-timeout" not in str(info.value)  # it did wait
        assert isinstance(info.value, LockWaitTimeoutError)  # reported as kind "timeout"
        assert time.monotonic() - started < 30  # not the 60 s of --lock-timeout
    finally:
        proc.communicate("\n", timeout=30)


def test_heartbeat_refreshes_the_lock_while_held(tmp_path: Path) -> None:
    path = _lock_path(tmp_path)
    with FileLock(path, LABEL, heartbeat_interval=0.05):
        first = json.loads(path.read_text())
        deadline = time.monotonic() + 10
        while json.loads(path.read_text() or "{}").get("heartbeat_at") == first["heartbeat_at"]:
            assert time.monotonic() < deadline, "the heartbeat never moved"
            time.sleep(0.05)
        again = json.loads(path.read_text())
        assert again["id"] == first["id"] and again["started_at"] == first["started_at"]


def test_a_lock_broken_while_held_is_noticed_as_lost(tmp_path: Path) -> None:
    path = _lock_path(tmp_path)
    lost: list[str] = []
    lock = FileLock(path, LABEL, heartbeat_interval=0.05)
    lock.on_lost = lost.append
    lock.acquire()
    try:
        assert _lock(path).break_lock(lock.holder.id if lock.holder else "")
        deadline = time.monotonic() + 10
        while not lock.lost:
            assert time.monotonic() < deadline, "the broken lock was never noticed"
            time.sleep(0.05)
        assert lost and "broken or taken over" in lost[0]
    finally:
        lock.release()
