"""The values a spec author writes: ids, dates, asset references, name patterns; how a
wrong one is described back to them; and the format's constants (version, suffixes)."""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import logging
import re
from typing import Annotated, Any, Final

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
)
from pydantic_core import PydanticCustomError

from reconciler.dates import iso_date
from reconciler.spec.decls import AssetPolicy

log = logging.getLogger(__name__)


#: The spec format version this reconciler reads (the optional top-level ``version`` key).
SPEC_VERSION: Final = 1
#: Top-level keys starting with this are ignored: a place for YAML anchors (`x-defaults: &d`).
EXTENSION_PREFIX = "x-"

#: What ``assets:`` may say instead of a list.
ASSET_POLICIES: tuple[AssetPolicy, ...] = ("all", "any")

#: What YAML 1.1 would read as a date (1-2 digit month/day): such text is meant as a date, so
#: a bad one is reported as a bad date rather than silently taken as an asset name.
DATE_LIKE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}([ tT].*)?")
#: The API's spelling of a date (2024_05_06): meant as a date, so reported as one, with the ISO
#: form to write instead.
API_DATE_LIKE = re.compile(r"\d{4}_\d{1,2}_\d{1,2}")
UUID_PATTERN = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def looks_like_uuid(text: str) -> bool:
    """True if ``text`` has the shape of the API's ids (a UUID)."""
    return UUID_PATTERN.fullmatch(text) is not None


