"""The plan as a pull-request comment (markdown), and a failure as one."""

from __future__ import annotations

import dataclasses
import html
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler.core.drift import Drift
from reconciler.core.plan import Plan, PlanWarning
from reconciler.errors import ConfigError, ReconcilerError, SpecError
from reconciler.render.changelist import (
    Block,
    blocks_of,
    cut_files,
    listing,
    on_what,
    reasons,
    split,
    whole_aois,
)
from reconciler.render.layout import (
    MAX_FOOTER_TARGETS,
    MAX_UP_TO_DATE_NAMES,
    OPEN_DETAILS_UP_TO,
    SET_LEGEND,
    WARNING,
    Group,
    Laid,
    custom_indices,
    failure_message,
    group_items,
    groups_of,
    ignored_by_rule,
    lay_out,
    length,
    no_changes,
    safe_url,
    scope_line,
    selectors_lines,
    short,
    summary_counts,
    symbols,
    warning_item,
    widest_key,
)
from reconciler.render.mdsafe import code_span, fence_for, safe_link
from reconciler.text import clean, plural

log = logging.getLogger(__name__)

#: GitHub refuses issue and pull-request comments longer than this.
GITHUB_COMMENT_LIMIT = 65_536
#: Below this, not even the summary and the truncation note are guaranteed to fit.
MIN_MARKDOWN_CHARS = 2_048


# --- markdown ---------------------------------------------------------------------------------

