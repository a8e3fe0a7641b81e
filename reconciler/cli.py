"""The ``reconciler`` command line: parse flags, call the engine, print, choose the exit code.

Only this layer prints or prompts. Every ``ReconcilerError`` becomes a one-paragraph message and
exit status 1 (``console.handle_errors``); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click

from reconciler import __version__
from reconciler._text import clean, clean_lines, plural
from reconciler.apply import ApplyResult, now
from reconciler.console import (
    LogFormatter,
    Reporter,
    echo,
    handle_errors,
    interrupt_exit_code,
    interrupt_message,
    isatty,
    print_summary,
    secho,
)
from reconciler.emulator.command import emulator_command
from reconciler.engine import (
    DEFAULT_SPEC_PATHS,
    ApplyOptions,
    Engine,
    ExportOptions,
    Settings,
    is_plan_file,
    load_plan_file,
    write_file,
    write_report,
)
from reconciler.errors import ApplyError, ReconcilerError, SpecError
from reconciler.options import (
    api_options,
    color_option,
    lock_timeout_option,
    plan_format_option,
    spec_paths_argument,
    state_option,
    target_option,
)
from reconciler.plan import Plan
from reconciler.redact import install_environment_secrets
from reconciler.statecmd import state_command

_VERBOSE_HELP = "Log more to stderr (-vv: every request); also accepted after the command."


def _no_color_env() -> bool:
    """NO_COLOR (https://no-color.org): any non-empty value turns colour off."""
    return bool(os.environ.get("NO_COLOR"))


#: Third-party loggers kept at WARNING even at -vv (they would print credentials).
_QUIET_LOGGERS = (
    "botocore",
    "aiobotocore",
    "boto3",
    "s3transfer",
    "s3fs",
    "fsspec",
    "gcsfs",
    "adlfs",
    "azure",
    "google",
    "aiohttp",
)


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    if isatty(sys.stderr):
        handler.setFormatter(LogFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        # A CI log: stamp every line, in UTC like the progress lines, so slow steps show.
        formatter = LogFormatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%SZ"
        )
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    # force: the command line owns logging; replace whatever an embedding process set up.
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # The storage SDKs log request headers at DEBUG (signatures, session tokens): -vv is for
    # our own requests; theirs show only their warnings.
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def _more_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    """``reconciler plan -v``: a -v after the command adds to any before it."""
    if value:
        root = ctx.find_root()
        root.meta["reconciler.verbose"] = root.meta.get("reconciler.verbose", 0) + value
        _configure_logging(root.meta["reconciler.verbose"])


class _Commands(click.Group):
    """A group whose every command (also of nested groups) accepts ``-v`` after its name."""

    group_class = type  # nested groups are _Commands too

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any("--verbose" in getattr(p, "opts", ()) for p in cmd.params):
            cmd.params.append(
                click.Option(
                    ["-v", "--verbose"],
                    count=True,
                    expose_value=False,
                    callback=_more_verbose,
                    help=_VERBOSE_HELP,
                )
            )
        super().add_command(cmd, name)

    # Usage errors exit 1, as Terraform's do: click's 2 would read as "changes" to a pipeline
    # running `plan --detailed-exitcode`. The group's own flags are parsed in make_context,
    # a command's in invoke.
    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _usage_errors_exit_1():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _usage_errors_exit_1():
            return super().invoke(ctx)


class _UsageError(click.UsageError):
    exit_code = 1


@contextmanager
def _usage_errors_exit_1() -> Iterator[None]:
    try:
        yield
    except _UsageError:
        raise
    except click.UsageError as exc:
        # The same message, usage line and hint as click shows, with another exit status.
        raise _UsageError(exc.format_message(), exc.ctx) from None


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="reconciler")
@click.option("-v", "--verbose", count=True, help=_VERBOSE_HELP)
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Visualizations-as-code for the Pixxel API.

    Keep YAML specs in git that declare which visualizations every AOI must have and which
    legends must be auto-computed. 'plan' shows what would change; 'apply' makes it so.

    Try it without an API key against the bundled emulator:

        reconciler plan --sandbox

    Colour only on a terminal, and never with NO_COLOR set; without a terminal (CI), log and
    progress lines carry the time.
    """
    if _no_color_env():
        ctx.color = False  # every click.echo below inherits it, errors on stderr too
    ctx.meta["reconciler.verbose"] = verbose
    _configure_logging(verbose)
    install_environment_secrets(os.environ)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="reconciler")


cli.add_command(emulator_command)
cli.add_command(state_command)


def _color(option: bool | None, stream: IO[str] | None = None) -> bool:
    if option is not None:
        return option
    return isatty(stream or sys.stdout) and not _no_color_env()


def _show(
    plan: Plan,
    fmt: str,
    color: bool,
    *,
    comment_id: str | None = None,
    details_url: str | None = None,
) -> None:
    from reconciler.render import render

    text = render(plan, fmt, color=color, comment_id=comment_id, details_url=details_url)
    echo(text, nl=False, color=color)


@contextmanager
def _failures_in_format(fmt: str, command: str, comment_id: str | None = None) -> Iterator[None]:
    """In markdown and json, a failure is still a document on stdout (the PR comment, the
    machine's answer) saying what went wrong; the error also goes to stderr, exit 1."""
    try:
        yield
    except ReconcilerError as exc:
        from reconciler.render import render_failure_json, render_failure_markdown

        if fmt == "json":
            echo(render_failure_json(exc, command), nl=False)
        elif fmt == "markdown":
            echo(render_failure_markdown(exc, command, comment_id=comment_id), nl=False)
        raise


#: Options whose values a follow-up command needs to reach the same API and state.
_CARRIED = (("sandbox", "--sandbox"), ("api_url", "--api-url"), ("api_key_file", "--api-key-file"))


def _carried_options(ctx: click.Context) -> list[str]:
    """The flags of this invocation that the next command must repeat to work as printed."""
    words: list[str] = []
    for name, flag in (*_CARRIED, ("state_path", "--state")):
        value = ctx.params.get(name)
        if value in (None, False):
            continue
        # Environment variables are still set for the next command; flags are not.
        if ctx.get_parameter_source(name) != click.core.ParameterSource.COMMANDLINE:
            continue
        words += [flag] if value is True else [flag, str(value)]
    return words


def _command(*words: str) -> str:
    return " ".join(shlex.quote(word) for word in ("reconciler", *words))


def _comment_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from reconciler.errors import ConfigError
    from reconciler.render import comment_marker

    try:
        comment_marker(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


comment_id_option = click.option(
    "--comment-id",
    metavar="ID",
    callback=_comment_id,
    help="markdown: end the comment with <!-- reconciler-plan:ID --> instead of "
    "<!-- reconciler-plan -->, so several plans (one per shard) each update their own comment.",
)
details_url_option = click.option(
    "--details-url",
    metavar="URL",
    help="markdown: where the full plan is kept (e.g. the CI job's artifacts), linked from the "
    "note of a comment cut to fit GitHub's size limit.",
)


# --- validate / schema ------------------------------------------------------------------------


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="text: one 'path:line:column: message' line per problem; json: for machines; "
    "github: GitHub Actions annotations (::error file=…,line=…,col=…::message).",
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
      reconciler validate --format github         # annotations on the pull request's diff

    Checked offline: the YAML itself, unknown or missing keys, ISO dates, empty or
    repeated dates, one rollback entry per mode, and visualizations declared twice
    (also across files). With --online (read-only) also: AOI, index and asset names,
    ids and dates exist; rollback dates are dates of the visualization's assets; the
    index can have the rolled-back legend mode.

    \b
      reconciler validate --online --sandbox      # against the bundled emulator
    """
    from reconciler.render import (
        render_failure_json,
        render_github_error,
        render_validation_github,
        render_validation_json,
    )

    targets = paths or DEFAULT_SPEC_PATHS
    reporter = Reporter()
    try:
        result = Engine(settings, listener=reporter).validate(targets, online=online)
    except SpecError as exc:
        # Nothing to check (missing path, empty directory): text mode says so on stderr via
        # handle_errors; machines still get an answer on stdout.
        if output_format == "json":
            echo(render_validation_json((), exc.problems, ()))
        elif output_format == "github":
            echo(render_validation_github(exc.problems, ()), nl=False)
        raise
    except ReconcilerError as exc:
        # --online could not reach the API: still a JSON answer for machines.
        if output_format == "json":
            echo(render_failure_json(exc, "validate"), nl=False)
        elif output_format == "github":
            echo(render_github_error(str(exc)), nl=False)
        raise
    finally:
        reporter.clear()

    if output_format == "json":
        echo(render_validation_json(result.files, result.problems, result.notes))
    elif output_format == "github":
        echo(render_validation_github(result.problems, result.notes), nl=False)
        if result.problems:
            echo(f"{plural(len(result.problems), 'problem')} in the specs", err=True)
    else:
        for problem in result.problems:
            echo(clean(str(problem)))
        for note in result.notes:
            text = f"{note.where}: note: {note.message}" if note.where else note.message
            echo(clean(text))
        if result.problems:
            files = {p.where.path for p in result.problems if p.where is not None}
            summary = f"{plural(len(result.problems), 'problem')} in {plural(len(files), 'file')}"
            secho(summary, fg="red")
        else:
            specs = result.specs
            aois = len({a.label for a in specs.aois}) if specs else 0
            count = specs.visualization_count if specs else 0
            selectors = len(specs.selectors) if specs else 0
            secho(
                f"{' '.join(targets)} is valid: {plural(len(result.files), 'file')}, "
                f"{plural(aois, 'AOI')}"
                + (f", {plural(selectors, 'selector')}" if selectors else "")
                + f", {plural(count, 'visualization')}",
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


# --- export -----------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--aoi",
    "aois",
    multiple=True,
    metavar="ID|NAME",
    help="Export this AOI (repeatable).",
)
@click.option("--all", "all_aois", is_flag=True, help="Export every AOI that has visualizations.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="A directory (one file per AOI) or a *.yaml file (all in one). Default (or -): "
    "standard output.",
)
@click.option(
    "--by-name",
    is_flag=True,
    help="Refer to AOIs, indices and assets by name where the name is unambiguous (default: ids).",
)
@click.option("--force", is_flag=True, help="Replace files that exist (never done without it).")
@state_option
@api_options
@handle_errors
@click.pass_context
def export(
    ctx: click.Context,
    aois: tuple[str, ...],
    all_aois: bool,
    out: Path | None,
    by_name: bool,
    force: bool,
    settings: Settings,
) -> None:
    """Write specs that declare the visualizations that exist now.

    The way to adopt reconciler on an account that already has visualizations: export,
    review, commit; 'reconciler plan' on the exported specs then shows no changes.

    \b
    Examples:
      reconciler export --all --out specs/               # one file per AOI
      reconciler export --aoi Bengaluru-North --by-name  # one AOI, to standard output
      reconciler export --all --out specs/all.yaml       # everything in one file

    Assets are listed explicitly: they are a visualization's identity. No rollback is written
    active (listings do not show legends, so nothing says which ones a team wants
    auto-computed); legends the state file says reconciler made auto-computed are written as a
    commented-out rollback. Resolution is not written (listings do not return it). Each file
    starts with a yaml-language-server line; the schema it names is written beside the specs.
    Existing files are never replaced without --force.
    """
    if out == Path("-"):
        out = None
    options = ExportOptions(aois=aois, all_aois=all_aois, out=out, by_name=by_name, force=force)
    reporter = Reporter()
    try:
        result = Engine(settings, listener=reporter).export(options)
    finally:
        reporter.clear()
    if result.text is not None:
        echo(result.text, nl=False)
    skipped = (
        f"; {plural(result.without_visualizations, 'AOI')} without visualizations left out"
        if result.without_visualizations
        else ""
    )
    what = f"{plural(result.visualizations, 'visualization')} of {plural(result.aois, 'AOI')}"
    if not result.aois:
        echo(f"Nothing to export{skipped}.", err=True)
    elif out is not None:
        check = _command("plan", str(out), *_carried_options(ctx), "--detailed-exitcode")
        echo(
            f"Exported {what} to {out} ({plural(len(result.files), 'file')}, schema included"
            f"{skipped}). Check with: {check}",
            err=True,
        )
        if result.others:
            shown = ", ".join(str(p) for p in result.others[:5])
            more = f" and {len(result.others) - 5} more" if len(result.others) > 5 else ""
            echo(
                f"Note: {out} also holds {plural(len(result.others), 'other spec file')} "
                f"({shown}{more}): a plan of {out} reads them too, and a visualization "
                "declared in two of them must agree.",
                err=True,
            )
    else:
        echo(f"Exported {what}{skipped}.", err=True)


# --- plan -------------------------------------------------------------------------------------


@cli.command()
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
@target_option
@state_option
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

    The markdown comment puts the counts first, then the changes per AOI, then the warnings
    (collapsed); cut to fit GitHub's size limit, it drops warnings first and says what is
    missing. It ends with a hidden <!-- reconciler-plan --> line for a pipeline to find and
    update its comment. In markdown and json a failure (invalid specs, the API down) is still
    a document on stdout saying what went wrong, with every problem's position; exit 1.
    """
    from reconciler.render import render_json

    reporter = Reporter()
    with _failures_in_format(fmt, "plan", comment_id):
        try:
            result = Engine(settings, listener=reporter).plan(paths, targets=targets)
        finally:
            reporter.clear()
    _show(result, fmt, _color(color), comment_id=comment_id, details_url=details_url)
    if out is not None:
        write_file(out, render_json(result))
        if result.has_changes:
            hint = f"apply it with: {_command('apply', str(out), *_carried_options(ctx))}"
        else:
            hint = "it has no changes: applying it would do nothing"
        echo(f"Saved this plan to {out}; {hint}", err=True)
    if detailed_exitcode and result.has_changes:
        sys.exit(2)


# --- show -------------------------------------------------------------------------------------


@cli.command()
@click.argument("plan_file", metavar="PLAN", type=click.Path(dir_okay=False, path_type=Path))
@plan_format_option
@comment_id_option
@details_url_option
@color_option
@handle_errors
def show(
    plan_file: Path,
    fmt: str,
    comment_id: str | None,
    details_url: str | None,
    color: bool | None,
) -> None:
    """Show a plan saved by 'plan --out', offline, in any format.

    The plan is checked first: a file changed after it was saved (its checksum no longer
    matches) is refused, as apply would refuse it.

    \b
    Examples:
      reconciler show plan.json
      reconciler show plan.json --format markdown > comment.md
    """
    with _failures_in_format(fmt, "show", comment_id):
        saved = load_plan_file(plan_file)
    _show(saved, fmt, _color(color), comment_id=comment_id, details_url=details_url)


# --- apply ------------------------------------------------------------------------------------


def _replan_command(ctx: click.Context, paths: tuple[str, ...]) -> str:
    """For a refused saved plan: the command that makes a new one in the same place."""
    if not is_plan_file(paths):
        return _command("plan", *_carried_options(ctx))
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
    return _command("plan", *spec_paths, *targets, "--out", paths[0], *_carried_options(ctx))


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
    echo(f"\nDo you want to apply these {len(plan.changes)} changes? Only 'yes' will be accepted.")
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
    colored = _color(color)
    reporter = Reporter()
    started = now()
    shown: list[Plan] = []

    def show(the_plan: Plan) -> None:
        reporter.clear()
        shown.append(the_plan)
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
            write_report(report, None, exc, started_at=started)
        raise
    except KeyboardInterrupt as exc:  # before any change started (planning, the lock)
        if report is not None:
            reason = interrupt_message(exc)
            nothing = ApplyResult(
                shown[0].api_url if shown else "",
                started_at=started,
                finished_at=now(),
                interrupted=True,
                stop_reason=reason,
            )
            write_report(report, nothing, f"{reason} before any change started")
        raise
    finally:
        reporter.clear()
    if report is not None:
        # Nothing to change is an outcome too: CI reads the report either way.
        api_url = shown[0].api_url if shown else ""
        write_report(report, result or ApplyResult(api_url, started_at=started, finished_at=now()))
    if result is None:
        return
    print_summary(result)
    if result.state_error:
        secho(f"Error: {clean_lines(result.state_error)}", fg="red", err=True)
        sys.exit(1)
    if result.interrupted:
        sys.exit(interrupt_exit_code())
    if not result.ok:
        sys.exit(1)
