"""What was read from the API, as plain typed data: the input of resolution and planning.

``refresh`` fills these from the API; tests build them by hand. Nothing here does I/O, so the
planner and resolver can depend on it and stay pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.api.legends import Legend
from reconciler.api.types import Aoi, Asset, Index, Visualization
from reconciler.core.identity import Identity, by_identity
from reconciler.core.plan import AoiSnapshot, VizSnapshot
from reconciler.errors import UnreadableAoiError
from reconciler.text import plural


@dataclass(frozen=True, slots=True)
class ObservedAoi:
    """One AOI now: its visualizations and, when they were needed, its assets.

    ``assets`` is None when the listing was not read: every declaration of the AOI names its
    assets by id, and those ids match existing visualizations (see ``resolve``).
    """

    aoi: Aoi
    visualizations: tuple[Visualization, ...] = ()
    assets: tuple[Asset, ...] | None = None

    def by_identity(self) -> dict[Identity, Visualization]:
        return by_identity(self.visualizations)

    def snapshot(self) -> AoiSnapshot:
        """What a saved plan keeps of this AOI, to tell later whether it moved."""
        return AoiSnapshot(
            name=self.aoi.name,
            visualizations={
                v.id: VizSnapshot(
                    index=v.index_name or v.index_id,
                    assets=tuple(sorted(a.id for a in v.assets)),
                    status=v.status,
                    updated_at=v.updated_at,
                )
                for v in sorted(self.visualizations, key=lambda v: v.id)
            },
            assets=None
            if self.assets is None
            else {a.id: f"{a.name} {a.date}" for a in sorted(self.assets, key=lambda a: a.id)},
        )


@dataclass(frozen=True, slots=True)
class UnreadableAoi:
    """A targeted AOI the API refused to show (403 on its visualizations or assets): nothing
    can be planned for it, and every other AOI is planned without it."""

    aoi: Aoi
    error: str  # the refusal, naming the call
    where: str | None = None  # the first declaration of the AOI in the specs


@dataclass(frozen=True, slots=True)
class Observed:
    """Everything read from the API for one plan: the shared listings and each targeted AOI
    (``by_aoi``), but for the targeted AOIs it could not read (``unreadable``)."""

    aois: tuple[Aoi, ...] = ()
    indices: tuple[Index, ...] = ()
    by_aoi: Mapping[str, ObservedAoi] = field(default_factory=dict)
    unreadable: tuple[UnreadableAoi, ...] = ()
    #: Legends read back through the SLD endpoint (``core.legends.legends_to_read``):
    #: visualization id -> mode -> ISO date -> legend.
    legends: Mapping[str, Mapping[str, Mapping[str, Legend]]] = field(default_factory=dict)

    @property
    def unreadable_ids(self) -> frozenset[str]:
        return frozenset(u.aoi.id for u in self.unreadable)

    def all_read(self) -> Observed:
        """This observation, if it is of every targeted AOI; else ``UnreadableAoiError``
        (what must check every AOI, like ``validate --online``, cannot do without one)."""
        if self.unreadable:
            listed = "; ".join(f"{u.aoi.name} ({u.aoi.id}): {u.error}" for u in self.unreadable)
            raise UnreadableAoiError(
                f"the declarations of {plural(len(self.unreadable), 'AOI')} could not be "
                f"checked, the API refused to show them: {listed}",
                status=403,
            )
        return self

    def snapshots(self) -> dict[str, AoiSnapshot]:
        return {aoi_id: seen.snapshot() for aoi_id, seen in sorted(self.by_aoi.items())}
