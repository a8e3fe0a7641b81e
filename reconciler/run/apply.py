"""Applying a plan: create what is missing, adopt what a 409 says exists, wait until new
visualizations are usable, then roll legends back; record each success in the state file.

AOIs are worked on in parallel, at most ``parallelism`` requests at a time. Within an AOI the
creates go first, then the rollbacks that need not wait; the new visualizations (and any that
were still creating at plan time) are then polled together, one listing of the AOI per poll,
and nothing touches one of them before it has left ``creating``. A wait holds no worker, so a
slow lifecycle on one AOI does not hold up the others. One item failing does not stop the
others unless ``fail_fast``; a refused key (401) stops every new call, since each would be
refused the same way. Every change ends as exactly one ``ItemResult`` (created / adopted /
rolled back / failed / skipped), so the report always says what happened, also after Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from reconciler.api.client import PixxelClient
from reconciler.api.types import FINAL_STATUSES, Visualization
from reconciler.core.identity import Identity
from reconciler.core.plan import AoiChange, Create, IndexCreate, LegendChange, Plan, Rollback
from reconciler.errors import (
    ApiError,
    ConflictError,
    InvalidResponseError,
    StateError,
    TransportError,
    UnauthorizedError,
)
from reconciler.run import metadata
from reconciler.run.events import ItemFinished, Listener, Stopping, Waiting, ignore
from reconciler.run.results import (
    ApplyResult,
    ItemResult,
    Outcome,
    index_item,
    item_of,
    now,
    status_text,
)
from reconciler.state.store import StateStore

log = logging.getLogger(__name__)

#: Polls of one AOI slow down by this factor each round, up to ``_MAX_POLL_INTERVAL`` seconds.
_POLL_BACKOFF = 1.5
_MAX_POLL_INTERVAL = 10.0
#: The scheduler wakes at least this often even with nothing to do: on Windows a blocked wait
#: does not see Ctrl-C.
_WAKE_INTERVAL = 0.5


@dataclass
class _Waiter:
    """A visualization apply waits for, and what to do once it is usable."""

    visualization_id: str
    label: str  # "NDWI on Bengaluru-North"
    deadline: float  # on the time.monotonic() clock
    #: The create that made or adopted it, and how an adoption came about ("": a 409).
    create: tuple[int, Create, Outcome, str] | None = None
    #: The plan's rollbacks and legend changes of it, held back until it is usable.
    rollbacks: list[tuple[int, Rollback | LegendChange]] = field(default_factory=list)
    status: str | None = None  # as last seen: creating, or a status outside the contract


@dataclass
class _AoiWork:
    """One AOI's share of the plan, and the visualizations it waits for.

    Only one task at a time works on an AOI (its start, then one poll after another), so this
    needs no lock.
    """

    aoi_id: str
    listed: int  # visualizations on the AOI: what one full listing returns (sizes the polls)
    creates: list[tuple[int, Create]] = field(default_factory=list)
    rollbacks: list[tuple[int, Rollback | LegendChange]] = field(default_factory=list)
    waiting: dict[str, _Waiter] = field(default_factory=dict)
    interval: float = 0.0  # seconds between this AOI's polls; 0 until the first poll
    next_poll: float = 0.0  # on the time.monotonic() clock


class Applier:
    """Carries out a plan against the API and records what it did in the state file.

    Every AOI's creates are sent first and its other rollbacks go ahead at once; the new
    visualizations are then waited for together, one listing of the AOI per poll, without
    holding a worker while they are being computed. ``wait_timeout`` bounds the wait for one
    new visualization to leave ``creating``; an AOI's polls start right away, then
    ``poll_interval`` seconds apart, slowing down to at most 10 s.
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
        self._creating: frozenset[str] = frozenset()  # not usable yet when the plan was made
        self._planned_status: dict[str, str | None] = {}
        # The updated_at each visualization had before our next PATCH (see StateStore).
        self._known_updated_at: dict[str, str] = {}
        self._confirmed_rows: dict[str, set[tuple[str, str]]] = {}
        self._state_error = ""  # the first failure to write a record (see _kept)
        self._key_refused = ""  # the first 401 (see _refused)
        # Stop signals not yet handled (``signal``); handled by the scheduling loop only.
        self._signals: list[str] = []
        self._wake: queue.SimpleQueue[object] = queue.SimpleQueue()

    def signal(self, reason: str) -> None:
        """A stop signal (Ctrl-C, SIGTERM, SIGHUP): safe to call from a signal handler.

        Only noted here, and handled by the loop: the first stops apply cleanly, a second
        one also gives up the last looks and cuts requests in flight.
        """
        self._signals.append(reason)
        self._wake.put(None)

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
        self._total = len(plan.all_changes)
        # Before anything is sent: whatever stops this apply, a kill too, leaves its AOIs marked
        # (saved at once: a remote state's journal is on a runner that may vanish).
        self._store.mark_pending({c.aoi_id: c.aoi_name for c in plan.changes})
        self._store.flush()
        index_ids = self._create_indices(plan.indices, result)
        changes = plan.changes
        work: dict[str, _AoiWork] = {}
        for position, change in enumerate(changes, start=len(plan.indices)):
            aoi = work.get(change.aoi_id)
            if aoi is None:
                snapshot = plan.observed.get(change.aoi_id)
                listed = len(snapshot.visualizations) if snapshot is not None else 0
                aoi = work[change.aoi_id] = _AoiWork(change.aoi_id, listed)
            if isinstance(change, Create):
                name = change.new_index
                if name is not None and index_ids.get(name) is None:
                    why = f"not sent: custom index {name} could not be created"
                    self._record(position, item_of(change, "failed", why))
                    continue
                if name is not None:
                    change = dataclasses.replace(change, index_id=str(index_ids[name]))
                aoi.creates.append((position, change))
                aoi.listed += 1
            else:
                aoi.rollbacks.append((position, change))
        observed = [
            (viz_id, viz)
            for snapshot in plan.observed.values()
            for viz_id, viz in snapshot.visualizations.items()
        ]
        # Not usable yet: still creating, or in a status the contract does not list.
        self._creating = frozenset(
            viz_id for viz_id, viz in observed if viz.status not in FINAL_STATUSES
        )
        self._planned_status = {viz_id: viz.status for viz_id, viz in observed}
        # A visualization whose records the plan read back intact is known at its record's
        # updated_at, as far as keeping its other records goes (see StateStore.record_*).
        confirmed = set(plan.confirmed)
        self._known_updated_at = {
            viz_id: viz.updated_at
            for viz_id, viz in observed
            if viz.updated_at and viz_id not in confirmed
        }
        self._confirmed_rows = metadata.confirmed_rows(plan)
        error = self._run(list(work.values()), result)
        if error is not None:  # a bug, not an API error: those become failed items
            raise error
        result.stopped_early = self._stop.is_set() and not result.interrupted
        result.stop_reason = self._stop_reason
        result.key_refused = self._key_refused
        result.items = [
            item for position in sorted(self._results) for item in self._results[position]
        ]
        unfinished = {i.aoi_id for i in result.items if i.change != "index" and not i.ok}
        self._kept(lambda: self._store.finish_pending(plan.observed.keys() - unfinished))
        result.state_error = self._state_error
        result.finished_at = now()
        return result

    def _create_indices(
        self, indices: tuple[IndexCreate, ...], result: ApplyResult
    ) -> dict[str, str | None]:
        """Create the plan's custom indices, before anything that uses them: name -> id (None
        when it could not be made, or was not started). A stop signal stops them too: one
        index is never deleted, so none is made after it."""
        made: dict[str, str | None] = {}
        for position, change in enumerate(indices):
            while self._signals:
                self._on_signal(self._signals.pop(0), result, [])
            if self._stop.is_set():
                self._record(position, index_item(change, "skipped", self._skipped_text()))
                made[change.name] = None
                continue
            done = metadata.create_index(self._client, change)
            if done.error is not None:
                self._refused(done.error)
            made[change.name] = done.index_id
            self._record(position, index_item(change, done.outcome, done.message))
        return made

    # --- scheduling ------------------------------------------------------------------------

    def _run(self, aois: list[_AoiWork], result: ApplyResult) -> BaseException | None:
        """Start every AOI and poll the ones that wait, at most ``parallelism`` tasks at once.

        Returns the first exception a task raised (a bug), after the others finished.
        """
        starts = deque(aois)
        due: list[tuple[float, int, _AoiWork]] = []  # AOIs to poll, by time
        order = itertools.count()  # ties in ``due`` keep their order
        running: set[Future[_AoiWork]] = set()
        wake = self._wake
        error: BaseException | None = None
        # Stop signals reach ``signal`` (the CLI delivers them there) or, where nothing
        # delivers them, arrive as a KeyboardInterrupt that the handler below only notes:
        # either way they are handled here, at the top of the loop, never half-way.
        signals = self._signals
        with ThreadPoolExecutor(self._parallelism, thread_name_prefix="apply") as executor:
            while starts or due or running or signals:
                try:
                    while signals:
                        self._on_signal(signals.pop(0), result, due)
                    # Polls first: they finish work already begun. When stopping, every AOI
                    # that waits gets one last look, so what is ready is still recorded.
                    moment = time.monotonic()
                    while len(running) < self._parallelism:
                        task: Callable[[_AoiWork], _AoiWork]
                        if due and (due[0][0] <= moment or self._stop.is_set()):
                            task, aoi = self._poll, heapq.heappop(due)[2]
                        elif starts:
                            task, aoi = self._start, starts.popleft()
                        else:
                            break
                        future = executor.submit(task, aoi)
                        running.add(future)
                        future.add_done_callback(wake.put)
                    timeout = _WAKE_INTERVAL
                    if due and len(running) < self._parallelism:
                        timeout = min(timeout, max(0.0, due[0][0] - moment))
                    with contextlib.suppress(queue.Empty):
                        wake.get(timeout=timeout)
                    for future in [f for f in running if f.done()]:
                        running.discard(future)
                        try:
                            aoi = future.result()
                        except Exception as exc:
                            error = error or exc
                            self.request_stop("stopped after an internal error")
                            continue
                        if aoi.waiting:
                            heapq.heappush(due, (aoi.next_poll, next(order), aoi))
                except KeyboardInterrupt as exc:
                    signals.append(str(exc) or "interrupted (Ctrl-C)")
        return error

    def _on_signal(
        self, reason: str, result: ApplyResult, due: list[tuple[float, int, _AoiWork]]
    ) -> None:
        """The first signal stops apply cleanly; a second one also drops the last looks.

        After a second one, what waits ends as stopped and requests in flight are cut: the
        report still tells every change.
        """
        if not result.interrupted:
            self.request_stop(reason)
            result.interrupted = True
            self._listener(Stopping(self._stop_reason))
            return
        self.request_stop(reason)  # in case the first was cut short before it stopped
        for _, _, aoi in due:
            self._abandon(aoi)
        due.clear()
        # Requests in flight end now (as failed or stopped) instead of at their timeouts.
        self._client.set_run_deadline(time.monotonic(), f"{reason} again")

    # --- per AOI ---------------------------------------------------------------------------

    def _start(self, aoi: _AoiWork) -> _AoiWork:
        """Send the AOI's creates, then the rollbacks that need not wait for anything."""
        for position, change in aoi.creates:
            if self._stop.is_set():
                self._record(position, self._skipped(change))
            else:
                self._create(aoi, position, change)
        for position, rollback in aoi.rollbacks:
            viz_id = rollback.visualization_id
            waiter = aoi.waiting.get(viz_id)
            if waiter is None and viz_id in self._creating:
                label = f"{rollback.index_name} on {rollback.aoi_name}"
                waiter = aoi.waiting[viz_id] = self._waiter(viz_id, label)
                waiter.status = self._planned_status.get(viz_id)
            if waiter is not None:
                waiter.rollbacks.append((position, rollback))
            else:
                self._record(position, self._metadata_unless_stopped(rollback))
        aoi.next_poll = time.monotonic()
        return aoi

    def _poll(self, aoi: _AoiWork) -> _AoiWork:
        """Look at the visualizations the AOI waits for; carry on with those that are done."""
        try:
            listed = self._read_waiting(aoi)
        except ApiError as exc:
            self._refused(exc)
            for waiter in aoi.waiting.values():
                if self._stop.is_set():
                    # The last look failed (a --timeout cuts requests too): what was being
                    # waited for ends as stopped, not as failed.
                    reason = f"{self._stop_reason} before it was ready"
                    self._end_waiter(waiter, "stopped", f"but {reason}", "")
                else:
                    self._end_waiter(
                        waiter, "failed", f"then: {exc}", f"waiting until it is usable: {exc}"
                    )
            aoi.waiting.clear()
            return aoi
        moment = time.monotonic()
        for viz_id, waiter in list(aoi.waiting.items()):
            viz = listed.get(viz_id)
            if viz is not None and viz.status not in FINAL_STATUSES:
                # Creating, or a status the contract does not list: not usable, not failed
                # either, so it is waited for like one being created.
                waiter.status = viz.status
                if self._stop.is_set():
                    reason = f"{self._stop_reason} before it was ready"
                    self._end_waiter(waiter, "stopped", f"but {reason}", "")
                elif moment >= waiter.deadline:
                    late = (
                        f"it was still {status_text(viz.status)} after {self._wait_timeout:g} s "
                        "(--wait-timeout); run apply again later to finish"
                    )
                    self._end_waiter(
                        waiter, "failed", f"but {late}", f"waiting until it is usable: {late}"
                    )
                else:
                    self._listener(
                        Waiting(waiter.label, viz_id, viz.progress, status_text(viz.status))
                    )
                    continue
            elif viz is None:
                gone = f"visualization {viz_id} is not listed on its AOI any more"
                self._end_waiter(
                    waiter, "failed", f"then: {gone}", f"waiting until it is usable: {gone}"
                )
            else:
                self._usable(waiter, viz)
            del aoi.waiting[viz_id]
        if aoi.waiting:
            aoi.interval = (
                min(aoi.interval * _POLL_BACKOFF, _MAX_POLL_INTERVAL)
                if aoi.interval
                else self._poll_interval
            )
            earliest = min(waiter.deadline for waiter in aoi.waiting.values())
            aoi.next_poll = min(moment + aoi.interval, earliest)
        return aoi

    def _abandon(self, aoi: _AoiWork) -> None:
        """End every wait of ``aoi`` as stopped, without looking at the API again."""
        reason = f"{self._stop_reason} before it was ready"
        for waiter in aoi.waiting.values():
            self._end_waiter(waiter, "stopped", f"but {reason}", "")
        aoi.waiting.clear()

    def _read_waiting(self, aoi: _AoiWork) -> dict[str, Visualization]:
        """The waited-for visualizations as listed now, in as few requests as the API allows.

        One listing of the whole AOI answers for all of them; for a single one (or an AOI whose
        full listing takes more pages than there are visualizations to wait for) a listing
        filtered by id is cheaper.
        """
        wanted = list(aoi.waiting)
        pages = -(-max(aoi.listed, 1) // self._client.page_size)
        if len(wanted) > pages:
            found = self._client.list_visualizations(aoi.aoi_id)
        else:
            found = [
                viz
                for viz_id in wanted
                for viz in self._client.list_visualizations(aoi.aoi_id, visualization_id=viz_id)
            ]
        return {viz.id: viz for viz in found if viz.id in aoi.waiting}

    def _waiter(
        self, viz_id: str, label: str, create: tuple[int, Create, Outcome, str] | None = None
    ) -> _Waiter:
        return _Waiter(viz_id, label, time.monotonic() + self._wait_timeout, create)

    def _end_waiter(
        self,
        waiter: _Waiter,
        how: Literal["failed", "stopped"],
        create_text: str,
        rollback_text: str,
    ) -> None:
        """A wait that ended without a usable visualization: say so for everything held back."""
        if waiter.create is not None:
            position, change, outcome, _ = waiter.create
            viz_id = waiter.visualization_id
            message = f"{outcome} as {viz_id}, {create_text}"
            status = waiter.status or "creating"
            if how == "stopped":
                # It exists now: say so. Unrecorded, so the next plan checks its rollbacks.
                item = item_of(change, outcome, message, viz_id, status=status)
            else:
                item = item_of(change, "failed", message, viz_id, status=status)
            self._record(position, item)
        for position, rollback in waiter.rollbacks:
            if how == "stopped":
                self._record(position, self._skipped(rollback))
            else:
                self._record(position, item_of(rollback, "failed", rollback_text))

    def _usable(self, waiter: _Waiter, viz: Visualization) -> None:
        """The visualization reached a final status: finish its create, run what waited for it
        (a failed one has no legends to roll back)."""
        if waiter.create is not None:
            position, change, outcome, found = waiter.create
            self._record_many(position, self._created(change, outcome, viz, found))
        for position, rollback in waiter.rollbacks:
            if viz.status == "failed":
                what = "roll back" if isinstance(rollback, Rollback) else "set"
                why = f"not sent: visualization {viz.id} ended failed, with no legends to {what}"
                self._record(position, item_of(rollback, "failed", why))
            else:
                self._record(position, self._metadata_unless_stopped(rollback))

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

    def _refused(self, exc: ApiError) -> None:
        """After a 401, send nothing new: every later call would be refused the same way.

        Calls in flight finish; what has not started ends as skipped, saying why.
        """
        if not isinstance(exc, UnauthorizedError):
            return
        with self._lock:
            first = not self._key_refused
            self._key_refused = self._key_refused or str(exc)
        reason = "the API refused the key (401)"
        self.request_stop(reason)
        if first:
            self._listener(Stopping(reason))

    def _skipped_text(self) -> str:
        return f"not started: {self._stop_reason}"

    def _skipped(self, change: AoiChange) -> ItemResult:
        return item_of(change, "skipped", self._skipped_text())

    # --- create ----------------------------------------------------------------------------

    def _create(self, aoi: _AoiWork, position: int, change: Create) -> None:
        """POST one create (or adopt what a 409 names); wait for it unless it is done."""
        label = f"{change.index_name} on {change.aoi_name}"
        viz: Visualization
        try:
            viz = self._client.create_visualization(
                change.aoi_id,
                change.index_id,
                src_asset_ids=change.asset_ids,
                resolution=change.resolution,
            )
            outcome: Outcome = "created"
            how = ""
        except ConflictError as exc:
            try:
                found = self._find_existing(change)
            except ApiError as lookup:
                self._refused(lookup)
                message = (
                    f"the API answered 409 ({exc.api_message or 'already exists'}), then looking "
                    f"the visualization up failed: {lookup}"
                )
                self._record(position, item_of(change, "failed", message))
                return
            if found is None:
                message = (
                    f"the API answered 409 ({exc.api_message or 'already exists'}) but no "
                    f"visualization of index {change.index_name} over these assets was found "
                    "on the AOI; nothing was changed"
                )
                self._record(position, item_of(change, "failed", message))
                return
            viz, outcome, how = found, "adopted", ""
            log.info("%s already exists as %s: adopting it", label, viz.id)
        except (TransportError, InvalidResponseError) as exc:
            # No answer, or one we cannot read: the API may have created it all the same.
            lost = self._lost_create(change, exc)
            if isinstance(lost, ItemResult):
                self._record(position, lost)
                return
            viz, outcome = lost, "adopted"
            how = f"its create's answer was lost ({exc}), and it was found on the AOI"
            log.info("%s: the answer to its create was lost; found it as %s", label, viz.id)
        except ApiError as exc:
            self._refused(exc)
            self._record(position, item_of(change, "failed", str(exc)))
            return
        # An answer that is already final (and names the assets, whose dates the state
        # records) needs no poll; a "creating" one is waited for with the AOI's others.
        if viz.status in FINAL_STATUSES and viz.assets:
            self._record_many(position, self._created(change, outcome, viz, how))
        else:
            waiter = self._waiter(viz.id, label, (position, change, outcome, how))
            waiter.status = viz.status
            aoi.waiting[viz.id] = waiter

    def _lost_create(self, change: Create, exc: ApiError) -> Visualization | ItemResult:
        """After a create whose answer was lost: the visualization, if the AOI lists it now,
        else the failure saying that it may exist."""
        try:
            found = self._find_existing(change)
        except ApiError as lookup:
            self._refused(lookup)
            why = f"looking it up failed too: {lookup}"
        else:
            if found is not None:
                return found
            why = (
                f"no visualization of index {change.index_name} over these assets is listed on "
                "the AOI yet"
            )
        message = (
            f"{exc} The visualization may exist all the same ({why}): the next plan shows "
            "whether it does, and a create of it again is safe (the API answers 409)"
        )
        return item_of(change, "failed", message)

    def _created(
        self, change: Create, outcome: Outcome, viz: Visualization, how: str = ""
    ) -> list[ItemResult]:
        """The results of a create whose visualization is done; records it in the state.

        ``how`` an adopted one came to be found ("": the create met a 409).
        """
        viz_id = viz.id
        if viz.status != "success":
            return [
                item_of(
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
            # Declared legend state is checked against these later; without declared state
            # there is nothing to check, and no read is made.
            fingerprints = (
                metadata.fresh_fingerprints(self._client, viz, change.legend_modes)
                if change.rollbacks or change.legends
                else {}
            )

            def record() -> None:
                self._store.record_fresh(
                    viz_id,
                    aoi_id=change.aoi_id,
                    legends={mode: dates for mode in change.legend_modes},
                    updated_at=updated_at,
                    fingerprints=fingerprints,
                )
                # Its legends start auto-computed, which is what the declared rollbacks ask
                # for: record them at the declared revision, or the next plan would see
                # revision 0 below the spec's and roll them back once more.
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

            with self._lock:
                self._known_updated_at[viz_id] = updated_at
            message = f"created {viz_id}" + self._kept(record)
            made = [item_of(change, "created", message, viz_id, status=viz.status)]
            return made + self._declared_legends(change, viz_id, "new")

        # Adopted: its legends may have been edited by hand, so the declared rollbacks run now.
        if viz.updated_at:
            with self._lock:
                self._known_updated_at[viz_id] = viz.updated_at
        results = [
            item_of(
                change,
                "adopted",
                f"already present as {viz_id} (409): adopted, not created"
                if not how
                else f"{how} as {viz_id}: adopted",
                viz_id,
                status=viz.status,
            )
        ]
        for target in change.rollbacks:
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
            results.append(self._metadata_unless_stopped(rollback))
        return results + self._declared_legends(change, viz_id, "adopted")

    def _declared_legends(
        self, change: Create, viz_id: str, reason: Literal["new", "adopted"]
    ) -> list[ItemResult]:
        """Set the custom legends a created or adopted visualization declares."""
        return [
            self._metadata_unless_stopped(legend)
            for legend in metadata.declared_changes(change, viz_id, reason)
        ]

    def _find_existing(self, change: Create) -> Visualization | None:
        """The visualization a 409 refers to: same index, same set of source assets."""
        wanted = change.key
        for viz in self._client.list_visualizations(change.aoi_id, index_id=change.index_id):
            if Identity.of_visualization(viz) == wanted:
                return viz
        return None

    # --- rollback --------------------------------------------------------------------------

    def _metadata_unless_stopped(self, change: Rollback | LegendChange) -> ItemResult:
        if self._stop.is_set():
            return self._skipped(change)
        if isinstance(change, LegendChange):
            return self._set_legend(change)
        return self._rollback(change)

    def _rollback(self, change: Rollback) -> ItemResult:
        others = self._store.fingerprints_of(change.visualization_id)
        try:
            written = metadata.rollback(self._client, change, others)
        except ApiError as exc:
            self._refused(exc)
            return item_of(change, "failed", str(exc))
        previous = self._after_write(change.visualization_id, written.updated_at)
        forget = self._untrusted(change.visualization_id) | written.moved
        kept = self._kept(
            lambda: self._store.record_rollback(
                change.visualization_id,
                aoi_id=change.aoi_id,
                mode=change.mode,
                dates=change.dates,
                revision=change.revision,
                updated_at=written.updated_at,
                previous_updated_at=previous,
                fingerprints=written.fingerprints,
                forget=forget,
            )
        )
        return item_of(change, "rolled back", "auto-computed again" + kept)

    def _set_legend(self, change: LegendChange) -> ItemResult:
        others = self._store.fingerprints_of(change.visualization_id)
        try:
            written = metadata.set_legend(self._client, change, others)
        except ApiError as exc:
            self._refused(exc)
            return item_of(change, "failed", str(exc))
        previous = self._after_write(change.visualization_id, written.updated_at)
        # A date the API shows otherwise than declared is not ours: its old record goes too.
        forget = self._untrusted(change.visualization_id) | written.moved
        forget |= {(change.mode, d) for d in written.mismatched}
        declared = {
            d: t.content.as_record()
            for t in change.legends
            for d in t.dates
            if d not in written.mismatched
        }
        kept = self._kept(
            lambda: self._store.record_legend(
                change.visualization_id,
                aoi_id=change.aoi_id,
                mode=change.mode,
                legends=declared,
                updated_at=written.updated_at,
                previous_updated_at=previous,
                fingerprints=written.fingerprints,
                forget=forget,
            )
        )
        if written.mismatched:
            # Sent and accepted, yet not what was declared: said, and not recorded, so the
            # next plan shows it again rather than trust it.
            shown = "; ".join(
                f"{date}: {', '.join(found)}" for date, found in sorted(written.mismatched.items())
            )
            return item_of(
                change,
                "failed",
                f"the API accepted the legend but shows another one right after ({shown})" + kept,
            )
        return item_of(change, "legend set", "set as declared" + kept)

    def _untrusted(self, visualization_id: str) -> set[tuple[str, str]]:
        """What the first record of a confirmed visualization must drop (see ``apply``)."""
        with self._lock:
            return self._confirmed_rows.pop(visualization_id, set())

    def _after_write(self, visualization_id: str, updated_at: str) -> str | None:
        """Note the ``updated_at`` a write left; the one known before it (for the record)."""
        with self._lock:
            previous = self._known_updated_at.get(visualization_id)
            if updated_at:
                self._known_updated_at[visualization_id] = updated_at
        return previous

    def _kept(self, record: Callable[[], None]) -> str:
        """Write a change's state record; "" when kept, else what the item must say.

        The change itself happened, so it is reported as done. Without its record the next
        plan would make it again, so nothing new starts once a record cannot be written (a
        full disk), and the report says why.
        """
        try:
            record()
        except StateError as exc:
            with self._lock:
                self._state_error = self._state_error or str(exc)
            self.request_stop("stopped: the state could not be written")
            return "; the state could not record it (the next plan may show it again)"
        return ""
