"""The spec language: pydantic models of a spec file, loading, and the flattened declarations.

A spec file looks like this (see ``specs/`` for commented examples)::

    version: 1
    aois:
      - aoi: {name: Bengaluru-North}        # or `aoi: <id>` or `aoi: {id: <id>}`
        visualizations:
          - index: NDVI                       # index name or id
            assets: [Bengaluru-A, 2024-05-06] # optional: asset ids, names or ISO dates
            resolution: 10                    # optional, > 0
            rollback:                         # optional
              - mode: dynamic                 # dynamic | theoretical
                dates: [2024-05-06]
                revision: 1                   # optional; bump to force the rollback again

Top-level keys starting with ``x-`` are ignored, so they can hold YAML anchors to reuse with
``<<: *name`` merge keys or ``*name`` aliases.

``load_specs(paths)`` reads files and directories, validates everything, and either returns
``Specs`` (plain frozen dataclasses carrying the position of every declaration) or raises one
``SpecError`` listing every problem in every file, each at the YAML node it is about.
``validate_specs(paths)`` does the same checks but returns the problems instead of raising
them, for ``reconciler validate``.

Offline checks cannot resolve names against the API, so some questions wait for ``plan`` or
``validate --online``. One of them deserves a rule: AOI ``{name: X}`` in one place and AOI
``<id>`` in another may or may not be the same AOI. Giving AOIs in both forms is legitimate,
so it is never an error offline. When a by-name AOI and a by-id AOI declare a visualization
with the same index and assets (a duplicate if they are the same AOI), validation adds a
**note** (shown, exit status unaffected) pointing at both; a real duplicate is an error once
names are resolved, which is the planner's and ``validate --online``'s job. An error here would
fire on every pair of AOIs that both want, say, NDWI over all assets.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import hashlib
import logging
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from reconciler.dates import iso_date
from reconciler.errors import Problem, SpecError, Where
from reconciler.yamlsource import (
    Document,
    Loc,
    describe_os_error,
    read_yaml_file,
    special_file_kind,
)

log = logging.getLogger(__name__)

#: The spec format version this reconciler reads (the optional top-level ``version`` key).
SPEC_VERSION: Final = 1
#: File name endings picked up when a directory is given.
SPEC_SUFFIXES = (".yaml", ".yml")
#: Top-level keys starting with this are ignored: a place for YAML anchors (`x-defaults: &d`).
EXTENSION_PREFIX = "x-"

Mode = Literal["dynamic", "theoretical"]

# What YAML 1.1 would read as a date (1-2 digit month/day): such text is meant as a date, so a
# bad one is reported as a bad date rather than silently taken as an asset name.
_DATE_LIKE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}([ tT].*)?")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def looks_like_uuid(text: str) -> bool:
    """True if ``text`` has the shape of the API's ids (a UUID)."""
    return _UUID.fullmatch(text) is not None


