"""How the emulator's world looks on the wire: contract-shaped JSON objects.

Field names and shapes follow ../shared/pixxel-api/openapi.json. Timestamps follow the contract's
examples: AOIs use ``2022-11-14T12:55:49.125928+00:00``, everything else
``2022-11-14 12:55:49.125928+00:00``. A visualization's ``type`` is always ``custom``: that is the
contract's only ``VisualizationType`` (the index's own preset/custom type is on /v0/indices).

SLD (``sld``): the contract says only "SLD XML string", so the emulator writes a small SLD 1.0.0
document for a raster: one ``ColorMap type="intervals"`` whose entries come from the legend's
items in their order. In an intervals map an entry colours the values from the previous entry's
``quantity`` up to its own, so each item is an entry at its ``max`` with its ``color`` and
``label``; where an item does not start where the previous one ended (always for the first), a
transparent entry (``opacity="0"``, no label) at the item's ``min`` comes first. Numbers are
written the same way however they were sent (``1``, ``1.0`` -> ``1``), and nothing in the
document depends on time, so the same legend always gives the same text: a fingerprint of it
changes exactly when a colour, label or bound does (areas are not style and do not count).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.emulator.world import (
    BAND_LIST,
    SATELLITE_ID,
    TENANT_ID,
    Aoi,
    Asset,
    Index,
    Visualization,
    World,
    from_micros,
    user_id_for,
)

#: Half the side of the square each AOI's geometry is, in degrees (about 2 km).
_HALF_SIDE = 0.01


def timestamp(micros: int, *, sep: str = " ") -> str:
    """A contract timestamp, always with microseconds: ``2022-11-14 12:55:49.125928+00:00``."""
    return from_micros(micros).isoformat(sep=sep, timespec="microseconds")


def polygon(centroid: tuple[float, float]) -> dict[str, Any]:
    """A closed GeoJSON square around ``centroid`` ([lon, lat])."""
    lon, lat = centroid
    west, east = round(lon - _HALF_SIDE, 6), round(lon + _HALF_SIDE, 6)
    south, north = round(lat - _HALF_SIDE, 6), round(lat + _HALF_SIDE, 6)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def pagination(total: int, offset: int, limit: int) -> dict[str, int]:
    """The contract's ``common.Pagination``."""
    return {"limit": limit, "offset": offset, "total": total}


def error(code: str, message: str, details: object = None) -> dict[str, Any]:
    """The contract's ``common.ErrorResponse``."""
    return {"error": {"code": code, "details": details, "message": message}}


def aoi(item: Aoi) -> dict[str, Any]:
    """``atlas.AOI``."""
    return {
        "aoi_id": item.id,
        "area_in_sq_m": item.area_in_sq_m,
        "centroid": list(item.centroid),
        "created_at": timestamp(item.created_at, sep="T"),
        "description": item.description,
        "eo_bands": list(BAND_LIST),
        "geometry": polygon(item.centroid),
        "images": {a.id: {"name": a.name, "date": a.date} for a in item.assets},
        "is_favourite": False,
        "name": item.name,
        "progress": 100,
        "project_id": item.project_id,
        "satellite_id": SATELLITE_ID,
        "status": "success",
        "updated_at": timestamp(item.updated_at, sep="T"),
        "user_id": user_id_for(0),
    }


def asset(
    owner: Aoi,
    item: Asset,
    *,
    visualization_id: str | None = None,
    resolution: float | None = None,
) -> dict[str, Any]:
    """``atlas.AssetReadModel`` (AOI listing) or, with a visualization id, ``atlas.Asset``."""
    body: dict[str, Any] = {
        "aoi_id": owner.id,
        "area_in_sq_m": owner.area_in_sq_m,
        "asset_type": "mosaic",
        "band_list": list(BAND_LIST),
        "centroid": list(owner.centroid),
        "created_at": timestamp(item.created_at),
        "date": item.date,
        "description": f"Mosaic of {owner.name} on {item.date}",
        "geometry": polygon(owner.centroid),
        "id": item.id,
        "name": item.name,
        "path": f"https://storage.emulator.invalid/aois/{owner.id}/assets/{item.id}.tif",
        "progress": 100,
        "resolution": resolution if resolution is not None else item.resolution,
        "status": "success",
        "updated_at": timestamp(item.updated_at),
    }
    if visualization_id is not None:
        body["visualization_id"] = visualization_id
    return body


