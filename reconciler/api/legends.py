"""Legends as the API states them, in one comparable form: bins, and a fingerprint of them.

The API answers a legend in two shapes: ``LegendItem`` objects in a visualization's metadata
(the answer to PUT and PATCH .../metadata) and an SLD document per mode and date (POST
.../sld, the only way to read a legend without changing it). Both become a ``Legend``: a
tuple of ``LegendBin`` (min, max, colour, label), normalised so that the same legend read
either way is equal and has the same ``fingerprint``. Areas are not style and are left out.

Normalised: numbers are rounded to 6 significant digits (the JSON value 0.2 and the SLD
quantities ``"0.2"`` and ``"0.20"`` are one number, as are 1 and 1.0); colours are lower case
with ``#rgb`` spelt ``#rrggbb``; labels keep every character, except those XML 1.0 cannot carry,
which read as U+FFFD in both shapes (an SLD cannot hold them).

The SLD form read is a standard SLD 1.0 ``ColorMap type="intervals"``: each ``ColorMapEntry``
ends a bin at its ``quantity`` (colouring values from the previous entry's quantity up to its
own); an entry with ``opacity`` 0 draws nothing and marks where the next bin starts (a gap).
A first bin with no start has ``min`` None. Elements match on local names, with the SLD
namespace or none. Parsing is bounded and refuses any DTD, so no entity is ever expanded
(neither a billion laughs nor a file named by an external entity).

Pure: no I/O. Every problem with what the API sent is an ``InvalidResponseError`` naming the
call and what was wrong, quoting at most a short excerpt.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.parsers import expat

from reconciler.dates import iso_date
from reconciler.errors import InvalidResponseError
from reconciler.text import json_kind, shorten

__all__ = [
    "MAX_BINS",
    "Legend",
    "LegendBin",
    "fingerprint",
    "legend_from_items",
    "legend_from_sld",
    "legends_from_metadata",
    "legends_from_sld_answer",
]

#: The most bins one legend may have. The API makes 1 to 15; one SLD string may be as large as
#: a whole answer (16 MiB) yet is one JSON value, so its entries are bounded here.
MAX_BINS = 1_000

#: Significant digits a bound keeps: SLD quantities are text, and "0.2", "0.20" and a float
#: printed in full must all be the number the JSON said.
_DIGITS = 6

#: What XML 1.0 cannot carry even escaped; the SLD form holds U+FFFD in its place.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SHORT_HEX = re.compile(r"#[0-9a-f]{3}")
#: A decimal number as XML Schema spells one; float() alone would also take "nan", "inf"
#: and "1_0".
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_EXCERPT = 60


@dataclass(frozen=True, slots=True)
class LegendBin:
    """One bin of a legend: values from ``min`` to ``max`` drawn in ``color``, named ``label``.

    ``min`` / ``max`` are None when not known (an SLD whose first bin has no start).
    ``color`` is normalised (lower case ``#rrggbb`` for a hex colour).
    """

    min: float | None
    max: float | None
    color: str
    label: str


Legend = tuple[LegendBin, ...]


def fingerprint(legend: Legend) -> str:
    """A short, stable hex digest of a legend's content: equal legends, equal fingerprints."""
    rows = [[b.min, b.max, b.color, b.label] for b in legend]
    # Versioned, so that a change to what is normalised can never match an older digest.
    text = "legend/1 " + json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# --- from LegendItem objects ----------------------------------------------------------------


def legend_from_items(items: Any, *, what: str = "a legend") -> Legend:
    """The legend of contract ``LegendItem`` dicts (``min``, ``max``, ``color``, ``label``):
    ``items`` is whatever the API sent where a list of them belongs.

    ``area`` and ``area_percentage`` are ignored; a missing or null bound is None, a missing or
    null colour or label is empty. A value of the wrong type is an ``InvalidResponseError``
    naming ``what``.
    """
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise InvalidResponseError(
            f"{what}: the legend is {json_kind(items)}, not a list of items."
        )
    if len(items) > MAX_BINS:
        raise InvalidResponseError(f"{what}: the legend has {len(items):,} items, over {MAX_BINS}.")
    bins = []
    for position, item in enumerate(items, 1):
        if not isinstance(item, Mapping):
            raise InvalidResponseError(
                f"{what}: item {position} is {json_kind(item)}, not an object."
            )
        bins.append(
            LegendBin(
                min=_json_bound(item.get("min"), f"{what}: item {position}'s min"),
                max=_json_bound(item.get("max"), f"{what}: item {position}'s max"),
                color=_color(_json_text(item.get("color"), f"{what}: item {position}'s color")),
                label=_label(_json_text(item.get("label"), f"{what}: item {position}'s label")),
            )
        )
    return tuple(bins)


def legends_from_metadata(metadata: Any, *, what: str) -> dict[str, dict[str, Legend]]:
    """mode -> ISO date -> ``Legend`` of an ``atlas.VisualizationMetadata`` object.

    ``{"legend": {"2024_05_06": {"dynamic": [...], "theoretical": [...]}}}`` gives
    ``{"dynamic": {"2024-05-06": ...}, "theoretical": {"2024-05-06": ...}}``. Metadata without
    a ``legend`` (a visualization still being created) has none; a mode whose items are null is
    left out.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidResponseError(f"{what}: the metadata is {json_kind(metadata)}, not an object.")
    by_date = metadata.get("legend")
    if by_date is None:
        return {}
    if not isinstance(by_date, Mapping):
        raise InvalidResponseError(f"{what}: 'legend' is {json_kind(by_date)}, not an object.")
    found: dict[str, dict[str, Legend]] = {}
    for key, modes in by_date.items():
        day = _iso_of_api_date(key, what)
        if modes is None:
            continue
        if not isinstance(modes, Mapping):
            raise InvalidResponseError(
                f"{what}: legend.{key} is {json_kind(modes)}, not an object."
            )
        for mode, items in modes.items():
            if items is not None:
                legend = legend_from_items(items, what=f"{what}: legend.{key}.{shorten(mode, 40)}")
                found.setdefault(str(mode), {})[day] = legend
    return found


def _json_bound(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidResponseError(f"{what} is {json_kind(value)}, not a number.")
    return _normalised(value, what)


def _json_text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidResponseError(f"{what} is {json_kind(value)}, not a string.")
    return value


# --- from SLD -------------------------------------------------------------------------------


def legend_from_sld(xml: str, *, what: str) -> Legend:
    """The legend one SLD document of the SLD endpoint describes (see the module docstring).

    ``InvalidResponseError`` naming ``what`` (the call, e.g. ``POST /v0/aois/…/sld``) when
    the document is not XML, has a DTD, has no ColorMap or more than one, a ColorMap that is
    not of type intervals, an entry without a numeric quantity, or more than ``MAX_BINS``
    entries.
    """
    if not isinstance(xml, str):
        raise InvalidResponseError(f"{what}: the SLD is {json_kind(xml)}, not a string.")
    reader = _SldReader(what)
    parser = expat.ParserCreate(namespace_separator=" ")
    # An SLD needs no DTD, and refusing one at its first token means no entity is ever
    # declared, let alone expanded: expat's own amplification limit is then never relied on.
    parser.StartDoctypeDeclHandler = reader.refuse_dtd
    parser.EntityDeclHandler = reader.refuse_dtd
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    try:
        parser.Parse(xml, True)
    except expat.ExpatError as exc:
        problem = expat.ErrorString(exc.code) if exc.code else str(exc)
        raise InvalidResponseError(
            f"{what}: the SLD is not XML ({problem}, line {exc.lineno}, column {exc.offset}); "
            f"it begins {_excerpt(xml)}."
        ) from None
    return reader.legend()


def legends_from_sld_answer(
    answer: Any, *, modes: Sequence[str], dates: Sequence[str], what: str
) -> dict[str, dict[str, Legend]]:
    """mode -> ISO date -> ``Legend`` of an ``atlas.SLDResponse`` (``{"sld": {mode: {date:
    xml}}}``) to a request for ``modes`` x ``dates`` (the API's ``2024_05_06``).

    Every mode and date asked for must be there, each a document ``legend_from_sld`` reads;
    anything else is an ``InvalidResponseError`` naming ``what`` (the call). Documents not
    asked for are not read.
    """
    documents = answer.get("sld") if isinstance(answer, Mapping) else None
    if not isinstance(documents, Mapping):
        raise InvalidResponseError(f"{what}: the answer has no 'sld' object of documents by mode.")
    legends: dict[str, dict[str, Legend]] = {}
    for mode in modes:
        shown = shorten(mode, 40)
        by_date = documents.get(mode)
        if not isinstance(by_date, Mapping):
            raise InvalidResponseError(
                f"{what}: the answer has no object of {shown} documents, which were asked for."
            )
        for key in dates:
            day = _iso_of_api_date(key, what)
            document = by_date.get(key)
            if document is None:
                raise InvalidResponseError(
                    f"{what}: the answer has no document for the {shown} legend of {day}, "
                    "which was asked for."
                )
            if not isinstance(document, str):
                raise InvalidResponseError(
                    f"{what}: the document of the {shown} legend of {day} is "
                    f"{json_kind(document)}, not a string of SLD."
                )
            about = f"{what} ({shown} legend of {day})"
            legends.setdefault(mode, {})[day] = legend_from_sld(document, what=about)
    return legends


def _local(name: str) -> str:
    """``"http://www.opengis.net/sld ColorMap"`` or ``"ColorMap"`` -> ``"ColorMap"``."""
    return name.rpartition(" ")[2]


class _SldReader:
    """Reads one SLD document as expat goes, keeping only the ColorMap's bins."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.depth = 0
        self.color_maps = 0
        self.map_depth: int | None = None  # the open ColorMap's depth
        self.entries = 0
        self.bins: list[LegendBin] = []
        self.start_at: float | None = None  # where the next bin starts, when known

    def refuse_dtd(self, *args: object) -> None:
        raise InvalidResponseError(
            f"{self.what}: the SLD has a document type declaration (a DTD); an SLD needs none, "
            "and its entities are not expanded. Refusing it."
        )

    def start(self, name: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        local = _local(name)
        if local == "ColorMap":
            self.open_color_map(attributes)
        elif local == "ColorMapEntry" and self.map_depth == self.depth - 1:
            self.entry({_local(k): v for k, v in attributes.items()})

    def end(self, name: str) -> None:
        if self.map_depth == self.depth:
            self.map_depth = None
        self.depth -= 1

    def open_color_map(self, attributes: dict[str, str]) -> None:
        self.color_maps += 1
        if self.color_maps > 1:
            raise InvalidResponseError(
                f"{self.what}: the SLD has more than one ColorMap; which is the legend is unclear."
            )
        kind = next((v for k, v in attributes.items() if _local(k) == "type"), "ramp")
        if kind.strip() != "intervals":
            raise InvalidResponseError(
                f"{self.what}: the SLD's ColorMap is of type {shorten(kind, _EXCERPT)!r}, not "
                "'intervals'; its bins cannot be read from it."
            )
        self.map_depth = self.depth

    def entry(self, attributes: dict[str, str]) -> None:
        self.entries += 1
        about = f"{self.what}: the SLD's ColorMapEntry {self.entries}"
        quantity = self.number(attributes.get("quantity"), f"{about} has quantity")
        opacity = self.number(attributes.get("opacity", "1"), f"{about} has opacity")
        if opacity == 0:  # draws nothing: the next bin starts here
            self.start_at = quantity
            return
        if len(self.bins) >= MAX_BINS:
            raise InvalidResponseError(f"{self.what}: the SLD has more than {MAX_BINS} bins.")
        color, label = attributes.get("color", ""), attributes.get("label", "")
        self.bins.append(LegendBin(self.start_at, quantity, _color(color), _label(label)))
        self.start_at = quantity

    def number(self, text: str | None, what: str) -> float:
        if text is None or not _DECIMAL.fullmatch(text.strip()):
            shown = "none" if text is None else repr(shorten(text, _EXCERPT))
            raise InvalidResponseError(f"{what} {shown}, not a number.")
        return _normalised(float(text), what)

    def legend(self) -> Legend:
        if self.color_maps == 0:
            raise InvalidResponseError(f"{self.what}: the SLD has no ColorMap: no legend in it.")
        return tuple(self.bins)


# --- normalising --------------------------------------------------------------------------


def _normalised(value: float, what: str) -> float:
    number = float(value) if abs(value) < 1e300 else math.inf
    if not math.isfinite(number):
        raise InvalidResponseError(f"{what} {shorten(repr(value), _EXCERPT)}, not a finite number.")
    rounded = float(f"{number:.{_DIGITS}g}")
    return rounded if rounded != 0 else 0.0  # -0.0 and 0.0 are one bound


def normal_bound(value: float) -> float:
    """A bound as a ``Legend`` holds it (6 significant digits): what a declared bound is
    compared as, since the API's answers carry no more."""
    return _normalised(value, "a bound")


def _color(value: str) -> str:
    # What XML cannot carry goes first: an SLD holds U+FFFD, which is not stripped.
    color = _label(value).strip().lower()
    if _SHORT_HEX.fullmatch(color):
        color = "#" + "".join(c * 2 for c in color[1:])
    return color


def _label(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _iso_of_api_date(key: Any, what: str) -> str:
    """``"2024_05_06"`` -> ``"2024-05-06"``; anything else is not a legend's date."""
    try:
        if not isinstance(key, str) or "-" in key:
            raise ValueError(key)
        return iso_date(key.replace("_", "-"))
    except ValueError:
        raise InvalidResponseError(
            f"{what}: the legend's key {shorten(repr(key), _EXCERPT)} is not a date like "
            "2024_05_06."
        ) from None


def _excerpt(text: str) -> str:
    return repr(shorten(text[: _EXCERPT * 4], _EXCERPT))
