"""Where the rollback state is kept: a local file or a remote object, written without loss.

``StateStore(location)`` takes a ``--state`` value: a local path (default
``.reconciler/state.json``), ``file://…``, or a URL such as ``s3://bucket/reconciler/state.json``
served by fsspec (``remotefs``). It loads the ``State``, records what apply did, and guards a
whole apply with the state lock (``lock``)::

    store = StateStore("s3://bucket/reconciler/state.json")
    with store.lock(timeout=0):            # fails fast if another apply holds it; loads
        ...
        store.record_rollback(viz_id, aoi_id=..., mode="dynamic", dates=[...],
                              revision=1, updated_at=response_updated_at)
    # leaving the block writes the whole state once more, then releases the lock (a lock
    # that cannot be released is a LockNotReleasedError naming the command that clears it)

How a record is kept, at O(1) cost each, without losing one on a crash:

- every ``record_*`` changes the state in memory and appends that visualization's whole new
  record as one JSON line to a journal, under one ``threading.Lock`` (so parallel workers never
  lose an update). Once it returns, a SIGKILL cannot lose the record: the line is in the file.
- the snapshot (the state file or object itself) is replaced whole and atomically, never
  written in part: for a local file at the end of the apply and whenever a leftover journal is
  found under the lock; for a remote object also every ``flush_interval`` seconds while the lock
  is held, so a job whose machine vanishes loses at most the last few seconds of records.
- loading reads the snapshot and replays the journal over it. Journal lines are whole records
  (not operations), so replaying one twice (a crash between writing the snapshot and removing
  the journal) changes nothing. A last line cut short by a crash is ignored.

A local state's journal is ``state.json.journal`` beside it; a remote state's is a local file
under ``.reconciler/journal/`` (the job's own disk), replayed by the next run from the same
directory. Losing a record is never wrong, only noisy: the next plan rolls that legend back
again, which changes nothing. Recording what did not happen would be wrong, and never occurs:
apply records only answers the API gave.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from reconciler.errors import StateError
from reconciler.shield import shielded
from reconciler.state.atomicfile import write_atomically
from reconciler.state.holder import Holder, LockNotReleasedError
from reconciler.state.journal import Journal, reason
from reconciler.state.lock import FileLock, ObjectLock, StateLock
from reconciler.state.records import (
    State,
    VizRecord,
    parse_state,
)
from reconciler.state.remotefs import (
    Location,
    display_url,
    is_storage_error,
    open_filesystem,
    parse_location,
    remote_error,
)

log = logging.getLogger(__name__)

#: How often, while an apply holds the lock, a remote state is uploaded (if it changed) and a
#: local journal is synced to disk: the most a vanished machine can lose, in seconds.
FLUSH_SECONDS = 5.0

#: Where a remote state's journal is kept on the job's own disk.
REMOTE_JOURNAL_DIR = Path(".reconciler/journal")

# ---- where the snapshot lives -----------------------------------------------------------------


class _Snapshot(Protocol):
    remote: bool
    label: str

    def read(self) -> bytes | None: ...
    def write(self, data: bytes) -> None: ...
    def version(self) -> object: ...
    def make_lock(self, **options: float) -> StateLock: ...


class _LocalSnapshot:
    remote = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path)

    def read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read state file {self.path}: {reason(exc)}") from exc

    def write(self, data: bytes) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, data)
        except OSError as exc:
            raise StateError(f"cannot write state file {self.path}: {reason(exc)}") from exc

    def version(self) -> object:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def make_lock(self, **options: float) -> StateLock:
        return FileLock(self.path.with_name(self.path.name + ".lock"), self.label, **options)


class _RemoteSnapshot:
    remote = True

    def __init__(self, location: Location) -> None:
        self.url = location.url
        self.label = display_url(location.url)
        self._fs, self._path = open_filesystem(location)

    def read(self) -> bytes | None:
        try:
            data: bytes = self._fs.cat_file(self._path)
        except FileNotFoundError:
            self._check_bucket()
            return None
        except Exception as exc:
            raise _storage_error("read the state", self.url, exc) from None
        return data

    def _check_bucket(self) -> None:
        """A missing state is normal before the first apply; a missing bucket is a mistake."""
        bucket = self._path.split("/", 1)[0]
        try:
            there = self._fs.exists(bucket)
        except Exception as exc:
            raise _storage_error("read the state", self.url, exc) from None
        if not there:
            raise StateError(
                f"cannot read the state {self.label}: the bucket (or container) '{bucket}' does "
                "not exist, or these credentials cannot see it. reconciler creates the state "
                "object, not the bucket: create it first, or fix --state / RECONCILER_STATE"
            )

    def write(self, data: bytes) -> None:
        # One PUT of the whole object: object stores replace it atomically, never in part.
        try:
            self._fs.pipe_file(self._path, data)
        except Exception as exc:
            raise _storage_error("write the state", self.url, exc) from None

    def version(self) -> object:
        return None

    def make_lock(self, **options: float) -> StateLock:
        return ObjectLock(self._fs, self._path + ".lock", self.label, self.url + ".lock", **options)


def _storage_error(action: str, url: str, exc: Exception) -> StateError:
    if isinstance(exc, StateError):
        return exc
    if not is_storage_error(exc):
        raise exc
    return remote_error(action, url, exc)


# ---- the store --------------------------------------------------------------------------------


class StateStore:
    """The state at ``location`` (a path or URL): load, record, flush, lock.

    ``flush_interval`` is how often a remote state is uploaded while locked; ``journal_dir``
    where a remote state's journal is kept (default ``.reconciler/journal``); ``lock_options``
    go to the lock (``heartbeat_interval``, ``stale_after``). A ``ConfigError`` for a URL whose
    backend is not installed; every other failure is a ``StateError``.
    """

    def __init__(
        self,
        location: str | Path,
        *,
        flush_interval: float = FLUSH_SECONDS,
        journal_dir: Path | None = None,
        lock_options: Mapping[str, float] | None = None,
    ) -> None:
        self.location = parse_location(location)
        self._snapshot: _Snapshot
        if self.location.path is not None:
            self._snapshot = _LocalSnapshot(self.location.path)
            journal_path = self.location.path.with_name(self.location.path.name + ".journal")
        else:
            self._snapshot = _RemoteSnapshot(self.location)
            digest = hashlib.sha256(self.location.url.encode()).hexdigest()[:20]
            journal_path = (journal_dir or REMOTE_JOURNAL_DIR) / f"{digest}.jsonl"
        self._journal = Journal(journal_path, self._snapshot.label)
        self.flush_interval = flush_interval
        self._lock_options = dict(lock_options or {})
        self._mutex = threading.Lock()  # the state in memory and the journal
        self._writing = threading.Lock()  # one snapshot write at a time, in order
        self._state = State()
        self._loaded = False
        self._dirty = False  # the snapshot lacks records that are in memory and the journal
        self._held: StateLock | None = None
        self._stop_flusher = threading.Event()
        self._flusher: threading.Thread | None = None
        #: Called with a message when the lock is found broken while held (apply stops).
        self.on_lock_lost: Callable[[str], None] | None = None
        #: Set when leaving ``lock()`` could not remove the lock: it is left behind, and the
        #: error gives the command that clears it. None when it was released.
        self.lock_left: LockNotReleasedError | None = None

    # -- where --

    @property
    def label(self) -> str:
        """The state's location as messages show it (no user-info of a URL)."""
        return self._snapshot.label

    @property
    def remote(self) -> bool:
        return self._snapshot.remote

    @property
    def path(self) -> Path:
        """The local state file; ``StateError`` for a remote state."""
        if self.location.path is None:
            raise StateError(f"{self.label} is a remote state: it has no local path")
        return self.location.path

    @property
    def lock_path(self) -> Path:
        """The lock file beside a local state: ``state.json.lock``."""
        return self.path.with_name(self.path.name + ".lock")

    @property
    def journal_path(self) -> Path:
        """The journal: beside a local state; under ``.reconciler/journal/`` for a remote one."""
        return self._journal.path

    # -- reading --

    @property
    def state(self) -> State:
        """The loaded state (loaded on first use if ``load()`` was not called)."""
        if not self._loaded:
            self.load()
        return self._state

    def load(self) -> State:
        """Read the snapshot and replay the journal; nothing stored is an empty ``State``."""
        with self._mutex:
            self._load_locked()
            return self._state

    # -- writing --

    def save(self, state: State) -> None:
        """Replace the whole state with ``state`` (atomically), which becomes this store's."""
        with self._writing, self._mutex:
            self._check_lock()
            self._snapshot.write(_serialise(state))
            self._journal.remove()
            self._state, self._loaded, self._dirty = state, True, False

    def record_rollback(
        self,
        visualization_id: str,
        *,
        aoi_id: str,
        mode: str,
        dates: Iterable[str],
        revision: int,
        updated_at: str,
        previous_updated_at: str | None = None,
        fingerprints: Mapping[str, str] | None = None,
        forget: Iterable[tuple[str, str]] = (),
    ) -> None:
        """``State.record_rollback``, kept at once (journal); safe from many threads."""
        with self._mutex:
            self._ensure_loaded()
            self._state.record_rollback(
                visualization_id,
                aoi_id=aoi_id,
                mode=mode,
                dates=dates,
                revision=revision,
                updated_at=updated_at,
                previous_updated_at=previous_updated_at,
                fingerprints=fingerprints,
                forget=forget,
            )
            self._keep(visualization_id)

    def record_legend(
        self,
        visualization_id: str,
        *,
        aoi_id: str,
        mode: str,
        legends: Mapping[str, Mapping[str, Any]],
        updated_at: str,
        previous_updated_at: str | None = None,
        fingerprints: Mapping[str, str] | None = None,
        forget: Iterable[tuple[str, str]] = (),
    ) -> None:
        """``State.record_legend``, kept at once (journal); safe from many threads."""
        with self._mutex:
            self._ensure_loaded()
            self._state.record_legend(
                visualization_id,
                aoi_id=aoi_id,
                mode=mode,
                legends=legends,
                updated_at=updated_at,
                previous_updated_at=previous_updated_at,
                fingerprints=fingerprints,
                forget=forget,
            )
            self._keep(visualization_id)

    def fingerprints_of(self, visualization_id: str) -> dict[tuple[str, str], str]:
        """The fingerprints one visualization's record holds (a copy); safe from many
        threads."""
        with self._mutex:
            self._ensure_loaded()
            record = self._state.get(visualization_id)
            return {} if record is None else record.fingerprints()

    def record_fresh(
        self,
        visualization_id: str,
        *,
        aoi_id: str,
        legends: Mapping[str, Iterable[str]],
        updated_at: str,
        revision: int = 0,
        fingerprints: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """``State.record_fresh``, kept at once (journal); safe from many threads."""
        with self._mutex:
            self._ensure_loaded()
            self._state.record_fresh(
                visualization_id,
                aoi_id=aoi_id,
                legends=legends,
                updated_at=updated_at,
                revision=revision,
                fingerprints=fingerprints,
            )
            self._keep(visualization_id)

    def record_selectors(
        self,
        matches: Mapping[str, Mapping[str, Mapping[str, str]]],
        *,
        replacing: Callable[[str], bool],
    ) -> None:
        """``State.record_selectors``, kept at once (journal) when that changes anything."""
        with self._mutex:
            self._ensure_loaded()
            if self._state.record_selectors(matches, replacing=replacing):
                self._journal.append_selectors(self._state.selectors)
                self._dirty = True

    def mark_pending(self, aois: Mapping[str, str]) -> None:
        """``State.mark_pending``, kept at once (journal) when that changes anything: before
        the first change to those AOIs is sent, so that a kill right after still leaves them
        marked."""
        with self._mutex:
            self._ensure_loaded()
            marked = {a: n for a, n in aois.items() if self._state.pending.get(a) != n}
            if marked:
                self._journal.append_pending(marked)
                self._state.mark_pending(marked)
                self._dirty = True

    def finish_pending(self, aoi_ids: Iterable[str]) -> None:
        """``State.finish_pending``, kept at once (journal) when that changes anything."""
        with self._mutex:
            self._ensure_loaded()
            done = sorted(set(aoi_ids) & self._state.pending.keys())
            if done:
                self._journal.append_finished(done)
                self._state.finish_pending(done)
                self._dirty = True

    def adopt(self, records: Mapping[str, VizRecord]) -> int:
        """Take another state's records as they are, where this one has none (kept at once);
        how many were taken."""
        taken = 0
        with self._mutex:
            self._ensure_loaded()
            for visualization_id, record in records.items():
                if self._state.get(visualization_id) is None:
                    self._state.put(visualization_id, record)
                    self._keep(visualization_id)
                    taken += 1
        return taken

    def remove(self, visualization_id: str) -> bool:
        """Forget one visualization's record (kept at once); whether there was one."""
        with self._mutex:
            self._ensure_loaded()
            if not self._state.remove(visualization_id):
                return False
            self._keep(visualization_id)
            return True

    def flush(self) -> None:
        """Write the whole state to the snapshot now, if the journal holds anything new.

        Records keep coming meanwhile: the state is copied under the mutex, written without it
        (an upload can take a while), and only the journal lines it holds are dropped after.
        """
        with self._writing:
            with self._mutex:
                if not self._dirty:
                    return
                self._check_lock()
                data = _serialise(self._state)
                mark = self._journal.size()
                self._dirty = False  # a record from now on sets it again
            try:
                held = self._held
                # The heartbeat looks only now and then: one read tells that the lock is still
                # ours right before the snapshot is replaced (another apply may own it now).
                if held is not None and not self._still_ours(held):
                    with self._mutex:
                        self._check_lock()
                self._snapshot.write(data)
            except BaseException:
                with self._mutex:
                    self._dirty = True
                raise
            with self._mutex:
                # Only now: until the new snapshot is in place, the journal holds the records.
                self._journal.drop_through(mark)
            log.debug("saved the state to %s", self.label)

    # -- the lock --

    @contextlib.contextmanager
    def lock(self, timeout: float = 0.0, *, bound: str = "") -> Iterator[StateLock]:
        """Hold the state lock for the ``with`` block; ``StateLockedError`` if another holds it.

        Waits up to ``timeout`` seconds for another apply to finish (``bound``: what set
        that limit, when not ``--lock-timeout``). Once held, the state is
        (re)loaded, and a journal left by a killed run is folded into the snapshot; a remote
        state is then uploaded every ``flush_interval`` seconds if it changed. Leaving the block,
        whatever the reason (exceptions, Ctrl-C, SIGTERM), writes the whole state once more and
        releases the lock.

        A lock that cannot be released is left behind and kept in ``lock_left``: leaving the
        block raises it (``LockNotReleasedError``) unless the block raised an error of its own,
        which then goes on unchanged (the caller reads ``lock_left`` to tell both).
        """
        self.lock_left = None
        lock = self._snapshot.make_lock(**self._lock_options)
        lock.on_lost = self._lock_lost
        lock.acquire(timeout, bound=bound)
        self._held = lock
        failing = False
        try:
            with self._mutex:
                self._load_locked()
                leftover = self._dirty
            if leftover:
                log.info("folding records left in %s into %s", self._journal.path, self.label)
                self.flush()
            self._start_flusher()
            yield lock
        except BaseException:
            failing = True
            raise
        finally:
            # A stop signal here would leave the lock behind and the records unsaved.
            with shielded():
                self._release(lock, failing=failing)

    def _release(self, lock: StateLock, *, failing: bool) -> None:
        """The end of ``lock()``: save the state, release the lock, even if saving failed."""
        self._stop_flusher_thread()
        saved: StateError | None = None
        try:
            if not lock.lost:
                self.flush()
        except StateError as exc:
            saved = exc
        finally:
            self._held = None
            released = lock.release()
            self._journal.close()
        if not released:
            self.lock_left = self._left_behind(lock)
            log.debug("%s", self.lock_left)
        if saved is not None:
            kept = (
                f"; this apply's records are kept in {self._journal.path}, and the next apply "
                "run from this directory saves them"
                if self._journal.path.exists()
                else ""
            )
            raise StateError(f"{saved}{kept}") from None
        if self.lock_left is not None and not failing:
            raise self.lock_left

    def _left_behind(self, lock: StateLock) -> LockNotReleasedError:
        unlock = lock.unlock_command(lock.last_id)
        return LockNotReleasedError(
            f"could not release the state lock: {lock.release_error}. The lock is left "
            f"behind, and every later apply (and state rm) will find {self.label} locked "
            f"until it is cleared; nothing holds it any more, so clear it with: {unlock}",
            lock_id=lock.last_id,
            unlock=unlock,
        )

    def read_lock(self) -> Holder | None:
        """Who holds the state lock now (None: nobody, or unreadable details)."""
        return self._snapshot.make_lock(**self._lock_options).read_holder()

    def unlock(self, lock_id: str) -> Holder:
        """Break the lock with id ``lock_id`` (``reconciler state unlock``); its holder."""
        return self._snapshot.make_lock(**self._lock_options).break_lock(lock_id)

    # -- internals (the caller holds the mutex where it says so) --

    def _ensure_loaded(self) -> None:
        # Recording into a never-loaded store would save only the new records over the old.
        if not self._loaded:
            self._load_locked()

    def _load_locked(self) -> None:
        # A remote state's journal lies on this job's disk, not beside the state: a read-only
        # run must not fold it in, or the same plan would differ from one directory to the
        # next. Only the lock holder (apply, state rm) replays and then saves it.
        replay = not self._snapshot.remote or self._held is not None
        if not replay and self._journal.path.exists():
            log.info(
                "%s holds records of an interrupted apply of %s; the next apply from this "
                "directory saves them",
                self._journal.path,
                self.label,
            )
        # A plan reading while an apply folds its journal could read the old snapshot and then
        # find the journal gone; the snapshot's identity changing meanwhile says to read again.
        for _ in range(5):
            before = self._snapshot.version()
            raw = self._snapshot.read()
            if raw is None:
                log.info("no state at %s: no rollback records yet", self.label)
                state = State()
            else:
                state = parse_state(raw, self.label)
            replayed = self._journal.replay(state) if replay else 0
            if self._snapshot.version() == before:
                break
        if replayed:
            log.info("replayed %d record(s) from %s", replayed, self._journal.path)
        self._state, self._loaded, self._dirty = state, True, replayed > 0

    def _keep(self, visualization_id: str) -> None:
        self._journal.append(visualization_id, self._state.get(visualization_id))
        self._dirty = True

    def _check_lock(self) -> None:
        held = self._held
        if held is not None and held.lost:
            raise StateError(
                f"the lock on {self.label} was broken while this apply held it, so its records "
                f"were not written there; they are kept in {self._journal.path} and the next "
                "plan will roll those legends back again (harmless)"
            )

    def _still_ours(self, held: StateLock) -> bool:
        try:
            return held.confirm()
        except StateError as exc:
            raise StateError(f"cannot write the state to {self.label}: {exc}") from None

    def _lock_lost(self, message: str) -> None:
        callback = self.on_lock_lost
        if callback is not None:
            callback(message)

    def _start_flusher(self) -> None:
        self._stop_flusher.clear()
        self._flusher = threading.Thread(target=self._flush_loop, name="state-flush", daemon=True)
        self._flusher.start()

    def _stop_flusher_thread(self) -> None:
        self._stop_flusher.set()
        if self._flusher is not None:
            self._flusher.join(timeout=60)
            self._flusher = None

    def _flush_loop(self) -> None:
        while not self._stop_flusher.wait(self.flush_interval):
            try:
                if self._snapshot.remote:
                    self.flush()
                else:
                    with self._mutex:
                        self._journal.sync()
            except StateError as exc:
                # The journal still holds everything: the next round or the final flush
                # tries again, and a failure there is reported.
                log.warning("could not save the state yet: %s", exc)


def _serialise(state: State) -> bytes:
    data: dict[str, Any] = state.to_dict()
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
