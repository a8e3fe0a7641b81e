"""What every plan format shows, laid out once: the per-AOI groups, one item per change or
warning, the counts, and the wrapping and escaping they share."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from reconciler.core.plan import REASON_TEXT, AoiSummary, Create, Plan, PlanWarning, Rollback
from reconciler.errors import ReconcilerError, SpecError
from reconciler.text import clean, plural

#: Lines are wrapped to this width; a plan is read in terminals, CI logs and PR comments.
WIDTH = 100
#: An AOI is named by its name and this many leading characters of its id.
SHORT_ID = 8
#: Text output lists AOIs without changes by name up to this many, then only counts them.
MAX_UP_TO_DATE_NAMES = 10
#: Markdown shows the per-AOI sections expanded when the whole plan has at most this many changes.
OPEN_DETAILS_UP_TO = 30
#: The markdown footer names at most this many targets.
MAX_FOOTER_TARGETS = 10

#: One marker per meaning in every format. A rollback is '!', which GitHub's diff highlighting
#: colours as a change in a pull-request comment ('~' would stay uncoloured; tfcmt marks
#: Terraform's in-place updates the same way), so a warning is '*'.
CREATE, ROLLBACK, WARNING = "+", "!", "*"
COLORS = {CREATE: "green", ROLLBACK: "yellow", WARNING: "magenta"}
LEGEND = {
    CREATE: "create a visualization",
    ROLLBACK: "roll legends back to auto-computed",
    WARNING: "warning: apply changes nothing here",
}
WARNING_KIND_TEXT = {
    "undeclared": "not declared in any spec",
    "failed": "failed",
    "partial_success": "partially succeeded",
    "creating": "still being created",
    "new-assets": "new assets arrived: a new visualization over all of them is created",
    "unmatched": "no longer matched by a selector",
    "no-match": "a selector matches no AOI",
    "unknown-status": "in a status the API's contract does not list: not used",
    "unreadable": "could not be read (the API refused to show it): nothing is planned for it",
}
#: The selectors section names at most this many selectors, and this many AOIs of each.
MAX_SELECTORS = 20
MAX_SELECTOR_AOIS = 10


# --- shared: grouping and the items every format shows -----------------------------------------


@dataclass
class Group:
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


def groups_of(plan: Plan) -> list[Group]:
    """Group by AOI in order of first appearance in ``plan.aois``.

    A change for an AOI missing from ``plan.aois`` would be a planner bug, but hiding it
    would be worse: such AOIs follow, in order of first appearance among the changes.
    """
    groups: dict[str, Group] = {}
    for a in plan.aois:
        groups.setdefault(a.aoi_id, Group(a.aoi_id, a.aoi_name, summary=a))
    for c in plan.creates:
        groups.setdefault(c.aoi_id, Group(c.aoi_id, c.aoi_name)).creates.append(c)
    for r in plan.rollbacks:
        groups.setdefault(r.aoi_id, Group(r.aoi_id, r.aoi_name)).rollbacks.append(r)
    for w in plan.warnings:
        groups.setdefault(w.aoi_id, Group(w.aoi_id, w.aoi_name)).warnings.append(w)
    return list(groups.values())


#: A field value is free text (wrapped at spaces) or a list (wrapped between items).
Value = str | tuple[str, ...]


@dataclass(frozen=True)
class Item:
    """One change or warning, format-neutral: a marker, a title, aligned fields, a position."""

    marker: str
    title: str
    fields: tuple[tuple[str, Value], ...]
    where: str | None


def create_item(c: Create) -> Item:
    fields: list[tuple[str, Value]] = []
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
    return Item(CREATE, f"create {clean(c.index_name)} visualization", tuple(fields), c.where)


def rollback_item(r: Rollback) -> Item:
    fields: list[tuple[str, Value]] = [
        ("visualization", clean(r.visualization_id)),
        ("mode", clean(r.mode)),
        ("dates", tuple(clean(d) for d in r.dates)),
        ("reason", REASON_TEXT.get(r.reason, clean(r.reason))),
    ]
    if r.detail:
        fields.append(("detail", clean(r.detail)))
    title = f"roll back {clean(r.index_name)} legends to auto-computed"
    return Item(ROLLBACK, title, tuple(fields), r.where)


def warning_item(w: PlanWarning, *, with_aoi: bool = False) -> Item:
    # The planner's message is a whole sentence that already says what kind of warning it is;
    # the kind in words is only the fallback for a plan without one.
    title = clean(w.message) or WARNING_KIND_TEXT.get(w.kind, clean(w.kind))
    if with_aoi and w.aoi_id:
        title = f"{clean(w.aoi_name)} ({short(w.aoi_id)}): {title}"
    fields: tuple[tuple[str, Value], ...] = ()
    if w.visualization_id and w.visualization_id not in w.message:
        fields = (("visualization", clean(w.visualization_id)),)
    return Item(WARNING, title, fields, w.where)


def group_items(g: Group, *, warnings: bool = True) -> list[Item]:
    items = [create_item(c) for c in g.creates] + [rollback_item(r) for r in g.rollbacks]
    if warnings:
        items += [warning_item(w) for w in g.warnings]
    return items


def widest_key(items: Iterable[Item]) -> int:
    """One key column for the whole output, so every block lines up the same way."""
    return max((len(k) for item in items for k, _ in item.fields), default=0)


@dataclass(frozen=True)
class Laid:
    """An item broken into lines, before indentation and markers are added."""

    comment: str | None
    title: list[str]
    fields: list[str]


def lay_out(item: Item, key_width: int, indent: int) -> Laid:
    """Wrap and align one item; ``indent`` is the column the title text starts at."""
    title = wrap_text(item.title, WIDTH - indent) or [""]
    value_width = max(WIDTH - indent - 2 - key_width - 2, 20)
    lines: list[str] = []
    for key, value in item.fields:
        if isinstance(value, str):
            wrapped = wrap_text(value, value_width)
        else:
            wrapped = wrap_list(value, value_width)
        for i, part in enumerate(wrapped or [""]):
            lines.append(f"{(key if i == 0 else ''):<{key_width}}  {part}".rstrip())
    comment = f"# spec: {clean(item.where)}" if item.where else None
    return Laid(comment, title, lines)


def ignored_by_rule(plan: Plan) -> list[tuple[str, str | None, int]]:
    """(rule position, reason, how many it covers), in the plan's order of rules."""
    counts: dict[tuple[str, str | None], int] = {}
    for item in plan.ignored:
        key = (item.rule, item.reason)
        counts[key] = counts.get(key, 0) + 1
    return [(rule, reason, n) for (rule, reason), n in counts.items()]


