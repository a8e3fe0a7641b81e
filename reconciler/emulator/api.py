"""The API's behaviour: routes, request validation, and what each call does to the world.

Each route handler takes the already-authenticated request (path parameters, query, raw body) and
returns a ``Result`` or raises an ``ApiError`` subclass from ``reconciler.errors`` whose
``status``, ``code``, ``api_message`` and ``details`` become the contract's error body. Handlers
run under the emulator's lock; HTTP plumbing, auth and faults live in ``server``.

Custom indices (POST /v0/indices): every field of ``atlas.IndexCreateRequest`` is required.
``name`` is not blank and has no surrounding whitespace; names are unique among ALL indices,
preset ones included, and compared exactly (case and every character count), as a unique
column compares them: the listing spells names back exactly as given and has no name filter,
so a client can only find an index by its exact name, and a 409 must point at exactly one. The
409's ``details`` name that index (``{"index_id", "name", "type"}``). ``rescale`` is exactly two
integers ``[low, high]`` with ``low < high`` (what legends are computed over); ``expression``
must name at least one band (``B05``), and ``bands`` lists the bands it names;
``satellite_id`` is one of the satellites the contract lists; ``description`` and ``colormap``
may be empty. The new index is ``type: custom``, its id derived from its name.

Legends (PUT .../metadata) replace the legend of one mode for the dates given. In dynamic mode
``dynamic_bins`` (1-15) is required and honoured as the contract says: the date's legend
becomes that many equal-interval bins over the auto-computed dynamic legend's range (its
first min to its last max; five are the auto-computed legend itself), see
``legends.equal_bins``. A date given null gets those bins as they are; given items override
them bin by bin (colour, label, and min/max where not null), and their number must be
``dynamic_bins``, else 400. In theoretical mode (no null, ``dynamic_bins`` ignored) the items
are the legend, a field left out keeping the auto-computed bin's value.

SLD (POST .../sld): ``dates`` (``2024_05_06``, dates of the visualization's assets) and
``visualization_modes`` (modes its index has) must both be non-empty; duplicates count once.
The answer has every requested mode and date, each the SLD of the legend as it is now (see
``views.sld``). The visualization must be done (not ``creating`` nor ``failed``), as for PUT
and PATCH.

Pagination: ``offset`` (default 0) and ``limit`` (default 10) must be non-negative / positive
integers, else 400. The maximum page size is ``MAX_PAGE_SIZE`` (100): a larger ``limit`` is
clamped and the response's ``pagination.limit`` says 100. Items keep a stable order (creation
order), and ``total`` is exact.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from reconciler.emulator import views
from reconciler.emulator.legends import MODES, Mode, describe_modes, equal_bins
from reconciler.emulator.world import (
    SATELLITE_ID,
    Aoi,
    ExpressionType,
    FinalStatus,
    IndexType,
    Visualization,
    World,
    format_loc,
)
from reconciler.errors import ApiError, ApiValidationError, ConflictError, NotFoundError

#: Every satellite the contract's satellite_id description lists: the ids an index may name.
SATELLITES: dict[str, str] = {
    "Pixxel-TD1": "0004ab8d-0ad1-4d62-8a3f-fe18a7000e70",
    "Pixxel-TD2": SATELLITE_ID,
}
#: A band as an expression names it: B05, B8 or B108, as a whole word (not "AB05" or "B05x").
_BAND = re.compile(r"(?<![A-Za-z0-9_])B\d+(?![A-Za-z0-9_])")

#: The largest page any listing returns; larger ``limit`` values are clamped to it.
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 10


@dataclass
class Context:
    """What a handler may use besides the request itself."""

    world: World
    now: float  # seconds since the epoch
    user_id: str  # of the API key that made the request
    creation_delay: float
    outcomes: Mapping[str, FinalStatus]  # index id -> final status of new visualizations

    @property
    def now_micros(self) -> int:
        return int(self.now * 1_000_000)


@dataclass(frozen=True)
class Result:
    """A successful answer; ``mutated`` says whether the world changed (and must be saved)."""

    status: int
    body: Any
    mutated: bool = False


Handler = Callable[[Context, dict[str, str], dict[str, str], bytes], Result]


@dataclass(frozen=True)
class Route:
    """One API operation: method, contract path template, and its handler."""

    method: str
    template: str
    handler: Handler


def _template_pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "/?$")


# --- errors ------------------------------------------------------------------------------------


def bad_request(message: str, *, code: str = "bad_request", details: object = None) -> ApiError:
    """A 400 with the contract's error body."""
    return ApiValidationError(message, status=400, code=code, api_message=message, details=details)


