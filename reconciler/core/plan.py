"""The plan: plain, serialisable data describing what apply would change.

The planner builds a ``Plan``; renderers and apply only read it. ``Plan.to_dict()`` is the
documented JSON format (``format_version`` below, docs/plan-json.md), sealed with a checksum
over its content; ``Plan.from_dict()`` reads a saved plan back and refuses one whose content
no longer matches its checksum (edited by hand, or damaged).
The plan owns its order (AOI name, then index name, then asset set, then mode: two plans of the
same world render identically, whoever built them) and its safety check (``raise_if_unsafe``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler.core.identity import Identity
from reconciler.errors import PlanFileError, TooManyChangesError

#: Bump when the JSON shape changes incompatibly; readers refuse versions they do not know.
FORMAT_VERSION = 5

Mode = Literal["dynamic", "theoretical"]
MODES: tuple[Mode, ...] = ("dynamic", "theoretical")

#: Why a rollback is planned (see DESIGN.md "Semantics").
RollbackReason = Literal["no-record", "changed", "revision", "adopted"]
REASON_TEXT: dict[str, str] = {
    "no-record": "no record that this tool made the legend auto-computed",
    "changed": "the visualization changed since the last rollback",
    "revision": "the spec's revision was bumped",
    "adopted": "adopted an existing visualization whose legends may have been edited",
}

WarningKind = Literal[
    "undeclared",
    "failed",
    "partial_success",
    "creating",
    "new-assets",
    "unmatched",
    "no-match",
    "state",
]


@dataclass(frozen=True, slots=True)
class AssetRef:
    """A source asset as resolved against the API."""

    id: str
    name: str
    date: str  # ISO, e.g. "2024-05-06"

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "date": self.date}


@dataclass(frozen=True, slots=True)
class RollbackTarget:
    """One (mode, dates) pair of a rollback, as declared."""

    mode: Mode
    dates: tuple[str, ...]  # ISO dates, sorted
    revision: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "dates": list(self.dates), "revision": self.revision}


@dataclass(frozen=True, slots=True)
class Create:
    """A declared visualization that does not exist yet.

    ``assets`` is None when the spec omits them (the API then uses all of the AOI's assets);
    ``identity`` is the set of asset ids that identifies the visualization either way (apply
    needs it to find the one a 409 refers to). ``legend_modes`` are the modes the index has:
    once created, those legends are auto-computed for every asset date. ``rollbacks`` are the
    declared ones: a fresh visualization starts auto-computed, so they are only carried out if
    apply finds the visualization already present (409 → adopted).
    """

    aoi_id: str
    aoi_name: str
    index_id: str
    index_name: str
    assets: tuple[AssetRef, ...] | None
    resolution: float | None
    where: str
    rollbacks: tuple[RollbackTarget, ...] = ()
    identity: tuple[str, ...] = ()
    legend_modes: tuple[str, ...] = ()
    kind: Literal["create"] = "create"

    @property
    def key(self) -> Identity:
        """The identity a 409 refers to: this index over exactly these assets."""
        return Identity.of(self.index_id, self.identity)

    @property
    def asset_ids(self) -> tuple[str, ...] | None:
        return None if self.assets is None else tuple(a.id for a in self.assets)

    @property
    def sort_key(self) -> tuple[str, ...]:
        assets = "" if self.assets is None else ",".join(a.date + a.name for a in self.assets)
        # Ids last: index and asset names need not be unique, and ties would keep input order.
        return (self.aoi_name, self.aoi_id, self.index_name, assets, self.index_id, *self.identity)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "aoi_id": self.aoi_id,
            "aoi_name": self.aoi_name,
            "index_id": self.index_id,
            "index_name": self.index_name,
            "assets": None if self.assets is None else [a.to_dict() for a in self.assets],
            "resolution": self.resolution,
            "rollbacks": [r.to_dict() for r in self.rollbacks],
            "identity": list(self.identity),
            "legend_modes": list(self.legend_modes),
            "where": self.where,
        }


@dataclass(frozen=True, slots=True)
class Rollback:
    """One PATCH: make the legends of ``dates`` in ``mode`` auto-computed again."""

    aoi_id: str
    aoi_name: str
    visualization_id: str
    index_id: str
    index_name: str
    mode: Mode
    dates: tuple[str, ...]  # ISO dates, sorted
    reason: RollbackReason
    detail: str  # human sentence: why, with the evidence (timestamps, revisions)
    revision: int
    where: str
    kind: Literal["rollback"] = "rollback"

    @property
    def sort_key(self) -> tuple[str, ...]:
        return (self.aoi_name, self.aoi_id, self.index_name, self.visualization_id, self.mode)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "aoi_id": self.aoi_id,
            "aoi_name": self.aoi_name,
            "visualization_id": self.visualization_id,
            "index_id": self.index_id,
            "index_name": self.index_name,
            "mode": self.mode,
            "dates": list(self.dates),
            "reason": self.reason,
            "detail": self.detail,
            "revision": self.revision,
            "where": self.where,
        }


@dataclass(frozen=True, slots=True)
class PlanWarning:
    """Something a reviewer should know that apply will not change.

    ``aoi_id`` and ``aoi_name`` are empty for a warning about no AOI (a selector that matches
    none, ``no-match``).
    """

    kind: WarningKind
    aoi_id: str
    aoi_name: str
    message: str
    visualization_id: str | None = None
    where: str | None = None

    @property
    def sort_key(self) -> tuple[str, ...]:
        return (self.aoi_name, self.aoi_id, self.kind, self.visualization_id or "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "aoi_id": self.aoi_id,
            "aoi_name": self.aoi_name,
            "visualization_id": self.visualization_id,
            "message": self.message,
            "where": self.where,
        }


@dataclass(frozen=True, slots=True)
class Ignored:
    """An undeclared visualization that an ignore rule leaves out of the warnings."""

    aoi_id: str
    aoi_name: str
    visualization_id: str
    index_name: str
    rule: str  # spec position of the rule, "path:line:column"
    reason: str | None = None  # the rule's reason, if it gives one

    @property
    def sort_key(self) -> tuple[str | int, ...]:
        path, _, rest = self.rule.rpartition(":")
        path, _, line = path.rpartition(":")
        # Rules in file order: line 7 before line 13.
        position = (
            (path, int(line), int(rest)) if line.isdigit() and rest.isdigit() else (self.rule, 0, 0)
        )
        return (*position, self.aoi_name, self.aoi_id, self.visualization_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "aoi_id": self.aoi_id,
            "aoi_name": self.aoi_name,
            "visualization_id": self.visualization_id,
            "index_name": self.index_name,
            "rule": self.rule,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class AoiSummary:
    """Per-AOI totals, so renderers can say '3 unchanged' without re-reading the world."""

    aoi_id: str
    aoi_name: str
    declared: int  # visualizations declared for this AOI
    unchanged: int  # declared, present, and nothing to roll back

    def to_dict(self) -> dict[str, Any]:
        return {
            "aoi_id": self.aoi_id,
            "aoi_name": self.aoi_name,
            "declared": self.declared,
            "unchanged": self.unchanged,
        }


@dataclass(frozen=True, slots=True)
class AoiName:
    """An AOI as a selector summary lists it."""

    id: str
    name: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name}


@dataclass(frozen=True, slots=True)
class SelectorSummary:
    """What one selector matched: among all AOIs now, and AOIs it matched at the last apply
    but no longer does (``unmatched``, from the state file).

    ``key`` is its criteria in one line ("names: Farm-*; projects: …"), the key under which
    the state remembers its matches; ``where`` is its position in the specs, or None for a
    selector that is no longer in the specs at all.
    """

    key: str
    where: str | None
    matched: tuple[AoiName, ...]
    unmatched: tuple[AoiName, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "where": self.where,
            "matched": [a.to_dict() for a in self.matched],
            "unmatched": [a.to_dict() for a in self.unmatched],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelectorSummary:
        return cls(
            key=str(data["key"]),
            where=_opt_str(data["where"]),
            matched=tuple(AoiName(**a) for a in data["matched"]),
            unmatched=tuple(AoiName(**a) for a in data["unmatched"]),
        )


@dataclass(frozen=True, slots=True)
class VizSnapshot:
    """One visualization as the plan saw it: enough to tell later that it moved."""

    index: str
    assets: tuple[str, ...]  # source asset ids, sorted
    status: str | None
    updated_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "assets": list(self.assets),
            "status": self.status,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VizSnapshot:
        return cls(
            index=str(data["index"]),
            assets=tuple(str(a) for a in data["assets"]),
            status=_opt_str(data["status"]),
            updated_at=_opt_str(data["updated_at"]),
        )


@dataclass(frozen=True, slots=True)
class AoiSnapshot:
    """One AOI as the plan saw it; ``assets`` (id -> "name date") is None when not read."""

    name: str
    visualizations: dict[str, VizSnapshot]
    assets: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "visualizations": {k: v.to_dict() for k, v in sorted(self.visualizations.items())},
            "assets": None if self.assets is None else dict(sorted(self.assets.items())),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AoiSnapshot:
        assets = data["assets"]
        return cls(
            name=str(data["name"]),
            visualizations={
                str(k): VizSnapshot.from_dict(v) for k, v in data["visualizations"].items()
            },
            assets=None if assets is None else {str(k): str(v) for k, v in assets.items()},
        )


@dataclass(frozen=True, slots=True)
class DesiredViz:
    """One declared visualization of an AOI the plan changes, as resolved when planning.

    Only what decides what apply does is kept (no spec positions), so a saved plan can tell a
    change of intent from a comment or a reformatted file.
    """

    # How it reads in messages ("NDVI over Bengaluru-A (2024-05-06), …"), not what it is: a
    # renamed asset alone changes nothing apply does.
    label: str = field(compare=False)
    index_id: str
    assets: tuple[str, ...] | None  # declared source asset ids, sorted; None: the API default
    identity: tuple[str, ...]  # asset ids that identify it, sorted
    resolution: float | None
    rollbacks: tuple[RollbackTarget, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "index_id": self.index_id,
            "assets": None if self.assets is None else list(self.assets),
            "identity": list(self.identity),
            "resolution": self.resolution,
            "rollbacks": [r.to_dict() for r in self.rollbacks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DesiredViz:
        assets = data["assets"]
        return cls(
            label=str(data["label"]),
            index_id=str(data["index_id"]),
            assets=None if assets is None else tuple(str(a) for a in assets),
            identity=tuple(str(a) for a in data["identity"]),
            resolution=data["resolution"],
            rollbacks=_targets(data["rollbacks"]),
        )


#: AOI id -> (identity key -> declared visualization): the desired state a plan was made from.
DesiredState = dict[str, dict[str, DesiredViz]]


def checksum(content: dict[str, Any]) -> str:
    """'sha256:…' over ``content`` in a canonical JSON form (sorted keys, no spaces)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Plan:
    """Desired versus observed, for every targeted AOI.

    ``observed`` maps each AOI id to a snapshot of what was observed there (visualization ids,
    statuses, ``updated_at``, asset sets) and ``desired`` each AOI the plan changes to what the
    specs declared for it, resolved; apply of a saved plan compares both with the present and
    says precisely what moved. ``ignored`` are the undeclared visualizations an ignore rule
    covers. Whatever order the changes are given in, the plan keeps them in its own order.
    ``selectors`` stay in spec order (then selectors no longer in the specs, by key).
    """

    creates: tuple[Create, ...] = ()
    rollbacks: tuple[Rollback, ...] = ()
    warnings: tuple[PlanWarning, ...] = ()
    aois: tuple[AoiSummary, ...] = ()
    ignored: tuple[Ignored, ...] = ()
    desired: DesiredState = field(default_factory=dict)
    observed: dict[str, AoiSnapshot] = field(default_factory=dict)
    api_url: str = ""
    spec_paths: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    selectors: tuple[SelectorSummary, ...] = ()
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        # Frozen, so the sorted copies go in through object.__setattr__ (as dataclasses do).
        sort = object.__setattr__
        sort(self, "creates", tuple(sorted(self.creates, key=lambda c: c.sort_key)))
        sort(self, "rollbacks", tuple(sorted(self.rollbacks, key=lambda r: r.sort_key)))
        sort(self, "warnings", tuple(sorted(self.warnings, key=lambda w: w.sort_key)))
        sort(self, "aois", tuple(sorted(self.aois, key=lambda a: (a.aoi_name, a.aoi_id))))
        sort(self, "ignored", tuple(sorted(self.ignored, key=lambda i: i.sort_key)))
        sort(self, "observed", dict(sorted(self.observed.items())))
        sort(
            self,
            "desired",
            {k: dict(sorted(v.items())) for k, v in sorted(self.desired.items())},
        )

    @property
    def changes(self) -> tuple[Create | Rollback, ...]:
        """Every change in the order apply carries them out within an AOI."""
        return self.creates + self.rollbacks

    @property
    def has_changes(self) -> bool:
        return bool(self.creates or self.rollbacks)

    @property
    def affected_aois(self) -> frozenset[str]:
        """The ids of the AOIs this plan changes."""
        return frozenset(change.aoi_id for change in self.changes)

    def raise_if_unsafe(self, max_changes: int | None, *, force: bool = False) -> None:
        """Refuse a plan larger than ``max_changes`` unless ``force``: a typo in a spec or a
        wrong state location must not roll back thousands of legends unreviewed."""
        count = len(self.changes)
        if max_changes is not None and count > max_changes and not force:
            raise TooManyChangesError(
                f"the plan has {count} changes, more than --max-changes {max_changes}; "
                "nothing was applied. Check the plan, then raise the limit or pass --force."
            )

    def summary(self) -> dict[str, int]:
        return {
            "create": len(self.creates),
            "rollback": len(self.rollbacks),
            "warning": len(self.warnings),
            "unchanged": sum(a.unchanged for a in self.aois),
            "ignored": len(self.ignored),
        }

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON form, ending with the ``checksum`` of everything before it."""
        content: dict[str, Any] = {
            "format_version": self.format_version,
            "summary": self.summary(),
            "api_url": self.api_url,
            "targets": list(self.targets),
            "spec_paths": list(self.spec_paths),
            "aois": [a.to_dict() for a in self.aois],
            "creates": [c.to_dict() for c in self.creates],
            "rollbacks": [r.to_dict() for r in self.rollbacks],
            "warnings": [w.to_dict() for w in self.warnings],
            "selectors": [s.to_dict() for s in self.selectors],
            "ignored": [i.to_dict() for i in self.ignored],
            "desired": {
                aoi: {k: v.to_dict() for k, v in vizs.items()} for aoi, vizs in self.desired.items()
            },
            "observed": {k: v.to_dict() for k, v in self.observed.items()},
        }
        return {**content, "checksum": checksum(content)}

    @classmethod
    def from_dict(cls, data: Any) -> Plan:
        """Read a plan written by ``to_dict``; raise ``PlanFileError`` on anything else,
        including a plan whose content does not match its checksum."""
        if not isinstance(data, dict):
            raise PlanFileError("not a reconciler plan: expected a JSON object")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise PlanFileError(
                f"plan format_version {version!r} is not supported (this reconciler reads "
                f"{FORMAT_VERSION}); run 'reconciler plan' again with this version"
            )
        content = {k: v for k, v in data.items() if k != "checksum"}
        if data.get("checksum") != checksum(content):
            raise PlanFileError(
                "the plan was changed after 'reconciler plan' saved it (its content no longer "
                "matches its checksum); a plan is applied only as it was reviewed: make a new "
                "one with 'reconciler plan --out'"
            )
        try:
            return cls(
                creates=tuple(_create(c) for c in data["creates"]),
                rollbacks=tuple(_rollback(r) for r in data["rollbacks"]),
                warnings=tuple(PlanWarning(**w) for w in data["warnings"]),
                aois=tuple(AoiSummary(**a) for a in data["aois"]),
                ignored=tuple(Ignored(**i) for i in data["ignored"]),
                desired={
                    str(aoi): {str(k): DesiredViz.from_dict(v) for k, v in vizs.items()}
                    for aoi, vizs in data["desired"].items()
                },
                observed={str(k): AoiSnapshot.from_dict(v) for k, v in data["observed"].items()},
                api_url=str(data["api_url"]),
                targets=tuple(data["targets"]),
                spec_paths=tuple(data["spec_paths"]),
                selectors=tuple(SelectorSummary.from_dict(s) for s in data["selectors"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PlanFileError(f"not a valid reconciler plan: {exc!r}") from None


def _targets(items: list[dict[str, Any]]) -> tuple[RollbackTarget, ...]:
    return tuple(
        RollbackTarget(mode=t["mode"], dates=tuple(t["dates"]), revision=int(t["revision"]))
        for t in items
    )


def _create(c: dict[str, Any]) -> Create:
    fields = {
        k: v
        for k, v in c.items()
        if k not in ("kind", "assets", "rollbacks", "identity", "legend_modes")
    }
    assets = c["assets"]
    return Create(
        **fields,
        assets=None if assets is None else tuple(AssetRef(**a) for a in assets),
        rollbacks=_targets(c["rollbacks"]),
        identity=tuple(c["identity"]),
        legend_modes=tuple(c["legend_modes"]),
    )


def _rollback(r: dict[str, Any]) -> Rollback:
    fields = {k: v for k, v in r.items() if k not in ("kind", "dates")}
    return Rollback(**fields, dates=tuple(r["dates"]))
