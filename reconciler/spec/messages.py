"""pydantic's errors turned into messages for spec authors, each at its YAML node."""

from __future__ import annotations

import difflib
import logging
import re
from typing import Any

from reconciler.errors import Problem
from reconciler.spec.fields import ASSET_POLICIES, SPEC_VERSION, describe_value
from reconciler.spec.models import (
    LOC_TAGS,
    AoiByRef,
    AoiEntry,
    IgnoreRuleModel,
    IndexModel,
    LegendItemModel,
    LegendModel,
    RollbackModel,
    SelectorEntry,
    SelectorMatchModel,
    SpecFile,
    VisualizationModel,
)
from reconciler.spec.yamlsource import (
    Document,
    Loc,
)
from reconciler.text import plural

log = logging.getLogger(__name__)


# --- pydantic errors -> messages for spec authors -------------------------------------------------

#: The keys each mapping of the format allows, found by the key that holds the mapping.
_KEYS_UNDER: dict[str | None, tuple[str, ...]] = {
    None: tuple(SpecFile.model_fields),
    "aois": tuple(AoiEntry.model_fields),
    "aoi": tuple(AoiByRef.model_fields),
    "visualizations": tuple(VisualizationModel.model_fields),
    "rollback": tuple(RollbackModel.model_fields),
    "ignore": tuple(IgnoreRuleModel.model_fields),
    "selectors": tuple(SelectorEntry.model_fields),
    "match": tuple(SelectorMatchModel.model_fields),
    "legend": tuple(LegendModel.model_fields),
    "items": tuple(LegendItemModel.model_fields),
    "indices": tuple(IndexModel.model_fields),
}

_KIND_OF_TYPE = {
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
}


def _kind_of(value: Any) -> str:
    """What a whole file that is no mapping holds, never quoting it: such a file is no spec,
    and may be a token or a password file."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    return "a date"


def data_loc(loc: tuple[Any, ...]) -> Loc:
    """Drop pydantic's union tags from ``loc`` so it addresses the YAML data."""
    kept: list[Any] = []
    for part in loc:
        if isinstance(part, str) and kept and LOC_TAGS.get(part) == kept[-1]:
            continue
        kept.append(part)
    return tuple(kept)


def _parent_key(loc: Loc) -> str | None:
    """The nearest key in ``loc``: 'visualizations' for (..., 'visualizations', 0)."""
    for part in reversed(loc):
        if isinstance(part, str):
            return part
    return None


def _subject(loc: Loc) -> str:
    """How to name the value at ``loc`` in a message: 'dates', 'item 2 of dates', 'the file'."""
    if not loc:
        return "the file"
    last = loc[-1]
    if isinstance(last, int):
        parent = _parent_key(loc[:-1])
        return f"item {last + 1} of '{parent}'" if parent else f"item {last + 1}"
    return f"'{last}'"


def problem_from_error(error: Any, doc: Document) -> Problem:
    loc = data_loc(tuple(error["loc"]))
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    subject = _subject(loc)
    if kind == "missing":
        key = loc[-1]
        return Problem(f"missing required key '{key}'", doc.where(loc[:-1]))
    where = doc.where(loc)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _KEYS_UNDER.get(_parent_key(loc[:-1]), ())
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = (
            f" (did you mean '{close[0]}'?)"
            if close
            else f"; expected one of: {', '.join(allowed)}"
            if allowed
            else ""
        )
        return Problem(f"unknown key '{key}'{hint}", doc.key_where(loc))
    if kind == "literal_error" and loc and loc[-1] == "assets":
        message = (
            f"'assets' must be a list of assets (like [Bengaluru-A]) or one of the policies "
            f"all or any, got {describe_value(value)}"
        )
        if isinstance(value, str):
            close = difflib.get_close_matches(value.lower(), ASSET_POLICIES, n=1)
            if close:
                message += f" (did you mean '{close[0]}'?)"
        return Problem(message, where)
    if kind == "literal_error":
        if loc == ("version",):
            message = (
                f"unsupported spec version {describe_value(value)}; this reconciler reads version "
                f"{SPEC_VERSION}"
            )
            return Problem(message, where)
        expected = ctx.get("expected", "")
        message = f"{subject} must be one of {expected}, got {describe_value(value)}"
        options = re.findall(r"'([^']*)'", str(expected))
        if isinstance(value, str):
            close = difflib.get_close_matches(value, options, n=1)
            if close:
                message += f" (did you mean '{close[0]}'?)"
        return Problem(message, where)
    if loc and loc[-1] == "rescale" and kind in ("too_short", "too_long"):
        return Problem(
            f"'rescale' must be two whole numbers [low, high], got {plural(len(value), 'number')}",
            where,
        )
    if kind in ("too_short", "string_too_short"):
        message = f"{subject} must not be empty"
        if loc and loc[-1] == "assets":
            message += "; write 'all' (or omit the key) to use all of the AOI's assets"
        return Problem(message, where)
    if kind in _KIND_OF_TYPE:
        if not loc:
            return Problem(
                f"the file must be a mapping with an 'aois' list, got {_kind_of(value)}", where
            )
        message = f"{subject} must be {_KIND_OF_TYPE[kind]}, got {describe_value(value)}"
        if kind == "string_type" and isinstance(value, int | float | bool):
            message += " (quote it if it is a name)"
        return Problem(message, where)
    if kind in ("greater_than", "greater_than_equal"):
        bound = ctx.get("gt", ctx.get("ge"))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        relation = "greater than" if kind == "greater_than" else "at least"
        return Problem(f"{subject} must be {relation} {bound}, got {describe_value(value)}", where)
    if kind in ("less_than", "less_than_equal"):
        bound = ctx.get("lt", ctx.get("le"))
        relation = "less than" if kind == "less_than" else "at most"
        return Problem(f"{subject} must be {relation} {bound}, got {describe_value(value)}", where)
    if kind == "too_long":
        most = ctx.get("max_length")
        got = ctx.get("actual_length")
        return Problem(f"{subject} may have at most {most} items, got {got}", where)
    if kind == "finite_number":
        return Problem(f"{subject} must be a finite number, got {describe_value(value)}", where)
    if kind == "no_null":
        return Problem(f"{subject} needs a value; omit the key to use the default", where)
    message = str(error.get("msg", "is not valid"))
    message = message.removeprefix("Value error, ")
    if kind == "aoi_ref" and not isinstance(value, dict):
        message = f"{message}, got {describe_value(value)}"
    if kind == "assets":
        return Problem(f"'assets': {message}, got {describe_value(value)}", where)
    if kind in (
        "aoi_ref",
        "aoi_id",
        "iso_date",
        "asset_selector",
        "uuid",
        "missing_aois",
        "ignore_rule",
        "color",
        "label",
        "index_name",
        "expression",
        "rescale",
    ):
        return Problem(message, where)
    if kind == "selector_match":
        return Problem(message, where)
    return Problem(f"{subject}: {message[:1].lower()}{message[1:]}", where)
