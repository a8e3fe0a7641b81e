"""Plan renderers: the plan as a reviewer reads it (text, markdown) or a machine does (json).

Renderers only read a ``Plan``; they never touch the network, files or the terminal, and they
return one string. Order is the plan's own (the planner sorts): changes are only grouped by AOI,
in order of first appearance in ``plan.aois``, and within an AOI shown as creates, rollbacks,
then warnings.

Everything shown comes from the API or the specs, so it is untrusted text: control characters
are escaped before they reach a terminal (no escape-code injection, no bidi tricks), and in
markdown names go into code spans, fences and HTML that they cannot break out of.

    from reconciler.render import FORMATS, render
    text = render(plan, "text", color=True)
"""

from __future__ import annotations

import html
import json
import logging
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from reconciler.errors import ConfigError, Problem
from reconciler.plan import REASON_TEXT, AoiSummary, Create, Plan, PlanWarning, Rollback

__all__ = [
    "FORMATS",
    "GITHUB_COMMENT_LIMIT",
    "MIN_MARKDOWN_CHARS",
    "render",
    "render_json",
    "render_markdown",
    "render_text",
]

log = logging.getLogger(__name__)

#: GitHub refuses issue and pull-request comments longer than this.
GITHUB_COMMENT_LIMIT = 65_536
#: Below this, not even the summary and the truncation note are guaranteed to fit.
MIN_MARKDOWN_CHARS = 2_048

#: Lines are wrapped to this width; a plan is read in terminals, CI logs and PR comments.
_WIDTH = 100
#: An AOI is named by its name and this many leading characters of its id.
_SHORT_ID = 8
#: Text output lists AOIs without changes by name up to this many, then only counts them.
_MAX_UP_TO_DATE_NAMES = 10
#: Markdown shows the per-AOI sections expanded when the whole plan has at most this many changes.
_OPEN_DETAILS_UP_TO = 10
#: The markdown footer names at most this many targets.
_MAX_FOOTER_TARGETS = 10

_CREATE, _ROLLBACK, _WARNING = "+", "~", "!"
_COLORS = {_CREATE: "green", _ROLLBACK: "yellow", _WARNING: "magenta"}
_LEGEND = {
    _CREATE: "create a visualization",
    _ROLLBACK: "roll legends back to auto-computed",
    _WARNING: "warning: apply changes nothing here",
}
_WARNING_KIND_TEXT = {
    "undeclared": "not declared in any spec",
    "failed": "failed",
    "partial_success": "partially succeeded",
    "creating": "still being created",
    "new-assets": "new assets arrived: a new visualization over all of them is created",
    "unmatched": "no longer matched by a selector",
}
#: The selectors section names at most this many selectors, and this many AOIs of each.
_MAX_SELECTORS = 20
_MAX_SELECTOR_AOIS = 10


# --- shared: grouping and the items every format shows -----------------------------------------


@dataclass
class _Group:
    """Everything the plan says about one AOI, in the plan's order."""

    aoi_id: str
    aoi_name: str
    summary: AoiSummary | None = None
    creates: list[Create] = field(default_factory=list)
    rollbacks: list[Rollback] = field(default_factory=list)
    warnings: list[PlanWarning] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return len(self.creates) + len(self.rollbacks)

    @property
    def unchanged(self) -> int:
        return self.summary.unchanged if self.summary else 0

    def counts(self, *, warnings: bool = True) -> str:
        """'1 to create, 2 to roll back, 1 warning, 3 unchanged', leaving out zeros."""
        parts = []
        if self.creates:
            parts.append(f"{len(self.creates)} to create")
        if self.rollbacks:
            parts.append(f"{len(self.rollbacks)} to roll back")
        if self.warnings and warnings:
            parts.append(_plural(len(self.warnings), "warning"))
        if self.unchanged or not parts:
            parts.append(f"{self.unchanged} unchanged")
        return ", ".join(parts)


def _groups(plan: Plan) -> list[_Group]:
    """Group by AOI in order of first appearance in ``plan.aois``.

    A change for an AOI missing from ``plan.aois`` would be a planner bug, but hiding it
    would be worse: such AOIs follow, in order of first appearance among the changes.
    """
    groups: dict[str, _Group] = {}
    for a in plan.aois:
        groups.setdefault(a.aoi_id, _Group(a.aoi_id, a.aoi_name, summary=a))
    for c in plan.creates:
        groups.setdefault(c.aoi_id, _Group(c.aoi_id, c.aoi_name)).creates.append(c)
    for r in plan.rollbacks:
        groups.setdefault(r.aoi_id, _Group(r.aoi_id, r.aoi_name)).rollbacks.append(r)
    for w in plan.warnings:
        groups.setdefault(w.aoi_id, _Group(w.aoi_id, w.aoi_name)).warnings.append(w)
    return list(groups.values())


