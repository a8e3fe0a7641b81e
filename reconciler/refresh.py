"""Read the live state the specs refer to, with the fewest requests the API allows.

One paginated AOI listing and one paginated index listing, shared by every AOI; then, per
targeted AOI and in parallel, one visualization listing, plus an asset listing only where the
specs need it (names, dates or omitted assets; or ids of a visualization that must be created).
Reading never changes anything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reconciler import resolve
from reconciler.apitypes import Aoi, Asset, Index, Visualization
from reconciler.client import PixxelClient
from reconciler.errors import Problem
from reconciler.spec import AoiDecl, Specs

log = logging.getLogger(__name__)
T = TypeVar("T")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ObservedAoi:
    """What one AOI looks like now: its visualizations and, if they were needed, its assets."""

    aoi: Aoi
    decls: tuple[AoiDecl, ...]
    visualizations: tuple[Visualization, ...]
    assets: tuple[Asset, ...] | None

    def snapshot(self) -> dict[str, Any]:
        """Plain data to save in a plan and compare before apply (see ``describe_changes``)."""
        return {
            "name": self.aoi.name,
            "visualizations": {
                v.id: {
                    "index": v.index_name or v.index_id,
                    "assets": sorted(a.id for a in v.assets),
                    "status": v.status,
                    "updated_at": v.updated_at,
                }
                for v in sorted(self.visualizations, key=lambda v: v.id)
            },
            "assets": None
            if self.assets is None
            else {a.id: f"{a.name} {a.date}" for a in sorted(self.assets, key=lambda a: a.id)},
        }


@dataclass(frozen=True)
class Observed:
    """Everything a plan is computed from, besides the specs and the state file."""

    aois: tuple[Aoi, ...]
    indices: tuple[Index, ...]
    by_aoi: dict[str, ObservedAoi] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()  # AOI references that did not resolve


class _Pool:
    """A thread pool that reports progress as each request completes."""

    def __init__(self, parallelism: int, progress: Progress | None) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, parallelism), thread_name_prefix="refresh"
        )
        self._progress = progress
        self._lock = threading.Lock()
        self._done = 0
        self._submitted = 0

    def submit(self, label: str, fn: Callable[[], T]) -> Future[T]:
        with self._lock:
            self._submitted += 1

        def run() -> T:
            result = fn()
            if self._progress is not None:
                with self._lock:
                    self._done += 1
                    done, total = self._done, self._submitted
                self._progress(f"refreshed {done}/{total}: {label}")
            return result

        return self._executor.submit(run)

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        # On an error, do not wait for queued requests to run: cancel them.
        self._executor.shutdown(wait=True, cancel_futures=exc[0] is not None)


def refresh(
    specs: Specs,
    client: PixxelClient,
    *,
    targets: Sequence[str] = (),
    parallelism: int = 8,
    progress: Progress | None = None,
) -> Observed:
    """Read what the specs refer to. Raises ``ApiError`` when the API cannot be read."""
    if not specs.aois:
        return Observed(aois=(), indices=())
    with _Pool(parallelism, progress) as pool:
        aois_f = pool.submit("AOIs", client.list_aois)
        indices_f = pool.submit("indices", client.list_indices)
        aois, indices = tuple(aois_f.result()), tuple(indices_f.result())
        groups, problems = resolve.select_aois(specs, aois, targets)
        lookup = resolve.IndexLookup(indices)

        viz_f: dict[str, Future[list[Visualization]]] = {}
        assets_f: dict[str, Future[list[Asset]]] = {}
        for aoi_id, (aoi, decls) in groups.items():
            viz_f[aoi_id] = pool.submit(
                f"visualizations of {aoi.name}", lambda a=aoi_id: client.list_visualizations(a)
            )
            if resolve.needs_asset_listing(decls):
                assets_f[aoi_id] = pool.submit(
                    f"assets of {aoi.name}", lambda a=aoi_id: client.list_assets(a)
                )
        visualizations = {aoi_id: f.result() for aoi_id, f in viz_f.items()}

        # Ids only: the assets are needed after all if a visualization must be created.
        for aoi_id, (aoi, decls) in groups.items():
            if aoi_id not in assets_f and resolve.needs_assets_for_creates(
                decls, lookup, visualizations[aoi_id]
            ):
                assets_f[aoi_id] = pool.submit(
                    f"assets of {aoi.name}", lambda a=aoi_id: client.list_assets(a)
                )
        assets = {aoi_id: f.result() for aoi_id, f in assets_f.items()}

    by_aoi = {
        aoi_id: ObservedAoi(
            aoi=aoi,
            decls=tuple(decls),
            visualizations=tuple(visualizations[aoi_id]),
            assets=tuple(assets[aoi_id]) if aoi_id in assets else None,
        )
        for aoi_id, (aoi, decls) in groups.items()
    }
    log.info(
        "refreshed %d AOIs (%d with assets), %d indices", len(by_aoi), len(assets), len(indices)
    )
    return Observed(aois=aois, indices=indices, by_aoi=by_aoi, problems=tuple(problems))


def resolve_all(observed: Observed) -> tuple[list[resolve.DesiredVisualization], list[Problem]]:
    """Resolve every declared visualization of every observed AOI (``validate --online``)."""
    lookup = resolve.IndexLookup(observed.indices)
    desired: list[resolve.DesiredVisualization] = []
    problems = list(observed.problems)
    for seen in observed.by_aoi.values():
        found, more = resolve.resolve_visualizations(
            seen.aoi, seen.decls, lookup, seen.assets, seen.visualizations
        )
        desired.extend(found)
        problems.extend(more)
    return desired, problems