def _describe(value: Any) -> str:
    """A short, YAML-flavoured description of a value for 'got ...' in messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dt.datetime):
        return f"'{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return repr(value)
    return str(value)


# --- field types -------------------------------------------------------------------------------


def _spec_date(value: Any) -> str:
    """Accept a YAML date or an ISO date string; return the ISO string."""
    if isinstance(value, dt.datetime):
        raise PydanticCustomError(
            "iso_date", f"expected a date without a time like 2024-05-06, got {_describe(value)}"
        )
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return iso_date(value)
    raise PydanticCustomError(
        "iso_date", f"expected an ISO date like 2024-05-06, got {_describe(value)}"
    )


def _asset_selector(value: Any) -> str:
    """An asset id, name or ISO date; dates come back as ISO strings."""
    if isinstance(value, dt.date) or (isinstance(value, str) and _DATE_LIKE.fullmatch(value)):
        return _spec_date(value)
    if isinstance(value, str):
        if not value.strip():
            raise PydanticCustomError("asset_selector", "an asset must not be empty")
        return value
    raise PydanticCustomError(
        "asset_selector",
        f"expected an asset id, name or ISO date, got {_describe(value)} "
        "(quote a name that YAML reads as a number or boolean)",
    )


def _aoi_id(value: Any) -> Any:
    """A bare ``aoi: <value>`` is an id; a name written there is the likely mistake."""
    if isinstance(value, str) and not looks_like_uuid(value):
        raise PydanticCustomError(
            "aoi_id",
            f"{_describe(value)} is not an AOI id (ids look like "
            f"89a291cd-7ad8-5f86-aeee-55e92b0a0f5d); to give the AOI by name write "
            f"aoi: {{name: {value}}}",
        )
    return value


IsoDate = Annotated[
    str,
    BeforeValidator(_spec_date),
    Field(
        title="Date",
        description="An ISO date (YYYY-MM-DD), quoted or not.",
        json_schema_extra={"format": "date"},
        examples=["2024-05-06"],
    ),
]

AssetSelector = Annotated[
    str,
    BeforeValidator(_asset_selector),
    Field(
        title="Asset",
        description=(
            "A source asset of the AOI: its ISO date (2024-05-06), its id (a UUID) or its name."
        ),
        examples=["Bengaluru-A", "2024-05-06", "4bbe45b3-ef5d-54f4-ba70-b6700fa56d61"],
    ),
]

AoiIdText = Annotated[
    str,
    BeforeValidator(_aoi_id),
    Field(
        title="AOI id",
        description="The AOI's id (a UUID). To give the AOI by name, write {name: ...}.",
        examples=["89a291cd-7ad8-5f86-aeee-55e92b0a0f5d"],
        json_schema_extra={"pattern": "^" + _UUID.pattern + "$"},
    ),
]

_MODEL_CONFIG = ConfigDict(
    extra="forbid",  # unknown keys are errors, with a "did you mean" (see _message)
    strict=True,  # no silent "10" -> 10 or yes -> 1: specs mean what they say
    allow_inf_nan=False,
    frozen=True,
)


def _no_null(value: Any) -> Any:
    # Optional keys may be omitted, but an explicit null (`assets:` with nothing after it) is
    # far more often a half-finished edit than a wish for the default.
    if value is None:
        raise PydanticCustomError("no_null", "a value is needed here; omit the key instead")
    return value


# --- models --------------------------------------------------------------------------------------


class AoiByRef(BaseModel):
    """An AOI given by name, {name: ...}, or by id, {id: ...}: exactly one of the two."""

    model_config = ConfigDict(
        **_MODEL_CONFIG,
        title="AOI reference",
        json_schema_extra={"oneOf": [{"required": ["name"]}, {"required": ["id"]}]},
    )

    name: str | None = Field(
        default=None,
        min_length=1,
        title="AOI name",
        description="The AOI's name as the API knows it.",
        examples=["Bengaluru-North"],
    )
    id: str | None = Field(
        default=None,
        min_length=1,
        title="AOI id",
        description="The AOI's id.",
        examples=["89a291cd-7ad8-5f86-aeee-55e92b0a0f5d"],
    )

    @field_validator("name", "id", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        return _no_null(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> AoiByRef:
        if (self.name is None) == (self.id is None):
            raise PydanticCustomError(
                "aoi_ref",
                "give the AOI either by name ({name: ...}) or by id ({id: ...})"
                + (", not both" if self.name is not None else ""),
            )
        return self


def _aoi_form(value: Any) -> str | None:
    # Pick the union member from the input's shape, so a bad AOI gets one precise error
    # instead of one per member.
    if isinstance(value, str):
        return "aoi:id"
    if isinstance(value, dict):
        return "aoi:mapping"
    return None


AoiRef = Annotated[
    Annotated[AoiIdText, Tag("aoi:id")] | Annotated[AoiByRef, Tag("aoi:mapping")],
    Discriminator(
        _aoi_form,
        custom_error_type="aoi_ref",
        custom_error_message="expected an AOI id, {name: ...} or {id: ...}",
    ),
]
#: Union tags pydantic puts into error locations; they are not keys of the YAML data.
_LOC_TAGS = frozenset({"aoi:id", "aoi:mapping"})


class RollbackModel(BaseModel):
    """Legends that must be auto-computed: one mode, some dates."""

    model_config = ConfigDict(**_MODEL_CONFIG, title="Rollback")

    mode: Mode = Field(
        title="Legend mode",
        description=(
            "Which legend to roll back: dynamic or theoretical. Preset indices have both; a "
            "custom index of expression type 'index' has only dynamic; composite and grayscale "
            "indices have none."
        ),
        examples=["dynamic"],
    )
    dates: list[IsoDate] = Field(
        min_length=1,
        title="Dates",
        description=(
            "Dates (ISO) whose legend must be the auto-computed one; each must be the date of "
            "one of the visualization's assets. Not empty, no duplicates."
        ),
        examples=[["2024-05-06", "2024-11-20"]],
    )
    revision: int = Field(
        default=0,
        ge=0,
        title="Revision",
        description=(
            "Bump this number to roll the legends back again even if nothing seems to have "
            "changed since the last rollback."
        ),
        examples=[1],
    )


class VisualizationModel(BaseModel):
    """A visualization the AOI must have: an index over some (or all) of its assets."""

    model_config = ConfigDict(**_MODEL_CONFIG, title="Visualization")

    index: str = Field(
        min_length=1,
        title="Index",
        description="The index, by name or id.",
        examples=["NDVI", "cb668cf4-b6fc-5c37-a944-84c62fd95299"],
    )
    assets: list[AssetSelector] | None = Field(
        default=None,
        min_length=1,
        title="Source assets",
        description=(
            "The AOI's assets to visualize, by ISO date, id or name. Omit the key to use the "
            "API's default (all of the AOI's assets)."
        ),
        examples=[["Bengaluru-A", "2024-11-20"]],
    )
    resolution: float | None = Field(
        default=None,
        gt=0,
        title="Resolution",
        description="Resolution override in metres per pixel; omit for the satellite's default.",
        examples=[10],
    )
    rollback: list[RollbackModel] = Field(
        default_factory=list,
        title="Rollbacks",
        description="Legends that must be the auto-computed ones; at most one entry per mode.",
    )

    @field_validator("assets", "resolution", "rollback", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        return _no_null(value)


class AoiEntry(BaseModel):
    """One AOI and the visualizations it must have."""

    model_config = ConfigDict(**_MODEL_CONFIG, title="AOI entry")

    aoi: AoiRef = Field(
        title="AOI",
        description="The AOI: its id, {name: ...} or {id: ...}.",
        examples=[{"name": "Bengaluru-North"}, "89a291cd-7ad8-5f86-aeee-55e92b0a0f5d"],
    )
    visualizations: list[VisualizationModel] = Field(
        title="Visualizations",
        description=(
            "Visualizations that must exist on this AOI. Others that exist are reported by plan, "
            "never touched. May be empty."
        ),
    )


class _SpecJsonSchema(GenerateJsonSchema):
    """JSON Schema for editors: optional keys may be omitted but are never null."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        # Optional fields are typed `X | None` only so an omitted key reads as None; writing
        # null is rejected (see _no_null), so the schema must not offer it either.
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        # `"default": null` would invite editors to insert a null that validation refuses.
        json_schema = super().default_schema(schema)
        if json_schema.get("default", 0) is None:
            json_schema.pop("default")
        return json_schema


