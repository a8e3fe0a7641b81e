"""What an API answer must be before the client uses it: JSON, within bounds, of the right shape.

Every failure is an ``InvalidResponseError`` naming the call (``GET /v0/aois?offset=0&limit=100``)
and what was wrong, never a traceback and never a silent default: a listing without its list is
an error, not an empty listing (reading it as empty would plan creates for what exists, and drop
the rollbacks of what is there).
"""

from __future__ import annotations

import difflib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from reconciler.errors import InvalidResponseError
from reconciler.text import json_kind, shorten

__all__ = [
    "LISTING_READS",
    "MAX_JSON_VALUES",
    "MAX_LISTING_BYTES",
    "ListingBudget",
    "ListingPage",
    "decode_json",
    "listing_page",
    "try_decode_json",
    "validation_summary",
]

#: The most JSON values (objects, arrays, scalars) an answer may hold. Each costs 30-60 bytes
#: once parsed whatever its size on the wire, plus the dicts and lists around them, so a bound
#: on bytes alone would let 16 MiB of small values take ~300 MB. A page of 100 visualizations
#: holds a few thousand; 200,000 keeps one parse near 50 MB.
MAX_JSON_VALUES = 200_000

#: Bodies above this are parsed one at a time across the process: parallel refresh threads
#: each holding a large parse would multiply the peak by the pool size.
_LARGE_BODY = 1024 * 1024
_large_parse = threading.Lock()

#: How many times a listing is read before an inconsistent one is an error. Data that moves
#: while it is paged can make one read repeat an item and miss another, and the next read is
#: usually whole; a listing that no read of three shows whole cannot be trusted.
LISTING_READS = 3

#: The most bytes one listing may bring across all its pages. Each page is bounded alone;
#: without this, a legal page size times the page cap would still add up to gigabytes.
MAX_LISTING_BYTES = 64 * 1024 * 1024


def _estimate_values(body: bytes) -> int:
    # Every value but the first follows a ',' or opens a container (or is its first item, which
    # the '[' / '{' already counts). Commas inside strings count too: an overestimate is fine.
    return body.count(b",") + body.count(b"[") + body.count(b"{") + 1


def decode_json(body: bytes, what: str, status: int) -> Any:
    """The JSON value of ``body``; ``InvalidResponseError`` if it is not JSON we can hold."""
    if _estimate_values(body) > MAX_JSON_VALUES:
        raise InvalidResponseError(
            f"{what} answered {status} with more than {MAX_JSON_VALUES:,} JSON values; "
            "refusing to parse it.",
            status=status,
        )
    try:
        if len(body) > _LARGE_BODY:
            with _large_parse:
                return json.loads(body, parse_constant=_refuse_constant)
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidResponseError(
            f"{what} answered {status} with JSON nested too deeply to read.", status=status
        ) from None
    except UnicodeDecodeError:
        raise InvalidResponseError(
            f"{what} answered {status} with a body that is not UTF-8 text.", status=status
        ) from None
    except ValueError as exc:  # JSONDecodeError, an integer with too many digits
        snippet = shorten(body[:400].decode("utf-8", "replace"))
        raise InvalidResponseError(
            f"{what} answered {status} but not with JSON ({shorten(str(exc), 80)}): {snippet!r}",
            status=status,
        ) from None


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python accepts them by default and they compare unequal
    # to themselves, which would make a plan never settle.
    raise ValueError(f"{name} is not a JSON value")


@dataclass
class ListingBudget:
    """The bytes one listing has brought so far, across its pages, against ``limit``."""

    what: str
    limit: int = MAX_LISTING_BYTES
    spent: int = field(default=0)
    pages: int = field(default=0)

    def spend(self, size: int) -> None:
        """Count one page of ``size`` bytes; ``InvalidResponseError`` once over the limit."""
        self.spent += size
        self.pages += 1
        if self.spent > self.limit:
            raise InvalidResponseError(
                f"{self.what}: the listing's {self.pages:,} pages add up to {self.spent:,} "
                f"bytes, more than the {self.limit:,}-byte bound for one listing; "
                "refusing to hold more."
            )


def try_decode_json(body: bytes) -> Any:
    """The JSON value of ``body``, or None when it is not JSON we can hold (for error bodies)."""
    try:
        return decode_json(body, "", 0)
    except InvalidResponseError:
        return None


@dataclass(frozen=True)
class ListingPage:
    """One page of a listing: its raw items and what its ``pagination`` says (None: absent)."""

    items: list[Any]
    total: int | None
    limit: int | None
    offset: int | None


def listing_page(data: Any, key: str, what: str, *, offset: int, limit: int) -> ListingPage:
    """Check one listing page's shape and its ``pagination``; return its parts.

    ``key`` is the list's name (``aois``, ``visualization``); ``offset`` and ``limit`` what
    was asked for.
    A ``null`` list is an empty one (Go services send that); a missing one is an error.
    """
    if not isinstance(data, dict):
        raise InvalidResponseError(
            f"{what}: the answer is {json_kind(data)}, not a JSON object with '{key}'."
        )
    if key not in data:
        keys = sorted(str(k) for k in data)
        close = difflib.get_close_matches(key, keys, n=1)
        hint = f" (it has '{close[0]}': misspelt?)" if close else ""
        found = ", ".join(f"'{k}'" for k in keys[:8]) or "no keys at all"
        raise InvalidResponseError(
            f"{what}: the answer has no '{key}' list{hint}; it has {found}. "
            "Refusing to read it as an empty listing."
        )
    items = data[key]
    if items is None:
        items = []
    if not isinstance(items, list):
        raise InvalidResponseError(f"{what}: '{key}' is {json_kind(items)}, not a list.")
    if len(items) > limit:
        raise InvalidResponseError(
            f"{what}: asked for at most {limit} items, the answer has {len(items):,}."
        )
    pagination = data.get("pagination")
    if pagination is None:
        return ListingPage(items, None, None, None)
    if not isinstance(pagination, dict):
        raise InvalidResponseError(
            f"{what}: 'pagination' is {json_kind(pagination)}, not an object."
        )
    total = _count(pagination, "total", what)
    page_limit = _count(pagination, "limit", what)
    page_offset = _count(pagination, "offset", what)
    if page_offset is not None and page_offset != offset:
        raise InvalidResponseError(
            f"{what}: asked for offset {offset}, the answer says offset {page_offset}; "
            "an API that ignores the offset would page forever."
        )
    if total is not None and offset + len(items) > total:
        raise InvalidResponseError(
            f"{what}: 'pagination.total' is {total}, but this page alone reaches item "
            f"{offset + len(items)}."
        )
    return ListingPage(items, total, page_limit, page_offset)


def _count(pagination: dict[str, Any], name: str, what: str) -> int | None:
    value = pagination.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidResponseError(
            f"{what}: 'pagination.{name}' is {json_kind(value)}, not a whole number >= 0."
        )
    return value


def validation_summary(exc: ValidationError) -> str:
    """The first problems of a pydantic error, without echoing input values."""
    errors = exc.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more
