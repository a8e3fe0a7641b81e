"""What apply did: one result per change, the whole run's result, and how a command ended.

Plain data that the running layer fills in and the command line renders (a summary, the
``--report`` JSON): nothing here prints or decides an exit status.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler.core.plan import AoiChange, AoiName, IndexCreate, LegendChange, Plan, Rollback
from reconciler.errors import ReconcilerError

Outcome = Literal["created", "adopted", "rolled back", "legend set", "failed", "skipped"]
OUTCOMES: tuple[Outcome, ...] = (
    "created",
    "adopted",
    "rolled back",
    "legend set",
    "failed",
    "skipped",
)


@dataclass(frozen=True, kw_only=True)
class ItemResult:
    """How one change ended (fields in the order the report lists them)."""

    change: Literal["index", "create", "rollback", "legend"]
    outcome: Outcome
    aoi_id: str
    aoi_name: str
    index_name: str
    visualization_id: str | None = None
    mode: str | None = None
    dates: tuple[str, ...] = ()
    status: str | None = None  # the visualization's final status, for creates
    message: str
    where: str

    @property
    def ok(self) -> bool:
        return self.outcome in ("created", "adopted", "rolled back", "legend set")


@dataclass
class ApplyResult:
    """Everything apply did, in plan order (the ``--report`` JSON renders it)."""

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
    #: The first 401 of the run: the API refused the key, and nothing new was sent after it.
    key_refused: str = ""
    #: AOIs whose leftovers of an earlier apply this saved plan carried but did not apply:
    #: they changed since the plan was made. Still pending: the next plan shows them.
    left_pending: list[AoiName] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        # Stopped early (--fail-fast, --timeout): what was not done is not ok either.
        return (
            not self.interrupted
            and not self.stopped_early
            and not self.state_error
            and not self.key_refused
            and all(i.ok for i in self.items)
        )

    def counts(self) -> dict[str, int]:
        return {outcome: sum(i.outcome == outcome for i in self.items) for outcome in OUTCOMES}


def index_item(change: IndexCreate, outcome: Outcome, message: str) -> ItemResult:
    """How a custom index create ended."""
    return ItemResult(
        change="index",
        outcome=outcome,
        aoi_id="",
        aoi_name="",
        index_name=change.name,
        message=message,
        where=change.where,
    )


def item_of(
    change: AoiChange,
    outcome: Outcome,
    message: str,
    visualization_id: str | None = None,
    *,
    status: str | None = None,
) -> ItemResult:
    """How an AOI's change ended; ``visualization_id`` and ``status`` of a create's
    visualization."""
    common: dict[str, Any] = {
        "outcome": outcome,
        "aoi_id": change.aoi_id,
        "aoi_name": change.aoi_name,
        "index_name": change.index_name,
        "message": message,
        "where": change.where,
    }
    if isinstance(change, Rollback | LegendChange):
        return ItemResult(
            change="rollback" if isinstance(change, Rollback) else "legend",
            visualization_id=change.visualization_id,
            mode=change.mode,
            dates=change.dates,
            **common,
        )
    return ItemResult(change="create", visualization_id=visualization_id, status=status, **common)


def now() -> str:
    """The current UTC time as the report writes it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ApplyOutcome:
    """How one apply ended, whatever happened: the one thing ``Engine.apply`` returns.

    ``plan`` is the plan apply worked from (made now, or the saved one once it passed its
    checks), None when it never got that far. ``result`` says what happened to every change;
    it has no items when no change was started. At most one of ``error`` (what refused apply
    before any change: a stale plan, a held lock, a spec problem, ...) and ``signal`` (the stop
    signal that arrived before any change, e.g. "stopped by SIGTERM") is set.
    """

    result: ApplyResult
    plan: Plan | None = None
    error: ReconcilerError | None = None
    signal: str = ""

    @property
    def started(self) -> bool:
        """Whether changes were started (then ``result`` tells each of them)."""
        return (
            self.error is None
            and not self.signal
            and self.plan is not None
            and (self.plan.has_changes)
        )

    @property
    def ok(self) -> bool:
        """Nothing refused, interrupted or failed, and no AOI left out of the plan."""
        return (
            self.error is None
            and not self.signal
            and self.result.ok
            and not (self.plan is not None and self.plan.unreadable)
        )


def status_text(status: str | None) -> str:
    """'creating', or what a status outside the contract is, in words."""
    # Here, not at the top: the response types cost a start-up that the console (imported
    # by every command, also validate) need not pay.
    from reconciler.api.types import CONTRACT_STATUSES, outside_contract

    if not outside_contract(status):
        return str(status)
    listed = ", ".join(CONTRACT_STATUSES)
    shown = "without a status" if status is None else f"{status!r}"
    return f"{shown}, a status the API contract does not list ({listed})"
