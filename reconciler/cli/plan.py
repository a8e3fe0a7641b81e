"""``reconciler plan`` and ``reconciler show``: what apply would change, now or as saved."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.cli.common import (
    carried_options,
    comment_id_option,
    details_url_option,
    failures_in_format,
    max_chars_option,
    show_plan,
    use_color,
)
from reconciler.cli.console import Reporter, echo, handle_errors
from reconciler.cli.options import (
    api_options,
    color_option,
    plan_format_option,
    shard_option,
    spec_paths_argument,
    state_option,
    target_option,
)
from reconciler.run.engine import Engine, load_plan_file, write_file
from reconciler.run.settings import Settings
from reconciler.text import command_line


@click.command()
@spec_paths_argument
@plan_format_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also save the plan (JSON) here, for 'reconciler apply FILE'.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when nothing would change, 2 when something would, 1 on errors.",
)
@comment_id_option
@details_url_option
@max_chars_option
@target_option
@click.option(
    "--changed-since",
    "changed_since",
    metavar="REF",
    help="Plan only the AOIs whose declarations changed since git revision REF (a pull "
    "request's base, e.g. origin/main): fewer reads, and the plan says what it covers. A "
    "changed or removed selector counts for every AOI it matches, a changed or removed custom "
    "index for every AOI using it; changed top-level ignore rules, or specs at REF that do "
    "not validate, plan everything. The AOIs an earlier apply left unfinished are planned "
    "too, and named. REF must be in the checkout (a shallow clone: fetch-depth 2 for a pull "
    "request's merge commit, or 0).",
)
@state_option
@shard_option
@color_option
@api_options
@handle_errors
@click.pass_context
def plan(
    ctx: click.Context,
    paths: tuple[str, ...],
    fmt: str,
    out: Path | None,
    detailed_exitcode: bool,
    comment_id: str | None,
    details_url: str | None,
    max_chars: int | None,
    targets: tuple[str, ...],
    changed_since: str | None,
    color: bool | None,
    settings: Settings,
) -> None:
    """Show what apply would change, without changing anything.

    Reads the specs (default: specs/), reads what they refer to from the API, and prints the
    difference: '+' custom indices and visualizations to create, '!' legends to roll back,
    '~' custom legends to set, '*' warnings.

    \b
    Examples:
      reconciler plan --sandbox                     # try it, no API key needed
      reconciler plan specs/ --format markdown      # for a pull-request comment
      reconciler plan --out plan.json               # review now, 'reconciler apply plan.json' later
      reconciler plan --detailed-exitcode           # exit 2 if anything would change
      reconciler plan --changed-since origin/main   # a pull request: only the AOIs it touched

    The markdown comment puts the counts first, then every change on one line, by spec file
    and AOI, then each change's details and the warnings (collapsed); cut to fit GitHub's size
    limit (--max-chars), it drops details first, then warnings, then whole AOIs of the list,
    and says what is missing. It ends with a hidden <!-- reconciler-plan --> line for a
    pipeline to find and update its comment. In markdown and json a failure (invalid specs,
    the API down) is still a document on stdout saying what went wrong, with every problem's
    position; exit 1.
    """
    from reconciler.render.json import render_json

    reporter = Reporter()
    with failures_in_format(fmt, "plan", comment_id):
        try:
            result = Engine(settings, listener=reporter).plan(
                paths, targets=targets, changed_since=changed_since
            )
        finally:
            reporter.clear()
    show_plan(
        result,
        fmt,
        use_color(color),
        comment_id=comment_id,
        details_url=details_url,
        max_chars=max_chars,
    )
    if out is not None:
        write_file(out, render_json(result))
        if result.has_changes:
            hint = f"apply it with: {command_line('apply', str(out), *carried_options(ctx))}"
        else:
            hint = "it has no changes: applying it would do nothing"
        echo(f"Saved this plan to {out}; {hint}", err=True)
    # Shown above with every other AOI, but a plan that leaves AOIs out is no success.
    result.raise_if_incomplete()
    if detailed_exitcode and result.has_changes:
        sys.exit(2)


@click.command()
@click.argument(
    "plan_files",
    metavar="PLAN...",
    nargs=-1,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
)
@plan_format_option
@comment_id_option
@details_url_option
@max_chars_option
@color_option
@handle_errors
def show(
    plan_files: tuple[Path, ...],
    fmt: str,
    comment_id: str | None,
    details_url: str | None,
    max_chars: int | None,
    color: bool | None,
) -> None:
    """Show a saved plan, or shard plans merged into one, offline, in any format.

    PLAN is a file saved by 'plan --out'; several are the plans of a matrix's shards
    ('plan --shard I/N --out'), shown as one.

    Each plan is checked first: a file changed after it was saved (its checksum no longer
    matches) is refused, as apply would refuse it. Shard plans merge only when they are of
    the same API, spec paths and number of shards; a merged plan names the shards missing
    from it.

    \b
    Examples:
      reconciler show plan.json
      reconciler show plan.json --format markdown > comment.md
      reconciler show shard-*/plan.json --format markdown > comment.md
    """
    from reconciler.core.merge import merge_plans

    with failures_in_format(fmt, "show", comment_id):
        saved = merge_plans([(str(path), load_plan_file(path)) for path in plan_files])
    show_plan(
        saved,
        fmt,
        use_color(color),
        comment_id=comment_id,
        details_url=details_url,
        max_chars=max_chars,
    )
