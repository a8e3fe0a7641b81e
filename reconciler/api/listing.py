"""Reading a listing: every page to the end, and the whole listing or an error naming it.

A listing is paged with ``offset`` and ``limit`` until ``pagination.total`` (or a short page
without one); pages may be read at once through a ``PageMap``. One read of it must be
consistent: each id once (two sightings that agree are one item), and as many items as every
page's ``total`` said. Data that moves while it is paged can break that; such a listing is
read again, and one that stays inconsistent is an ``InvalidResponseError`` naming it, never a
listing with an item missing (which would plan a create of what exists, or drop what it needs).

Requests go through the client's one call (``Request``); nothing here knows the API key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from reconciler.api.responses import (
    LISTING_READS,
    ListingBudget,
    ListingPage,
    listing_page,
    validation_summary,
)
from reconciler.api.types import parse_listing
from reconciler.errors import InvalidResponseError
from reconciler.text import shorten

__all__ = ["Listings", "PageMap", "Request"]

# Logged under the client's name: a re-read reads as part of the calls it repeats.
log = logging.getLogger("reconciler.api.client")

M = TypeVar("M", bound="_Listed")


class _Listed(Protocol):
    """What a listing's items have in common: the id that deduplicates pages."""

    @property
    def id(self) -> str: ...


#: Runs a page reader over page offsets, concurrently, and returns the pages in offset order
#: (``ThreadPoolExecutor.map`` does): see ``PixxelClient.list_aois``.
PageMap = Callable[[Callable[[int], list[Any]], Sequence[int]], Iterable[list[Any]]]


class Request(Protocol):
    """The client's one call (``PixxelClient._request``): a GET's decoded JSON body."""

    def __call__(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        budget: ListingBudget | None = None,
    ) -> Any: ...


