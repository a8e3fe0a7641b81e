"""The state lock: one apply at a time per state, on one disk or across CI runners.

Two kinds, one behaviour (``StateLock``):

- ``FileLock(lock_path, label)``: a local lock file (``state.json.lock`` beside the state),
  created with ``O_EXCL`` and ``flock``-ed while held on POSIX, so the kernel drops it the moment
  the holder dies and a takeover cannot race with another apply doing the same.
- ``ObjectLock(fs, path, label, url)``: a lock object beside a remote state, created with the
  store's conditional write (fsspec's ``mode="create"``: S3 ``If-None-Match: *``, GCS
  ``ifGenerationMatch=0``, Azure's no-overwrite upload), so two runners can never both create it.

Either names its holder (a ``Holder``: lock id, host, pid, command, start time, heartbeat) and
refreshes the heartbeat from a background thread while held::

    with FileLock(Path(".reconciler/state.json.lock"), ".reconciler/state.json"):
        ...  # no other apply holds it; StateLockedError was raised otherwise

``acquire(timeout)`` waits with backoff while another apply holds the lock (default: fail at
once, like Terraform). A lock whose heartbeat is older than ``stale_after`` (or, on this host,
whose process is gone) is stale: a local one of this host is taken over, as the kernel proves its
holder dead; any other is reported (``StaleLockError``) with the command that breaks it,
``reconciler state unlock LOCK_ID`` (``StateLock.break_lock``).

Taking and releasing survive a store that misbehaves. A lock that carries this holder's id is
this holder's: when the store created it but its answer was lost (the connection dropped), the
SDK's retry meets "already exists" or the create fails, and the read that follows finds our own
id, so the lock is held rather than "held by another apply". Releasing retries a store that
fails for a moment; a lock that still cannot be removed makes ``release()`` return False with
the reason in ``release_error``, for the caller to report with ``unlock_command``.
"""

from __future__ import annotations

import abc
import errno
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from reconciler.errors import StateError
from reconciler.state.holder import (
    Holder,
    LockWaitTimeoutError,
    StaleLockError,
    StateLockedError,
    parse_holder,
)
from reconciler.state.remotefs import display_url, is_storage_error, remote_error

_fcntl: ModuleType | None
try:  # flock makes the lock robust on POSIX; Windows falls back to O_EXCL alone.
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - exercised only on Windows
    _fcntl = None

log = logging.getLogger(__name__)

#: How a "locked" error ends when apply did not wait: what to do about it.
_WAIT_ADVICE = " Wait for it, or retry with --lock-timeout."

#: An unreadable or empty lock file younger than this may be one another apply is writing right
#: now, so it counts as held; older than this it is debris from a crash and is taken over.
LOCK_GRACE_SECONDS = 60.0

#: How often a held lock's heartbeat is refreshed.
HEARTBEAT_SECONDS = 15.0

#: A lock whose heartbeat is older than this is stale: its holder stopped without releasing it.
#: Generous against clock skew between runners and a paused holder, short against a blocked CI.
STALE_AFTER_SECONDS = 120.0

#: While waiting (``--lock-timeout``), the pause between tries grows to at most this.
MAX_WAIT_STEP_SECONDS = 5.0

#: How many times releasing a remote lock is tried, and the first pause between tries (it
#: doubles): a few seconds in all, on top of the SDK's own retries, as release runs while a
#: stop signal waits (CI kills a job some seconds after its SIGTERM).
RELEASE_TRIES = 4
RELEASE_PAUSE_SECONDS = 0.5

#: After breaking a remote lock, how long to wait before looking whether it came back: a live
#: holder's heartbeat that read the lock just before it was deleted writes it again. Longer
#: than a store's round trip, much shorter than ``HEARTBEAT_SECONDS``.
BREAK_RECHECK_SECONDS = 2.0