#: Every plan comment ends with this hidden marker (``<!-- reconciler-plan:ID -->`` with an id),
#: so a pipeline can find the comment it posted before and update it instead of adding one.
COMMENT_MARKER = "reconciler-plan"
_COMMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")
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
    """The details of one AOI's changes: a summary line and one diff block per change."""

    group: Group
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

    Reading order: a heading with the totals; the warnings that explain many changes at once
    (the state has no records, new imagery); every change as one line in a ``diff`` block per
    spec file, the custom indices to create first (under ``@@ custom indices @@``), then under
    a ``@@ AOI @@`` line per AOI (``+`` create, ``!`` roll back, ``~`` set a custom legend),
    with the reasons for rollbacks and legends said once above; then the details of the
    changes, by AOI; AOIs with nothing to change; selectors; undeclared visualizations an
    ignore rule covers; the warnings (``*``), collapsed; a footer; and the hidden
    ``comment_marker(comment_id)``.

    When that is too long, the details go first (from the end, by AOI), then the warnings,
    and only then lines of the change list, by whole AOIs from the end; a note under the
    heading says exactly what is missing and where the whole plan is (``details_url``, e.g.
    the CI job keeping its summary and the plan). The heading, the top warnings, the note and
    the marker always stay. Length is counted in UTF-16 code units, never less than the
    characters GitHub or any JavaScript client counts.

    Raises ``ConfigError`` if ``max_chars`` is below ``MIN_MARKDOWN_CHARS`` or the comment id
    is not usable (see ``comment_marker``).
    """
    if max_chars < MIN_MARKDOWN_CHARS:
        raise ConfigError(
            f"markdown output needs room for at least {MIN_MARKDOWN_CHARS} characters "
            f"(got {max_chars}) to always carry the summary"
        )
    marker = comment_marker(comment_id)
    groups = groups_of(plan)
    sections = [_md_section(g) for g in groups if g.changes]
    blocks = blocks_of(plan)
    warnings = [_md_warning(w) for g in groups for w in g.warnings]
    small = len(plan.all_changes) <= OPEN_DETAILS_UP_TO
    fixed = _MdFixed(plan, marker, details_url, groups, max_chars, small)
    lines = sum(len(b.lines) for b in blocks)
    shown = _Shown(lines, len(sections), len(warnings))

    def build(s: _Shown) -> str:
        return _md_assemble(fixed, blocks, sections, warnings, s)

    def fits(s: _Shown) -> bool:
        return length(build(s)) < max_chars

    if fits(shown):
        return build(shown)
    # Cut the details first, then the warnings, and only then the change list itself.
    shown.details = _largest(len(sections), lambda n: fits(shown.but(details=n)))
    if not fits(shown):
        shown.warnings = _largest(len(warnings), lambda n: fits(shown.but(warnings=n)))
    if not fits(shown):
        shown.lines = whole_aois(blocks, _largest(lines, lambda n: fits(shown.but(lines=n))))
    # The note's figures change length with the counts, so the searches above are only nearly
    # monotonic: step back until the result really fits.
    while not fits(shown) and (shown.details or shown.warnings or shown.lines):
        if shown.details:
            shown.details -= 1
        elif shown.warnings:
            shown.warnings -= 1
        else:
            shown.lines -= 1
    if not fits(shown):
        fixed.minimal = True  # hostile names in the fixed parts: keep only what must stay
    log.info("markdown plan cut to fit in %d characters", max_chars)
    return build(shown)


@dataclass
class _Shown:
    """How much of each cuttable part a comment shows: lines of the change list (the first
    ones), AOIs with details, warnings."""

    lines: int
    details: int
    warnings: int

    def but(self, **counts: int) -> _Shown:
        return dataclasses.replace(self, **counts)


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
    groups: list[Group]
    max_chars: int
    small: bool  # few enough changes to show their details expanded
    minimal: bool = False


def _md_assemble(
    fixed: _MdFixed,
    blocks: list[Block],
    sections: list[_MdSection],
    warnings: list[str],
    shown: _Shown,
) -> str:
    """The comment showing ``shown`` of the change list, the details and the warnings."""
    plan = fixed.plan
    parts = [f"### reconciler plan: {_md_heading_counts(plan)}"]
    note = _md_note(fixed, blocks, sections, warnings, shown)
    if note:
        parts.append(note)
    parts += _md_top_warnings(plan)
    if not plan.has_changes:
        parts.append(no_changes(plan, markdown=True))
    elif not fixed.minimal:
        said = symbols(plan)
        # '~' only where it occurs, so plans without custom legends read as they always did.
        shown_symbols = [m for m in said if m != SET_LEGEND or plan.legends]
        parts.append(" · ".join(f"`{m}` {said[m]}" for m in shown_symbols))
        parts += reasons(plan)
    listed, left = split(blocks, shown.lines)
    parts += listing(listed, blocks)
    if left:
        changes = sum(len(b.lines) for b in left)
        parts.append(
            f"… and {plural(changes, 'more change')}{on_what(left)}, not listed here: "
            "see the note at the top."
        )
    if shown.details and not fixed.minimal:
        parts.append(_md_all_details(sections[: shown.details], len(sections), small=fixed.small))
    if not fixed.minimal:
        quiet = _md_quiet(fixed.groups)
        if quiet:
            parts.append(quiet)
        if plan.selectors:
            parts.append(_md_selectors(plan))
        if plan.ignored:
            parts.append(_md_ignored(plan))
    if shown.warnings and not fixed.minimal:
        parts.append(_md_warnings(plan, warnings[: shown.warnings]))
    parts.append(_md_footer(plan) + "\n" + fixed.marker)
    return "\n\n".join(parts) + "\n"


def _md_top_warnings(plan: Plan) -> list[str]:
    """The warnings that explain many changes at once, with the counts, and the AOIs the
    plan could not read: never cut."""
    parts = []
    scope = scope_line(plan, lambda text: code_span(clean(text)[:200]))
    if scope:
        parts.append(f"> [!NOTE]\n> {scope}")
    left_out = plan.unreadable
    if left_out:
        shown = left_out[:MAX_UP_TO_DATE_NAMES]
        names = ", ".join(code_span(clean(w.aoi_name)[:100]) for w in shown)
        more = len(left_out) - len(shown)
        them = "it" if len(left_out) == 1 else "them"
        parts.append(
            f"> [!CAUTION]\n> This plan is incomplete: {plural(len(left_out), 'AOI')} could "
            f"not be read (the API refused to show {them}), so nothing is planned for {them}: "
            f"{names}{f' and {more} more' if more > 0 else ''}. See the warnings."
        )
    parts += [
        f"> [!IMPORTANT]\n> {html.escape(clean(w.message)[:1000])}"
        for w in plan.warnings
        if w.kind in ("state", "owned")
    ]
    followed = sum(w.kind == "new-assets" for w in plan.warnings)
    if followed:
        parts.append(
            f"> [!NOTE]\n> New imagery: {plural(followed, 'visualization')} over all of an "
            "AOI's assets will be created beside the one made before it arrived (the API has no "
            "delete; see the warnings)."
        )
    return parts


def _md_heading_counts(plan: Plan) -> str:
    if plan.has_changes:
        return summary_counts(plan)
    s = plan.summary()
    counts = f"{plural(s['warning'], 'warning')}, {s['unchanged']:,} unchanged"
    if s["ignored"]:
        counts += f", {s['ignored']:,} ignored"
    differ = sum(w.kind == "index-differs" for w in plan.warnings)
    if differ:
        verb = "differs" if differ == 1 else "differ"
        return f"nothing to change, {custom_indices(differ)} {verb} ({counts})"
    return f"no changes ({counts})"


def _md_section(g: Group) -> _MdSection:
    items = group_items(g, warnings=False)
    key_width = widest_key(items)
    blocks = []
    for item in items:
        laid = lay_out(item, key_width, indent=2)
        blocks.append("\n".join(_diff_lines(item.marker, laid)))
    return _MdSection(g, tuple(blocks), fence_for("\n".join(blocks)))


def _md_details(section: _MdSection, shown: Sequence[str], *, is_open: bool) -> str:
    g = section.group
    counts = html.escape(g.counts(warnings=False))
    if g.kind == "indices":
        summary = f"Custom indices: {counts}"
    else:
        summary = (
            f"<code>{html.escape(clean(g.aoi_name))}</code> "
            f"(<code>{html.escape(short(g.aoi_id))}</code>): {counts}"
        )
    body = "\n\n".join(shown) + "\n"
    missing = len(section.items) - len(shown)
    of = "of the custom indices" if g.kind == "indices" else "of this AOI"
    more = f"\n\n… and {plural(missing, 'more change')} {of}, not shown" if missing else ""
    # The blank line after </summary> is what makes GitHub render the fence as markdown.
    tag = "<details open>" if is_open else "<details>"
    fence = section.fence
    return f"{tag}<summary>{summary}</summary>\n\n{fence}diff\n{body}{fence}{more}\n</details>"


def _md_all_details(shown: Sequence[_MdSection], total: int, *, small: bool) -> str:
    """Each AOI's changes in full, with their spec positions: open for a small plan, else
    behind one summary line."""
    sections = "\n\n".join(_md_details(s, s.items, is_open=True) for s in shown)
    if small:
        return "Details, with the spec position of each change:\n\n" + sections
    count = _md_sections_words(shown)
    if len(shown) < total:
        # Sections are cut from the end, so the custom indices (first) are never the ones cut.
        aois = sum(s.group.kind != "indices" for s in shown)
        count = f"{aois:,} of {total - (len(shown) - aois):,} AOIs"
        if aois < len(shown):
            count = f"the custom indices and {count}"
    return (
        f"<details><summary>Details of the changes ({count}), with the spec position of "
        f"each</summary>\n\n{sections}\n\n</details>"
    )


def _md_quiet(groups: list[Group]) -> str:
    """AOIs planned with nothing to change, and AOIs not planned at all: those a selector no
    longer matches (their warnings say more), counted apart rather than as '0 unchanged'."""
    quiet = [g for g in groups if not g.changes and g.summary is not None]
    # Not planned: AOIs a selector no longer matches (an unreadable one is said at the top).
    gone = [
        g
        for g in groups
        if not g.changes
        and g.summary is None
        and g.aoi_id
        and not any(w.kind == "unreadable" for w in g.warnings)
    ]
    lines = []
    if quiet:
        if len(quiet) > MAX_UP_TO_DATE_NAMES:
            other = " other" if len(quiet) < len(groups) else ""
            lines.append(f"Nothing to change in {len(quiet)}{other} AOIs.")
        else:
            names = ", ".join(
                f"{code_span(clean(g.aoi_name)[:100])} ({g.unchanged} unchanged)" for g in quiet
            )
            lines.append(f"Nothing to change in: {names}.")
    if gone:
        label = "No longer matched by a selector, so not planned (see the warnings)"
        if len(gone) > MAX_UP_TO_DATE_NAMES:
            lines.append(f"{label}: {len(gone)} AOIs.")
        else:
            names = ", ".join(code_span(clean(g.aoi_name)[:100]) for g in gone)
            lines.append(f"{label}: {names}.")
    return "\n\n".join(lines)


def _md_ignored(plan: Plan) -> str:
    rules = ignored_by_rule(plan)
    lines = [
        f"- **{count}** undeclared, ignored by rule at {code_span(clean(rule)[:200])}"
        + (f" ({code_span(clean(reason)[:200])})" if reason else "")
        for rule, reason, count in rules[:_MAX_RULES_SHOWN]
    ]
    more = len(rules) - _MAX_RULES_SHOWN
    if more > 0:
        lines.append(f"- and {plural(more, 'more rule')}")
    return "Ignored (not declared, left alone on purpose):\n" + "\n".join(lines)


def _md_warnings(plan: Plan, shown: list[str]) -> str:
    body = "\n\n".join(shown) + "\n"
    fence = fence_for(body)
    hidden = len(plan.warnings) - len(shown)
    more = f"\n\n… and {plural(hidden, 'more warning')}, not shown" if hidden else ""
    head = f"{plural(len(plan.warnings), 'warning')}: apply does not act on these"
    return f"<details><summary>{head}</summary>\n\n{fence}text\n{body}{fence}{more}\n</details>"


def _md_warning(w: PlanWarning) -> str:
    laid = lay_out(warning_item(w, with_aoi=True), widest_key([warning_item(w)]), indent=2)
    lines = [laid.comment] if laid.comment else []
    lines.append(f"{WARNING} {laid.title[0]}")
    lines += [f"    {line}" for line in laid.title[1:]]
    lines += [f"      {line}".rstrip() for line in laid.fields]
    return "\n".join(lines)


def _diff_lines(marker: str, laid: Laid) -> list[str]:
    """Every line of a change starts with its marker so GitHub colours the whole block."""
    lines = [laid.comment] if laid.comment else []
    lines.append(f"{marker} {laid.title[0]}")
    lines += [f"{marker}   {line}" for line in laid.title[1:]]
    lines += [f"{marker}     {line}".rstrip() for line in laid.fields]
    return lines


def _md_note(
    fixed: _MdFixed,
    blocks: list[Block],
    sections: list[_MdSection],
    warnings: list[str],
    shown: _Shown,
) -> str:
    """What a cut comment leaves out, and where the whole plan is; '' when nothing is cut."""
    missing = []
    listed, left = split(blocks, shown.lines)
    cut_changes = bool(left)
    if cut_changes:
        changes = sum(len(b.lines) for b in left)
        total = sum(len(b.lines) for b in blocks)
        missing.append(
            f"{changes:,} of {total:,} change{'' if total == 1 else 's'} "
            f"({cut_files(listed, left)})"
        )
    if shown.details < len(sections):
        missing.append(f"the details of {_md_sections_words(sections[shown.details :])}")
    if shown.warnings < len(warnings):
        missing.append(plural(len(warnings) - shown.warnings, "warning"))
    if not missing:
        return ""
    if fixed.details_url:
        see = (
            f"[The whole plan]({safe_link(fixed.details_url)}) is in the CI job: its summary "
            "and the saved plan; or run"
        )
    else:
        # Nothing says where this ran or whether the plan was saved: no promise about a job.
        see = "`reconciler show` shows a saved plan in full, or run"
    limit = (
        f"GitHub's limit of {GITHUB_COMMENT_LIMIT:,} characters"
        if fixed.max_chars == GITHUB_COMMENT_LIMIT
        else f"{fixed.max_chars:,} characters"
    )
    kind = "WARNING" if cut_changes else "NOTE"
    every = "" if cut_changes else " Every change is listed."
    return (
        f"> [!{kind}]\n"
        f"> This comment is cut to fit {limit}. Not shown: {', '.join(missing)}.{every} "
        f"The counts above are complete. {see} `reconciler plan` to see everything."
    )


def _md_sections_words(sections: Sequence[_MdSection]) -> str:
    """'3 AOIs', 'the custom indices and 2 AOIs': what some detail sections are about."""
    aois = sum(s.group.kind != "indices" for s in sections)
    words = ["the custom indices"] if aois < len(sections) else []
    return " and ".join(words + ([plural(aois, "AOI")] if aois or not words else []))


def _md_selectors(plan: Plan) -> str:
    """Collapsed, and bounded in size whatever the number of selectors and AOIs."""
    count = plural(len(plan.selectors), "selector")
    body = "".join(line + "\n" for line in selectors_lines(plan))
    fence = fence_for(body)
    return f"<details><summary>{count}</summary>\n\n{fence}text\n{body}{fence}\n</details>"


def _md_footer(plan: Plan) -> str:
    bits = []
    if plan.api_url:
        bits.append(f"compared with {code_span(safe_url(plan.api_url))}")
    if plan.targets:
        names = [code_span(clean(t)[:100]) for t in plan.targets[:MAX_FOOTER_TARGETS]]
        more = len(plan.targets) - len(names)
        bits.append("targets: " + ", ".join(names) + (f" and {more} more" if more else ""))
    bits.append("`reconciler plan --format json` shows every field")
    return "<sub>" + " · ".join(bits) + "</sub>"


# --- drift ------------------------------------------------------------------------------------

#: Hidden last line of a drift report, so a pipeline finds the issue or note it posted.
DRIFT_MARKER = "<!-- reconciler-drift -->"


def render_drift_markdown(
    plan: Plan,
    drift: Drift,
    *,
    max_chars: int = GITHUB_COMMENT_LIMIT,
    details_url: str | None = None,
) -> str:
    """``reconciler drift --format markdown``: an issue body or job summary, under
    ``max_chars``. Findings that do not fit are counted, never the status or the counts."""
    counts = ", ".join(f"{n:,} {kind}" for kind, n in drift.counts().items() if n) or "nothing"
    head = f"### reconciler drift: {drift.status} ({counts})"
    lines = [
        f"- **{f.kind}** "
        + (f"{code_span(clean(f.aoi_name)[:100])}: " if f.aoi_id else "")
        + f"{html.escape(clean(f.what)[:300])}: {html.escape(clean(f.why)[:300])}"
        + (f" ({code_span(clean(f.where)[:200])})" if f.where else "")
        for f in drift.findings
    ]
    see = f" [The run]({safe_link(details_url)}) has the whole plan." if details_url else ""
    meaning = {
        "in-sync": "The live API matches the specs.",
        "pending": "Merged specs are not applied yet: the apply job after a merge does that.",
        "moved": "The world changed under the specs: review, then plan and apply (or change "
        "the specs to what exists).",
        "unhealthy": "Declared visualizations ended failed: fix them in the Pixxel console.",
    }[drift.status]

    def build(n: int) -> str:
        more = f"\n- … and {plural(len(lines) - n, 'more finding')}" if n < len(lines) else ""
        body = "\n".join(lines[:n]) + more
        parts = [head, meaning + see, body] if lines else [head, meaning + see]
        return "\n\n".join(parts) + f"\n\n{DRIFT_MARKER}\n"

    return build(_largest(len(lines), lambda n: length(build(n)) < max_chars))


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
        clean(line) for line in failure_message(error).split("\n")
    ]

    def build(n: int) -> str:
        body = "\n".join(lines[:n]) + "\n"
        fence = fence_for(body)
        more = f"\n\n… and {plural(len(lines) - n, 'more problem')}" if n < len(lines) else ""
        parts = [head, f"{fence}text\n{body}{fence}{more}"]
        if hint:
            parts.append(hint)
        return "\n\n".join(parts) + "\n\n" + marker + "\n"

    n = _largest(len(lines), lambda k: length(build(k)) < max_chars)
    return build(n)
