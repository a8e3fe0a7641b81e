"""Whether a saved plan still describes the world: what moved between plan and apply.

Pure: compares the snapshots a plan saved with fresh ones; the engine reads the fresh ones.
"""

from __future__ import annotations

from collections.abc import Mapping

from deepdiff import DeepDiff

from reconciler.errors import StalePlanError
from reconciler.plan import AoiSnapshot, Plan


def describe_drift(
    before: Mapping[str, AoiSnapshot], after: Mapping[str, AoiSnapshot]
) -> list[str]:
    """What changed between two sets of snapshots (AOI id → snapshot), one sentence each."""
    lines: list[str] = []
    for aoi_id in sorted(set(before) | set(after)):
        old, new = before.get(aoi_id), after.get(aoi_id)
        if old is None or new is None:
            known = new or old
            name = known.name if known is not None else aoi_id
            lines.append(f"AOI {name}: {'no longer' if new is None else 'now'} part of the plan")
            continue
        diff = DeepDiff(old.to_dict(), new.to_dict(), view="tree")
        for report_type, levels in diff.items():
            for level in levels:
                path = "/".join(str(p) for p in level.path(output_format="list"))
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
    spec_fingerprint: str,
    observed: Mapping[str, AoiSnapshot],
    api_url: str,
) -> None:
    """Refuse a saved plan when the specs or the AOIs it changes have moved since."""
    reasons: list[str] = []
    if plan.api_url and plan.api_url != api_url:
        reasons.append(f"the plan was made against {plan.api_url}, not {api_url}")
    if plan.spec_fingerprint != spec_fingerprint:
        reasons.append(f"the specs ({', '.join(plan.spec_paths) or 'specs/'}) changed")
    wanted = plan.affected_aois & set(plan.observed)
    reasons.extend(
        describe_drift(
            {k: v for k, v in plan.observed.items() if k in wanted},
            {k: v for k, v in observed.items() if k in wanted},
        )
    )
    if reasons:
        raise StalePlanError(
            "the saved plan is stale, nothing was applied:\n  - "
            + "\n  - ".join(reasons)
            + "\nRun 'reconciler plan' again and review the new plan."
        )
