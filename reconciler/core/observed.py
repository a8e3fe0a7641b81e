"""What was read from the API, as plain typed data: the input of resolution and planning.

``refresh`` fills these from the API; tests build them by hand. Nothing here does I/O, so the
planner and resolver can depend on it and stay pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.api.types import Aoi, Asset, Index, Visualization
from reconciler.core.identity import Identity, by_identity
from reconciler.core.plan import AoiSnapshot, VizSnapshot


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
class Observed:
    """Everything read from the API for one plan: the shared listings and each targeted AOI."""

    aois: tuple[Aoi, ...] = ()
    indices: tuple[Index, ...] = ()
    by_aoi: Mapping[str, ObservedAoi] = field(default_factory=dict)

    def snapshots(self) -> dict[str, AoiSnapshot]:
        return {aoi_id: seen.snapshot() for aoi_id, seen in sorted(self.by_aoi.items())}
