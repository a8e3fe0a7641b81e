"""The writes apply makes besides creating visualizations: custom indices, rollbacks and custom
legends, each with what its state record needs read back.

A rollback's answer carries the visualization's ``updated_at`` and its legends, so its record
is exact. A custom legend's answer carries no ``updated_at``: the visualization is listed for
it, and then its legends are read back through the SLD endpoint, in that order, so that an
edit made by someone else in between is seen (the legend then differs from the declared one,
and is not recorded as this tool's). The fingerprints kept are those of the legends as read,
which is how the next plan reads them (``core.legends``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from reconciler.api.client import PixxelClient
from reconciler.api.legends import Legend, fingerprint, legends_from_metadata
from reconciler.api.types import Index, Visualization
from reconciler.core.legends import differences
from reconciler.core.plan import Create, IndexCreate, LegendChange, LegendTarget, Plan, Rollback
from reconciler.errors import ApiError, ConflictError, InvalidResponseError, TransportError
from reconciler.spec.decls import LegendContent

log = logging.getLogger(__name__)


# --- custom indices ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexMade:
    """How one custom index create ended: its id (None when it failed), and what happened."""

    change: IndexCreate
    index_id: str | None
    outcome: Literal["created", "adopted", "failed"]
    message: str
    error: ApiError | None = None  # what failed, when the API refused something


def create_index(client: PixxelClient, change: IndexCreate) -> IndexMade:
    """POST one custom index; a 409 (or a lost answer) finds the index of that name."""
    try:
        index = client.create_index(
            name=change.name,
            description=change.description,
            expression=change.expression,
            expression_type=change.expression_type,
            rescale=change.rescale,
            colormap=change.colormap,
            satellite_id=change.satellite_id,
        )
    except ConflictError as exc:
        return _existing(client, change, f"the API answered 409 ({exc.api_message or 'exists'})")
    except (TransportError, InvalidResponseError) as exc:
        # No answer we can read: the API may have made it all the same.
        return _existing(client, change, f"its create's answer was lost ({exc})", lost=True)
    except ApiError as exc:
        return IndexMade(change, None, "failed", str(exc), exc)
    return IndexMade(change, index.id, "created", f"created {index.id}")


def _existing(client: PixxelClient, change: IndexCreate, why: str, lost: bool = False) -> IndexMade:
    try:
        found = [i for i in client.list_indices() if i.name == change.name]
    except ApiError as lookup:
        message = f"{why}, then listing the indices failed: {lookup}"
        return IndexMade(change, None, "failed", message, lookup)
    if len(found) != 1:
        what = "no index" if not found else f"{len(found)} indices"
        tail = (
            "; a create of it again is safe (the API answers 409)"
            if lost
            else "; nothing was changed"
        )
        return IndexMade(change, None, "failed", f"{why}, but {what} of that name is listed{tail}")
    index = found[0]
    return IndexMade(
        change, index.id, "adopted", f"{why}: adopted {index.id}{_differs(change, index)}"
    )


def _differs(change: IndexCreate, index: Index) -> str:
    """What the index adopted by name has other than declared: said, as the plan says it."""
    wanted = {
        "expression": change.expression,
        "expression_type": change.expression_type,
        "rescale": tuple(change.rescale),
        "colormap": change.colormap,
    }
    live = {
        "expression": index.expression,
        "expression_type": index.expression_type,
        "rescale": None if index.rescale is None else tuple(index.rescale),
        "colormap": index.colormap,
    }
    differ = [k for k, v in live.items() if v is not None and v != wanted[k]]
    if not differ:
        return ""
    return f" (it differs from the declaration in {', '.join(differ)}: the API cannot change it)"


# --- rollbacks -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Written:
    """What a metadata write left: the visualization's ``updated_at`` right after, the
    fingerprint of each legend it wrote as the API showed it, and (custom legends) the dates
    whose legend the API shows otherwise than declared, with how."""

    updated_at: str
    fingerprints: Mapping[str, str]
    mismatched: Mapping[str, Sequence[str]]
    #: Other legends of the record (``others``) that are not as recorded any more, or could
    #: not be told: their records must go.
    moved: frozenset[tuple[str, str]] = frozenset()


def _moved(
    others: Mapping[tuple[str, str], str], shown: Mapping[str, Mapping[str, Legend]]
) -> frozenset[tuple[str, str]]:
    """The recorded legends (``others``: (mode, date) -> fingerprint) not shown as recorded."""
    return frozenset(
        (mode, date)
        for (mode, date), recorded in others.items()
        if (legend := shown.get(mode, {}).get(date)) is None or fingerprint(legend) != recorded
    )


def rollback(
    client: PixxelClient, change: Rollback, others: Mapping[tuple[str, str], str] | None = None
) -> Written:
    """PATCH: roll the legends back; the answer says how they are now, and when.

    ``others``: the fingerprints the visualization's record holds of its other legends,
    checked against the answer (an edit since the plan read them is not taken as ours).
    """
    detail = client.rollback_metadata(
        change.aoi_id,
        change.visualization_id,
        index_id=change.index_id,
        mode=change.mode,
        dates=change.dates,
    )
    updated_at = detail.updated_at
    if not updated_at:  # not in the response: read it, the state needs it
        updated_at = _updated_at(client, change.aoi_id, change.visualization_id)
    every: Mapping[str, Mapping[str, Legend]] = {}
    try:
        every = legends_from_metadata(detail.metadata, what="the rollback's answer")
    except InvalidResponseError as exc:
        log.info("no fingerprints for %s: %s", change.visualization_id, exc)
    shown = every.get(change.mode, {})
    mine = {(change.mode, d) for d in change.dates}
    rest = {k: v for k, v in (others or {}).items() if k not in mine}
    return Written(
        updated_at or "",
        {d: fingerprint(shown[d]) for d in change.dates if d in shown},
        {},
        # An answer without legends tells nothing about the others: they are kept as they are.
        _moved(rest, every) if every else frozenset(),
    )


# --- custom legends ------------------------------------------------------------------------------


def legend_items(content: LegendContent) -> list[dict[str, Any]] | None:
    """The PUT's items of one date: every range as declared; None for a dynamic legend that
    leaves every bin to the API."""
    if not content.items:
        return None
    items: list[dict[str, Any]] = []
    for item in content.items:
        # A bound left out of a dynamic legend is sent as null: the API computes it.
        sent: dict[str, Any] = {"min": item.min, "max": item.max, "color": item.color}
        if item.label is not None:
            sent["label"] = item.label
        items.append(sent)
    return items


def set_legend(
    client: PixxelClient, change: LegendChange, others: Mapping[tuple[str, str], str] | None = None
) -> Written:
    """PUT the declared legends of ``change``, then read back when and how they are.

    ``others``: the fingerprints the record holds of the visualization's other legends, read
    back too: the listing's ``updated_at`` covers any edit made since the PUT, so one of
    them must not be taken as ours.
    """
    legend: dict[str, list[dict[str, Any]] | None] = {}
    content: dict[str, LegendContent] = {}
    for target in change.legends:
        for date in target.dates:
            legend[date] = legend_items(target.content)
            content[date] = target.content
    client.set_legend(
        change.aoi_id,
        change.visualization_id,
        mode=change.mode,
        legend=legend,
        dynamic_bins=change.bins,
    )
    updated_at = _updated_at(client, change.aoi_id, change.visualization_id)
    mine = {(change.mode, d) for d in change.dates}
    rest = {k: v for k, v in (others or {}).items() if k not in mine}
    modes = sorted({change.mode} | {m for m, _ in rest})
    dates = sorted(set(change.dates) | {d for _, d in rest})
    every = client.read_sld(change.aoi_id, change.visualization_id, modes=modes, dates=dates)
    shown = every.get(change.mode, {})
    fingerprints: dict[str, str] = {}
    mismatched: dict[str, list[str]] = {}
    for date in change.dates:
        got = shown.get(date)
        found = ["not shown"] if got is None else differences(content[date], got)
        if found:
            mismatched[date] = found
        elif got is not None:
            fingerprints[date] = fingerprint(got)
    return Written(updated_at or "", fingerprints, mismatched, _moved(rest, every))


def confirmed_rows(plan: Plan) -> dict[str, set[tuple[str, str]]]:
    """The legends the plan changes on each visualization it confirmed (``Plan.confirmed``):
    trusted only as those changes happen, so the first record there drops them all, and each
    change that happens records its own again."""
    rows: dict[str, set[tuple[str, str]]] = {viz_id: set() for viz_id in plan.confirmed}
    for change in plan.rollbacks:
        if change.visualization_id in rows:
            rows[change.visualization_id] |= {(change.mode, d) for d in change.dates}
    for legend in plan.legends:
        if legend.visualization_id in rows:
            rows[legend.visualization_id] |= {(legend.mode, d) for d in legend.dates}
    return rows


def fresh_fingerprints(
    client: PixxelClient, viz: Visualization, modes: Sequence[str]
) -> dict[str, dict[str, str]]:
    """The fingerprint of every legend of a visualization just made (mode -> date -> it),
    or {} when they cannot be read: its records then say auto-computed without one."""
    dates = sorted({a.date for a in viz.assets})
    if not modes or not dates:
        return {}
    try:
        shown = client.read_sld(viz.aoi_id, viz.id, modes=modes, dates=dates)
    except (ApiError, InvalidResponseError) as exc:
        log.info("no fingerprints for new visualization %s: %s", viz.id, exc)
        return {}
    return {
        mode: {d: fingerprint(lg) for d, lg in by_date.items()} for mode, by_date in shown.items()
    }


def _updated_at(client: PixxelClient, aoi_id: str, visualization_id: str) -> str | None:
    listed = client.list_visualizations(aoi_id, visualization_id=visualization_id)
    return next((v.updated_at for v in listed if v.id == visualization_id), None)


def declared_changes(
    change: Create, viz_id: str, reason: Literal["new", "adopted"]
) -> list[LegendChange]:
    """The legend changes (one per mode and number of bins) that set the custom legends a
    created or adopted visualization ``viz_id`` declares."""
    detail = (
        "a new visualization gets its declared legends"
        if reason == "new"
        else "adopted through a 409: its legends may have been edited"
    )
    groups: dict[tuple[str, int], list[LegendTarget]] = {}
    for target in change.legends:
        groups.setdefault((target.mode, target.content.bins or 0), []).append(target)
    return [
        LegendChange(
            aoi_id=change.aoi_id,
            aoi_name=change.aoi_name,
            visualization_id=viz_id,
            index_id=change.index_id,
            index_name=change.index_name,
            mode=group[0].mode,
            dates=tuple(sorted({d for t in group for d in t.dates})),
            legends=tuple(group),
            reason=reason,
            detail=detail,
            where=change.where,
        )
        for _, group in sorted(groups.items())
    ]
