"""The comment's change list: every change of a plan on one line, in a ``diff`` block per spec
file under an ``@@ AOI @@`` line (the custom indices first, under ``@@ custom indices @@``),
with the reasons said once above it; and, when the comment is too long for all of it, where it
is cut (by whole AOIs from the end) and what the cut leaves out, counted per spec file.
"""

from __future__ import annotations

import dataclasses
import html
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler.core.plan import (
    LEGEND_REASON_TEXT,
    REASON_TEXT,
    AoiChange,
    Create,
    IndexCreate,
    LegendChange,
    Plan,
    Rollback,
)
from reconciler.render.layout import (
    CREATE,
    ROLLBACK,
    SET_LEGEND,
    custom_indices,
    rescale_text,
    short,
)
from reconciler.render.mdsafe import code_span, fence_for
from reconciler.spec.decls import LegendContent
from reconciler.text import clean, plural

#: Longest name quoted in a line of the change list; the details have the rest.
_NAME_CHARS = 60
#: A create lists at most this many of its assets by name, then counts them.
_ASSETS_LISTED = 3
#: A rollback lists at most this many of its dates, then gives the first, the last and a count.
_DATES_LISTED = 3
#: Rollback reasons in a word, for the change list; the full sentence is said once above it.
_REASON_WORDS = {
    "no-record": "no record",
    "changed": "edited since",
    "revision": "revision bumped",
    "adopted": "adopted",
}
#: The same for custom legends.
_LEGEND_REASON_WORDS = {
    "no-record": "no record",
    "declared-changed": "spec changed",
    "edited": "edited since",
    "new": "new",
    "adopted": "adopted",
}
#: Longest index expression quoted in a line of the change list; the details have the rest.
_EXPRESSION_CHARS = 80
#: The note names at most this many spec files whose changes it left out.
_MAX_FILES_NAMED = 10


@dataclass(frozen=True)
class Block:
    """One AOI's changes declared in one spec file, one line each: the change list's unit."""

    file: str
    aoi_id: str  # "" for the custom indices declared in the file
    head: str  # the '@@ AOI @@' line
    lines: tuple[str, ...]


def whole_aois(blocks: Sequence[Block], lines: int) -> int:
    """``lines`` rounded down to whole AOIs of the change list, unless that leaves none."""
    whole = 0
    for block in blocks:
        if whole + len(block.lines) > lines:
            break
        whole += len(block.lines)
    return whole or lines


def split(blocks: Sequence[Block], lines: int) -> tuple[list[Block], list[Block]]:
    """The blocks showing the first ``lines`` change lines, and what is left of the list."""
    shown: list[Block] = []
    left: list[Block] = []
    room = lines
    for block in blocks:
        if room >= len(block.lines):
            shown.append(block)
            room -= len(block.lines)
        elif room > 0:
            shown.append(dataclasses.replace(block, lines=block.lines[:room]))
            left.append(dataclasses.replace(block, lines=block.lines[room:]))
            room = 0
        else:
            left.append(block)
    return shown, left


def blocks_of(plan: Plan) -> list[Block]:
    """The change list: by spec file, then AOI (by name), each change one line; the custom
    indices to create come first, as apply creates them before anything else."""
    usual = (_dominant_reason(plan), _dominant_legend_reason(plan))
    names = Counter(a.aoi_name for a in plan.aois)
    by_place: dict[tuple[str, str], list[IndexCreate | AoiChange]] = {}
    for change in plan.all_changes:
        aoi_id = "" if isinstance(change, IndexCreate) else change.aoi_id
        by_place.setdefault((_spec_file(change.where), aoi_id), []).append(change)
    blocks = []
    for (file, aoi_id), changes in by_place.items():
        first = changes[0]
        if isinstance(first, IndexCreate):
            lines = tuple(_index_line(i) for i in changes if isinstance(i, IndexCreate))
            blocks.append(Block(file, "", "@@ custom indices @@", lines))
            continue
        name = first.aoi_name
        head = f"@@ {clean(name)[:_NAME_CHARS]}"
        if names[name] != 1:
            head += f" ({short(aoi_id)})"
        # Two visualizations of one index on an AOI are told apart by their id.
        shared: Counter[tuple[str, str, str]] = Counter(
            (c.kind, c.index_name, c.mode)
            for c in changes
            if isinstance(c, Rollback | LegendChange)
        )
        lines = tuple(_change_line(c, usual, shared) for c in changes)
        blocks.append(Block(file, aoi_id, head + " @@", lines))
    # Files declaring custom indices first, and in each file its indices before its AOIs, so
    # the list reads in the order apply works (and is cut from the end, like any list).
    first_files = {b.file for b in blocks if not b.aoi_id}
    blocks.sort(key=lambda b: (b.file not in first_files, b.file, bool(b.aoi_id), b.head, b.aoi_id))
    return blocks


