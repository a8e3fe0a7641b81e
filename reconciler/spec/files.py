"""Which spec files a set of paths names: directories walked, hidden and special files
skipped, symlinks followed only where they stay under the paths, every unreadable one
reported as a problem rather than waited on."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from reconciler.errors import Problem, SpecError, Where
from reconciler.spec.yamlsource import describe_os_error, read_spec_bytes, special_file_kind

log = logging.getLogger(__name__)

#: File name endings picked up when a directory is given.
SPEC_SUFFIXES = (".yaml", ".yml")


# --- loading -------------------------------------------------------------------------------------


def find_spec_files(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[str, Path]]:
    """Expand files and directories into ``(display path, path)`` pairs, in a stable order.

    Directories are searched recursively for ``*.yaml`` and ``*.yml``, sorted by path; hidden
    files and directories (``.git``, ``.pre-commit-config.yaml``) are skipped. A file named
    explicitly is read whatever its name. Each file is read once even if named twice (or
    reached through a symlink). Only regular files are specs: a device, FIFO or socket (say a
    link to ``/dev/stdin``) is refused without being opened, so nothing blocks on it.

    A symlink is followed only to a file under the directory it was found in (a file named
    on its own: under its own directory). One that leads elsewhere (``specs/x.yaml`` to
    ``~/.aws/credentials``, to the API key file) is a problem at its path, and its target is
    never opened: a pull request can add such a link, and what it points at would be quoted
    in the problems printed and posted.

    Raises ``SpecError`` if a path does not exist, cannot be used (symlink loop, special
    file, link out of the spec paths), or a directory holds no spec files.
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
            # Named on its own (a shell glob names every file of a directory): the same rule
            # as in a walk of its directory, so `specs/*.yaml` reads what `specs/` does.
            directory = os.path.realpath(os.path.dirname(shown) or os.curdir)
            outside = _stays_under(shown, directory, "its own directory")
            if outside is not None:
                problems.append(outside)
                continue
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


def _stays_under(path: str, real_top: str, top: str) -> Problem | None:
    """None if ``path`` is no symlink or one leading to a file under ``real_top``; else the
    problem, found without opening (or even statting) where the link leads."""
    if not os.path.islink(path):
        return None
    # realpath only reads links; a loop comes back unresolved, under the top, and the stat
    # after this reports it.
    target = os.path.realpath(path)
    if target == real_top or target.startswith(real_top.rstrip(os.sep) + os.sep):
        return None
    message = (
        f"a symlink that leads outside {top}; refusing to read it (spec files are read only "
        "from under the paths given)"
    )
    return Problem(message, Where(path, 1, 1))


def _walk(top: str, problems: list[Problem]) -> list[tuple[str, os.stat_result]]:
    result: list[tuple[str, os.stat_result]] = []
    real_top = os.path.realpath(top)

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
            outside = _stays_under(display, real_top, top)
            if outside is not None:
                problems.append(outside)
                continue
            info = _stat(display, problems)
            if info is not None:
                result.append((display, info))
    return sorted(result, key=lambda item: Path(item[0]).parts)


def read_sources(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[str, bytes | SpecError]]:
    """Every spec file under ``paths`` read: (display path, content, or why it could not be
    read), in display order. ``SpecError`` when there is nothing to read (``find_spec_files``).
    Each file is screened for the API key as it is read, before anything else looks at it."""
    sources: list[tuple[str, bytes | SpecError]] = []
    for display, path in find_spec_files(paths):
        try:
            sources.append((display, read_spec_bytes(path, display)))
        except SpecError as exc:
            sources.append((display, exc))
    return sources


def sources_digest(sources: Sequence[tuple[str, bytes | SpecError]]) -> str:
    """The SHA-256 of the files read (display paths and contents, in order), hex."""
    digest = hashlib.sha256()
    for display, raw in sources:
        if isinstance(raw, bytes):
            name = display.encode("utf-8", errors="surrogateescape")
            # Length-prefixed so (a, bc) and (ab, c) never hash alike.
            digest.update(b"%d:%s%d:" % (len(name), name, len(raw)))
            digest.update(raw)
    return digest.hexdigest()
