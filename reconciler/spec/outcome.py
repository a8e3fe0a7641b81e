"""What offline ``validate`` reports, kept whole for a set of spec files that did not change.

The spec cache (``spec.cache``) spares parsing and checking an unchanged file, but reading its
declarations back still takes pydantic and the declaration types. Offline ``validate``, which
pre-commit runs on every commit, needs none of that when no file changed: only the files'
names, the problems, the notes and a few counts. So the outcome of validating one set of files
is kept as one more entry of that cache, keyed by every file's display path and content, and
read back with the standard library: a run over unchanged files imports neither pydantic nor
the spec checks. It is told apart from the files' own entries by a display path no file can
have. A set with a file that could not be read is validated as ever, and so is one whose entry
does not read back (then the entry is dropped).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.errors import Problem, SpecError, Where
from reconciler.spec.cache import SpecCache
from reconciler.spec.files import read_sources, sources_digest

if TYPE_CHECKING:
    from reconciler.spec.decls import Specs, ValidationReport

log = logging.getLogger(__name__)

#: The display path of an outcome's entry: NUL cannot be in a file's path.
_OUTCOME = "\0validate"


@dataclass(frozen=True, slots=True)
class Tally:
    """What valid specs declare, as ``validate`` sums it up."""

    aois: int = 0
    visualizations: int = 0
    selectors: int = 0
    indices: int = 0

    @classmethod
    def of(cls, specs: Specs | None) -> Tally:
        if specs is None:
            return cls()
        return cls(
            aois=len({a.label for a in specs.aois}),
            visualizations=specs.visualization_count,
            selectors=len(specs.selectors),
            indices=len(specs.indices),
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """The files validated, every problem and note, and what the files declare."""

    files: tuple[str, ...]
    problems: tuple[Problem, ...]
    notes: tuple[Problem, ...]
    tally: Tally

    @classmethod
    def of(cls, report: ValidationReport) -> Outcome:
        return cls(report.files, report.problems, report.notes, Tally.of(report.specs))


def validate_offline(paths: Sequence[str | os.PathLike[str]]) -> Outcome:
    """``spec.load.validate_specs`` of ``paths``, as an ``Outcome``: read back whole when the
    same files were validated before. Raises ``SpecError`` when there is nothing to check."""
    sources = read_sources(paths)
    cache = SpecCache.from_environ()
    if cache is None or not all(isinstance(raw, bytes) for _, raw in sources):
        return _validated(sources)
    key = cache.key(_OUTCOME, sources_digest(sources).encode())
    data = cache.read(key)
    if data is not None:
        try:
            found = _decoded(data, [display for display, _ in sources])
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            log.debug("spec cache: the validation outcome is unusable (%s); validating", exc)
            cache.forget(key)
        else:
            for display, _ in sources:
                log.debug("read %s: as validated before (spec cache)", display)
            return found
    outcome = _validated(sources)
    try:
        cache.write(key, _encoded(outcome))
    except UnicodeEncodeError:  # a file name that is no text (a lone surrogate): not kept
        log.debug("spec cache: the validation outcome is not kept (a file name is no text)")
    return outcome


def _validated(sources: list[tuple[str, bytes | SpecError]]) -> Outcome:
    # Imported here: a run whose outcome is kept never loads the checks.
    from reconciler.spec.load import validate_sources

    return Outcome.of(validate_sources(sources))


def _encoded(outcome: Outcome) -> bytes:
    tally = outcome.tally
    data = {
        "files": list(outcome.files),
        "problems": [p.to_dict() for p in outcome.problems],
        "notes": [n.to_dict() for n in outcome.notes],
        "tally": [tally.aois, tally.visualizations, tally.selectors, tally.indices],
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _decoded(data: bytes, files: list[str]) -> Outcome:
    """What ``_encoded`` wrote of ``files``; ``ValueError`` (or ``TypeError``, ``KeyError``,
    ``RecursionError``) for anything else."""
    found = json.loads(data)
    tally = found["tally"]
    if found["files"] != files:
        raise ValueError("the outcome of other files")
    if len(tally) != 4 or not all(type(n) is int and n >= 0 for n in tally):
        raise ValueError("counts that are not four integers >= 0")
    return Outcome(
        tuple(files),
        tuple(_problem(p) for p in found["problems"]),
        tuple(_problem(n) for n in found["notes"]),
        Tally(*tally),
    )


def _problem(data: dict[str, Any]) -> Problem:
    """The inverse of ``Problem.to_dict``."""
    message, path, line, column = data["message"], data["path"], data["line"], data["column"]
    if not isinstance(message, str):
        raise ValueError("a message that is no text")
    if path is None:
        return Problem(message)
    if not isinstance(path, str) or type(line) is not int or type(column) is not int:
        raise ValueError("a position that is not a path, a line and a column")
    return Problem(message, Where(path, line, column))
