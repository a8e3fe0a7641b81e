"""Selectors: one declaration for many AOIs, matched against the AOI listing.

Pure: no I/O. A selector (``spec.SelectorDecl``) matches an AOI when every criterion it gives
holds: a name in ``names`` equal to the AOI's name or a glob pattern matching it
(``fnmatchcase``: ``*``, ``?``, ``[abc]``; case-sensitive), the AOI's id in ``ids``, its
``project_id`` in ``projects``. A plain name or an id that matches no listed AOI is a spec
problem at its position (a typo must not select nothing silently); a pattern or a project
that matches nothing is not (a new project may be empty): the plan warns about a selector that
matches no AOI.

What each selector matched is remembered per spec file (``state.State.selectors``): a plan
reports, and an apply replaces, only the records of the files under the spec paths it was given
(``covered``), so planning one file never reports the selectors of the others as gone.

Reading the AOIs: one listing serves every selector and every per-AOI entry. When every
declaration is a selector naming projects, ``listing_projects`` says which projects to ask
the API for (its ``project_ids`` filter), so AOIs of other projects are never paged through.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from reconciler.api.types import Aoi
from reconciler.core.plan import AoiName, PlanWarning, SelectorSummary
from reconciler.core.shards import Shard
from reconciler.errors import Problem
from reconciler.spec.decls import AoiDecl, SelectorDecl, Specs
from reconciler.text import closest

_GLOB_CHARS = frozenset("*?[")


def is_pattern(name: str) -> bool:
    """True when ``name`` holds glob characters, so it may match any number of AOIs."""
    return not _GLOB_CHARS.isdisjoint(name)


@dataclass(frozen=True, slots=True)
class SelectorResult:
    """What one selector matched in the AOI listing, in listing order; ``problems`` are its
    plain names and ids that match no AOI."""

    selector: SelectorDecl
    matched: tuple[Aoi, ...]
    problems: tuple[Problem, ...] = ()
    #: How many more AOIs it matched that belong to other shards (``--shard``): not planned
    #: here, but no reason to say it matches nothing.
    elsewhere: int = 0

    def entries(self) -> tuple[AoiDecl, ...]:
        """One per-AOI entry for each matched AOI: what resolution treats like a spec entry."""
        return tuple(
            AoiDecl(
                id=aoi.id,
                name=None,
                where=self.selector.where,
                visualizations=self.selector.visualizations,
                selector=self.selector,
            )
            for aoi in self.matched
        )


def listing_projects(specs: Specs) -> tuple[str, ...] | None:
    """The projects to filter the AOI listing on, or None when every AOI must be listed.

    Only when all declarations are selectors that name projects: then no AOI outside those
    projects can be selected, and the API's filter spares paging through them.
    """
    if specs.aois or not specs.selectors:
        return None
    if any(not s.projects for s in specs.selectors):
        return None
    return tuple(sorted({p for s in specs.selectors for p in s.projects}))


def match(selector: SelectorDecl, aois: Sequence[Aoi], *, filtered: bool = False) -> SelectorResult:
    """The AOIs of ``aois`` that ``selector`` matches.

    ``filtered``: ``aois`` is the listing of some projects only, so a plain name or id missing
    from it may exist elsewhere; the problem then says so.
    """
    names, ids, projects = set(selector.names), set(selector.ids), set(selector.projects)
    patterns = [n for n in selector.names if is_pattern(n)]
    plain = names - set(patterns)

    def hit(aoi: Aoi) -> bool:
        if names and aoi.name not in plain and not any(fnmatchcase(aoi.name, p) for p in patterns):
            return False
        if ids and aoi.id not in ids:
            return False
        return not projects or aoi.project_id in projects

    scope = " in the selected projects" if filtered else ""
    problems: list[Problem] = []
    known_names = {a.name for a in aois}
    known_ids = {a.id for a in aois}
    for name, where in zip(selector.names, selector.name_wheres, strict=True):
        if name in plain and name not in known_names:
            problems.append(
                Problem(f"unknown AOI '{name}'{scope}{closest(name, known_names)}", where)
            )
    for aoi_id, where in zip(selector.ids, selector.id_wheres, strict=True):
        if aoi_id not in known_ids:
            problems.append(
                Problem(
                    f"unknown AOI id '{aoi_id}'{scope}: no AOI with this id is visible to this "
                    "API key",
                    where,
                )
            )
    return SelectorResult(selector, tuple(a for a in aois if hit(a)), tuple(problems))


#: Records: spec file -> selector key -> {AOI id: AOI name} (``state.State.selectors``).
Records = Mapping[str, Mapping[str, Mapping[str, str]]]


def spec_file(where: str) -> str:
    """The spec file of a position as plans write it ('path:line:column'), as records name it.

    Normalised ('./specs/a.yaml' is 'specs/a.yaml'), so that ``plan specs/`` and
    ``plan ./specs/a.yaml`` agree on the file.
    """
    return os.path.normpath(where.rsplit(":", 2)[0])


def covered(file: str, spec_paths: Sequence[str]) -> bool:
    """Whether a plan of ``spec_paths`` reads ``file``, or would if it still existed.

    A file given, or one under a directory given. The file "" (records of an older reconciler,
    which did not keep the file) is covered by every plan.
    """
    if not file:
        return True
    for path in spec_paths:
        base = os.path.normpath(path)
        if base == os.curdir:
            if not os.path.isabs(file) and file.split(os.sep, 1)[0] != os.pardir:
                return True
        elif file == base or file.startswith(base.rstrip(os.sep) + os.sep):
            return True
    return False


def previous_records(records: Records, spec_paths: Sequence[str]) -> Records:
    """The records of the spec files a plan of ``spec_paths`` reads."""
    return {file: keys for file, keys in records.items() if covered(file, spec_paths)}


def in_shard(records: Records, shard: Shard | None) -> Records:
    """The records of ``shard``'s AOIs only: a shard says nothing of the other shards' AOIs."""
    if shard is None:
        return records
    return {
        file: {
            key: {aoi_id: name for aoi_id, name in aois.items() if shard.owns(aoi_id)}
            for key, aois in keys.items()
        }
        for file, keys in records.items()
    }


def records(summaries: Sequence[SelectorSummary]) -> dict[str, dict[str, dict[str, str]]]:
    """What the selectors still in the specs match now, as the state records it."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for summary in summaries:
        if summary.where is not None:
            out.setdefault(spec_file(summary.where), {})[summary.key] = {
                a.id: a.name for a in summary.matched
            }
    return out