def not_found(message: str, *, details: object = None) -> ApiError:
    """A 404 with the contract's error body."""
    return NotFoundError(
        message, status=404, code="not_found", api_message=message, details=details
    )


def _pydantic_problem(exc: ValidationError, what: str) -> ApiError:
    errors = [{"field": format_loc(e["loc"]), "message": e["msg"]} for e in exc.errors()]
    text = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return bad_request(f"invalid {what}: {text}", code="validation_error", details=errors)


# --- request models ----------------------------------------------------------------------------


class _Query(BaseModel):
    # Unknown query parameters are ignored, as HTTP APIs commonly do.
    model_config = ConfigDict(extra="ignore")

    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=DEFAULT_PAGE_SIZE, ge=1)


class AoiQuery(_Query):
    """Query of GET /v0/aois (``created_at``/``updated_at`` filters are not emulated).

    ``project_ids`` is comma separated: AOIs of any of those projects.
    """

    aoi_name: str | None = None
    aoi_id: str | None = None
    project_ids: str | None = None


class IndexQuery(_Query):
    """Query of GET /v0/indices."""

    type: IndexType | None = None
    expression_type: ExpressionType | None = None
    index_id: str | None = None
    satellite_id: str | None = None


class VisualizationQuery(_Query):
    """Query of GET /v0/aois/{aoi_id}/visualizations."""

    index_id: str | None = None
    visualization_id: str | None = None
    type: Literal["custom"] | None = None
    expression_type: ExpressionType | None = None
    user_id: str | None = None


def _check_date_key(value: str) -> str:
    # The metadata calls spell dates 2024_05_06; a real calendar date is required.
    try:
        dt.datetime.strptime(value, "%Y_%m_%d")
    except ValueError:
        raise ValueError(f"expected a date like 2024_05_06, got {value!r}") from None
    if not re.fullmatch(r"\d{4}_\d{2}_\d{2}", value):
        raise ValueError(f"expected a date like 2024_05_06, got {value!r}")
    return value


DateKey = Annotated[str, AfterValidator(_check_date_key)]


class _Body(BaseModel):
    # Strict: "10" is not a number and 1 is not a string, as a typed JSON API would say.
    # Unknown fields are ignored, as the API does.
    model_config = ConfigDict(extra="ignore", strict=True)


class CreateBody(_Body):
    """``atlas.VisualizationCreateRequest``."""

    index_id: str
    src_asset_ids: list[str] | None = None
    resolution: float | None = Field(default=None, gt=0)


class RollbackBody(_Body):
    """``atlas.VisualizationMetadataRollbackRequest`` (PATCH)."""

    index_id: str
    dates: list[DateKey] = Field(min_length=1)
    visualization_mode: Mode


class LegendItemIn(_Body):
    """``atlas.LegendItemUpdateRequest``."""

    color: str | None = None
    label: str | None = None
    max: float | None = None
    min: float | None = None


class UpdateBody(_Body):
    """``atlas.VisualizationMetadataUpdateRequest`` (PUT)."""

    visualization_mode: Mode
    legend: dict[DateKey, list[LegendItemIn] | None]
    dynamic_bins: int | None = Field(default=None, ge=1, le=15)


def expression_bands(expression: str) -> list[str]:
    """The bands an index expression reads, each once, in band order: ``[B04, B08]``."""
    return sorted(set(_BAND.findall(expression)), key=lambda band: (int(band[1:]), band))


def _check_index_name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if value != value.strip():
        # Names compare exactly: "NDVI " would be a second index nobody can tell from "NDVI".
        raise ValueError(f"must not start or end with whitespace, got {value!r}")
    return value


def _check_expression(value: str) -> str:
    if not expression_bands(value):
        raise ValueError(f"must name at least one band, like B04 or B08; got {value!r}")
    return value


def _check_rescale(value: list[int]) -> list[int]:
    if len(value) != 2 or value[0] >= value[1]:
        raise ValueError(f"expected two integers [low, high] with low < high, got {value}")
    return value


