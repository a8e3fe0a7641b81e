"""Planning: desired (specs) + observed (API) + remembered (state file) → ``Plan``.

Pure: no I/O, so every rule here has a pure test. The rules (DESIGN.md, "Semantics"):

- A visualization is identified by (AOI, index id, set of source asset ids). Declared and
  missing: create. Declared and present: leave alone. Present but undeclared: warn, never touch.
- A freshly created visualization starts auto-computed, so its rollbacks are only carried out if
  apply finds it already present (409, adoption).
- A declared rollback is pending for an existing visualization when the state file has no
  record of it, when the visualization's ``updated_at`` moved since the recorded rollback (someone
  edited it), or when the spec's ``revision`` is higher than the one recorded. One rollback per
  (visualization, mode), carrying every pending date of that mode.
- A visualization over all assets (``assets: all`` or omitted) that must be created while one
  of the same index over other assets exists says so: new assets arrived since that one, which
  stays (the API has no delete). That one is then told about there, not as undeclared.
- Selectors: what each matched, and AOIs a selector matched at the last apply (the state's
  record) but no longer does, with a warning on each that nothing declares any more
  (``selectors.summarize``).
- An undeclared visualization that an ignore rule covers is counted as ignored (naming the
  rule) instead of warned about.
- A declared visualization whose status the API contract does not list is neither usable nor
  failed: a warning says so, and its rollbacks stay planned (apply waits until it is usable).
- An AOI the API refused to show (403) gets nothing planned and a warning that says so; the
  plan is then incomplete (``Plan.incomplete``), and the command fails after showing it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from reconciler._gc import no_cycle_collection
from reconciler.api.legends import Legend
from reconciler.api.types import (
    CONTRACT_STATUSES,
    Asset,
    Index,
    Visualization,
    outside_contract,
)
from reconciler.core import selectors
from reconciler.core.identity import Identity
from reconciler.core.ignore import NO_RULES, IgnoreRules
from reconciler.core.legends import Evidence, dates_text, differences, evidence
from reconciler.core.observed import Observed, ObservedAoi
from reconciler.core.plan import (
    AoiSummary,
    AssetRef,
    Create,
    Ignored,
    IndexCreate,
    LegendChange,
    LegendReason,
    LegendTarget,
    Mode,
    Plan,
    PlanWarning,
    Rollback,
    RollbackReason,
    RollbackTarget,
    WarningKind,
)
from reconciler.core.resolve import Desired, DesiredVisualization
from reconciler.core.stale import desired_snapshots
from reconciler.spec.decls import IndexDecl

#: When one mode has dates pending for different reasons, the plan names the strongest.
_REASON_WEIGHT: dict[RollbackReason, int] = {
    "changed": 3,
    "revision": 2,
    "no-record": 1,
    "adopted": 0,
}


#: When one legend change has dates pending for different reasons, the plan names the strongest.
_LEGEND_WEIGHT: dict[LegendReason, int] = {
    "edited": 3,
    "declared-changed": 2,
    "no-record": 1,
    "new": 0,
    "adopted": 0,
}


class Record(Protocol):
    """What the planner reads of one state record (``state.VizRecord``)."""

    @property
    def updated_at(self) -> str: ...

    def revision_of(self, mode: str, date: str) -> int | None: ...

    def custom_of(self, mode: str, date: str) -> Mapping[str, Any] | None: ...

    def content_of(self, mode: str, date: str) -> str | None: ...

    def dated(self) -> list[tuple[str, str]]: ...


class Records(Protocol):
    """What the planner reads of the state (``state.State``): a record per visualization id."""

    def get(self, visualization_id: str) -> Record | None: ...


@no_cycle_collection
def build_plan(
    desired: Desired,
    observed: Observed,
    state: Records,
    *,
    ignore: IgnoreRules = NO_RULES,
    spec_paths: Sequence[str] = (),
    api_url: str = "",
    targets: Sequence[str] = (),
    previous_matches: selectors.Records | None = None,
    only_needed_indices: bool | None = None,
    also_indices: Collection[str] = (),
) -> Plan:
    """The changes that bring the observed world to the desired one.

    ``previous_matches`` is what the state remembers of each selector of the spec files read
    at the last apply: spec file -> selector key -> {AOI id: AOI name}
    (``selectors.previous_records``). ``only_needed_indices``: create only the custom indices
    the creates need, and ``also_indices`` (default: when ``targets`` are given; see
    ``index_changes``). Raises
    ``ResolutionError`` when ``desired`` carries references that did not resolve.
    """
    desired.raise_for_problems()
    creates: list[Create] = []
    rollbacks: list[Rollback] = []
    legends: list[LegendChange] = []
    confirmed: list[str] = []
    warnings: list[PlanWarning] = []
    ignored: list[Ignored] = []
    summaries: list[AoiSummary] = []
    by_aoi: dict[str, list[DesiredVisualization]] = {aoi.id: [] for aoi in desired.aois}
    for item in desired.visualizations:
        by_aoi.setdefault(item.aoi.id, []).append(item)

    for aoi_id, seen in observed.by_aoi.items():
        existing = seen.by_identity()
        matched: set[str] = set()
        unchanged = 0
        declared = by_aoi.get(aoi_id, [])
        for item in declared:
            viz = existing.get(item.identity)
            if viz is None:
                creates.append(_create(item))
                continue
            matched.add(viz.id)
            for kind, text in _STATUS_TEXT.items():
                if viz.status == kind:
                    warnings.append(_status_warning(item, viz, kind, text))
            if outside_contract(viz.status):
                warnings.append(_status_warning(item, viz, "unknown-status", _unknown(viz)))
            if viz.status == "failed":
                continue  # nothing to roll back on a visualization that has no legends
            record = state.get(viz.id)
            told: Evidence | None = None
            if record is not None and record.updated_at != viz.updated_at:
                told = evidence(record, observed.legends.get(viz.id))
            pending = _rollbacks(item, viz, record, told)
            custom = _legend_changes(item, viz, record, told, observed.legends.get(viz.id))
            rollbacks.extend(pending)
            legends.extend(custom)
            made = {(c.mode, d) for c in pending for d in c.dates}
            made |= {(c.mode, d) for c in custom for d in c.dates}
            if told is not None and made and told.confirms(made):
                confirmed.append(viz.id)
            unchanged += not (pending or custom)
        notes = _new_assets_notes(seen, declared, existing, matched)
        warnings.extend(notes)
        matched |= {n.visualization_id for n in notes if n.visualization_id}
        for viz in seen.visualizations:
            if viz.id in matched:
                continue
            rule = ignore.match(aoi_id, viz)
            if rule is None:
                warnings.append(_undeclared(seen.aoi.id, seen.aoi.name, viz))
            else:
                ignored.append(
                    Ignored(
                        aoi_id=seen.aoi.id,
                        aoi_name=seen.aoi.name,
                        visualization_id=viz.id,
                        index_name=viz.index_name or viz.index_id,
                        rule=str(rule.where),
                        reason=rule.reason,
                    )
                )
        summaries.append(
            AoiSummary(aoi_id, seen.aoi.name, declared=len(declared), unchanged=unchanged)
        )
    warnings.extend(
        PlanWarning(
            kind="unreadable",
            aoi_id=lost.aoi.id,
            aoi_name=lost.aoi.name,
            message=f"could not be read, so nothing is planned for this AOI: {lost.error}",
            where=lost.where,
        )
        for lost in observed.unreadable
    )
    selector_summaries, selector_warnings = selectors.summarize(
        desired.selectors, previous_matches or {}, declared=desired.declared
    )
    warnings.extend(selector_warnings)

    index_creates, index_warnings = index_changes(
        desired.indices,
        observed.indices,
        creates,
        only_needed=bool(targets) if only_needed_indices is None else only_needed_indices,
        also=also_indices,
    )
    warnings.extend(index_warnings)
    affected = {c.aoi_id for c in creates} | {r.aoi_id for r in rollbacks}
    affected |= {lg.aoi_id for lg in legends}
    return Plan(
        indices=tuple(index_creates),
        creates=tuple(creates),
        rollbacks=tuple(rollbacks),
        legends=tuple(legends),
        confirmed=tuple(sorted(confirmed)),
        warnings=tuple(warnings),
        aois=tuple(summaries),
        ignored=tuple(ignored),
        desired=desired_snapshots(desired, affected),
        observed=observed.snapshots(),
        api_url=api_url,
        targets=tuple(targets),
        spec_paths=tuple(spec_paths),
        selectors=selector_summaries,
    )


def _new_assets_notes(
    seen: ObservedAoi,
    declared: Sequence[DesiredVisualization],
    existing: Mapping[Identity, Visualization],
    matched: set[str],
) -> list[PlanWarning]:
    """For each visualization over all assets to be created: the one it follows, if any.

    Its predecessor is an undeclared visualization of the same index over some of the assets,
    all others of which arrived after it (created later; by date where the API gives no
    creation time): the one that was "all assets" before new ones came. The largest wins (then
    the smallest id); each is claimed once.
    """
    notes: list[PlanWarning] = []
    claimed: set[str] = set()
    assets = {a.id: a for a in seen.assets or ()}
    for item in declared:
        if item.assets is not None or item.decl.asset_policy != "all":
            continue
        if item.identity in existing:
            continue
        candidates = [
            v
            for v in seen.visualizations
            if v.index_id == item.index.id
            and v.id not in matched
            and v.id not in claimed
            and _followed_by(v, item.identity.asset_ids, assets)
        ]
        if candidates:
            before = min(candidates, key=lambda v: (-len(v.assets), v.id))
            claimed.add(before.id)
            notes.append(_new_assets_note(item, before, assets))
    return notes


def _followed_by(viz: Visualization, wanted: frozenset[str], assets: Mapping[str, Asset]) -> bool:
    """Whether ``viz`` covered all assets until the rest of ``wanted`` arrived after it."""
    had = {a.id for a in viz.assets}
    if not had or not had < wanted:
        return False
    latest = max(a.date for a in viz.assets)
    for asset_id in wanted - had:
        asset = assets.get(asset_id)
        if asset is None:
            return False
        after = _later(asset.created_at, viz.created_at)
        if after is None:
            after = asset.date >= latest
        if not after:
            return False
    return True


def _later(first: str | None, second: str | None) -> bool | None:
    """``first`` > ``second`` as timestamps; None when either is missing or unreadable."""
    if first is None or second is None:
        return None
    try:
        a, b = dt.datetime.fromisoformat(first), dt.datetime.fromisoformat(second)
        return a > b
    except (ValueError, TypeError):  # TypeError: naive against aware
        return None


def _new_assets_note(
    item: DesiredVisualization, before: Visualization, assets: Mapping[str, Asset], limit: int = 5
) -> PlanWarning:
    new = sorted(
        (assets[i] for i in item.identity.asset_ids - {a.id for a in before.assets}),
        key=lambda a: (a.date, a.name, a.id),
    )
    named = ", ".join(f"{a.name} {a.date}" for a in new[:limit])
    if len(new) > limit:
        named += f" and {len(new) - limit} more"
    total = len(item.identity.asset_ids)
    return PlanWarning(
        kind="new-assets",
        aoi_id=item.aoi.id,
        aoi_name=item.aoi.name,
        visualization_id=before.id,
        message=(
            f"{len(new)} new {'asset' if len(new) == 1 else 'assets'} ({named}) since "
            f"visualization {before.id} "
            f"('{item.index.name}' over "
            f"{_assets_text(before)}): a new one over all {total} assets is created "
            f"(assets: all); {before.id} stays, the API has no delete"
        ),
        where=str(item.where),
    )


def _assets_text(viz: Visualization) -> str:
    dates = sorted(a.date for a in viz.assets)
    if not dates:
        return "no assets"
    if len(dates) == 1:
        return f"1 asset, {dates[0]}"
    return f"{len(dates)} assets, {dates[0]} … {dates[-1]}"


def _asset_ref(asset: Asset) -> AssetRef:
    return AssetRef(id=asset.id, name=asset.name, date=asset.date)


def _create(item: DesiredVisualization) -> Create:
    return Create(
        aoi_id=item.aoi.id,
        aoi_name=item.aoi.name,
        index_id=item.index.id,
        index_name=item.index.name,
        assets=None
        if item.assets is None
        else tuple(
            sorted((_asset_ref(a) for a in item.assets), key=lambda a: (a.date, a.name, a.id))
        ),
        resolution=item.resolution,
        where=str(item.where),
        rollbacks=tuple(RollbackTarget(r.mode, r.dates, r.revision) for r in item.rollbacks),
        identity=tuple(sorted(item.identity.asset_ids)),
        legend_modes=item.index.legend_modes,
        legends=tuple(LegendTarget(lg.mode, lg.dates, lg.content) for lg in item.legends),
    )


def _rollbacks(
    item: DesiredVisualization, viz: Visualization, record: Record | None, told: Evidence | None
) -> list[Rollback]:
    """The rollbacks still pending for one existing visualization, one per mode.

    ``told``: what the legends read back say, when ``updated_at`` moved since the record.
    """
    out: list[Rollback] = []
    for declared in item.rollbacks:
        reasons: dict[str, RollbackReason] = {}
        notes: list[str] = []
        if record is None:
            reasons = dict.fromkeys(declared.dates, "no-record")
            notes.append("the state file has no record of this visualization")
        else:
            edited: list[str] = []
            unknown: list[str] = []
            revised: list[str] = []
            for date in declared.dates:
                moved = None if told is None else told.told(declared.mode, date)
                ours = (
                    record.revision_of(declared.mode, date) is not None
                    or record.custom_of(declared.mode, date) is not None
                )
                # A date the record does not hold was never made: no-record, not an edit.
                if told is not None and moved is not False and ours:
                    reasons[date] = "changed"
                    (edited if moved else unknown).append(date)
                    continue
                recorded = record.revision_of(declared.mode, date)
                if recorded is None:
                    reasons[date] = "no-record"
                elif recorded < declared.revision:
                    reasons[date] = "revision"
                    revised.append(f"{date}: revision {recorded} → {declared.revision}")
            if edited:
                notes.append(
                    f"the {declared.mode} legend of {dates_text(edited)} was changed since the "
                    "last rollback (read back through the SLD endpoint)"
                )
            if unknown:
                notes.append(
                    f"updated_at moved from {record.updated_at} to {viz.updated_at} since the "
                    "last rollback"
                )
            missing = [d for d, why in reasons.items() if why == "no-record"]
            if missing:
                notes.append("never rolled back by this tool: " + dates_text(missing))
            notes.extend(revised)
        if not reasons:
            continue
        reason = max(reasons.values(), key=_REASON_WEIGHT.__getitem__)
        out.append(
            Rollback(
                aoi_id=item.aoi.id,
                aoi_name=item.aoi.name,
                visualization_id=viz.id,
                index_id=item.index.id,
                index_name=item.index.name,
                mode=declared.mode,
                dates=tuple(sorted(reasons)),
                reason=reason,
                detail="; ".join(notes),
                revision=declared.revision,
                where=str(declared.where),
            )
        )
    return out


def _legend_changes(
    item: DesiredVisualization,
    viz: Visualization,
    record: Record | None,
    told: Evidence | None,
    read: Mapping[str, Mapping[str, Legend]] | None,
) -> list[LegendChange]:
    """The custom legends still to set on one existing visualization: one PUT per mode (and
    number of bins), carrying every pending date of it.

    A date's legend is pending when the state has no record that this tool set it, when the
    specs declare another one than the recorded, or when it was read back changed.
    """
    pending: dict[tuple[Mode, int | None], list[tuple[str, LegendTarget, LegendReason, str]]] = {}
    for legend in item.legends:
        target = LegendTarget(legend.mode, (), legend.content)
        declared = legend.content.as_record()
        for date in legend.dates:
            why: LegendReason | None = None
            note = ""
            if record is None or record.custom_of(legend.mode, date) is None:
                why = "no-record"
            elif record.custom_of(legend.mode, date) != declared:
                why, note = "declared-changed", f"the specs declare another legend for {date}"
            elif told is not None:
                moved = told.told(legend.mode, date)
                shown = (read or {}).get(legend.mode, {}).get(date)
                if moved is None:
                    why = "edited"
                    note = (
                        f"updated_at moved from {record.updated_at} to {viz.updated_at} and the "
                        f"legend of {date} could not be read back"
                    )
                elif moved:
                    found = differences(legend.content, shown) if shown is not None else []
                    why = "edited"
                    note = f"the legend of {date} was changed" + (
                        f": {'; '.join(found)}" if found else ""
                    )
            if why is not None:
                key = (legend.mode, legend.content.bins)
                pending.setdefault(key, []).append((date, target, why, note))
    out: list[LegendChange] = []
    for (mode, bins), dated in sorted(pending.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        groups: dict[LegendTarget, list[str]] = {}
        for date, target, _, _ in dated:
            groups.setdefault(target, []).append(date)
        reason = max((why for _, _, why, _ in dated), key=_LEGEND_WEIGHT.__getitem__)
        unrecorded = [date for date, _, why, _ in dated if why == "no-record"]
        notes = list(dict.fromkeys(note for _, _, _, note in dated if note))
        if unrecorded:
            notes.insert(0, f"no record that this tool set the legend of {dates_text(unrecorded)}")
        out.append(
            LegendChange(
                aoi_id=item.aoi.id,
                aoi_name=item.aoi.name,
                visualization_id=viz.id,
                index_id=item.index.id,
                index_name=item.index.name,
                mode=mode,
                dates=tuple(sorted(date for date, _, _, _ in dated)),
                legends=tuple(
                    LegendTarget(t.mode, tuple(sorted(dates)), t.content)
                    for t, dates in groups.items()
                ),
                reason=reason,
                detail="; ".join(notes),
                where=str(
                    next(
                        lg.where
                        for lg in item.legends
                        if lg.mode == mode and lg.content.bins == bins
                    )
                ),
            )
        )
    return out


def index_changes(
    declared: Sequence[IndexDecl],
    indices: Sequence[Index],
    creates: Sequence[Create],
    *,
    only_needed: bool,
    also: Collection[str] = (),
) -> tuple[list[IndexCreate], list[PlanWarning]]:
    """The declared custom indices to create, and those that exist but differ (the API cannot
    change an index: said, never silently accepted). ``indices``: every index that exists.

    ``only_needed`` (a plan of some AOIs, ``--target``): only the indices ``creates`` need,
    and those named in ``also`` (the ones a change to the specs touched).
    """
    needed = {c.new_index for c in creates if c.new_index is not None}
    existing = {i.name: i for i in indices}
    made: list[IndexCreate] = []
    warnings: list[PlanWarning] = []
    for decl in declared:
        found = existing.get(decl.name)
        if found is None:
            if only_needed and decl.name not in needed and decl.name not in also:
                continue
            made.append(
                IndexCreate(
                    name=decl.name,
                    description=decl.description,
                    expression=decl.expression,
                    expression_type=decl.expression_type,
                    rescale=decl.rescale,
                    colormap=decl.colormap,
                    satellite_id=decl.satellite_id,
                    where=str(decl.where),
                )
            )
            continue
        if found.type != "custom":
            continue  # a preset name: a resolution problem already
        differs = _index_differences(decl, found)
        if differs:
            warnings.append(
                PlanWarning(
                    kind="index-differs",
                    aoi_id="",
                    aoi_name="",
                    message=(
                        f"custom index '{decl.name}' ({found.id}) exists but differs from its "
                        f"declaration: {'; '.join(differs)}. The API cannot change an index: "
                        "visualizations use it as it is. Change the declaration to match, or "
                        "declare an index of another name"
                    ),
                    where=str(decl.where),
                )
            )
    return made, warnings


def _index_differences(decl: IndexDecl, index: Index) -> list[str]:
    """What the live index has other than declared (fields the API did not send are not
    compared)."""
    live: dict[str, object] = {
        "expression": index.expression,
        "expression_type": index.expression_type,
        "rescale": None if index.rescale is None else list(index.rescale),
        "colormap": index.colormap,
        "satellite_id": index.satellite_id,
        "description": index.description,
    }
    wanted = decl.fields()
    return [
        f"{key} is {_shown(value)}, declared {_shown(wanted[key])}"
        for key, value in live.items()
        if value is not None and _comparable(key, value) != _comparable(key, wanted[key])
    ]


def _comparable(key: str, value: object) -> object:
    # Spaces in an expression change nothing it computes: "(B08-B05)" is "(B08 - B05)".
    if key == "expression" and isinstance(value, str):
        return "".join(value.split())
    return value


def _shown(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return repr(value)


_STATUS_TEXT: dict[WarningKind, str] = {
    "failed": (
        "failed when it was created; its rollbacks are skipped, and reconciler cannot recreate "
        "it (the API has no delete): fix it in the Pixxel console"
    ),
    "partial_success": "was only partly computed (partial_success); some dates may have no legend",
    "creating": "is still being created; apply waits for it before rolling back its legends",
}


def _unknown(viz: Visualization) -> str:
    """The warning's text for a status the API contract does not list."""
    status = "no status" if viz.status is None else f"status {viz.status!r}"
    return (
        f"has {status}, which the API contract does not list "
        f"({', '.join(CONTRACT_STATUSES)}): it is neither usable nor failed, so apply waits "
        "for it to become usable (bounded by --wait-timeout) before it rolls back its legends"
    )


def _status_warning(
    item: DesiredVisualization, viz: Visualization, kind: WarningKind, text: str
) -> PlanWarning:
    return PlanWarning(
        kind=kind,
        aoi_id=item.aoi.id,
        aoi_name=item.aoi.name,
        visualization_id=viz.id,
        message=f"declared visualization '{item.index.name}' ({viz.id}) {text}",
        where=str(item.where),
    )


def _undeclared(aoi_id: str, aoi_name: str, viz: Visualization) -> PlanWarning:
    dates = sorted(a.date for a in viz.assets)
    if len(dates) > 3:
        assets = f"{len(dates)} assets, {dates[0]} … {dates[-1]}"
    else:
        assets = ", ".join(sorted(f"{a.name} {a.date}" for a in viz.assets)) or "no assets"
    return PlanWarning(
        kind="undeclared",
        aoi_id=aoi_id,
        aoi_name=aoi_name,
        visualization_id=viz.id,
        message=(
            f"'{viz.index_name or viz.index_id}' over [{assets}] is not declared in the specs: "
            "left alone"
        ),
    )
