"""The spec file format as pydantic models: what validates each file, and its JSON Schema
(``reconciler schema``, the editor completion)."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from reconciler.spec.decls import AssetPolicy, Mode
from reconciler.spec.fields import (
    MODEL_CONFIG,
    SPEC_VERSION,
    UUID_PATTERN,
    AoiIdText,
    AssetSelector,
    ColorText,
    IsoDate,
    SatelliteIdText,
    check_aoi_id,
    check_uuid_text,
    describe_value,
    no_null,
)

log = logging.getLogger(__name__)


# --- models --------------------------------------------------------------------------------------


class AoiByRef(BaseModel):
    """An AOI given by name, {name: ...}, or by id, {id: ...}: exactly one of the two."""

    model_config = ConfigDict(
        **MODEL_CONFIG,
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
        return no_null(value)

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
LOC_TAGS: dict[str, str] = {"aoi:id": "aoi", "aoi:mapping": "aoi"}


class RollbackModel(BaseModel):
    """Legends that must be auto-computed: one mode, some dates."""

    model_config = ConfigDict(**MODEL_CONFIG, title="Rollback")

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
        # Editors flag a repeated date as it is typed; validate says which one, and where.
        json_schema_extra={"uniqueItems": True},
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


class LegendItemModel(BaseModel):
    """One breakpoint of a custom legend: a range of values, its colour and its label."""

    model_config = ConfigDict(**MODEL_CONFIG, title="Legend item")

    min: float | None = Field(
        default=None,
        title="From",
        description=(
            "Where the range starts. Required in a theoretical legend; in a dynamic one, "
            "omit it to keep the auto-computed bound."
        ),
        examples=[-1],
    )
    max: float | None = Field(
        default=None,
        title="To",
        description=(
            "Where the range ends (above 'min'; the next item starts at or above it). "
            "Required in a theoretical legend; in a dynamic one, omit it to keep the "
            "auto-computed bound."
        ),
        examples=[0.2],
    )
    color: ColorText
    label: str | None = Field(
        default=None,
        title="Label",
        description="The label shown for this range; omit it to keep the API's.",
        examples=["Bare soil"],
    )

    @field_validator("min", "max", "label", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        return no_null(value)

    @field_validator("label")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        # The API hands a legend back as SLD (XML), which cannot carry control characters: a
        # label with one could never be read back as declared.
        if value is not None and not value.isprintable():
            raise PydanticCustomError(
                "label", "a label must be printable text, without control characters or tabs"
            )
        return value


#: A dynamic legend may have 1 to 15 bins (the API's ``dynamic_bins``).
MAX_BINS = 15


class LegendModel(BaseModel):
    """A custom legend the API must keep for some dates of one mode (PUT .../metadata)."""

    model_config = ConfigDict(
        **MODEL_CONFIG,
        title="Custom legend",
        json_schema_extra={
            # Editors flag the mode's own needs as they are typed; validate says it with
            # positions.
            "if": {"properties": {"mode": {"const": "theoretical"}}},
            "then": {"required": ["items"], "not": {"required": ["bins"]}},
            "else": {"required": ["bins"]},
        },
    )

    mode: Mode = Field(
        title="Legend mode",
        description=(
            "Which legend: theoretical (fixed breakpoints over the index's range: list the "
            "items) or dynamic (equal-interval bins over each date's data: give 'bins', and "
            "items to set their colours and labels). Preset indices have both; a custom "
            "index of expression type 'index' has only dynamic; composite and grayscale "
            "indices have none."
        ),
        examples=["theoretical"],
    )
    dates: list[IsoDate] = Field(
        min_length=1,
        json_schema_extra={"uniqueItems": True},
        title="Dates",
        description=(
            "Dates (ISO) whose legend in this mode is this one; each must be the date of one "
            "of the visualization's assets, and not also rolled back in this mode."
        ),
        examples=[["2024-05-06", "2024-11-20"]],
    )
    items: list[LegendItemModel] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_BINS,
        title="Items",
        description=(
            "The legend's ranges, ascending and not overlapping (gaps are allowed). Required "
            "in a theoretical legend; in a dynamic one optional, one per bin."
        ),
    )
    bins: int | None = Field(
        default=None,
        ge=1,
        le=MAX_BINS,
        title="Bins",
        description="Dynamic legends only: how many equal-interval bins (1 to 15).",
        examples=[5],
    )

    @field_validator("items", "bins", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        return no_null(value)


#: What ``assets: all`` and ``assets: any`` mean (see docs/spec-reference.md).


def _assets_form(value: Any) -> str | None:
    # As for AOIs: one precise error for a bad value instead of one per union member.
    if isinstance(value, list):
        return "assets:list"
    if isinstance(value, str):
        return "assets:policy"
    return None


AssetsValue = Annotated[
    Annotated[
        list[AssetSelector],
        Field(min_length=1, json_schema_extra={"uniqueItems": True}),
        Tag("assets:list"),
    ]
    | Annotated[AssetPolicy, Tag("assets:policy")],
    Discriminator(
        _assets_form,
        custom_error_type="assets",
        custom_error_message="expected a list of assets, or the policy all or any",
    ),
]
LOC_TAGS.update({"assets:list": "assets", "assets:policy": "assets"})


class VisualizationModel(BaseModel):
    """A visualization the AOI must have: an index over some (or all) of its assets."""

    model_config = ConfigDict(**MODEL_CONFIG, title="Visualization")

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
    legend: list[LegendModel] = Field(
        default_factory=list,
        title="Custom legends",
        description=(
            "Legends the API must keep as written, per mode and dates (a date of a mode is "
            "either rolled back or given a legend here, not both). A hand edit of them is "
            "reverted by the next apply."
        ),
    )

    @field_validator("assets", "resolution", "rollback", "legend", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        return no_null(value)


# --- ignore rules: undeclared visualizations a team chose to leave alone -----------------------
#
# Kept apart from the declarations above: a rule never declares or changes anything, it only
# moves matching undeclared visualizations from the plan's warnings to its "ignored" count.


class IgnoreRuleModel(BaseModel):
    """Undeclared visualizations the plan should count as ignored instead of warning about."""

    model_config = ConfigDict(
        **MODEL_CONFIG,
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
        return no_null(value)

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

    model_config = ConfigDict(**MODEL_CONFIG, title="AOI entry")

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
        return no_null(value)


SelectorAoiIdText = Annotated[
    str,
    BeforeValidator(
        lambda value: check_aoi_id(value, by_name="to select AOIs by name write names: [{}]")
    ),
    Field(
        title="AOI id",
        description="An AOI's id (a UUID). To select AOIs by name, use names: [...].",
        examples=["89a291cd-7ad8-5f86-aeee-55e92b0a0f5d"],
        json_schema_extra={"pattern": "^" + UUID_PATTERN.pattern + "$"},
    ),
]

ProjectIdText = Annotated[
    str,
    BeforeValidator(lambda value: check_uuid_text(value, "project id")),
    Field(
        title="Project id",
        description="A project's id (a UUID), as AOIs carry it in 'project_id'.",
        examples=["2b91399d-6edb-54ca-948b-8bddabd28ed4"],
        json_schema_extra={"pattern": "^" + UUID_PATTERN.pattern + "$"},
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
            f"{describe_value(value)}: the '[' at character {at + 1} is never closed; expected a "
            "set like [abc] (one of a, b, c), or [[] for a literal '['",
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
        **MODEL_CONFIG,
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
        return no_null(value)

    @model_validator(mode="after")
    def _something(self) -> SelectorMatchModel:
        if self.names is None and self.ids is None and self.projects is None:
            raise PydanticCustomError(
                "selector_match", "a selector needs at least one of: names, ids, projects"
            )
        return self


class SelectorEntry(BaseModel):
    """Visualizations that every AOI the selector matches must have."""

    model_config = ConfigDict(**MODEL_CONFIG, title="Selector")

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


IndexNameText = Annotated[str, AfterValidator(lambda v: _index_name(v))]


def _index_name(value: str) -> str:
    if value != value.strip():
        # The API compares names exactly: "NDRE " would be another index nobody can tell apart.
        raise PydanticCustomError(
            "index_name", f"{describe_value(value)} begins or ends with spaces; remove them"
        )
    return value


#: A band an index expression reads: B01 ... B99 (what the API computes indices from).
_BAND = re.compile(r"(?<![A-Za-z0-9_])B\d+(?![A-Za-z0-9_])")


def _expression(value: str) -> str:
    if not _BAND.search(value):
        raise PydanticCustomError(
            "expression",
            f"{describe_value(value)} names no band: an expression reads bands like B08, "
            "as in (B08-B04)/(B08+B04)",
        )
    return value


def _rescale(value: list[int]) -> list[int]:
    if value[0] >= value[1]:
        raise PydanticCustomError(
            "rescale",
            f"the range [{value[0]}, {value[1]}] is empty: write [low, high] with low below high",
        )
    return value


class IndexModel(BaseModel):
    """A custom index that must exist (POST /v0/indices); the API cannot change one later."""

    model_config = ConfigDict(**MODEL_CONFIG, title="Custom index")

    name: IndexNameText = Field(
        min_length=1,
        title="Name",
        description=(
            "The index's name, unique among every index (preset ones too); visualizations "
            "name it in 'index'."
        ),
        examples=["NDRE"],
    )
    description: str = Field(
        default="",
        title="Description",
        description="What the index shows.",
        examples=["red-edge NDVI for late-season crops"],
    )
    expression: Annotated[str, AfterValidator(_expression)] = Field(
        min_length=1,
        title="Expression",
        description="The formula over bands (B01 ... B99).",
        examples=["(B08-B05)/(B08+B05)"],
    )
    expression_type: Literal["composite", "index", "grayscale"] = Field(
        title="Expression type",
        description=(
            "index: one value per pixel, with a dynamic legend; composite or grayscale: no legend."
        ),
        examples=["index"],
    )
    rescale: Annotated[list[int], AfterValidator(_rescale)] = Field(
        min_length=2,
        max_length=2,
        title="Rescale",
        description="[low, high], whole numbers (the contract's type): the range of values.",
        examples=[[-1, 1]],
    )
    colormap: str = Field(
        min_length=1,
        title="Colour map",
        description="The colour map the API renders the index with.",
        examples=["rdylgn"],
    )
    satellite: SatelliteIdText

    @field_validator("description", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        return no_null(value)


class _SpecJsonSchema(GenerateJsonSchema):
    """JSON Schema for editors: optional keys may be omitted but are never null."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        # Optional fields are typed `X | None` only so an omitted key reads as None; writing
        # null is rejected (see no_null), so the schema must not offer it either.
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
        **MODEL_CONFIG,
        title="reconciler spec",
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            # Ignored keys for YAML anchors; see EXTENSION_PREFIX.
            "patternProperties": {"^x-": {}},
            "anyOf": [
                {"required": ["aois"]},
                {"required": ["selectors"]},
                {"required": ["ignore"]},
                {"required": ["indices"]},
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
        # A file of top-level ignore rules or of indices only is fine.
        if isinstance(data, dict) and not {"aois", "selectors", "ignore", "indices"} & set(data):
            raise PydanticCustomError(
                "missing_aois", "missing required key 'aois' (or 'selectors')"
            )
        return data

    ignore: list[IgnoreRuleModel] = Field(
        default_factory=list,
        title="Ignore rules for every AOI",
        description=_IGNORE_FIELD_DESCRIPTION,
    )
    indices: list[IndexModel] = Field(
        default_factory=list,
        title="Custom indices",
        description=(
            "Custom indices that must exist: created when missing (a 409 means one of that "
            "name exists). The API cannot change an index, so one that exists but differs "
            "from its declaration is reported, not changed."
        ),
    )

    @field_validator("ignore", "indices", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        return no_null(value)

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
