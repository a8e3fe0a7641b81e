"""Read the live state the specs refer to, with the fewest requests the API allows.

One paginated AOI listing (only of the selected projects when every declaration is a selector
by project) and one paginated index listing, shared by every AOI and selector; then, per
targeted AOI and in parallel, one visualization listing, plus an asset listing only where the
specs need it (names, dates or omitted assets; or ids of a visualization that must be created
and that no listed visualization of the AOI shows).
Reading never changes anything; what it returns is plain data (``observed``) that the pure
resolver and planner take from here.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from reconciler.api.client import PixxelClient
from reconciler.api.legends import Legend
from reconciler.api.listing import PageMap
from reconciler.api.types import Aoi, Asset, Visualization
from reconciler.core import resolve, selectors
from reconciler.core.legends import Reads
from reconciler.core.observed import Observed, ObservedAoi, UnreadableAoi
from reconciler.core.resolve import Selection
from reconciler.core.shards import Shard
from reconciler.errors import (
    ApiValidationError,
    ForbiddenError,
    InvalidResponseError,
    NotFoundError,
)
from reconciler.run.events import Listener, Refreshed, ignore
from reconciler.spec.decls import AoiDecl, SelectorDecl, Specs
from reconciler.spec.fields import looks_like_uuid

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Pool:
    """A thread pool that reports progress as each request completes."""

    def __init__(self, parallelism: int, listener: Listener) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, parallelism), thread_name_prefix="refresh"
        )
        self._listener = listener
        self._lock = threading.Lock()
        self._done = 0
        self._submitted = 0

    def submit(self, label: str, fn: Callable[[], T]) -> Future[T]:
        with self._lock:
            self._submitted += 1

        def run() -> T:
            result = fn()
            with self._lock:
                self._done += 1
                done, total = self._done, self._submitted
            self._listener(Refreshed(done, total, label))
            return result

        return self._executor.submit(run)

    def pages(self, label: str) -> PageMap:
        """A ``pages`` for the client's listings: reads pages in the pool, in offset order.

        Only for a listing read on a thread that is not one of the pool's workers (waiting
        there for the pool could wait for ever).
        """

        def read(page: Callable[[int], list[Any]], offsets: Sequence[int]) -> list[list[Any]]:
            futures = [
                self.submit(f"{label} (from {at})", _bind_offset(page, at)) for at in offsets
            ]
            return [future.result() for future in futures]

        return read

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        # On an error (or Ctrl-C), do not wait for queued requests to run: cancel them.
        self._executor.shutdown(wait=True, cancel_futures=exc[0] is not None)


def _visualizations(
    client: PixxelClient,
    aoi_id: str,
    decls: Sequence[AoiDecl],
    lookup: resolve.IndexLookup,
    may_need_assets: bool,
) -> Callable[[], tuple[list[Visualization], list[Asset] | None]]:
    """Read an AOI's visualizations and, if one that must be created needs them, its assets.

    Ids in the specs need the asset listing only when no listed visualization shows them (see
    ``resolve.needs_assets_for_creates``).

    Read one after the other in the same task: the assets are needed only when what is
    listed lacks a declared visualization, and waiting for every AOI's listing before
    reading any assets would add a round trip for nothing.
    """

    def read() -> tuple[list[Visualization], list[Asset] | None]:
        visualizations = client.list_visualizations(aoi_id)
        if may_need_assets and resolve.needs_assets_for_creates(decls, lookup, visualizations):
            return visualizations, client.list_assets(aoi_id)
        return visualizations, None

    return read


def refresh(
    specs: Specs,
    client: PixxelClient,
    *,
    targets: Sequence[str] = (),
    also: Sequence[SelectorDecl] = (),
    also_named: Sequence[str] = (),
    limited: bool = False,
    shard: Shard | None = None,
    parallelism: int = 8,
    listener: Listener = ignore,
) -> tuple[Selection, Observed]:
    """Read what the specs refer to: which AOIs they select, and what those AOIs hold.

    ``targets`` limit the AOIs read (none: all), and so does ``limited``: then the AOIs the
    selectors ``also`` match, and those named ``also_named``, are added to the targets where
    the specs declare them, and with no target at all no AOI is read (a plan of changed custom
    indices only). A few targets written as plain names or
    ids in specs without selectors are looked up one by one rather than through the whole
    AOI listing (``_looked_up``). With a ``shard``, only that shard's AOIs are read.

    An AOI whose visualizations or assets the API refuses to show (403) is left out of the
    selection and told in ``Observed.unreadable``; the others are read as ever. Raises
    ``ApiError`` when the API cannot be read otherwise, ``ConfigError`` for a ``--target``
    that matches no declared AOI.
    """
    if specs.is_empty:
        return Selection({}), Observed()
    if limited and not targets and not also and not also_named:
        return Selection({}, indices=specs.indices), Observed(indices=tuple(client.list_indices()))
    projects = selectors.listing_projects(specs)
    with _Pool(parallelism, listener) as pool:
        indices_f = pool.submit("indices", client.list_indices)
        found = _looked_up(client, specs, targets, pool) if not (also or also_named) else None
        # Here, not in the pool: its first page says how many more there are, and those are
        # read in the pool at once.
        aois = (
            found
            if found is not None
            else tuple(client.list_aois(project_ids=projects, pages=pool.pages("AOIs")))
        )
        indices = tuple(indices_f.result())
        filtered = projects is not None
        if also or also_named:
            # Every declared AOI resolved (the listing is read anyway), then only those named:
            # an AOI nothing declares any more is no target, and no error either.
            selection = resolve.select_aois(specs, aois, (), filtered=filtered)
            wanted = set(targets) | set(also_named)
            wanted |= {a.id for s in also for a in selectors.match(s, aois).matched}
            groups = {
                aoi_id: (aoi, decls)
                for aoi_id, (aoi, decls) in selection.groups.items()
                if {aoi_id, aoi.name, *(d.label for d in decls)} & wanted
            }
            selection = dataclasses.replace(selection, groups=groups)
        elif limited and not targets:
            return Selection({}, indices=specs.indices), Observed(indices=indices)
        else:
            selection = resolve.select_aois(specs, aois, targets, filtered=filtered)
        if shard is not None:
            selection = selection.in_shard(shard)
        lookup = resolve.IndexLookup(indices, specs.indices)

        viz_f: dict[str, Future[tuple[list[Visualization], list[Asset] | None]]] = {}
        assets_f: dict[str, Future[list[Asset]]] = {}
        for aoi_id, (aoi, decls) in selection.groups.items():
            if resolve.needs_asset_listing(decls):
                assets_f[aoi_id] = pool.submit(
                    f"assets of {aoi.name}", _bind(client.list_assets, aoi_id)
                )
            viz_f[aoi_id] = pool.submit(
                f"visualizations of {aoi.name}",
                _visualizations(client, aoi_id, decls, lookup, aoi_id not in assets_f),
            )
        visualizations: dict[str, list[Visualization]] = {}
        assets: dict[str, list[Asset]] = {}
        # A 403 on one AOI is that AOI's failure, not the plan's: the others are planned.
        refused: dict[str, ForbiddenError] = {}
        for aoi_id, future in viz_f.items():
            try:
                visualizations[aoi_id], later = future.result()
            except ForbiddenError as exc:
                refused[aoi_id] = exc
                continue
            if later is not None:
                assets[aoi_id] = later
        for aoi_id, assets_future in assets_f.items():
            try:
                assets[aoi_id] = assets_future.result()
            except ForbiddenError as exc:
                refused.setdefault(aoi_id, exc)

    unreadable = []
    for aoi_id, refusal in refused.items():
        aoi, decls = selection.groups[aoi_id]
        log.warning("AOI %s (%s) could not be read: %s", aoi.name, aoi_id, refusal)
        where = str(decls[0].where) if decls else None
        unreadable.append(UnreadableAoi(aoi, str(refusal), where))
    if refused:
        groups = {k: v for k, v in selection.groups.items() if k not in refused}
        selection = dataclasses.replace(selection, groups=groups)
    by_aoi = {
        aoi_id: ObservedAoi(
            aoi=aoi,
            visualizations=tuple(visualizations[aoi_id]),
            assets=tuple(assets[aoi_id]) if aoi_id in assets else None,
        )
        for aoi_id, (aoi, _) in selection.groups.items()
    }
    log.info(
        "refreshed %d AOIs (%d with assets), %d indices", len(by_aoi), len(assets), len(indices)
    )
    observed = Observed(aois=aois, indices=indices, by_aoi=by_aoi, unreadable=tuple(unreadable))
    return selection, observed


#: Up to this many targets are looked up one by one; more read the AOI listing.
MAX_LOOKUPS = 25


def _looked_up(
    client: PixxelClient, specs: Specs, targets: Sequence[str], pool: _Pool
) -> tuple[Aoi, ...] | None:
    """The targeted AOIs, each read with the listing's name or id filter: a plan of 3 AOIs of
    10,000 then reads 3 AOIs, not 100 pages. None when the whole listing is needed instead:
    no targets or too many, selectors (they match by patterns and projects), a target that
    is neither an entry's name or id as written nor an AOI id (a saved plan's), or one that
    the filter does not find exactly once (the listing then says why, with the names it
    knows).

    An AOI found by id that an entry names is looked up by that name too: the whole listing
    would tell if two AOIs had that name, and so must this.
    """
    if not targets or len(targets) > MAX_LOOKUPS or specs.selectors:
        return None
    by_label = {aoi.label: aoi for aoi in specs.aois}
    by_id = {
        t for t in targets if (by_label[t].id is not None if t in by_label else looks_like_uuid(t))
    }
    if any(t not in by_label and t not in by_id for t in targets):
        return None
    found = _exactly_one(client, pool, targets, by_id)
    if found is None:
        return None
    named = {a.name for a in found if a.name in by_label and a.name not in targets}
    if named and _exactly_one(client, pool, sorted(named), set()) is None:
        return None
    return found


def _exactly_one(
    client: PixxelClient, pool: _Pool, wanted: Sequence[str], by_id: set[str]
) -> tuple[Aoi, ...] | None:
    """The AOI of each name or id (``by_id``) in ``wanted``, or None if one is not found
    exactly once."""
    futures = {
        key: pool.submit(
            f"AOI {key}",
            partial(client.list_aois, aoi_id=key)
            if key in by_id
            else partial(client.list_aois, name=key),
        )
        for key in wanted
    }
    found: dict[str, Aoi] = {}
    for key, future in futures.items():
        # The API's filter may match loosely: only the exact name or id counts.
        exact = [a for a in future.result() if key in (a.id, a.name)]
        if len(exact) != 1:
            return None
        found.setdefault(exact[0].id, exact[0])
    return tuple(found.values())


def read_legends(
    client: PixxelClient,
    reads: Reads,
    *,
    parallelism: int = 8,
    listener: Listener = ignore,
) -> dict[str, dict[str, dict[str, Legend]]]:
    """Read back the legends ``reads`` names (``core.legends.legends_to_read``), one SLD call
    per visualization, in parallel: visualization id -> mode -> ISO date -> legend.

    A visualization whose legends the API will not show (it answers 400, 403 or 404, or
    something we cannot read) is left out, with a warning: the plan then treats its legends
    as it always has when ``updated_at`` moved, and plans them again.
    """
    if not reads:
        return {}
    found: dict[str, dict[str, dict[str, Legend]]] = {}
    with _Pool(parallelism, listener) as pool:
        futures = {
            viz_id: pool.submit(
                f"legends of {viz_id}",
                partial(client.read_sld, aoi_id, viz_id, modes=modes, dates=dates),
            )
            for viz_id, (aoi_id, modes, dates) in reads.items()
        }
        for viz_id, future in futures.items():
            try:
                found[viz_id] = future.result()
            except (
                ApiValidationError,
                ForbiddenError,
                NotFoundError,
                InvalidResponseError,
            ) as exc:
                log.warning(
                    "the legends of visualization %s could not be read back, so the plan "
                    "takes them as changed: %s",
                    viz_id,
                    exc,
                )
    log.info("read back the legends of %d visualizations", len(found))
    return found


def read_account(
    client: PixxelClient,
    pick: Callable[[Sequence[Aoi]], Sequence[Aoi]],
    *,
    with_assets: bool,
    refs: Sequence[str] | None = None,
    parallelism: int = 8,
    listener: Listener = ignore,
) -> Observed:
    """Read the AOIs ``pick`` chooses from the AOI listing, for ``reconciler export``.

    One AOI listing and one index listing; then per chosen AOI its visualizations and, with
    ``with_assets``, its assets (only for AOIs that have visualizations), all in parallel,
    reporting progress to ``listener``. ``pick`` may raise (an ``--aoi`` that matches none).

    ``refs`` (AOI ids or names): instead of the whole listing, only the AOIs they name, each
    found with the listing's ``aoi_id`` or ``aoi_name`` filter (``_named_aois``).
    """
    with _Pool(parallelism, listener) as pool:
        indices_f = pool.submit("indices", client.list_indices)
        if refs is None:
            aois: tuple[Aoi, ...] = tuple(client.list_aois(pages=pool.pages("AOIs")))
        else:
            aois = _named_aois(pool, client, refs, with_names=with_assets)
        indices = tuple(indices_f.result())
        chosen = list(pick(aois))
        viz_f = {
            aoi.id: pool.submit(
                f"visualizations of {aoi.name}", _bind(client.list_visualizations, aoi.id)
            )
            for aoi in chosen
        }
        visualizations = {aoi_id: f.result() for aoi_id, f in viz_f.items()}
        assets_f = {
            aoi.id: pool.submit(f"assets of {aoi.name}", _bind(client.list_assets, aoi.id))
            for aoi in chosen
            if with_assets and visualizations[aoi.id]
        }
        assets = {aoi_id: f.result() for aoi_id, f in assets_f.items()}
    by_aoi = {
        aoi.id: ObservedAoi(
            aoi=aoi,
            visualizations=tuple(visualizations[aoi.id]),
            assets=tuple(assets[aoi.id]) if aoi.id in assets else None,
        )
        for aoi in chosen
    }
    log.info("read %d AOIs for export (%d with assets)", len(by_aoi), len(assets))
    return Observed(aois=aois, indices=indices, by_aoi=by_aoi)


def _named_aois(
    pool: _Pool, client: PixxelClient, refs: Sequence[str], *, with_names: bool
) -> tuple[Aoi, ...]:
    """The AOIs ``refs`` name, and every AOI of their names; one filtered request per ref.

    An id-like ref is looked up by id first, then by name like any other; the API's name
    filter is trusted to narrow the listing, not to match exactly, so matches are checked
    here. ``with_names``: an AOI found by id also brings the others of its name (references
    by name need to know that it is unique). A ref that finds nothing brings the whole
    listing instead, for the error's closest names.
    """

    def find(ref: str) -> list[Aoi]:
        if looks_like_uuid(ref):
            found = [a for a in client.list_aois(aoi_id=ref) if a.id == ref]
            if found:
                return found
        return [a for a in client.list_aois(name=ref) if a.name == ref]

    per_ref = [pool.submit(f"AOI {ref}", partial(find, ref)) for ref in refs]
    found = {a.id: a for f in per_ref for a in f.result()}
    if any(not f.result() for f in per_ref):
        return tuple(pool.submit("AOIs", client.list_aois).result())
    if with_names:
        names = sorted({a.name for a in found.values()} - set(refs))
        same_f = [
            pool.submit(f"AOIs named {name}", partial(client.list_aois, name=name))
            for name in names
        ]
        found.update({a.id: a for f in same_f for a in f.result() if a.name in names})
    return tuple(found.values())


def _bind_offset(page: Callable[[int], list[T]], offset: int) -> Callable[[], list[T]]:
    return lambda: page(offset)


def _bind(read: Callable[[str], list[T]], aoi_id: str) -> Callable[[], list[T]]:
    return lambda: read(aoi_id)
