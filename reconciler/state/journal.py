"""The state's journal: every record apply keeps, one JSON line each, appended before the
answer that made it is acted on, so that a killed process loses nothing (``StateStore`` replays
it over the snapshot and folds it in).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from reconciler.errors import StateError
from reconciler.state.atomicfile import write_atomically
from reconciler.state.records import State, VizRecord, parse_pending, parse_record, parse_selectors

log = logging.getLogger(__name__)

#: The ``journal`` version in a journal's first line.
JOURNAL_VERSION = 3
#: Journals this reconciler replays: 1 held records without custom legends, 2 no pending AOIs.
_JOURNALS_READ = (1, 2, 3)


class Journal:
    """An append-only file of JSON lines: a header, then one whole record per line.

    ``{"journal": 1, "state": "<where the snapshot is>"}`` first, then
    ``{"id": "<visualization id>", "record": {...}}`` (``"record": null`` for a removal), or
    ``{"selectors": {...}}`` (every selector's matches, replacing the earlier ones),
    ``{"pending": {"<aoi id>": "<name>", ...}}`` (AOIs marked pending) or
    ``{"finished": ["<aoi id>", ...]}`` (AOIs no longer pending). Pending AOIs go by the line,
    not all at once, so that a late line of an apply that lost its lock touches only the AOIs
    it names.
    Not thread-safe on its own: the store calls it under its mutex.
    """

    def __init__(self, path: Path, state_label: str) -> None:
        self.path = path
        self._state_label = state_label
        self._fd: int | None = None
        self._unsynced = False

    def append(self, visualization_id: str, record: VizRecord | None) -> None:
        """Append one line; on return it survives the process being killed."""
        self._append(
            {"id": visualization_id, "record": None if record is None else record.to_dict()}
        )

    def append_selectors(self, selectors: dict[str, dict[str, dict[str, str]]]) -> None:
        """Append every selector record (spec file -> key -> AOIs), replacing the earlier ones."""
        self._append({"selectors": selectors})

    def append_pending(self, aois: dict[str, str]) -> None:
        """Append that ``aois`` (id -> name) are pending."""
        self._append({"pending": aois})

    def append_finished(self, aoi_ids: list[str]) -> None:
        """Append that ``aoi_ids`` are no longer pending."""
        self._append({"finished": aoi_ids})

    def _append(self, line: dict[str, Any]) -> None:
        data = (json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        fd: int | None = None
        size = 0
        try:
            fd = self._open()
            size = os.fstat(fd).st_size
            # One write() of a whole line on an O_APPEND descriptor: a crash leaves the line
            # whole or cut short at its end, never interleaved with another.
            if os.write(fd, data) != len(data):
                raise OSError(0, "short write")
        except OSError as exc:
            if fd is not None:
                # A line cut short by a full disk would glue onto the next one written.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
            raise StateError(f"cannot write the state journal {self.path}: {reason(exc)}") from exc
        self._unsynced = True

    def sync(self) -> None:
        """fsync what was appended, so it also survives a power loss."""
        if self._fd is not None and self._unsynced:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                log.warning("cannot fsync %s: %s", self.path, reason(exc))
            self._unsynced = False

    def replay(self, state: State) -> int:
        """Apply every line to ``state``; how many records were replayed."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise StateError(f"cannot read the state journal {self.path}: {reason(exc)}") from exc
        lines = raw.split(b"\n")
        if lines[-1].strip():
            log.warning(
                "ignoring the last line of %s: it was cut short (the writer was stopped while "
                "writing it)",
                self.path,
            )
        count = 0
        for number, line in enumerate(lines[:-1], start=1):
            if not line.strip():
                continue
            where = f"{self.path}:{number}"
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise self._broken(where, "not a JSON line") from None
            if not isinstance(entry, dict):
                raise self._broken(where, "not a JSON object")
            if "journal" in entry:
                if entry["journal"] not in _JOURNALS_READ:
                    raise self._broken(
                        where,
                        f"journal version {entry['journal']!r} (this reconciler reads "
                        f"{', '.join(map(str, _JOURNALS_READ[:-1]))} and {_JOURNALS_READ[-1]}); "
                        "upgrade reconciler to replay it",
                    )
                continue
            if "selectors" in entry:
                try:
                    state.selectors = parse_selectors(entry["selectors"])
                except ValueError as exc:
                    raise self._broken(where, f"not valid selector matches: {exc}") from None
                count += 1
                continue
            if "pending" in entry or "finished" in entry:
                finished = entry.get("finished", [])
                try:
                    marked = parse_pending(entry.get("pending", {}))
                    if not isinstance(finished, list) or not all(
                        isinstance(a, str) for a in finished
                    ):
                        raise ValueError("finished: expected a list of AOI ids")
                except ValueError as exc:
                    raise self._broken(where, f"not valid pending AOIs: {exc}") from None
                state.mark_pending(marked)
                state.finish_pending(finished)
                count += 1
                continue
            vid, record = entry.get("id"), entry.get("record")
            if not isinstance(vid, str) or "record" not in entry:
                raise self._broken(where, 'expected {"id": ..., "record": ...}')
            try:
                state.put(vid, None if record is None else parse_record(record))
            except ValueError as exc:
                raise self._broken(where, f"not a valid record: {exc}") from None
            count += 1
        return count

    def size(self) -> int:
        """Bytes in the journal now (0 when there is none)."""
        try:
            return os.fstat(self._fd).st_size if self._fd is not None else self.path.stat().st_size
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise StateError(f"cannot read the state journal {self.path}: {reason(exc)}") from exc

    def drop_through(self, mark: int) -> None:
        """Forget the first ``mark`` bytes (now in the snapshot), keeping what came after."""
        size = self.size()
        if mark <= 0:
            return
        if size <= mark:
            self.remove()
            return
        self.close()
        try:
            tail = self.path.read_bytes()[mark:]
            write_atomically(self.path, self._header() + tail)
        except OSError as exc:
            raise StateError(
                f"cannot rewrite the state journal {self.path}: {reason(exc)}"
            ) from exc

    def remove(self) -> None:
        """Close and delete the journal (its records are in the snapshot now)."""
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StateError(f"cannot remove the state journal {self.path}: {reason(exc)}") from exc

    def close(self) -> None:
        """Sync and close the descriptor, keeping the file."""
        self.sync()
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if os.fstat(fd).st_size == 0:
                os.write(fd, self._header())
            self._fd = fd
        return self._fd

    def _header(self) -> bytes:
        header = {"journal": JOURNAL_VERSION, "state": self._state_label}
        return (json.dumps(header) + "\n").encode()

    def _broken(self, where: str, what: str) -> StateError:
        return StateError(
            f"{where}: the state journal is damaged: {what}. Delete {self.path} to go on: the "
            "records written since the last full save are lost, which only makes the next plan "
            "roll those legends back again (harmless)."
        )


def reason(exc: OSError) -> str:
    """What went wrong with a file, as the OS says it."""
    return exc.strerror or str(exc)
