"""Whether a saved plan's changes are exactly the ones the specs and the API call for now.

A saved plan file is a claim: its checksum only proves that nobody changed it by accident, since
anyone who can write the file can recompute it. Before a single write, apply makes the plan
again for the AOIs the saved one changes, from the specs it reads, the live API and the state,
and carries the saved plan out only if both have the same changes: the same custom indices (every
field), the same creates (AOI, index, assets, resolution, declared rollbacks and legends), the
same rollbacks (visualization, mode, dates, revision) and the same legend changes
(visualization, mode, dates, content). Names, positions and reasons are not compared: a
renamed AOI or a moved line changes nothing apply does.

Pure: compares two plans; the engine makes the fresh one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

from reconciler.core.identity import Identity
from reconciler.core.plan import (
    Create,
    IndexCreate,
    LegendChange,
    LegendTarget,
    Plan,
    Rollback,
    RollbackTarget,
)
from reconciler.errors import UnverifiedPlanError
from reconciler.text import clean

C = TypeVar("C", IndexCreate, Create, Rollback, LegendChange)


def check_changes(saved: Plan, fresh: Plan, replan: str) -> None:
    """Refuse ``saved`` (``UnverifiedPlanError``) unless its changes are ``fresh``'s.

    ``fresh`` is the plan made now of the AOIs ``saved`` changes. The error names every
    change one plan has and the other has not, and every term that differs.
    """
    reasons = _differences(saved, fresh)
    if reasons:
        raise UnverifiedPlanError(
            "the saved plan's changes are not the ones the specs, the API and the state call "
            "for now; nothing was applied:\n  - "
            + "\n  - ".join(clean(reason) for reason in reasons)
            + "\nA plan is applied only as it was made: make a new one, review it and apply "
            f"that one: {replan}"
        )


def changed_leftovers(saved: Plan, fresh: Plan, leftovers: Iterable[str]) -> set[str]:
    """Of ``leftovers`` (AOIs a plan of what changed took in only because an earlier apply
    left them unfinished), those where ``fresh`` has changes that are not ``saved``'s: others
    did or undid part of them since. Not applied, and no reason to refuse the plan's own
    changes either: the AOI stays pending, and the next plan shows what is left there. (One
    where nothing is left to do now was finished by another apply: nothing to apply.)"""
    changed = set()
    for aoi_id in leftovers:
        now = fresh.only(aoi_id)
        if now.all_changes and _differences(saved.only(aoi_id), now):
            changed.add(aoi_id)
    return changed


def _differences(saved: Plan, fresh: Plan) -> list[str]:
    """Every change one plan has and the other has not, and every term that differs."""
    names = {a.aoi_id: a.aoi_name for a in fresh.aois}
    return [
        *_compare(saved.indices, fresh.indices, _index_key, _index_terms, _index_label, names),
        *_compare(saved.creates, fresh.creates, _create_key, _create_terms, _create_label, names),
        *_compare(
            saved.rollbacks, fresh.rollbacks, _rollback_key, _rollback_terms, _rollback_label, names
        ),
        *_compare(saved.legends, fresh.legends, _legend_key, _legend_terms, _legend_label, names),
    ]


def _compare(
    saved: Sequence[C],
    fresh: Sequence[C],
    key: Callable[[C], Hashable],
    terms: Callable[[C], dict[str, str]],
    label: Callable[[C], str],
    names: Mapping[str, str],
) -> list[str]:
    ours = {key(change): change for change in fresh}
    theirs: dict[Hashable, C] = {}
    reasons: list[str] = []
    for change in saved:
        if key(change) in theirs:
            reasons.append(f"{_aoi(change, names)}: {label(change)} appears twice in the plan")
        theirs[key(change)] = change
    for k, change in theirs.items():
        now = ours.get(k)
        if now is None:
            reasons.append(
                f"{_aoi(change, names)}: the plan would {label(change)}, which nothing calls "
                "for (not declared, or not needed)"
            )
            continue
        was, will = terms(change), terms(now)
        reasons += [
            f"{_aoi(now, names)}: {label(now)}: the plan says {term} {was[term]}, but "
            f"{will[term]} is called for"
            for term in was
            if was[term] != will[term]
        ]
    reasons += [
        f"{_aoi(change, names)}: the plan leaves out what is called for: {label(change)}"
        for k, change in ours.items()
        if k not in theirs
    ]
    return reasons


def _aoi(change: IndexCreate | Create | Rollback | LegendChange, names: Mapping[str, str]) -> str:
    if isinstance(change, IndexCreate):
        return "custom indices"
    return f"AOI {names.get(change.aoi_id, change.aoi_id)}"


def _index_key(i: IndexCreate) -> str:
    return i.name


def _index_terms(i: IndexCreate) -> dict[str, str]:
    return {
        "expression": i.expression,
        "expression type": i.expression_type,
        "rescale": f"[{i.rescale[0]}, {i.rescale[1]}]",
        "colour map": i.colormap,
        "satellite": i.satellite_id,
        "description": repr(i.description),
    }


def _index_label(i: IndexCreate) -> str:
    return f"create custom index {i.name}"


def _legend_key(c: LegendChange) -> tuple[str, str, str, int]:
    return (c.aoi_id, c.visualization_id, c.mode, c.bins or 0)


def _legend_terms(c: LegendChange) -> dict[str, str]:
    return {"index": c.index_id, "legends": _legends(c.legends)}


def _legend_label(c: LegendChange) -> str:
    return (
        f"set the {c.mode} legends of {c.index_name} ({c.visualization_id}) "
        f"for {', '.join(c.dates)}"
    )


def _legends(targets: Sequence[LegendTarget]) -> str:
    return (
        "; ".join(f"{t.mode} {', '.join(t.dates)}: {t.content.describe()}" for t in targets)
        or "none"
    )


def _create_key(c: Create) -> tuple[str, Identity]:
    return (c.aoi_id, c.key)


def _create_terms(c: Create) -> dict[str, str]:
    return {
        "listed assets": "(the API's default)"
        if c.assets is None
        else ", ".join(c.asset_ids or ()),
        "resolution": "(the API's default)" if c.resolution is None else f"{c.resolution:g}",
        "rollbacks if adopted": _targets(c.rollbacks),
        "legend modes": ", ".join(c.legend_modes) or "none",
        "custom legends": _legends(c.legends),
    }


def _create_label(c: Create) -> str:
    over = "all assets" if c.assets is None else ", ".join(f"{a.name} ({a.date})" for a in c.assets)
    return f"create {c.index_name} ({c.index_id}) over {over}"


def _rollback_key(r: Rollback) -> tuple[str, str, str]:
    return (r.aoi_id, r.visualization_id, r.mode)


def _rollback_terms(r: Rollback) -> dict[str, str]:
    return {
        "index": r.index_id,
        "dates": ", ".join(r.dates),
        "revision": str(r.revision),
    }


def _rollback_label(r: Rollback) -> str:
    return (
        f"roll back the {r.mode} legends of {r.index_name} ({r.visualization_id}) "
        f"for {', '.join(r.dates)}"
    )


def _targets(targets: Sequence[RollbackTarget]) -> str:
    return "; ".join(f"{t.mode} {', '.join(t.dates)} r{t.revision}" for t in targets) or "none"
