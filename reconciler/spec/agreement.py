"""Declarations across files: the same visualization declared twice must agree, a custom
index declared again must be the same one, and an ignore rule is given once per scope."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from reconciler.errors import Problem, Where
from reconciler.spec.decls import AoiDecl, IgnoreDecl, IndexDecl, LegendContent, VisualizationDecl

log = logging.getLogger(__name__)


# --- checks across files -------------------------------------------------------------------------


def _identity(vis: VisualizationDecl) -> tuple[Any, ...]:
    """What makes two declarations the same visualization, as far as offline can tell."""
    if vis.assets is None:
        return vis.index, ("policy", vis.asset_policy)
    return vis.index, frozenset((a.kind, a.value) for a in vis.assets)


class RollbackLike(Protocol):
    """A declared rollback, before (``RollbackDecl``) or after (resolve) resolution."""

    @property
    def mode(self) -> str: ...
    @property
    def dates(self) -> tuple[str, ...]: ...
    @property
    def revision(self) -> int: ...
    @property
    def where(self) -> Where: ...


class LegendLike(Protocol):
    """A declared custom legend, before (``LegendDecl``) or after (resolve) resolution."""

    @property
    def mode(self) -> str: ...
    @property
    def dates(self) -> tuple[str, ...]: ...
    @property
    def content(self) -> LegendContent: ...
    @property
    def where(self) -> Where: ...


class Declared(Protocol):
    """One declaration of a visualization: what two of them must agree on."""

    @property
    def resolution(self) -> float | None: ...
    @property
    def rollbacks(self) -> Sequence[RollbackLike]: ...
    @property
    def legends(self) -> Sequence[LegendLike]: ...
    @property
    def where(self) -> Where: ...


def disagreement(what: str, first: Declared, second: Declared) -> Problem | None:
    """Why two declarations of the same visualization cannot be one, or None if they agree.

    A side may add what the other leaves out (a resolution, a rollback of another mode, a
    custom legend of another date); the same mode rolled back with other dates or another
    revision, a date given two different legends, or rolled back in one and given a legend in
    the other, or two different resolutions, is a conflict reported at ``second``'s position,
    naming ``first``'s. ``what`` names the visualization ("NDVI over all assets on AOI 'X'").
    """
    found = disagreements(what, first, second)
    return found[0] if found else None


def disagreements(what: str, first: Declared, second: Declared) -> tuple[Problem, ...]:
    """``disagreement``, and for a date rolled back in one and given a legend in the other,
    the same problem at the other's position too: which of the two to fix is the author's
    choice, so both places say it."""
    res_a, res_b = first.resolution, second.resolution
    if res_a is not None and res_b is not None and res_a != res_b:
        return (
            Problem(
                f"{what} is declared twice with different resolutions: {res_b:g} here, "
                f"{res_a:g} at {first.where}",
                second.where,
            ),
        )
    by_mode = {r.mode: r for r in first.rollbacks}
    for rb in second.rollbacks:
        ra = by_mode.get(rb.mode)
        if ra is None or (ra.dates, ra.revision) == (rb.dates, rb.revision):
            continue
        return (
            Problem(
                f"{what} is declared twice with conflicting {rb.mode} rollbacks: "
                f"{_rollback_text(rb)} here, {_rollback_text(ra)} at {ra.where}; roll a mode "
                "back in one place (or list the same dates and revision in both)",
                rb.where,
            ),
        )
    return _legend_conflicts(what, first, second) or _legend_conflicts(
        what, second, first, swapped=True
    )


def _legend_conflicts(
    what: str, first: Declared, second: Declared, *, swapped: bool = False
) -> tuple[Problem, ...]:
    """A date of ``second``'s legends that ``first`` gives another legend or rolls back.

    ``swapped``: ``second`` is the earlier declaration, so a problem of two legends still goes
    where the later one is.
    """
    legends = {(lg.mode, d): lg for lg in first.legends for d in lg.dates}
    rolled = {(r.mode, d): r for r in first.rollbacks for d in r.dates}
    for lg in second.legends:
        for date in lg.dates:
            other = legends.get((lg.mode, date))
            if other is not None and other.content != lg.content and not swapped:
                return (
                    Problem(
                        f"{what} is declared twice with different {lg.mode} legends of "
                        f"{date}: {lg.content.describe()} here, {other.content.describe()} at "
                        f"{other.where}; give a date's legend in one place",
                        lg.where,
                    ),
                )
            rollback = rolled.get((lg.mode, date))
            if rollback is None:
                continue
            legend_here = Problem(
                f"{what}: its {lg.mode} legend of {date} is given a custom legend here and "
                f"rolled back at {rollback.where}; it is one or the other",
                lg.where,
            )
            rollback_here = Problem(
                f"{what}: its {lg.mode} legend of {date} is rolled back here and given a "
                f"custom legend at {lg.where}; it is one or the other",
                rollback.where,
            )
            # The later declaration's problem first: it is the one a single report names.
            return (rollback_here, legend_here) if swapped else (legend_here, rollback_here)
    return ()


def _rollback_text(rollback: RollbackLike) -> str:
    text = "dates " + ", ".join(rollback.dates)
    return text + (f" (revision {rollback.revision})" if rollback.revision else "")


def cross_checks(aois: Sequence[AoiDecl]) -> tuple[list[Problem], list[Problem]]:
    """Declarations of one visualization that conflict (errors), and AOIs in mixed forms that
    would conflict if they are the same AOI (notes). Declarations that agree are one."""
    problems: list[Problem] = []
    notes: list[Problem] = []
    seen: dict[tuple[Any, ...], list[VisualizationDecl]] = {}
    # identity -> every (AOI, visualization) declaring it, per AOI form
    by_form: dict[str, dict[tuple[Any, ...], list[tuple[AoiDecl, VisualizationDecl]]]] = {
        "name": {},
        "id": {},
    }
    noted: set[tuple[str, str]] = set()
    for aoi in aois:
        form = "name" if aoi.name is not None else "id"
        other = "id" if form == "name" else "name"
        for vis in aoi.visualizations:
            if vis.incomplete:
                continue  # what it will declare once its own problems are fixed is not known
            ident = _identity(vis)
            key = (form, aoi.label, *ident)
            earlier = seen.setdefault(key, [])
            others = by_form[other].get(ident, [])
            # Said only where there is something to compare it with: most are declared once.
            what = (
                f"visualization {vis.describe()} on {aoi.describe()}" if earlier or others else ""
            )
            conflicts = next((c for prev in earlier if (c := disagreements(what, prev, vis))), ())
            if conflicts:
                problems.extend(conflicts)
                continue
            earlier.append(vis)
            by_form[form].setdefault(ident, []).append((aoi, vis))
            for other_aoi, other_vis in others:
                pair = (aoi.label, other_aoi.label)
                clash = _disagree(what, other_vis, vis)
                if pair in noted or clash is None:
                    continue
                noted.add(pair)
                notes.append(
                    Problem(
                        f"{aoi.describe()} is given by {form} here and {other_aoi.describe()} by "
                        f"{other} at {other_aoi.where}; if they are the same AOI, its "
                        f"{vis.describe()} is declared differently here and at "
                        f"{other_vis.where}, which is an error ('plan' and 'validate --online' "
                        "check this after resolving names)",
                        vis.where,
                    )
                )
    return problems, notes


def _disagree(what: str, first: VisualizationDecl, second: VisualizationDecl) -> Problem | None:
    return disagreement(what, first, second)


def one_per_name(indices: Sequence[IndexDecl]) -> tuple[list[IndexDecl], list[Problem]]:
    """One declaration per index name: the same one again (another team's file) is one;
    a different one is an error naming the first."""
    first: dict[str, IndexDecl] = {}
    problems: list[Problem] = []
    for decl in indices:
        earlier = first.get(decl.name)
        if earlier is None:
            first[decl.name] = decl
            continue
        if earlier.fields() != decl.fields():
            differ = ", ".join(
                key for key, value in decl.fields().items() if earlier.fields()[key] != value
            )
            problems.append(
                Problem(
                    f"index '{decl.name}' is declared again, differently ({differ}), at "
                    f"{earlier.where}: declare it once",
                    decl.where,
                )
            )
    return list(first.values()), problems


def duplicate_ignores(aois: Sequence[AoiDecl], everywhere: Sequence[IgnoreDecl]) -> list[Problem]:
    """The same rule twice in one scope (an AOI, or every AOI) is a leftover: say so."""
    problems: list[Problem] = []
    scopes: list[tuple[str, Sequence[IgnoreDecl]]] = [("every AOI", everywhere)]
    scopes += [(aoi.describe(), aoi.ignore) for aoi in aois]
    first: dict[tuple[str, str | None, str | None], IgnoreDecl] = {}
    for scope, rules in scopes:
        for rule in rules:
            key = (scope, rule.index, rule.visualization)
            if key in first:
                problems.append(
                    Problem(
                        f"ignore rule for {rule.describe()} on {scope} is given twice: "
                        f"first at {first[key].where}",
                        rule.where,
                    )
                )
                continue
            first[key] = rule
    return problems
