"""Replace a file's contents all at once, so a crash leaves the old file or the new, never half.

Every file reconciler writes for other programs or later runs to read (the rollback state, saved
plans, reports, the emulator's state) goes through ``write_atomically``, which also keeps the API
key out of them (``reconciler.redact``), whatever ids or messages the API sent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

from reconciler.redact import redact, redact_bytes

log = logging.getLogger(__name__)


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before any worker thread
    # exists that could create a file in between.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_atomically(path: Path, data: str | bytes, *, mode: int | None = 0o644) -> None:
    """Write ``data`` (text is UTF-8 encoded) to ``path``, replacing it atomically.

    The data goes to a temporary file in the same directory (a rename across filesystems would
    not be atomic), is fsync-ed, renamed over ``path`` with ``os.replace``, and the directory is
    fsync-ed so the rename itself survives a power loss. The file gets exactly ``mode``, whatever
    the umask (shared state that holds nothing secret), or with ``mode=None`` what a plain
    ``open`` would give it under the process's umask (files a user asked for, such as plans).

    The directory must exist. On any failure the temporary file is removed, ``path`` is left as
    it was, and the ``OSError`` propagates for the caller to turn into its own error. Every form
    of an installed secret in ``data`` is written as ``***``.
    """
    payload = redact(data).encode("utf-8") if isinstance(data, str) else redact_bytes(data)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):  # mkstemp makes 0600; absent on Windows
                os.fchmod(fh.fileno(), 0o666 & ~_UMASK if mode is None else mode)
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # The new file is already in place: a directory that cannot be fsync-ed (Windows, some
    # network filesystems) only makes the rename less durable, which is no reason to fail.
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        log.debug("cannot open %s to fsync it: %s", directory, exc.strerror or exc)
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        log.debug("cannot fsync %s: %s", directory, exc.strerror or exc)
    finally:
        os.close(fd)
