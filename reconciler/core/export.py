"""Export: spec files written from what exists, so a team can adopt reconciler on a live account.

Pure: no I/O. ``refresh.read_account`` reads the account; ``Engine.export`` decides where the
files go and writes them. What is written, per visualization that exists:

- the AOI and the index, by id (``--by-name``: by name where the name is unique, else by id);
- ``assets`` as an explicit list, because the set of assets is the visualization's identity:
  ids (``--by-name``: the asset's name where unique and not mistakable for a date or an id,
  else its date where unique, else its id). Comments name what every id stands for;
- no ``resolution`` (the API's listings do not return it; it only matters for creating);
- no active ``rollback`` or ``legend``: the listings do not show legends, so nothing that
  exists says which legends a team wants auto-computed or kept as they are, and declaring every
  legend would undo any deliberate edit at the next apply. Where the state file records legends
  this tool made auto-computed, or custom legends it set, and the visualization has not changed
  since, a commented-out ``rollback`` or ``legend`` block says so, ready to uncomment (doing so
  plans nothing while the record holds);
- the custom indices the exported visualizations use, declared under ``indices`` as the API
  lists them (commented out where the API leaves out a field a declaration needs).

So ``reconciler plan`` on the exported files plans no change: every visualization and custom
index declared exists as declared, and no rollback or legend is declared.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from reconciler.api.types import Aoi, Asset, Index, Visualization
from reconciler.core.identity import Identity, by_identity
from reconciler.core.observed import ObservedAoi
from reconciler.core.plan import MODES
from reconciler.spec.fields import DATE_LIKE, looks_like_uuid

#: The first line of every exported file: editors find the spec's JSON Schema beside it.
SCHEMA_LINE = "# yaml-language-server: $schema=./reconciler.schema.json"
#: The schema file that line points at, written beside the exported files.
SCHEMA_FILE = "reconciler.schema.json"
#: Under that line when no schema is written (standard output): where to get it.
SCHEMA_HINT = f"# (write that schema beside this file: reconciler schema --out {SCHEMA_FILE})"

#: Lines are kept within this width where the content allows (flow lists fold to blocks).
_WIDTH = 100
_PLAIN = re.compile(r"\w[\w .\-/()+]*")

HEADER = (
    SCHEMA_LINE,
    "# Exported by `reconciler export` from what exists: one entry per visualization, so",
    "# `reconciler plan` on these files shows no changes. Assets are listed because they are a",
    "# visualization's identity; `assets: all` instead follows new assets (a new visualization",
    "# each time the set changes), `assets: any` accepts any visualization of the index.",
)


class LegendRecord(Protocol):
    """What export reads of one state record (``state.VizRecord``)."""

    @property
    def updated_at(self) -> str: ...

    @property
    def legends(self) -> Mapping[str, Mapping[str, int]]: ...

    @property
    def custom(self) -> Mapping[str, Mapping[str, Mapping[str, Any]]]: ...


class LegendRecords(Protocol):
    """What export reads of the state (``state.State``)."""

    def get(self, visualization_id: str) -> LegendRecord | None: ...


@dataclass(frozen=True)
class AoiExport:
    """One AOI's entry: YAML lines (an item of ``aois``), and how many visualizations."""

    aoi: Aoi
    lines: tuple[str, ...]
    visualizations: int
    indices: tuple[Index, ...] = ()  # the custom indices its visualizations use


def scalar(text: str) -> str:
    """``text`` as a YAML scalar that reads back as exactly this string."""
    if _PLAIN.fullmatch(text) and text == text.strip() and _reads_as(text, text):
        return text
    # JSON strings are YAML double-quoted scalars; escape everything unprintable so nothing
    # (control characters, bidi overrides) reaches the file raw.
    return json.dumps(text, ensure_ascii=not text.isprintable())


def _reads_as(text: str, value: str) -> bool:
    try:
        return bool(yaml.safe_load(text) == value)
    except yaml.YAMLError:
        return False


