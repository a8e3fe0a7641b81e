"""The plan as a pull-request comment (markdown), and a failure as one."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler.core.plan import Plan, PlanWarning
from reconciler.errors import ConfigError, ReconcilerError, SpecError
from reconciler.render.layout import (
    CREATE,
    LEGEND,
    MAX_FOOTER_TARGETS,
    MAX_UP_TO_DATE_NAMES,
    OPEN_DETAILS_UP_TO,
    ROLLBACK,
    WARNING,
    Group,
    Laid,
    failure_message,
    group_items,
    groups_of,
    ignored_by_rule,
    lay_out,
    length,
    safe_url,
    selectors_lines,
    short,
    summary_counts,
    warning_item,
    widest_key,
)
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
    groups = groups_of(plan)
    sections = [_md_section(g) for g in groups if g.changes]
    warnings = [_md_warning(w) for g in groups for w in g.warnings]
    total = sum(len(section.items) for section in sections)
    is_open = total <= OPEN_DETAILS_UP_TO
    fixed = _MdFixed(plan, marker, details_url, groups, max_chars)

    def build(n_changes: int, n_warnings: int) -> str:
        return _md_assemble(fixed, sections, warnings, n_changes, n_warnings, is_open=is_open)

    def fits(text: str) -> bool:
        return length(text) < max_chars

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
    groups: list[Group]
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
            f"`+` {LEGEND[CREATE]} · `{_MD_ROLLBACK}` {LEGEND[ROLLBACK]} "
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
        return summary_counts(plan)
    s = plan.summary()
    counts = f"{plural(s['warning'], 'warning')}, {s['unchanged']:,} unchanged"
    if s["ignored"]:
        counts += f", {s['ignored']:,} ignored"
    return f"no changes ({counts})"


def _md_section(g: Group) -> _MdSection:
    items = group_items(g, warnings=False)
    key_width = widest_key(items)
    blocks = []
    for item in items:
        marker = _MD_ROLLBACK if item.marker == ROLLBACK else item.marker
        laid = lay_out(item, key_width, indent=2)
        blocks.append("\n".join(_diff_lines(marker, laid)))
    return _MdSection(g, tuple(blocks), _md_fence_for("\n".join(blocks)))


def _md_details(section: _MdSection, shown: Sequence[str], *, is_open: bool) -> str:
    g = section.group
    summary = (
        f"<code>{html.escape(clean(g.aoi_name))}</code> "
        f"(<code>{html.escape(short(g.aoi_id))}</code>): "
        f"{html.escape(g.counts(warnings=False))}"
    )
    body = "\n\n".join(shown) + "\n"
    missing = len(section.items) - len(shown)
    more = f"\n\n… and {plural(missing, 'more change')} of this AOI, not shown" if missing else ""
    # The blank line after </summary> is what makes GitHub render the fence as markdown.
    tag = "<details open>" if is_open else "<details>"
    fence = section.fence
    return f"{tag}<summary>{summary}</summary>\n\n{fence}diff\n{body}{fence}{more}\n</details>"


def _md_quiet(groups: list[Group]) -> str:
    """AOIs planned with nothing to change, and AOIs not planned at all: those a selector no
    longer matches (their warnings say more), counted apart rather than as '0 unchanged'."""
    quiet = [g for g in groups if not g.changes and g.summary is not None]
    gone = [g for g in groups if not g.changes and g.summary is None and g.aoi_id]
    lines = []
    if quiet:
        if len(quiet) > MAX_UP_TO_DATE_NAMES:
            other = " other" if len(quiet) < len(groups) else ""
            lines.append(f"Nothing to change in {len(quiet)}{other} AOIs.")
        else:
            names = ", ".join(
                f"{_md_code(clean(g.aoi_name)[:100])} ({g.unchanged} unchanged)" for g in quiet
            )
            lines.append(f"Nothing to change in: {names}.")
    if gone:
        label = "No longer matched by a selector, so not planned (see the warnings)"
        if len(gone) > MAX_UP_TO_DATE_NAMES:
            lines.append(f"{label}: {len(gone)} AOIs.")
        else:
            names = ", ".join(_md_code(clean(g.aoi_name)[:100]) for g in gone)
            lines.append(f"{label}: {names}.")
    return "\n\n".join(lines)


def _md_ignored(plan: Plan) -> str:
    rules = ignored_by_rule(plan)
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
    body = "".join(line + "\n" for line in selectors_lines(plan))
    fence = _md_fence_for(body)
    return f"<details><summary>{count}</summary>\n\n{fence}text\n{body}{fence}\n</details>"


def _md_footer(plan: Plan) -> str:
    bits = []
    if plan.api_url:
        bits.append(f"compared with {_md_code(safe_url(plan.api_url))}")
    if plan.targets:
        names = [_md_code(clean(t)[:100]) for t in plan.targets[:MAX_FOOTER_TARGETS]]
        more = len(plan.targets) - len(names)
        bits.append("targets: " + ", ".join(names) + (f" and {more} more" if more else ""))
    bits.append("`reconciler plan --format json` shows every field")
    return "<sub>" + " · ".join(bits) + "</sub>"


def _safe_link(url: str) -> str:
    """A URL for a markdown link target: http(s) only, nothing that ends the link early."""
    cleaned = safe_url(url)
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
        fence = _md_fence_for(body)
        more = f"\n\n… and {plural(len(lines) - n, 'more problem')}" if n < len(lines) else ""
        parts = [head, f"{fence}text\n{body}{fence}{more}"]
        if hint:
            parts.append(hint)
        return "\n\n".join(parts) + "\n\n" + marker + "\n"

    n = _largest(len(lines), lambda k: length(build(k)) < max_chars)
    return build(n)