# --- small helpers ------------------------------------------------------------------------------


def selectors_lines(plan: Plan) -> list[str]:
    """Each selector: where, criteria, the AOIs it matches; those it no longer matches."""
    lines: list[str] = []
    for summary in plan.selectors[:MAX_SELECTORS]:
        head = clean(summary.where) if summary.where else "no longer in the specs"
        names = name_list(a.name for a in summary.matched)
        matched = f"{plural(len(summary.matched), 'AOI')}: {names}" if names else "no AOI"
        lines += indented(f"{head} ({clean(summary.key)}): {matched}")
        if summary.unmatched:
            dropped = name_list(a.name for a in summary.unmatched)
            lines += indented(f"  no longer matched since the last apply: {dropped}")
    hidden = len(plan.selectors) - MAX_SELECTORS
    if hidden > 0:
        lines.append(f"… and {plural(hidden, 'more selector')} (see --format json)")
    return lines


def indented(text: str) -> list[str]:
    """``text`` wrapped to the plan's width, continuation lines indented under it."""
    lead = len(text) - len(text.lstrip())
    lines = wrap_text(text, WIDTH - 6)
    return [lines[0]] + [" " * (lead + 4) + line for line in lines[1:]]


def name_list(names: Iterable[str]) -> str:
    shown = [clean(n) for n in names]
    more = len(shown) - MAX_SELECTOR_AOIS
    return ", ".join(shown[:MAX_SELECTOR_AOIS]) + (f", … ({more} more)" if more > 0 else "")


def summary_counts(plan: Plan) -> str:
    s = plan.summary()
    counts = (
        f"{s['create']:,} to create, {s['rollback']:,} to roll back, "
        f"{plural(s['warning'], 'warning')}, {s['unchanged']:,} unchanged"
    )
    return counts + (f", {s['ignored']:,} ignored" if s["ignored"] else "")


def source_line(plan: Plan) -> str:
    if not plan.api_url:
        return ""
    line = f"Compared the specs with {safe_url(plan.api_url)}"
    if plan.targets:
        shown = ", ".join(clean(t) for t in plan.targets[:MAX_FOOTER_TARGETS])
        more = len(plan.targets) - MAX_FOOTER_TARGETS
        line += f" (only {shown}{f' and {more} more' if more > 0 else ''})"
    return line + "."


def short(aoi_id: str) -> str:
    return clean(aoi_id[:SHORT_ID])


def safe_url(url: str) -> str:
    """The API URL without any ``user:password@`` part: plans get pasted into public places."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return clean(urlunsplit(parts._replace(netloc=netloc)))[:200]
    except ValueError:
        return "(an unparseable URL)"


def wrap_text(text: str, width: int) -> list[str]:
    # Dates and names are full of hyphens: never split there, nor inside a long word.
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)


def wrap_list(items: tuple[str, ...], width: int) -> list[str]:
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


def length(text: str) -> int:
    """Length in UTF-16 code units: an upper bound for every way a comment length is counted."""
    return len(text.encode("utf-16-le")) // 2


def failure_message(error: ReconcilerError) -> str:
    if isinstance(error, SpecError):
        return f"{plural(len(error.problems), 'problem')} in the specs"
    return str(error)
