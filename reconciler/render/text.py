"""The plan as text: what `plan` prints on a terminal or in a CI log."""

from __future__ import annotations

from typing import Any

import click

from reconciler.core.drift import Drift
from reconciler.core.plan import Plan
from reconciler.render.layout import (
    COLORS,
    MAX_UP_TO_DATE_NAMES,
    WIDTH,
    Group,
    group_items,
    groups_of,
    ignored_by_rule,
    lay_out,
    no_changes,
    scope_line,
    selectors_lines,
    short,
    source_line,
    summary_counts,
    symbols,
    widest_key,
    wrap_list,
    wrap_text,
)
from reconciler.text import clean


def render_text(plan: Plan, *, color: bool = False) -> str:
    """Render ``plan`` as a Terraform-like diff for a terminal or a CI log.

    The custom indices to create first, then grouped by AOI; ``+`` create, ``!`` roll back,
    ``~`` set a custom legend, ``*`` warning; each with the spec position that declares it;
    ends with ``Plan: N to create, N to roll back, N warnings, N unchanged.`` (custom indices
    to create, legends to set and ignored visualizations are counted there when there are any).
    ANSI colour codes appear only when ``color`` is true (the CLI decides, from the terminal
    and ``--no-color``); otherwise the output is plain text.
    """
    groups = groups_of(plan)
    active = [g for g in groups if g.changes or g.warnings]
    items = [item for g in active for item in group_items(g)]
    width = widest_key(items)

    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if color else text

    out: list[str] = []
    source = source_line(plan)
    if source:
        out += [source, ""]
    scope = scope_line(plan)
    if scope:
        out += [*wrap_text(scope, WIDTH), ""]
    if plan.has_changes:
        out.append("reconciler apply would make these changes. Symbols:")
    else:
        out += wrap_text(no_changes(plan), WIDTH)
        if plan.warnings:
            out.append("Warnings, which apply does not act on:")
    used = {item.marker for item in items}
    if plan.has_changes:
        said = symbols(plan)
        out += [f"  {style(m, fg=COLORS[m])} {text}" for m, text in said.items() if m in used]

    for g in active:
        out.append("")
        # Wrapped between counts, which every kind of change makes longer than before.
        first, *rest = g.counts().split(", ")
        header = wrap_list((f"{group_title(g)}: {first}", *rest), WIDTH)
        out += [style(header[0], bold=True)] + [style(f"    {h}", bold=True) for h in header[1:]]
        for item in group_items(g):
            laid = lay_out(item, width, indent=4)
            out.append("")
            if laid.comment:
                out.append("  " + style(laid.comment, dim=True))
            out.append(f"  {style(item.marker, fg=COLORS[item.marker])} {laid.title[0]}")
            out += [f"    {line}" for line in laid.title[1:]]
            out += [f"      {line}".rstrip() for line in laid.fields]

    quiet = [g for g in groups if not (g.changes or g.warnings)]
    if quiet:
        out.append("")
        if len(quiet) <= MAX_UP_TO_DATE_NAMES:
            names = tuple(f"{clean(g.aoi_name)} ({g.unchanged} unchanged)" for g in quiet)
            label = "Nothing to change in: "
            wrapped = wrap_list(names, WIDTH - len(label))
            out.append(label + wrapped[0])
            out += [" " * len(label) + line for line in wrapped[1:]]
        else:
            out.append(f"Nothing to change in {len(quiet)} other AOIs.")

    selector_lines = selectors_lines(plan)
    if selector_lines:
        out += ["", style("Selectors", bold=True) + " (which AOIs each one matched):"]
        out += [f"  {line}" for line in selector_lines]

    if plan.ignored:
        out.append("")
        for rule, reason, count in ignored_by_rule(plan):
            line = f"{count} undeclared, ignored by rule at {clean(rule)}"
            wrapped = wrap_text(line + (f" ({clean(reason)})" if reason else ""), WIDTH)
            out += wrapped[:1] + [
                f"  {part}" for part in wrap_text(" ".join(wrapped[1:]), WIDTH - 2)
            ]

    # With every kind of change counted the line outgrows the width: wrapped between counts.
    counts = wrap_list(tuple(summary_counts(plan).split(", ")), WIDTH - len("Plan: "))
    out += ["", style("Plan:", bold=True) + " " + counts[0]]
    out += [" " * len("Plan: ") + line for line in counts[1:]]
    out[-1] += "."
    return "\n".join(out) + "\n"


def group_title(g: Group) -> str:
    """'AOI Bengaluru-North (89a291cd)', 'Custom indices', or 'Specs' for warnings about no AOI
    in particular (a selector that matches none)."""
    if g.kind == "indices":
        return "Custom indices"
    if g.kind == "specs":
        return "Specs"
    return f"AOI {clean(g.aoi_name)} ({short(g.aoi_id)})"


#: What each kind of drift means, as the text and the comment say it.
DRIFT_TEXT = {
    "in-sync": "in sync: the API matches the specs",
    "pending": "pending: merged specs are not applied yet",
    "moved": "moved: the world changed under the specs",
    "unhealthy": "unhealthy: declared visualizations the API finished as failed",
}


def render_drift_text(plan: Plan, drift: Drift) -> str:
    """``reconciler drift``: the status and its exit code, then every finding by kind."""
    out = []
    source = source_line(plan)
    if source:
        out += [source, ""]
    scope = scope_line(plan)
    if scope:
        out += [*wrap_text(scope, WIDTH), ""]
    out.append(f"Drift: {DRIFT_TEXT[drift.status]} (exit {drift.exit_code}).")
    for kind in ("unhealthy", "moved", "pending"):
        found = [f for f in drift.findings if f.kind == kind]
        if not found:
            continue
        out += ["", f"{kind} ({len(found)}):"]
        for f in found:
            aoi = f"AOI {clean(f.aoi_name)}: " if f.aoi_id else ""
            line = f"{aoi}{clean(f.what)}: {clean(f.why)}"
            out += [f"  {part}" for part in wrap_text(line, WIDTH - 2)[:1]]
            out += [
                f"    {part}"
                for part in wrap_text(" ".join(wrap_text(line, WIDTH - 2)[1:]), WIDTH - 4)
            ]
            if f.where:
                out.append(f"    # spec: {clean(f.where)}")
    return "\n".join(out) + "\n"
