"""The ``reconciler`` command line: parse flags, call the engine, print, choose the exit code.

Only this layer prints or prompts. Every ``ReconcilerError`` becomes a one-paragraph message and
exit status 1 (``console.handle_errors``); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import IO

import click

from reconciler import __version__
from reconciler.console import (
    Reporter,
    handle_errors,
    interrupt_exit_code,
    interrupt_message,
    isatty,
    plural,
    print_summary,
)
from reconciler.emulator.command import emulator_command
from reconciler.engine import (
    DEFAULT_SPEC_PATHS,
    ApplyOptions,
    Engine,
    Settings,
    write_file,
    write_report,
)
from reconciler.errors import ApplyError, ReconcilerError, SpecError
from reconciler.options import (
    api_options,
    color_option,
    lock_timeout_option,
    spec_paths_argument,
    state_option,
    target_option,
)
from reconciler.plan import Plan
from reconciler.statecmd import state_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="reconciler")
@click.option("-v", "--verbose", count=True, help="Log more to stderr (-vv: every request).")
def cli(verbose: int) -> None:
    """Visualizations-as-code for the Pixxel API.

    Keep YAML specs in git that declare which visualizations every AOI must have and which
    legends must be auto-computed. 'plan' shows what would change; 'apply' makes it so.

    Try it without an API key against the bundled emulator:

        reconciler plan --sandbox
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    # force: the command line owns logging; replace whatever an embedding process set up.
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True
    )


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="reconciler")


cli.add_command(emulator_command)
cli.add_command(state_command)


def _color(option: bool | None, stream: IO[str] | None = None) -> bool:
    return isatty(stream or sys.stdout) if option is None else option


def _show(plan: Plan, fmt: str, color: bool) -> None:
    from reconciler.render import render

    click.echo(render(plan, fmt, color=color), nl=False, color=color)


# --- validate / schema ------------------------------------------------------------------------


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one 'path:line:column: message' line per problem; json: for machines.",
)
@click.option(
    "--online",
    is_flag=True,
    help="Also resolve every AOI, index, asset, rollback date and mode against the API.",
)
@api_options
@handle_errors
def validate(paths: tuple[str, ...], output_format: str, online: bool, settings: Settings) -> None:
    """Check spec files without talking to the API.

    PATHS are spec files or directories (searched recursively for *.yaml and *.yml; hidden
    ones are skipped); the default is specs/. Every problem in every file is reported at
    once, as path:line:column: message, so editors and CI can jump to it. Exit status: 0
    when the specs are valid, 1 when not.

    \b
    Examples:
      reconciler validate                         # everything under specs/
      reconciler validate specs/team-a.yaml       # one file
      reconciler validate --format json specs/    # {"valid": ..., "problems": [...]}

    Checked offline: the YAML itself, unknown or missing keys, ISO dates, empty or
    repeated dates, one rollback entry per mode, and visualizations declared twice
    (also across files). With --online (read-only) also: AOI, index and asset names,
    ids and dates exist; rollback dates are dates of the visualization's assets; the
    index can have the rolled-back legend mode.

    \b
      reconciler validate --online --sandbox      # against the bundled emulator
    """
    from reconciler.render import render_validation_json

    targets = paths or DEFAULT_SPEC_PATHS
    reporter = Reporter()
    try:
        result = Engine(settings, listener=reporter).validate(targets, online=online)
    except SpecError as exc:
        # Nothing to check (missing path, empty directory): text mode says so on stderr via
        # handle_errors; machines still get a JSON answer on stdout.
        if output_format != "json":
            raise
        click.echo(render_validation_json((), exc.problems, ()))
        sys.exit(1)
    finally:
        reporter.clear()

    if output_format == "json":
        click.echo(render_validation_json(result.files, result.problems, result.notes))
    else:
        for problem in result.problems:
            click.echo(str(problem))
        for note in result.notes:
            click.echo(f"{note.where}: note: {note.message}" if note.where else note.message)
        if result.problems:
            files = {p.where.path for p in result.problems if p.where is not None}
            summary = f"{plural(len(result.problems), 'problem')} in {plural(len(files), 'file')}"
            click.secho(summary, fg="red")
        else:
            specs = result.specs
            aois = len({a.label for a in specs.aois}) if specs else 0
            count = specs.visualization_count if specs else 0
            click.secho(
                f"{' '.join(targets)} is valid: {plural(len(result.files), 'file')}, "
                f"{plural(aois, 'AOI')}, {plural(count, 'visualization')}",
                fg="green",
            )
    sys.exit(1 if result.problems else 0)