#: A field value is free text (wrapped at spaces) or a list (wrapped between items).
_Value = str | tuple[str, ...]


@dataclass(frozen=True)
class _Item:
    """One change or warning, format-neutral: a marker, a title, aligned fields, a position."""

    marker: str
    title: str
    fields: tuple[tuple[str, _Value], ...]
    where: str | None


def _create_item(c: Create) -> _Item:
    fields: list[tuple[str, _Value]] = []
    if c.assets is None:
        fields.append(("assets", "all assets (API default)"))
    elif not c.assets:
        fields.append(("assets", "none"))
    else:
        fields.append(("assets", tuple(f"{_clean(a.name)} ({_clean(a.date)})" for a in c.assets)))
    if c.resolution is not None:
        fields.append(("resolution", f"{c.resolution:g}"))
    for i, t in enumerate(c.rollbacks):
        key = "rollbacks" if i == 0 else ""
        fields.append((key, (f"{_clean(t.mode)}:", *(_clean(d) for d in t.dates))))
    if c.rollbacks:
        # Said once, because a reviewer will otherwise expect PATCHes that will not happen.
        fields.append(("", "only if it turns out to exist already; a new one starts auto-computed"))
    return _Item(_CREATE, f"create {_clean(c.index_name)} visualization", tuple(fields), c.where)


def _rollback_item(r: Rollback) -> _Item:
    fields: list[tuple[str, _Value]] = [
        ("visualization", _clean(r.visualization_id)),
        ("mode", _clean(r.mode)),
        ("dates", tuple(_clean(d) for d in r.dates)),
        ("reason", REASON_TEXT.get(r.reason, _clean(r.reason))),
    ]
    if r.detail:
        fields.append(("detail", _clean(r.detail)))
    title = f"roll back {_clean(r.index_name)} legends to auto-computed"
    return _Item(_ROLLBACK, title, tuple(fields), r.where)


def _warning_item(w: PlanWarning, *, with_aoi: bool = False) -> _Item:
    # The planner's message is a whole sentence that already says what kind of warning it is;
    # the kind in words is only the fallback for a plan without one.
    title = _clean(w.message) or _WARNING_KIND_TEXT.get(w.kind, _clean(w.kind))
    if with_aoi:
        title = f"{_clean(w.aoi_name)} ({_short(w.aoi_id)}): {title}"
    fields: tuple[tuple[str, _Value], ...] = ()
    if w.visualization_id and w.visualization_id not in w.message:
        fields = (("visualization", _clean(w.visualization_id)),)
    return _Item(_WARNING, title, fields, w.where)


def _group_items(g: _Group, *, warnings: bool = True) -> list[_Item]:
    items = [_create_item(c) for c in g.creates] + [_rollback_item(r) for r in g.rollbacks]
    if warnings:
        items += [_warning_item(w) for w in g.warnings]
    return items


def _key_width(items: Iterable[_Item]) -> int:
    """One key column for the whole output, so every block lines up the same way."""
    return max((len(k) for item in items for k, _ in item.fields), default=0)


@dataclass(frozen=True)
class _Laid:
    """An item broken into lines, before indentation and markers are added."""

    comment: str | None
    title: list[str]
    fields: list[str]


def _lay_out(item: _Item, key_width: int, indent: int) -> _Laid:
    """Wrap and align one item; ``indent`` is the column the title text starts at."""
    title = _wrap_text(item.title, _WIDTH - indent) or [""]
    value_width = max(_WIDTH - indent - 2 - key_width - 2, 20)
    lines: list[str] = []
    for key, value in item.fields:
        if isinstance(value, str):
            wrapped = _wrap_text(value, value_width)
        else:
            wrapped = _wrap_list(value, value_width)
        for i, part in enumerate(wrapped or [""]):
            lines.append(f"{(key if i == 0 else ''):<{key_width}}  {part}".rstrip())
    comment = f"# spec: {_clean(item.where)}" if item.where else None
    return _Laid(comment, title, lines)


