"""Shard plans merged into one (``reconciler show plan-1.json plan-2.json ...``).

Pure. A matrix job plans each shard apart (``plan --shard I/N --out``); the review wants one
comment. Merging is only for showing: a merged plan is never applied (each shard applies its
own). Plans that cannot be one review are refused: of another API, other spec paths, other
shard counts, one shard twice, or a plan without a shard.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from reconciler.core.plan import AoiName, ChangedSince, Plan, SelectorSummary, Sharding
from reconciler.errors import PlanFileError


def merge_plans(plans: Sequence[tuple[str, Plan]]) -> Plan:
    """One plan of every ``(source, plan)`` given, each a shard's; ``PlanFileError`` naming
    the source of the first that does not fit with the first plan."""
    if len(plans) == 1:
        return plans[0][1]
    first_source, first = plans[0]
    if first.shard is None:
        raise _refused(first_source, "it was made without --shard; only shard plans merge")
    seen: dict[int, str] = {}
    for source, plan in plans:
        sharding = plan.shard
        if sharding is None:
            raise _refused(source, "it was made without --shard; only shard plans merge")
        if sharding.count != first.shard.count:
            raise _refused(
                source,
                f"it is a plan of {sharding.count} shards, and {first_source} of "
                f"{first.shard.count}",
            )
        if plan.api_url != first.api_url:
            raise _refused(source, f"it is of another API than {first_source}")
        if sorted(plan.spec_paths) != sorted(first.spec_paths):
            raise _refused(source, f"it was made from other spec paths than {first_source}")
        if _base(plan.changed_since) != _base(first.changed_since):
            raise _refused(source, f"it covers other changes than {first_source}")
        for index in sharding.shards:
            if index in seen:
                raise _refused(source, f"shard {index} is also in {seen[index]}")
            seen[index] = source
    all_plans = [plan for _, plan in plans]
    indices = {index.name: index for plan in all_plans for index in plan.indices}
    return Plan(
        api_url=first.api_url,
        targets=tuple(dict.fromkeys(t for plan in all_plans for t in plan.targets)),
        changed_since=_since(all_plans),
        shard=Sharding(first.shard.count, tuple(sorted(seen))),
        spec_paths=first.spec_paths,
        aois=tuple(a for plan in all_plans for a in plan.aois),
        # Every shard may create a custom index its creates need: it is one change.
        indices=tuple(indices.values()),
        creates=tuple(c for plan in all_plans for c in plan.creates),
        rollbacks=tuple(r for plan in all_plans for r in plan.rollbacks),
        legends=tuple(c for plan in all_plans for c in plan.legends),
        # A warning about the specs as a whole is in every shard's plan: said once.
        warnings=tuple(dict.fromkeys(w for plan in all_plans for w in plan.warnings)),
        selectors=_selectors(all_plans),
        ignored=tuple(i for plan in all_plans for i in plan.ignored),
        confirmed=tuple(v for plan in all_plans for v in plan.confirmed),
        desired={k: v for plan in all_plans for k, v in plan.desired.items()},
        observed={k: v for plan in all_plans for k, v in plan.observed.items()},
    )


def _base(since: ChangedSince | None) -> tuple[str, str, str] | None:
    """What shards of one pull request's plan share: the revision, and whether all was read."""
    return None if since is None else (since.ref, since.commit, since.everything)


def _since(plans: Sequence[Plan]) -> ChangedSince | None:
    """The shards' ``changed_since`` as one: their AOIs counted together."""
    parts = [plan.changed_since for plan in plans if plan.changed_since is not None]
    if not parts:
        return None
    return dataclasses.replace(
        parts[0],
        aois=sum(p.aois for p in parts),
        indices=tuple(dict.fromkeys(i for p in parts for i in p.indices)),
        removed=tuple(dict.fromkeys(r for p in parts for r in p.removed)),
        pending=tuple(dict.fromkeys(r for p in parts for r in p.pending)),
    )


def _selectors(plans: Sequence[Plan]) -> tuple[SelectorSummary, ...]:
    """Each selector once, with what it matched in every shard merged."""
    merged: dict[tuple[str, str | None], SelectorSummary] = {}
    for plan in plans:
        for summary in plan.selectors:
            key = (summary.key, summary.where)
            held = merged.get(key)
            if held is None:
                merged[key] = summary
                continue
            matched = _names(held.matched + summary.matched)
            # Each shard's count of the others' matches says how many the selector matched in
            # all; what the merged plans do not show is in the shards missing from it.
            total = len(held.matched) + held.elsewhere
            merged[key] = SelectorSummary(
                key=summary.key,
                where=summary.where,
                matched=matched,
                unmatched=_names(held.unmatched + summary.unmatched),
                elsewhere=max(0, total - len(matched)),
            )
    return tuple(merged.values())


def _names(aois: tuple[AoiName, ...]) -> tuple[AoiName, ...]:
    return tuple(sorted(set(aois), key=lambda a: (a.name, a.id)))


def _refused(source: str, why: str) -> PlanFileError:
    return PlanFileError(f"{source}: cannot be shown with the other plans: {why}")