def comment(text: str) -> str:
    """Untrusted text (names from the API) made safe for a YAML comment: one line, printable."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


class _Refs:
    """How to refer to AOIs, indices and assets: by id, or by name where that is unambiguous."""

    def __init__(self, aois: Sequence[Aoi], indices: Sequence[Index], *, by_name: bool) -> None:
        self.by_name = by_name
        self._aoi_names = Counter(a.name for a in aois)
        self._indices = {i.id: i for i in indices}
        self._index_names = Counter(i.name for i in indices)

    def aoi(self, aoi: Aoi) -> str:
        if self.by_name and self._aoi_names[aoi.name] == 1 and aoi.name.strip():
            return f"aoi: {{name: {scalar(aoi.name)}}}"
        return f"aoi: {aoi.id} # {comment(aoi.name)}"

    def index(self, viz: Visualization) -> str:
        index = self._indices.get(viz.index_id)
        name = index.name if index is not None else viz.index_name
        if (
            self.by_name
            and name is not None
            and self._index_names[name] == 1
            and name not in self._indices
        ):
            return f"index: {scalar(name)}"
        return f"index: {viz.index_id}" + (f" # {comment(name)}" if name else "")

    def assets(self, viz: Visualization, known: Sequence[Asset] | None) -> list[tuple[str, str]]:
        """(reference, comment) per asset, in date order."""
        ordered = sorted(viz.assets, key=lambda a: (a.date, a.name, a.id))
        if not self.by_name or known is None:
            return [(a.id, f"{a.name} {a.date}") for a in ordered]
        names = Counter(a.name for a in known)
        dates = Counter(a.date for a in known)
        refs = []
        for a in ordered:
            # The spec reads a date-like or UUID-like text as a date or an id, never a name.
            usable = a.name.strip() and not DATE_LIKE.fullmatch(a.name)
            if usable and not looks_like_uuid(a.name) and names[a.name] == 1:
                refs.append((scalar(a.name), ""))
                continue
            if dates[a.date] == 1:
                refs.append((a.date, a.name))
            else:
                refs.append((a.id, f"{a.name} {a.date}"))
        return refs


def export_aois(
    observed: Sequence[ObservedAoi],
    aois: Sequence[Aoi],
    indices: Sequence[Index],
    records: LegendRecords,
    *,
    by_name: bool,
) -> list[AoiExport]:
    """The ``aois`` entries declaring every visualization of each observed AOI as it exists.

    ``aois`` and ``indices`` are the whole listings (names are used only where unique there);
    each ``ObservedAoi.assets`` the AOI's assets when read (needed for references by name).
    """
    refs = _Refs(aois, indices, by_name=by_name)
    index_by_id = {i.id: i for i in indices}
    return [_export_aoi(seen, refs, index_by_id, records) for seen in observed]


def _export_aoi(
    seen: ObservedAoi, refs: _Refs, indices: Mapping[str, Index], records: LegendRecords
) -> AoiExport:
    lines = [f"  - {refs.aoi(seen.aoi)}"]
    # Without assets there is no identity to declare.
    declarable = [v for v in seen.visualizations if v.assets]
    unique = by_identity(declarable)
    same: dict[Identity, list[str]] = {}
    for v in declarable:
        same.setdefault(Identity.of_visualization(v), []).append(v.id)
    ordered = sorted(
        unique.values(),
        key=lambda v: (
            _index_name(v, indices),
            min(a.date for a in v.assets),
            len(v.assets),
            v.id,
        ),
    )
    if not ordered:
        lines.append("    visualizations: []")
    else:
        lines.append("    visualizations:")
    for viz in ordered:
        lines.append(f"      # {viz.id}" + (f" ({comment(viz.status)})" if viz.status else ""))
        twins = [i for i in same[Identity.of_visualization(viz)] if i != viz.id]
        if twins:
            # The API should refuse a second one (409), but the listing showed one: the
            # declaration stands for both, and the reader should know which one it names.
            lines.append(
                f"      # also {', '.join(twins)}: the same index and assets, so this one "
                "declaration covers it"
            )
        lines.append(f"      - {refs.index(viz)}")
        lines += _asset_lines(refs.assets(viz, seen.assets))
        record = records.get(viz.id)
        lines += _rollback_comment(viz, indices.get(viz.index_id), record)
        lines += _legend_comment(viz, record)
    skipped = [v for v in seen.visualizations if not v.assets]
    for viz in skipped:
        lines.append(f"      # not exported: {viz.id}, the API listed it without assets")
    used = {
        index.id: index
        for viz in ordered
        if (index := indices.get(viz.index_id)) is not None and index.type == "custom"
    }
    return AoiExport(seen.aoi, tuple(lines), len(ordered), tuple(used.values()))


def _index_name(viz: Visualization, indices: Mapping[str, Index]) -> str:
    index = indices.get(viz.index_id)
    if index is not None:
        return index.name
    return viz.index_name or viz.index_id


def _asset_lines(refs: list[tuple[str, str]]) -> list[str]:
    prefix = "        assets: "
    if not any(note for _, note in refs):
        flow = prefix + "[" + ", ".join(ref for ref, _ in refs) + "]"
        if len(flow) <= _WIDTH:
            return [flow]
    lines = [prefix.rstrip()]
    for ref, note in refs:
        lines.append(f"          - {ref}" + (f" # {comment(note)}" if note else ""))
    return lines


def _rollback_comment(
    viz: Visualization, index: Index | None, record: LegendRecord | None
) -> list[str]:
    """The legends the state file says this tool made auto-computed, as a commented block."""
    if record is None:
        return []
    if record.updated_at != viz.updated_at:
        return [
            "        # The state file records legends reconciler made auto-computed here, but the",
            "        # visualization changed since (updated_at moved): they may have been edited.",
        ]
    dates = {a.date for a in viz.assets}
    modes = index.legend_modes if index is not None else MODES
    blocks: list[str] = []
    for mode in MODES:
        recorded = {d: r for d, r in record.legends.get(mode, {}).items() if d in dates}
        if mode not in modes or not recorded:
            continue
        blocks.append(f"        #   - mode: {mode}")
        blocks.append(f"        #     dates: [{', '.join(sorted(recorded))}]")
        revision = min(recorded.values())
        if revision:
            blocks.append(f"        #     revision: {revision}")
    if not blocks:
        return []
    return [
        "        # Legends reconciler made auto-computed (state file); uncomment to keep them so:",
        "        # rollback:",
        *blocks,
    ]


def _legend_comment(viz: Visualization, record: LegendRecord | None) -> list[str]:
    """The custom legends the state file says this tool set, as a commented block."""
    if record is None or record.updated_at != viz.updated_at or not record.custom:
        return []
    dates = {a.date for a in viz.assets}
    blocks: list[str] = []
    for mode in MODES:
        # Dates that share a legend are one entry, as they were most likely declared.
        groups: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
        for date, legend in sorted(record.custom.get(mode, {}).items()):
            if date in dates:
                key = json.dumps(legend, sort_keys=True)
                groups.setdefault(key, (legend, []))[1].append(date)
        for legend, grouped in groups.values():
            blocks.append(f"        #   - mode: {mode}")
            blocks.append(f"        #     dates: [{', '.join(grouped)}]")
            if legend.get("bins") is not None:
                blocks.append(f"        #     bins: {legend['bins']}")
            items = legend.get("items") or []
            if items:
                blocks.append("        #     items:")
            for item in items:
                fields = [
                    f"{k}: {_number(item[k])}" for k in ("min", "max") if item.get(k) is not None
                ]
                fields.append(f"color: {json.dumps(item['color'])}")
                if item.get("label") is not None:
                    fields.append(f"label: {scalar(str(item['label']))}")
                blocks.append("        #       - {" + ", ".join(fields) + "}")
    if not blocks:
        return []
    return [
        "        # Custom legends reconciler set (state file); uncomment to keep them so:",
        "        # legend:",
        *blocks,
    ]


def _number(value: object) -> str:
    # Every digit: the state holds the bound as declared, and so must the spec written back.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def index_lines(indices: Sequence[Index]) -> list[str]:
    """The ``indices`` block declaring these custom indices as the API lists them; one the
    API lists without a field a declaration needs is written commented out, saying which."""
    if not indices:
        return []
    lines = ["indices:"]
    complete = 0
    for index in sorted(indices, key=lambda i: (i.name, i.id)):
        rescale = index.rescale
        fields = {
            "expression": index.expression,
            "expression_type": index.expression_type,
            "rescale": None if rescale is None or len(rescale) != 2 else list(rescale),
            "colormap": index.colormap,
            "satellite": index.satellite_id,
        }
        missing = [k for k, v in fields.items() if v in (None, "")]
        entry = [f"- name: {scalar(index.name)}"]
        if index.description:
            entry.append(f"  description: {scalar(index.description)}")
        for key, value in fields.items():
            if value not in (None, ""):
                shown = (
                    f"[{value[0]}, {value[1]}]" if isinstance(value, list) else scalar(str(value))
                )
                entry.append(f"  {key}: {shown}")
        lines.append(f"  # {index.id}: a custom index the visualizations below use")
        if missing:
            lines.append(
                f"  # The API lists it without {', '.join(missing)}: complete the declaration "
                "to keep it as code"
            )
            lines += [f"  # {line}" for line in entry]
        else:
            lines += [f"  {line}" for line in entry]
            complete += 1
    if not complete:
        lines[0] = "# indices:"  # a key with only comments under it would be null
    return lines


def document(entries: Sequence[AoiExport], *, schema_beside: bool = True) -> str:
    """One spec file holding ``entries`` and the custom indices they use; ``schema_beside``:
    the schema is written beside it (otherwise the header says how to get it)."""
    header = list(HEADER) if schema_beside else [HEADER[0], SCHEMA_HINT, *HEADER[1:]]
    used = {index.id: index for entry in entries for index in entry.indices}
    lines = [*header, "version: 1", *index_lines(list(used.values())), "aois:"]
    for entry in entries:
        lines += entry.lines
    return "\n".join(lines) + "\n"


def file_names(aois: Sequence[Aoi]) -> dict[str, str]:
    """AOI id -> a file name from its name ("Bengaluru-North" -> "bengaluru-north.yaml").

    Names that slug alike (or to nothing) get the start of the AOI id added, so every AOI has
    its own file whatever the names.
    """
    slugs = {a.id: _slug(a.name) for a in aois}
    counts = Counter(slugs.values())
    names: dict[str, str] = {}
    for aoi in aois:
        slug = slugs[aoi.id]
        if not slug or counts[slug] > 1:
            slug = f"{slug}-{aoi.id[:8]}" if slug else aoi.id
        names[aoi.id] = slug + ".yaml"
    taken = Counter(names.values())
    # Should "x" twice and "x-<id start>" meet, the full id settles it.
    return {k: (v if taken[v] == 1 else f"{_slug(k)}.yaml") for k, v in names.items()}


def _slug(name: str) -> str:
    # Accents folded away (NFKD: "Zürich" -> "zurich"); other letters kept ("東京"), so names
    # in any script still give readable file names.
    folded = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", "-", folded.lower()).strip("-")[:60].strip("-")
