"""Warnings about the state itself: empty where apply ran, or out of date / shared.

Pure: reads a plan and the state it was made with. Two signs that a plan is not using the state
its apply job writes (docs/state.md, "One state per set of AOIs"):

- the state has no records at all, yet rollbacks are planned on visualizations that exist: a
  pull-request job planning without the apply job's state, or simply the first run;
- the records of many visualizations are out of date at once (their ``updated_at`` moved since
  the last rollback): people rarely edit that many legends by hand between two runs, but a second
  state over the same AOIs, or an old copy of this one, looks exactly like that.
"""

from __future__ import annotations

import dataclasses

from reconciler.core.plan import LegendChange, Plan, PlanWarning, Rollback
from reconciler.state.records import State

#: At least this many visualizations whose records moved at once, ...
SHARED_MIN_MOVED = 3
#: ... and at least this share of the visualizations the state has records of, in this plan.
SHARED_MIN_SHARE = 0.5

DOCS = "docs/state.md"


def state_warnings(plan: Plan, state: State, label: str) -> tuple[PlanWarning, ...]:
    """The warnings about ``state`` (found at ``label``) that ``plan`` gives reason for."""
    if not plan.rollbacks and not plan.legends:
        return ()
    if not state.visualizations:
        unrecorded: list[Rollback | LegendChange] = [
            r for r in plan.rollbacks if r.reason == "no-record"
        ]
        unrecorded += [c for c in plan.legends if c.reason == "no-record"]
        if not unrecorded:
            return ()
        first, count = unrecorded[0], len(unrecorded)
        return (
            PlanWarning(
                kind="state",
                aoi_id=first.aoi_id,
                aoi_name=first.aoi_name,
                message=(
                    f"the state {label} has no records, so every declared rollback and custom "
                    f"legend of an existing visualization is planned ({count}). Expected before "
                    "the first apply; otherwise plan with the state that apply writes (--state or "
                    f"RECONCILER_STATE; see {DOCS})"
                ),
            ),
        )
    moved: dict[str, tuple[str, str]] = {}
    for rollback in plan.rollbacks:
        if rollback.reason == "changed":
            moved.setdefault(rollback.visualization_id, (rollback.aoi_id, rollback.aoi_name))
    recorded = sum(
        state.get(viz_id) is not None
        for snapshot in plan.observed.values()
        for viz_id in snapshot.visualizations
    )
    if len(moved) < SHARED_MIN_MOVED or len(moved) < SHARED_MIN_SHARE * recorded:
        return ()
    aoi_id, aoi_name = next(iter(moved.values()))
    return (
        PlanWarning(
            kind="state",
            aoi_id=aoi_id,
            aoi_name=aoi_name,
            message=(
                f"{len(moved)} of the {recorded} visualizations the state {label} has records "
                "of changed since their last rollback (updated_at moved), all at once. If nobody "
                "edited that many legends, this state is out of date or another writer uses a "
                "second state over the same AOIs: each apply then makes the other's records look "
                f"edited, forever. Use one state per set of AOIs (see {DOCS})"
            ),
        ),
    )


def with_state_warnings(plan: Plan, state: State, label: str) -> Plan:
    """``plan`` with ``state_warnings`` added (the same plan when there are none)."""
    extra = state_warnings(plan, state, label)
    if not extra:
        return plan
    return dataclasses.replace(plan, warnings=plan.warnings + extra)