def _change_line(
    c: IndexCreate | AoiChange,
    usual: tuple[str | None, str | None],
    shared: Counter[tuple[str, str, str]],
) -> str:
    """One change's line; ``usual`` are the reasons left unsaid (rollbacks', legends'), and
    ``shared`` counts the rollbacks and legends of each (kind, index, mode) on the AOI."""
    if isinstance(c, Create):
        return _create_line(c)
    if isinstance(c, Rollback):
        return _rollback_line(c, usual[0], by_id=shared[c.kind, c.index_name, c.mode] > 1)
    if isinstance(c, LegendChange):
        return _legend_line(c, usual[1], by_id=shared[c.kind, c.index_name, c.mode] > 1)
    return _index_line(c)


def _spec_file(where: str) -> str:
    """The file of a 'path:line:column' position."""
    path, _, rest = where.rpartition(":")
    path, _, line = path.rpartition(":")
    return path if path and line.isdigit() and rest.isdigit() else where


def _create_line(c: Create) -> str:
    if c.assets is None:
        over = "all assets"
    elif not c.assets:
        over = "no assets"
    else:
        names = [clean(a.name)[:_NAME_CHARS] for a in c.assets]
        over = ", ".join(names[:_ASSETS_LISTED])
        if len(names) > _ASSETS_LISTED:
            over = f"{', '.join(names[: _ASSETS_LISTED - 1])} … ({len(names)} assets)"
    resolution = f", resolution {c.resolution:g}" if c.resolution is not None else ""
    new = " (new custom index)" if c.new_index is not None else ""
    legends = ""
    if c.legends:
        modes = dict.fromkeys(clean(t.mode) for t in c.legends)
        legends = f" · custom legends: {', '.join(modes)}"
    return f"{CREATE} {clean(c.index_name)[:_NAME_CHARS]}{new} over {over}{resolution}{legends}"


def _index_line(i: IndexCreate) -> str:
    expression = clean(i.expression)
    if len(expression) > _EXPRESSION_CHARS:
        expression = expression[: _EXPRESSION_CHARS - 1] + "…"
    return (
        f"{CREATE} {clean(i.name)[:_NAME_CHARS]}: {expression}, type {clean(i.expression_type)}, "
        f"rescale {rescale_text(i)}, colormap {clean(i.colormap)[:_NAME_CHARS]}"
    )


def _legend_line(lc: LegendChange, usual: str | None, *, by_id: bool) -> str:
    viz = f" {short(lc.visualization_id)}" if by_id else ""
    contents = dict.fromkeys(_legend_words(t.content) for t in lc.legends)
    what = ", ".join(contents) if len(contents) == 1 else f"{len(contents)} different legends"
    why = (
        "" if lc.reason == usual else f" · {_LEGEND_REASON_WORDS.get(lc.reason, clean(lc.reason))}"
    )
    return (
        f"{SET_LEGEND} {clean(lc.index_name)[:_NAME_CHARS]}{viz} {clean(lc.mode)} "
        f"{_dates_words(lc.dates)}: {what}{why}"
    )


def _legend_words(content: LegendContent) -> str:
    """A legend in a few words: '2 ranges', '5 bins, 2 ranges', '5 auto-computed bins'."""
    if not content.items:
        return f"{content.bins} auto-computed bins"
    ranges = plural(len(content.items), "range")
    return ranges if content.bins is None else f"{plural(content.bins, 'bin')}, {ranges}"


def _dates_words(dates: Sequence[str]) -> str:
    """'2024-05-06, 2024-08-19', or the first, the last and a count when there are many."""
    shown = [clean(d) for d in dates]
    if len(shown) > _DATES_LISTED:
        return f"{shown[0]} … {shown[-1]} ({len(shown)} dates)"
    return ", ".join(shown)


def _rollback_line(r: Rollback, usual: str | None, *, by_id: bool) -> str:
    when = _dates_words(r.dates)
    viz = f" {short(r.visualization_id)}" if by_id else ""
    why = "" if r.reason == usual else f" · {_REASON_WORDS.get(r.reason, clean(r.reason))}"
    return f"{ROLLBACK} {clean(r.index_name)[:_NAME_CHARS]}{viz} {clean(r.mode)} {when}{why}"


def _dominant_reason(plan: Plan) -> str | None:
    """The reason most rollbacks have: the change list leaves it unsaid."""
    reasons = Counter(r.reason for r in plan.rollbacks)
    return reasons.most_common(1)[0][0] if reasons else None


def _dominant_legend_reason(plan: Plan) -> str | None:
    """The reason most legend changes have: the change list leaves it unsaid."""
    reasons = Counter(lc.reason for lc in plan.legends)
    return reasons.most_common(1)[0][0] if reasons else None


def reasons(plan: Plan) -> list[str]:
    """'Why the rollbacks: …' and 'Why the legends: …', for the lines above the list."""
    return [why for why in (_rollback_reasons(plan), _legend_reasons(plan)) if why]