class StateLock(abc.ABC):
    """A lock guarding one state; subclasses say how it is stored.

    Use it as a context manager, or call ``acquire()`` and ``release()``. Taking it raises
    ``StateLockedError`` when another apply holds it (``StaleLockError`` when that holder looks
    dead), ``StateError`` when the lock cannot be created, read or written. While held, a
    background thread refreshes the heartbeat every ``heartbeat_interval`` seconds; if it finds
    the lock broken or taken by someone else, ``lost`` becomes true and ``on_lost`` is called.

    One lock object is held by one thread at a time and is not re-entrant.
    """

    def __init__(
        self,
        label: str,
        *,
        heartbeat_interval: float = HEARTBEAT_SECONDS,
        stale_after: float = STALE_AFTER_SECONDS,
        recheck_after: float = BREAK_RECHECK_SECONDS,
    ) -> None:
        self.label = label
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        #: The pause before a broken lock is looked at again (remote locks only).
        self.recheck_after = recheck_after
        self.holder: Holder | None = None
        #: The id of the holder last released (for the unlock command when release failed).
        self.last_id = ""
        #: Why the last ``release()`` could not remove the lock; None when it did.
        self.release_error: StateError | None = None
        #: Called (from the heartbeat thread) with a message when the lock is found lost.
        self.on_lost: Callable[[str], None] | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- public --

    @property
    @abc.abstractmethod
    def where(self) -> str:
        """The lock file or object, as messages name it."""

    @property
    def held(self) -> bool:
        """Whether this object holds the lock right now."""
        return self.holder is not None

    @property
    def lost(self) -> bool:
        """Whether the heartbeat found the lock broken or taken over while we held it."""
        return self._lost.is_set()

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self, timeout: float = 0.0, *, bound: str = "") -> None:
        """Take the lock; while another apply holds it, retry with backoff for ``timeout`` s.

        A stale lock is reported at once (waiting would not make it go away). ``bound`` names
        what set ``timeout`` when it is not ``--lock-timeout`` (``--timeout``'s deadline).
        """
        if self.holder is not None:
            raise RuntimeError(f"{self.where} is already held by this lock object")
        deadline = time.monotonic() + max(0.0, timeout)
        step = 0.5
        announced = False
        while True:
            holder = Holder.for_this_process()
            try:
                self._take(holder)
                break
            except StaleLockError:
                raise
            except StateLockedError as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    # It did wait: the advice to wait with --lock-timeout no longer fits.
                    held = str(exc).removesuffix(_WAIT_ADVICE)
                    if bound:
                        raise LockWaitTimeoutError(
                            f"{held} Gave up waiting for it: {bound} (it bounds the wait for "
                            "the lock too)."
                        ) from None
                    if timeout > 0:
                        raise StateLockedError(
                            f"{held} (gave up after --lock-timeout {timeout:g} s)"
                        ) from None
                    raise
                if not announced:
                    log.warning("waiting up to %.0f s for the state lock: %s", remaining, exc)
                    announced = True
                # Jitter: two runners waiting for one holder should not retry in lockstep.
                time.sleep(min(remaining, step * random.uniform(0.8, 1.2)))
                step = min(step * 2, MAX_WAIT_STEP_SECONDS)
        self.holder = holder
        self._lost.clear()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._heartbeat, name="state-lock-heartbeat", daemon=True
        )
        self._thread.start()
        log.debug("acquired %s (lock id %s)", self.where, holder.id)

    def release(self) -> bool:
        """Remove the lock if it is still ours, and let go; does nothing if not held.

        False when the lock could not be removed (the store kept failing): it may remain, and
        needs ``unlock_command(last_id)``; ``release_error`` says what failed.
        """
        holder, self.holder = self.holder, None
        if holder is None:
            return True
        self.last_id = holder.id
        self.release_error = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        try:
            self._remove_own(holder)
        except StateError as exc:
            self.release_error = exc
            return False
        log.debug("released %s", self.where)
        return True

    def unlock_command(self, lock_id: str) -> str:
        """The command that removes the lock with id ``lock_id`` (``break_lock``)."""
        return f"reconciler state unlock {lock_id} --state {self.label}"

    def read_holder(self) -> Holder | None:
        """Who holds the lock now, or None when nobody does (or its details are unreadable)."""
        raw = self._read()
        return None if raw is None else parse_holder(raw)

    def break_lock(self, lock_id: str) -> Holder:
        """Remove the lock if its id is ``lock_id`` (``reconciler state unlock``); the holder.

        ``StateError`` when there is no lock, or it has another id (it may have been released
        and taken by a new apply since it was reported).
        """
        raw = self._read()
        if raw is None:
            raise StateError(f"{self.label} is not locked: there is no {self.where}")
        holder = parse_holder(raw)
        if holder is None:
            raise StateError(
                f"{self.where} does not hold valid lock details, so it has no lock id; if no "
                f"apply is running, delete {self.where} by hand"
            )
        if holder.id != lock_id:
            shown = holder.id or "(none: written by an older reconciler)"
            raise StateError(
                f"{self.label} is locked under lock id {shown}, not {lock_id}: by "
                f"{holder.describe()}. Nothing was removed; check that this is the lock you "
                "meant to break."
            )
        self._remove_any()
        self._settle_break(holder)
        # info, not warning: the unlock command says so itself, once.
        log.info("broke the lock on %s held by %s", self.label, holder.describe())
        return holder

    def _settle_break(self, holder: Holder) -> None:
        """Make sure the broken lock of ``holder`` stays gone (only where it can come back)."""
        # A local lock's heartbeat writes through its open descriptor, which cannot bring a
        # deleted file back.
        del holder

    # -- subclasses --

    @abc.abstractmethod
    def _take(self, holder: Holder) -> None:
        """Take the lock for ``holder`` now or raise ``StateLockedError``."""

    @abc.abstractmethod
    def _read(self) -> bytes | None:
        """The lock's bytes, or None when it does not exist."""

    @abc.abstractmethod
    def _beat(self, holder: Holder) -> bool:
        """Write ``holder`` (a fresh heartbeat) into our lock; False if it is not ours any more."""

    @abc.abstractmethod
    def _remove_own(self, holder: Holder) -> None:
        """Remove the lock if it is still ``holder``'s; ``StateError`` if it could not be."""

    @abc.abstractmethod
    def _remove_any(self) -> None:
        """Remove the lock, whoever holds it (breaking a stale lock)."""

    # -- shared --

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_interval):
            holder = self.holder
            if holder is None:
                return
            try:
                ours = self._beat(holder.beat())
            except Exception as exc:
                if isinstance(exc, StateError) or is_storage_error(exc):
                    # A hiccup of the store: try again at the next beat.
                    log.warning("could not refresh the heartbeat of %s: %s", self.where, exc)
                    continue
                # Anything else would end the thread silently, and the apply would go on
                # writing under a lock nobody refreshes (others would soon see it stale).
                log.error("the heartbeat of %s failed unexpectedly", self.where, exc_info=True)
                self._mark_lost(
                    f"the heartbeat of the state lock {self.where} failed ({exc!r}), so the "
                    "lock can no longer be kept"
                )
                return
            if not ours:
                self._mark_lost(
                    f"the state lock {self.where} was broken or taken over by someone else "
                    "while this apply held it"
                )
                return

    def _mark_lost(self, message: str) -> None:
        if self._lost.is_set():
            return
        log.error("%s; no more state writes from this apply", message)
        self._lost.set()
        if self.on_lost is not None:
            self.on_lost(message)

    def confirm(self) -> bool:
        """Whether the lock is still ours, by reading it now; marks it lost when it is not.

        Cheap (one read), for just before a write that must not land under another owner: the
        heartbeat only looks every ``heartbeat_interval`` seconds. ``StateError`` when the
        lock cannot be read. True when this object holds no lock.
        """
        holder = self.holder
        if holder is None:
            return True
        if self.lost:
            return False
        raw = self._read()
        found = None if raw is None else parse_holder(raw)
        if found is not None and found.id == holder.id:
            return True
        self._mark_lost(
            f"the state lock {self.where} was broken or taken over by someone else while this "
            "apply held it"
        )
        return False

    def _judge(self, holder: Holder | None, *, same_host_dead: bool = False) -> StateLockedError:
        """The error for a lock held by ``holder``: stale (with the unlock command) or held."""
        if holder is None:
            return StateLockedError(
                f"{self.label} is locked by another apply that is just starting (it has not "
                f"written its details yet).{_WAIT_ADVICE}"
            )
        age = holder.heartbeat_age()
        stale = same_host_dead or age is None or age > self.stale_after
        if stale:
            why = (
                "its process is no longer running"
                if same_host_dead
                else f"its heartbeat is older than {self.stale_after:.0f} s"
            )
            unlock = self.unlock_command(holder.id) if holder.id else f"delete {self.where}"
            return StaleLockError(
                f"{self.label} is locked by a stale lock: {holder.describe()}; {why}, so that "
                f"apply probably died without releasing it. If no apply is running, break it "
                f"with: {unlock}",
                holder=holder,
            )
        return StateLockedError(
            f"{self.label} is locked by another apply: {holder.describe()}.{_WAIT_ADVICE}",
            holder=holder,
        )


