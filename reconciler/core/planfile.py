"""The saved-plan format: what ``plan --out`` and ``plan --format json`` write, and the one
parser of saved plans that ``apply PLAN`` and ``show PLAN`` use.

Only this module knows the document's shape (docs/plan-json.md): its ``format_version``, the
``summary`` written for readers, the ``checksum`` sealing everything before it, and how each
plan value becomes JSON and back. The conversion follows the plan model's own type hints
(pydantic), so there is no hand-written serialiser to drift from the model, and a file whose
values have the wrong types is refused rather than half-read.

Pure: text in, ``Plan`` out, and back; reading and writing files is the caller's.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import TypeAdapter, ValidationError

from reconciler.core.plan import Plan
from reconciler.errors import PlanFileError

#: Bump when the JSON shape changes incompatibly; readers refuse versions they do not know.
FORMAT_VERSION = 8

#: The document's top-level keys, in the order it is written (``checksum`` comes last).
_HEAD = ("format_version", "summary")


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(kind: type[Any]) -> TypeAdapter[Any]:
    # Built on first use: a command that never reads or writes a plan does not pay for it.
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


def to_json(value: object) -> Any:
    """Any plan value (a ``Plan``, a snapshot, a change) as the plan document writes it."""
    return _adapter(type(value)).dump_python(value, mode="json")


def checksum(content: dict[str, Any]) -> str:
    """'sha256:…' over ``content`` in a canonical JSON form (sorted keys, no spaces)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


def document(plan: Plan) -> dict[str, Any]:
    """The documented JSON form of ``plan``, ending with the ``checksum`` of all before it."""
    content: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "summary": plan.summary(),
        **to_json(plan),
    }
    # A snapshot keeps its visualizations and assets in the order they were listed; the file
    # sorts them, so that two plans of the same world are the same text.
    content["observed"] = {
        aoi_id: _sorted_snapshot(snapshot) for aoi_id, snapshot in content["observed"].items()
    }
    return {**content, "checksum": checksum(content)}


def dumps(plan: Plan) -> str:
    """``document(plan)`` as the text of a plan file."""
    return json.dumps(document(plan), indent=2) + "\n"


def loads(text: str | bytes, *, source: str = "the plan") -> Plan:
    """The plan in ``text`` (read from ``source``, for messages); ``PlanFileError`` for
    anything but a saved plan as it was written."""
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanFileError(f"{source}: not a saved plan ({exc})") from None
    return from_document(data)


def from_document(data: object) -> Plan:
    """A plan written by ``document``; ``PlanFileError`` on anything else, including a plan
    whose content does not match its checksum (edited by hand, or damaged)."""
    if not isinstance(data, dict):
        raise PlanFileError("not a reconciler plan: expected a JSON object")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise PlanFileError(
            f"plan format_version {version!r} is not supported (this reconciler reads "
            f"{FORMAT_VERSION}); run 'reconciler plan' again with this version"
        )
    content = {k: v for k, v in data.items() if k != "checksum"}
    if data.get("checksum") != checksum(content):
        raise PlanFileError(
            "the plan was changed after 'reconciler plan' saved it (its content no longer "
            "matches its checksum); a plan is applied only as it was reviewed: make a new "
            "one with 'reconciler plan --out'"
        )
    fields = {k: v for k, v in content.items() if k not in _HEAD}
    try:
        plan: Plan = _adapter(Plan).validate_python(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the document"
        raise PlanFileError(f"not a valid reconciler plan: {where}: {first['msg']}") from None
    return plan


def _sorted_snapshot(snapshot: dict[str, Any]) -> dict[str, Any]:
    assets = snapshot["assets"]
    return {
        **snapshot,
        "visualizations": dict(sorted(snapshot["visualizations"].items())),
        "assets": None if assets is None else dict(sorted(assets.items())),
    }


__all__ = [
    "FORMAT_VERSION",
    "checksum",
    "document",
    "dumps",
    "from_document",
    "loads",
    "to_json",
]