def index(item: Index) -> dict[str, Any]:
    """``atlas.IndexEntity``."""
    return {
        "bands": list(item.bands),
        "colormap": item.colormap,
        "created_at": timestamp(item.created_at),
        "description": item.description,
        "expression": item.expression,
        "expression_type": item.expression_type,
        "id": item.id,
        "name": item.name,
        "rescale": list(item.rescale),
        "satellite_id": item.satellite_id,
        "type": item.type,
        "updated_at": timestamp(item.updated_at),
    }


def visualization(
    world: World, item: Visualization, *, now_micros: int, with_metadata: bool
) -> dict[str, Any]:
    """A listing item (``atlas.VisualizationListItem`` plus the fields the docs show: assets,
    index_name, expression, expression_type, type, rescale) or, ``with_metadata``, an
    ``atlas.VisualizationDetailResponse``.

    The listing item is shared between answers: do not change it.
    """
    if item.status == "creating":  # its progress moves with the clock
        body = _listing_item(world, item, now_micros)
    else:
        # Every listing renders every visualization of the AOI again; a finished one changes
        # only with its updated_at, so it is rendered once per change.
        version = (item.updated_at, item.status)
        body = world.rendered(item.id, version, lambda: _listing_item(world, item, now_micros))
    if with_metadata:
        return {**body, "metadata": metadata(item)}
    return body


def _listing_item(world: World, item: Visualization, now_micros: int) -> dict[str, Any]:
    owner = world.aoi(item.aoi_id)
    idx = world.index(item.index_id)
    assert owner is not None and idx is not None  # visualizations only reference what exists
    assets = []
    for asset_id in item.asset_ids:
        found = owner.asset(asset_id)
        if found is not None:
            assets.append(asset(owner, found, visualization_id=item.id, resolution=item.resolution))
    body: dict[str, Any] = {
        "aoi_id": item.aoi_id,
        "assets": assets,
        "created_at": timestamp(item.created_at),
        "expression": idx.expression,
        "expression_type": idx.expression_type,
        "id": item.id,
        "index_id": item.index_id,
        "index_name": idx.name,
        "progress": item.progress(now_micros),
        "rescale": list(idx.rescale),
        "status": item.status,
        "tenant_id": TENANT_ID,
        "type": "custom",
        "updated_at": timestamp(item.updated_at),
        "user_id": item.user_id,
    }
    return body


def metadata(item: Visualization) -> dict[str, Any]:
    """``atlas.VisualizationMetadata``: legends by date key, then mode."""
    return {"legend": {key: dict(modes) for key, modes in sorted(item.legend.items())}}


SLD_NAMESPACE = "http://www.opengis.net/sld"
#: What XML 1.0 cannot carry even escaped; a label with it is still written, with U+FFFD.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def sld(index: Index, mode: str, key: str, items: Iterable[Mapping[str, Any]]) -> str:
    """The SLD XML of one legend (one mode of one date key) of a visualization of ``index``."""

    def element(parent: ET.Element | None, tag: str, text: str | None = None) -> ET.Element:
        made = ET.Element(tag) if parent is None else ET.SubElement(parent, tag)
        if text is not None:
            made.text = _xml_text(text)
        return made

    root = element(None, "StyledLayerDescriptor")
    # Set by hand: ElementTree's own namespace handling would prefix every tag (ns0:).
    root.set("xmlns", SLD_NAMESPACE)
    root.set("version", "1.0.0")
    layer = element(root, "NamedLayer")
    element(layer, "Name", index.name)
    style = element(layer, "UserStyle")
    element(style, "Name", f"{index.name} {mode} {key}")
    element(style, "Title", f"{index.name}, {mode} legend of {key}")
    symbolizer = element(element(element(style, "FeatureTypeStyle"), "Rule"), "RasterSymbolizer")
    element(symbolizer, "Opacity", "1.0")
    color_map = element(symbolizer, "ColorMap")
    color_map.set("type", "intervals")
    previous_max: str | None = None
    for item in items:
        low, high = _number(item.get("min")), _number(item.get("max"))
        if low != previous_max:
            gap = element(color_map, "ColorMapEntry")
            gap.set("color", "#000000")
            gap.set("quantity", low)
            gap.set("opacity", "0")
        entry = element(color_map, "ColorMapEntry")
        entry.set("color", _xml_text(str(item.get("color", ""))))
        entry.set("quantity", high)
        entry.set("label", _xml_text(str(item.get("label", ""))))
        entry.set("opacity", "1")
        previous_max = high
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _number(value: object) -> str:
    """One spelling per number: 1 and 1.0 are both ``1``, 0.25 is ``0.25``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""  # legends always have numeric bounds; nothing else is a quantity
    number = float(value)
    if number.is_integer():
        return str(int(number))
    return repr(number)


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