# ---- a local lock file ------------------------------------------------------------------------


class FileLock(StateLock):
    """The exclusive lock file ``lock_path``; ``label`` names what it guards in messages.

    A lock file left behind by a process of this host that is gone is taken over (with a
    warning); one from another host only counts as stale once its heartbeat is old, and is then
    reported, not taken over (we cannot see its processes); an unreadable one is taken over once
    it is older than ``LOCK_GRACE_SECONDS``.
    """

    def __init__(self, lock_path: Path | str, label: str, **kwargs: float) -> None:
        super().__init__(label, **kwargs)
        self.lock_path = Path(lock_path)
        self._fd: int | None = None
        self._fd_lock = threading.Lock()  # the heartbeat and release share the descriptor

    @property
    def where(self) -> str:
        return str(self.lock_path)

    def _take(self, holder: Holder) -> None:
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create {self.lock_path.parent}: {_reason(exc)}") from exc
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
                        raise self._judge(_read_fd(fd)[1]) from None
                    flocked = True
                    if not _is_current(fd, self.lock_path):
                        # The holder released (unlinked) it between our open and flock.
                        os.close(fd)
                        continue
                if not created:
                    self._judge_existing(fd, flocked=flocked)
                try:
                    _write_fd(fd, holder)
                except OSError as exc:
                    raise self._unfilled(fd, exc, ours=flocked or created) from None
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            return
        raise StateError(f"could not take the lock {self.lock_path}: it keeps changing; retry")

    def _unfilled(self, fd: int, exc: OSError, *, ours: bool) -> StateError:
        """The error for a lock file we could not write our details into (a full disk).

        Left there, it would hold no valid details and block every apply for
        ``LOCK_GRACE_SECONDS`` (it might be another apply's, being written): remove it while
        it is ours (flock-ed, or created by us) and still the file at the lock's path.
        """
        removed = False
        if ours:
            try:
                if _is_current(fd, self.lock_path):
                    os.unlink(self.lock_path)
                    removed = True
            except OSError as gone:
                log.warning("could not remove lock file %s: %s", self.lock_path, _reason(gone))
        what = f"cannot write the holder details into lock file {self.lock_path}: {_reason(exc)}"
        return StateError(what if removed else f"{what}; if {self.lock_path} remains, delete it")

    def _read(self) -> bytes | None:
        try:
            return self.lock_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read lock file {self.lock_path}: {_reason(exc)}") from exc

    def _beat(self, holder: Holder) -> bool:
        with self._fd_lock:
            fd = self._fd
            if fd is None:
                return True  # released meanwhile
            if not _is_current(fd, self.lock_path):
                return False
            try:
                _write_fd(fd, holder)
            except OSError as exc:
                raise StateError(f"cannot write {self.lock_path}: {_reason(exc)}") from exc
            return True

    def _remove_own(self, holder: Holder) -> None:
        with self._fd_lock:
            fd, self._fd = self._fd, None
        if fd is None:
            return
        # Unlink while still holding the flock, and only if the path is still our file: a
        # waiting process that opened it re-checks the inode after its flock and starts over.
        # Not retried: a local unlink that fails (permissions, a read-only disk) does not heal
        # in a second, and the flock goes with the descriptor either way.
        try:
            if _is_current(fd, self.lock_path):
                os.unlink(self.lock_path)
            else:
                log.warning("lock file %s was removed or replaced while held", self.lock_path)
        except OSError as exc:
            raise StateError(f"cannot remove lock file {self.lock_path}: {_reason(exc)}") from None
        finally:
            os.close(fd)

    def _remove_any(self) -> None:
        try:
            os.unlink(self.lock_path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StateError(f"cannot remove lock file {self.lock_path}: {_reason(exc)}") from exc

    # -- internals --

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
        raw, holder = _read_fd(fd)
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
        if holder.hostname != socket.gethostname():
            # Another host's processes are invisible from here: only its heartbeat tells.
            raise self._judge(holder)
        if _pid_alive(holder.pid):
            raise self._judge(holder)
        log.warning(
            "taking over stale lock %s: pid %s on %s (since %s, %r) is no longer running",
            self.lock_path,
            holder.pid,
            holder.hostname,
            holder.started_at,
            holder.command,
        )


def _read_fd(fd: int) -> tuple[bytes, Holder | None]:
    """The lock file's bytes, and its holder if they are valid details."""
    os.lseek(fd, 0, os.SEEK_SET)  # not pread: keep the Windows fallback working
    raw = os.read(fd, 65536)
    return raw, parse_holder(raw)


def _write_fd(fd: int, holder: Holder) -> None:
    data = holder.to_json()
    # Overwrite, then cut to length: a reader never finds the file empty mid-heartbeat (the
    # details keep their length from one beat to the next).
    os.lseek(fd, 0, os.SEEK_SET)
    if os.write(fd, data) != len(data):
        raise OSError(errno.ENOSPC, "short write: the disk is full or a file size limit reached")
    os.ftruncate(fd, len(data))
    os.fsync(fd)


# ---- a remote lock object ---------------------------------------------------------------------


class ObjectLock(StateLock):
    """The lock object ``path`` in the fsspec file system ``fs`` (``url`` for messages).

    Created only if absent, so of two runners racing for it exactly one wins. Never taken over
    automatically: deleting and re-creating an object cannot be made atomic, so a stale lock is
    reported and broken by ``reconciler state unlock``.
    """

    def __init__(self, fs: Any, path: str, label: str, url: str, **kwargs: float) -> None:
        super().__init__(label, **kwargs)
        self._fs = fs
        self._path = path
        self._url = url

    @property
    def where(self) -> str:
        return display_url(self._url)

    def _take(self, holder: Holder) -> None:
        for _ in range(5):  # a round repeats when the lock vanished between create and read
            failed: StateError | None = None
            try:
                self._fs.pipe_file(self._path, holder.to_json(), mode="create")
                return
            except FileExistsError:
                pass
            except (TypeError, NotImplementedError):
                raise StateError(
                    f"cannot lock {self.label}: its storage backend cannot create an object only "
                    "if it is absent (fsspec's pipe_file mode='create'), which the state lock "
                    "needs; use s3://, gs://, az:// or a local path"
                ) from None
            except Exception as exc:
                failed = self._storage_error("create the lock object", exc)
            # "Exists" or a failure may both follow a create that landed and whose answer was
            # lost (the SDK retried it, or gave up): only the lock's content tells.
            raw = self._read_after(failed, holder)
            if raw is None:
                if failed is not None:
                    raise failed
                continue
            found = parse_holder(raw)
            if found is not None and found.id == holder.id:
                log.info("took %s: the store created it, but its answer was lost", self.where)
                return
            if found is None:
                raise StateLockedError(
                    f"{self.label} is locked: {self.where} exists but does not hold valid lock "
                    f"details. If no apply is running, delete {self.where}."
                )
            dead = found.hostname == socket.gethostname() and not _pid_alive(found.pid)
            raise self._judge(found, same_host_dead=dead)
        raise StateError(f"could not take the lock {self.where}: it keeps changing; retry")

    def _read_after(self, failed: StateError | None, holder: Holder) -> bytes | None:
        """The lock's bytes, read right after trying to create it for ``holder``."""
        try:
            return self._read()
        except StateError as exc:
            if failed is None:
                raise
            # Neither answer came: the create may have landed, leaving a lock under our id.
            raise StateError(
                f"{failed}; reading it back failed too ({exc}), so it is unknown whether the "
                f"lock was created. If {self.where} exists with lock id {holder.id}, it is this "
                f"run's, and nothing holds it: {self.unlock_command(holder.id)}"
            ) from None

    def _read(self) -> bytes | None:
        try:
            data: bytes = self._fs.cat_file(self._path)
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._storage_error("read the lock object", exc) from None
        return data

    def _beat(self, holder: Holder) -> bool:
        raw = self._read()
        found = None if raw is None else parse_holder(raw)
        if found is None or found.id != holder.id:
            return False
        if self._stop.is_set():
            # Released while we read (a slow store): writing now would re-create the lock
            # that release() just removed, and it would block every later apply.
            return True
        # Read-then-write leaves a moment in which a broken-and-retaken lock could be
        # overwritten; breaking needs a human and a heartbeat older than stale_after, and
        # heartbeats come every few seconds, so that moment is never reached in practice.
        try:
            self._fs.pipe_file(self._path, holder.to_json())
        except Exception as exc:
            raise self._storage_error("refresh the lock object", exc) from None
        return True

    def _remove_own(self, holder: Holder) -> None:
        pause = RELEASE_PAUSE_SECONDS
        for attempt in range(1, RELEASE_TRIES + 1):
            try:
                # Read first, also on a retry: a delete whose answer was lost may have landed,
                # and a lock that is not ours any more is not ours to remove.
                raw = self._read()
                found = None if raw is None else parse_holder(raw)
                if found is None or found.id != holder.id:
                    if attempt == 1:
                        log.warning("lock %s was removed or taken over while held", self.where)
                    return
                self._fs.rm_file(self._path)
                return
            except Exception as exc:
                failed = self._storage_error("remove the lock object", exc)
            if attempt == RELEASE_TRIES:
                raise StateError(f"{failed} (tried {RELEASE_TRIES} times)") from None
            log.warning(
                "could not remove lock %s (try %d of %d, again in %.1f s): %s",
                self.where,
                attempt,
                RELEASE_TRIES,
                pause,
                failed,
            )
            time.sleep(pause)
            pause *= 2

    def _settle_break(self, holder: Holder) -> None:
        # A store has no "write only if unchanged" that every fsspec backend offers, so a live
        # holder's heartbeat can read the lock, see it is still its own, and write it again
        # just after it was deleted; it would then hold the lock on as if nothing happened.
        # Removing it once more after that write (heartbeats are far apart) makes its next
        # beat find the lock gone, which stops that apply's state writes. A stale holder (the
        # usual one to break) beats no more: nothing to wait for.
        age = holder.heartbeat_age()
        if age is not None and age >= self.stale_after:
            return
        for _ in range(3):
            time.sleep(self.recheck_after)
            raw = self._read()
            found = None if raw is None else parse_holder(raw)
            if found is None or found.id != holder.id:
                return
            log.warning(
                "the holder of %s is still running: its heartbeat wrote the lock again as it "
                "was broken; removing it again",
                self.where,
            )
            self._remove_any()
        raise StateError(
            f"{self.where} keeps coming back under lock id {holder.id}: its holder is alive and "
            "refreshing it. Stop that apply, or wait for it to finish."
        )

    def _remove_any(self) -> None:
        try:
            self._fs.rm_file(self._path)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._storage_error("remove the lock object", exc) from None

    def _storage_error(self, action: str, exc: Exception) -> StateError:
        if isinstance(exc, StateError):
            return exc
        if not is_storage_error(exc):
            raise exc
        return remote_error(action, self._url, exc)


# ---- helpers ----------------------------------------------------------------------------------


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
