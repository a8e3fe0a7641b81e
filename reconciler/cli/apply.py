"""``reconciler apply``: carry out a plan, made now or saved."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.cli.common import carried_options, show_plan, use_color
from reconciler.cli.console import (
    Reporter,
    echo,
    handle_errors,
    isatty,
    print_left_pending,
    print_summary,
    secho,
)
from reconciler.cli.options import (
    api_options,
    color_option,
    lock_timeout_option,
    shard_option,
    state_option,
    target_option,
)
from reconciler.core.plan import Plan
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.render.json import render_report
from reconciler.run.engine import ApplyOptions, ApplyOutcome, Engine, write_file
from reconciler.run.events import Event, Planned
from reconciler.run.settings import Settings
from reconciler.run.signals import interrupt_exit_code
from reconciler.text import clean_lines, plural

_isatty = isatty  # one name for "is this a terminal", so tests can pretend one is there


def _approve(plan: Plan, taking: bool) -> bool:
    """Ask for 'yes' on a terminal; without one, refuse (the plan was shown above).

    ``taking``: the records of AOIs other states own move here too (``--take-over``).
    """
    if not _isatty(sys.stdin):
        raise ConfigError(
            "refusing to apply without confirmation: stdin is not a terminal. "
            "Review the plan above, then run again with --yes."
        )
    count = len(plan.all_changes)  # custom indices too: each is a POST
    these = "this change" if count == 1 else f"these {count:,} changes"
    moved = "move the records of the AOIs other states own here (--take-over)"
    question = f"apply {these}" + (f" and {moved}" if taking else "") if count else moved
    echo(f"\nDo you want to {question}? Only 'yes' will be accepted.")
    return bool(click.prompt("Enter a value", default="", show_default=False).strip() == "yes")


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str), metavar="[PLAN] [SPEC_PATHS]...")
@click.option(
    "-y", "--yes", is_flag=True, help="Apply without asking (required without a terminal)."
)
@target_option
@state_option
@shard_option
@click.option(
    "--take-over",
    is_flag=True,
    help="Make this state the owner of the plan's AOIs that another state of its family (the "
    "unsharded state, or another shard's) has records of: their records move here, under both "
    "locks. Without it such an apply is refused. See docs/sharding.md.",
)
@lock_timeout_option
@click.option(
    "--wait-timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Seconds to wait for one new visualization to become usable.",
)
@click.option("--fail-fast", is_flag=True, help="Stop starting new work after the first failure.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write what happened to each change as JSON here, also when apply fails or is "
    "refused ('error.kind' says why; see docs/report-json.md).",
)
@click.option(
    "--max-changes",
    type=click.IntRange(min=0),
    default=None,
    help="Refuse a plan with more changes than this (unless --force).",
)
@click.option("--force", is_flag=True, help="Apply even beyond --max-changes.")
@color_option
@api_options
@handle_errors
@click.pass_context
def apply(
    ctx: click.Context,
    paths: tuple[str, ...],
    yes: bool,
    targets: tuple[str, ...],
    wait_timeout: float,
    fail_fast: bool,
    report: Path | None,
    max_changes: int | None,
    force: bool,
    take_over: bool,
    color: bool | None,
    settings: Settings,
) -> None:
    """Create what is missing, roll back and set the declared legends.

    With spec paths (default: specs/) apply plans first, shows the plan and asks for 'yes'
    (use --yes where there is no terminal). With a plan file saved by 'plan --out' (then the
    spec paths it was made from, unless specs/) it applies exactly that plan, after making it
    again for the AOIs it changes: if the specs, the API or the state now call for anything
    else, or the file was edited, it refuses and asks you to plan again. What an earlier
    apply left unfinished, which a pull request's plan also carries, is applied only where it
    is still as planned; elsewhere it is left for the next plan, with a warning, and refuses
    nothing.

    Missing custom indices are created first. A visualization or index that already exists
    (HTTP 409) is adopted, not duplicated. New visualizations are waited for until usable,
    then get their declared legends. Every change ends as created, adopted, rolled back,
    legend set, failed or skipped; the exit status is 0 only if nothing failed. The AOIs an
    apply sets out to change stay marked in the state until all their changes succeeded
    (a kill, Ctrl-C or a failure leaves them marked), and 'plan --changed-since' plans them
    again; 'state show' lists them.

    \b
    Examples:
      reconciler apply --sandbox --yes
      reconciler plan --out plan.json && reconciler apply plan.json --yes --report report.json
    """
    if report is not None:
        _check_report_path(report)
    options = ApplyOptions(
        targets=targets,
        wait_timeout=wait_timeout,
        fail_fast=fail_fast,
        max_changes=max_changes,
        force=force,
        approve=None if yes else _approve,
        carried=tuple(carried_options(ctx)),
        take_over=take_over,
    )
    reporter = Reporter()
    colored = use_color(color)

    def listen(event: Event) -> None:
        if isinstance(event, Planned):
            reporter.clear()
            show_plan(event.plan, "text", colored)
        else:
            reporter(event)

    outcome = Engine(settings, listener=listen).apply(paths, options)
    reporter.clear()
    sys.exit(_finish(outcome, report))


def _finish(outcome: ApplyOutcome, report: Path | None) -> int:
    """Print and report how apply ended; its exit status.

    Signals are only noted by now (``run.signals``), so this always runs to the end.
    """
    printed = True
    try:
        if outcome.started:
            print_summary(outcome.result)
        else:
            print_left_pending(outcome.result)
    except OSError:  # stdout gone (a closed pipe, a full disk): the report still says
        printed = False
    # Nothing to change is an outcome too: CI reads the report either way. Written after the
    # summary, so a report that cannot be written does not hide it.
    reported = report is None or _write_report(report, outcome)
    state_error = outcome.result.state_error
    if state_error:
        # Said whatever else ended apply: records to save, or a lock left behind that blocks
        # the next apply until its command clears it.
        secho(f"Error: {clean_lines(state_error)}", fg="red", err=True)
    if outcome.signal:
        secho(f"Error: {outcome.signal}", fg="red", err=True)
        return 1 if state_error else interrupt_exit_code()
    if outcome.error is not None:
        raise outcome.error  # said by handle_errors, exit 1
    incomplete = outcome.plan.incomplete() if outcome.plan is not None else None
    if incomplete is not None:  # not ok, so exit 1 below
        secho(
            f"Error: {clean_lines(str(incomplete))}; apply went ahead with every other AOI",
            fg="red",
            err=True,
        )
    if state_error:
        return 1
    if outcome.result.key_refused:
        left = plural(outcome.result.counts()["skipped"], "change")
        secho(
            f"Error: the API refused the key, so apply sent nothing more ({left} not "
            f"attempted): {clean_lines(outcome.result.key_refused)}",
            fg="red",
            err=True,
        )
        return 1
    if outcome.result.interrupted:
        return interrupt_exit_code()
    return 0 if outcome.ok and reported and printed else 1


def _write_report(path: Path, outcome: ApplyOutcome) -> bool:
    """Write the report; False (said on stderr) when it cannot be written."""
    try:
        write_file(path, render_report(outcome))
    except ReconcilerError as exc:
        secho(f"Error: {clean_lines(str(exc))}", fg="red", err=True)
        return False
    return True


def _check_report_path(path: Path) -> None:
    """Refuse a --report path that can never be written, before anything is changed."""
    if path.is_dir():
        raise ConfigError(f"--report {path} is a directory; name a file, e.g. report.json")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--report {path}: {parent} is a file, not a directory")
            return
