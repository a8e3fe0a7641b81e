"""The emulator's world: indices, AOIs with dated assets, visualizations, and the changes to them.

A ``World`` is the emulator's whole state. It loads from a YAML world file (the format of the
bundled ``demo_world.yaml``) and round-trips through a JSON state file so that state survives
restarts. It knows nothing about HTTP: the server validates requests, calls the operations here
under its lock, and renders the result with ``views``.

World file format (YAML)::

    indices:            # shared by every AOI
      - {id?, name, type: preset|custom, expression_type: index|composite|grayscale,
         expression, bands?, rescale?: [int, int], colormap?, description?}
    projects:           # optional; the API has no project listing, only AOIs' project_id
      - {id?, name}
    aois:
      - {id?, name, description?, project?: project name or id,
         assets: [{id?, name, date: 2024-05-06, resolution?}]}
    visualizations:     # already present when the emulator starts
      - {id?, aoi: name-or-id, index: name-or-id, assets?: [asset names or ids],
         status?: success|failed|partial_success, resolution?}

Omitted ids are derived (uuid5) from names, so a world file always yields the same ids; a
visualization without ``assets`` uses all of its AOI's assets; an AOI without ``project`` belongs
to the default project (``PROJECT_ID``). Every other contract field
(geometry, centroid, band lists, paths, timestamps, ...) is derived deterministically too.

Time is kept as integer microseconds since the epoch on a logical clock (``World.tick``) that
never returns the same value twice, so every change moves ``updated_at`` strictly forward even
when two changes land in the same microsecond.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
)

from reconciler.dates import iso_date, iso_to_api_date
from reconciler.emulator.legends import Mode, auto_legend, legend_modes
from reconciler.errors import ConfigError
from reconciler.state.atomicfile import write_atomically

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The bundled demo world (package data).
DEMO_WORLD: Path = Path(__file__).with_name("demo_world.yaml")

#: Fixed namespace for every id and value the emulator derives, so they are stable across runs.
NAMESPACE = uuid.UUID("6f1d2c1e-6a55-4c43-9d55-1b5e0f3f7a10")
#: Pixxel-TD2, as listed in the contract's satellite_id description.
SATELLITE_ID = "0005c5bb-0bd2-4c80-9393-4a808341c54c"
BAND_LIST: tuple[str, ...] = tuple(f"B{n:02d}" for n in range(1, 13))
STATE_FORMAT_VERSION: Final = 1

IndexType = Literal["preset", "custom"]
ExpressionType = Literal["index", "composite", "grayscale"]
FinalStatus = Literal["success", "failed", "partial_success"]
Status = Literal["creating", "success", "failed", "partial_success"]
FINAL_STATUSES: tuple[FinalStatus, ...] = ("success", "failed", "partial_success")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
#: An asset date in the state file: legend keys ("2024_05_06") are derived from it, so a state
#: file with any other spelling is refused on load rather than failing requests later.
IsoDate = Annotated[str, AfterValidator(iso_date)]
_YAML_LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)
#: Legends by date key ("2024_05_06"), then mode, then the list of LegendItem dicts.
Legend = dict[str, dict[str, list[dict[str, Any]]]]


def derived_id(*parts: str) -> str:
    """A stable UUID derived from ``parts`` (used for ids a world file leaves out)."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


@functools.cache
def user_id_for(key_position: int) -> str:
    """The user id of the n-th configured API key: stable, and derived from nothing secret."""
    return derived_id("user", str(key_position))


TENANT_ID = derived_id("tenant")
#: The project of every AOI whose world file entry names none.
PROJECT_ID = derived_id("project")