def _rollback_reasons(plan: Plan) -> str:
    """Why the rollbacks: each reason said once, with how many rollbacks have it; the lines
    of the change list mark every reason but the commonest."""
    reasons: Counter[str] = Counter(r.reason for r in plan.rollbacks)
    usual = _dominant_reason(plan) or ""
    return _why("rollbacks", "rollback", reasons, usual, REASON_TEXT, _REASON_WORDS)


def _legend_reasons(plan: Plan) -> str:
    """Why the custom legends, as ``_rollback_reasons`` says why the rollbacks."""
    reasons: Counter[str] = Counter(lc.reason for lc in plan.legends)
    usual = _dominant_legend_reason(plan) or ""
    return _why("legends", "legend", reasons, usual, LEGEND_REASON_TEXT, _LEGEND_REASON_WORDS)


def _why(
    what: str,
    one: str,
    reasons: Counter[str],
    usual: str,
    texts: dict[str, str],
    words: dict[str, str],
) -> str:
    """'Why the WHAT: …', each reason's sentence once with its count; '' without any."""
    if not reasons:
        return ""
    if len(reasons) == 1:
        only = texts.get(usual, clean(usual))
        count = reasons[usual]
        return f"Why the {what}: {only} ({'all ' if count > 1 else ''}{plural(count, one)})."
    said = []
    for reason, count in sorted(reasons.items(), key=lambda rc: (rc[0] != usual, -rc[1])):
        text = texts.get(reason, clean(reason))
        tag = "unmarked" if reason == usual else f"`{words.get(reason, clean(reason))}`"
        said.append(f"{tag}: {text} (**{count:,}**)")
    return f"Why the {what}: " + " · ".join(said) + "."


def listing(listed: Sequence[Block], blocks: Sequence[Block]) -> list[str]:
    """One ``diff`` block per spec file, every change a line under its AOI (or the custom
    indices); ``blocks`` is the whole list, of which ``listed`` may be the beginning."""
    totals: Counter[tuple[str, bool]] = Counter()
    for block in blocks:
        totals[block.file, not block.aoi_id] += len(block.lines)
    by_file: dict[str, list[Block]] = {}
    for block in listed:
        by_file.setdefault(block.file, []).append(block)
    parts = []
    for file, file_blocks in by_file.items():
        body = "".join(line + "\n" for b in file_blocks for line in (b.head, *b.lines))
        fence = fence_for(body)
        said = []
        indices = sum(len(b.lines) for b in file_blocks if not b.aoi_id)
        if indices:
            said.append(f"{_of(indices, totals[file, True], custom_indices)} to create")
        on_aois = [b for b in file_blocks if b.aoi_id]
        if on_aois:
            changes = sum(len(b.lines) for b in on_aois)
            count = _of(changes, totals[file, False], lambda n: plural(n, "change"))
            said.append(f"{count} on {plural(len({b.aoi_id for b in on_aois}), 'AOI')}")
        summary = f"<code>{html.escape(clean(file)[:200])}</code>: {', '.join(said)}"
        parts.append(
            f"<details open><summary>{summary}</summary>\n\n{fence}diff\n{body}{fence}\n</details>"
        )
    return parts


def _of(shown: int, total: int, words: Callable[[int], str]) -> str:
    """'3 changes', or '3 of 10 changes' when only some are shown."""
    return words(shown) if shown == total else f"{shown:,} of {words(total)}"


def on_what(blocks: Sequence[Block]) -> str:
    """' on 2 AOIs', ' on custom indices and 1 AOI': where some blocks' changes are."""
    aois = len({b.aoi_id for b in blocks if b.aoi_id})
    where = (["custom indices"] if any(not b.aoi_id for b in blocks) else []) + (
        [plural(aois, "AOI")] if aois else []
    )
    return f" on {' and '.join(where)}"


def cut_files(listed: Sequence[Block], left: Sequence[Block]) -> str:
    """'the rest of specs/a.yaml: 30 AOIs, 90 changes; specs/b.yaml: …' for what is left."""
    files: dict[str, list[Block]] = {}
    for block in left:
        files.setdefault(block.file, []).append(block)
    partly = {b.file for b in listed}
    said = []
    for file, cut in list(files.items())[:_MAX_FILES_NAMED]:
        indices = sum(len(b.lines) for b in cut if not b.aoi_id)
        on_aois = [b for b in cut if b.aoi_id]
        counts = [custom_indices(indices)] if indices else []
        if on_aois:
            counts.append(plural(len({b.aoi_id for b in on_aois}), "AOI"))
            counts.append(plural(sum(len(b.lines) for b in on_aois), "change"))
        what = ", ".join(counts)
        name = code_span(clean(file)[:200])
        said.append(f"{'the rest of ' if file in partly else ''}{name}: {what}")
    more = len(files) - _MAX_FILES_NAMED
    if more > 0:
        said.append(f"and {plural(more, 'more spec file')}")
    return "; ".join(said)