def describe_value(value: Any) -> str:
    """A short, YAML-flavoured description of a value for 'got ...' in messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dt.datetime):
        return f"'{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return repr(value) if len(value) <= _DESCRIBED else f"a text of {len(value):,} characters"
    text = str(value)
    # A long number is more likely a pasted secret or a whole file than a typo: not echoed.
    return text if len(text) <= _DESCRIBED else f"a number of {len(text):,} digits"


#: Values longer than this are described by kind and size, not quoted.
_DESCRIBED = 40


# --- field types -------------------------------------------------------------------------------


def _spec_date(value: Any) -> str:
    """Accept a YAML date or an ISO date string; return the ISO string."""
    if isinstance(value, dt.datetime):
        raise PydanticCustomError(
            "iso_date",
            f"expected a date without a time like 2024-05-06, got {describe_value(value)}",
        )
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return iso_date(value)
    raise PydanticCustomError("iso_date", why_not_a_date(value))


def why_not_a_date(value: Any) -> str:
    """What is wrong with a value written where an ISO date belongs, and what to write.

    The forms people copy in: the API's own ``2025_03_03``, a number ``20250303``, ``2024-5-6``,
    and dates that do not exist (``2025-02-30``, month 13), each said as what it is.
    """
    expected = f"expected an ISO date like 2024-05-06, got {describe_value(value)}"
    if isinstance(value, int) and not isinstance(value, bool):
        digits = str(value)
        parts = (digits[:4], digits[4:6], digits[6:])
        if len(digits) == 8 and _exists(*parts):
            return f"the number {digits} is not a date: write {_iso(*parts)}"
        return expected
    if not isinstance(value, str):
        return expected
    if API_DATE_LIKE.fullmatch(value):
        year, month, day = value.split("_")
        if _exists(year, month, day):
            return (
                f"'{value}' is the API's spelling of a date; specs use ISO dates: "
                f"write {_iso(year, month, day)}"
            )
        return f"'{value}' is not a date: {_why_not(year, month, day)}"
    if DATE_LIKE.fullmatch(value) and len(value) <= 10:
        year, month, day = value.split("-")
        if _exists(year, month, day):
            return f"'{value}' is not an ISO date: write {_iso(year, month, day)}"
        return f"'{value}' is not a date: {_why_not(year, month, day)}"
    return expected


def _exists(year: str, month: str, day: str) -> bool:
    try:
        dt.date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def _iso(year: str, month: str, day: str) -> str:
    return dt.date(int(year), int(month), int(day)).isoformat()


def _why_not(year: str, month: str, day: str) -> str:
    """Why a year, month and day that are all digits name no day of the calendar."""
    y, m = int(year), int(month)
    if not dt.MINYEAR <= y <= dt.MAXYEAR:
        return f"there is no year {y}"
    if not 1 <= m <= 12:
        return f"there is no month {m} (months run from 01 to 12, as in 2024-05-06)"
    if int(day) < 1:
        return "there is no day 0 (days start at 01)"
    last = calendar.monthrange(y, m)[1]
    return (
        f"{calendar.month_name[m]} {y} has only {last} days (the last is "
        f"{dt.date(y, m, last).isoformat()})"
    )


def _asset_selector(value: Any) -> str:
    """An asset id, name or ISO date; dates come back as ISO strings."""
    if isinstance(value, dt.date) or (
        isinstance(value, str) and (DATE_LIKE.fullmatch(value) or API_DATE_LIKE.fullmatch(value))
    ):
        return _spec_date(value)
    if isinstance(value, str):
        if not value.strip():
            raise PydanticCustomError("asset_selector", "an asset must not be empty")
        return value
    raise PydanticCustomError(
        "asset_selector",
        f"expected an asset id, name or ISO date, got {describe_value(value)} "
        "(quote a name that YAML reads as a number or boolean)",
    )


def check_aoi_id(
    value: Any, *, by_name: str = "to give the AOI by name write aoi: {{name: {}}}"
) -> Any:
    """A bare ``aoi: <value>`` is an id; a name written there is the likely mistake.

    ``by_name`` is the hint, with ``{}`` for the value: what to write instead to name the AOI.
    """
    if isinstance(value, str) and not looks_like_uuid(value):
        raise PydanticCustomError(
            "aoi_id",
            f"{describe_value(value)} is not an AOI id (ids look like "
            f"89a291cd-7ad8-5f86-aeee-55e92b0a0f5d); " + by_name.format(value),
        )
    return value


_EXAMPLE_UUID = "2b91399d-6edb-54ca-948b-8bddabd28ed4"


def check_uuid_text(value: Any, what: str) -> Any:
    if isinstance(value, str) and not looks_like_uuid(value):
        raise PydanticCustomError(
            "uuid", f"{describe_value(value)} is not a {what} (a UUID like {_EXAMPLE_UUID})"
        )
    return value


IsoDate = Annotated[
    str,
    BeforeValidator(_spec_date),
    Field(
        title="Date",
        description="An ISO date (YYYY-MM-DD), quoted or not.",
        json_schema_extra={"format": "date"},
        examples=["2024-05-06"],
    ),
]

AssetSelector = Annotated[
    str,
    BeforeValidator(_asset_selector),
    Field(
        title="Asset",
        description=(
            "A source asset of the AOI: its ISO date (2024-05-06), its id (a UUID) or its name."
        ),
        examples=["Bengaluru-A", "2024-05-06", "4bbe45b3-ef5d-54f4-ba70-b6700fa56d61"],
    ),
]

#: A legend colour as the API writes them: ``#`` and six hex digits.
COLOR_PATTERN = re.compile(r"#[0-9a-fA-F]{6}")


def _color(value: Any) -> Any:
    if isinstance(value, str) and COLOR_PATTERN.fullmatch(value):
        return value.lower()  # the API's colours compare without case
    hint = ""
    if value is None:
        hint = " (quote it: YAML reads an unquoted # as the start of a comment)"
    elif isinstance(value, str) and value.isalpha():
        hint = " (colour names are not taken: write the colour's hex form)"
    raise PydanticCustomError(
        "color",
        f'expected a colour like "#1a9641" (# and six hex digits), got '
        f"{describe_value(value)}{hint}",
    )


ColorText = Annotated[
    str,
    BeforeValidator(_color),
    Field(
        title="Colour",
        description="The range's colour: # and six hex digits, quoted (YAML reads # as a comment).",
        examples=["#1a9641"],
        json_schema_extra={"pattern": "^" + COLOR_PATTERN.pattern + "$"},
    ),
]

AoiIdText = Annotated[
    str,
    BeforeValidator(check_aoi_id),
    Field(
        title="AOI id",
        description="The AOI's id (a UUID). To give the AOI by name, write {name: ...}.",
        examples=["89a291cd-7ad8-5f86-aeee-55e92b0a0f5d"],
        json_schema_extra={"pattern": "^" + UUID_PATTERN.pattern + "$"},
    ),
]

SatelliteIdText = Annotated[
    str,
    BeforeValidator(lambda value: check_uuid_text(value, "satellite id")),
    Field(
        title="Satellite",
        description="The id (a UUID) of the satellite whose bands the expression reads.",
        examples=["0005c5bb-0bd2-4c80-9393-4a808341c54c"],
        json_schema_extra={"pattern": "^" + UUID_PATTERN.pattern + "$"},
    ),
]

MODEL_CONFIG = ConfigDict(
    extra="forbid",  # unknown keys are errors, with a "did you mean" (see _message)
    strict=True,  # no silent "10" -> 10 or yes -> 1: specs mean what they say
    allow_inf_nan=False,
    frozen=True,
)


def no_null(value: Any) -> Any:
    # Optional keys may be omitted, but an explicit null (`assets:` with nothing after it) is
    # far more often a half-finished edit than a wish for the default.
    if value is None:
        raise PydanticCustomError("no_null", "a value is needed here; omit the key instead")
    return value
