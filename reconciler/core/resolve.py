"""Resolve the references in the specs against what the API returned.

Pure functions: no I/O. ``refresh`` uses ``select_aois`` and the ``needs_*`` rules to know what
to fetch; ``resolve_desired`` then turns every declaration into a ``DesiredVisualization`` once,
for the planner and for ``validate --online``. Every problem carries the spec position of the
reference that failed and, where it helps, the closest known names.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from reconciler._gc import no_cycle_collection
from reconciler.api.types import Aoi, Asset, Index, Visualization
from reconciler.core.identity import Identity, by_identity
from reconciler.core.observed import Observed
from reconciler.core.plan import NEW_INDEX_PREFIX, Mode
from reconciler.core.selectors import SelectorResult
from reconciler.core.targets import AoiLookup as AoiLookup
from reconciler.core.targets import Selection as Selection
from reconciler.core.targets import resolve_aoi as resolve_aoi
from reconciler.core.targets import select_aois as select_aois
from reconciler.errors import Problem, ResolutionError, Where
from reconciler.spec.agreement import disagreement
from reconciler.spec.decls import (
    AoiDecl,
    AssetSel,
    IndexDecl,
    LegendContent,
    LegendDecl,
    RollbackDecl,
    VisualizationDecl,
)
from reconciler.spec.fields import ASSET_POLICIES
from reconciler.text import closest

_MODE_RULES = {
    "preset": "a preset index has dynamic and theoretical legends",
    "index": "a custom index with expression_type 'index' has only a dynamic legend",
    "composite": "a composite index has no legends",
    "grayscale": "a grayscale index has no legends",
}


@dataclass(frozen=True, slots=True)
class ResolvedRollback:
    """A declared rollback whose mode and dates were checked against the visualization."""

    mode: Mode
    dates: tuple[str, ...]
    revision: int
    where: Where


@dataclass(frozen=True, slots=True)
class ResolvedLegend:
    """A declared custom legend whose mode and dates were checked against the visualization."""

    mode: Mode
    dates: tuple[str, ...]
    content: LegendContent
    where: Where


@dataclass(frozen=True, slots=True)
class DesiredVisualization:
    """A declared visualization with every reference resolved to the API's ids.

    ``identity`` is the set of source asset ids that, with the AOI and index, identifies the
    visualization; ``assets`` is None when the spec omits them (the API then uses all assets).
    """

    aoi: Aoi
    index: Index
    assets: tuple[Asset, ...] | None
    identity: Identity
    dates: frozenset[str]
    resolution: float | None
    rollbacks: tuple[ResolvedRollback, ...]
    decl: VisualizationDecl
    legends: tuple[ResolvedLegend, ...] = ()

    @property
    def where(self) -> Where:
        return self.decl.where


@dataclass(frozen=True, slots=True)
class Desired:
    """Every declared visualization of the targeted AOIs, each reference resolved once, and
    the custom indices the specs declare."""

    aois: tuple[Aoi, ...]
    visualizations: tuple[DesiredVisualization, ...]
    problems: tuple[Problem, ...] = ()
    selectors: tuple[SelectorResult, ...] = ()
    declared: frozenset[str] = frozenset()  # see Selection.declared
    indices: tuple[IndexDecl, ...] = ()

    def raise_for_problems(self) -> None:
        """``ResolutionError`` listing every reference that did not resolve."""
        if self.problems:
            raise ResolutionError(self.problems)


def _listing(values: Iterable[str], limit: int = 8) -> str:
    values = sorted(set(values))
    shown = ", ".join(values[:limit])
    return shown + (f", … ({len(values) - limit} more)" if len(values) > limit else "")


# --- indices ---------------------------------------------------------------------------------


def planned_index(decl: IndexDecl) -> Index:
    """The custom index a declaration makes, as visualizations over it see it until it exists:
    its id is ``NEW_INDEX_PREFIX`` + name (apply puts the real one in)."""
    return Index(
        id=NEW_INDEX_PREFIX + decl.name,
        name=decl.name,
        type="custom",
        expression_type=decl.expression_type,
        expression=decl.expression,
    )


class IndexLookup:
    """Find indices by id or by name, with helpful errors.

    ``declared``: the custom indices the specs declare; one that does not exist yet is found
    by its name as ``planned_index`` makes it.
    """

    def __init__(self, indices: Sequence[Index], declared: Sequence[IndexDecl] = ()) -> None:
        self._by_id = {i.id: i for i in indices}
        self._by_name: dict[str, list[Index]] = defaultdict(list)
        for index in indices:
            self._by_name[index.name].append(index)
        for decl in declared:
            if decl.name not in self._by_name:
                self._by_name[decl.name].append(planned_index(decl))

    def resolve(self, ref: str, where: Where) -> Index | Problem:
        if ref in self._by_id:
            return self._by_id[ref]
        named = self._by_name.get(ref, [])
        if len(named) == 1:
            return named[0]
        if named:
            ids = ", ".join(i.id for i in named)
            return Problem(f"{len(named)} indices are named '{ref}' ({ids}): use the id", where)
        hint = closest(ref, self._by_name) or (
            "; a custom index to create is declared under 'indices:'"
        )
        return Problem(f"unknown index '{ref}'{hint}", where)


def mode_problem(
    index: Index, mode: str, where: Where, *, to: str = "to roll back"
) -> Problem | None:
    """A rollback (or, ``to``, a custom legend) of a legend mode the index cannot have is a
    spec error (contract rule)."""
    if mode in index.legend_modes:
        return None
    kind = "preset" if index.type == "preset" else str(index.expression_type)
    rule = _MODE_RULES.get(
        kind,
        # The contract requires neither field: an index may come without expression_type.
        f"only preset indices and custom indices with expression_type 'index' have legends "
        f"(this one has type {index.type!r}, expression_type {index.expression_type!r})",
    )
    return Problem(f"index '{index.name}' has no {mode} legend {to}: {rule}", where)


# --- assets ----------------------------------------------------------------------------------


def needs_asset_listing(decls: Iterable[AoiDecl]) -> bool:
    """Whether an AOI's asset listing is needed before anything else can be resolved.

    Names and dates need the listing to become ids; the policy "all" (or omitted assets)
    means "all of the AOI's assets", which is the visualization's identity. Explicit ids and
    the policy "any" can do without it, as long as they match an existing visualization or
    listed visualizations show every id (see ``needs_assets_for_creates``).
    """
    return any(
        (viz.assets is None and viz.asset_policy == "all")
        or (viz.assets is not None and any(sel.kind != "id" for sel in viz.assets))
        for decl in decls
        for viz in decl.visualizations
    )


def listed_assets(visualizations: Iterable[Visualization]) -> dict[str, Asset]:
    """The AOI's assets that its listed visualizations show, by id (the first sighting wins).

    An id found here is an asset of the AOI with that name and date, so ids in the specs that
    are all found here need no asset listing to be checked and dated.
    """
    found: dict[str, Asset] = {}
    for viz in visualizations:
        for asset in viz.assets:
            found.setdefault(asset.id, asset)
    return found


def needs_assets_for_creates(
    decls: Iterable[AoiDecl], indices: IndexLookup, visualizations: Sequence[Visualization]
) -> bool:
    """With ids only, or the policy "any": the listing is still needed for a visualization that
    must be created, unless its ids are all sources of listed visualizations."""
    existing = by_identity(visualizations)
    shown: dict[str, Asset] | None = None
    for decl in decls:
        for viz in decl.visualizations:
            index = indices.resolve(viz.index, viz.index_where)
            if isinstance(index, Problem):
                continue
            if viz.assets is None:
                if viz.asset_policy == "any" and pick_any(index.id, visualizations) is None:
                    return True
                continue
            ids = [sel.value for sel in viz.assets]
            if Identity.of(index.id, ids) in existing:
                continue
            if shown is None:
                shown = listed_assets(visualizations)
            if not all(asset_id in shown for asset_id in ids):
                return True
    return False


_PER_AOI_ASSETS = (
    "asset names and ids belong to one AOI: a selector selects assets by date, or declares "
    "assets: all | any"
)


@dataclass(frozen=True, slots=True)
class _Issue:
    """A problem found on one AOI: ``problem`` as a per-AOI entry reports it; ``general`` the
    same without anything particular to that AOI, so that a selector's problem on many AOIs is
    reported once; ``detail`` what ``general`` leaves out that is still worth saying when the
    selector matched one AOI (closest names, the dates it has)."""

    problem: Problem
    general: str
    detail: str = ""

    @classmethod
    def same(cls, problem: Problem) -> _Issue:
        """A problem that reads the same on every AOI (an unknown index, say)."""
        return cls(problem, problem.message)


def _resolve_selector(
    sel: AssetSel, aoi: Aoi, assets: Sequence[Asset], elsewhere: Mapping[str, Sequence[str]]
) -> Asset | _Issue:
    """The asset ``sel`` names among ``assets`` (the AOI's), or the issue saying why none.

    ``elsewhere``: the names of the other AOIs read, by the names and ids of their assets, so
    that an asset of another AOI is said to be one.
    """
    label = f"AOI '{aoi.name}'"
    owners = [name for name in elsewhere.get(sel.value, ()) if name != aoi.name]
    # A selector's message says already that assets belong to one AOI.
    aois = f"AOI{'s' if len(owners) > 1 else ''} {', '.join(repr(n) for n in owners)}"
    owner = f"; it is an asset of {aois}" if owners else ""
    other = f"{owner}: an asset belongs to one AOI" if owners else ""
    if sel.kind == "id":
        for asset in assets:
            if asset.id == sel.value:
                return asset
        return _Issue(
            Problem(f"asset id '{sel.value}' is not an asset of {label}{other}", sel.where),
            f"asset id '{sel.value}' is not an asset of the AOI; {_PER_AOI_ASSETS}",
            owner,
        )
    if sel.kind == "name":
        named = [a for a in assets if a.name == sel.value]
        if len(named) == 1:
            return named[0]
        if named:
            ids = ", ".join(a.id for a in named)
            return _Issue(
                Problem(
                    f"{len(named)} assets of {label} are named '{sel.value}' ({ids}): use the id",
                    sel.where,
                ),
                f"several assets of the AOI are named '{sel.value}'; {_PER_AOI_ASSETS}",
            )
        hint = closest(sel.value, (a.name for a in assets))
        policy = sel.value.lower()
        if policy in ASSET_POLICIES:  # [all] is a list naming an asset 'all', not the policy
            hint += f"; for the policy, write assets: {policy} (without brackets)"
        return _Issue(
            Problem(f"unknown asset '{sel.value}' in {label}{other or hint}", sel.where),
            f"unknown asset '{sel.value}'; {_PER_AOI_ASSETS}",
            owner or hint,
        )
    dated = [a for a in assets if a.date == sel.value]
    if len(dated) == 1:
        return dated[0]
    if dated:
        names = ", ".join(a.name for a in dated)
        return _Issue(
            Problem(
                f"{len(dated)} assets of {label} are dated {sel.value} ({names}): "
                "name the one you mean",
                sel.where,
            ),
            f"several assets of the AOI are dated {sel.value}: name the one you mean in a "
            "per-AOI entry",
            f" ({names})",
        )
    dates = f"its asset dates are: {_listing(a.date for a in assets) or 'none'}"
    return _Issue(
        Problem(f"no asset of {label} is dated {sel.value}; {dates}", sel.where),
        f"no asset of the AOI is dated {sel.value}",
        f"; {dates}",
    )


# --- visualizations --------------------------------------------------------------------------


def pick_any(
    index_id: str, visualizations: Sequence[Visualization], remembered: Collection[str] = ()
) -> Visualization | None:
    """The visualization of this index that the policy "any" settles on, or None.

    Any one will do, but always the same one: one that did not fail; then one the state has
    records of (``remembered``: the one this tool created or rolled back, so that another
    appearing later does not move the declaration and its rollbacks); then over the most
    assets, the most recent assets, the smallest id.
    """
    # Sorted by id first: max() keeps the first of equals, so the smallest id wins ties.
    candidates = sorted((v for v in visualizations if v.index_id == index_id), key=lambda v: v.id)
    if not candidates:
        return None

    def rank(viz: Visualization) -> tuple[bool, bool, int, str]:
        latest = max((a.date for a in viz.assets), default="")
        return (viz.status != "failed", viz.id in remembered, len(viz.assets), latest)

    return max(candidates, key=rank)


@dataclass(frozen=True, slots=True)
class SelectorProblem:
    """A problem in what a selector declares, found on one of the AOIs it matched.

    ``general`` says it without what is particular to the AOI and ``detail`` is that part
    (see ``resolve_desired``, which reports each problem once for all the AOIs it is on).
    """

    problem: Problem
    aoi_name: str
    general: str
    detail: str = ""


def resolve_visualizations(
    aoi: Aoi,
    decls: Sequence[AoiDecl],
    indices: IndexLookup,
    assets: Sequence[Asset] | None,
    visualizations: Sequence[Visualization],
    remembered: Collection[str] = (),
    *,
    elsewhere: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[DesiredVisualization], list[Problem], list[SelectorProblem]]:
    """Resolve every visualization declared for one AOI (possibly across several spec entries).

    Declarations that resolve to the same visualization are one if they agree (each may add a
    resolution or a rollback of a mode the other leaves out); otherwise that is a problem
    naming both positions. Problems in what a selector declares come back apart, with the
    AOI, so that the same problem on many AOIs can be reported once. ``remembered``: ids of
    the visualizations the state has records of (see ``pick_any``); ``elsewhere``: the AOIs
    other assets belong to (see ``asset_owners``).

    An incomplete declaration (``VisualizationDecl.incomplete``: only ``validate`` meets
    them) has what it holds checked, and is neither desired nor compared with others.
    """
    desired: list[DesiredVisualization] = []
    problems: list[Problem] = []
    from_selectors: list[SelectorProblem] = []
    seen: dict[Identity, int] = {}
    existing = by_identity(visualizations)
    # An AOI's visualizations often share their asset set (and so their dates): keep one copy.
    shared: dict[frozenset[str], frozenset[str]] = {}
    for decl in decls:
        found_issues: list[_Issue] = []
        for viz in decl.visualizations:
            found = _resolve_one(
                aoi,
                viz,
                indices,
                assets,
                existing,
                visualizations,
                remembered,
                found_issues,
                shared,
                elsewhere or {},
            )
            if found is None or viz.incomplete:
                continue
            key = found.identity
            if key not in seen:
                seen[key] = len(desired)
                desired.append(found)
                continue
            first = desired[seen[key]]
            conflict = disagreement(
                f"visualization '{found.index.name}' on AOI '{aoi.name}'", first, found
            )
            if conflict is None:
                desired[seen[key]] = _merged(first, found)
                continue
            general = disagreement(f"visualization '{found.index.name}'", first, found)
            found_issues.append(_Issue(conflict, general.message if general else ""))
        if decl.selector is None:
            problems.extend(i.problem for i in found_issues)
        else:
            from_selectors.extend(
                SelectorProblem(i.problem, aoi.name, i.general, i.detail) for i in found_issues
            )
    return desired, problems, from_selectors


def _merged(first: DesiredVisualization, second: DesiredVisualization) -> DesiredVisualization:
    """One visualization from two agreeing declarations: the first, plus what the second adds."""
    modes = {r.mode for r in first.rollbacks}
    given = {(lg.mode, d) for lg in first.legends for d in lg.dates}
    added: list[ResolvedLegend] = []
    for legend in second.legends:
        dates = tuple(d for d in legend.dates if (legend.mode, d) not in given)
        if dates:
            added.append(replace(legend, dates=dates))
    return replace(
        first,
        resolution=first.resolution if first.resolution is not None else second.resolution,
        rollbacks=first.rollbacks + tuple(r for r in second.rollbacks if r.mode not in modes),
        legends=first.legends + tuple(added),
    )


def _resolve_one(
    aoi: Aoi,
    viz: VisualizationDecl,
    indices: IndexLookup,
    assets: Sequence[Asset] | None,
    existing: dict[Identity, Visualization],
    visualizations: Sequence[Visualization],
    remembered: Collection[str],
    issues: list[_Issue],
    shared: dict[frozenset[str], frozenset[str]],
    elsewhere: Mapping[str, Sequence[str]],
) -> DesiredVisualization | None:
    before = len(issues)
    # None: the declaration's own index is not valid (offline reported it), nothing to look up.
    index: Index | Problem | None = None
    if "index" not in viz.incomplete:
        index = indices.resolve(viz.index, viz.index_where)
    if isinstance(index, Problem):
        issues.append(_Issue.same(index))  # and go on: the asset references may have problems too
    after_index = len(issues)
    if viz.assets is None and viz.asset_policy == "any" and isinstance(index, Index):
        settled = pick_any(index.id, visualizations, remembered)
        if settled is not None:
            return _desired(aoi, index, viz, None, settled.assets, issues, before, shared)
    chosen: list[Asset] = []
    known = assets
    ids_only = viz.assets is not None and all(s.kind == "id" for s in viz.assets)
    if known is None and ids_only and viz.assets is not None and isinstance(index, Index):
        # Not listed because these ids match an existing visualization, or are all sources of
        # listed ones (refresh reads the listing otherwise): those supply names and dates.
        match = existing.get(Identity.of(index.id, (s.value for s in viz.assets)))
        if match is not None:
            known = match.assets
        else:
            shown = listed_assets(visualizations)
            if all(s.value in shown for s in viz.assets):
                known = tuple(shown.values())
    if known is None:
        if not isinstance(index, Index):
            return None
        bug = "(a bug in reconciler's refresh: please report it)"
        issues.append(
            _Issue(
                Problem(
                    f"the assets of AOI '{aoi.name}' were not read, so {viz.describe()} cannot "
                    f"be resolved {bug}",
                    viz.where,
                ),
                f"the assets of the AOI were not read, so {viz.describe()} cannot be resolved "
                + bug,
            )
        )
        return None
    if viz.assets is not None:
        first_at: dict[str, Where] = {}
        for sel in viz.assets:
            asset = _resolve_selector(sel, aoi, known, elsewhere)
            if isinstance(asset, _Issue):
                issues.append(asset)
            elif asset.id in first_at:
                twice = f"is selected twice: first at {first_at[asset.id]}"
                issues.append(
                    _Issue(
                        Problem(f"asset '{asset.name}' {twice}", sel.where),
                        f"the same asset {twice}",
                        f" ('{asset.name}')",
                    )
                )
            else:
                first_at[asset.id] = sel.where
                chosen.append(asset)
    whole = len(issues) == after_index and "assets" not in viz.incomplete
    if whole and isinstance(index, Index):
        if viz.assets is None:
            return _desired(aoi, index, viz, None, known, issues, before, shared)
        return _desired(aoi, index, viz, tuple(chosen), chosen, issues, before, shared)
    # Something else is wrong with it: still say what is wrong with its rollbacks, in this
    # round. Their dates are checked against its assets where those are all known, else
    # against every asset of the AOI (a date no asset of the AOI has is wrong whatever the
    # assets will be).
    settled_assets = whole and not (viz.assets is None and viz.asset_policy == "any")
    if settled_assets:
        dates: frozenset[str] | None = frozenset(
            a.date for a in (known if viz.assets is None else chosen)
        )
        scope = None
    else:
        dates = frozenset(a.date for a in assets) if assets is not None else None
        scope = aoi
    for rollback in viz.rollbacks:
        _resolve_rollback(
            index if isinstance(index, Index) else None, rollback, dates, issues, scope
        )
    for legend in viz.legends:
        _resolve_legend(index if isinstance(index, Index) else None, legend, dates, issues, scope)
    return None


def _desired(
    aoi: Aoi,
    index: Index,
    viz: VisualizationDecl,
    assets: tuple[Asset, ...] | None,
    identity_assets: Sequence[Asset],
    issues: list[_Issue],
    before: int,
    shared: dict[frozenset[str], frozenset[str]],
) -> DesiredVisualization | None:
    """The resolved declaration over ``identity_assets`` (its identity), rollbacks checked.

    Equal asset and date sets come out of ``shared`` (and go into it), so visualizations of
    an AOI over the same assets hold one copy of each.
    """
    ids = frozenset(a.id for a in identity_assets)
    dates = frozenset(a.date for a in identity_assets)
    dates = shared.setdefault(dates, dates)
    rollbacks = [_resolve_rollback(index, rb, dates, issues) for rb in viz.rollbacks]
    legends = [_resolve_legend(index, lg, dates, issues) for lg in viz.legends]
    if len(issues) > before:
        return None
    return DesiredVisualization(
        aoi=aoi,
        index=index,
        assets=assets,
        identity=Identity(index.id, shared.setdefault(ids, ids)),
        dates=dates,
        resolution=viz.resolution,
        rollbacks=tuple(r for r in rollbacks if r is not None),
        decl=viz,
        legends=tuple(lg for lg in legends if lg is not None),
    )


def _resolve_rollback(
    index: Index | None,
    rollback: RollbackDecl,
    dates: frozenset[str] | None,
    issues: list[_Issue],
    aoi: Aoi | None = None,
) -> ResolvedRollback | None:
    """The rollback checked: its mode against ``index``, its dates against ``dates``.

    ``dates`` are the visualization's, or with ``aoi`` those of every asset of that AOI (when
    the visualization's own assets are not known); None of either is not checked.
    """
    problem = None if index is None else mode_problem(index, rollback.mode, rollback.where)
    if problem is not None:
        issues.append(_Issue.same(problem))
        return None
    if dates is None:
        return None
    if _dates_missing("rollback", rollback.dates, rollback.date_wheres, dates, issues, aoi):
        return None
    if index is None:
        return None
    return ResolvedRollback(rollback.mode, rollback.dates, rollback.revision, rollback.where)


def _resolve_legend(
    index: Index | None,
    legend: LegendDecl,
    dates: frozenset[str] | None,
    issues: list[_Issue],
    aoi: Aoi | None = None,
) -> ResolvedLegend | None:
    """The custom legend checked like a rollback (``_resolve_rollback``)."""
    problem = None if index is None else mode_problem(index, legend.mode, legend.where, to="to set")
    if problem is not None:
        issues.append(_Issue.same(problem))
        return None
    if dates is None:
        return None
    if _dates_missing("legend", legend.dates, legend.date_wheres, dates, issues, aoi):
        return None
    if index is None:
        return None
    return ResolvedLegend(legend.mode, legend.dates, legend.content, legend.where)


def _dates_missing(
    what: str,
    wanted: Sequence[str],
    wheres: Sequence[Where],
    dates: frozenset[str],
    issues: list[_Issue],
    aoi: Aoi | None,
) -> bool:
    """Whether some of ``wanted`` (a rollback's or a legend's dates) are not in ``dates``,
    each said at its position."""
    missing = [(d, w) for d, w in zip(wanted, wheres, strict=True) if d not in dates]
    if aoi is None:
        of = "this visualization's assets"
        its_dates = f" (its dates: {_listing(dates) or 'none'})"
        label = of
    else:
        of = "any asset of the AOI"
        its_dates = f"; its asset dates are: {_listing(dates) or 'none'}"
        label = f"any asset of AOI '{aoi.name}'"
    for date, where in missing:
        general = f"{what} date {date} is not a date of {of}"
        message = f"{what} date {date} is not a date of {label}{its_dates}"
        issues.append(_Issue(Problem(message, where), general, its_dates))
    return bool(missing)


# --- everything at once ----------------------------------------------------------------------


@no_cycle_collection
def resolve_desired(
    selection: Selection, observed: Observed, remembered: Collection[str] = ()
) -> Desired:
    """Resolve every declaration of every selected AOI against what was observed there.

    ``remembered``: ids of the visualizations the state has records of, which ``assets: any``
    sticks to (``pick_any``).

    A problem in what a selector declares is reported once, at its position, with the AOIs it
    is on: one mistake in a selector over hundreds of AOIs is one line, not hundreds.
    """
    lookup = IndexLookup(observed.indices, selection.indices)
    owners = asset_owners(observed)
    desired: list[DesiredVisualization] = []
    problems = list(selection.problems)
    problems.extend(preset_named(selection.indices, observed.indices))
    from_selectors: dict[tuple[Where | None, str], list[SelectorProblem]] = {}
    for aoi_id, (aoi, decls) in selection.groups.items():
        seen = observed.by_aoi.get(aoi_id)
        found, more, selector_problems = resolve_visualizations(
            aoi,
            decls,
            lookup,
            seen.assets if seen is not None else None,
            seen.visualizations if seen is not None else (),
            remembered,
            elsewhere=owners,
        )
        desired.extend(found)
        problems.extend(more)
        for sp in selector_problems:
            from_selectors.setdefault((sp.problem.where, sp.general), []).append(sp)
    for (where, general), found_on in from_selectors.items():
        problems.append(Problem(_on_aois(general, found_on), where))
    return Desired(
        aois=tuple(aoi for aoi, _ in selection.groups.values()),
        visualizations=tuple(desired),
        problems=tuple(problems),
        selectors=selection.selectors,
        declared=selection.declared,
        indices=selection.indices,
    )


def preset_named(declared: Iterable[IndexDecl], indices: Iterable[Index]) -> list[Problem]:
    """Declared custom indices named like a preset index: the API would refuse to make them,
    and the name means the preset one everywhere else."""
    presets = {i.name for i in indices if i.type == "preset"}
    return [
        Problem(
            f"'{decl.name}' is the name of a preset index: a custom index needs a name of its "
            "own (names are unique among all indices)",
            decl.where,
        )
        for decl in declared
        if decl.name in presets
    ]


def asset_owners(observed: Observed) -> dict[str, tuple[str, ...]]:
    """The names of the AOIs each asset name and id was seen on (in asset or visualization
    listings), for the hint on an asset written under the wrong AOI."""
    found: dict[str, set[str]] = defaultdict(set)
    for seen in observed.by_aoi.values():
        listed = [*(seen.assets or ()), *(a for v in seen.visualizations for a in v.assets)]
        for asset in listed:
            found[asset.name].add(seen.aoi.name)
            found[asset.id].add(seen.aoi.name)
    return {key: tuple(sorted(names)) for key, names in found.items()}


def _on_aois(general: str, found_on: Sequence[SelectorProblem], limit: int = 5) -> str:
    """The message of one selector problem found on some AOIs, naming them (at most ``limit``).

    On one AOI the details particular to it are kept: '… (closest: …) (on AOI 'A', matched by
    this selector)'; on several: '… (on 7 AOIs matched by this selector: 'A', … and 2 more)'.
    """
    names = sorted({sp.aoi_name for sp in found_on})
    if len(names) == 1:
        return f"{general}{found_on[0].detail} (on AOI '{names[0]}', matched by this selector)"
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{general} (on {len(names)} AOIs matched by this selector: {shown}{more})"
