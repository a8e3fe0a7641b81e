"""Legend state: which legends a plan must read back through the SLD endpoint, and what they
tell.

A legend's content is never listed. The state remembers, per visualization, the legends this
tool made (auto-computed, or a declared custom one) and, where the API showed it, a
fingerprint of each right after. When a visualization's ``updated_at`` moved since, something
changed it, but not necessarily those legends: the other mode, another date, or an edit that
was undone since. So the plan reads back the legends it has fingerprints of
(``legends_to_read``) and compares (``Evidence``): only a legend whose content moved is planned
again, and the plan names its mode and dates.

Pure: the reads themselves are ``run.refresh``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from reconciler.api.legends import Legend, LegendBin, fingerprint, normal_bound
from reconciler.api.types import Visualization
from reconciler.core.observed import Observed
from reconciler.core.resolve import Desired
from reconciler.spec.decls import LegendContent

#: What ``legends_to_read`` asks for: visualization id -> (aoi id, modes, ISO dates).
Reads = dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]
#: What the SLD endpoint answered: visualization id -> mode -> ISO date -> legend.
ReadLegends = Mapping[str, Mapping[str, Mapping[str, Legend]]]

#: Statuses whose legends can be read back (the API answers the SLD endpoint for them).
READABLE = frozenset({"success", "partial_success"})


class Recorded(Protocol):
    """What this module reads of one state record (``state.VizRecord``)."""

    @property
    def updated_at(self) -> str: ...

    def content_of(self, mode: str, date: str) -> str | None: ...

    def dated(self) -> Iterable[tuple[str, str]]: ...


class Records(Protocol):
    """What this module reads of the state (``state.State``)."""

    def get(self, visualization_id: str) -> Recorded | None: ...


def legends_to_read(desired: Desired, observed: Observed, state: Records) -> Reads:
    """The legends worth reading back before planning: of each declared visualization that
    exists, declares legend state (rollbacks or custom legends) and whose ``updated_at``
    moved since the state's record, every legend the record has a fingerprint of."""
    wanted = {
        (item.aoi.id, item.identity)
        for item in desired.visualizations
        if item.rollbacks or item.legends
    }
    pairs = [
        (viz, state.get(viz.id))
        for aoi_id, seen in observed.by_aoi.items()
        for identity, viz in seen.by_identity().items()
        if (aoi_id, identity) in wanted
    ]
    return _to_read(pairs)


def _to_read(pairs: Iterable[tuple[Visualization, Recorded | None]]) -> Reads:
    reads: Reads = {}
    for viz, record in pairs:
        if record is None or record.updated_at == viz.updated_at or viz.status not in READABLE:
            continue
        known = [(m, d) for m, d in record.dated() if record.content_of(m, d) is not None]
        if not known:
            continue
        modes = tuple(sorted({m for m, _ in known}))
        dates = tuple(sorted({d for _, d in known}))
        reads[viz.id] = (viz.aoi_id, modes, dates)
    return reads


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the legends read back say about one visualization whose ``updated_at`` moved.

    ``moved`` are the (mode, date) legends whose content is not what this tool left; ``same``
    those that are; every other recorded one could not be told (no fingerprint, or not read).
    """

    moved: frozenset[tuple[str, str]] = frozenset()
    same: frozenset[tuple[str, str]] = frozenset()
    unknown: frozenset[tuple[str, str]] = frozenset()

    def told(self, mode: str, date: str) -> bool | None:
        """Whether (mode, date) moved: True, False, or None when the legends cannot tell."""
        if (mode, date) in self.moved:
            return True
        if (mode, date) in self.same:
            return False
        return None

    def confirms(self, changed: Iterable[tuple[str, str]]) -> bool:
        """Whether the record can be trusted at the new ``updated_at`` once ``changed`` are
        made again: every other legend it holds was read back as this tool left it."""
        return not (self.unknown | self.moved) - set(changed)


def evidence(record: Recorded, read: Mapping[str, Mapping[str, Legend]] | None) -> Evidence:
    """Compare each legend of ``record`` with what was ``read`` back (None: nothing was)."""
    moved: set[tuple[str, str]] = set()
    same: set[tuple[str, str]] = set()
    unknown: set[tuple[str, str]] = set()
    for mode, date in record.dated():
        expected = record.content_of(mode, date)
        got = (read or {}).get(mode, {}).get(date)
        if expected is None or got is None:
            unknown.add((mode, date))
        elif fingerprint(got) == expected:
            same.add((mode, date))
        else:
            moved.add((mode, date))
    return Evidence(frozenset(moved), frozenset(same), frozenset(unknown))


def differences(declared: LegendContent, actual: Legend, limit: int = 3) -> list[str]:
    """How the legend the API shows differs from the declared one, in words; [] if it does
    not. Bounds and labels the declaration leaves to the API are not compared."""
    expected = declared.bins if declared.bins is not None else len(declared.items)
    if len(actual) != expected:
        shown = "; ".join(_bin_text(b) for b in actual[:limit])
        more = f"; and {len(actual) - limit} more" if len(actual) > limit else ""
        ranges = "range" if len(actual) == 1 else "ranges"
        return [f"{len(actual)} {ranges} instead of {expected} ({shown}{more})"]
    found: list[str] = []
    for n, (want, got) in enumerate(zip(declared.items, actual, strict=False), start=1):
        if want.color != got.color:
            found.append(f"range {n} is {got.color}, not {want.color}")
        if want.label is not None and want.label != got.label:
            found.append(f"range {n} is labelled {got.label!r}, not {want.label!r}")
        for bound, wanted, seen in (("min", want.min, got.min), ("max", want.max, got.max)):
            if wanted is not None and not _same_number(wanted, seen):
                now = "unknown" if seen is None else f"{seen:g}"
                found.append(f"range {n} has {bound} {now}, not {wanted:g}")
    if len(found) > limit:
        found = [*found[:limit], f"and {len(found) - limit} more"]
    return found


def _bin_text(legend_bin: LegendBin) -> str:
    low = "?" if legend_bin.min is None else f"{legend_bin.min:g}"
    high = "?" if legend_bin.max is None else f"{legend_bin.max:g}"
    label = f" {legend_bin.label!r}" if legend_bin.label else ""
    return f"{low} … {high} {legend_bin.color}{label}"


def _same_number(wanted: float, shown: float | None) -> bool:
    # Read back, a bound has the digits a Legend keeps: compared as one.
    return shown is not None and normal_bound(wanted) == shown


def dates_text(dates: Sequence[str], limit: int = 5) -> str:
    """'2024-05-06, 2024-11-20' or '2024-05-06, … and 7 more', for plan details."""
    shown = ", ".join(dates[:limit])
    return shown + (f" and {len(dates) - limit} more" if len(dates) > limit else "")