# --- text ---------------------------------------------------------------------------------------


def render_text(plan: Plan, *, color: bool = False) -> str:
    """Render ``plan`` as a Terraform-like diff for a terminal or a CI log.

    Grouped by AOI; ``+`` create, ``~`` roll back, ``!`` warning; each with the spec position
    that declares it; ends with ``Plan: N to create, N to roll back, N warnings, N unchanged.``
    ANSI colour codes appear only when ``color`` is true (the CLI decides, from the terminal
    and ``--no-color``); otherwise the output is plain text.
    """
    groups = _groups(plan)
    active = [g for g in groups if g.changes or g.warnings]
    items = [item for g in active for item in _group_items(g)]
    width = _key_width(items)

    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if color else text

    out: list[str] = []
    source = _source_line(plan)
    if source:
        out += [source, ""]
    if plan.has_changes:
        out.append("reconciler apply would make these changes. Symbols:")
    else:
        out.append("No changes. The live API already matches the specs; apply would do nothing.")
        if plan.warnings:
            out.append("Warnings, which apply does not act on:")
    used = {item.marker for item in items}
    if plan.has_changes:
        out += [f"  {style(m, fg=_COLORS[m])} {_LEGEND[m]}" for m in _LEGEND if m in used]

    for g in active:
        out.append("")
        header = f"AOI {_clean(g.aoi_name)} ({_short(g.aoi_id)}): {g.counts()}"
        out.append(style(header, bold=True))
        for item in _group_items(g):
            laid = _lay_out(item, width, indent=4)
            out.append("")
            if laid.comment:
                out.append("  " + style(laid.comment, dim=True))
            out.append(f"  {style(item.marker, fg=_COLORS[item.marker])} {laid.title[0]}")
            out += [f"    {line}" for line in laid.title[1:]]
            out += [f"      {line}".rstrip() for line in laid.fields]

    quiet = [g for g in groups if not (g.changes or g.warnings)]
    if quiet:
        out.append("")
        if len(quiet) <= _MAX_UP_TO_DATE_NAMES:
            names = tuple(f"{_clean(g.aoi_name)} ({g.unchanged} unchanged)" for g in quiet)
            label = "Nothing to change in: "
            wrapped = _wrap_list(names, _WIDTH - len(label))
            out.append(label + wrapped[0])
            out += [" " * len(label) + line for line in wrapped[1:]]
        else:
            out.append(f"Nothing to change in {len(quiet)} other AOIs.")

    selector_lines = _selector_lines(plan)
    if selector_lines:
        out += ["", style("Selectors", bold=True) + " (which AOIs each one matched):"]
        out += [f"  {line}" for line in selector_lines]

    out += ["", style("Plan:", bold=True) + " " + _summary_counts(plan) + "."]
    return "\n".join(out) + "\n"


# --- markdown -----------------------------------------------------------------------------------


