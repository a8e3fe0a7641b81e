"""Which AOIs the specs declare, and which of them a command targets.

Pure: AOI references (an id, a name) resolved against the AOI listing, selectors expanded into
an entry per AOI they match, and ``--target`` applied, every problem at its spec position. What
each selected AOI must have is ``resolve``'s.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.api.types import Aoi
from reconciler.core import selectors
from reconciler.core.selectors import SelectorResult
from reconciler.core.shards import Shard
from reconciler.errors import Problem, UnknownTargetError
from reconciler.spec.decls import AoiDecl, IndexDecl, Specs
from reconciler.text import closest


@dataclass(frozen=True, slots=True)
class Selection:
    """The spec entries grouped by the AOI they resolve to (targeted AOIs only).

    ``groups`` maps AOI id to the AOI and every entry declaring it, in spec order (per-AOI
    entries first, then one entry per selector that matched it); ``problems`` are the AOI
    references that did not resolve; ``selectors`` what each selector matched among all AOIs,
    and ``declared`` the ids of every AOI some entry or selector declares (whatever the
    targets).
    """

    groups: dict[str, tuple[Aoi, tuple[AoiDecl, ...]]]
    problems: tuple[Problem, ...] = ()
    selectors: tuple[SelectorResult, ...] = ()
    declared: frozenset[str] = frozenset()
    indices: tuple[IndexDecl, ...] = ()  # the custom indices the specs declare

    def in_shard(self, shard: Shard) -> Selection:
        """Only the AOIs of ``shard``: what a ``--shard`` job plans. Problems stay (every
        shard fails on a reference that resolves to no AOI: none can tell whose it is)."""
        return dataclasses.replace(
            self,
            groups={k: v for k, v in self.groups.items() if shard.owns(k)},
            selectors=tuple(
                dataclasses.replace(
                    result,
                    matched=tuple(a for a in result.matched if shard.owns(a.id)),
                    elsewhere=result.elsewhere + sum(not shard.owns(a.id) for a in result.matched),
                )
                for result in self.selectors
            ),
        )


# --- AOIs ------------------------------------------------------------------------------------


class AoiLookup:
    """Find AOIs by id or by name: built once, so resolving N entries costs O(N), not O(N²)."""

    def __init__(self, aois: Sequence[Aoi]) -> None:
        self._aois = aois
        self.by_id: dict[str, Aoi] = {}
        self._by_name: dict[str, list[Aoi]] = defaultdict(list)
        for aoi in aois:
            self.by_id.setdefault(aoi.id, aoi)
            self._by_name[aoi.name].append(aoi)

    def find(self, decl: AoiDecl) -> Aoi | None:
        """The one AOI a spec entry refers to, or None (``resolve`` says why)."""
        if decl.id is not None:
            return self.by_id.get(decl.id)
        named = self._by_name.get(decl.name or "", [])
        return named[0] if len(named) == 1 else None

    def resolve(self, decl: AoiDecl) -> Aoi | Problem:
        """The AOI a spec entry refers to, or the problem saying why none (or several) match."""
        if decl.id is not None:
            found = self.by_id.get(decl.id)
            if found is not None:
                return found
            return Problem(
                f"unknown AOI id '{decl.id}': no AOI with this id is visible to this API key",
                decl.where,
            )
        named = self._by_name.get(decl.name or "", [])
        if len(named) == 1:
            return named[0]
        if named:
            ids = ", ".join(a.id for a in named)
            return Problem(
                f"{len(named)} AOIs are named '{decl.name}' ({ids}): refer to one by its id",
                decl.where,
            )
        hint = closest(decl.name or "", (a.name for a in self._aois))
        return Problem(f"unknown AOI '{decl.name}'{hint}", decl.where)


def resolve_aoi(decl: AoiDecl, aois: Sequence[Aoi]) -> Aoi | Problem:
    """The AOI a spec entry refers to, or the problem explaining why none (or several) match."""
    return AoiLookup(aois).resolve(decl)


def select_aois(
    specs: Specs, aois: Sequence[Aoi], targets: Sequence[str] = (), *, filtered: bool = False
) -> Selection:
    """Group the spec's AOI entries by resolved AOI id, limited to ``targets`` when given.

    Selectors are matched against ``aois`` (``filtered``: the listing of some projects only)
    and add an entry for each AOI they match. A target matches an AOI's name or id, or the
    name/id as written in a spec. A target that matches no AOI in the specs is a
    ``UnknownTargetError``: a typo there must not plan nothing silently.
    """
    groups: dict[str, tuple[Aoi, list[AoiDecl]]] = {}
    problems: list[Problem] = []
    matched_targets: set[str] = set()
    declared: set[str] = set()  # every name a target could have meant, for the hint
    results = tuple(selectors.match(s, aois, filtered=filtered) for s in specs.selectors)
    entries = list(specs.aois)
    for result in results:
        problems.extend(result.problems)
        entries.extend(result.entries())
    lookup = AoiLookup(aois)
    wanted = set(targets)
    covered: set[str] = set()
    for decl in entries:
        # A selector's entries name AOIs it found in ``aois``: no need to search again. An
        # entry that no target names is only looked up: the problem of one that does not
        # resolve (a closest-name search over every AOI) is no target's, and not said.
        found = lookup.find(decl)
        if targets and not ({decl.label} | ({found.id, found.name} if found else set())) & wanted:
            if found is not None:
                covered.add(found.id)
            declared |= {decl.label} | ({found.name} if found is not None else set())
            continue
        resolved = found if found is not None else lookup.resolve(decl)
        if isinstance(resolved, Aoi):
            covered.add(resolved.id)
        declared |= {decl.label} | ({resolved.name} if isinstance(resolved, Aoi) else set())
        if targets:
            names = {decl.label} | (
                {resolved.id, resolved.name} if isinstance(resolved, Aoi) else set()
            )
            hits = names & wanted
            if not hits:
                continue
            matched_targets |= hits
        if isinstance(resolved, Problem):
            problems.append(resolved)
            continue
        groups.setdefault(resolved.id, (resolved, []))[1].append(decl)
    unknown = [t for t in targets if t not in matched_targets]
    if unknown:
        raise UnknownTargetError(
            "--target "
            + ", ".join(f"'{t}'{closest(t, declared)}" for t in unknown)
            + " matches no AOI declared in the specs",
            targets=unknown,
        )
    return Selection(
        {aoi_id: (aoi, tuple(decls)) for aoi_id, (aoi, decls) in groups.items()},
        tuple(problems),
        results,
        frozenset(covered),
        specs.indices,
    )
