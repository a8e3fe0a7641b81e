"""``reconciler apply``: carry out a plan, made now or saved."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from reconciler.cli.common import carried_options, command_line, show_plan, use_color
from reconciler.cli.console import (
    Reporter,
    echo,
    handle_errors,
    interrupt_exit_code,
    interrupt_message,
    isatty,
    print_summary,
    secho,
)
from reconciler.cli.options import (
    api_options,
    color_option,
    lock_timeout_option,
    state_option,
    target_option,
)
from reconciler.core.plan import Plan
from reconciler.errors import ApplyError, ConfigError, ReconcilerError
from reconciler.run.apply import ApplyResult, now
from reconciler.run.engine import (
    DEFAULT_SPEC_PATHS,
    ApplyOptions,
    Engine,
    Settings,
    is_plan_file,
    write_report,
)
from reconciler.text import clean_lines

# --- apply ------------------------------------------------------------------------------------


def _replan_command(ctx: click.Context, paths: tuple[str, ...]) -> str:
    """For a refused saved plan: the command that makes a new one in the same place."""
    if not is_plan_file(paths):
        return command_line("plan", *carried_options(ctx))
    spec_paths: list[str] = []
    targets: list[str] = []
    try:
        saved = json.loads(Path(paths[0]).read_text(encoding="utf-8"))
        spec_paths = [str(p) for p in saved.get("spec_paths", [])]
        # The new plan covers the same AOIs as the refused one, no more.
        targets = [word for t in saved.get("targets", []) for word in ("--target", str(t))]
    except (OSError, ValueError, AttributeError, TypeError):
        pass  # the apply itself reports an unreadable plan
    if tuple(spec_paths) == DEFAULT_SPEC_PATHS:
        spec_paths = []
    return command_line("plan", *spec_paths, *targets, "--out", paths[0], *carried_options(ctx))


_isatty = isatty  # one name for "is this a terminal", so tests can pretend one is there


def _confirm(yes: bool) -> None:
    if yes:
        return
    if not _isatty(sys.stdin):
        raise ConfigError(
            "refusing to apply without confirmation: stdin is not a terminal. "
            "Review the plan above, then run again with --yes."
        )


def _ask(plan: Plan) -> None:
    echo(f"\nDo you want to apply these {len(plan.changes)} changes? Only 'yes' will be accepted.")
    if click.prompt("Enter a value", default="", show_default=False).strip() != "yes":
        raise ApplyError("apply cancelled: nothing was changed")


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str), metavar="[SPEC_PATHS | PLAN]...")
@click.option(
    "-y", "--yes", is_flag=True, help="Apply without asking (required without a terminal)."
)
@target_option
@state_option
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
    color: bool | None,
    settings: Settings,
) -> None:
    """Create the missing visualizations and roll back the listed legends.

    With spec paths (default: specs/) apply plans first, shows the plan and asks for 'yes'
    (use --yes where there is no terminal). With a plan file saved by 'plan --out' it applies
    exactly that plan, after checking that neither the specs nor the affected AOIs changed
    since; otherwise it refuses and asks you to plan again.

    A visualization that already exists (HTTP 409) is adopted, not duplicated. New ones are
    waited for until usable. Every change ends as created, adopted, rolled back, failed or
    skipped; the exit status is 0 only if nothing failed.

    \b
    Examples:
      reconciler apply --sandbox --yes
      reconciler plan --out plan.json && reconciler apply plan.json --yes --report report.json
    """
    options = ApplyOptions(
        targets=targets,
        wait_timeout=wait_timeout,
        fail_fast=fail_fast,
        max_changes=max_changes,
        force=force,
        replan=_replan_command(ctx, paths),
    )
    colored = use_color(color)
    reporter = Reporter()
    started = now()
    shown: list[Plan] = []

    def show(the_plan: Plan) -> None:
        reporter.clear()
        shown.append(the_plan)
        show_plan(the_plan, "text", colored)

    def confirm(the_plan: Plan) -> None:
        _confirm(yes)
        if not yes:
            _ask(the_plan)

    if report is not None:
        _check_report_path(report)

    def outcome(**fields: Any) -> ApplyResult:
        api_url = shown[0].api_url if shown else ""
        return ApplyResult(api_url, started_at=started, finished_at=now(), **fields)

    def save_report(result: ApplyResult, error: ReconcilerError | str | None = None) -> bool:
        """Write the report; False (said on stderr) when it cannot be written."""
        if report is None:
            return True
        try:
            write_report(report, result, error)
        except ReconcilerError as exc:
            secho(f"Error: {clean_lines(str(exc))}", fg="red", err=True)
            return False
        return True

    # From the moment changes end, the engine shields from stop signals until ``held``
    # closes: what was done is printed and reported before a signal may interrupt.
    with ExitStack() as held:
        try:
            result = Engine(settings, listener=reporter).apply(
                paths, options, show=show, confirm=confirm, hold=held
            )
        except ReconcilerError as exc:
            save_report(outcome(), exc)
            raise
        except KeyboardInterrupt as exc:  # before any change started (planning, the lock)
            reason = interrupt_message(exc)
            save_report(
                outcome(interrupted=True, stop_reason=reason),
                f"{reason} before any change started",
            )
            raise
        finally:
            reporter.clear()
        printed = True
        try:
            if result is not None:
                print_summary(result)
        except OSError:  # stdout gone (a closed pipe, a full disk): the report still says
            printed = False
        finally:
            # Nothing to change is an outcome too: CI reads the report either way. Written
            # after the summary, so a report that cannot be written does not hide it.
            reported = save_report(result or outcome())
    if result is None:
        if not reported or not printed:
            sys.exit(1)
        return
    if result.state_error:
        secho(f"Error: {clean_lines(result.state_error)}", fg="red", err=True)
        sys.exit(1)
    if result.interrupted:
        sys.exit(interrupt_exit_code())
    if not result.ok or not reported or not printed:
        sys.exit(1)


def _check_report_path(path: Path) -> None:
    """Refuse a --report path that can never be written, before anything is changed."""
    if path.is_dir():
        raise ConfigError(f"--report {path} is a directory; name a file, e.g. report.json")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--report {path}: {parent} is a file, not a directory")
            return