def render_markdown(plan: Plan, *, max_chars: int = GITHUB_COMMENT_LIMIT) -> str:
    """Render ``plan`` for a pull-request comment, kept strictly shorter than ``max_chars``.

    Layout: a heading with the totals, a table with one row per AOI, the warnings (always
    visible), then one ``<details>`` per AOI with its changes in a ``diff`` block (expanded
    when the whole plan is small, collapsed otherwise).
    When that is too long, whole AOI sections are dropped from the end (then warnings, then
    table rows) and a note under the heading says how much is missing and how to see it all.
    The heading and that note always survive. Length is counted in UTF-16 code units, which
    is never less than the character count GitHub or any JavaScript client measures.

    Raises ``ConfigError`` if ``max_chars`` is below ``MIN_MARKDOWN_CHARS``.
    """
    if max_chars < MIN_MARKDOWN_CHARS:
        raise ConfigError(
            f"markdown output needs room for at least {MIN_MARKDOWN_CHARS} characters "
            f"(got {max_chars}) to always carry the summary"
        )
    groups = _groups(plan)
    changed = [g for g in groups if g.changes]
    rows = [_md_row(g) for g in groups]
    # Warnings follow the same AOI grouping as everything else, not the planner's flat list.
    warnings = [_md_warning(w) for g in groups for w in g.warnings]
    # A small plan is shown open; a big one would bury the warnings under pages of changes.
    is_open = sum(g.changes for g in changed) <= _OPEN_DETAILS_UP_TO
    details = [_md_details(g, is_open=is_open) for g in changed]

    out = _md_assemble(plan, rows, warnings, details, note="")
    if _length(out) < max_chars:
        return out

    # Too long. Fill the room left by what always stays, reserving the longest note this plan
    # could need (every count at its maximum): table rows first, then warnings, then details.
    full = plan.summary()
    worst_note = _md_note(len(rows), len(warnings), len(changed), full["create"] + full["rollback"])
    room = max_chars - 1 - _length(_md_assemble(plan, [], [], [], worst_note))
    n_rows = _fit(rows, room, overhead=_length(_MD_TABLE_HEAD) + 3, sep=1)
    room -= _md_cost(rows[:n_rows], _length(_MD_TABLE_HEAD) + 3, 1)
    n_warnings = _fit(warnings, room, overhead=_length(_md_warnings_head(plan)) + 16, sep=1)
    room -= _md_cost(warnings[:n_warnings], _length(_md_warnings_head(plan)) + 16, 1)
    n_details = _fit(details, room, overhead=0, sep=2)

    # Second pass, normally a no-op: should the estimate above be short (a fence lengthened by
    # backticks in a name), drop more from the end until the result really fits.
    while True:
        hidden = changed[n_details:]
        note = ""
        if n_rows < len(rows) or n_warnings < len(warnings) or hidden:
            note = _md_note(
                len(rows) - n_rows,
                len(warnings) - n_warnings,
                len(hidden),
                sum(g.changes for g in hidden),
            )
        out = _md_assemble(plan, rows[:n_rows], warnings[:n_warnings], details[:n_details], note)
        if _length(out) < max_chars or not (n_rows or n_warnings or n_details):
            break
        if n_details:
            n_details -= 1
        elif n_warnings:
            n_warnings -= 1
        else:
            n_rows -= 1
    if note:
        log.info("markdown plan truncated to fit in %d characters", max_chars)
    return out


def _md_assemble(
    plan: Plan, rows: list[str], warnings: list[str], details: list[str], note: str
) -> str:
    """The comment from the parts chosen to be shown, in reading order."""
    parts = [f"### reconciler plan: {_md_heading_counts(plan)}"]
    if note:
        parts.append(note)
    if not plan.has_changes:
        parts.append("No changes: the live API already matches the specs.")
    if rows:
        parts.append(_MD_TABLE_HEAD + "\n" + "\n".join(rows))
    if warnings:
        parts.append(_md_warnings_head(plan) + "\n" + _md_fence("\n".join(warnings), "diff"))
    parts += details
    if plan.selectors:
        parts.append(_md_selectors(plan))
    parts.append(_md_footer(plan))
    return "\n\n".join(parts) + "\n"


_MD_TABLE_HEAD = (
    "| AOI | id | to create | to roll back | warnings | unchanged |\n"
    "| :-- | :-- | --: | --: | --: | --: |"
)


def _md_heading_counts(plan: Plan) -> str:
    if plan.has_changes:
        return _summary_counts(plan)
    s = plan.summary()
    return f"no changes ({_plural(s['warning'], 'warning')}, {s['unchanged']} unchanged)"


def _md_row(g: _Group) -> str:
    cells = [
        _md_code(_clean(g.aoi_name)),
        _md_code(_short(g.aoi_id)),
        str(len(g.creates)),
        str(len(g.rollbacks)),
        str(len(g.warnings)),
        str(g.unchanged),
    ]
    # GFM splits table cells on '|' even inside code spans; '\|' is the documented escape.
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _md_warnings_head(plan: Plan) -> str:
    return f"**{_plural(len(plan.warnings), 'warning')}** (apply does not act on these):"


def _md_warning(w: PlanWarning) -> str:
    laid = _lay_out(_warning_item(w, with_aoi=True), _key_width([_warning_item(w)]), indent=2)
    return "".join(line + "\n" for line in _diff_lines(_WARNING, laid))


def _md_details(g: _Group, *, is_open: bool) -> str:
    items = _group_items(g, warnings=False)
    key_width = _key_width(items)
    blocks = []
    for item in items:
        laid = _lay_out(item, key_width, indent=2)
        blocks.append("".join(line + "\n" for line in _diff_lines(item.marker, laid)))
    body = "\n".join(blocks)
    summary = (
        f"<code>{html.escape(_clean(g.aoi_name))}</code> "
        f"(<code>{html.escape(_short(g.aoi_id))}</code>): "
        f"{html.escape(g.counts(warnings=False))}"
    )
    # The blank line after </summary> is what makes GitHub render the fence as markdown.
    tag = "<details open>" if is_open else "<details>"
    return f"{tag}<summary>{summary}</summary>\n\n{_md_fence(body, 'diff')}\n</details>"


