"""A cache of checked spec files on disk: an unchanged file is not parsed or validated again.

What one file declares on its own, and its own problems, depend on its display path, its bytes
and the code that checks it; nothing else (a file holding an installed secret is refused
before it is checked, whatever the cache holds). So an entry is keyed by the SHA-256 of those:
the display path, the content, and a digest of this reconciler's version, of pydantic's and of
the source of the modules that check a file. A new version, or an edited checkout of this one,
never reads an older entry.

Entries are JSON, read back through pydantic into the declaration types they were written
from: a damaged or planted entry can be refused, never run (pickle could run code). An entry
that fails to read is deleted and the file checked again. Nothing is trusted beyond the types:
a cache that others can write to could declare other things, so keep it private to the job (a
saved plan is safe either way: apply refuses a plan the specs no longer call for).

Where: ``RECONCILER_CACHE_DIR``, else ``$XDG_CACHE_HOME/reconciler``, else
``~/.cache/reconciler``. ``RECONCILER_CACHE_DIR=off`` (or empty) turns it off. Safe to delete
at any time. It holds at most ``MAX_ENTRIES`` entries: beyond that, the least recently used go.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from reconciler.redact import secret_in

log = logging.getLogger(__name__)

#: Bump when the entries' form changes in a way the code digest would not see.
CACHE_FORMAT = 1
#: Entries kept; past that, the least recently used quarter goes.
MAX_ENTRIES = 2000
#: An entry larger than this is not read (a spec file is at most 1 MiB; its entry a few).
MAX_ENTRY_BYTES = 64 * 1024 * 1024
#: Values of RECONCILER_CACHE_DIR that turn the cache off.
_OFF = ("", "0", "off", "false", "no", "none")
#: The modules whose code decides what a file declares: the spec package and what it uses.
_CHECKING_MODULES = ("spec", "errors.py", "dates.py", "text.py", "_gc.py")


def cache_root(environ: Mapping[str, str]) -> Path | None:
    """Where the cache is, or None when it is off."""
    value = environ.get("RECONCILER_CACHE_DIR")
    if value is not None:
        return None if value.strip().lower() in _OFF else Path(value)
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reconciler"


@functools.cache
def code_digest() -> str:
    """What the checking code is: any change to it makes every entry a stranger."""
    import pydantic
    import pydantic_core
    import yaml

    import reconciler

    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(f"format {CACHE_FORMAT}\n".encode())
    for module in (reconciler, pydantic, pydantic_core, yaml):
        digest.update(f"{module.__name__} {module.__version__}\n".encode())
    for entry in _CHECKING_MODULES:
        path = package / entry
        sources = sorted(path.glob("*.py")) if path.is_dir() else [path]
        for source in sources:
            digest.update(source.relative_to(package).as_posix().encode() + b"\0")
            digest.update(source.read_bytes())
    return digest.hexdigest()[:24]


class SpecCache:
    """The entries under ``root``, of this code only (``code_digest``)."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "specs" / code_digest()
        self._written = 0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> SpecCache | None:
        root = cache_root(environ)
        return None if root is None else cls(root)

    def key(self, display: str, raw: bytes) -> str:
        """The entry of the file ``display`` with content ``raw``."""
        name = display.encode("utf-8", errors="surrogateescape")
        digest = hashlib.sha256(b"%d:%s%d:" % (len(name), name, len(raw)))
        digest.update(raw)
        return digest.hexdigest()

    def read(self, key: str) -> bytes | None:
        """The entry's bytes, or None when there is none (or it cannot be read)."""
        path = self.folder / f"{key}.json"
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_ENTRY_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.debug("spec cache: cannot read %s: %s", path, exc)
            return None
        if len(data) > MAX_ENTRY_BYTES:
            self.forget(key)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: the last to go
        return data

    def forget(self, key: str) -> None:
        """Delete an entry that could not be used."""
        with contextlib.suppress(OSError):
            (self.folder / f"{key}.json").unlink()

    def write(self, key: str, data: bytes) -> None:
        """Keep an entry, whole or not at all; never one that would hold a secret. A cache
        that cannot be written is no error: the next run checks the file again."""
        if secret_in(data) is not None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(temp, self.folder / f"{key}.json")
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.debug("spec cache: cannot write to %s: %s", self.folder, exc)
            return
        if self._written % 100 == 0:
            self._prune()
        self._written += 1

    def _prune(self) -> None:
        """Keep at most ``MAX_ENTRIES``, the most recently used; drop other code's entries."""
        try:
            # Another version's, unused for a day (two versions may take turns on one machine).
            day_ago = time.time() - 86400
            for other in self.folder.parent.iterdir():
                if other != self.folder and other.is_dir() and other.stat().st_mtime < day_ago:
                    for stale in other.iterdir():
                        stale.unlink(missing_ok=True)
                    other.rmdir()
            entries = [(e.stat().st_mtime, e.path) for e in os.scandir(self.folder)]
        except OSError as exc:
            log.debug("spec cache: cannot prune %s: %s", self.folder.parent, exc)
            return
        if len(entries) <= MAX_ENTRIES:
            return
        entries.sort()
        for _, path in entries[: len(entries) - MAX_ENTRIES * 3 // 4]:
            with contextlib.suppress(OSError):
                os.unlink(path)
