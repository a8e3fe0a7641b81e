"""Replace a file's contents all at once, so a crash leaves the old file or the new, never half.

Every file reconciler writes for other programs or later runs to read (the rollback state, saved
plans, reports, the emulator's state) goes through ``write_atomically``, which also keeps the API
key and cloud secrets out of them (``reconciler.redact``): a file that would hold one is not
written at all. Scrubbing it instead would change what the file says, and its readers could not
tell (a saved plan's checksum no longer matching, a spec path that names no file).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

from reconciler.redact import secret_in

log = logging.getLogger(__name__)


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before any worker thread
    # exists that could create a file in between.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


class SecretInFileError(OSError):
    """A file was not written because it would have held a secret (``source`` says which).

    An ``OSError``, as a write the system refused is: every caller already turns those into its
    own "cannot write FILE: reason" error, and the reason names the secret's source only.
    """

    def __init__(self, path: Path, source: str) -> None:
        super().__init__(
            None,
            f"it would hold {source}, and files never hold a secret (nor *** in its place)",
        )
        self.path = path
        self.source = source

    def __str__(self) -> str:
        return f"{self.path}: {self.strerror}"


def write_atomically(path: Path, data: str | bytes, *, mode: int | None = 0o644) -> None:
    """Write ``data`` (text is UTF-8 encoded) to ``path``, replacing it atomically.

    The data goes to a temporary file in the same directory (a rename across filesystems would
    not be atomic), is fsync-ed, renamed over ``path`` with ``os.replace``, and the directory is
    fsync-ed so the rename itself survives a power loss. The file gets exactly ``mode``, whatever
    the umask (shared state that holds nothing secret), or with ``mode=None`` what a plain
    ``open`` would give it under the process's umask (files a user asked for, such as plans).

    The directory must exist. On any failure the temporary file is removed, ``path`` is left as
    it was, and the ``OSError`` propagates for the caller to turn into its own error. ``data``
    holding any form of an installed secret is such a failure (``SecretInFileError``), before
    anything is created.
    """
    path = Path(path)
    source = secret_in(data)
    if source is not None:
        raise SecretInFileError(path, source)
    payload = data.encode("utf-8") if isinstance(data, str) else data
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
