"""Typed views of the Pixxel API responses that reconciler uses.

Field names follow ``../shared/pixxel-api/openapi.json``. The models are deliberately lenient in
one direction and strict in the other: unknown fields are ignored (the API may grow), but the
fields we rely on for identity (ids, names, dates) are required, so a response we cannot
understand fails loudly in the client (as ``ApiError``) instead of deep inside planning.
All models are frozen: they describe what the API said at one moment.

They are slotted pydantic dataclasses rather than ``BaseModel``s: a plan of thousands of AOIs
holds hundreds of thousands of them, and a ``BaseModel`` instance carries a ``__dict__`` and a
set of the fields it was given, which made each listed visualization several times larger (and
slower to validate) than the data it holds. ``parse`` validates one from what the API sent.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import (
    AliasChoices,
    ConfigDict,
    FailFast,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from reconciler.dates import iso_date
from reconciler.text import shorten

__all__ = [
    "CONTRACT_STATUSES",
    "FINAL_STATUSES",
    "Aoi",
    "Asset",
    "Index",
    "Pagination",
    "Visualization",
    "VisualizationDetail",
    "adapter",
    "outside_contract",
    "parse",
    "parse_listing",
]

# Ignore fields we do not use (the API may grow). Each model is also frozen (never mutate what
# the API said) and keyword-only (as a BaseModel was: a positional call would depend on field
# order), in its decorator, where mypy sees it.
_CONFIG = ConfigDict(extra="ignore")

T = TypeVar("T")


_adapters: dict[type[Any], TypeAdapter[Any]] = {}


def adapter(model: type[T]) -> TypeAdapter[T]:
    """The validator of ``model``, built once: building one costs more than using it."""
    found = _adapters.get(model)
    if found is None:  # two threads may both build it; the last one kept is as good
        found = _adapters[model] = TypeAdapter(model)
    return found


def parse(model: type[T], data: Any) -> T:
    """``model`` validated from ``data`` (a ``pydantic.ValidationError`` when it does not fit)."""
    return adapter(model).validate_python(data)


_listing_adapters: dict[type[Any], TypeAdapter[Any]] = {}


def parse_listing(model: type[T], items: Any, shared: dict[Any, Any] | None = None) -> list[T]:
    """The items of a listing page, validated.

    ``shared`` keeps equal parts of the items once, across the pages of one listing: every
    visualization of an AOI lists the same few assets and repeats its AOI, index and status,
    and thousands of AOIs' worth of copies were the larger part of a big plan's memory.
    """
    found = _listing_adapters.get(model)
    if found is None:
        # FailFast: the first bad item is reason enough, and stops a hostile page early.
        item_list: Any = Annotated[list[model], FailFast()]  # type: ignore[valid-type]
        found = _listing_adapters[model] = TypeAdapter(item_list)
    items_of_model: list[T] = found.validate_python(items, context=shared)
    return items_of_model


@dataclass(frozen=True, slots=True, kw_only=True, config=_CONFIG)
class Pagination:
    """The ``pagination`` object of every listing; any part may be missing."""

    limit: int | None = None
    offset: int | None = None
    total: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True, config=_CONFIG)
class Aoi:
    """An area of interest. The API names its id ``aoi_id``; we call it ``id`` like the others."""

    # The API sends ``aoi_id``; accepting ``id`` too lets callers and tests build an Aoi by hand.
    id: str = Field(validation_alias=AliasChoices("aoi_id", "id"))
    name: str
    description: str | None = None
    project_id: str | None = None
    status: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True, config=_CONFIG)
class Index:
    """An index (formula) visualizations are computed from: preset or custom."""

    id: str
    name: str
    type: str  # "preset" or "custom"
    expression_type: str | None = None  # "index", "composite" or "grayscale"
    expression: str | None = None
    # What a declared custom index is compared with; listings may leave any of them out.
    description: str | None = None
    rescale: tuple[int, ...] | None = None  # [low, high], what legends are computed over
    colormap: str | None = None
    satellite_id: str | None = None
    bands: tuple[str, ...] = ()

    @field_validator("bands", mode="before")
    @classmethod
    def _null_bands(cls, value: Any) -> Any:
        # Go services serialise an empty slice as null.
        return () if value is None else value

    @property
    def legend_modes(self) -> tuple[str, ...]:
        """The legend modes a visualization of this index has (the contract's rule).

        Preset indices get dynamic and theoretical legends; a custom index whose
        ``expression_type`` is ``index`` gets only a dynamic one; composite and grayscale
        custom indices get none. A rollback in any other mode is a spec error.
        """
        if self.type == "preset":
            return ("dynamic", "theoretical")
        if self.type == "custom" and self.expression_type == "index":
            return ("dynamic",)
        return ()


def _asset_date(value: Any) -> Any:
    """Normalise an asset date to ``YYYY-MM-DD``: the API may add a time part, which the
    identity of a date (compared as a string everywhere) must not carry."""
    if not isinstance(value, str):
        return value  # let pydantic report the wrong type
    try:
        return iso_date(value.strip()[:10])
    except ValueError:
        # Quoted short: the value comes from the API, and may be anything up to megabytes.
        shown = shorten(repr(value), 40)
        raise ValueError(f"expected an ISO date like 2024-05-06, got {shown}") from None


@dataclass(frozen=True, slots=True, kw_only=True, config=_CONFIG)
class Asset:
    """A dated image of an AOI; ``date`` is always ISO (``"2024-05-06"``)."""

    id: str
    name: str
    date: str
    resolution: float | None = None
    status: str | None = None
    created_at: str | None = None

    @field_validator("date", mode="before")
    @classmethod
    def _normalise_date(cls, value: Any) -> Any:
        return _asset_date(value)


@dataclass(frozen=True, slots=True, kw_only=True, config=_CONFIG)
class Visualization:
    """A visualization as listed.

    The contract's listing item lacks ``assets``, ``index_name`` and ``expression_type``; when
    the API leaves them out they are empty/None rather than an error.
    """

    id: str
    aoi_id: str
    index_id: str
    index_name: str | None = None
    status: str | None = None  # CONTRACT_STATUSES, unless the API strays from its contract
    progress: int | None = None
    updated_at: str | None = None
    created_at: str | None = None
    # FailFast: a hostile list of a million bad assets is one error, not a million of them.
    assets: Annotated[list[Asset], FailFast()] = Field(default_factory=list)
    expression_type: str | None = None
    user_id: str | None = None

    @field_validator("assets", mode="before")
    @classmethod
    def _null_assets(cls, value: Any) -> Any:
        # Go services serialise an empty slice as null.
        return [] if value is None else value

    @model_validator(mode="before")
    @classmethod
    def _share_values(cls, data: Any, info: ValidationInfo) -> Any:
        # The values every visualization of an AOI repeats, kept once (see parse_listing).
        shared = info.context
        if not isinstance(shared, dict) or not isinstance(data, dict):
            return data
        data = dict(data)
        for key in _REPEATED:
            value = data.get(key)
            if isinstance(value, str):
                data[key] = shared.setdefault(value, value)
        return data

    @field_validator("assets", mode="after")
    @classmethod
    def _share_assets(cls, value: list[Asset], info: ValidationInfo) -> list[Asset]:
        shared = info.context  # see parse_listing
        if not isinstance(shared, dict):
            return value
        return [shared.setdefault(asset, asset) for asset in value]


#: The statuses of a visualization that the API contract lists: ``creating`` until it is
#: computed, then one of ``FINAL_STATUSES``. Only ``success`` is usable; any other value (or
#: none) is outside the contract: neither usable nor failed.
FINAL_STATUSES: frozenset[str] = frozenset({"success", "failed", "partial_success"})
CONTRACT_STATUSES: tuple[str, ...] = ("creating", "success", "failed", "partial_success")


def outside_contract(status: str | None) -> bool:
    """Whether a visualization's ``status`` is one the API contract does not list."""
    return status not in CONTRACT_STATUSES


#: Fields of a listed visualization that few values fill, whatever the number of them.
_REPEATED = ("aoi_id", "index_id", "index_name", "status", "expression_type", "user_id")


@dataclass(frozen=True, slots=True, kw_only=True, config=_CONFIG)
class VisualizationDetail(Visualization):
    """A visualization as returned by create and rollback: the listing fields plus metadata."""

    metadata: dict[str, Any] | None = None