def _check_satellite(value: str) -> str:
    if value not in SATELLITES.values():
        known = ", ".join(f"{sat_id} ({name})" for name, sat_id in SATELLITES.items())
        raise ValueError(f"unknown satellite {value!r}; known: {known}")
    return value


class IndexCreateBody(_Body):
    """``atlas.IndexCreateRequest`` (POST /v0/indices): every field is required."""

    name: Annotated[str, AfterValidator(_check_index_name)]
    description: str
    rescale: Annotated[list[int], AfterValidator(_check_rescale)]
    expression: Annotated[str, AfterValidator(_check_expression)]
    colormap: str
    satellite_id: Annotated[str, AfterValidator(_check_satellite)]
    expression_type: ExpressionType


class SldBody(_Body):
    """``atlas.SLDRequest``."""

    dates: list[DateKey] = Field(min_length=1)
    visualization_modes: list[Mode] = Field(min_length=1)


B = TypeVar("B", bound=BaseModel)


def parse_body(model: type[B], raw: bytes) -> B:
    """Decode a JSON object body into ``model``; any problem is a precise 400."""
    if not raw.strip():
        raise bad_request("request body is required: a JSON object", code="invalid_json")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request(f"malformed JSON body: {exc}", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise bad_request(
            f"request body must be a JSON object, got {type(data).__name__}", code="invalid_json"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _pydantic_problem(exc, "request body") from exc


def parse_query(model: type[B], query: dict[str, str]) -> B:
    """Validate query parameters into ``model``; any problem is a precise 400."""
    try:
        return model.model_validate(query)
    except ValidationError as exc:
        raise _pydantic_problem(exc, "query parameter") from exc


def _page(items: list[Any], query: _Query) -> tuple[list[Any], dict[str, int]]:
    limit = min(query.limit, MAX_PAGE_SIZE)
    return items[query.offset : query.offset + limit], views.pagination(
        len(items), query.offset, limit
    )


# --- lookups that answer 404 / 400 -------------------------------------------------------------


def _aoi(ctx: Context, aoi_id: str) -> Aoi:
    aoi = ctx.world.aoi(aoi_id)
    if aoi is None:
        raise not_found(f"AOI {aoi_id!r} not found", details={"aoi_id": aoi_id})
    return aoi


def _visualization(ctx: Context, aoi: Aoi, visualization_id: str) -> Visualization:
    viz = ctx.world.visualization(aoi.id, visualization_id)
    if viz is None:
        raise not_found(
            f"visualization {visualization_id!r} not found on AOI {aoi.name!r}",
            details={"aoi_id": aoi.id, "visualization_id": visualization_id},
        )
    return viz


def _ready(ctx: Context, viz: Visualization, use: Literal["change", "read"] = "change") -> None:
    """Legends exist only once a visualization is done; refuse to ``use`` them before."""
    used = {"change": "changed", "read": "read"}[use]
    if viz.status == "creating":
        raise bad_request(
            f"visualization {viz.id} is still creating ({viz.progress(ctx.now_micros)}%); "
            f"its legends can be {used} once its status is success",
            code="visualization_not_ready",
        )
    if viz.status == "failed":
        raise bad_request(
            f"visualization {viz.id} failed; it has no legends to {use}",
            code="visualization_failed",
        )


def _mode_allowed(ctx: Context, viz: Visualization, mode: Mode) -> None:
    index = ctx.world.index(viz.index_id)
    assert index is not None
    if mode not in index.modes:
        raise bad_request(
            f"index {index.name} ({index.type}, expression_type {index.expression_type}) has no "
            f"{mode} legend; its legend modes: {describe_modes(index.modes)}",
            code="mode_not_available",
            details={"index_id": index.id, "allowed_modes": list(index.modes)},
        )


def _dates_known(ctx: Context, viz: Visualization, keys: list[str]) -> None:
    known = ctx.world.dates_of(viz)
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise bad_request(
            f"no asset of visualization {viz.id} has the date(s) {', '.join(unknown)}; "
            f"its dates: {', '.join(known) or 'none'}",
            code="unknown_date",
            details={"unknown_dates": unknown, "dates": list(known)},
        )


# --- handlers ----------------------------------------------------------------------------------


def list_aois(ctx: Context, params: dict[str, str], query: dict[str, str], body: bytes) -> Result:
    """GET /v0/aois"""
    q = parse_query(AoiQuery, query)
    items = ctx.world.aois
    if q.aoi_name is not None:
        items = [a for a in items if a.name == q.aoi_name]
    if q.aoi_id is not None:
        items = [a for a in items if a.id == q.aoi_id]
    if q.project_ids is not None and q.project_ids.strip():
        wanted = {p.strip() for p in q.project_ids.split(",")}
        items = [a for a in items if a.project_id in wanted]
    page, pagination = _page(items, q)
    return Result(200, {"aois": [views.aoi(a) for a in page], "pagination": pagination})


def get_aoi(ctx: Context, params: dict[str, str], query: dict[str, str], body: bytes) -> Result:
    """GET /v0/aoi/{aoi_id}"""
    return Result(200, views.aoi(_aoi(ctx, params["aoi_id"])))


def list_indices(
    ctx: Context, params: dict[str, str], query: dict[str, str], body: bytes
) -> Result:
    """GET /v0/indices"""
    q = parse_query(IndexQuery, query)
    items = [
        i
        for i in ctx.world.indices
        if (q.type is None or i.type == q.type)
        and (q.expression_type is None or i.expression_type == q.expression_type)
        and (q.index_id is None or i.id == q.index_id)
        and (q.satellite_id is None or i.satellite_id == q.satellite_id)
    ]
    page, pagination = _page(items, q)
    return Result(200, {"indices": [views.index(i) for i in page], "pagination": pagination})


def create_index(
    ctx: Context, params: dict[str, str], query: dict[str, str], body: bytes
) -> Result:
    """POST /v0/indices: 201 with the new custom index, or 409 if an index has that name."""
    world = ctx.world
    req = parse_body(IndexCreateBody, body)
    same = world.index_named(req.name)
    if same is not None:
        message = f"an index named {req.name!r} already exists: {same.id} ({same.type})"
        raise ConflictError(
            message,
            status=409,
            code="conflict",
            api_message=message,
            details={"index_id": same.id, "name": same.name, "type": same.type},
        )
    index = world.create_index(
        name=req.name,
        description=req.description,
        expression=req.expression,
        expression_type=req.expression_type,
        bands=expression_bands(req.expression),
        rescale=(req.rescale[0], req.rescale[1]),
        colormap=req.colormap,
        satellite_id=req.satellite_id,
        now=ctx.now,
    )
    return Result(201, views.index(index), mutated=True)


def list_assets(ctx: Context, params: dict[str, str], query: dict[str, str], body: bytes) -> Result:
    """GET /v0/aois/{aoi_id}/assets"""
    aoi = _aoi(ctx, params["aoi_id"])
    q = parse_query(_Query, query)
    page, pagination = _page(aoi.assets, q)
    return Result(200, {"assets": [views.asset(aoi, a) for a in page], "pagination": pagination})


def list_visualizations(
    ctx: Context, params: dict[str, str], query: dict[str, str], body: bytes
) -> Result:
    """GET /v0/aois/{aoi_id}/visualizations (never includes metadata, like the API)."""
    aoi = _aoi(ctx, params["aoi_id"])
    q = parse_query(VisualizationQuery, query)
    world = ctx.world
    items = []
    for viz in world.visualizations_of(aoi.id):
        index = world.index(viz.index_id)
        assert index is not None
        if (
            (q.index_id is None or viz.index_id == q.index_id)
            and (q.visualization_id is None or viz.id == q.visualization_id)
            and (q.expression_type is None or index.expression_type == q.expression_type)
            and (q.user_id is None or viz.user_id == q.user_id)
        ):
            items.append(viz)
    page, pagination = _page(items, q)
    body_out = [
        views.visualization(world, v, now_micros=ctx.now_micros, with_metadata=False) for v in page
    ]
    return Result(200, {"pagination": pagination, "visualization": body_out})


def create_visualization(
    ctx: Context, params: dict[str, str], query: dict[str, str], body: bytes
) -> Result:
    """POST /v0/aois/{aoi_id}/visualizations: 201 detail, or 409 if the same one exists."""
    world = ctx.world
    aoi = _aoi(ctx, params["aoi_id"])
    req = parse_body(CreateBody, body)
    index = world.index(req.index_id)
    if index is None:
        raise bad_request(
            f"unknown index_id {req.index_id!r}: GET /v0/indices lists the available indices",
            code="unknown_index",
            details={"index_id": req.index_id},
        )
    if req.src_asset_ids is None:
        asset_ids = [a.id for a in aoi.assets]  # the API's default: every asset of the AOI
        if not asset_ids:
            raise bad_request(f"AOI {aoi.name!r} has no assets to visualize", code="no_assets")
    else:
        if not req.src_asset_ids:
            raise bad_request(
                "src_asset_ids must not be empty (omit it to use all of the AOI's assets)",
                code="validation_error",
            )
        asset_ids = list(dict.fromkeys(req.src_asset_ids))  # a set, in the order given
        unknown = [a for a in asset_ids if aoi.asset(a) is None]
        if unknown:
            raise bad_request(
                f"asset(s) not in AOI {aoi.name!r} ({aoi.id}): {', '.join(unknown)}",
                code="unknown_asset",
                details={"asset_ids": unknown},
            )
    same = world.find_same(aoi.id, index.id, asset_ids)
    if same is not None:
        message = (
            f"a visualization of index {index.name} over the same assets already exists on "
            f"AOI {aoi.name!r}: {same.id}"
        )
        raise ConflictError(
            message,
            status=409,
            code="conflict",
            api_message=message,
            details={"visualization_id": same.id},
        )
    viz = world.create_visualization(
        aoi=aoi,
        index=index,
        asset_ids=asset_ids,
        resolution=req.resolution,
        user_id=ctx.user_id,
        final_status=ctx.outcomes.get(index.id, "success"),
        now=ctx.now,
        creation_delay=ctx.creation_delay,
    )
    detail = views.visualization(world, viz, now_micros=ctx.now_micros, with_metadata=True)
    return Result(201, detail, mutated=True)


def update_metadata(
    ctx: Context, params: dict[str, str], query: dict[str, str], body: bytes
) -> Result:
    """PUT .../metadata: replace the legend of one mode for the dates given (a manual edit)."""
    world = ctx.world
    aoi = _aoi(ctx, params["aoi_id"])
    viz = _visualization(ctx, aoi, params["visualization_id"])
    req = parse_body(UpdateBody, body)
    _ready(ctx, viz)
    mode = req.visualization_mode
    _mode_allowed(ctx, viz, mode)
    if not req.legend:
        raise bad_request("legend must name at least one date", code="validation_error")
    _dates_known(ctx, viz, list(req.legend))
    if mode == "dynamic" and req.dynamic_bins is None:
        raise bad_request(
            "dynamic_bins (1-15) is required when visualization_mode is dynamic",
            code="validation_error",
        )
    new: dict[str, list[dict[str, Any]]] = {}
    for key, items in req.legend.items():
        auto = world.auto_legend(viz, mode, key)
        if req.dynamic_bins is not None and mode == "dynamic":
            auto = equal_bins(auto, req.dynamic_bins)
            if items is not None and len(items) != req.dynamic_bins:
                raise bad_request(
                    f"legend.{key}: {len(items)} legend item(s) but dynamic_bins is "
                    f"{req.dynamic_bins}; give one item per bin, or null for the "
                    f"{req.dynamic_bins} auto-computed bins",
                    code="validation_error",
                    details={"date": key, "items": len(items), "dynamic_bins": req.dynamic_bins},
                )
        if items is None:
            if mode != "dynamic":
                raise bad_request(
                    f"legend.{key}: null (auto-computed) is only allowed in dynamic mode",
                    code="validation_error",
                )
            new[key] = auto
            continue
        if not items:
            raise bad_request(
                f"legend.{key}: give at least one legend item", code="validation_error"
            )
        new[key] = [_legend_item(item, auto[min(i, len(auto) - 1)]) for i, item in enumerate(items)]
    world.set_legend(viz, mode, new, ctx.now)
    return Result(200, views.metadata(viz), mutated=True)


def _legend_item(item: LegendItemIn, auto: dict[str, Any]) -> dict[str, Any]:
    # Fields left out (or null) keep the auto-computed bin's value; area is the API's to compute.
    given = item.model_dump(exclude_none=True)
    return {**auto, **given}


def rollback_metadata(
    ctx: Context, params: dict[str, str], query: dict[str, str], body: bytes
) -> Result:
    """PATCH .../metadata: recompute the listed dates of one mode; 200 detail with metadata."""
    world = ctx.world
    aoi = _aoi(ctx, params["aoi_id"])
    viz = _visualization(ctx, aoi, params["visualization_id"])
    req = parse_body(RollbackBody, body)
    if req.index_id != viz.index_id:
        raise bad_request(
            f"index_id {req.index_id!r} is not the index of visualization {viz.id} "
            f"({viz.index_id})",
            code="index_mismatch",
            details={"index_id": viz.index_id},
        )
    _ready(ctx, viz)
    _mode_allowed(ctx, viz, req.visualization_mode)
    keys = list(dict.fromkeys(req.dates))
    _dates_known(ctx, viz, keys)
    world.rollback(viz, req.visualization_mode, keys, ctx.now)
    detail = views.visualization(world, viz, now_micros=ctx.now_micros, with_metadata=True)
    return Result(200, detail, mutated=True)


def generate_sld(
    ctx: Context, params: dict[str, str], query: dict[str, str], body: bytes
) -> Result:
    """POST .../sld: the SLD of each requested (mode, date) legend as it is now."""
    world = ctx.world
    aoi = _aoi(ctx, params["aoi_id"])
    viz = _visualization(ctx, aoi, params["visualization_id"])
    req = parse_body(SldBody, body)
    _ready(ctx, viz, "read")
    wanted = set(req.visualization_modes)
    for mode in MODES:
        if mode in wanted:
            _mode_allowed(ctx, viz, mode)
    keys = sorted(set(req.dates))
    _dates_known(ctx, viz, keys)
    index = world.index(viz.index_id)
    assert index is not None
    documents = {
        mode: {key: views.sld(index, mode, key, world.legend_of(viz, mode, key)) for key in keys}
        for mode in MODES
        if mode in wanted
    }
    return Result(200, {"sld": documents})


VISUALIZATIONS = "/v0/aois/{aoi_id}/visualizations"
METADATA = "/v0/aois/{aoi_id}/visualizations/{visualization_id}/metadata"
SLD = "/v0/aois/{aoi_id}/visualizations/{visualization_id}/sld"

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v0/aois", list_aois),
    Route("GET", "/v0/aoi/{aoi_id}", get_aoi),
    Route("GET", "/v0/indices", list_indices),
    Route("POST", "/v0/indices", create_index),
    Route("GET", "/v0/aois/{aoi_id}/assets", list_assets),
    Route("GET", VISUALIZATIONS, list_visualizations),
    Route("POST", VISUALIZATIONS, create_visualization),
    Route("PUT", METADATA, update_metadata),
    Route("PATCH", METADATA, rollback_metadata),
    Route("POST", SLD, generate_sld),
)
_PATTERNS = [(route, _template_pattern(route.template)) for route in ROUTES]


@dataclass(frozen=True)
class Match:
    """Where a request path led: the route (None: unknown path or method) and what to count."""

    route: Route | None
    template: str | None  # the path template, also when only the method is wrong
    params: dict[str, str]
    allowed: tuple[str, ...]  # methods the path takes (for 405's Allow header)


def match(method: str, path: str) -> Match:
    """Find the route for ``method`` and ``path``."""
    template = None
    allowed: list[str] = []
    for route, pattern in _PATTERNS:
        found = pattern.match(path)
        if found is None:
            continue
        template = route.template
        allowed.append(route.method)
        if route.method == method:
            return Match(route, template, found.groupdict(), (route.method,))
    return Match(None, template, {}, tuple(allowed))


def unmatched_error(method: str, path: str, found: Match) -> ApiError:
    """404 for an unknown path, 405 for a known path with the wrong method."""
    if found.template is None:
        return not_found(f"no such endpoint: {method} {path}")
    message = (
        f"method {method} not allowed on {found.template}; allowed: {', '.join(found.allowed)}"
    )
    return ApiValidationError(
        message,
        status=405,
        code="method_not_allowed",
        api_message=message,
        details={"allowed": list(found.allowed)},
    )
