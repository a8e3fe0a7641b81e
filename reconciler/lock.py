"""The apply lock: a lock file that keeps two applies from writing the same state at once.

``FileLock(lock_path, label)`` takes the lock file ``lock_path`` (for the state store,
``state.json.lock`` beside the state) and writes who holds it into it, so a refused apply can
say whom to wait for; ``label`` names what the lock guards in those messages::

    with FileLock(Path(".reconciler/state.json.lock"), ".reconciler/state.json"):
        ...  # no other apply holds it; StateLockedError was raised otherwise

The lock file is JSON: ``{"command", "hostname", "pid", "started_at"}``. On POSIX it is also
``flock``-ed while held: the kernel drops that the moment the holder dies, so checking and taking
over a stale lock cannot race with another apply doing the same.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reconciler.errors import StateError, StateLockedError

_fcntl: ModuleType | None
try:  # flock makes the lock robust on POSIX; Windows falls back to O_EXCL alone.
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - exercised only on Windows
    _fcntl = None

log = logging.getLogger(__name__)

#: An unreadable or empty lock file younger than this may be one another apply is writing right
#: now, so it counts as held; older than this it is debris from a crash and is taken over.
LOCK_GRACE_SECONDS = 60.0

# Option names whose value must never reach the lock file's ``command`` (it is plain text on disk).
_SECRET_OPTION_WORDS = ("key", "token", "secret", "password")


class FileLock:
    """The exclusive lock file ``lock_path``; ``label`` names what it guards in messages.

    Use it as a context manager, or call ``acquire()`` and ``release()``. Taking it raises
    ``StateLockedError`` when another apply holds it, ``StateError`` when the lock file cannot be
    created, opened or written. A lock file left behind is taken over (with a warning) when its
    process is gone from this host; one from another host is never assumed stale (we cannot see
    its processes); an unreadable one only once it is older than ``LOCK_GRACE_SECONDS``.

    One ``FileLock`` is held by one thread at a time and is not re-entrant: a second
    ``FileLock`` on the same path, even in the same process, is refused while this one is held.
    """

    def __init__(self, lock_path: Path | str, label: str) -> None:
        self.lock_path = Path(lock_path)
        self.label = label
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock right now."""
        return self._fd is not None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock now or raise; never waits for another holder."""
        if self._fd is not None:
            raise RuntimeError(f"{self.lock_path} is already held by this FileLock")
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create {self.lock_path.parent}: {_reason(exc)}") from exc
        self._fd = self._acquire()

    def release(self) -> None:
        """Remove the lock file if it is still ours, and let go; does nothing if not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        # Unlink while still holding the flock, and only if the path is still our file: a
        # waiting process that opened it re-checks the inode after its flock and starts over.
        try:
            if _is_current(fd, self.lock_path):
                os.unlink(self.lock_path)
            else:
                log.warning("lock file %s was removed or replaced while held", self.lock_path)
        except OSError as exc:
            log.warning("could not remove lock file %s: %s", self.lock_path, _reason(exc))
        finally:
            os.close(fd)
        log.debug("released %s", self.lock_path)

    # -- internals --

    def _acquire(self) -> int:
        # A few rounds only: a round repeats when the file vanished or was replaced under us.
        for _ in range(20):
            fd, created = self._open_lock_file()
            if fd is None:
                continue
            try:
                flocked = False
                if _fcntl is not None:
                    try:
                        _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
                    except BlockingIOError:
                        raise self._held_error(_read_holder(fd)[1]) from None
                    flocked = True
                    if not _is_current(fd, self.lock_path):
                        # The holder released (unlinked) it between our open and flock.
                        os.close(fd)
                        continue
                if not created:
                    self._judge_existing(fd, flocked=flocked)
                _write_holder(fd)
            except BaseException:
                os.close(fd)
                raise
            log.debug("acquired %s", self.lock_path)
            return fd
        raise StateError(f"could not take the lock {self.lock_path}: it keeps changing; retry")

    def _open_lock_file(self) -> tuple[int | None, bool]:
        try:
            return os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            pass
        except OSError as exc:
            raise StateError(f"cannot create lock file {self.lock_path}: {_reason(exc)}") from exc
        try:
            return os.open(self.lock_path, os.O_RDWR), False
        except FileNotFoundError:
            return None, False  # released between our two calls: try again
        except OSError as exc:
            raise StateError(f"cannot open lock file {self.lock_path}: {_reason(exc)}") from exc

    def _judge_existing(self, fd: int, *, flocked: bool) -> None:
        """Raise if the lock file we found belongs to a live apply; return to take it over."""
        raw, holder = _read_holder(fd)
        if holder is None:
            if flocked and not raw.strip():
                # Whoever holds the flock writes its details under it, so an empty file whose
                # flock we got is brand new (its creator will lose the flock) or crash debris.
                return
            age = time.time() - os.fstat(fd).st_mtime
            what = "is empty" if not raw.strip() else "does not hold valid lock details"
            if age < LOCK_GRACE_SECONDS:
                raise StateLockedError(
                    f"{self.label} is locked: {self.lock_path} {what} and was written "
                    f"{age:.0f} s ago, so another apply may be starting. Wait for it, or if no "
                    f"apply is running remove {self.lock_path}."
                )
            log.warning(
                "taking over %s: it %s and is %.0f s old (debris from a crashed apply)",
                self.lock_path,
                what,
                age,
            )
            return
        if holder["hostname"] != socket.gethostname():
            raise self._held_error(holder, other_host=True)
        if _pid_alive(holder["pid"]):
            raise self._held_error(holder)
        log.warning(
            "taking over stale lock %s: pid %s on %s (since %s, %r) is no longer running",
            self.lock_path,
            holder["pid"],
            holder["hostname"],
            holder["started_at"],
            holder["command"],
        )

    def _held_error(
        self, holder: dict[str, Any] | None, *, other_host: bool = False
    ) -> StateLockedError:
        if holder is None:
            who = "another apply that is just starting (it has not written its details yet)"
        else:
            who = (
                f"another apply: pid {holder['pid']} on host {holder['hostname']}, running "
                f"'{holder['command']}' since {holder['started_at']}"
            )
            if other_host:
                who += " (another host: reconciler cannot tell whether it still runs)"
        return StateLockedError(
            f"{self.label} is locked by {who}. Wait for it, or if no apply is running "
            f"remove {self.lock_path}."
        )