class SpecFile(BaseModel):
    """One spec file: which visualizations each AOI must have, and which legends to roll back."""

    model_config = ConfigDict(
        **_MODEL_CONFIG,
        title="reconciler spec",
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            # Ignored keys for YAML anchors; see EXTENSION_PREFIX.
            "patternProperties": {"^x-": {}},
        },
    )

    version: Literal[1] = Field(
        default=SPEC_VERSION,
        title="Spec format version",
        description="The spec format version; only 1 exists. Optional.",
        examples=[1],
    )
    aois: list[AoiEntry] = Field(
        title="AOIs",
        description="The AOIs this file declares visualizations for.",
    )

    @classmethod
    def model_json_schema(
        cls,
        by_alias: bool | None = True,
        ref_template: str = "#/$defs/{model}",
        schema_generator: type[GenerateJsonSchema] = _SpecJsonSchema,
        mode: JsonSchemaMode = "validation",
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The JSON Schema of a spec file, for editors (``reconciler schema``)."""
        return super().model_json_schema(
            by_alias=by_alias,
            ref_template=ref_template,
            schema_generator=schema_generator,
            mode=mode,
            **kwargs,
        )


# --- declarations (what the planner reads) -----------------------------------------------------


@dataclass(frozen=True)
class AssetSel:
    """One source asset selector; ``value`` is ISO for dates."""

    kind: Literal["id", "name", "date"]
    value: str
    where: Where


@dataclass(frozen=True)
class RollbackDecl:
    """Legends of ``dates`` (ISO, sorted) in ``mode`` that must be auto-computed."""

    mode: Mode
    dates: tuple[str, ...]
    date_wheres: tuple[Where, ...]  # same order as dates
    revision: int
    where: Where  # the rollback list item


@dataclass(frozen=True)
class VisualizationDecl:
    """One declared visualization; ``assets`` is None when the spec leaves them to the API."""

    index: str
    index_where: Where
    assets: tuple[AssetSel, ...] | None
    resolution: float | None
    rollbacks: tuple[RollbackDecl, ...]
    where: Where  # the visualizations list item

    def describe(self) -> str:
        """'NDVI over [Bengaluru-A, 2024-05-06]' or 'NDVI over all assets', for messages."""
        if self.assets is None:
            return f"{self.index} over all assets"
        return f"{self.index} over [{', '.join(a.value for a in self.assets)}]"


@dataclass(frozen=True)
class AoiDecl:
    """One ``aois`` entry: an AOI by id or by name (exactly one is set) and its visualizations."""

    id: str | None
    name: str | None
    where: Where  # the `aoi` value
    visualizations: tuple[VisualizationDecl, ...]

    @property
    def label(self) -> str:
        """The name, or the id when the AOI is given by id."""
        return self.name if self.name is not None else str(self.id)

    def describe(self) -> str:
        return f"AOI {self.name!r}" if self.name is not None else f"AOI {self.id}"


@dataclass(frozen=True)
class Specs:
    """Every declaration of every spec file, in load order.

    ``fingerprint`` is a sha256 over every (display path, file bytes): it changes when any
    spec file changes, so a saved plan can tell it is stale. ``notes`` are remarks that do not
    make the specs invalid (see the module docstring).
    """

    files: tuple[str, ...]
    fingerprint: str
    aois: tuple[AoiDecl, ...]
    notes: tuple[Problem, ...] = ()

    @property
    def visualization_count(self) -> int:
        return sum(len(a.visualizations) for a in self.aois)


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of offline validation: ``specs`` is set exactly when ``problems`` is empty."""

    files: tuple[str, ...]
    problems: tuple[Problem, ...]
    notes: tuple[Problem, ...]
    specs: Specs | None

    @property
    def valid(self) -> bool:
        return not self.problems


# --- loading -------------------------------------------------------------------------------------


def find_spec_files(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[str, Path]]:
    """Expand files and directories into ``(display path, path)`` pairs, in a stable order.

    Directories are searched recursively for ``*.yaml`` and ``*.yml``, sorted by path; hidden
    files and directories (``.git``, ``.pre-commit-config.yaml``) are skipped. A file named
    explicitly is read whatever its name. Each file is read once even if named twice (or
    reached through a symlink). Only regular files are specs: a device, FIFO or socket (say a
    link to ``/dev/stdin``) is refused without being opened, so nothing blocks on it.
    Raises ``SpecError`` if a path does not exist, cannot be used (symlink loop, special
    file), or a directory holds no spec files.
    """
    problems: list[Problem] = []
    found: list[tuple[str, Path]] = []
    seen: set[tuple[int, int]] = set()
    if not paths:
        raise SpecError([Problem("no spec files or directories given")])
    for given in paths:
        shown = os.fspath(given)
        info = _stat(shown, problems)
        if info is None:
            continue
        if stat.S_ISDIR(info.st_mode):
            before = len(problems)
            matches = _walk(shown, problems)
            if not matches and len(problems) == before:
                problems.append(
                    Problem(f"{shown}: no spec files (*.yaml, *.yml) in this directory")
                )
        else:
            matches = [(shown, info)]
        for display, file_info in matches:
            kind = special_file_kind(file_info)
            if kind is not None:
                problems.append(Problem(f"{display}: {kind}, not a spec file; refusing to read it"))
                continue
            key = (file_info.st_dev, file_info.st_ino)
            if key not in seen:
                seen.add(key)
                found.append((display, Path(display)))
    if problems:
        raise SpecError(problems)
    return found


def _stat(shown: str, problems: list[Problem]) -> os.stat_result | None:
    """``os.stat`` (following symlinks) of a spec path, or None after adding the problem."""
    try:
        return os.stat(shown)
    except OSError as exc:
        problems.append(Problem(f"{shown}: {describe_os_error(exc, shown)}"))
        return None


def _walk(top: str, problems: list[Problem]) -> list[tuple[str, os.stat_result]]:
    result: list[tuple[str, os.stat_result]] = []

    def unreadable(exc: OSError) -> None:
        where = exc.filename if isinstance(exc.filename, str) else top
        problems.append(Problem(f"{where}: {describe_os_error(exc, where)}"))

    # os.walk does not follow directory symlinks, so a link loop among directories cannot trap
    # us; a file symlink in a loop fails its stat below and is reported.
    for root, dirs, files in os.walk(top, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not name.endswith(SPEC_SUFFIXES):
                continue
            display = os.path.join(root, name)
            info = _stat(display, problems)
            if info is not None:
                result.append((display, info))
    return sorted(result, key=lambda item: Path(item[0]).parts)


def validate_specs(paths: Sequence[str | os.PathLike[str]]) -> ValidationReport:
    """Run every offline check on the spec files under ``paths`` and report the problems.

    Problems inside spec files are returned, not raised. Raises ``SpecError`` only when there is
    nothing to check: a path that does not exist, or a directory without spec files.
    """
    files = find_spec_files(paths)
    problems: list[Problem] = []
    digest = hashlib.sha256()
    aois: list[AoiDecl] = []
    for display, path in files:
        try:
            raw, doc = read_yaml_file(path, display)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        # Length-prefixed so (a, bc) and (ab, c) never hash alike.
        name = display.encode("utf-8", errors="surrogateescape")
        digest.update(b"%d:%s%d:" % (len(name), name, len(raw)))
        digest.update(raw)
        file_aois, file_problems = _check_document(doc)
        log.debug(
            "read %s: %d AOI entries, %d problems", display, len(file_aois), len(file_problems)
        )
        aois.extend(file_aois)
        problems.extend(file_problems)
    cross_problems, notes = _cross_checks(aois)
    problems.extend(cross_problems)
    shown = tuple(display for display, _ in files)
    ordered = tuple(SpecError(problems).problems)  # SpecError knows the display order
    if ordered:
        return ValidationReport(shown, ordered, tuple(notes), None)
    specs = Specs(shown, digest.hexdigest(), tuple(aois), tuple(notes))
    return ValidationReport(shown, (), tuple(notes), specs)


def load_specs(paths: Sequence[str | os.PathLike[str]]) -> Specs:
    """Load and validate every spec file under ``paths`` (files or directories).

    Returns the declarations, or raises one ``SpecError`` carrying every problem found in every
    file, each at the position of the YAML node it is about.
    """
    report = validate_specs(paths)
    if report.specs is None:
        raise SpecError(report.problems)
    return report.specs


# --- per-file checks -----------------------------------------------------------------------------


def _check_document(doc: Document) -> tuple[list[AoiDecl], list[Problem]]:
    """Validate one parsed file; return the declarations that are whole, and the problems."""
    if doc.data is None:
        return [], [
            Problem(
                "the file is empty; a spec file needs an 'aois' list (see 'reconciler schema')",
                Where(doc.path, 1, 1),
            )
        ]
    problems: list[Problem] = []
    data = doc.data
    if isinstance(data, dict):
        # `x-...` top-level keys hold YAML anchors to reuse (as in docker-compose files).
        data = {k: v for k, v in data.items() if not k.startswith(EXTENSION_PREFIX)}
    try:
        SpecFile.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problem(error, doc) for error in exc.errors())
    # Rebuild the declarations from the pieces that are valid on their own, so checks that
    # need whole declarations (duplicates) still run next to pydantic's errors.
    aois: list[AoiDecl] = []
    entries = doc.data.get("aois") if isinstance(doc.data, dict) else None
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        decl = _aoi_decl(doc, ("aois", i), entry, problems)
        if decl is not None:
            aois.append(decl)
    return aois, problems


_AOI_ADAPTER: TypeAdapter[Any] = TypeAdapter(AoiRef)


def _aoi_decl(doc: Document, loc: Loc, entry: Any, problems: list[Problem]) -> AoiDecl | None:
    if not isinstance(entry, dict) or "aoi" not in entry:
        return None
    try:
        ref = _AOI_ADAPTER.validate_python(entry["aoi"])
    except ValidationError:
        return None  # already reported by the whole-file validation
    visualizations: list[VisualizationDecl] = []
    raw_list = entry.get("visualizations")
    for j, raw in enumerate(raw_list if isinstance(raw_list, list) else []):
        vis_loc = (*loc, "visualizations", j)
        try:
            model = VisualizationModel.model_validate(raw)
        except ValidationError:
            continue
        visualizations.append(_visualization_decl(doc, vis_loc, model, problems))
    if isinstance(ref, AoiByRef):
        aoi_id, name = ref.id, ref.name
    else:
        aoi_id, name = ref, None
    return AoiDecl(aoi_id, name, doc.where((*loc, "aoi")), tuple(visualizations))


def _visualization_decl(
    doc: Document, loc: Loc, model: VisualizationModel, problems: list[Problem]
) -> VisualizationDecl:
    assets: tuple[AssetSel, ...] | None = None
    if model.assets is not None:
        selected: list[AssetSel] = []
        seen: set[tuple[str, str]] = set()
        for k, value in enumerate(model.assets):
            where = doc.where((*loc, "assets", k))
            sel = AssetSel(_asset_kind(doc, (*loc, "assets", k), value), value, where)
            if (sel.kind, sel.value) in seen:
                problems.append(Problem(f"asset {value} is listed twice", where))
                continue
            seen.add((sel.kind, sel.value))
            selected.append(sel)
        assets = tuple(selected)
    rollbacks: list[RollbackDecl] = []
    modes: set[str] = set()
    for k, rollback in enumerate(model.rollback):
        r_loc = (*loc, "rollback", k)
        if rollback.mode in modes:
            problems.append(
                Problem(
                    f"mode {rollback.mode!r} has two rollback entries for this visualization; "
                    "merge their dates",
                    doc.where((*r_loc, "mode")),
                )
            )
            continue
        modes.add(rollback.mode)
        dated: dict[str, Where] = {}
        for n, date in enumerate(rollback.dates):
            where = doc.where((*r_loc, "dates", n))
            if date in dated:
                problems.append(Problem(f"date {date} is listed twice", where))
                continue
            dated[date] = where
        ordered = sorted(dated.items())
        rollbacks.append(
            RollbackDecl(
                mode=rollback.mode,
                dates=tuple(d for d, _ in ordered),
                date_wheres=tuple(w for _, w in ordered),
                revision=rollback.revision,
                where=doc.where(r_loc),
            )
        )
    return VisualizationDecl(
        index=model.index,
        index_where=doc.where((*loc, "index")),
        assets=assets,
        resolution=model.resolution,
        rollbacks=tuple(rollbacks),
        where=doc.where(loc),
    )


def _asset_kind(doc: Document, loc: Loc, value: str) -> Literal["id", "name", "date"]:
    raw = _at(doc.data, loc)
    if isinstance(raw, dt.date) or (isinstance(raw, str) and _DATE_LIKE.fullmatch(raw)):
        return "date"
    return "id" if looks_like_uuid(value) else "name"


def _at(data: Any, loc: Loc) -> Any:
    for part in loc:
        data = data[part]
    return data


# --- checks across files -------------------------------------------------------------------------


def _identity(vis: VisualizationDecl) -> tuple[str, frozenset[tuple[str, str]] | None]:
    """What makes two declarations the same visualization, as far as offline can tell."""
    assets = None if vis.assets is None else frozenset((a.kind, a.value) for a in vis.assets)
    return vis.index, assets


def _cross_checks(aois: Sequence[AoiDecl]) -> tuple[list[Problem], list[Problem]]:
    """Visualizations declared twice (errors) and AOIs in mixed forms that may clash (notes)."""
    problems: list[Problem] = []
    notes: list[Problem] = []
    first: dict[tuple[Any, ...], VisualizationDecl] = {}
    # identity -> first (AOI, visualization) declaring it, per AOI form
    by_form: dict[str, dict[tuple[Any, ...], tuple[AoiDecl, VisualizationDecl]]] = {
        "name": {},
        "id": {},
    }
    noted: set[tuple[str, str]] = set()
    for aoi in aois:
        form = "name" if aoi.name is not None else "id"
        other = "id" if form == "name" else "name"
        for vis in aoi.visualizations:
            ident = _identity(vis)
            key = (form, aoi.label, *ident)
            if key in first:
                problems.append(
                    Problem(
                        f"visualization {vis.describe()} on {aoi.describe()} is declared twice: "
                        f"first at {first[key].where}",
                        vis.where,
                    )
                )
                continue
            first[key] = vis
            by_form[form].setdefault(ident, (aoi, vis))
            clash = by_form[other].get(ident)
            if clash is None:
                continue
            other_aoi, other_vis = clash
            pair = (aoi.label, other_aoi.label)
            if pair in noted:
                continue
            noted.add(pair)
            notes.append(
                Problem(
                    f"{aoi.describe()} is given by {form} here and {other_aoi.describe()} by "
                    f"{other} at {other_aoi.where}, and both declare {vis.describe()} (also at "
                    f"{other_vis.where}); they cannot be told apart offline: if they are the "
                    "same AOI, use one form ('plan' and 'validate --online' check this after "
                    "resolving names)",
                    vis.where,
                )
            )
    return problems, notes


# --- pydantic errors -> messages for spec authors -------------------------------------------------

#: The keys each mapping of the format allows, found by the key that holds the mapping.
_KEYS_UNDER: dict[str | None, tuple[str, ...]] = {
    None: tuple(SpecFile.model_fields),
    "aois": tuple(AoiEntry.model_fields),
    "aoi": tuple(AoiByRef.model_fields),
    "visualizations": tuple(VisualizationModel.model_fields),
    "rollback": tuple(RollbackModel.model_fields),
}

_KIND_OF_TYPE = {
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
}


def _data_loc(loc: tuple[Any, ...]) -> Loc:
    """Drop pydantic's union tags from ``loc`` so it addresses the YAML data."""
    return tuple(part for part in loc if part not in _LOC_TAGS)


def _parent_key(loc: Loc) -> str | None:
    """The nearest key in ``loc``: 'visualizations' for (..., 'visualizations', 0)."""
    for part in reversed(loc):
        if isinstance(part, str):
            return part
    return None


def _subject(loc: Loc) -> str:
    """How to name the value at ``loc`` in a message: 'dates', 'item 2 of dates', 'the file'."""
    if not loc:
        return "the file"
    last = loc[-1]
    if isinstance(last, int):
        parent = _parent_key(loc[:-1])
        return f"item {last + 1} of '{parent}'" if parent else f"item {last + 1}"
    return f"'{last}'"


def _problem(error: Any, doc: Document) -> Problem:
    loc = _data_loc(tuple(error["loc"]))
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    subject = _subject(loc)
    if kind == "missing":
        key = loc[-1]
        return Problem(f"missing required key '{key}'", doc.where(loc[:-1]))
    where = doc.where(loc)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _KEYS_UNDER.get(_parent_key(loc[:-1]), ())
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = (
            f" (did you mean '{close[0]}'?)"
            if close
            else f"; expected one of: {', '.join(allowed)}"
            if allowed
            else ""
        )
        return Problem(f"unknown key '{key}'{hint}", doc.key_where(loc))
    if kind == "literal_error":
        if loc == ("version",):
            message = (
                f"unsupported spec version {_describe(value)}; this reconciler reads version "
                f"{SPEC_VERSION}"
            )
            return Problem(message, where)
        expected = ctx.get("expected", "")
        message = f"{subject} must be one of {expected}, got {_describe(value)}"
        options = re.findall(r"'([^']*)'", str(expected))
        if isinstance(value, str):
            close = difflib.get_close_matches(value, options, n=1)
            if close:
                message += f" (did you mean '{close[0]}'?)"
        return Problem(message, where)
    if kind in ("too_short", "string_too_short"):
        message = f"{subject} must not be empty"
        if loc and loc[-1] == "assets":
            message += "; omit the key to use all of the AOI's assets"
        return Problem(message, where)
    if kind in _KIND_OF_TYPE:
        if not loc:
            return Problem(
                f"the file must be a mapping with an 'aois' list, got {_describe(value)}", where
            )
        message = f"{subject} must be {_KIND_OF_TYPE[kind]}, got {_describe(value)}"
        if kind == "string_type" and isinstance(value, int | float | bool):
            message += " (quote it if it is a name)"
        return Problem(message, where)
    if kind in ("greater_than", "greater_than_equal"):
        bound = ctx.get("gt", ctx.get("ge"))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        relation = "greater than" if kind == "greater_than" else "at least"
        return Problem(f"{subject} must be {relation} {bound}, got {_describe(value)}", where)
    if kind == "finite_number":
        return Problem(f"{subject} must be a finite number, got {_describe(value)}", where)
    if kind == "no_null":
        return Problem(f"{subject} needs a value; omit the key to use the default", where)
    message = str(error.get("msg", "is not valid"))
    message = message.removeprefix("Value error, ")
    if kind == "aoi_ref" and not isinstance(value, dict):
        message = f"{message}, got {_describe(value)}"
    if kind in ("aoi_ref", "aoi_id", "iso_date", "asset_selector"):
        return Problem(message, where)
    return Problem(f"{subject}: {message[:1].lower()}{message[1:]}", where)
