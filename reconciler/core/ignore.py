"""Ignore rules: which undeclared visualizations a team chose to leave alone.

Pure: resolves the rules of the specs against the index listing and answers, for one undeclared
visualization, which rule (if any) covers it. A rule never touches a declared visualization and
never changes what apply does; it only turns a warning into an "ignored" count that names the
rule, so a plan with nothing to do stays quiet on every pull request.

Rules of an AOI entry are tried before the top-level ones, each list in spec order: the first
match names the rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reconciler.api.types import Index, Visualization
from reconciler.core.resolve import IndexLookup, Selection
from reconciler.errors import Problem
from reconciler.spec.decls import IgnoreDecl, Specs


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """A rule with its index reference resolved to an id (``index_id`` None: by visualization)."""

    decl: IgnoreDecl
    index_id: str | None = None

    def matches(self, viz: Visualization) -> bool:
        if self.index_id is not None:
            return viz.index_id == self.index_id
        return viz.id == self.decl.visualization


@dataclass(frozen=True, slots=True)
class IgnoreRules:
    """Every rule that applies to the planned AOIs; ``problems`` are references that failed."""

    everywhere: tuple[IgnoreRule, ...] = ()
    by_aoi: dict[str, tuple[IgnoreRule, ...]] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    def match(self, aoi_id: str, viz: Visualization) -> IgnoreDecl | None:
        """The rule that covers the undeclared ``viz`` on AOI ``aoi_id``, or None."""
        for rule in (*self.by_aoi.get(aoi_id, ()), *self.everywhere):
            if rule.matches(viz):
                return rule.decl
        return None


NO_RULES = IgnoreRules()


def resolve_ignores(specs: Specs, selection: Selection, indices: Sequence[Index]) -> IgnoreRules:
    """Resolve the top-level rules and those of every selected AOI against ``indices``.

    An index a rule names must exist (a typo would otherwise silently ignore nothing); a
    visualization id cannot be checked, since it may belong to an AOI outside the plan.
    """
    lookup = IndexLookup(indices)
    problems: list[Problem] = []

    def resolve(rules: Sequence[IgnoreDecl]) -> tuple[IgnoreRule, ...]:
        out: list[IgnoreRule] = []
        for decl in rules:
            if decl.index is None:
                out.append(IgnoreRule(decl))
                continue
            index = lookup.resolve(decl.index, decl.where)
            if isinstance(index, Problem):
                problems.append(Problem(f"ignore rule: {index.message}", index.where))
                continue
            out.append(IgnoreRule(decl, index.id))
        return tuple(out)

    everywhere = resolve(specs.ignore)
    by_aoi = {
        aoi_id: rules
        for aoi_id, (_, decls) in selection.groups.items()
        if (rules := resolve([rule for decl in decls for rule in decl.ignore]))
    }
    return IgnoreRules(everywhere, by_aoi, tuple(problems))
