"""Legend rules and the emulator's deterministic "auto-computed" legends.

The API computes a visualization's legends from its source data. The emulator has no pixels, so
it derives them from a seeded hash of the index id, the mode and the asset ids of one date: the
same inputs always give exactly the same legend, which is what lets tests prove that a rollback
(PATCH) restores the auto-computed values after a manual edit (PUT).

Which legend modes an index can have (from the contract's create description):

* preset index (expression_type ``index``): ``dynamic`` and ``theoretical``;
* custom index with expression_type ``index``: ``dynamic`` only;
* ``composite`` and ``grayscale`` expressions: no legend at all.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

Mode = Literal["dynamic", "theoretical"]
MODES: tuple[Mode, ...] = ("dynamic", "theoretical")

#: Five bins, like the API's default legends (colours of a diverging red-yellow-green ramp).
_COLORS = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")
_LABELS = ("Very Low", "Low", "Medium", "High", "Very High")


def legend_modes(index_type: str, expression_type: str) -> tuple[Mode, ...]:
    """The legend modes a visualization of this kind of index gets, in canonical order."""
    if expression_type != "index":
        return ()
    if index_type == "preset":
        return MODES
    return ("dynamic",)


def describe_modes(modes: tuple[Mode, ...]) -> str:
    """Human wording of a mode tuple for error messages: 'dynamic and theoretical', 'none'."""
    return " and ".join(modes) if modes else "none"


def auto_legend(
    *,
    index_id: str,
    mode: Mode,
    asset_ids: Iterable[str],
    rescale: tuple[int, int],
    area_in_sq_m: float,
) -> list[dict[str, object]]:
    """The auto-computed legend of one date in one mode, as contract ``LegendItem`` dicts.

    Deterministic in its inputs (asset ids are sorted first, so their order does not matter).
    ``dynamic`` bins span a data range drawn inside ``rescale``; ``theoretical`` bins split the
    index's whole ``rescale`` range. Areas add up to the AOI area.
    """
    seed_text = f"{index_id}|{mode}|{','.join(sorted(asset_ids))}"
    # A hash, not Python's hash(): that one is salted per process and would break determinism.
    rng = random.Random(hashlib.sha256(seed_text.encode()).digest())
    low, high = float(rescale[0]), float(rescale[1])
    if mode == "dynamic":
        span = high - low
        start = low + rng.uniform(0.0, 0.3) * span
        stop = high - rng.uniform(0.0, 0.3) * span
        low, high = start, stop
    weights = [rng.uniform(1.0, 10.0) for _ in _COLORS]
    total_weight = sum(weights)
    step = (high - low) / len(_COLORS)
    items: list[dict[str, object]] = []
    for i, (color, label) in enumerate(zip(_COLORS, _LABELS, strict=True)):
        share = weights[i] / total_weight
        items.append(
            {
                "area": round(area_in_sq_m * share, 2),
                "area_percentage": round(100.0 * share, 2),
                "color": color,
                "label": label,
                "max": round(low + step * (i + 1), 4),
                "min": round(low + step * i, 4),
            }
        )
    return items


def equal_bins(auto: Sequence[Mapping[str, Any]], bins: int) -> list[dict[str, Any]]:
    """``bins`` equal-interval bins over the range of the auto-computed legend ``auto``.

    What a PUT in dynamic mode makes of ``dynamic_bins``: the bins span ``auto``'s first min to
    its last max, coloured along the default ramp (interpolated for other counts than five)
    and labelled ``Bin 1`` .. ``Bin N``. Each bin's area is the
    auto legend's area re-binned (spread evenly within each auto bin), so the areas add up as
    the auto legend's do. With five bins the answer is the auto-computed legend itself: it is
    five equal-interval bins already.
    """
    if bins == len(auto):
        return [dict(item) for item in auto]
    low, high = float(auto[0]["min"]), float(auto[-1]["max"])
    step = (high - low) / bins
    bounds = [round(low + step * i, 4) for i in range(bins)] + [float(auto[-1]["max"])]
    made: list[dict[str, object]] = []
    for i in range(bins):
        start, stop = low + step * i, low + step * (i + 1)
        made.append(
            {
                "area": round(_rebinned(auto, "area", start, stop), 2),
                "area_percentage": round(_rebinned(auto, "area_percentage", start, stop), 2),
                "color": _ramp(i, bins),
                "label": f"Bin {i + 1}",
                "max": bounds[i + 1],
                "min": bounds[i],
            }
        )
    return made


def _rebinned(auto: Sequence[Mapping[str, Any]], field: str, start: float, stop: float) -> float:
    """The part of ``field`` (an area) of the auto bins that falls between start and stop."""
    total = 0.0
    for item in auto:
        low, high = float(item["min"]), float(item["max"])
        overlap = min(high, stop) - max(low, start)
        if high > low and overlap > 0:
            total += float(item[field]) * overlap / (high - low)
    return total


def _ramp(position: int, count: int) -> str:
    """The colour ``position`` of ``count`` along the default ramp (its middle for one)."""
    at = (len(_COLORS) - 1) * (position / (count - 1) if count > 1 else 0.5)
    below = min(int(at), len(_COLORS) - 2)
    part = at - below
    first, second = _rgb(_COLORS[below]), _rgb(_COLORS[below + 1])
    mixed = (round(a + (b - a) * part) for a, b in zip(first, second, strict=True))
    return "#" + "".join(f"{c:02x}" for c in mixed)


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
