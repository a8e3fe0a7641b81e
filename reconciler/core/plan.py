"""The plan: plain data describing what apply would change.

The planner builds a ``Plan``; renderers and apply only read it; ``planfile`` alone knows how
it is written to a file and read back (docs/plan-json.md). Fields are declared in the order
that document lists them.
The plan owns its order (AOI name, then index name, then asset set, then mode: two plans of the
same world render identically, whoever built them) and its safety check (``raise_if_unsafe``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from reconciler.core.identity import Identity
from reconciler.errors import TooManyChangesError, UnreadableAoiError
from reconciler.spec.decls import LegendContent

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

#: Why a custom legend is planned.
LegendReason = Literal["no-record", "declared-changed", "edited", "new", "adopted"]
LEGEND_REASON_TEXT: dict[str, str] = {
    "no-record": "no record that this tool set this legend",
    "declared-changed": "the legend declared in the specs changed",
    "edited": "the legend was changed since this tool set it",
    "new": "a new visualization gets its declared legend",
    "adopted": "adopted an existing visualization whose legends may have been edited",
}

#: Visualizations over a custom index the plan creates name it by this id until it exists.
NEW_INDEX_PREFIX = "new-index:"

WarningKind = Literal[
    "index-differs",
    "undeclared",
    "failed",
    "partial_success",
    "creating",
    "unknown-status",
    "unreadable",
    "new-assets",
    "unmatched",
    "no-match",
    "state",
    "owned",
]


@dataclass(frozen=True, slots=True)
class AssetRef:
    """A source asset as resolved against the API."""

    id: str
    name: str
    date: str  # ISO, e.g. "2024-05-06"


@dataclass(frozen=True, slots=True)
class RollbackTarget:
    """One (mode, dates) pair of a rollback, as declared."""

    mode: Mode
    dates: tuple[str, ...]  # ISO dates, sorted
    revision: int = 0


@dataclass(frozen=True, slots=True)
class LegendTarget:
    """One custom legend as declared: ``content`` for ``dates`` (ISO, sorted) in ``mode``."""

    mode: Mode
    dates: tuple[str, ...]
    content: LegendContent


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexCreate:
    """A declared custom index that does not exist: one POST /v0/indices.

    Apply creates every one before any visualization (one over it names it by
    ``NEW_INDEX_PREFIX`` + name until then); a 409 means it exists: adopted by name.
    """

    kind: Literal["index"] = "index"
    name: str
    description: str
    expression: str
    expression_type: str
    rescale: tuple[int, int]
    colormap: str
    satellite_id: str
    where: str

    @property
    def sort_key(self) -> tuple[str, ...]:
        return (self.name,)


@dataclass(frozen=True, slots=True, kw_only=True)
class Create:
    """A declared visualization that does not exist yet.

    ``assets`` is None when the spec omits them (the API then uses all of the AOI's assets);
    ``identity`` is the set of asset ids that identifies the visualization either way (apply
    needs it to find the one a 409 refers to). ``legend_modes`` are the modes the index has:
    once created, those legends are auto-computed for every asset date. ``rollbacks`` are the
    declared ones: a fresh visualization starts auto-computed, so they are only carried out if
    apply finds the visualization already present (409 → adopted).
    """

    kind: Literal["create"] = "create"
    aoi_id: str
    aoi_name: str
    index_id: str
    index_name: str
    assets: tuple[AssetRef, ...] | None
    resolution: float | None
    rollbacks: tuple[RollbackTarget, ...] = ()
    identity: tuple[str, ...] = ()
    legend_modes: tuple[str, ...] = ()
    #: Declared custom legends: set once the visualization is usable, created or adopted.
    legends: tuple[LegendTarget, ...] = ()
    where: str

    @property
    def new_index(self) -> str | None:
        """The name of the custom index this plan creates first and this one is over, if so."""
        if self.index_id.startswith(NEW_INDEX_PREFIX):
            return self.index_id.removeprefix(NEW_INDEX_PREFIX)
        return None

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


@dataclass(frozen=True, slots=True, kw_only=True)
class Rollback:
    """One PATCH: make the legends of ``dates`` in ``mode`` auto-computed again."""

    kind: Literal["rollback"] = "rollback"
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

    @property
    def sort_key(self) -> tuple[str, ...]:
        return (self.aoi_name, self.aoi_id, self.index_name, self.visualization_id, self.mode)


@dataclass(frozen=True, slots=True, kw_only=True)
class LegendChange:
    """One PUT: set the custom legends of ``dates`` in ``mode`` as declared (``legends``).

    The API takes one number of bins per call, so dynamic legends with different ``bins``
    on one visualization are one change each.
    """

    kind: Literal["legend"] = "legend"
    aoi_id: str
    aoi_name: str
    visualization_id: str
    index_id: str
    index_name: str
    mode: Mode
    dates: tuple[str, ...]  # ISO dates, sorted: every date of ``legends``
    legends: tuple[LegendTarget, ...]
    reason: LegendReason
    detail: str  # human sentence: why, with the evidence (what differs, timestamps)
    where: str

    @property
    def bins(self) -> int | None:
        return self.legends[0].content.bins if self.legends else None

    @property
    def sort_key(self) -> tuple[str, ...]:
        return (
            self.aoi_name,
            self.aoi_id,
            self.index_name,
            self.visualization_id,
            self.mode,
            f"{self.bins or 0:03d}",  # 2 bins before 10
        )


#: A change apply makes on one AOI.
AoiChange = Create | Rollback | LegendChange


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanWarning:
    """Something a reviewer should know that apply will not change.

    ``aoi_id`` and ``aoi_name`` are empty for a warning about no AOI (a selector that matches
    none, ``no-match``).
    """

    kind: WarningKind
    aoi_id: str
    aoi_name: str
    visualization_id: str | None = None
    message: str
    where: str | None = None

    @property
    def sort_key(self) -> tuple[str, ...]:
        return (self.aoi_name, self.aoi_id, self.kind, self.visualization_id or "")


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


@dataclass(frozen=True, slots=True)
class ChangedSince:
    """A plan of what changed since a git revision (``plan --changed-since``).

    ``ref`` as given and the ``commit`` it named; ``aois``: how many AOIs the plan read (the
    changed ones, or all); ``everything``: why every AOI was planned instead ('' when only the
    changed ones were), such as base specs that do not validate; ``indices``: the custom
    indices the change touched (the only ones created, with those the creates need);
    ``removed``: AOIs whose entries the change removed (apply never deletes: planned only
    where something else still declares them); ``pending``: AOIs planned because an earlier
    apply set out to change them and did not finish (the state's ``pending``).
    """

    ref: str
    commit: str
    aois: int = 0
    everything: str = ""
    indices: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sharding:
    """Which shards of the estate a plan covers (``--shard I/N``): ``shards`` of ``count`` (one
    in a shard's plan; every one merged in ``show``)."""

    count: int
    shards: tuple[int, ...]

    @property
    def missing(self) -> tuple[int, ...]:
        """The shards not in this plan, when it merges some (what a merged comment lacks)."""
        return tuple(i for i in range(1, self.count + 1) if i not in self.shards)


@dataclass(frozen=True, slots=True)
class AoiSummary:
    """Per-AOI totals, so renderers can say '3 unchanged' without re-reading the world."""

    aoi_id: str
    aoi_name: str
    declared: int  # visualizations declared for this AOI
    unchanged: int  # declared, present, and nothing to roll back


@dataclass(frozen=True, slots=True)
class AoiName:
    """An AOI as a selector summary lists it."""

    id: str
    name: str


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
    #: AOIs it matched in other shards (``--shard``): planned there, not here.
    elsewhere: int = 0


@dataclass(frozen=True, slots=True)
class VizSnapshot:
    """One visualization as the plan saw it: enough to tell later that it moved."""

    index: str
    assets: tuple[str, ...]  # source asset ids, sorted
    status: str | None
    updated_at: str | None


@dataclass(frozen=True, slots=True)
class AoiSnapshot:
    """One AOI as the plan saw it; ``assets`` (id -> "name date") is None when not read."""

    name: str
    visualizations: dict[str, VizSnapshot]
    assets: dict[str, str] | None = None


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
    legends: tuple[LegendTarget, ...] = ()


#: AOI id -> (identity key -> declared visualization): the desired state a plan was made from.
DesiredState = dict[str, dict[str, DesiredViz]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Desired versus observed, for every targeted AOI.

    ``observed`` maps each AOI id to a snapshot of what was observed there (visualization ids,
    statuses, ``updated_at``, asset sets) and ``desired`` each AOI the plan changes to what the
    specs declared for it, resolved; apply of a saved plan compares both with the present and
    says precisely what moved. ``ignored`` are the undeclared visualizations an ignore rule
    covers. Whatever order the changes are given in, the plan keeps them in its own order.
    ``selectors`` stay in spec order (then selectors no longer in the specs, by key).
    """

    api_url: str = ""
    targets: tuple[str, ...] = ()
    #: Set when the plan covers only what changed since a git revision (its ``targets``).
    changed_since: ChangedSince | None = None
    #: Set when the plan covers one shard of the AOIs (``--shard``), or several merged.
    shard: Sharding | None = None
    spec_paths: tuple[str, ...] = ()
    aois: tuple[AoiSummary, ...] = ()
    indices: tuple[IndexCreate, ...] = ()
    creates: tuple[Create, ...] = ()
    rollbacks: tuple[Rollback, ...] = ()
    legends: tuple[LegendChange, ...] = ()
    warnings: tuple[PlanWarning, ...] = ()
    selectors: tuple[SelectorSummary, ...] = ()
    ignored: tuple[Ignored, ...] = ()
    #: Visualizations whose ``updated_at`` moved since the state's record, all of whose
    #: recorded legends were read back as this tool left them (or are changed by this plan):
    #: apply may keep their records when it records its changes (see ``core.legends``).
    confirmed: tuple[str, ...] = ()
    desired: DesiredState = field(default_factory=dict)
    observed: dict[str, AoiSnapshot] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Frozen, so the sorted copies go in through object.__setattr__ (as dataclasses do).
        sort = object.__setattr__
        sort(self, "indices", tuple(sorted(self.indices, key=lambda i: i.sort_key)))
        sort(self, "creates", tuple(sorted(self.creates, key=lambda c: c.sort_key)))
        sort(self, "rollbacks", tuple(sorted(self.rollbacks, key=lambda r: r.sort_key)))
        sort(self, "legends", tuple(sorted(self.legends, key=lambda r: r.sort_key)))
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
    def changes(self) -> tuple[AoiChange, ...]:
        """Every change of an AOI, in the order apply carries them out within one (the
        custom indices, which belong to no AOI, come before all of them: ``indices``)."""
        return self.creates + self.rollbacks + self.legends

    @property
    def all_changes(self) -> tuple[IndexCreate | AoiChange, ...]:
        """Every change, in the order apply carries them out: indices first."""
        return self.indices + self.changes

    @property
    def has_changes(self) -> bool:
        return bool(self.indices or self.creates or self.rollbacks or self.legends)

    @property
    def affected_aois(self) -> frozenset[str]:
        """The ids of the AOIs this plan changes."""
        return frozenset(change.aoi_id for change in self.changes)

    @property
    def unreadable(self) -> tuple[PlanWarning, ...]:
        """The AOIs the API refused to show (403): nothing is planned for them."""
        return tuple(w for w in self.warnings if w.kind == "unreadable")

    def incomplete(self) -> UnreadableAoiError | None:
        """Why this plan leaves AOIs out (the API refused to show them), or None."""
        left_out = self.unreadable
        if not left_out:
            return None
        aois = "AOI" if len(left_out) == 1 else "AOIs"
        listed = "; ".join(f"{w.aoi_name} ({w.aoi_id}): {w.message}" for w in left_out)
        return UnreadableAoiError(
            f"{len(left_out)} {aois} could not be read, so nothing was planned for "
            f"{'it' if len(left_out) == 1 else 'them'}: {listed}",
            status=403,
        )

    def raise_if_incomplete(self) -> None:
        """``UnreadableAoiError`` if this plan leaves out AOIs the API refused to show."""
        error = self.incomplete()
        if error is not None:
            raise error

    def also_unreadable(self, saved: Plan) -> Plan:
        """This plan, also telling the AOIs ``saved`` left out (they are still not planned)."""
        told = {w.aoi_id for w in self.unreadable}
        still = tuple(w for w in saved.unreadable if w.aoi_id not in told)
        return replace(self, warnings=self.warnings + still) if still else self

    def without(self, aoi_ids: frozenset[str]) -> Plan:
        """This plan without its changes (and snapshots) of ``aoi_ids``."""
        if not aoi_ids:
            return self
        return replace(
            self,
            creates=tuple(c for c in self.creates if c.aoi_id not in aoi_ids),
            rollbacks=tuple(r for r in self.rollbacks if r.aoi_id not in aoi_ids),
            legends=tuple(r for r in self.legends if r.aoi_id not in aoi_ids),
            desired={k: v for k, v in self.desired.items() if k not in aoi_ids},
            observed={k: v for k, v in self.observed.items() if k not in aoi_ids},
        )

    def only(self, aoi_id: str) -> Plan:
        """This plan's changes (and snapshots) of one AOI; no custom index."""
        return replace(
            self,
            indices=(),
            creates=tuple(c for c in self.creates if c.aoi_id == aoi_id),
            rollbacks=tuple(r for r in self.rollbacks if r.aoi_id == aoi_id),
            legends=tuple(r for r in self.legends if r.aoi_id == aoi_id),
            desired={k: v for k, v in self.desired.items() if k == aoi_id},
            observed={k: v for k, v in self.observed.items() if k == aoi_id},
        )

    def raise_if_unsafe(self, max_changes: int | None, *, force: bool = False) -> None:
        """Refuse a plan larger than ``max_changes`` unless ``force``: a typo in a spec or a
        wrong state location must not roll back thousands of legends unreviewed."""
        count = len(self.all_changes)
        if max_changes is not None and count > max_changes and not force:
            raise TooManyChangesError(
                f"the plan has {count} changes, more than --max-changes {max_changes}; "
                "nothing was applied. Check the plan, then raise the limit or pass --force."
            )

    def summary(self) -> dict[str, int]:
        return {
            "index": len(self.indices),
            "create": len(self.creates),
            "rollback": len(self.rollbacks),
            "legend": len(self.legends),
            "warning": len(self.warnings),
            "unchanged": sum(a.unchanged for a in self.aois),
            "ignored": len(self.ignored),
            "unreadable": len(self.unreadable),
        }
