"""Warnings about the state itself: empty where apply ran, or out of date / shared.

Pure: reads a plan and the state it was made with. Two signs that a plan is not using the state
its apply job writes (docs/state.md, "One state per set of AOIs"):

- the state has no records at all, yet rollbacks are planned on visualizations that exist: a
  pull-request job planning without the apply job's state, or simply the first run;
- the record of a visualization is out of date (its ``updated_at`` moved since the last
  rollback): a hand edit, or a second state over the same AOIs, or an old copy of this one,
  which look exactly alike. Said at the first such record: two states over one AOI fight on
  every apply, forever, and the sooner that is seen the better.
"""

from __future__ import annotations

import dataclasses

from reconciler.core.plan import LegendChange, Plan, PlanWarning, Rollback
from reconciler.state.records import State

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
    if not moved:
        return ()
    aoi_id, aoi_name = next(iter(moved.values()))
    these = (
        "1 visualization" if len(moved) == 1 else f"{len(moved)} of the {recorded} visualizations"
    )
    return (
        PlanWarning(
            kind="state",
            aoi_id=aoi_id,
            aoi_name=aoi_name,
            message=(
                f"{these} the state {label} has records of changed since the last rollback "
                "(updated_at moved). If nobody edited those legends, this state is out of date or "
                "another writer uses a second state over the same AOIs: each apply then makes "
                f"the other's records look edited, forever. Use one state per set of AOIs (see "
                f"{DOCS}; to split AOIs over CI jobs, docs/sharding.md)"
            ),
        ),
    )


def with_state_warnings(plan: Plan, state: State, label: str) -> Plan:
    """``plan`` with ``state_warnings`` added (the same plan when there are none)."""
    extra = state_warnings(plan, state, label)
    if not extra:
        return plan
    return dataclasses.replace(plan, warnings=plan.warnings + extra)
