"""What every plan format shows, laid out once: the per-AOI groups, one item per change or
warning, the counts, and the wrapping and escaping they share."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from reconciler.core.plan import (
    LEGEND_REASON_TEXT,
    REASON_TEXT,
    AoiSummary,
    Create,
    IndexCreate,
    LegendChange,
    LegendTarget,
    Plan,
    PlanWarning,
    Rollback,
)
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
#: colours as a change in a pull-request comment (tfcmt marks Terraform's in-place updates the
#: same way), so a warning is '*'. Setting a custom legend is '~', Terraform's in-place update:
#: GitHub leaves it uncoloured, but no other character is free that reads as "set" rather than
#: as an insertion or a deletion ('<', '>', '-'), and on a terminal it has a colour of its own.
#: A custom index is created, so it is a '+' like a visualization.
CREATE, ROLLBACK, SET_LEGEND, WARNING = "+", "!", "~", "*"
COLORS = {CREATE: "green", ROLLBACK: "yellow", SET_LEGEND: "cyan", WARNING: "magenta"}
#: What each marker means, in the order the formats list them.
SYMBOLS = {
    CREATE: "create a visualization",
    ROLLBACK: "roll legends back to auto-computed",
    SET_LEGEND: "set custom legends as declared",
    WARNING: "warning: apply changes nothing here",
}
WARNING_KIND_TEXT = {
    "index-differs": "a custom index exists but differs from its declaration (the API cannot "
    "change an index)",
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

#: What a group is about: one AOI, the custom indices (which belong to no AOI), or the specs
#: as a whole (a selector that matches no AOI).
GroupKind = Literal["aoi", "indices", "specs"]


@dataclass
class Group:
    """Everything the plan says about one AOI (or the custom indices), in the plan's order."""

    aoi_id: str
    aoi_name: str
    summary: AoiSummary | None = None
    kind: GroupKind = "aoi"
    indices: list[IndexCreate] = field(default_factory=list)
    creates: list[Create] = field(default_factory=list)
    rollbacks: list[Rollback] = field(default_factory=list)
    legends: list[LegendChange] = field(default_factory=list)
    warnings: list[PlanWarning] = field(default_factory=list)
    #: In a plan of what changed, only because an earlier apply left it unfinished.
    leftover: bool = False

    @property
    def changes(self) -> int:
        return len(self.indices) + len(self.creates) + len(self.rollbacks) + len(self.legends)

    @property
    def unchanged(self) -> int:
        return self.summary.unchanged if self.summary else 0

    def counts(self, *, warnings: bool = True) -> str:
        """'1 to create, 2 to roll back, 1 legend to set, 1 warning, 3 unchanged', leaving out
        zeros."""
        parts = []
        if self.indices or self.creates:
            parts.append(f"{len(self.indices) + len(self.creates)} to create")
        if self.rollbacks:
            parts.append(f"{len(self.rollbacks)} to roll back")
        if self.legends:
            parts.append(f"{plural(len(self.legends), 'legend')} to set")
        if self.warnings and warnings:
            parts.append(plural(len(self.warnings), "warning"))
        if self.unchanged or not parts:
            parts.append(f"{self.unchanged} unchanged")
        if self.leftover:
            parts.append("left unfinished by an earlier apply")
        return ", ".join(parts)


def groups_of(plan: Plan) -> list[Group]:
    """The custom indices first (created before anything else), then by AOI in order of first
    appearance in ``plan.aois``.

    A change for an AOI missing from ``plan.aois`` would be a planner bug, but hiding it
    would be worse: such AOIs follow, in order of first appearance among the changes.
    """
    groups: dict[tuple[GroupKind, str], Group] = {}
    differs = [w for w in plan.warnings if w.kind == "index-differs"]
    if plan.indices or differs:
        # An index that differs is told beside those to create, whatever AOI it sorted near.
        groups["indices", ""] = Group("", "", kind="indices", indices=list(plan.indices))
        groups["indices", ""].warnings += differs
    leftovers = set(plan.changed_since.pending) if plan.changed_since else set()
    for a in plan.aois:
        groups.setdefault(
            ("aoi", a.aoi_id),
            Group(a.aoi_id, a.aoi_name, summary=a, leftover=a.aoi_id in leftovers),
        )

    def group(aoi_id: str, aoi_name: str) -> Group:
        if not aoi_id:  # about no AOI in particular: a selector that matches none
            return groups.setdefault(("specs", ""), Group("", "", kind="specs"))
        return groups.setdefault(("aoi", aoi_id), Group(aoi_id, aoi_name))

    for c in plan.creates:
        group(c.aoi_id, c.aoi_name).creates.append(c)
    for r in plan.rollbacks:
        group(r.aoi_id, r.aoi_name).rollbacks.append(r)
    for lc in plan.legends:
        group(lc.aoi_id, lc.aoi_name).legends.append(lc)
    for w in plan.warnings:
        if w.kind != "index-differs":
            group(w.aoi_id, w.aoi_name).warnings.append(w)
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


