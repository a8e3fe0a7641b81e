"""Which spec files a set of paths names: directories walked, hidden and special files
skipped, every unreadable one reported as a problem rather than waited on."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from reconciler.errors import Problem, SpecError
from reconciler.spec.fields import SPEC_SUFFIXES
from reconciler.spec.yamlsource import (
    describe_os_error,
    special_file_kind,
)

log = logging.getLogger(__name__)


# --- loading -------------------------------------------------------------------------------------


def find_spec_files(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[str, Path]]:
    """Expand files and directories into ``(display path, path)`` pairs, in a stable order.

    Directories are searched recursively for ``*.yaml`` and ``*.yml``, sorted by path; hidden
    files and directories (``.git``, ``.pre-commit-config.yaml``) are skipped. A file named
    explicitly is read whatever its name. Each file is read once even if named twice (or
    reached through a symlink). Only regular files are specs: a device, FIFO or socket (say a
    link to ``/dev/stdin``) is refused without being opened, so nothing blocks on it.
    Raises ``SpecError`` if a path does not exist, cannot be used (symlink loop, special
    file), or a directory holds no spec files.
    """
    problems: list[Problem] = []
    found: list[tuple[str, Path]] = []
    seen: set[tuple[int, int]] = set()
    if not paths:
        raise SpecError([Problem("no spec files or directories given")])
    for given in paths:
        shown = os.fspath(given)
        info = _stat(shown, problems)
        if info is None:
            continue
        if stat.S_ISDIR(info.st_mode):
            before = len(problems)
            matches = _walk(shown, problems)
            if not matches and len(problems) == before:
                problems.append(
                    Problem(f"{shown}: no spec files (*.yaml, *.yml) in this directory")
                )
        else:
            matches = [(shown, info)]
        for display, file_info in matches:
            kind = special_file_kind(file_info)
            if kind is not None:
                problems.append(Problem(f"{display}: {kind}, not a spec file; refusing to read it"))
                continue
            key = (file_info.st_dev, file_info.st_ino)
            if key not in seen:
                seen.add(key)
                found.append((display, Path(display)))
    if problems:
        raise SpecError(problems)
    return found


def _stat(shown: str, problems: list[Problem]) -> os.stat_result | None:
    """``os.stat`` (following symlinks) of a spec path, or None after adding the problem."""
    try:
        return os.stat(shown)
    except OSError as exc:
        problems.append(Problem(f"{shown}: {describe_os_error(exc, shown)}"))
        return None


def _walk(top: str, problems: list[Problem]) -> list[tuple[str, os.stat_result]]:
    result: list[tuple[str, os.stat_result]] = []

    def unreadable(exc: OSError) -> None:
        where = exc.filename if isinstance(exc.filename, str) else top
        problems.append(Problem(f"{where}: {describe_os_error(exc, where)}"))

    # os.walk does not follow directory symlinks, so a link loop among directories cannot trap
    # us; a file symlink in a loop fails its stat below and is reported.
    for root, dirs, files in os.walk(top, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not name.endswith(SPEC_SUFFIXES):
                continue
            display = os.path.join(root, name)
            info = _stat(display, problems)
            if info is not None:
                result.append((display, info))
    return sorted(result, key=lambda item: Path(item[0]).parts)