def to_micros(moment: dt.datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly (no float rounding)."""
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def from_micros(micros: int) -> dt.datetime:
    """The aware UTC datetime of ``micros`` microseconds since the epoch."""
    return _EPOCH + dt.timedelta(microseconds=micros)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _unit(*parts: str) -> float:
    """A deterministic number in [0, 1) derived from ``parts``."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# --- world file (input) ------------------------------------------------------------------------


class _FileModel(BaseModel):
    # Typos in a world file are errors, not silently ignored keys.
    model_config = ConfigDict(extra="forbid")


class IndexEntry(_FileModel):
    """An index as written in a world file."""

    id: Name | None = None
    name: Name
    type: IndexType
    expression_type: ExpressionType
    expression: str
    bands: list[str] = Field(default_factory=list)
    rescale: tuple[int, int] = (0, 1)
    colormap: str = ""
    description: str = ""


class AssetEntry(_FileModel):
    """An AOI asset as written in a world file."""

    id: Name | None = None
    name: Name
    date: dt.date
    resolution: float = Field(default=10.0, gt=0)


class ProjectEntry(_FileModel):
    """A project as written in a world file: only a name for AOIs to refer to, and an id."""

    id: Name | None = None
    name: Name


class AoiEntry(_FileModel):
    """An AOI as written in a world file."""

    id: Name | None = None
    name: Name
    description: str = ""
    project: Name | None = None  # a project's name or id (see WorldFile.projects)
    assets: list[AssetEntry] = Field(default_factory=list)


class VisualizationEntry(_FileModel):
    """A pre-existing visualization as written in a world file."""

    id: Name | None = None
    aoi: Name
    index: Name
    assets: list[Name] | None = None
    status: FinalStatus = "success"
    resolution: float | None = Field(default=None, gt=0)


class WorldFile(_FileModel):
    """The whole world file."""

    indices: list[IndexEntry] = Field(min_length=1)
    projects: list[ProjectEntry] = Field(default_factory=list)
    aois: list[AoiEntry] = Field(min_length=1)
    visualizations: list[VisualizationEntry] = Field(default_factory=list)


# --- world state ---------------------------------------------------------------------------------


class _StateModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Index(_StateModel):
    """An index (shared by every AOI)."""

    id: str
    name: str
    type: IndexType
    expression_type: ExpressionType
    expression: str
    bands: list[str]
    rescale: tuple[int, int]
    colormap: str
    description: str
    satellite_id: str
    created_at: int
    updated_at: int

    @property
    def modes(self) -> tuple[Mode, ...]:
        """The legend modes visualizations of this index get."""
        return legend_modes(self.type, self.expression_type)


class Asset(_StateModel):
    """A dated asset of one AOI."""

    id: str
    name: str
    date: IsoDate
    resolution: float
    created_at: int
    updated_at: int


class Aoi(_StateModel):
    """An area of interest and its assets."""

    id: str
    name: str
    description: str
    centroid: tuple[float, float]  # [longitude, latitude]
    area_in_sq_m: float
    created_at: int
    updated_at: int
    assets: list[Asset]
    # A default keeps state files written before projects existed loadable.
    project_id: str = PROJECT_ID

    def asset(self, asset_id: str) -> Asset | None:
        """The asset with this id, or None."""
        return next((a for a in self.assets if a.id == asset_id), None)


class Visualization(_StateModel):
    """A visualization of one index over a set of an AOI's assets."""

    id: str
    aoi_id: str
    index_id: str
    asset_ids: list[str]  # in the order given at creation
    resolution: float | None
    user_id: str
    status: Status
    final_status: FinalStatus
    created_at: int
    updated_at: int
    ready_at: int  # when a `creating` visualization reaches `final_status`
    legend: Legend = Field(default_factory=dict)

    def progress(self, now_micros: int) -> int:
        """0-99 while creating (proportional to elapsed time), 100 once final."""
        if self.status != "creating":
            return 100
        span = self.ready_at - self.created_at
        if span <= 0:
            return 0  # no delay: done at the next read
        return max(0, min(99, (now_micros - self.created_at) * 100 // span))


class World(_StateModel):
    """The emulator's entire state. Mutate it only under the emulator's lock."""

    format_version: Literal[1] = STATE_FORMAT_VERSION
    clock: int = 0
    indices: list[Index]
    aois: list[Aoi]
    visualizations: list[Visualization] = Field(default_factory=list)
    # Lookups by id (not state: rebuilt from the lists above). Every request looks things up,
    # so scanning the lists would make each request cost O(world) and a run O(world^2).
    _tables: _Lookups | None = PrivateAttr(default=None)

    # -- loading and saving ------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, path: Path) -> World:
        """Load a YAML world file; a bad file raises ``ConfigError`` naming it and the problem."""
        path = Path(path)
        try:
            # libyaml when PyYAML has it: a world of thousands of AOIs loads in a second.
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
        except OSError as exc:
            raise ConfigError(f"cannot read world file {path}: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"world file {path} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(
                f"world file {path}: expected a mapping with 'indices', 'aois' and "
                f"'visualizations', got {type(raw).__name__}"
            )
        try:
            spec = WorldFile.model_validate(raw)
        except ValidationError as exc:
            lines = [f"  - {format_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
            raise ConfigError(f"world file {path} is invalid:\n" + "\n".join(lines)) from exc
        return cls._from_spec(spec, path)

    @classmethod
    def demo(cls) -> World:
        """A fresh copy of the bundled demo world."""
        return cls.from_yaml(DEMO_WORLD)

    @classmethod
    def load_state(cls, path: Path) -> World:
        """Read a state file written by ``save_state``; raises ``ConfigError`` if unusable."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read state file {path}: {exc.strerror or exc}") from exc
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            more = exc.error_count() - 1
            raise ConfigError(
                f"state file {path} is not an emulator state file (format version "
                f"{STATE_FORMAT_VERSION}): {format_loc(first['loc'])}: {first['msg']}"
                + (f" (and {more} more problems)" if more else "")
            ) from exc

    def save_state(self, path: Path) -> None:
        """Write the state atomically: a reader never sees a half-written file."""
        try:
            write_atomically(Path(path), self.to_json())
        except OSError as exc:
            raise ConfigError(f"cannot write state file {path}: {exc.strerror or exc}") from exc

    def to_json(self) -> str:
        """The state as JSON text (what ``save_state`` writes)."""
        return self.model_dump_json(indent=1)

    # -- lookups --------------------------------------------------------------------------------

    def _lookups(self) -> _Lookups:
        """The lookup tables, rebuilt when the lists were replaced or grew behind our back."""
        lookups = self._tables
        if lookups is None or not lookups.matches(self):
            lookups = self._tables = _Lookups(self)
        return lookups

    def index(self, index_id: str) -> Index | None:
        """The index with this id, or None."""
        return self._lookups().index_by_id.get(index_id)

    def index_by_ref(self, ref: str) -> Index | None:
        """The index with this id or, failing that, this name."""
        return self.index(ref) or self.index_named(ref)

    def index_named(self, name: str) -> Index | None:
        """The index with exactly this name (case and spaces count), or None."""
        return self._lookups().index_by_name.get(name)

    def aoi(self, aoi_id: str) -> Aoi | None:
        """The AOI with this id, or None."""
        return self._lookups().aoi_by_id.get(aoi_id)

    def aoi_by_name(self, name: str) -> Aoi | None:
        """The AOI with this name, or None."""
        return self._lookups().aoi_by_name.get(name)

    def visualizations_of(self, aoi_id: str) -> list[Visualization]:
        """The AOI's visualizations in creation order."""
        return list(self._lookups().by_aoi.get(aoi_id, ()))

    def visualization(self, aoi_id: str, visualization_id: str) -> Visualization | None:
        """The visualization with this id on this AOI, or None."""
        viz = self._lookups().viz_by_id.get(visualization_id)
        return viz if viz is not None and viz.aoi_id == aoi_id else None

    def find_same(
        self, aoi_id: str, index_id: str, asset_ids: Iterable[str]
    ) -> Visualization | None:
        """The visualization with this index and the same SET of assets, if one exists."""
        return self._lookups().by_identity.get((aoi_id, index_id, frozenset(asset_ids)))

    def rendered(self, viz_id: str, version: object, render: Callable[[], T]) -> T:
        """What ``render`` made for this visualization at this ``version``, made at most once.

        One entry per visualization, replaced when its version changes; forgotten with the
        lookup tables when the world's lists change.
        """
        memo = self._lookups().rendered
        found = memo.get(viz_id)
        if found is not None and found[0] == version:
            return found[1]  # type: ignore[no-any-return]
        made = render()
        memo[viz_id] = (version, made)
        return made

    def _add(self, viz: Visualization) -> None:
        """Append a visualization (the only way the list grows), keeping the lookups current."""
        lookups = self._lookups()
        self.visualizations.append(viz)
        lookups.add(viz)

    def dates_of(self, viz: Visualization) -> dict[str, list[str]]:
        """The visualization's dates as metadata keys ("2024_05_06") -> the asset ids of each."""
        aoi = self.aoi(viz.aoi_id)
        by_date: dict[str, list[str]] = {}
        for asset_id in viz.asset_ids:
            asset = aoi.asset(asset_id) if aoi else None
            if asset is not None:
                by_date.setdefault(iso_to_api_date(asset.date), []).append(asset.id)
        return dict(sorted(by_date.items()))

    # -- changes ----------------------------------------------------------------------------------

    def tick(self, now: float) -> int:
        """The next timestamp (µs): the wall clock, but always strictly after the previous one."""
        self.clock = max(int(now * 1_000_000), self.clock + 1)
        return self.clock

    def refresh(self, now: float) -> list[Visualization]:
        """Finish every creation whose time has come; returns the visualizations that changed.

        Lifecycle is computed lazily from the clock on each read, so no timers run; only the
        visualizations still creating are looked at.
        """
        now_micros = int(now * 1_000_000)
        changed: list[Visualization] = []
        lookups = self._lookups()
        if not any(v.ready_at <= now_micros for v in lookups.creating):
            return changed
        waiting: list[Visualization] = []
        for viz in lookups.creating:
            if viz.ready_at > now_micros:
                waiting.append(viz)
            elif viz.status == "creating":
                viz.status = viz.final_status
                viz.legend = self.auto_legends(viz) if viz.status != "failed" else {}
                viz.updated_at = self.tick(now)
                changed.append(viz)
                log.debug("visualization %s is now %s", viz.id, viz.status)
        lookups.creating = waiting
        return changed

    def create_visualization(
        self,
        *,
        aoi: Aoi,
        index: Index,
        asset_ids: Sequence[str],
        resolution: float | None,
        user_id: str,
        final_status: FinalStatus,
        now: float,
        creation_delay: float,
    ) -> Visualization:
        """Add a new visualization in status ``creating``; the caller checked for duplicates."""
        created = self.tick(now)
        viz = Visualization(
            id=str(uuid.uuid4()),
            aoi_id=aoi.id,
            index_id=index.id,
            asset_ids=list(asset_ids),
            resolution=resolution,
            user_id=user_id,
            status="creating",
            final_status=final_status,
            created_at=created,
            updated_at=created,
            ready_at=created + int(creation_delay * 1_000_000),
        )
        self._add(viz)
        log.debug("created visualization %s (%s on %s)", viz.id, index.name, aoi.name)
        return viz

    def create_index(
        self,
        *,
        name: str,
        description: str,
        expression: str,
        expression_type: ExpressionType,
        bands: list[str],
        rescale: tuple[int, int],
        colormap: str,
        satellite_id: str,
        now: float,
    ) -> Index:
        """Add a custom index; the caller checked that no index has this name."""
        # The id a world file entry of this name would get, so created and seeded are the same
        # index; the counter, in case a world file gave that id to another name.
        index_id = derived_id("index", name)
        attempt = 1
        while self.index(index_id) is not None:
            attempt += 1
            index_id = derived_id("index", name, str(attempt))
        stamp = self.tick(now)
        index = Index(
            id=index_id,
            name=name,
            type="custom",
            expression_type=expression_type,
            expression=expression,
            bands=bands,
            rescale=rescale,
            colormap=colormap,
            description=description,
            satellite_id=satellite_id,
            created_at=stamp,
            updated_at=stamp,
        )
        lookups = self._lookups()  # before the list grows: see _Lookups.matches
        self.indices.append(index)
        lookups.add_index(index)
        log.debug("created index %s (%s)", index.id, index.name)
        return index

    def auto_legends(self, viz: Visualization) -> Legend:
        """Every auto-computed legend of the visualization: each date, each mode its index has."""
        index = self.index(viz.index_id)
        aoi = self.aoi(viz.aoi_id)
        if index is None or aoi is None or not index.modes:
            return {}
        return {
            key: {mode: self.auto_legend(viz, mode, key) for mode in index.modes}
            for key in self.dates_of(viz)
        }

    def auto_legend(self, viz: Visualization, mode: Mode, key: str) -> list[dict[str, Any]]:
        """The auto-computed legend of one date key ("2024_05_06") in one mode."""
        index = self.index(viz.index_id)
        aoi = self.aoi(viz.aoi_id)
        assert index is not None and aoi is not None  # guaranteed by how visualizations are made
        return auto_legend(
            index_id=index.id,
            mode=mode,
            asset_ids=self.dates_of(viz)[key],
            rescale=index.rescale,
            area_in_sq_m=aoi.area_in_sq_m,
        )

    def legend_of(self, viz: Visualization, mode: Mode, key: str) -> list[dict[str, Any]]:
        """The legend of one date key in one mode as it is now: edited, or auto-computed."""
        found = viz.legend.get(key, {}).get(mode)
        return found if found is not None else self.auto_legend(viz, mode, key)

    def set_legend(
        self, viz: Visualization, mode: Mode, legends: dict[str, list[dict[str, Any]]], now: float
    ) -> None:
        """Replace the legend of ``mode`` for the given date keys (a manual edit, PUT)."""
        for key, items in legends.items():
            viz.legend.setdefault(key, {})[mode] = items
        viz.updated_at = self.tick(now)

    def rollback(self, viz: Visualization, mode: Mode, keys: Iterable[str], now: float) -> None:
        """Recompute the legend of ``mode`` for the given date keys (PATCH); always a change."""
        for key in keys:
            viz.legend.setdefault(key, {})[mode] = self.auto_legend(viz, mode, key)
        viz.updated_at = self.tick(now)

    # -- seeding from a world file ------------------------------------------------------------

    @classmethod
    def _from_spec(cls, spec: WorldFile, path: Path) -> World:
        problems: list[str] = []
        indices = _seed_indices(spec, problems)
        aois = _seed_aois(spec, _seed_projects(spec, problems), problems)
        world = cls(indices=indices, aois=aois)
        _check_unique(problems, "index", [(i.id, i.name) for i in indices])
        _check_unique(problems, "AOI", [(a.id, a.name) for a in aois])
        for aoi in aois:
            _check_unique(
                problems, f"asset of AOI {aoi.name!r}", [(a.id, a.name) for a in aoi.assets]
            )
        for position, entry in enumerate(spec.visualizations):
            viz = world._seed_visualization(position, entry, problems)
            if viz is not None:
                world._add(viz)
        if problems:
            raise ConfigError(
                f"world file {path} is invalid:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        stamps = [i.updated_at for i in indices] + [a.updated_at for a in aois]
        stamps += [x.updated_at for a in aois for x in a.assets]
        stamps += [v.updated_at for v in world.visualizations]
        world.clock = max(stamps)
        return world

    def _seed_visualization(
        self, position: int, entry: VisualizationEntry, problems: list[str]
    ) -> Visualization | None:
        where = f"visualizations[{position}]"
        aoi = self.aoi(entry.aoi) or self.aoi_by_name(entry.aoi)
        index = self.index_by_ref(entry.index)
        if aoi is None:
            problems.append(f"{where}.aoi: no AOI named or with id {entry.aoi!r}")
        if index is None:
            problems.append(f"{where}.index: no index named or with id {entry.index!r}")
        if aoi is None or index is None:
            return None
        if entry.assets is None:
            asset_ids = [a.id for a in aoi.assets]
        else:
            asset_ids = []
            for ref in entry.assets:
                asset = aoi.asset(ref) or next((a for a in aoi.assets if a.name == ref), None)
                if asset is None:
                    problems.append(f"{where}.assets: AOI {aoi.name!r} has no asset {ref!r}")
                elif asset.id not in asset_ids:
                    asset_ids.append(asset.id)
        if not asset_ids:
            problems.append(f"{where}.assets: a visualization needs at least one asset")
            return None
        same = self.find_same(aoi.id, index.id, asset_ids)
        if same is not None:
            problems.append(
                f"{where}: duplicates visualization {same.id} (same AOI, index and asset set)"
            )
            return None
        viz_id = entry.id or derived_id("visualization", aoi.id, index.id, *sorted(asset_ids))
        if viz_id in self._lookups().viz_by_id:
            problems.append(f"{where}.id: id {viz_id!r} is used twice")
            return None
        last_date = max(aoi.asset(a).date for a in asset_ids)  # type: ignore[union-attr]
        created = to_micros(
            dt.datetime.fromisoformat(last_date).replace(hour=8, tzinfo=dt.UTC)
            + dt.timedelta(days=1, seconds=position)
        )
        viz = Visualization(
            id=viz_id,
            aoi_id=aoi.id,
            index_id=index.id,
            asset_ids=asset_ids,
            resolution=entry.resolution,
            user_id=user_id_for(0),
            status=entry.status,
            final_status=entry.status,
            created_at=created,
            updated_at=created,
            ready_at=created,
        )
        if viz.status != "failed":
            viz.legend = self.auto_legends(viz)
        return viz


class _Lookups:
    """The world's lists by key; ``creating`` holds the visualizations that may still change.

    Built from the lists, then kept current by ``World._add``; ``matches`` tells when the lists
    were replaced or changed length some other way, and the tables must be built again.
    """

    def __init__(self, world: World) -> None:
        self._lists = (world.indices, world.aois, world.visualizations)
        self._sizes = [len(world.indices), len(world.aois), 0]
        # Like the scans these replace, the first of any duplicate ids wins.
        self.index_by_id = {i.id: i for i in reversed(world.indices)}
        self.index_by_name = {i.name: i for i in reversed(world.indices)}
        self.aoi_by_id = {a.id: a for a in reversed(world.aois)}
        self.aoi_by_name = {a.name: a for a in reversed(world.aois)}
        self.viz_by_id: dict[str, Visualization] = {}
        self.by_aoi: dict[str, list[Visualization]] = {}
        self.by_identity: dict[tuple[str, str, frozenset[str]], Visualization] = {}
        self.creating: list[Visualization] = []
        self.rendered: dict[str, tuple[object, Any]] = {}  # see World.rendered
        for viz in world.visualizations:
            self.add(viz)

    def matches(self, world: World) -> bool:
        """Whether these tables still describe the world's lists."""
        lists = (world.indices, world.aois, world.visualizations)
        return all(a is b for a, b in zip(lists, self._lists, strict=True)) and self._sizes == [
            len(lst) for lst in lists
        ]

    def add_index(self, index: Index) -> None:
        self.index_by_id.setdefault(index.id, index)
        self.index_by_name.setdefault(index.name, index)
        self._sizes[0] += 1

    def add(self, viz: Visualization) -> None:
        self.viz_by_id.setdefault(viz.id, viz)
        self.by_aoi.setdefault(viz.aoi_id, []).append(viz)
        self.by_identity.setdefault((viz.aoi_id, viz.index_id, frozenset(viz.asset_ids)), viz)
        if viz.status == "creating":
            self.creating.append(viz)
        self._sizes[2] += 1


def _seed_indices(spec: WorldFile, problems: list[str]) -> list[Index]:
    base = to_micros(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    indices = []
    for position, entry in enumerate(spec.indices):
        if entry.rescale[0] >= entry.rescale[1]:
            problems.append(
                f"indices[{position}].rescale: expected [low, high] with low < high, "
                f"got {list(entry.rescale)}"
            )
        stamp = base + position * 60_000_000
        indices.append(
            Index(
                id=entry.id or derived_id("index", entry.name),
                name=entry.name,
                type=entry.type,
                expression_type=entry.expression_type,
                expression=entry.expression,
                bands=entry.bands,
                rescale=entry.rescale,
                colormap=entry.colormap,
                description=entry.description,
                satellite_id=SATELLITE_ID,
                created_at=stamp,
                updated_at=stamp,
            )
        )
    return indices


def _seed_projects(spec: WorldFile, problems: list[str]) -> dict[str, str]:
    """Project name or id -> project id."""
    pairs = [(p.id or derived_id("project", p.name), p.name) for p in spec.projects]
    _check_unique(problems, "project", pairs)
    return {ref: pid for pid, name in pairs for ref in (pid, name)}


def _seed_aois(spec: WorldFile, projects: dict[str, str], problems: list[str]) -> list[Aoi]:
    aois = []
    for position, entry in enumerate(spec.aois):
        aoi_id = entry.id or derived_id("aoi", entry.name)
        project_id = PROJECT_ID
        if entry.project is not None:
            if entry.project in projects:
                project_id = projects[entry.project]
            else:
                problems.append(
                    f"aois[{position}].project: no project named or with id {entry.project!r} "
                    "under 'projects'"
                )
        assets = []
        for n, a in enumerate(entry.assets):
            stamp = to_micros(
                dt.datetime.combine(a.date, dt.time(6), tzinfo=dt.UTC) + dt.timedelta(seconds=n)
            )
            assets.append(
                Asset(
                    id=a.id or derived_id("asset", aoi_id, a.name),
                    name=a.name,
                    date=a.date.isoformat(),
                    resolution=a.resolution,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
        first = min((a.date for a in entry.assets), default=dt.date(2024, 1, 1))
        created = to_micros(dt.datetime.combine(first, dt.time(0), tzinfo=dt.UTC))
        created -= 86_400_000_000  # the AOI existed a day before its first image
        # Somewhere in India, like the demo world's names; stable per AOI id.
        lon = round(72.0 + 14.0 * _unit(aoi_id, "lon"), 4)
        lat = round(11.0 + 16.0 * _unit(aoi_id, "lat"), 4)
        aois.append(
            Aoi(
                id=aoi_id,
                name=entry.name,
                description=entry.description,
                centroid=(lon, lat),
                area_in_sq_m=round(1_000_000 + 49_000_000 * _unit(aoi_id, "area"), 2),
                created_at=created,
                updated_at=max([created, *(a.updated_at for a in assets)]),
                assets=assets,
                project_id=project_id,
            )
        )
    return aois


def _check_unique(problems: list[str], what: str, pairs: list[tuple[str, str]]) -> None:
    for column, label in ((0, "id"), (1, "name")):
        seen: set[str] = set()
        for pair in pairs:
            value = pair[column]
            if value in seen:
                problems.append(f"{what} {label} {value!r} is used twice")
            seen.add(value)


def format_loc(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a path: ("aois", 2, "date") -> ``aois[2].date``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"