def index_item(i: IndexCreate) -> Item:
    fields: list[tuple[str, Value]] = [
        ("expression", clean(i.expression)),
        ("type", clean(i.expression_type)),
        ("rescale", rescale_text(i)),
        ("colormap", clean(i.colormap)),
        ("satellite", clean(i.satellite_id)),
    ]
    if i.description:
        fields.append(("description", clean(i.description)))
    return Item(CREATE, f"create custom index {clean(i.name)}", tuple(fields), i.where)


def rescale_text(i: IndexCreate) -> str:
    low, high = i.rescale
    return f"[{low}, {high}]"


def legend_value(t: LegendTarget, *, mode: bool = True, dates: bool = True) -> tuple[str, ...]:
    """'dynamic 2024-05-06, 2024-08-19: 2 ranges: -1 … 0.2 #d7191c 'Bare'; …': what one
    declared legend will be, after as much of where it applies as the reader needs; in pieces
    that wrap between ranges, never inside one."""
    lead = []
    if mode:
        lead.append(clean(t.mode))
    if dates:
        lead.append(", ".join(clean(d) for d in t.dates))
    # Only split to wrap: joined by spaces, the pieces are describe()'s own words.
    head, sep, ranges = clean(t.content.describe()).partition(": ")
    if lead:
        head = f"{' '.join(lead)}: {head}"
    if not sep:
        return (head,)
    parts = ranges.split("; ")
    return (f"{head}:", *(f"{r};" for r in parts[:-1]), parts[-1])


def create_item(c: Create) -> Item:
    fields: list[tuple[str, Value]] = []
    if c.new_index is not None:
        fields.append(("index", f"{clean(c.new_index)}: a new custom index, created first"))
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
    for i, legend in enumerate(c.legends):
        fields.append(("legends" if i == 0 else "", legend_value(legend)))
    if c.legends:
        # Unlike its rollbacks, these are set on a new visualization too: said, so a reviewer
        # expects the PUTs.
        fields.append(("", "set once it is usable, new or adopted"))
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


def legend_item(lc: LegendChange) -> Item:
    fields: list[tuple[str, Value]] = [
        ("visualization", clean(lc.visualization_id)),
        ("mode", clean(lc.mode)),
        ("dates", tuple(clean(d) for d in lc.dates)),
    ]
    if len(lc.legends) == 1:
        fields.append(("legend", legend_value(lc.legends[0], mode=False, dates=False)))
    else:
        # Dates with different legends in one PUT: each legend with the dates it is for.
        for i, legend in enumerate(lc.legends):
            fields.append(("legends" if i == 0 else "", legend_value(legend, mode=False)))
    fields.append(("reason", LEGEND_REASON_TEXT.get(lc.reason, clean(lc.reason))))
    if lc.detail:
        fields.append(("detail", clean(lc.detail)))
    title = f"set {clean(lc.index_name)} legends as declared"
    return Item(SET_LEGEND, title, tuple(fields), lc.where)


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
    items = [index_item(i) for i in g.indices] + [create_item(c) for c in g.creates]
    items += [rollback_item(r) for r in g.rollbacks] + [legend_item(lc) for lc in g.legends]
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
        if summary.elsewhere:
            matched += f" (and {summary.elsewhere:,} in other shards)"
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
    """'1 custom index to create, 3 to create, 4 to roll back, 1 legend to set, 4 warnings,
    11 unchanged, 3 ignored': the counts that every plan has always, the others when not 0."""
    s = plan.summary()
    counts = f"{s['create']:,} to create, {s['rollback']:,} to roll back"
    if s["index"]:
        counts = f"{custom_indices(s['index'])} to create, {counts}"
    if s["legend"]:
        counts += f", {plural(s['legend'], 'legend')} to set"
    counts += f", {plural(s['warning'], 'warning')}, {s['unchanged']:,} unchanged"
    return counts + (f", {s['ignored']:,} ignored" if s["ignored"] else "")


def no_changes(plan: Plan, *, markdown: bool = False) -> str:
    """The line of a plan without changes: that the API matches the specs, unless a declared
    custom index differs from the live one, which apply cannot change (the API has no index
    update) and which must not read as "matches"."""
    differ = sum(w.kind == "index-differs" for w in plan.warnings)
    since = plan.changed_since
    if not differ and since is not None and not since.everything:
        # Only what changed was read: what else is due was not looked at, so no "matches".
        return (
            "No changes in what changed since the base: applying this plan would do nothing. "
            "Whatever else is due is not this plan's: the merge job shows it, and the "
            "scheduled drift job reads every AOI."
        )
    if not differ:
        if markdown:
            return "No changes: the live API already matches the specs."
        return "No changes. The live API already matches the specs; apply would do nothing."
    which = (
        "a declared custom index differs"
        if differ == 1
        else f"{differ} declared custom indices differ"
    )
    return (
        f"Nothing apply can change, but the live API does not match the specs: {which} from "
        "the live one, and the API cannot change an index. See the warnings: change the "
        "declaration to match, or declare an index of another name."
    )


