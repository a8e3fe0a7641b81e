"""Applying a plan: create what is missing, adopt what a 409 says exists, wait until new
visualizations are usable, then roll legends back; record each success in the state file.

AOIs are worked on in parallel; within an AOI the order is fixed (creates, each waited for,
then rollbacks). One item failing does not stop the others unless ``fail_fast``. Every change
ends as exactly one ``ItemResult`` (created / adopted / rolled back / failed / skipped), so the
report always says what happened, also after Ctrl-C.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler.apitypes import Visualization
from reconciler.client import PixxelClient
from reconciler.errors import ApiError, ConflictError
from reconciler.events import ItemFinished, Listener, Stopping, Waiting, ignore
from reconciler.identity import Identity
from reconciler.plan import Create, Plan, Rollback
from reconciler.statestore import StateStore

log = logging.getLogger(__name__)

Outcome = Literal["created", "adopted", "rolled back", "failed", "skipped"]
OUTCOMES: tuple[Outcome, ...] = ("created", "adopted", "rolled back", "failed", "skipped")
REPORT_FORMAT_VERSION = 1


@dataclass(frozen=True)
class ItemResult:
    """How one change ended."""

    change: Literal["create", "rollback"]
    outcome: Outcome
    aoi_id: str
    aoi_name: str
    index_name: str
    message: str
    where: str
    visualization_id: str | None = None
    mode: str | None = None
    dates: tuple[str, ...] = ()
    status: str | None = None  # the visualization's final status, for creates

    @property
    def ok(self) -> bool:
        return self.outcome in ("created", "adopted", "rolled back")

    def to_dict(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "outcome": self.outcome,
            "aoi_id": self.aoi_id,
            "aoi_name": self.aoi_name,
            "index_name": self.index_name,
            "visualization_id": self.visualization_id,
            "mode": self.mode,
            "dates": list(self.dates),
            "status": self.status,
            "message": self.message,
            "where": self.where,
        }


@dataclass
class ApplyResult:
    """Everything apply did, in plan order; ``to_dict()`` is the ``--report`` JSON."""

    api_url: str
    started_at: str
    finished_at: str = ""
    items: list[ItemResult] = field(default_factory=list)
    interrupted: bool = False
    stopped_early: bool = False  # --fail-fast or --timeout stopped it
    stop_reason: str = ""  # why it stopped early or was interrupted
    #: Why the state could not be saved after the changes (they happened; the records wait in
    #: the local journal), or "" when it was saved.
    state_error: str = ""

    @property
    def ok(self) -> bool:
        # Stopped early (--fail-fast, --timeout): what was not done is not ok either.
        return (
            not self.interrupted
            and not self.stopped_early
            and not self.state_error
            and all(i.ok for i in self.items)
        )

    def counts(self) -> dict[str, int]:
        return {outcome: sum(i.outcome == outcome for i in self.items) for outcome in OUTCOMES}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": REPORT_FORMAT_VERSION,
            "ok": self.ok,
            "interrupted": self.interrupted,
            "stopped_early": self.stopped_early,
            "stop_reason": self.stop_reason,
            "state_error": self.state_error,
            "api_url": self.api_url,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "summary": self.counts(),
            "items": [item.to_dict() for item in self.items],
        }


class _Stopped(Exception):
    """Raised inside a worker when a stop was requested; never escapes ``Applier.apply``."""


def now() -> str:
    """The current UTC time as the report writes it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Applier:
    """Carries out a plan against the API and records what it did in the state file.

    ``wait_timeout`` bounds the wait for one new visualization to leave ``creating``;
    polling starts at ``poll_interval`` seconds and slows down to at most 10 s.
    """

    def __init__(
        self,
        client: PixxelClient,
        store: StateStore,
        *,
        parallelism: int = 8,
        wait_timeout: float = 600.0,
        poll_interval: float = 1.0,
        fail_fast: bool = False,
        listener: Listener = ignore,
    ) -> None:
        self._client = client
        self._store = store
        self._parallelism = max(1, parallelism)
        self._wait_timeout = wait_timeout
        self._poll_interval = poll_interval
        self._fail_fast = fail_fast
        self._listener = listener
        self._total = 0
        self._stop = threading.Event()
        self._stop_reason = ""
        self._lock = threading.Lock()
        self._results: dict[int, list[ItemResult]] = {}
        # The updated_at each visualization had before our next PATCH (see StateStore).
        self._known_updated_at: dict[str, str] = {}

    def request_stop(self, reason: str) -> None:
        """Start no new work; requests in flight finish (they are bounded by timeouts)."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    def apply(self, plan: Plan) -> ApplyResult:
        """Apply every change of ``plan``. Ctrl-C stops cleanly and returns what was done.

        So does a ``KeyboardInterrupt`` raised in this thread for another reason (the CLI
        raises one for SIGTERM and SIGHUP); its message becomes the reason given for skipped
        changes.
        """
        result = ApplyResult(api_url=plan.api_url, started_at=now())
        changes = list(plan.changes)
        by_aoi: dict[str, list[tuple[int, Create | Rollback]]] = {}
        for position, change in enumerate(changes):
            by_aoi.setdefault(change.aoi_id, []).append((position, change))
        self._total = len(changes)
        observed = {
            viz_id: viz
            for snapshot in plan.observed.values()
            for viz_id, viz in snapshot.visualizations.items()
        }
        creating = {viz_id for viz_id, viz in observed.items() if viz.status == "creating"}
        self._known_updated_at = {
            viz_id: viz.updated_at for viz_id, viz in observed.items() if viz.updated_at
        }
        executor = ThreadPoolExecutor(max_workers=self._parallelism, thread_name_prefix="apply")
        futures = [executor.submit(self._run_aoi, items, creating) for items in by_aoi.values()]
        try:
            while True:
                done, pending = wait(futures, timeout=0.2, return_when=FIRST_EXCEPTION)
                if not pending or any(f.exception() for f in done):
                    break
        except KeyboardInterrupt as exc:
            # The CLI turns SIGTERM and SIGHUP into a KeyboardInterrupt that names the signal.
            result.interrupted = True
            self.request_stop(str(exc) or "interrupted (Ctrl-C)")
            self._listener(Stopping(self._stop_reason))
        finally:
            executor.shutdown(wait=True)
        for future in futures:
            error = future.exception()
            if error is not None:  # a bug, not an API error: those become failed items
                raise error
        result.stopped_early = self._stop.is_set() and not result.interrupted
        result.stop_reason = self._stop_reason
        result.items = [
            item for position in sorted(self._results) for item in self._results[position]
        ]
        result.finished_at = now()
        return result

    # --- per AOI ---------------------------------------------------------------------------

    def _run_aoi(self, items: Sequence[tuple[int, Create | Rollback]], creating: set[str]) -> None:
        ready: set[str] = set()
        for position, change in items:
            if self._stop.is_set():
                self._record(position, self._skipped(change))
                continue
            try:
                if isinstance(change, Create):
                    self._record_many(position, self._create(change))
                else:
                    if change.visualization_id in creating and change.visualization_id not in ready:
                        label = f"{change.index_name} on {change.aoi_name}"
                        self._ready(change.aoi_id, change.visualization_id, label)
                        ready.add(change.visualization_id)
                    self._record(position, self._rollback(change))
            except (ApiError, TimeoutError) as exc:
                message = f"waiting until it is usable: {exc}"
                self._record(position, _item(change, "failed", message))
            except _Stopped:
                self._record(position, self._skipped(change))

    def _record(self, position: int, item: ItemResult) -> None:
        self._record_many(position, [item])

    def _record_many(self, position: int, items: list[ItemResult]) -> None:
        with self._lock:
            self._results[position] = items
            # Under the lock, so listeners see the counts rise in order.
            done = len(self._results)
            for item in items:
                self._listener(ItemFinished(item, done, self._total))
        for item in items:
            if item.outcome == "failed" and self._fail_fast:
                self.request_stop("--fail-fast: stopped after the first failure")

    def _skipped(self, change: Create | Rollback) -> ItemResult:
        return _item(change, "skipped", f"not started: {self._stop_reason}")

    # --- create ----------------------------------------------------------------------------

    def _create(self, change: Create) -> list[ItemResult]:
        label = f"{change.index_name} on {change.aoi_name}"
        outcome: Outcome = "created"
        try:
            detail = self._client.create_visualization(
                change.aoi_id,
                change.index_id,
                src_asset_ids=change.asset_ids,
                resolution=change.resolution,
            )
            viz_id = detail.id
        except ConflictError as exc:
            try:
                found = self._find_existing(change)
            except ApiError as lookup:
                message = (
                    f"the API answered 409 ({exc.api_message or 'already exists'}), then looking "
                    f"the visualization up failed: {lookup}"
                )
                return [_item(change, "failed", message)]
            if found is None:
                return [
                    _item(
                        change,
                        "failed",
                        f"the API answered 409 ({exc.api_message or 'already exists'}) but no "
                        f"visualization of index {change.index_name} over these assets was found "
                        "on the AOI; nothing was changed",
                    )
                ]
            viz_id, outcome = found.id, "adopted"
            log.info("%s already exists as %s: adopting it", label, viz_id)
        except ApiError as exc:
            return [_item(change, "failed", str(exc))]

        try:
            viz = self._ready(change.aoi_id, viz_id, label)
        except ApiError as exc:
            return [_item(change, "failed", f"{outcome} as {viz_id}, then: {exc}", viz_id)]
        except TimeoutError as exc:
            return [_item(change, "failed", f"{outcome} as {viz_id}, but {exc}", viz_id)]
        except _Stopped:
            # It exists now: say so. Unrecorded, so the next plan checks its rollbacks.
            message = f"{outcome} as {viz_id}, but {self._stop_reason} before it was ready"
            return [_item(change, outcome, message, viz_id, status="creating")]
        if viz.status != "success":
            return [
                _item(
                    change,
                    "failed",
                    f"{outcome} as {viz_id}, but the API finished it as {viz.status}"
                    + ("" if viz.status == "partial_success" else "; it has no usable legends"),
                    viz_id,
                    status=viz.status,
                )
            ]
        if outcome == "created":
            dates = sorted({a.date for a in viz.assets})
            updated_at = viz.updated_at or ""
            self._store.record_fresh(
                viz_id,
                aoi_id=change.aoi_id,
                legends={mode: dates for mode in change.legend_modes},
                updated_at=updated_at,
            )
            # Its legends start auto-computed, which is what the declared rollbacks ask for:
            # record them at the declared revision, or the next plan would see revision 0
            # below the spec's and roll them back once more.
            for target in change.rollbacks:
                if target.revision > 0:
                    self._store.record_rollback(
                        viz_id,
                        aoi_id=change.aoi_id,
                        mode=target.mode,
                        dates=target.dates,
                        revision=target.revision,
                        updated_at=updated_at,
                        previous_updated_at=updated_at,
                    )
            return [_item(change, "created", f"created {viz_id}", viz_id, status=viz.status)]

        # Adopted: its legends may have been edited by hand, so the declared rollbacks run now.
        if viz.updated_at:
            with self._lock:
                self._known_updated_at[viz_id] = viz.updated_at
        results = [
            _item(
                change,
                "adopted",
                f"already present as {viz_id} (409): adopted, not created",
                viz_id,
                status=viz.status,
            )
        ]
        for target in change.rollbacks:
            if self._stop.is_set():
                raise _Stopped
            rollback = Rollback(
                aoi_id=change.aoi_id,
                aoi_name=change.aoi_name,
                visualization_id=viz_id,
                index_id=change.index_id,
                index_name=change.index_name,
                mode=target.mode,
                dates=target.dates,
                reason="adopted",
                detail="adopted through a 409",
                revision=target.revision,
                where=change.where,
            )
            results.append(self._rollback(rollback))
        return results

    def _find_existing(self, change: Create) -> Visualization | None:
        """The visualization a 409 refers to: same index, same set of source assets."""
        wanted = change.key
        for viz in self._client.list_visualizations(change.aoi_id, index_id=change.index_id):
            if Identity.of_visualization(viz) == wanted:
                return viz
        return None

    def _ready(self, aoi_id: str, viz_id: str, label: str) -> Visualization:
        """Poll (politely, bounded) until the visualization has left ``creating``."""
        deadline = time.monotonic() + self._wait_timeout
        interval = self._poll_interval
        while True:
            found = self._client.list_visualizations(aoi_id, visualization_id=viz_id)
            viz = next((v for v in found if v.id == viz_id), None)
            if viz is None:
                raise ApiError(f"visualization {viz_id} is not listed on its AOI any more")
            if viz.status != "creating":
                return viz
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"it was still creating after {self._wait_timeout:g} s (--wait-timeout); "
                    "run apply again later to finish"
                )
            self._listener(Waiting(label, viz_id, viz.progress))
            if self._stop.wait(min(interval, remaining)):
                raise _Stopped
            interval = min(interval * 1.5, 10.0)

    # --- rollback --------------------------------------------------------------------------

    def _rollback(self, change: Rollback) -> ItemResult:
        try:
            detail = self._client.rollback_metadata(
                change.aoi_id,
                change.visualization_id,
                index_id=change.index_id,
                mode=change.mode,
                dates=change.dates,
            )
            updated_at = detail.updated_at
            if not updated_at:  # not in the response: read it, the state needs it
                listed = self._client.list_visualizations(
                    change.aoi_id, visualization_id=change.visualization_id
                )
                updated_at = listed[0].updated_at if listed else None
        except ApiError as exc:
            return _item(change, "failed", str(exc))
        with self._lock:
            previous = self._known_updated_at.get(change.visualization_id)
            if updated_at:
                self._known_updated_at[change.visualization_id] = updated_at
        self._store.record_rollback(
            change.visualization_id,
            aoi_id=change.aoi_id,
            mode=change.mode,
            dates=change.dates,
            revision=change.revision,
            updated_at=updated_at or "",
            previous_updated_at=previous,
        )
        return _item(change, "rolled back", "auto-computed again")


def _item(
    change: Create | Rollback,
    outcome: Outcome,
    message: str,
    visualization_id: str | None = None,
    *,
    status: str | None = None,
) -> ItemResult:
    common: dict[str, Any] = {
        "outcome": outcome,
        "aoi_id": change.aoi_id,
        "aoi_name": change.aoi_name,
        "index_name": change.index_name,
        "message": message,
        "where": change.where,
    }
    if isinstance(change, Rollback):
        return ItemResult(
            change="rollback",
            visualization_id=change.visualization_id,
            mode=change.mode,
            dates=change.dates,
            **common,
        )
    return ItemResult(change="create", visualization_id=visualization_id, status=status, **common)