class Listings:
    """Reads listings through ``request``, ``page_size`` items a page, at most ``max_pages``."""

    def __init__(self, request: Request, *, page_size: int, max_pages: int) -> None:
        self._request = request
        self.page_size = page_size
        self.max_pages = max_pages

    def read(
        self,
        path: str,
        key: str,
        item_type: type[M],
        params: Mapping[str, Any] | None = None,
        *,
        pages: PageMap | None = None,
    ) -> list[M]:
        """Every item of the listing at ``path`` (its list named ``key``), each id once.

        A read of the listing must be consistent (``_distinct``): an item that two pages show
        is kept once, but two sightings that differ, pages that disagree on
        ``pagination.total``, or distinct items that fall short of it mean the pages moved
        under the read, and an item may be missing. Such a listing is read again, up to
        ``LISTING_READS`` times; if no read is consistent it is an ``InvalidResponseError``
        naming the listing: a missing item would plan a create of what exists, or drop what
        it needs.
        """
        listing = _listing_name(path, params)
        problem = ""
        for read in range(1, LISTING_READS + 1):
            items, totals = self._read_listing(path, key, item_type, params, pages)
            kept, problem = _distinct(items, totals)
            if not problem:
                return kept
            log.info(
                "%s: %s; reading it again (read %d of %d)",
                listing,
                problem,
                read + 1,
                LISTING_READS,
            )
        raise InvalidResponseError(
            f"{listing}: the listing could not be read consistently in {LISTING_READS} reads: "
            f"{problem}. Reading it as it is could miss an item; try again later."
        )

    def _read_listing(
        self,
        path: str,
        key: str,
        item_type: type[M],
        params: Mapping[str, Any] | None,
        pages: PageMap | None,
    ) -> tuple[list[M], list[int]]:
        """One read of a listing: every page's items in order, and the totals the pages gave.

        Pages follow ``pagination.total``; the next offset advances by the items received and
        the limit shrinks to what the API says it allows. An empty page ends the read even if
        ``total`` promised more, so a shrinking listing cannot loop forever. Each page's
        shape is checked (``reconciler.api.responses.listing_page``): a page without its list, or
        with an impossible ``pagination``, is an error naming the call, never an empty page.

        With ``pages``, a first page that is full and says how many items there are lets the
        other pages be read at once, through ``pages``; if one of them comes back short
        before the end (the listing moved), the rest is read one page after the other from
        there, as without ``pages``.
        """
        shared: dict[Any, Any] = {}  # across the pages of this listing (parse_listing)

        def parse_items(page_items: Any) -> list[M]:
            return parse_listing(item_type, page_items, shared)

        items: list[M] = []
        totals = _Totals()
        offset, limit = 0, self.page_size
        # Pages read at once spend the one budget from several threads.
        budget = (_SharedBudget if pages is not None else ListingBudget)(f"GET {path}")
        for _ in range(self.max_pages):
            parsed, page = self._page(path, key, parse_items, params, offset, limit, budget)
            totals.add(page.total)
            if not parsed:
                break
            items.extend(parsed)
            offset += len(parsed)
            if page.limit is not None and 0 < page.limit < limit:
                limit = page.limit
            if page.total is not None:
                if offset >= page.total:
                    break
                self._check_reachable(path, page.total, limit)
                if pages is not None and len(parsed) == limit:
                    offset = self._read_ahead(
                        pages,
                        path,
                        key,
                        parse_items,
                        params,
                        offset,
                        limit,
                        page.total,
                        items,
                        budget,
                        totals,
                    )
                    pages = None  # at most once: what is left, if anything, goes in order
                    if offset >= page.total:
                        break
            elif len(parsed) < limit:
                break  # no total: a short page is the last one
        else:
            raise InvalidResponseError(
                f"GET {path} did not end after {self.max_pages:,} pages ({len(items):,} items); "
                "giving up. The API keeps returning pages: is it ignoring the offset?"
            )
        return items, totals.seen()

    def _page(
        self,
        path: str,
        key: str,
        parse_items: Callable[[Any], list[M]],
        params: Mapping[str, Any] | None,
        offset: int,
        limit: int,
        budget: ListingBudget,
    ) -> tuple[list[M], ListingPage]:
        """One page of a listing, its shape checked and its items validated."""
        query = {**(params or {}), "offset": offset, "limit": limit}
        data = self._request("GET", path, params=query, budget=budget)
        what = f"GET {path} (offset {offset})"
        page = listing_page(data, key, what, offset=offset, limit=limit)
        try:
            return parse_items(page.items), page
        except ValidationError as exc:
            raise InvalidResponseError(
                f"The API's answer to {what} has unexpected '{key}': {validation_summary(exc)}"
            ) from None

    def _read_ahead(
        self,
        pages: PageMap,
        path: str,
        key: str,
        parse_items: Callable[[Any], list[M]],
        params: Mapping[str, Any] | None,
        offset: int,
        limit: int,
        total: int,
        items: list[M],
        budget: ListingBudget,
        totals: _Totals,
    ) -> int:
        """Read the pages from ``offset`` to ``total`` at once into ``items`` (and the totals
        they give into ``totals``).

        Returns where the listing is to go on in order: ``total`` when every page but the
        last was full, else just after the first page that came back short.
        """
        offsets = list(range(offset, total, limit))

        def read_page(at: int) -> list[M]:
            parsed, page = self._page(path, key, parse_items, params, at, limit, budget)
            totals.add(page.total)
            return parsed

        read = pages(read_page, offsets)
        resume = total
        for at, parsed in zip(offsets, read, strict=True):
            items.extend(parsed)
            if resume == total and len(parsed) < min(limit, total - at):
                resume = at + len(parsed)
        return resume

    def _check_reachable(self, path: str, total: int, limit: int) -> None:
        """Refuse up front a listing whose ``total`` needs more than ``max_pages`` pages."""
        pages = -(-total // limit)
        if pages > self.max_pages:
            raise InvalidResponseError(
                f"GET {path} reports {total:,} items: {pages:,} pages of {limit}, more than the "
                f"{self.max_pages:,}-page bound of one listing; refusing to read it."
            )


@dataclass
class _SharedBudget(ListingBudget):
    """A listing's byte budget that pages read at once can spend from several threads."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def spend(self, size: int) -> None:
        with self._lock:
            super().spend(size)


class _Totals:
    """The ``pagination.total`` of each page of one read, from however many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[int] = []

    def add(self, total: int | None) -> None:
        if total is not None:
            with self._lock:
                self._seen.append(total)

    def seen(self) -> list[int]:
        with self._lock:
            return list(self._seen)


def _distinct(items: Sequence[M], totals: Sequence[int]) -> tuple[list[M], str]:
    """The items of one read of a listing, each id once, and what makes the read
    inconsistent ("" when nothing does).

    Two pages may show one item twice when the listing moves while it is paged; the read is
    still whole if both sightings agree and the distinct items add up to the total every page
    gave. Otherwise an item may have been missed (a page that repeats one item also misses
    another), and the read cannot be used.
    """
    first: dict[str, M] = {}
    differing: list[str] = []
    for item in items:
        seen = first.setdefault(item.id, item)
        if seen is not item and seen != item:
            differing.append(item.id)
    kept = list(first.values())
    if differing:
        return kept, (
            f"{_quoted(differing)} {'is' if len(differing) == 1 else 'are'} listed twice with "
            "different content"
        )
    distinct_totals = sorted(set(totals))
    if len(distinct_totals) > 1:
        shown = ", ".join(str(t) for t in distinct_totals)
        return kept, f"its pages disagree on 'pagination.total' ({shown})"
    if distinct_totals and len(kept) != distinct_totals[0]:
        total = distinct_totals[0]
        repeated = len(items) - len(kept)
        why = f", {repeated} of them listed twice" if repeated else ", the last page ended early"
        return kept, (
            f"'pagination.total' is {total}, but the pages hold {len(kept)} distinct "
            f"{'item' if len(kept) == 1 else 'items'}{why}"
        )
    return kept, ""


def _quoted(ids: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(f"'{shorten(i, 60)}'" for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _listing_name(path: str, params: Mapping[str, Any] | None) -> str:
    """``GET /v0/aois/…/visualizations?index_id=…``: the listing, with the filters it had."""
    filters = "&".join(f"{k}={v}" for k, v in (params or {}).items() if v is not None)
    return f"GET {path}" + (f"?{filters}" if filters else "")