# ---- lock file helpers ----------------------------------------------------------------------


class _Holder(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    pid: Annotated[int, Field(gt=0)]  # > 0: os.kill(0, 0) would probe our own process group
    hostname: str
    started_at: str
    command: str


def _read_holder(fd: int) -> tuple[bytes, dict[str, Any] | None]:
    """The lock file's bytes, and its holder details if they are valid."""
    os.lseek(fd, 0, os.SEEK_SET)  # not pread: keep the Windows fallback working
    raw = os.read(fd, 65536)
    try:
        return raw, _Holder.model_validate_json(raw).model_dump()
    except ValidationError:
        return raw, None


def _write_holder(fd: int) -> None:
    holder = {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": _command_line(),
    }
    data = (json.dumps(holder, indent=2, sort_keys=True) + "\n").encode()
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    if os.write(fd, data) != len(data):
        raise StateError("could not write the lock file's holder details (short write)")
    os.fsync(fd)


def _command_line() -> str:
    """This process's command line for the lock file, with any secret-looking value hidden."""
    words = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"]
    hide_next = False
    for arg in sys.argv[1:]:
        name = arg.split("=", 1)[0].lower()
        secret = name.startswith("-") and any(w in name for w in _SECRET_OPTION_WORDS)
        if hide_next:
            words.append("***")
        elif secret and "=" in arg:
            words.append(arg.split("=", 1)[0] + "=***")
        else:
            words.append(arg)
        hide_next = secret and "=" not in arg
    return " ".join(words)


def _is_current(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    mine = os.fstat(fd)
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def _pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host; unsure counts as alive."""
    if os.name == "nt":  # os.kill there terminates the process instead of probing it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
