"""Loading specs: every file parsed and checked, then checked across files, into ``Specs``
or every problem at once."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Sequence
from typing import Literal

from pydantic import (
    TypeAdapter,
)

from reconciler._gc import no_cycle_collection
from reconciler.errors import Problem, SpecError, Where
from reconciler.spec.agreement import cross_checks, duplicate_ignores, one_per_name
from reconciler.spec.cache import SpecCache
from reconciler.spec.decls import (
    NOT_CHECKED,
    UNREAD,
    AoiDecl,
    FileResult,
    IgnoreDecl,
    IndexDecl,
    SelectorDecl,
    Specs,
    ValidationReport,
)
from reconciler.spec.files import read_sources, sources_digest

log = logging.getLogger(__name__)


def validate_specs(
    paths: Sequence[str | os.PathLike[str]], *, checked: CheckedFiles | None = None
) -> ValidationReport:
    """Run every offline check on the spec files under ``paths`` and report the problems.

    Problems inside spec files are returned, not raised. Raises ``SpecError`` only when there is
    nothing to check: a path that does not exist, or a directory without spec files.
    ``checked``: files already checked in this run, reused when their content is the same.
    """
    return validate_sources(read_sources(paths), checked=checked)


@no_cycle_collection  # declarations are acyclic: the collector would only walk them
def validate_sources(
    sources: Sequence[tuple[str, bytes | SpecError]], *, checked: CheckedFiles | None = None
) -> ValidationReport:
    """``validate_specs`` of spec files already read: (display path, content, or why it could
    not be read), in display order. Used for the specs at a git revision too."""
    files = checked if checked is not None else CheckedFiles()
    problems: list[Problem] = []
    unchecked: list[Problem] = []
    aois: list[AoiDecl] = []
    ignores: list[IgnoreDecl] = []
    selectors: list[SelectorDecl] = []
    indices: list[IndexDecl] = []
    for display, raw in sources:
        if not isinstance(raw, bytes):
            problems.extend(raw.problems)
            unchecked.append(Problem(NOT_CHECKED + UNREAD, Where(display, 1, 1)))
            continue
        found = files.check(display, raw)
        aois.extend(found.aois)
        problems.extend(found.problems)
        unchecked.extend(found.unchecked)
        ignores.extend(found.ignores)
        selectors.extend(found.selectors)
        indices.extend(found.indices)
    cross_problems, notes = cross_checks(aois)
    unique_indices, index_problems = one_per_name(indices)
    problems.extend(index_problems)
    problems.extend(cross_problems)
    problems.extend(duplicate_ignores(aois, ignores))
    shown = tuple(display for display, _ in sources)
    ordered = tuple(SpecError(problems).problems)  # SpecError knows the display order
    specs = Specs(
        shown,
        sources_digest(sources),
        tuple(aois),
        tuple(notes),
        tuple(selectors),
        ignore=tuple(ignores),
        indices=tuple(unique_indices),
    )
    if ordered:
        later = tuple(SpecError(unchecked).problems)
        return ValidationReport(shown, ordered, tuple(notes), None, specs, later)
    return ValidationReport(shown, (), tuple(notes), specs)


class CheckedFiles:
    """The spec files one run checked, by display path and content: the specs at a git
    revision are mostly the same files as now, and each is then checked once (and its
    declarations are the same objects, which ``core.changes`` compares first).

    Beyond the run, ``disk`` (by default the one ``RECONCILER_CACHE_DIR`` names,
    ``spec.cache``) keeps what each file declared, so an unchanged file is not checked again
    by the next run either. Files are screened for secrets before they get here, each time.
    """

    def __init__(self, disk: SpecCache | Literal["environ"] | None = "environ") -> None:
        self._found: dict[tuple[str, bytes], FileResult] = {}
        self._disk = SpecCache.from_environ() if disk == "environ" else disk

    def check(self, display: str, raw: bytes) -> FileResult:
        """What the file ``display`` with content ``raw`` declares, and its problems."""
        key = (display, hashlib.sha256(raw).digest())
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = self._from_disk(display, raw)
        return found

    def _from_disk(self, display: str, raw: bytes) -> FileResult:
        disk = self._disk
        if disk is None:
            return _check_file(display, raw)
        key = disk.key(display, raw)
        data = disk.read(key)
        if data is not None:
            try:
                found: FileResult = _file_results().validate_json(data)
            except ValueError as exc:  # ValidationError too: damaged, or not ours
                log.debug("spec cache: entry for %s unusable (%s); checking it", display, exc)
                disk.forget(key)
            else:
                log.debug(
                    "read %s: %d AOI entries, %d problems (as checked before: spec cache)",
                    display,
                    len(found.aois),
                    len(found.problems),
                )
                return found
        found = _check_file(display, raw)
        try:
            data = _file_results().dump_json(found)
        except ValueError as exc:  # a name that is no text (a lone surrogate): not kept
            log.debug("spec cache: %s not kept (%s)", display, exc)
        else:
            disk.write(key, data)
        return found


def _check_file(display: str, raw: bytes) -> FileResult:
    # Imported here: a run whose files all come from the cache never builds the format's
    # pydantic models.
    from reconciler.spec.checkfile import check_file

    return check_file(display, raw)


@functools.cache
def _file_results() -> TypeAdapter[FileResult]:
    return TypeAdapter(FileResult)


def load_specs(
    paths: Sequence[str | os.PathLike[str]], *, checked: CheckedFiles | None = None
) -> Specs:
    """Load and validate every spec file under ``paths`` (files or directories).

    Returns the declarations, or raises one ``SpecError`` carrying every problem found in every
    file, each at the position of the YAML node it is about.
    """
    report = validate_specs(paths, checked=checked)
    if report.specs is None:
        raise SpecError(report.problems)
    return report.specs