@cli.command()
@click.option(
    "--out",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="Write the schema to this file instead of standard output.",
)
def schema(out: IO[str]) -> None:
    """Print the JSON Schema of spec files, for editor completion and checks.

    With the YAML language server (VS Code's YAML extension, Neovim, Helix, ...), save the
    schema next to your specs and point each spec file at it with a first line:

    \b
      reconciler schema --out specs/reconciler.schema.json
      # yaml-language-server: $schema=./reconciler.schema.json

    Editors then complete keys, show each key's help and flag mistakes as you type.
    'reconciler validate' remains the authority: it also checks what a schema cannot
    (real dates, duplicates across files).
    """
    import json

    from reconciler.spec import SpecFile

    out.write(json.dumps(SpecFile.model_json_schema(), indent=2) + "\n")


# --- plan -------------------------------------------------------------------------------------


@cli.command()
@spec_paths_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="text for people, markdown for PR comments, json for programs.",
)
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
@target_option
@state_option
@color_option
@api_options
@handle_errors
def plan(
    paths: tuple[str, ...],
    fmt: str,
    out: Path | None,
    detailed_exitcode: bool,
    targets: tuple[str, ...],
    color: bool | None,
    settings: Settings,
) -> None:
    """Show what apply would change, without changing anything.

    Reads the specs (default: specs/), reads what they refer to from the API, and prints the
    difference: '+' visualizations to create, '~' legends to roll back, '!' warnings.

    \b
    Examples:
      reconciler plan --sandbox                     # try it, no API key needed
      reconciler plan specs/ --format markdown      # for a pull-request comment
      reconciler plan --out plan.json               # review now, 'reconciler apply plan.json' later
      reconciler plan --detailed-exitcode           # exit 2 if anything would change
    """
    from reconciler.render import render_json

    reporter = Reporter()
    try:
        result = Engine(settings, listener=reporter).plan(paths, targets=targets)
    finally:
        reporter.clear()
    _show(result, fmt, _color(color))
    if out is not None:
        write_file(out, render_json(result))
        click.echo(f"Saved this plan to {out}; apply it with: reconciler apply {out}", err=True)
    if detailed_exitcode and result.has_changes:
        sys.exit(2)


# --- apply ------------------------------------------------------------------------------------


_isatty = isatty  # one name for "is this a terminal", so tests can pretend one is there


def _confirm(yes: bool) -> None:
    if yes:
        return
    if not _isatty(sys.stdin):
        raise ApplyError(
            "refusing to apply without confirmation: stdin is not a terminal. "
            "Review the plan above, then run again with --yes."
        )


def _ask(plan: Plan) -> None:
    click.echo(
        f"\nDo you want to apply these {len(plan.changes)} changes? Only 'yes' will be accepted."
    )
    if click.prompt("Enter a value", default="", show_default=False).strip() != "yes":
        raise ApplyError("apply cancelled: nothing was changed")


@cli.command()
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
    help="Write what happened to each change as JSON here (also when apply fails).",
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
def apply(
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
    )
    colored = _color(color)
    reporter = Reporter()

    def show(the_plan: Plan) -> None:
        reporter.clear()
        _show(the_plan, "text", colored)

    def confirm(the_plan: Plan) -> None:
        _confirm(yes)
        if not yes:
            _ask(the_plan)

    try:
        result = Engine(settings, listener=reporter).apply(
            paths, options, show=show, confirm=confirm
        )
    except ReconcilerError as exc:
        if report is not None:
            write_report(report, None, exc)
        raise
    except KeyboardInterrupt as exc:  # before any change started, or while saving the state
        if report is not None:
            write_report(report, None, f"{interrupt_message(exc)} before any change was reported")
        raise
    finally:
        reporter.clear()
    if report is not None and result is not None:
        write_report(report, result)
    if result is None:
        return
    print_summary(result)
    if result.interrupted:
        sys.exit(interrupt_exit_code())
    if not result.ok:
        sys.exit(1)
