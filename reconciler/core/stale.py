"""Whether a saved plan still describes the world: what moved between plan and apply.

A saved plan is stale only when what it would do may have changed: the specs now declare
something else for an AOI the plan changes (its resolved desired state), or such an AOI looks
different in the API (its observed state). Comments, formatting, moved lines and other AOIs'
edits leave a plan valid, so a merge between plan and apply does not break the pre-deploy step.

Pure: builds the snapshots a plan keeps and compares them with fresh ones; the engine reads
the fresh ones.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from deepdiff import DeepDiff

from reconciler.core.plan import (
    AoiSnapshot,
    DesiredState,
    DesiredViz,
    LegendTarget,
    Plan,
    RollbackTarget,
)
from reconciler.core.planfile import to_json
from reconciler.core.resolve import Desired, DesiredVisualization
from reconciler.errors import StalePlanError
from reconciler.text import clean


def desired_snapshots(desired: Desired, aoi_ids: Collection[str]) -> DesiredState:
    """What the specs declare for each AOI of ``aoi_ids``, keyed by declaration (``_key``)."""
    state: DesiredState = {aoi_id: {} for aoi_id in aoi_ids}
    # Visualizations of an AOI often share their asset set: sort and keep each set once.
    ordered: dict[frozenset[str], tuple[str, ...]] = {}
    for item in desired.visualizations:
        if item.aoi.id in state:
            ids = item.identity.asset_ids
            identity = ordered.get(ids)
            if identity is None:
                identity = ordered[ids] = tuple(sorted(ids))
            assets = _declared(item, identity)
            state[item.aoi.id][_key(item, assets)] = _desired_viz(item, identity, assets)
    return state


def _declared(item: DesiredVisualization, identity: tuple[str, ...]) -> tuple[str, ...] | None:
    """The declared source asset ids, sorted (the identity's tuple when they are the same)."""
    if item.assets is None:
        return None
    assets = tuple(sorted(a.id for a in item.assets))
    return identity if assets == identity else assets


def _key(item: DesiredVisualization, assets: tuple[str, ...] | None) -> str:
    """The declaration: its index and listed assets (sorted ids), or its policy (``all``,
    ``any``).

    Not the identity: new imagery changes what ``all`` resolves to, not which declaration it
    is, so the change is told as such (see ``_differences``).
    """
    if assets is None:
        return f"{item.index.id}:{item.decl.asset_policy}"
    return f"{item.index.id}:{','.join(assets)}"


def _desired_viz(
    item: DesiredVisualization, identity: tuple[str, ...], assets: tuple[str, ...] | None
) -> DesiredViz:
    if item.assets is None:
        # "any" accepts whichever visualization of the index exists; "all" means every asset.
        policy = item.decl.asset_policy
        label = (
            f"{item.index.name} ({'any existing one' if policy == 'any' else 'over all assets'})"
        )
        label = label.replace(" (over all assets)", " over all assets")
    else:
        ordered = sorted(item.assets, key=lambda a: (a.date, a.name, a.id))
        label = f"{item.index.name} over " + ", ".join(f"{a.name} ({a.date})" for a in ordered)
    return DesiredViz(
        label=label,
        index_id=item.index.id,
        assets=assets,
        identity=identity,
        resolution=item.resolution,
        rollbacks=tuple(
            RollbackTarget(r.mode, r.dates, r.revision)
            for r in sorted(item.rollbacks, key=lambda r: r.mode)
        ),
        legends=tuple(
            sorted(
                (LegendTarget(lg.mode, lg.dates, lg.content) for lg in item.legends),
                key=lambda t: (t.mode, t.dates),
            )
        ),
    )


def describe_desired_changes(
    names: Mapping[str, str],
    before: Mapping[str, Mapping[str, DesiredViz]],
    after: Mapping[str, Mapping[str, DesiredViz]],
    assets: Mapping[str, str] | None = None,
) -> list[str]:
    """What the specs now declare differently for each AOI (id → name in ``names``).

    ``assets`` (asset id → "name (date)") names the assets that came or went under a policy.
    """
    lines: list[str] = []
    for aoi_id in sorted(before):
        name = names.get(aoi_id, aoi_id)
        old, new = before[aoi_id], after.get(aoi_id)
        if new is None:
            lines.append(f"AOI {name}: no longer declared in the specs")
            continue
        for key in sorted(set(old) | set(new)):
            was, now = old.get(key), new.get(key)
            if now is None and was is not None:
                lines.append(f"AOI {name}: the specs no longer declare {was.label}")
            elif was is None and now is not None:
                lines.append(f"AOI {name}: the specs now also declare {now.label}")
            elif was is not None and now is not None and was != now:
                what = "; ".join(_differences(was, now, assets or {}))
                lines.append(f"AOI {name}: {now.label}: {what}")
    return lines


def _differences(was: DesiredViz, now: DesiredViz, assets: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    if was.identity != now.identity:
        # Under a policy the same declaration now stands for another set of assets.
        came = [assets.get(a, a) for a in now.identity if a not in was.identity]
        went = [assets.get(a, a) for a in was.identity if a not in now.identity]
        if came:
            out.append(f"now also over {', '.join(came)}")
        if went:
            out.append(f"no longer over {', '.join(went)}")
    if was.resolution != now.resolution:
        out.append(f"resolution {_text(was.resolution)} → {_text(now.resolution)}")
    old = {r.mode: r for r in was.rollbacks}
    new = {r.mode: r for r in now.rollbacks}
    for mode in sorted(set(old) | set(new)):
        a, b = old.get(mode), new.get(mode)
        if a == b:
            continue
        if a is None or b is None:
            what = "added" if a is None else "removed"
            out.append(f"{mode} rollback {what}")
            continue
        if a.dates != b.dates:
            out.append(f"{mode} rollback dates {', '.join(a.dates)} → {', '.join(b.dates)}")
        if a.revision != b.revision:
            out.append(f"{mode} rollback revision {a.revision} → {b.revision}")
    before = {(t.mode, d): t.content for t in was.legends for d in t.dates}
    after = {(t.mode, d): t.content for t in now.legends for d in t.dates}
    for mode, date in sorted(set(before) | set(after)):
        a_content, b_content = before.get((mode, date)), after.get((mode, date))
        if a_content == b_content:
            continue
        if a_content is None or b_content is None:
            what = "added" if a_content is None else "removed"
            out.append(f"{mode} legend of {date} {what}")
        else:
            out.append(f"{mode} legend of {date} now {b_content.describe()}")
    return out or ["declared differently"]


def _text(value: float | None) -> str:
    return "default" if value is None else f"{value:g}"


def describe_drift(
    before: Mapping[str, AoiSnapshot], after: Mapping[str, AoiSnapshot]
) -> list[str]:
    """What changed between two sets of snapshots (AOI id → snapshot), one sentence each.

    Only the visualizations count: they decide what apply creates, adopts and rolls back.
    New imagery matters only to a declaration over a policy, and the desired state tells that
    (``describe_desired_changes``); a renamed AOI changes nothing apply does.
    """
    lines: list[str] = []
    for aoi_id in sorted(set(before) | set(after)):
        old, new = before.get(aoi_id), after.get(aoi_id)
        if old is None or new is None:
            known = new or old
            name = known.name if known is not None else aoi_id
            lines.append(f"AOI {name}: {'no longer' if new is None else 'now'} part of the plan")
            continue
        if old.visualizations == new.visualizations:
            continue  # the common case, and DeepDiff takes a fifth of a millisecond to say so
        # threshold 0: one line per visualization, never "changed from {...} to {...}" for
        # the whole AOI when few of its visualizations are in both (DeepDiff's default).
        diff = DeepDiff(
            to_json(old)["visualizations"],
            to_json(new)["visualizations"],
            view="tree",
            threshold_to_diff_deeper=0,
        )
        for report_type, levels in diff.items():
            for level in levels:
                path = "/".join(["visualizations", *map(str, level.path(output_format="list"))])
                if report_type.endswith("_added"):
                    lines.append(f"AOI {new.name}: {path} appeared{_brief(level.t2)}")
                elif report_type.endswith("_removed"):
                    lines.append(f"AOI {new.name}: {path} is gone{_brief(level.t1)}")
                else:
                    lines.append(
                        f"AOI {new.name}: {path} changed from {level.t1!r} to {level.t2!r}"
                    )
    return sorted(lines)


def _brief(value: object) -> str:
    """' (NDVI, success)' for a visualization snapshot; '' for anything else."""
    if isinstance(value, Mapping) and "index" in value:
        return f" ({value.get('index')}, {value.get('status')})"
    return ""


def check_not_stale(
    plan: Plan,
    *,
    desired: Mapping[str, Mapping[str, DesiredViz]],
    observed: Mapping[str, AoiSnapshot],
    api_url: str,
    replan: str = "reconciler plan",
) -> None:
    """Refuse a saved plan when what it would do may have changed since it was made.

    ``desired`` and ``observed`` are fresh snapshots of (at least) the AOIs the plan changes;
    ``replan`` is the command the error tells the user to run.
    """
    reasons: list[str] = []
    if plan.api_url and plan.api_url != api_url:
        reasons.append(f"the plan was made against {plan.api_url}, not {api_url}")
    affected = plan.affected_aois
    names = {a.aoi_id: a.aoi_name for a in plan.aois}
    reasons.extend(
        describe_desired_changes(
            names,
            {k: v for k, v in plan.desired.items() if k in affected},
            desired,
            _asset_names([*plan.observed.values(), *observed.values()]),
        )
    )
    wanted = affected & set(plan.observed)
    reasons.extend(
        describe_drift(
            {k: v for k, v in plan.observed.items() if k in wanted},
            {k: v for k, v in observed.items() if k in wanted},
        )
    )
    if reasons:
        raise stale_error(reasons, replan)


def _asset_names(snapshots: Sequence[AoiSnapshot]) -> dict[str, str]:
    """Asset id → "name (date)" from every snapshot that read its AOI's assets."""
    out: dict[str, str] = {}
    for snapshot in snapshots:
        for asset_id, name_date in (snapshot.assets or {}).items():
            name, _, date = name_date.rpartition(" ")
            out[asset_id] = f"{name} ({date})" if name else name_date
    return out


def stale_error(reasons: Sequence[str], replan: str) -> StalePlanError:
    """The refusal of a stale plan: what moved, one line each, and the command to run.

    Reasons quote names from the API and the specs: each is ``clean``, so no name can start a
    line of its own in a CI log.
    """
    return StalePlanError(
        "the saved plan is stale, nothing was applied:\n  - "
        + "\n  - ".join(clean(reason) for reason in reasons)
        + f"\nMake a new plan, review it and apply that one: {replan}"
    )
