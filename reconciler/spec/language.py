"""The spec language: pydantic models of a spec file, loading, and the flattened declarations.

A spec file looks like this (see ``specs/`` for commented examples)::

    version: 1
    aois:
      - aoi: {name: Bengaluru-North}        # or `aoi: <id>` or `aoi: {id: <id>}`
        visualizations:
          - index: NDVI                       # index name or id
            assets: [Bengaluru-A, 2024-05-06] # optional: asset ids, names or ISO dates,
                                              # or a policy: all (default) | any
            resolution: 10                    # optional, > 0
            rollback:                         # optional
              - mode: dynamic                 # dynamic | theoretical
                dates: [2024-05-06]
                revision: 1                   # optional; bump to force the rollback again
    selectors:                                # optional: the same for many AOIs
      - match: {names: ["Farm-*"], projects: [<id>]}   # names/globs, ids, projects: all hold
        visualizations: [{index: NDWI, assets: any}]

Top-level keys starting with ``x-`` are ignored, so they can hold YAML anchors to reuse with
``<<: *name`` merge keys or ``*name`` aliases.

docs/spec-reference.md describes every key. Declarations of the same visualization (in several
files, or by a selector and a per-AOI entry) are one when they agree (``disagreement``).

``load_specs(paths)`` reads files and directories, validates everything, and either returns
``Specs`` (plain frozen dataclasses carrying the position of every declaration) or raises one
``SpecError`` listing every problem in every file, each at the YAML node it is about.
``validate_specs(paths)`` does the same checks but returns the problems instead of raising
them, for ``reconciler validate``.

Offline checks cannot resolve names against the API, so some questions wait for ``plan`` or
``validate --online``. One of them deserves a rule: AOI ``{name: X}`` in one place and AOI
``<id>`` in another may or may not be the same AOI. Giving AOIs in both forms is legitimate,
so it is never an error offline. When a by-name AOI and a by-id AOI declare a visualization
with the same index and assets but disagree about it (a conflict if they are the same AOI),
validation adds a **note** (shown, exit status unaffected) pointing at both; a real conflict is
an error once names are resolved, which is the planner's and ``validate --online``'s job. An
error here would fire on every pair of AOIs that both want, say, NDWI over all assets.
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
from typing import Annotated, Any, Final, Literal, Protocol

from pydantic import (
    AfterValidator,
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
from reconciler.spec.yamlsource import (
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

#: What YAML 1.1 would read as a date (1-2 digit month/day): such text is meant as a date, so
#: a bad one is reported as a bad date rather than silently taken as an asset name.
DATE_LIKE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}([ tT].*)?")
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
        return repr(value) if len(value) <= _DESCRIBED else f"a text of {len(value):,} characters"
    text = str(value)
    # A long number is more likely a pasted secret or a whole file than a typo: not echoed.
    return text if len(text) <= _DESCRIBED else f"a number of {len(text):,} digits"


#: Values longer than this are described by kind and size, not quoted.
_DESCRIBED = 40


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
    if isinstance(value, dt.date) or (isinstance(value, str) and DATE_LIKE.fullmatch(value)):
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


def _aoi_id(value: Any, *, by_name: str = "to give the AOI by name write aoi: {{name: {}}}") -> Any:
    """A bare ``aoi: <value>`` is an id; a name written there is the likely mistake.

    ``by_name`` is the hint, with ``{}`` for the value: what to write instead to name the AOI.
    """
    if isinstance(value, str) and not looks_like_uuid(value):
        raise PydanticCustomError(
            "aoi_id",
            f"{_describe(value)} is not an AOI id (ids look like "
            f"89a291cd-7ad8-5f86-aeee-55e92b0a0f5d); " + by_name.format(value),
        )
    return value


_EXAMPLE_UUID = "2b91399d-6edb-54ca-948b-8bddabd28ed4"


def _uuid_text(value: Any, what: str) -> Any:
    if isinstance(value, str) and not looks_like_uuid(value):
        raise PydanticCustomError(
            "uuid", f"{_describe(value)} is not a {what} (a UUID like {_EXAMPLE_UUID})"
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
#: Union tags pydantic puts into error locations, by the key they follow; they are not keys
#: of the YAML data (a YAML key spelt like a tag elsewhere is kept).
_LOC_TAGS: dict[str, str] = {"aoi:id": "aoi", "aoi:mapping": "aoi"}


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


#: What ``assets: all`` and ``assets: any`` mean (see docs/spec-reference.md).
AssetPolicy = Literal["all", "any"]
ASSET_POLICIES: tuple[AssetPolicy, ...] = ("all", "any")


def _assets_form(value: Any) -> str | None:
    # As for AOIs: one precise error for a bad value instead of one per union member.
    if isinstance(value, list):
        return "assets:list"
    if isinstance(value, str):
        return "assets:policy"
    return None


AssetsValue = Annotated[
    Annotated[list[AssetSelector], Field(min_length=1), Tag("assets:list")]
    | Annotated[AssetPolicy, Tag("assets:policy")],
    Discriminator(
        _assets_form,
        custom_error_type="assets",
        custom_error_message="expected a list of assets, or the policy all or any",
    ),
]
_LOC_TAGS.update({"assets:list": "assets", "assets:policy": "assets"})


class VisualizationModel(BaseModel):
    """A visualization the AOI must have: an index over some (or all) of its assets."""

    model_config = ConfigDict(**_MODEL_CONFIG, title="Visualization")

    index: str = Field(
        min_length=1,
        title="Index",
        description="The index, by name or id.",
        examples=["NDVI", "cb668cf4-b6fc-5c37-a944-84c62fd95299"],
    )
    assets: AssetsValue | None = Field(
        default=None,
        title="Source assets",
        description=(
            "Which of the AOI's assets to visualize: a list of assets (ISO date, id or name), "
            "or a policy. 'all' (the default when the key is omitted): over every asset the "
            "AOI has now; when new assets arrive, a new visualization over all of them is "
            "created and the old one stays (the API has no delete). 'any': any existing "
            "visualization of this index on the AOI will do; one over all assets is created "
            "only when there is none."
        ),
        examples=[["Bengaluru-A", "2024-11-20"], "all", "any"],
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


# --- ignore rules: undeclared visualizations a team chose to leave alone -----------------------
#
# Kept apart from the declarations above: a rule never declares or changes anything, it only
# moves matching undeclared visualizations from the plan's warnings to its "ignored" count.


class IgnoreRuleModel(BaseModel):
    """Undeclared visualizations the plan should count as ignored instead of warning about."""

    model_config = ConfigDict(
        **_MODEL_CONFIG,
        title="Ignore rule",
        json_schema_extra={"oneOf": [{"required": ["index"]}, {"required": ["visualization"]}]},
    )

    index: str | None = Field(
        default=None,
        min_length=1,
        title="Index",
        description="Ignore every undeclared visualization of this index (name or id).",
        examples=["True-Color"],
    )
    visualization: str | None = Field(
        default=None,
        min_length=1,
        title="Visualization id",
        description="Ignore this one undeclared visualization, by its id.",
        examples=["f0e1d2c3-b4a5-4968-8776-655443322110"],
    )
    reason: str | None = Field(
        default=None,
        min_length=1,
        title="Reason",
        description="Why it is left alone; shown in the plan next to the count.",
        examples=["made by the field team by hand"],
    )

    @field_validator("index", "visualization", "reason", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        return _no_null(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> IgnoreRuleModel:
        if (self.index is None) == (self.visualization is None):
            raise PydanticCustomError(
                "ignore_rule",
                "an ignore rule names either an index ({index: ...}) or one visualization "
                "({visualization: <id>})" + (", not both" if self.index is not None else ""),
            )
        return self


_IGNORE_FIELD_DESCRIPTION = (
    "Undeclared visualizations to leave out of the plan's warnings (they are counted as "
    "ignored instead). Each rule names an index (every undeclared visualization of it) or one "
    "visualization id. Declared visualizations are never affected."
)


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
    ignore: list[IgnoreRuleModel] = Field(
        default_factory=list,
        title="Ignore rules for this AOI",
        description=_IGNORE_FIELD_DESCRIPTION,
    )

    @field_validator("ignore", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        return _no_null(value)


SelectorAoiIdText = Annotated[
    str,
    BeforeValidator(
        lambda value: _aoi_id(value, by_name="to select AOIs by name write names: [{}]")
    ),
    Field(
        title="AOI id",
        description="An AOI's id (a UUID). To select AOIs by name, use names: [...].",
        examples=["89a291cd-7ad8-5f86-aeee-55e92b0a0f5d"],
        json_schema_extra={"pattern": "^" + _UUID.pattern + "$"},
    ),
]

ProjectIdText = Annotated[
    str,
    BeforeValidator(lambda value: _uuid_text(value, "project id")),
    Field(
        title="Project id",
        description="A project's id (a UUID), as AOIs carry it in 'project_id'.",
        examples=["2b91399d-6edb-54ca-948b-8bddabd28ed4"],
        json_schema_extra={"pattern": "^" + _UUID.pattern + "$"},
    ),
]


def unclosed_bracket(pattern: str) -> int | None:
    """Where a ``[`` of a glob pattern opens a set that is never closed, or None.

    ``fnmatch`` reads such a ``[`` as a literal character, so ``Farm-[`` would silently match
    only an AOI named exactly that: almost surely a typo. Sets follow ``fnmatch``: ``[!...]``
    negates, and a ``]`` right after ``[`` or ``[!`` is a member, not the end.
    """
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] != "[":
            i += 1
            continue
        j = i + 1
        if j < n and pattern[j] == "!":
            j += 1
        if j < n and pattern[j] == "]":
            j += 1
        j = pattern.find("]", j)
        if j < 0:
            return i
        i = j + 1
    return None


def _name_pattern(value: Any) -> Any:
    if isinstance(value, str) and (at := unclosed_bracket(value)) is not None:
        raise PydanticCustomError(
            "name_pattern",
            f"{_describe(value)}: the '[' at character {at + 1} is never closed; expected a set "
            "like [abc] (one of a, b, c), or [[] for a literal '['",
        )
    return value


AoiNamePattern = Annotated[
    str,
    AfterValidator(_name_pattern),
    Field(
        min_length=1,
        title="AOI name or pattern",
        description=(
            "An AOI name, or a glob pattern over names: * any text, ? one character, [abc] "
            "one of these characters (case-sensitive)."
        ),
        examples=["Nagpur-Farms", "Farm-*"],
    ),
]


class SelectorMatchModel(BaseModel):
    """Which AOIs a selector covers: every key given must match (and), any item of a list may."""

    model_config = ConfigDict(
        **_MODEL_CONFIG,
        title="Selector match",
        json_schema_extra={
            "anyOf": [{"required": ["names"]}, {"required": ["ids"]}, {"required": ["projects"]}]
        },
    )

    names: list[AoiNamePattern] | None = Field(
        default=None,
        min_length=1,
        title="AOI names or patterns",
        description=(
            "AOIs whose name is one of these names or matches one of these glob patterns. "
            "A name without * ? [ must exist."
        ),
        examples=[["Farm-*", "Pune-East"]],
    )
    ids: list[SelectorAoiIdText] | None = Field(
        default=None,
        min_length=1,
        title="AOI ids",
        description="AOIs with one of these ids; each must exist.",
        examples=[["89a291cd-7ad8-5f86-aeee-55e92b0a0f5d"]],
    )
    projects: list[ProjectIdText] | None = Field(
        default=None,
        min_length=1,
        title="Project ids",
        description="AOIs of one of these projects (read with the AOI listing's project filter).",
        examples=[["2b91399d-6edb-54ca-948b-8bddabd28ed4"]],
    )

    @field_validator("names", "ids", "projects", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        return _no_null(value)

    @model_validator(mode="after")
    def _something(self) -> SelectorMatchModel:
        if self.names is None and self.ids is None and self.projects is None:
            raise PydanticCustomError(
                "selector_match", "a selector needs at least one of: names, ids, projects"
            )
        return self


class SelectorEntry(BaseModel):
    """Visualizations that every AOI the selector matches must have."""

    model_config = ConfigDict(**_MODEL_CONFIG, title="Selector")

    match: SelectorMatchModel = Field(
        title="Match",
        description=(
            "Which AOIs: by names or glob patterns, ids, projects; AOIs matching every key given."
        ),
        examples=[{"names": ["Farm-*"]}, {"projects": ["2b91399d-6edb-54ca-948b-8bddabd28ed4"]}],
    )
    visualizations: list[VisualizationModel] = Field(
        title="Visualizations",
        description=(
            "Visualizations that every matched AOI must have. A per-AOI entry for the same "
            "visualization adds to it (a rollback of another mode, a resolution); the same "
            "mode rolled back differently in two places is an error."
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
            "anyOf": [
                {"required": ["aois"]},
                {"required": ["selectors"]},
                {"required": ["ignore"]},
            ],
        },
    )

    version: Literal[1] = Field(
        default=SPEC_VERSION,
        title="Spec format version",
        description="The spec format version; only 1 exists. Optional.",
        examples=[1],
    )
    aois: list[AoiEntry] = Field(
        default_factory=list,
        title="AOIs",
        description=(
            "The AOIs this file declares visualizations for, one by one. Needed unless the file "
            "has selectors."
        ),
    )
    selectors: list[SelectorEntry] = Field(
        default_factory=list,
        title="Selectors",
        description=(
            "Visualizations for many AOIs at once, chosen by name pattern, list or project."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _aois_or_selectors(cls, data: Any) -> Any:
        # A file of top-level ignore rules only is fine: they hold for every AOI.
        if isinstance(data, dict) and not {"aois", "selectors", "ignore"} & set(data):
            raise PydanticCustomError(
                "missing_aois", "missing required key 'aois' (or 'selectors')"
            )
        return data

    ignore: list[IgnoreRuleModel] = Field(
        default_factory=list,
        title="Ignore rules for every AOI",
        description=_IGNORE_FIELD_DESCRIPTION,
    )

    @field_validator("ignore", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        return _no_null(value)

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


@dataclass(frozen=True, slots=True)
class AssetSel:
    """One source asset selector; ``value`` is ISO for dates."""

    kind: Literal["id", "name", "date"]
    value: str
    where: Where


@dataclass(frozen=True, slots=True)
class RollbackDecl:
    """Legends of ``dates`` (ISO, sorted) in ``mode`` that must be auto-computed."""

    mode: Mode
    dates: tuple[str, ...]
    date_wheres: tuple[Where, ...]  # same order as dates
    revision: int
    where: Where  # the rollback list item


@dataclass(frozen=True, slots=True)
class VisualizationDecl:
    """One declared visualization.

    ``assets`` is None when the spec gives a policy instead of a list (or omits the key, which
    is ``asset_policy`` "all"): see ``AssetPolicy``.
    """

    index: str
    index_where: Where
    assets: tuple[AssetSel, ...] | None
    resolution: float | None
    rollbacks: tuple[RollbackDecl, ...]
    where: Where  # the visualizations list item
    asset_policy: AssetPolicy = "all"

    def describe(self) -> str:
        """'NDVI over [Bengaluru-A, 2024-05-06]', 'NDVI over all assets', for messages."""
        if self.assets is None:
            if self.asset_policy == "any":
                return f"{self.index} (any existing one)"
            return f"{self.index} over all assets"
        return f"{self.index} over [{', '.join(a.value for a in self.assets)}]"


@dataclass(frozen=True, slots=True)
class IgnoreDecl:
    """One ignore rule: an index (name or id) or one visualization id; exactly one is set."""

    index: str | None
    visualization: str | None
    reason: str | None
    where: Where  # the rule's list item

    def describe(self) -> str:
        """'index NDVI' or 'visualization f0e1…', for messages."""
        return (
            f"index {self.index}"
            if self.index is not None
            else f"visualization {self.visualization}"
        )


@dataclass(frozen=True, slots=True)
class SelectorDecl:
    """One ``selectors`` entry: which AOIs (every criterion given must hold) and what they need.

    ``names`` are names or glob patterns; ``ids`` AOI ids; ``projects`` project ids. Each
    empty tuple means "not a criterion". ``where`` is the position of the ``match`` value.
    """

    names: tuple[str, ...]
    name_wheres: tuple[Where, ...]
    ids: tuple[str, ...]
    id_wheres: tuple[Where, ...]
    projects: tuple[str, ...]
    where: Where
    visualizations: tuple[VisualizationDecl, ...]

    @property
    def key(self) -> str:
        """The criteria in one canonical line: what the state file remembers matches under."""
        parts = []
        for label, values in (
            ("names", self.names),
            ("ids", self.ids),
            ("projects", self.projects),
        ):
            if values:
                parts.append(f"{label}: {', '.join(sorted(set(values)))}")
        return "; ".join(parts)

    def describe(self) -> str:
        return f"selector ({self.key})"


@dataclass(frozen=True, slots=True)
class AoiDecl:
    """One ``aois`` entry: an AOI by id or by name (exactly one is set) and its visualizations.

    ``selector`` is set on the entries resolution derives from a selector, one per AOI it
    matches (by id); spec files never produce those directly.
    """

    id: str | None
    name: str | None
    where: Where  # the `aoi` value
    visualizations: tuple[VisualizationDecl, ...]
    selector: SelectorDecl | None = None
    ignore: tuple[IgnoreDecl, ...] = ()  # rules for this AOI only

    @property
    def label(self) -> str:
        """The name, or the id when the AOI is given by id."""
        return self.name if self.name is not None else str(self.id)

    def describe(self) -> str:
        return f"AOI {self.name!r}" if self.name is not None else f"AOI {self.id}"


@dataclass(frozen=True, slots=True)
class Specs:
    """Every declaration of every spec file, in load order.

    ``fingerprint`` is a sha256 over every (display path, file bytes): it changes with any byte
    of any spec file (a saved plan does not use it: comments must not stale a plan, see
    ``stale``). ``notes`` are remarks that do not
    make the specs invalid (see the module docstring). ``ignore`` holds the top-level ignore
    rules; each AOI entry carries its own.
    """

    files: tuple[str, ...]
    fingerprint: str
    aois: tuple[AoiDecl, ...]
    notes: tuple[Problem, ...] = ()
    selectors: tuple[SelectorDecl, ...] = ()
    ignore: tuple[IgnoreDecl, ...] = ()  # top-level rules: for every AOI

    @property
    def visualization_count(self) -> int:
        """Visualization entries written in the specs (a selector's count once)."""
        return sum(len(a.visualizations) for a in self.aois) + sum(
            len(s.visualizations) for s in self.selectors
        )

    @property
    def is_empty(self) -> bool:
        """Nothing declared: no AOI entries and no selectors."""
        return not self.aois and not self.selectors


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The outcome of validation: ``specs`` is None when the files themselves have problems
    (online validation may add problems found against the API to a report that has specs)."""

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
    ignores: list[IgnoreDecl] = []
    selectors: list[SelectorDecl] = []
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
        ignores.extend(_ignore_decls(doc, (), doc.data))
        selectors.extend(_selector_decls(doc, problems))
    cross_problems, notes = _cross_checks(aois)
    problems.extend(cross_problems)
    problems.extend(_duplicate_ignores(aois, ignores))
    shown = tuple(display for display, _ in files)
    ordered = tuple(SpecError(problems).problems)  # SpecError knows the display order
    if ordered:
        return ValidationReport(shown, ordered, tuple(notes), None)
    specs = Specs(
        shown,
        digest.hexdigest(),
        tuple(aois),
        tuple(notes),
        tuple(selectors),
        ignore=tuple(ignores),
    )
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
    return AoiDecl(
        aoi_id,
        name,
        doc.where((*loc, "aoi")),
        tuple(visualizations),
        ignore=tuple(_ignore_decls(doc, loc, entry)),
    )


def _visualization_decl(
    doc: Document, loc: Loc, model: VisualizationModel, problems: list[Problem]
) -> VisualizationDecl:
    assets: tuple[AssetSel, ...] | None = None
    policy: AssetPolicy = "all"
    if isinstance(model.assets, str):
        policy = model.assets
    elif model.assets is not None:
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
        asset_policy=policy,
    )


def _selector_decls(doc: Document, problems: list[Problem]) -> list[SelectorDecl]:
    """The file's selectors that are whole (the whole-file validation reported the rest)."""
    entries = doc.data.get("selectors") if isinstance(doc.data, dict) else None
    found: list[SelectorDecl] = []
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        loc: Loc = ("selectors", i)
        if not isinstance(entry, dict) or "match" not in entry:
            continue
        try:
            match = SelectorMatchModel.model_validate(entry["match"])
        except ValidationError:
            continue
        visualizations: list[VisualizationDecl] = []
        raw_list = entry.get("visualizations")
        for j, raw in enumerate(raw_list if isinstance(raw_list, list) else []):
            try:
                model = VisualizationModel.model_validate(raw)
            except ValidationError:
                continue
            vis_loc = (*loc, "visualizations", j)
            visualizations.append(_visualization_decl(doc, vis_loc, model, problems))
        m_loc = (*loc, "match")
        names = tuple(match.names or ())
        ids = tuple(match.ids or ())
        found.append(
            SelectorDecl(
                names=names,
                name_wheres=tuple(doc.where((*m_loc, "names", k)) for k in range(len(names))),
                ids=ids,
                id_wheres=tuple(doc.where((*m_loc, "ids", k)) for k in range(len(ids))),
                projects=tuple(match.projects or ()),
                where=doc.where(m_loc),
                visualizations=tuple(visualizations),
            )
        )
    return found


def _asset_kind(doc: Document, loc: Loc, value: str) -> Literal["id", "name", "date"]:
    raw = _at(doc.data, loc)
    if isinstance(raw, dt.date) or (isinstance(raw, str) and DATE_LIKE.fullmatch(raw)):
        return "date"
    return "id" if looks_like_uuid(value) else "name"


def _at(data: Any, loc: Loc) -> Any:
    for part in loc:
        data = data[part]
    return data


def _ignore_decls(doc: Document, loc: Loc, holder: Any) -> list[IgnoreDecl]:
    """The valid ignore rules under ``holder['ignore']`` (invalid ones are reported elsewhere)."""
    raw = holder.get("ignore") if isinstance(holder, dict) else None
    rules: list[IgnoreDecl] = []
    for k, item in enumerate(raw if isinstance(raw, list) else []):
        try:
            model = IgnoreRuleModel.model_validate(item)
        except ValidationError:
            continue
        where = doc.where((*loc, "ignore", k))
        rules.append(IgnoreDecl(model.index, model.visualization, model.reason, where))
    return rules


def _duplicate_ignores(aois: Sequence[AoiDecl], everywhere: Sequence[IgnoreDecl]) -> list[Problem]:
    """The same rule twice in one scope (an AOI, or every AOI) is a leftover: say so."""
    problems: list[Problem] = []
    scopes: list[tuple[str, Sequence[IgnoreDecl]]] = [("every AOI", everywhere)]
    scopes += [(aoi.describe(), aoi.ignore) for aoi in aois]
    first: dict[tuple[str, str | None, str | None], IgnoreDecl] = {}
    for scope, rules in scopes:
        for rule in rules:
            key = (scope, rule.index, rule.visualization)
            if key in first:
                problems.append(
                    Problem(
                        f"ignore rule for {rule.describe()} on {scope} is given twice: "
                        f"first at {first[key].where}",
                        rule.where,
                    )
                )
                continue
            first[key] = rule
    return problems


# --- checks across files -------------------------------------------------------------------------


def _identity(vis: VisualizationDecl) -> tuple[Any, ...]:
    """What makes two declarations the same visualization, as far as offline can tell."""
    if vis.assets is None:
        return vis.index, ("policy", vis.asset_policy)
    return vis.index, frozenset((a.kind, a.value) for a in vis.assets)


class RollbackLike(Protocol):
    """A declared rollback, before (``RollbackDecl``) or after (resolve) resolution."""

    @property
    def mode(self) -> str: ...
    @property
    def dates(self) -> tuple[str, ...]: ...
    @property
    def revision(self) -> int: ...
    @property
    def where(self) -> Where: ...


def disagreement(
    what: str,
    first: tuple[float | None, Sequence[RollbackLike], Where],
    second: tuple[float | None, Sequence[RollbackLike], Where],
) -> Problem | None:
    """Why two declarations of the same visualization cannot be one, or None if they agree.

    Each side is (resolution, rollbacks, position). A side may add what the other leaves out
    (a resolution, a rollback of another mode); the same mode with other dates or another
    revision, or two different resolutions, is a conflict reported at ``second``'s position,
    naming ``first``'s. ``what`` names the visualization ("NDVI over all assets on AOI 'X'").
    """
    res_a, rollbacks_a, where_a = first
    res_b, rollbacks_b, where_b = second
    if res_a is not None and res_b is not None and res_a != res_b:
        return Problem(
            f"{what} is declared twice with different resolutions: {res_b:g} here, {res_a:g} "
            f"at {where_a}",
            where_b,
        )
    by_mode = {r.mode: r for r in rollbacks_a}
    for rb in rollbacks_b:
        ra = by_mode.get(rb.mode)
        if ra is None or (ra.dates, ra.revision) == (rb.dates, rb.revision):
            continue
        return Problem(
            f"{what} is declared twice with conflicting {rb.mode} rollbacks: "
            f"{_rollback_text(rb)} here, {_rollback_text(ra)} at {ra.where}; roll a mode back "
            "in one place (or list the same dates and revision in both)",
            rb.where,
        )
    return None


def _rollback_text(rollback: RollbackLike) -> str:
    text = "dates " + ", ".join(rollback.dates)
    return text + (f" (revision {rollback.revision})" if rollback.revision else "")


def _cross_checks(aois: Sequence[AoiDecl]) -> tuple[list[Problem], list[Problem]]:
    """Declarations of one visualization that conflict (errors), and AOIs in mixed forms that
    would conflict if they are the same AOI (notes). Declarations that agree are one."""
    problems: list[Problem] = []
    notes: list[Problem] = []
    seen: dict[tuple[Any, ...], list[VisualizationDecl]] = {}
    # identity -> every (AOI, visualization) declaring it, per AOI form
    by_form: dict[str, dict[tuple[Any, ...], list[tuple[AoiDecl, VisualizationDecl]]]] = {
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
            what = f"visualization {vis.describe()} on {aoi.describe()}"
            conflict = next(
                (p for prev in seen.get(key, []) if (p := _disagree(what, prev, vis))), None
            )
            if conflict is not None:
                problems.append(conflict)
                continue
            seen.setdefault(key, []).append(vis)
            by_form[form].setdefault(ident, []).append((aoi, vis))
            for other_aoi, other_vis in by_form[other].get(ident, []):
                pair = (aoi.label, other_aoi.label)
                clash = _disagree(what, other_vis, vis)
                if pair in noted or clash is None:
                    continue
                noted.add(pair)
                notes.append(
                    Problem(
                        f"{aoi.describe()} is given by {form} here and {other_aoi.describe()} by "
                        f"{other} at {other_aoi.where}; if they are the same AOI, its "
                        f"{vis.describe()} is declared differently here and at "
                        f"{other_vis.where}, which is an error ('plan' and 'validate --online' "
                        "check this after resolving names)",
                        vis.where,
                    )
                )
    return problems, notes


def _disagree(what: str, first: VisualizationDecl, second: VisualizationDecl) -> Problem | None:
    return disagreement(
        what,
        (first.resolution, first.rollbacks, first.where),
        (second.resolution, second.rollbacks, second.where),
    )


# --- pydantic errors -> messages for spec authors -------------------------------------------------

#: The keys each mapping of the format allows, found by the key that holds the mapping.
_KEYS_UNDER: dict[str | None, tuple[str, ...]] = {
    None: tuple(SpecFile.model_fields),
    "aois": tuple(AoiEntry.model_fields),
    "aoi": tuple(AoiByRef.model_fields),
    "visualizations": tuple(VisualizationModel.model_fields),
    "rollback": tuple(RollbackModel.model_fields),
    "ignore": tuple(IgnoreRuleModel.model_fields),
    "selectors": tuple(SelectorEntry.model_fields),
    "match": tuple(SelectorMatchModel.model_fields),
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
    kept: list[Any] = []
    for part in loc:
        if isinstance(part, str) and kept and _LOC_TAGS.get(part) == kept[-1]:
            continue
        kept.append(part)
    return tuple(kept)


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
    if kind == "literal_error" and loc and loc[-1] == "assets":
        message = (
            f"'assets' must be a list of assets (like [Bengaluru-A]) or one of the policies "
            f"all or any, got {_describe(value)}"
        )
        if isinstance(value, str):
            close = difflib.get_close_matches(value.lower(), ASSET_POLICIES, n=1)
            if close:
                message += f" (did you mean '{close[0]}'?)"
        return Problem(message, where)
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
            message += "; write 'all' (or omit the key) to use all of the AOI's assets"
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
    if kind == "assets":
        return Problem(f"'assets': {message}, got {_describe(value)}", where)
    if kind in (
        "aoi_ref",
        "aoi_id",
        "iso_date",
        "asset_selector",
        "uuid",
        "missing_aois",
        "ignore_rule",
    ):
        return Problem(message, where)
    if kind == "selector_match":
        return Problem(message, where)
    return Problem(f"{subject}: {message[:1].lower()}{message[1:]}", where)