def summarize(
    results: Sequence[SelectorResult],
    previous: Records,
    *,
    declared: Collection[str] = (),
) -> tuple[tuple[SelectorSummary, ...], list[PlanWarning]]:
    """What each selector matched, and what it matched at the last apply but no longer does.

    ``previous`` is the state's record of the spec files read (``previous_records``): spec
    file -> selector key -> {AOI id: AOI name} at the last apply.
    A selector still in the specs lists the AOIs it dropped; a recorded selector that is gone
    (removed, or its criteria edited) lists those of its AOIs that no selector matches now.
    A dropped AOI that nothing in the specs declares any more (not in ``declared``) gets a
    warning: the plan does not even read it now, so nothing else would tell what became of
    it. One still declared is planned, and the plan shows its undeclared visualizations.
    """
    summaries: list[SelectorSummary] = []
    warnings: list[PlanWarning] = []
    now_matched = {aoi.id for r in results for aoi in r.matched}
    current = {(spec_file(str(r.selector.where)), r.selector.key) for r in results}
    current_keys = {key for _, key in current}
    legacy = previous.get("", {})
    for result in results:
        selector = result.selector
        mine = {aoi.id for aoi in result.matched}
        recorded = previous.get(spec_file(str(selector.where)), {}).get(selector.key)
        dropped = _dropped(legacy.get(selector.key, {}) if recorded is None else recorded, mine)
        summaries.append(
            SelectorSummary(
                key=selector.key,
                where=str(selector.where),
                matched=tuple(
                    sorted((AoiName(a.id, a.name) for a in result.matched), key=_by_name)
                ),
                unmatched=dropped,
                elsewhere=result.elsewhere,
            )
        )
        warnings += [
            _dropped_warning(a, selector.key, str(selector.where))
            for a in dropped
            if a.id not in declared
        ]
        if not result.matched and not result.elsewhere:
            warnings.append(_no_match_warning(selector))
    gone = [
        (key, recorded)
        for file, keys in sorted(previous.items())
        for key, recorded in sorted(keys.items())
        if (file, key) not in current and not (file == "" and key in current_keys)
    ]
    for key, recorded in gone:
        dropped = _dropped(recorded, now_matched)
        if not dropped:
            continue  # edited or moved: its AOIs are all matched by a selector now
        summaries.append(SelectorSummary(key=key, where=None, matched=(), unmatched=dropped))
        warnings += [_dropped_warning(a, key, None) for a in dropped if a.id not in declared]
    return tuple(summaries), warnings


def _dropped(recorded: Mapping[str, str], matched: set[str]) -> tuple[AoiName, ...]:
    return tuple(
        sorted(
            (AoiName(aoi_id, name) for aoi_id, name in recorded.items() if aoi_id not in matched),
            key=_by_name,
        )
    )


def _by_name(aoi: AoiName) -> tuple[str, str]:
    return (aoi.name, aoi.id)


def _no_match_warning(selector: SelectorDecl) -> PlanWarning:
    # Not an error: a new project, or a pattern for AOIs still to come, may match nothing yet.
    # But a mistyped project id or pattern looks just the same, and must not go unseen.
    return PlanWarning(
        kind="no-match",
        aoi_id="",
        aoi_name="",
        message=(
            f"the selector ({selector.key}) matches no AOI, so it declares nothing; if it "
            "should match some, check its patterns and project ids for typos"
        ),
        where=str(selector.where),
    )


def _dropped_warning(aoi: AoiName, key: str, where: str | None) -> PlanWarning:
    if where is not None:
        what = f"no longer matched by the selector ({key}), which matched it at the last apply"
    else:
        what = f"matched at the last apply by a selector ({key}) that is no longer in the specs"
    return PlanWarning(
        kind="unmatched",
        aoi_id=aoi.id,
        aoi_name=aoi.name,
        message=(
            f"{what}, and nothing in the specs declares it now: what that selector declared "
            "here is left alone (the API has no delete)"
        ),
        where=where,
    )
