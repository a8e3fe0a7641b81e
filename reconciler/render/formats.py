"""Plan renderers: the plan as a reviewer reads it (text, markdown) or a machine does (json).

Renderers only read a ``Plan``; they never touch the network, files or the terminal, and they
return one string. Order is the plan's own (the planner sorts): changes are only grouped by AOI,
in order of first appearance in ``plan.aois``, and within an AOI shown as creates, rollbacks,
then warnings.

Everything shown comes from the API or the specs, so it is untrusted text: control characters
are escaped before they reach a terminal (no escape-code injection, no bidi tricks), and in
markdown names go into code spans, fences and HTML that they cannot break out of.

    from reconciler.render.formats import FORMATS, render
    text = render(plan, "text", color=True)
"""

from __future__ import annotations

import html
import json
import logging
import re
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from reconciler.core import planfile
from reconciler.core.plan import (
    REASON_TEXT,
    AoiSummary,
    Create,
    Plan,
    PlanWarning,
    Rollback,
)
from reconciler.core.planfile import FORMAT_VERSION
from reconciler.errors import (
    ApiError,
    ConfigError,
    Problem,
    ReconcilerError,
    SpecError,
)
from reconciler.text import clean, clean_lines, plural

__all__ = [
    "COMMENT_MARKER",
    "FORMATS",
    "GITHUB_COMMENT_LIMIT",
    "MIN_MARKDOWN_CHARS",
    "comment_marker",
    "failure_document",
    "render",
    "render_failure_json",
    "render_failure_markdown",
    "render_github_error",
    "render_json",
    "render_markdown",
    "render_text",
    "render_validation_github",
    "render_validation_json",
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
_OPEN_DETAILS_UP_TO = 30
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
    "no-match": "a selector matches no AOI",
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
            parts.append(plural(len(self.warnings), "warning"))
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
        fields.append(("assets", tuple(f"{clean(a.name)} ({clean(a.date)})" for a in c.assets)))
    if c.resolution is not None:
        fields.append(("resolution", f"{c.resolution:g}"))
    for i, t in enumerate(c.rollbacks):
        key = "rollbacks" if i == 0 else ""
        fields.append((key, (f"{clean(t.mode)}:", *(clean(d) for d in t.dates))))
    if c.rollbacks:
        # Said once, because a reviewer will otherwise expect PATCHes that will not happen.
        fields.append(("", "only if it turns out to exist already; a new one starts auto-computed"))
    return _Item(_CREATE, f"create {clean(c.index_name)} visualization", tuple(fields), c.where)


def _rollback_item(r: Rollback) -> _Item:
    fields: list[tuple[str, _Value]] = [
        ("visualization", clean(r.visualization_id)),
        ("mode", clean(r.mode)),
        ("dates", tuple(clean(d) for d in r.dates)),
        ("reason", REASON_TEXT.get(r.reason, clean(r.reason))),
    ]
    if r.detail:
        fields.append(("detail", clean(r.detail)))
    title = f"roll back {clean(r.index_name)} legends to auto-computed"
    return _Item(_ROLLBACK, title, tuple(fields), r.where)


def _warning_item(w: PlanWarning, *, with_aoi: bool = False) -> _Item:
    # The planner's message is a whole sentence that already says what kind of warning it is;
    # the kind in words is only the fallback for a plan without one.
    title = clean(w.message) or _WARNING_KIND_TEXT.get(w.kind, clean(w.kind))
    if with_aoi and w.aoi_id:
        title = f"{clean(w.aoi_name)} ({_short(w.aoi_id)}): {title}"
    fields: tuple[tuple[str, _Value], ...] = ()
    if w.visualization_id and w.visualization_id not in w.message:
        fields = (("visualization", clean(w.visualization_id)),)
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
    comment = f"# spec: {clean(item.where)}" if item.where else None
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
        # Warnings about no AOI in particular (a selector that matches none) come first.
        title = f"AOI {clean(g.aoi_name)} ({_short(g.aoi_id)})" if g.aoi_id else "Specs"
        header = f"{title}: {g.counts()}"
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
            names = tuple(f"{clean(g.aoi_name)} ({g.unchanged} unchanged)" for g in quiet)
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

    if plan.ignored:
        out.append("")
        for rule, reason, count in _ignored_by_rule(plan):
            line = f"{count} undeclared, ignored by rule at {clean(rule)}"
            wrapped = _wrap_text(line + (f" ({clean(reason)})" if reason else ""), _WIDTH)
            out += wrapped[:1] + [
                f"  {part}" for part in _wrap_text(" ".join(wrapped[1:]), _WIDTH - 2)
            ]

    out += ["", style("Plan:", bold=True) + " " + _summary_counts(plan) + "."]
    return "\n".join(out) + "\n"


def _ignored_by_rule(plan: Plan) -> list[tuple[str, str | None, int]]:
    """(rule position, reason, how many it covers), in the plan's order of rules."""
    counts: dict[tuple[str, str | None], int] = {}
    for item in plan.ignored:
        key = (item.rule, item.reason)
        counts[key] = counts.get(key, 0) + 1
    return [(rule, reason, n) for (rule, reason), n in counts.items()]


# --- markdown ---------------------------------------------------------------------------------

#: Every plan comment ends with this hidden marker (``<!-- reconciler-plan:ID -->`` with an id),
#: so a pipeline can find the comment it posted before and update it instead of adding one.
COMMENT_MARKER = "reconciler-plan"
_COMMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")
#: In markdown a rollback is marked '!', which GitHub's diff highlighting colours as a change
#: ('~' would stay uncoloured); tfcmt does the same with Terraform's in-place updates.
_MD_ROLLBACK = "!"
#: The markdown ignore summary names at most this many rules, then counts the rest.
_MAX_RULES_SHOWN = 10


def comment_marker(comment_id: str | None = None) -> str:
    """The hidden line that identifies a plan comment: ``<!-- reconciler-plan[:ID] -->``.

    Raises ``ConfigError`` for an id that could break out of an HTML comment (letters, digits
    and ``._/-`` only, at most 64).
    """
    if comment_id is None:
        return f"<!-- {COMMENT_MARKER} -->"
    if not _COMMENT_ID.fullmatch(comment_id):
        raise ConfigError(
            f"comment id {comment_id!r}: use letters, digits, '.', '_', '/' or '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return f"<!-- {COMMENT_MARKER}:{comment_id} -->"


@dataclass(frozen=True)
class _MdSection:
    """The changes of one AOI: a summary line and one diff block per change."""

    group: _Group
    items: tuple[str, ...]
    fence: str


def render_markdown(
    plan: Plan,
    *,
    max_chars: int = GITHUB_COMMENT_LIMIT,
    comment_id: str | None = None,
    details_url: str | None = None,
) -> str:
    """Render ``plan`` as a pull-request comment, kept strictly shorter than ``max_chars``.

    Reading order: a heading with the totals; the changes of each AOI in a ``diff`` block
    (``+`` create, ``!`` roll back; expanded when the whole plan is small, one collapsed block
    per AOI otherwise); AOIs with nothing to change, counted; undeclared visualizations an
    ignore rule covers, counted per rule; the warnings, collapsed; a footer; and the hidden
    ``comment_marker(comment_id)``.

    When that is too long, warnings go first (from the end), then changes (from the end, also
    within an AOI), and a note under the heading says exactly what is missing and where the
    whole plan is (``details_url``, e.g. the CI job keeping it as an artifact). The heading,
    the note and the marker always survive. Length is counted in UTF-16 code units, never less
    than the characters GitHub or any JavaScript client counts.

    Raises ``ConfigError`` if ``max_chars`` is below ``MIN_MARKDOWN_CHARS`` or the comment id
    is not usable (see ``comment_marker``).
    """
    if max_chars < MIN_MARKDOWN_CHARS:
        raise ConfigError(
            f"markdown output needs room for at least {MIN_MARKDOWN_CHARS} characters "
            f"(got {max_chars}) to always carry the summary"
        )
    marker = comment_marker(comment_id)
    groups = _groups(plan)
    sections = [_md_section(g) for g in groups if g.changes]
    warnings = [_md_warning(w) for g in groups for w in g.warnings]
    total = sum(len(section.items) for section in sections)
    is_open = total <= _OPEN_DETAILS_UP_TO
    fixed = _MdFixed(plan, marker, details_url, groups, max_chars)

    def build(n_changes: int, n_warnings: int) -> str:
        return _md_assemble(fixed, sections, warnings, n_changes, n_warnings, is_open=is_open)

    def fits(text: str) -> bool:
        return _length(text) < max_chars

    out = build(total, len(warnings))
    if fits(out):
        return out
    # Changes come before warnings: warnings are shown only once every change fits.
    if fits(build(total, 0)):
        n_changes, n_warnings = total, _largest(len(warnings), lambda n: fits(build(total, n)))
    else:
        n_changes, n_warnings = _largest(total, lambda n: fits(build(n, 0))), 0
    out = build(n_changes, n_warnings)
    # The note's figures change length with the counts, so the search above is only nearly
    # monotonic: step back until the result really fits.
    while not fits(out) and (n_changes or n_warnings):
        if n_warnings:
            n_warnings -= 1
        else:
            n_changes -= 1
        out = build(n_changes, n_warnings)
    if not fits(out):
        fixed.minimal = True  # hostile names in the fixed parts: keep only what must stay
        out = build(0, 0)
    log.info("markdown plan truncated to fit in %d characters", max_chars)
    return out


def _largest(upper: int, ok: Callable[[int], bool]) -> int:
    """The largest n in [0, upper] with ok(n), for an ``ok`` true up to some point."""
    low, high = 0, upper
    while low < high:
        mid = (low + high + 1) // 2
        if ok(mid):
            low = mid
        else:
            high = mid - 1
    return low


@dataclass
class _MdFixed:
    """The parts of a comment that never depend on how much room is left."""

    plan: Plan
    marker: str
    details_url: str | None
    groups: list[_Group]
    max_chars: int
    minimal: bool = False


def _md_assemble(
    fixed: _MdFixed,
    sections: list[_MdSection],
    warnings: list[str],
    n_changes: int,
    n_warnings: int,
    *,
    is_open: bool,
) -> str:
    """The comment showing the first ``n_changes`` changes and ``n_warnings`` warnings."""
    plan = fixed.plan
    parts = [f"### reconciler plan: {_md_heading_counts(plan)}"]
    total = sum(len(s.items) for s in sections)
    hidden_warnings = len(warnings) - n_warnings
    if n_changes < total or hidden_warnings:
        parts.append(_md_note(sections, n_changes, total, hidden_warnings, fixed))
    if not plan.has_changes:
        parts.append("No changes: the live API already matches the specs.")
    elif not fixed.minimal:
        parts.append(
            f"`+` {_LEGEND[_CREATE]} · `{_MD_ROLLBACK}` {_LEGEND[_ROLLBACK]} "
            "(`# spec:` where the specs declare it)"
        )
    left = n_changes
    for section in sections:
        if left <= 0:
            break
        shown = section.items[:left]
        left -= len(shown)
        parts.append(_md_details(section, shown, is_open=is_open))
    if not fixed.minimal:
        quiet = _md_quiet(fixed.groups)
        if quiet:
            parts.append(quiet)
        if plan.selectors:
            parts.append(_md_selectors(plan))
        if plan.ignored:
            parts.append(_md_ignored(plan))
    if n_warnings:
        parts.append(_md_warnings(plan, warnings[:n_warnings]))
    parts.append(_md_footer(plan) + "\n" + fixed.marker)
    return "\n\n".join(parts) + "\n"


def _md_heading_counts(plan: Plan) -> str:
    if plan.has_changes:
        return _summary_counts(plan)
    s = plan.summary()
    counts = f"{plural(s['warning'], 'warning')}, {s['unchanged']:,} unchanged"
    if s["ignored"]:
        counts += f", {s['ignored']:,} ignored"
    return f"no changes ({counts})"


def _md_section(g: _Group) -> _MdSection:
    items = _group_items(g, warnings=False)
    key_width = _key_width(items)
    blocks = []
    for item in items:
        marker = _MD_ROLLBACK if item.marker == _ROLLBACK else item.marker
        laid = _lay_out(item, key_width, indent=2)
        blocks.append("\n".join(_diff_lines(marker, laid)))
    return _MdSection(g, tuple(blocks), _md_fence_for("\n".join(blocks)))


def _md_details(section: _MdSection, shown: Sequence[str], *, is_open: bool) -> str:
    g = section.group
    summary = (
        f"<code>{html.escape(clean(g.aoi_name))}</code> "
        f"(<code>{html.escape(_short(g.aoi_id))}</code>): "
        f"{html.escape(g.counts(warnings=False))}"
    )
    body = "\n\n".join(shown) + "\n"
    missing = len(section.items) - len(shown)
    more = f"\n\n… and {plural(missing, 'more change')} of this AOI, not shown" if missing else ""
    # The blank line after </summary> is what makes GitHub render the fence as markdown.
    tag = "<details open>" if is_open else "<details>"
    fence = section.fence
    return f"{tag}<summary>{summary}</summary>\n\n{fence}diff\n{body}{fence}{more}\n</details>"


def _md_quiet(groups: list[_Group]) -> str:
    """AOIs planned with nothing to change, and AOIs not planned at all: those a selector no
    longer matches (their warnings say more), counted apart rather than as '0 unchanged'."""
    quiet = [g for g in groups if not g.changes and g.summary is not None]
    gone = [g for g in groups if not g.changes and g.summary is None and g.aoi_id]
    lines = []
    if quiet:
        if len(quiet) > _MAX_UP_TO_DATE_NAMES:
            other = " other" if len(quiet) < len(groups) else ""
            lines.append(f"Nothing to change in {len(quiet)}{other} AOIs.")
        else:
            names = ", ".join(
                f"{_md_code(clean(g.aoi_name)[:100])} ({g.unchanged} unchanged)" for g in quiet
            )
            lines.append(f"Nothing to change in: {names}.")
    if gone:
        label = "No longer matched by a selector, so not planned (see the warnings)"
        if len(gone) > _MAX_UP_TO_DATE_NAMES:
            lines.append(f"{label}: {len(gone)} AOIs.")
        else:
            names = ", ".join(_md_code(clean(g.aoi_name)[:100]) for g in gone)
            lines.append(f"{label}: {names}.")
    return "\n\n".join(lines)


def _md_ignored(plan: Plan) -> str:
    rules = _ignored_by_rule(plan)
    lines = [
        f"- **{count}** undeclared, ignored by rule at {_md_code(clean(rule)[:200])}"
        + (f" ({_md_code(clean(reason)[:200])})" if reason else "")
        for rule, reason, count in rules[:_MAX_RULES_SHOWN]
    ]
    more = len(rules) - _MAX_RULES_SHOWN
    if more > 0:
        lines.append(f"- and {plural(more, 'more rule')}")
    return "Ignored (not declared, left alone on purpose):\n" + "\n".join(lines)


def _md_warnings(plan: Plan, shown: list[str]) -> str:
    body = "\n\n".join(shown) + "\n"
    fence = _md_fence_for(body)
    hidden = len(plan.warnings) - len(shown)
    more = f"\n\n… and {plural(hidden, 'more warning')}, not shown" if hidden else ""
    head = f"{plural(len(plan.warnings), 'warning')}: apply does not act on these"
    return f"<details><summary>{head}</summary>\n\n{fence}text\n{body}{fence}{more}\n</details>"


def _md_warning(w: PlanWarning) -> str:
    laid = _lay_out(_warning_item(w, with_aoi=True), _key_width([_warning_item(w)]), indent=2)
    lines = [laid.comment] if laid.comment else []
    lines.append(f"{_WARNING} {laid.title[0]}")
    lines += [f"    {line}" for line in laid.title[1:]]
    lines += [f"      {line}".rstrip() for line in laid.fields]
    return "\n".join(lines)


def _diff_lines(marker: str, laid: _Laid) -> list[str]:
    """Every line of a change starts with its marker so GitHub colours the whole block."""
    lines = [laid.comment] if laid.comment else []
    lines.append(f"{marker} {laid.title[0]}")
    lines += [f"{marker}   {line}" for line in laid.title[1:]]
    lines += [f"{marker}     {line}".rstrip() for line in laid.fields]
    return lines


def _md_note(
    sections: list[_MdSection], n_changes: int, total: int, warnings: int, fixed: _MdFixed
) -> str:
    missing = []
    if n_changes < total:
        left, partial, whole = n_changes, 0, 0
        for section in sections:
            if left >= len(section.items):
                left -= len(section.items)
            elif left > 0:
                partial, left = 1, 0
            else:
                whole += 1
        where = []
        if partial:
            where.append("part of 1 AOI")
        if whole:
            where.append(("all of " if partial else "") + plural(whole, "AOI"))
        missing.append(
            f"{total - n_changes:,} of {total:,} change{'' if total == 1 else 's'} "
            f"({' and '.join(where)})"
        )
    if warnings:
        missing.append(plural(warnings, "warning"))
    if fixed.details_url:
        see = f"[The full plan]({_safe_link(fixed.details_url)}) is kept with the CI job, or run"
    else:
        # Nothing says where this ran or whether the plan was saved: no promise about a job.
        see = "`reconciler show` shows a saved plan in full, or run"
    limit = (
        f"GitHub's limit of {GITHUB_COMMENT_LIMIT:,} characters"
        if fixed.max_chars == GITHUB_COMMENT_LIMIT
        else f"{fixed.max_chars:,} characters"
    )
    return (
        "> [!WARNING]\n"
        f"> This comment is cut to fit {limit}. "
        f"Not shown: {' and '.join(missing)}. The counts above are complete. {see} "
        "`reconciler plan` to see everything."
    )


def _md_selectors(plan: Plan) -> str:
    """Collapsed, and bounded in size whatever the number of selectors and AOIs."""
    count = plural(len(plan.selectors), "selector")
    body = "".join(line + "\n" for line in _selector_lines(plan))
    fence = _md_fence_for(body)
    return f"<details><summary>{count}</summary>\n\n{fence}text\n{body}{fence}\n</details>"


def _md_footer(plan: Plan) -> str:
    bits = []
    if plan.api_url:
        bits.append(f"compared with {_md_code(_safe_url(plan.api_url))}")
    if plan.targets:
        names = [_md_code(clean(t)[:100]) for t in plan.targets[:_MAX_FOOTER_TARGETS]]
        more = len(plan.targets) - len(names)
        bits.append("targets: " + ", ".join(names) + (f" and {more} more" if more else ""))
    bits.append("`reconciler plan --format json` shows every field")
    return "<sub>" + " · ".join(bits) + "</sub>"


def _safe_link(url: str) -> str:
    """A URL for a markdown link target: http(s) only, nothing that ends the link early."""
    cleaned = _safe_url(url)
    if not cleaned.startswith(("https://", "http://")):
        return "#"
    return "".join(f"%{ord(ch):02X}" if ch in "()<> `[]\\" else ch for ch in cleaned)


def _md_code(text: str) -> str:
    """A code span ``text`` cannot end early: backticks, markup, @mentions all stay literal."""
    if not text:
        return "` `"
    # A span closes at the first backtick run of exactly its own length, so use a length no
    # run inside has.
    runs = {len(run) for run in _BACKTICK_RUN.findall(text)}
    ticks = next(n for n in range(1, len(text) + 2) if n not in runs)
    # CommonMark strips one space from each end when both are present, so pad symmetrically.
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{'`' * ticks}{pad}{text}{pad}{'`' * ticks}"


def _md_fence_for(body: str) -> str:
    """A code fence that outruns any backtick run inside ``body``: names cannot close it."""
    longest = max((len(run) for run in _BACKTICK_RUN.findall(body)), default=0)
    return "`" * max(3, longest + 1)


_BACKTICK_RUN = re.compile(r"`+")


# --- json ---------------------------------------------------------------------------------------


def render_json(plan: Plan) -> str:
    """Render ``plan`` as the documented, versioned JSON format (docs/plan-json.md).

    The saved plan's own text: ``planfile.loads(render_json(plan)) == plan``.
    """
    return planfile.dumps(plan)


# --- dispatch -----------------------------------------------------------------------------------

#: The ``--format`` choices, in the order ``--help`` should list them.
FORMATS: dict[str, Callable[..., str]] = {
    "text": render_text,
    "markdown": render_markdown,
    "json": render_json,
}


def render(
    plan: Plan,
    fmt: str,
    *,
    color: bool = False,
    comment_id: str | None = None,
    details_url: str | None = None,
) -> str:
    """Render ``plan`` in format ``fmt`` (a key of ``FORMATS``); ``color`` only affects text,
    ``comment_id`` and ``details_url`` only markdown (see ``render_markdown``).

    Raises ``ConfigError`` for an unknown format.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown plan format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "text":
        return render_text(plan, color=color)
    if fmt == "markdown":
        return render_markdown(plan, comment_id=comment_id, details_url=details_url)
    return FORMATS[fmt](plan)


# --- small helpers ------------------------------------------------------------------------------


def _selector_lines(plan: Plan) -> list[str]:
    """Each selector: where, criteria, the AOIs it matches; those it no longer matches."""
    lines: list[str] = []
    for summary in plan.selectors[:_MAX_SELECTORS]:
        head = clean(summary.where) if summary.where else "no longer in the specs"
        names = _names(a.name for a in summary.matched)
        matched = f"{plural(len(summary.matched), 'AOI')}: {names}" if names else "no AOI"
        lines += _indented(f"{head} ({clean(summary.key)}): {matched}")
        if summary.unmatched:
            dropped = _names(a.name for a in summary.unmatched)
            lines += _indented(f"  no longer matched since the last apply: {dropped}")
    hidden = len(plan.selectors) - _MAX_SELECTORS
    if hidden > 0:
        lines.append(f"… and {plural(hidden, 'more selector')} (see --format json)")
    return lines


def _indented(text: str) -> list[str]:
    """``text`` wrapped to the plan's width, continuation lines indented under it."""
    lead = len(text) - len(text.lstrip())
    lines = _wrap_text(text, _WIDTH - 6)
    return [lines[0]] + [" " * (lead + 4) + line for line in lines[1:]]


def _names(names: Iterable[str]) -> str:
    shown = [clean(n) for n in names]
    more = len(shown) - _MAX_SELECTOR_AOIS
    return ", ".join(shown[:_MAX_SELECTOR_AOIS]) + (f", … ({more} more)" if more > 0 else "")


def _summary_counts(plan: Plan) -> str:
    s = plan.summary()
    counts = (
        f"{s['create']:,} to create, {s['rollback']:,} to roll back, "
        f"{plural(s['warning'], 'warning')}, {s['unchanged']:,} unchanged"
    )
    return counts + (f", {s['ignored']:,} ignored" if s["ignored"] else "")


def _source_line(plan: Plan) -> str:
    if not plan.api_url:
        return ""
    line = f"Compared the specs with {_safe_url(plan.api_url)}"
    if plan.targets:
        shown = ", ".join(clean(t) for t in plan.targets[:_MAX_FOOTER_TARGETS])
        more = len(plan.targets) - _MAX_FOOTER_TARGETS
        line += f" (only {shown}{f' and {more} more' if more > 0 else ''})"
    return line + "."


def _short(aoi_id: str) -> str:
    return clean(aoi_id[:_SHORT_ID])


def _safe_url(url: str) -> str:
    """The API URL without any ``user:password@`` part: plans get pasted into public places."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return clean(urlunsplit(parts._replace(netloc=netloc)))[:200]
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


def render_validation_github(problems: Sequence[Problem], notes: Sequence[Problem]) -> str:
    """The ``validate --format github`` output: one GitHub Actions workflow command per problem.

    ``::error file=…,line=…,col=…::message`` puts each problem on the pull request's diff, at its
    line; notes become ``::notice``. Values are escaped as the Actions toolkit does, so a message
    with a newline, ``%``, ``:`` or ``,`` cannot end the command early or inject another one.
    """
    lines = [_github_command("error", p) for p in problems]
    lines += [_github_command("notice", n) for n in notes]
    return "".join(line + "\n" for line in lines)


def render_github_error(message: str) -> str:
    """One ``::error::`` line for a failure that has no spec position (e.g. the API)."""
    return _github_command("error", Problem(message)) + "\n"


def _github_command(kind: str, problem: Problem) -> str:
    where = problem.where
    props = f" title={_gh_property('reconciler validate')}"
    if where is not None:
        props = (
            f" file={_gh_property(where.path)},line={where.line},col={where.column},"
            f"title={_gh_property('reconciler validate')}"
        )
    return f"::{kind}{props}::{_gh_data(clean_lines(problem.message))}"


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


# --- failures: every format says what went wrong ------------------------------------------------

#: The heading of a failure comment, by the error's kind.
_FAILURE_TITLES = {
    "spec": "the specs have problems",
    "api": "the Pixxel API could not be read",
    "plan-file": "the saved plan cannot be used",
    "state": "the state could not be used",
    "config": "the configuration is wrong",
}
_FAILURE_HINTS = {
    "spec": "Fix them and push again; `reconciler validate` finds most of them offline, "
    "`reconciler validate --online` all of them.",
    "api": "Nothing was planned. Run the job again; if it keeps failing, check the API's "
    "status, its URL and the API key.",
    "plan-file": "Make a new plan with `reconciler plan --out plan.json`.",
    "state": "Nothing was planned.",
    "config": "Nothing was planned.",
}


def failure_document(error: ReconcilerError, command: str) -> dict[str, Any]:
    """The JSON a ``--format json`` command prints instead of its result when it fails.

    ``{"format_version", "command", "error": {"kind", "message", "problems", "api"}}``, see
    docs/plan-json.md; spec problems keep their path, line and column.
    """
    problems = list(error.problems) if isinstance(error, SpecError) else []
    api = None
    if isinstance(error, ApiError):
        api = {
            "method": error.method or None,
            "url": _safe_url(error.url) if error.url else None,
            "status": error.status,
            "code": error.code,
        }
    message = _failure_message(error)
    return {
        "format_version": FORMAT_VERSION,
        "command": command,
        "error": {
            "kind": error.kind,
            "message": message,
            "problems": [p.to_dict() for p in problems],
            "api": api,
        },
    }


def render_failure_json(error: ReconcilerError, command: str) -> str:
    """``failure_document`` as printed."""
    return json.dumps(failure_document(error, command), indent=2) + "\n"


def render_failure_markdown(
    error: ReconcilerError,
    command: str,
    *,
    comment_id: str | None = None,
    max_chars: int = GITHUB_COMMENT_LIMIT,
) -> str:
    """A comment saying why ``reconciler COMMAND`` failed, with every spec problem's position.

    It carries the same hidden marker as a plan comment, so the pipeline replaces the last plan
    with it (and the next good plan replaces it). Problems that do not fit are counted.
    """
    marker = comment_marker(comment_id)
    title = _FAILURE_TITLES.get(error.kind, "an error stopped it")
    problems = list(error.problems) if isinstance(error, SpecError) else []
    if problems:
        title = f"{plural(len(problems), 'problem')} in the specs"
    head = f"### reconciler {command} failed: {title}"
    hint = _FAILURE_HINTS.get(error.kind, "")
    lines = [clean(str(p)) for p in problems] or [
        clean(line) for line in _failure_message(error).split("\n")
    ]

    def build(n: int) -> str:
        body = "\n".join(lines[:n]) + "\n"
        fence = _md_fence_for(body)
        more = f"\n\n… and {plural(len(lines) - n, 'more problem')}" if n < len(lines) else ""
        parts = [head, f"{fence}text\n{body}{fence}{more}"]
        if hint:
            parts.append(hint)
        return "\n\n".join(parts) + "\n\n" + marker + "\n"

    n = _largest(len(lines), lambda k: _length(build(k)) < max_chars)
    return build(n)


def _failure_message(error: ReconcilerError) -> str:
    if isinstance(error, SpecError):
        return f"{plural(len(error.problems), 'problem')} in the specs"
    return str(error)
