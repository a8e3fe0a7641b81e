"""A cache of checked spec files on disk: an unchanged file is not parsed or validated again.

What one file declares on its own, and its own problems, depend on its display path, its bytes
and the code that checks it; nothing else (a file holding an installed secret is refused
before it is checked, whatever the cache holds). So an entry is keyed by the SHA-256 of those:
the display path, the content, and a digest of this reconciler's version, of pydantic's and of
the source of the modules that check a file. A new version, or an edited checkout of this one,
never reads an older entry.

Entries are JSON, read back through pydantic into the declaration types they were written
from (offline validate's outcomes, ``spec.outcome``, into problems and counts): a damaged or
planted entry can be refused, never run (pickle could run code). An entry
that fails to read is deleted and the file checked again. Nothing is trusted beyond the types:
a cache that others can write to could declare other things, so keep it private to the job (a
saved plan is safe either way: apply refuses a plan the specs no longer call for).

Where: ``RECONCILER_CACHE_DIR``, else ``$XDG_CACHE_HOME/reconciler``, else
``~/.cache/reconciler``. ``RECONCILER_CACHE_DIR=off`` (or empty) turns it off, and so does a
system without a home directory. Safe to delete at any time. It holds about ``MAX_ENTRIES``
entries: beyond that, the least recently used go (never one the running command used), and
another version's folder a day after its last use. Nothing in it is followed through a link.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.util
import logging
import os
import stat
import sys
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
#: The code that decides what a file declares: the spec package and the base modules (every
#: module directly under reconciler/, which is all the spec package may import).
_CHECKING_CODE = ("spec/*.py", "*.py")
#: How long another version's entries are kept after its last use.
_OTHER_VERSIONS_KEPT = 86400.0


def cache_root(environ: Mapping[str, str]) -> Path | None:
    """Where the cache is, or None when it is off (or there is no home to keep it in)."""
    value = environ.get("RECONCILER_CACHE_DIR")
    if value is not None:
        return None if value.strip().lower() in _OFF else Path(value)
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, or relative: the XDG rule is to ignore it
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no HOME, and a user the system does not know
            return None
    return Path(base) / "reconciler"


@functools.cache
def code_digest() -> str:
    """What the checking code is: any change to it makes every entry a stranger.

    ``OSError`` when the sources cannot be read (an install without them): no cache then.
    """
    import yaml

    import reconciler

    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(f"format {CACHE_FORMAT}\n{sys.version}\n".encode())
    digest.update(f"libyaml {getattr(yaml, '__with_libyaml__', False)}\n".encode())
    for module in (reconciler, yaml):
        digest.update(f"{module.__name__} {module.__version__}\n".encode())
    for name in ("pydantic", "pydantic_core"):
        digest.update(f"{name} {_installed(name)}\n".encode())
    sources = sorted({path for pattern in _CHECKING_CODE for path in package.glob(pattern)})
    if not sources:
        raise OSError(f"no sources under {package}")
    for source in sources:
        digest.update(source.relative_to(package).as_posix().encode() + b"\0")
        digest.update(source.read_bytes())
    return digest.hexdigest()[:24]


def _installed(name: str) -> str:
    """Which ``name`` is installed: its distribution's metadata folder beside the package
    (``pydantic-2.11.7.dist-info``), found without importing it, since a run over unchanged
    specs needs no pydantic at all; else the module's own ``__version__``."""
    found = importlib.util.find_spec(name)
    if found is not None and found.origin:
        beside = Path(found.origin).parent.parent
        names = [p.name for p in beside.glob(f"{name}-*.dist-info")]
        if len(names) == 1:
            return names[0]
    return str(importlib.import_module(name).__version__)


#: The cache folders this process could not write to (told once each).
_UNWRITABLE: set[Path] = set()


class SpecCache:
    """The entries under ``root``, of this code only (``code_digest``)."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "specs" / code_digest()
        self._written = 0
        self._touched = False
        # What this run used is never pruned by it: a repository of more files than
        # MAX_ENTRIES keeps its own entries (and the cache is bounded by its size instead).
        self._started = time.time() - 1

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> SpecCache | None:
        """The cache the environment names; None when it is off or cannot be used."""
        root = cache_root(environ)
        if root is None:
            return None
        try:
            return cls(root)
        except OSError as exc:
            log.debug("spec cache off: cannot read reconciler's own sources (%s)", exc)
            return None

    def key(self, display: str, raw: bytes) -> str:
        """The entry of the file ``display`` with content ``raw``."""
        name = display.encode("utf-8", errors="surrogateescape")
        digest = hashlib.sha256(b"%d:%s%d:" % (len(name), name, len(raw)))
        digest.update(raw)
        return digest.hexdigest()

    def read(self, key: str) -> bytes | None:
        """The entry's bytes, or None when there is none (or it cannot be read).

        Only a regular file, not through a link, opened without blocking: a FIFO or a link
        planted in the cache is no entry.
        """
        path = self.folder / f"{key}.json"
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.debug("spec cache: cannot read %s: %s", path, exc)
            return None
        try:
            with os.fdopen(fd, "rb") as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ENTRY_BYTES:
                    data = b""
                else:
                    data = handle.read(MAX_ENTRY_BYTES + 1)
        except OSError as exc:
            log.debug("spec cache: cannot read %s: %s", path, exc)
            return None
        if not data or len(data) > MAX_ENTRY_BYTES:
            self.forget(key)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: the last to go
            if not self._touched:
                os.utime(self.folder)  # this version is in use: others keep their hands off
                self._touched = True
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
            # Said once a run: every file meets the same wall (a file where the folder should
            # be), whichever of the command's caches of that folder meets it first.
            level = logging.DEBUG if self.folder in _UNWRITABLE else logging.WARNING
            _UNWRITABLE.add(self.folder)
            log.log(
                level,
                "spec cache: cannot write to %s (%s): spec files are checked in full on every "
                "run; RECONCILER_CACHE_DIR=off turns the cache off",
                self.folder,
                exc,
            )
            return
        if self._written % 100 == 0:
            self._prune()
        self._written += 1

    def _prune(self) -> None:
        """About ``MAX_ENTRIES`` at most, the most recently used, never one this run used;
        other versions' folders once unused for a day. Nothing is followed through a link
        (unlinking a link removes the link), and one item that resists stops nothing else."""
        stale = time.time() - _OTHER_VERSIONS_KEPT
        for other in _scan(self.folder.parent):
            with contextlib.suppress(OSError):
                if (
                    other.path != str(self.folder)
                    and other.is_dir(follow_symlinks=False)
                    and other.stat(follow_symlinks=False).st_mtime < stale
                ):
                    for item in _scan(Path(other.path)):
                        if not item.is_dir(follow_symlinks=False):
                            with contextlib.suppress(OSError):
                                os.unlink(item.path)
                    os.rmdir(other.path)
        entries = []
        for entry in _scan(self.folder):
            with contextlib.suppress(OSError):
                entries.append((entry.stat(follow_symlinks=False).st_mtime, entry.path))
        if len(entries) <= MAX_ENTRIES:
            return
        entries.sort()
        for used, path in entries[: len(entries) - MAX_ENTRIES * 3 // 4]:
            if used >= self._started:
                break  # this run's own: kept
            with contextlib.suppress(OSError):
                os.unlink(path)


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as found:
            return list(found)
    except OSError as exc:
        log.debug("spec cache: cannot list %s: %s", folder, exc)
        return []