def _diff_lines(marker: str, laid: _Laid) -> list[str]:
    """Every line of a change starts with its marker so GitHub colours the whole block."""
    lines = [laid.comment] if laid.comment else []
    lines.append(f"{marker} {laid.title[0]}")
    lines += [f"{marker}   {line}" for line in laid.title[1:]]
    lines += [f"{marker}     {line}".rstrip() for line in laid.fields]
    return lines


def _md_note(rows: int, warnings: int, groups: int, changes: int) -> str:
    missing = []
    if groups:
        missing.append(f"the changes of {_plural(groups, 'AOI')} ({_plural(changes, 'change')})")
    if warnings:
        missing.append(_plural(warnings, "warning"))
    if rows:
        missing.append(f"{_plural(rows, 'row')} of the AOI table")
    return (
        f"> [!WARNING]\n> This comment is truncated to fit GitHub's comment size limit. "
        f"Not shown: {', '.join(missing)}. The totals above are complete. To see everything, "
        "run `reconciler plan` locally or `reconciler plan --format json`."
    )


def _md_selectors(plan: Plan) -> str:
    """Collapsed, and bounded in size whatever the number of selectors and AOIs."""
    count = _plural(len(plan.selectors), "selector")
    body = "".join(line + "\n" for line in _selector_lines(plan))
    return f"<details><summary>{count}</summary>\n\n{_md_fence(body, 'text')}\n</details>"


def _md_footer(plan: Plan) -> str:
    bits = []
    if plan.api_url:
        bits.append(f"compared with {_md_code(_safe_url(plan.api_url))}")
    if plan.targets:
        names = [_md_code(_clean(t)[:100]) for t in plan.targets[:_MAX_FOOTER_TARGETS]]
        more = len(plan.targets) - len(names)
        bits.append("targets: " + ", ".join(names) + (f" and {more} more" if more else ""))
    bits.append("`reconciler plan --format json` shows every field")
    return "<sub>" + " · ".join(bits) + "</sub>"


def _md_code(text: str) -> str:
    """A code span ``text`` cannot end early: backticks, markup, @mentions all stay literal."""
    if not text:
        return "` `"
    runs = {len(run) for run in text.replace("`", "\0`\0").split("\0") if run.startswith("`")}
    ticks = next(n for n in range(1, len(text) + 2) if n not in runs)
    # CommonMark strips one space from each end when both are present, so pad symmetrically.
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{'`' * ticks}{pad}{text}{pad}{'`' * ticks}"


def _md_fence(body: str, info: str) -> str:
    """A fenced block whose fence outruns any backtick run inside: names cannot close it."""
    longest, run = 0, 0
    for ch in body:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}{fence}"


def _md_cost(blocks: list[str], overhead: int, sep: int) -> int:
    """Characters ``blocks`` add to the comment: a section overhead once, ``sep`` per block."""
    if not blocks:
        return 0
    return overhead + 2 + sum(_length(b) + sep for b in blocks)


def _fit(blocks: list[str], room: int, *, overhead: int, sep: int) -> int:
    """How many leading ``blocks`` fit in ``room`` (dropping happens from the end only)."""
    used = overhead + 2  # the blank line that separates a section from the previous one
    for n, block in enumerate(blocks):
        used += _length(block) + sep
        if used > room:
            return n
    return len(blocks)


# --- json ---------------------------------------------------------------------------------------


def render_json(plan: Plan) -> str:
    """Render ``plan`` as the documented, versioned JSON format (docs/plan-json.md).

    Field order is fixed by ``Plan.to_dict``; ``Plan.from_dict(json.loads(out)) == plan``.
    """
    return json.dumps(plan.to_dict(), indent=2, sort_keys=False) + "\n"


# --- dispatch -----------------------------------------------------------------------------------

#: The ``--format`` choices, in the order ``--help`` should list them.
FORMATS: dict[str, Callable[..., str]] = {
    "text": render_text,
    "markdown": render_markdown,
    "json": render_json,
}


