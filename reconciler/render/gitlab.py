"""GitLab Code Quality: spec problems as a report that a merge request shows at their lines."""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Sequence
from typing import Any

from reconciler.errors import Problem
from reconciler.text import clean

#: ``check_name`` of a problem (validation fails) and of a note (it does not).
PROBLEM_CHECK = "reconciler-validate"
NOTE_CHECK = "reconciler-validate-note"


def render_validation_gitlab(problems: Sequence[Problem], notes: Sequence[Problem]) -> str:
    """The ``validate --format gitlab`` output: a GitLab Code Quality report.

    A JSON array with one entry per problem (severity ``major``) and note (``info``):
    ``description``, ``check_name``, ``fingerprint``, ``severity`` and ``location: {path,
    lines: {begin}}``. The pipeline keeps it as ``artifacts: reports: codequality``, and the
    merge request shows each entry at its line. What has no position in a file (a path that
    does not exist) has no place in it: the command says that on stderr.

    GitLab tells new problems from fixed ones by ``fingerprint``, comparing the merge request's
    report with its target branch's. So a fingerprint leaves the line out (an edit above a
    problem must not make it new) and counts how many equal problems came before it in that
    file (two equal ones are still two). Texts are made printable as in every format.
    """
    entries: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, str], int] = {}
    for check, severity, found in (
        (PROBLEM_CHECK, "major", problems),
        (NOTE_CHECK, "info", notes),
    ):
        for problem in found:
            where = problem.where
            if where is None:
                continue
            path = _repository_path(clean(where.path))
            description = clean(problem.message)
            key = (check, path, description)
            seen[key] = seen.get(key, 0) + 1
            entries.append(
                {
                    "description": description,
                    "check_name": check,
                    "fingerprint": _fingerprint(*key, seen[key]),
                    "severity": severity,
                    "location": {"path": path, "lines": {"begin": where.line}},
                }
            )
    return json.dumps(entries, indent=2, ensure_ascii=False) + "\n"


def _repository_path(path: str) -> str:
    """``./specs/a.yaml`` as GitLab names files in the repository: ``specs/a.yaml``."""
    return path if posixpath.isabs(path) else posixpath.normpath(path)


def _fingerprint(check: str, path: str, description: str, occurrence: int) -> str:
    text = json.dumps([check, path, description, occurrence], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