def custom_indices(count: int) -> str:
    """'1 custom index', '2 custom indices'."""
    return f"{count:,} custom {'index' if count == 1 else 'indices'}"


def symbols(plan: Plan) -> dict[str, str]:
    """``SYMBOLS``, the create marker said for what this plan creates."""
    shown = dict(SYMBOLS)
    if plan.indices:
        shown[CREATE] = (
            "create a custom index or a visualization"
            if plan.creates
            else ("create a custom index")
        )
    return shown


def source_line(plan: Plan) -> str:
    if not plan.api_url:
        return ""
    line = f"Compared the specs with {safe_url(plan.api_url)}"
    if plan.targets:
        shown = ", ".join(clean(t) for t in plan.targets[:MAX_FOOTER_TARGETS])
        more = len(plan.targets) - MAX_FOOTER_TARGETS
        line += f" (only {shown}{f' and {more} more' if more > 0 else ''})"
    return line + "."


def scope_line(plan: Plan, quote: Callable[[str], str] = clean) -> str:
    """What a plan of some of the AOIs covers: of one shard or several (``--shard``), of the
    changes since a git revision, or both; '' for a plan of every AOI.

    ``quote`` shows the untrusted parts (the revision as given, the reason): escaped for a
    terminal by default, a code span in markdown.
    """
    shard = shard_line(plan)
    since = _since_line(plan, quote)
    return f"{shard} {since}" if shard and since else shard or since


def shard_line(plan: Plan) -> str:
    """Which shards a plan covers, and those missing from a merged one; '' without shards."""
    sharding = plan.shard
    if sharding is None:
        return ""
    count, aois = sharding.count, plural(len(plan.observed), "AOI")
    if len(sharding.shards) == 1:
        return (
            f"Shard {sharding.shards[0]} of {count} (--shard {sharding.shards[0]}/{count}): "
            f"{aois}; the other shards plan the others."
        )
    merged = f"The plans of shards {_ranges(sharding.shards)} of {count}, merged: {aois}."
    if not sharding.missing:
        return merged
    return (
        f"{merged} Missing: the plan of shard{'s' if len(sharding.missing) > 1 else ''} "
        f"{_ranges(sharding.missing)}, whose AOIs are not shown."
    )


def _ranges(numbers: Sequence[int]) -> str:
    """'1-3, 5' for 1, 2, 3, 5."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


def _since_line(plan: Plan, quote: Callable[[str], str]) -> str:
    since = plan.changed_since
    if since is None:
        return ""
    base = f"{quote(since.ref)} ({quote(since.commit[:12])})"
    if since.everything:
        return (
            f"Every AOI is planned, not only what changed since {base}: {quote(since.everything)}."
        )
    planned = set(plan.targets)
    gone = [name for name in since.removed if name not in planned]
    removed = (
        f" Entries removed for {_names(gone, quote)}: nothing else declares them, and apply "
        "never deletes."
        if gone
        else ""
    )
    if not since.aois:
        read = (
            "only the custom indices it changed were read" if since.indices else "nothing was read"
        )
        return f"No AOI's declarations changed since {base}: {read}.{removed}"
    own = since.aois - len(since.pending)  # the others are an earlier apply's leftovers
    if not own:
        return (
            f"No AOI's declarations changed since {base}; apply of this plan changes nothing "
            "else. The scheduled drift job reads every AOI."
            f"{_pending(plan, quote)}{removed}"
        )
    return (
        f"Only what changed since {base} is planned: {plural(own, 'AOI')}; apply of this plan "
        f"changes nothing else. The scheduled drift job reads every AOI."
        f"{_pending(plan, quote)}{removed}"
    )


def _pending(plan: Plan, quote: Callable[[str], str]) -> str:
    """What the plan says of the AOIs an earlier apply left unfinished (``changed_since``)."""
    since = plan.changed_since
    if since is None or not since.pending:
        return ""
    names = {aoi_id: snapshot.name for aoi_id, snapshot in plan.observed.items()}
    changed = plan.affected_aois
    due = [names.get(a, a) for a in since.pending if a in changed]
    done = [names.get(a, a) for a in since.pending if a not in changed]
    said = ""
    if due:
        said += (
            f" Also planned: what an earlier apply set out to change on {_names(due, quote)} "
            "and did not finish."
        )
    if done:
        said += (
            f" An earlier apply did not finish {_names(done, quote)} either, but nothing is left "
            "to do there now: the next apply that reads it forgets it."
        )
    return said


def _names(names: Sequence[str], quote: Callable[[str], str]) -> str:
    shown = ", ".join(quote(n) for n in names[:MAX_FOOTER_TARGETS])
    more = len(names) - MAX_FOOTER_TARGETS
    return shown + (f" and {more} more" if more > 0 else "")


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
    """Wrap 'a, b, c' between items only, so 'Asset A (2024-05-06)' never splits. An item that
    ends with its own separator (':' or ';') gets no comma."""
    lines: list[str] = []
    current = ""
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 and not item.endswith((":", ";")) else "")
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