def render(plan: Plan, fmt: str, *, color: bool = False) -> str:
    """Render ``plan`` in format ``fmt`` (a key of ``FORMATS``); ``color`` only affects text.

    Raises ``ConfigError`` for an unknown format.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown plan format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "text":
        return render_text(plan, color=color)
    return FORMATS[fmt](plan)


# --- small helpers ------------------------------------------------------------------------------


def _selector_lines(plan: Plan) -> list[str]:
    """Each selector: where, criteria, the AOIs it matches; those it no longer matches."""
    lines: list[str] = []
    for summary in plan.selectors[:_MAX_SELECTORS]:
        head = _clean(summary.where) if summary.where else "no longer in the specs"
        names = _names(a.name for a in summary.matched)
        matched = f"{_plural(len(summary.matched), 'AOI')}: {names}" if names else "no AOI"
        lines += _indented(f"{head} ({_clean(summary.key)}): {matched}")
        if summary.unmatched:
            dropped = _names(a.name for a in summary.unmatched)
            lines += _indented(f"  no longer matched since the last apply: {dropped}")
    hidden = len(plan.selectors) - _MAX_SELECTORS
    if hidden > 0:
        lines.append(f"… and {_plural(hidden, 'more selector')} (see --format json)")
    return lines


def _indented(text: str) -> list[str]:
    """``text`` wrapped to the plan's width, continuation lines indented under it."""
    lead = len(text) - len(text.lstrip())
    lines = _wrap_text(text, _WIDTH - 6)
    return [lines[0]] + [" " * (lead + 4) + line for line in lines[1:]]


def _names(names: Iterable[str]) -> str:
    shown = [_clean(n) for n in names]
    more = len(shown) - _MAX_SELECTOR_AOIS
    return ", ".join(shown[:_MAX_SELECTOR_AOIS]) + (f", … ({more} more)" if more > 0 else "")


def _summary_counts(plan: Plan) -> str:
    s = plan.summary()
    return (
        f"{s['create']} to create, {s['rollback']} to roll back, "
        f"{_plural(s['warning'], 'warning')}, {s['unchanged']} unchanged"
    )


def _source_line(plan: Plan) -> str:
    if not plan.api_url:
        return ""
    line = f"Compared the specs with {_safe_url(plan.api_url)}"
    if plan.targets:
        shown = ", ".join(_clean(t) for t in plan.targets[:_MAX_FOOTER_TARGETS])
        more = len(plan.targets) - _MAX_FOOTER_TARGETS
        line += f" (only {shown}{f' and {more} more' if more > 0 else ''})"
    return line + "."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _short(aoi_id: str) -> str:
    return _clean(aoi_id[:_SHORT_ID])


def _clean(text: str) -> str:
    """Escape anything non-printable (ANSI escapes, newlines, bidi overrides) as ``\\xNN``.

    Names and messages come from the API and the specs; printed raw they could recolour or
    rewrite a reviewer's terminal, or break a line where the layout does not expect it.
    """
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def _safe_url(url: str) -> str:
    """The API URL without any ``user:password@`` part: plans get pasted into public places."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return _clean(urlunsplit(parts._replace(netloc=netloc)))[:200]
    except ValueError:
        return "(an unparseable URL)"


def _wrap_text(text: str, width: int) -> list[str]:
    # Dates and names are full of hyphens: never split there, nor inside a long word.
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)


def _wrap_list(items: tuple[str, ...], width: int) -> list[str]:
    """Wrap 'a, b, c' between items only, so 'Asset A (2024-05-06)' never splits."""
    lines: list[str] = []
    current = ""
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 and not item.endswith(":") else "")
        if current and len(current) + 1 + len(piece) > width:
            lines.append(current)
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    if current:
        lines.append(current)
    return lines


def _length(text: str) -> int:
    """Length in UTF-16 code units: an upper bound for every way a comment length is counted."""
    return len(text.encode("utf-16-le")) // 2


#: Version of `validate --format json` output; bump on incompatible changes.
VALIDATE_FORMAT_VERSION = 1


def render_validation_json(
    files: Sequence[str], problems: Sequence[Problem], notes: Sequence[Problem]
) -> str:
    """The ``validate --format json`` document."""
    document = {
        "format_version": VALIDATE_FORMAT_VERSION,
        "valid": not problems,
        "files": list(files),
        "problems": [p.to_dict() for p in problems],
        "notes": [n.to_dict() for n in notes],
    }
    return json.dumps(document, indent=2)
