"""The JSON documents: the plan (its saved form), validation results, failures and apply's
report (docs/plan-json.md, docs/report-json.md)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from reconciler.core import planfile
from reconciler.core.drift import Drift
from reconciler.core.plan import Plan
from reconciler.core.planfile import FORMAT_VERSION
from reconciler.errors import ApiError, Problem, ReconcilerError, SpecError
from reconciler.render.layout import failure_message, safe_url
from reconciler.run.results import ApplyOutcome

# --- json ---------------------------------------------------------------------------------------


def render_json(plan: Plan) -> str:
    """Render ``plan`` as the documented, versioned JSON format (docs/plan-json.md).

    The saved plan's own text: ``planfile.loads(render_json(plan)) == plan``.
    """
    return planfile.dumps(plan)


#: Version of `validate --format json` output; bump on incompatible changes.
VALIDATE_FORMAT_VERSION = 1


def render_validation_json(
    files: Sequence[str], problems: Sequence[Problem], notes: Sequence[Problem]
) -> str:
    """The ``validate --format json`` document."""
    document = {
        "format_version": VALIDATE_FORMAT_VERSION,
        "valid": not problems,
        "files": list(files),
        "problems": [p.to_dict() for p in problems],
        "notes": [n.to_dict() for n in notes],
    }
    return json.dumps(document, indent=2)


def failure_document(error: ReconcilerError, command: str) -> dict[str, Any]:
    """The JSON a ``--format json`` command prints instead of its result when it fails.

    ``{"format_version", "command", "error": {"kind", "message", "problems", "api"}}``, see
    docs/plan-json.md; spec problems keep their path, line and column.
    """
    problems = list(error.problems) if isinstance(error, SpecError) else []
    api = None
    if isinstance(error, ApiError):
        api = {
            "method": error.method or None,
            "url": safe_url(error.url) if error.url else None,
            "status": error.status,
            "code": error.code,
        }
    message = failure_message(error)
    return {
        "format_version": FORMAT_VERSION,
        "command": command,
        "error": {
            "kind": error.kind,
            "message": message,
            "problems": [p.to_dict() for p in problems],
            "api": api,
        },
    }


def render_failure_json(error: ReconcilerError, command: str) -> str:
    """``failure_document`` as printed."""
    return json.dumps(failure_document(error, command), indent=2) + "\n"


#: docs/report-json.md; 3 renamed the summary key ``rolled back`` to ``rolled_back``, and
#: brought the ``legend set`` outcome and the ``index`` and ``legend`` changes.
REPORT_FORMAT_VERSION = 3


def report_document(outcome: ApplyOutcome) -> dict[str, Any]:
    """The ``apply --report`` JSON: what happened to every change, or why none started."""
    result = outcome.result
    error = None
    if outcome.signal:
        error = {"kind": "interrupted", "message": f"{outcome.signal} before any change started"}
    elif outcome.error is not None:
        error = {"kind": outcome.error.report_kind, "message": str(outcome.error)}
    return {
        "format_version": REPORT_FORMAT_VERSION,
        "ok": outcome.ok,
        "interrupted": result.interrupted,
        "stopped_early": result.stopped_early,
        "stop_reason": result.stop_reason,
        "state_error": result.state_error,
        "key_refused": result.key_refused,
        "left_pending": [{"aoi_id": a.id, "aoi_name": a.name} for a in result.left_pending],
        "unreadable": [
            {"aoi_id": w.aoi_id, "aoi_name": w.aoi_name, "message": w.message, "where": w.where}
            for w in (outcome.plan.unreadable if outcome.plan is not None else ())
        ],
        "api_url": result.api_url,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        # Keys a program can name without quoting: rolled_back, not the outcome's words.
        "summary": {k.replace(" ", "_"): n for k, n in result.counts().items()},
        "items": [dataclasses.asdict(item) for item in result.items],
        "error": error,
    }


def render_report(outcome: ApplyOutcome) -> str:
    """``report_document`` as written to the file."""
    return json.dumps(report_document(outcome), indent=2) + "\n"


#: docs/drift.md; bump on incompatible changes.
DRIFT_FORMAT_VERSION = 1


def render_drift_json(plan: Plan, drift: Drift) -> str:
    """The ``drift --format json`` document, for alerting (docs/drift.md)."""
    document = {
        "format_version": DRIFT_FORMAT_VERSION,
        "status": drift.status,
        "exit_code": drift.exit_code,
        "counts": drift.counts(),
        "findings": [dataclasses.asdict(f) for f in drift.findings],
        "api_url": plan.api_url,
        "plan": plan.summary(),
    }
    return json.dumps(document, indent=2) + "\n"
