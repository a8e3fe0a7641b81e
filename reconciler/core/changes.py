"""What a change to the specs touches: the AOIs a pull request's plan must read.

Pure: two sets of declarations in (the specs at a base revision, and now), the scope of a plan
out. Declarations are compared without their positions, so a line moved or a file split
changes nothing. What counts:

- an AOI entry (``aoi:``) added or changed: that AOI, by the name or id it is written with;
- a selector added, changed or removed: every AOI it matches, or matched (known only from the
  AOI listing), that something still declares;
- a custom index added, changed or removed: every AOI whose visualizations name it, and the
  index;
- a top-level ignore rule, or base specs that cannot be compared: every AOI.

- an AOI entry removed: that AOI, if something else (a selector) still declares it; apply
  never deletes, so an AOI nothing declares any more has nothing to plan.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.api.types import Aoi
from reconciler.spec.decls import AoiDecl, SelectorDecl, Specs

#: Fields that say where a declaration is written, not what it declares.
_POSITIONS = frozenset({"where", "index_where", "name_wheres", "id_wheres", "date_wheres"})


@dataclass(frozen=True, slots=True)
class Scope:
    """What a plan limited to a change reads.

    ``everything`` is the reason the whole estate must be planned ('' when it need not):
    then the other fields are empty. Else ``aois`` are the AOI labels (a name or id, as the
    specs write them) of changed entries, ``selectors`` the selectors whose AOIs count (new,
    changed, and the former versions of changed and removed ones: matched once the listing is
    read), ``indices`` the names of changed custom indices and ``removed`` the labels of AOIs
    whose entries are gone (they count where something else still declares them).
    """

    everything: str = ""
    aois: tuple[str, ...] = ()
    selectors: tuple[SelectorDecl, ...] = ()
    indices: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing changed that a plan could act on."""
        return not (self.everything or self.aois or self.selectors or self.indices or self.removed)


def changed_scope(before: Specs, now: Specs) -> Scope:
    """The scope of a plan of ``now`` that covers every change since ``before``."""
    if _canonical(before.ignore) != _canonical(now.ignore):
        return Scope(everything="the top-level ignore rules changed, and they apply to every AOI")
    old_indices = {i.name: _canonical(i) for i in before.indices}
    indices = tuple(sorted(i.name for i in now.indices if old_indices.get(i.name) != _canonical(i)))
    # A visualization naming an index that is declared no more names another one now (a
    # preset of that name, or none): it is planned again too.
    touched = set(indices) | (set(old_indices) - {i.name for i in now.indices})
    old_entries = _by_label(before.aois)
    labels = {
        label
        for label, entries in _by_label(now.aois).items()
        if _differ(old_entries.get(label, []), entries)
    }
    # A visualization over a changed index is planned again: the index is part of it.
    labels |= {aoi.label for aoi in now.aois if any(v.index in touched for v in aoi.visualizations)}
    old_selectors = {_canonical(s): s for s in before.selectors}
    new_selectors = {_canonical(s): s for s in now.selectors}
    selectors = tuple(
        s
        for key, s in new_selectors.items()
        if key not in old_selectors or any(v.index in touched for v in s.visualizations)
    )
    # What a changed or removed selector matched may be declared otherwise now, or less.
    selectors += tuple(s for key, s in old_selectors.items() if key not in new_selectors)
    removed = tuple(sorted(set(old_entries) - set(_by_label(now.aois))))
    return Scope(aois=tuple(sorted(labels)), selectors=selectors, indices=indices, removed=removed)


def leftovers(
    groups: Mapping[str, tuple[Aoi, Sequence[AoiDecl]]], scope: Scope, pending: Iterable[str]
) -> tuple[str, ...]:
    """Of the AOIs a plan of what changed read (``Selection.groups``), the ``pending`` ones it
    took in only because an earlier apply left them unfinished: not named by a changed or
    removed entry, nor matched by a changed selector. Applied only as reviewed; the change's
    own AOIs, as always, exactly as reviewed or not at all."""
    named = {*scope.aois, *scope.removed}
    own = {
        aoi_id
        for aoi_id, (aoi, decls) in groups.items()
        if {aoi_id, aoi.name, *(d.label for d in decls)} & named
        or any(d.selector is not None and d.selector in scope.selectors for d in decls)
    }
    return tuple(a for a in pending if a in groups and a not in own)


def pending_refs(pending: Mapping[str, str], specs: Specs) -> tuple[list[str], list[str]]:
    """How a plan asks for the pending AOIs (id -> name) that ``specs`` still declare: as
    targets, each as an entry names it (name or id: a few are looked up one by one), or, where
    selectors choose AOIs by what the AOI listing says, by id among the AOIs the specs resolve
    to. An AOI renamed since it was marked, and declared by its new name only, is not found."""
    if specs.selectors:
        return [], list(pending)
    labels = {aoi.label for aoi in specs.aois}
    found = {aoi_id if aoi_id in labels else name for aoi_id, name in pending.items()}
    return sorted(found & labels), []


def _by_label(aois: Iterable[AoiDecl]) -> dict[str, list[AoiDecl]]:
    found: dict[str, list[AoiDecl]] = defaultdict(list)
    for aoi in aois:
        found[aoi.label].append(aoi)
    return found


def _differ(before: list[AoiDecl], now: list[AoiDecl]) -> bool:
    """Whether an AOI's entries declare something else now, whatever their positions."""
    # A file unchanged since then was checked once (``spec.load``): its entries are the very
    # same objects, and need no comparing.
    if len(before) == len(now) and all(a is b for a, b in zip(before, now, strict=True)):
        return False
    # Files may move: the entries compare in a fixed order.
    return sorted(map(_canonical, before), key=repr) != sorted(map(_canonical, now), key=repr)


def _canonical(value: Any) -> Any:
    """``value`` as plain tuples, without positions: equal when it declares the same."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple(
                (f.name, _canonical(getattr(value, f.name)))
                for f in dataclasses.fields(value)
                if f.name not in _POSITIONS
            ),
        )
    if isinstance(value, tuple | list):
        return tuple(_canonical(v) for v in value)
    return value
