"""Drift: what a plan of the default branch says about the world, sorted by what to do about it.

A scheduled job asks one question, "does the live API still match what we merged?", and needs
the answer's kind, not only yes or no: the exit status of ``reconciler drift`` and its JSON
carry it (docs/drift.md). Every change and warning of a plan falls in one kind:

- **pending**: merged specs not applied yet: a custom index or a visualization declared and
  never created, a rollback or a custom legend never made (no record), asked again (revision
  bumped) or declared otherwise since, one still being created, an AOI another state owns
  (apply refuses it until one takes it over);
- **moved**: the world changed under the specs: a legend edited by hand (read back changed, or
  ``updated_at`` moved where it cannot be read back), a declared visualization gone from an AOI
  where the state remembers one that is no longer listed, new imagery under ``assets: all``, a
  visualization nobody declared that no ignore rule covers, an AOI a selector no longer
  matches, a custom index that differs from its declaration;
- **unhealthy**: a declared visualization the API finished as ``failed`` or ``partial_success``.

In sync is none of them. The most serious kind present is the status: unhealthy, then moved,
then pending. Pure: reads a plan and the state it was made with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from reconciler.core.plan import Create, LegendChange, Plan, PlanWarning, Rollback
from reconciler.state.records import State

Kind = Literal["pending", "moved", "unhealthy"]
Status = Literal["in-sync", "pending", "moved", "unhealthy"]

#: Exit statuses of ``reconciler drift`` (1 is an error, as for every command).
EXIT_CODES: dict[Status, int] = {"in-sync": 0, "pending": 2, "moved": 3, "unhealthy": 4}
#: Most serious first.
_SEVERITY: tuple[Kind, ...] = ("unhealthy", "moved", "pending")

_WARNING_KINDS: dict[str, tuple[Kind, str]] = {
    "failed": ("unhealthy", "the API finished it as failed"),
    "partial_success": ("unhealthy", "the API finished it as partial_success"),
    "undeclared": ("moved", "made outside the specs, and no ignore rule covers it"),
    "unmatched": ("moved", "a selector no longer matches this AOI"),
    "new-assets": ("moved", "new imagery"),
    "creating": ("pending", "still being created"),
    "unknown-status": ("unhealthy", "its status is one the API contract does not list"),
    "index-differs": ("moved", "the custom index differs from its declaration"),
    # Apply refuses such an AOI: the merged specs cannot be applied until a state takes it.
    "owned": ("pending", "another state owns it: apply refuses it until one takes it over"),
}
#: Warnings about the specs or the state, not the world: they do not make drift. Nor does an
#: AOI the API refused to show: what it holds is unknown, and the command fails saying so.
_NOT_DRIFT = frozenset({"no-match", "state", "unreadable"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that is not in sync, with its kind and why it has that kind."""

    kind: Kind
    aoi_id: str
    aoi_name: str
    what: str  # "create NDVI", "roll back the dynamic legends of NDVI", a warning's message
    why: str
    visualization_id: str | None = None
    where: str | None = None


@dataclass(frozen=True, slots=True)
class Drift:
    """The findings of one plan, and the status they make."""

    findings: tuple[Finding, ...]

    @property
    def status(self) -> Status:
        kinds = {f.kind for f in self.findings}
        return next((k for k in _SEVERITY if k in kinds), "in-sync")

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def counts(self) -> dict[Kind, int]:
        return {
            k: sum(f.kind == k for f in self.findings) for k in ("pending", "moved", "unhealthy")
        }


def classify(plan: Plan, state: State) -> Drift:
    """Sort every change and warning of ``plan`` (made with ``state``) into a kind."""
    listed = {v for snapshot in plan.observed.values() for v in snapshot.visualizations}
    # Visualizations the state remembers that the API no longer lists, by AOI: a declared one
    # to create there was most likely there before.
    vanished: dict[str, int] = {}
    for viz_id, record in state.visualizations.items():
        if record.aoi_id in plan.observed and viz_id not in listed:
            vanished[record.aoi_id] = vanished.get(record.aoi_id, 0) + 1
    following = {w.aoi_id for w in plan.warnings if w.kind == "new-assets"}
    findings = [
        Finding(
            "pending",
            "",
            "",
            f"create custom index {i.name}",
            "declared, not created yet",
            where=i.where,
        )
        for i in plan.indices
    ]
    findings += [_create(c, vanished, following) for c in plan.creates]
    findings += [_rollback(r) for r in plan.rollbacks]
    findings += [_legend(c) for c in plan.legends]
    findings += [f for w in plan.warnings if (f := _warning(w)) is not None]
    return Drift(tuple(sorted(findings, key=_order)))


def _create(c: Create, vanished: dict[str, int], following: set[str]) -> Finding:
    what = f"create {c.index_name}"
    if c.aoi_id in vanished:
        why = (
            "declared, and gone: the state remembers a visualization here that is no longer listed"
        )
        return Finding("moved", c.aoi_id, c.aoi_name, what, why, where=c.where)
    if c.aoi_id in following and c.assets is None:
        why = "new imagery: a visualization over all of the AOI's assets is another one now"
        return Finding("moved", c.aoi_id, c.aoi_name, what, why, where=c.where)
    return Finding(
        "pending", c.aoi_id, c.aoi_name, what, "declared, not created yet", where=c.where
    )


def _rollback(r: Rollback) -> Finding:
    what = f"roll back the {r.mode} legends of {r.index_name} ({', '.join(r.dates)})"
    kind: Kind = "moved" if r.reason == "changed" else "pending"
    why = {
        "changed": "edited since the last rollback",
        "no-record": "declared, never rolled back by this tool",
        "revision": "the spec's revision was bumped",
    }.get(r.reason, r.reason)
    return Finding(kind, r.aoi_id, r.aoi_name, what, why, r.visualization_id, r.where)


def _legend(c: LegendChange) -> Finding:
    what = f"set the {c.mode} legends of {c.index_name} ({', '.join(c.dates)})"
    kind: Kind = "moved" if c.reason == "edited" else "pending"
    why = {
        "edited": "changed since this tool set it",
        "no-record": "declared, never set by this tool",
        "declared-changed": "the specs declare another legend now",
    }.get(c.reason, c.reason)
    return Finding(kind, c.aoi_id, c.aoi_name, what, why, c.visualization_id, c.where)


def _warning(w: PlanWarning) -> Finding | None:
    if w.kind in _NOT_DRIFT:
        return None
    # A warning this module does not know is about the world, or it would not be in a plan.
    kind, why = _WARNING_KINDS.get(w.kind, ("moved", w.kind))
    return Finding(kind, w.aoi_id, w.aoi_name, w.message, why, w.visualization_id, w.where)


def _order(f: Finding) -> tuple[int, str, str, str]:
    return (_SEVERITY.index(f.kind), f.aoi_name, f.aoi_id, f.what)


__all__: Sequence[str] = ("EXIT_CODES", "Drift", "Finding", "classify")
