"""``reconciler validate`` and ``reconciler schema``: check specs, print their JSON Schema."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import IO

import click

from reconciler.cli.console import Reporter, echo, handle_errors, secho
from reconciler.cli.options import api_options, state_option
from reconciler.errors import ReconcilerError, SpecError
from reconciler.run.settings import DEFAULT_SPEC_PATHS, Settings, guard_secrets
from reconciler.spec.outcome import Outcome
from reconciler.text import clean, plural

# --- validate / schema ------------------------------------------------------------------------


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "github", "gitlab"]),
    default="text",
    show_default=True,
    help="text: one 'path:line:column: message' line per problem; json: for machines; "
    "github: GitHub Actions annotations (::error file=…,line=…,col=…::message); gitlab: a "
    "GitLab Code Quality report on stdout (the problems as text on stderr).",
)
@click.option(
    "--online",
    is_flag=True,
    help="Also resolve every AOI, index, asset, rollback date and mode against the API, in "
    "the same round as the offline checks.",
)
@state_option
@api_options
@handle_errors
def validate(paths: tuple[str, ...], output_format: str, online: bool, settings: Settings) -> None:
    """Check spec files (offline; with --online also against the API).

    PATHS are spec files or directories (searched recursively for *.yaml and *.yml; hidden
    ones are skipped); the default is specs/. Every problem in every file is reported at
    once, as path:line:column: message, so editors and CI can jump to it. Exit status: 0
    when the specs are valid, 1 when not.

    \b
    Examples:
      reconciler validate                         # everything under specs/
      reconciler validate specs/team-a.yaml       # one file
      reconciler validate --format json specs/    # {"valid": ..., "problems": [...]}
      reconciler validate --online --format github   # annotations on the pull request's diff
      reconciler validate --online --format gitlab > gl-code-quality-report.json

    Files checked before are not checked again: the spec cache (RECONCILER_CACHE_DIR; off
    or empty turns it off) keeps what each file declared and, for a set of files, the whole
    outcome. Checked offline: the YAML itself, unknown or missing keys, ISO dates, empty or
    repeated dates, one rollback entry per mode, and visualizations declared twice
    (also across files). With --online (read-only) also: AOI, index and asset names,
    ids and dates exist; rollback dates are dates of the visualization's assets (for
    `assets: any`, of the one the state remembers, as plan picks it); the index can have
    the rolled-back legend mode. Both in one round: what an offline problem leaves whole
    is checked online too, and a note says what it leaves out (an entry whose AOI is not
    valid, a file that is not YAML).

    \b
      reconciler validate --online --sandbox      # against the bundled emulator
    """
    if output_format != "text":
        from reconciler.render.github import render_github_error, render_validation_github
        from reconciler.render.gitlab import render_validation_gitlab
        from reconciler.render.json import render_failure_json, render_validation_json

    targets = paths or DEFAULT_SPEC_PATHS
    reporter = Reporter()
    try:
        if online:
            from reconciler.run.engine import Engine

            report = Engine(settings, listener=reporter).validate(targets, online=True)
            result = Outcome.of(report)
        else:
            # Straight to the spec loader: offline, validate runs on every commit (pre-commit)
            # and must not pay for loading the engine, the HTTP client and the planner; over
            # files it validated before, not even for the spec checks (spec.outcome).
            from reconciler.spec.outcome import validate_offline

            guard_secrets(settings)
            result = validate_offline(targets)
    except SpecError as exc:
        # Nothing to check (missing path, empty directory): text mode says so on stderr via
        # handle_errors; machines still get an answer on stdout.
        if output_format == "json":
            echo(render_validation_json((), exc.problems, ()))
        elif output_format == "github":
            echo(render_validation_github(exc.problems, ()), nl=False)
        elif output_format == "gitlab":
            echo(render_validation_gitlab((), ()), nl=False)  # a report GitLab can read
        raise
    except ReconcilerError as exc:
        # --online could not reach the API: still an answer for machines.
        if output_format == "json":
            echo(render_failure_json(exc, "validate"), nl=False)
        elif output_format == "github":
            echo(render_github_error(str(exc)), nl=False)
        elif output_format == "gitlab":
            echo(render_validation_gitlab((), ()), nl=False)
        raise
    finally:
        reporter.clear()

    if output_format == "json":
        echo(render_validation_json(result.files, result.problems, result.notes))
    elif output_format == "github":
        echo(render_validation_github(result.problems, result.notes), nl=False)
        if result.problems:
            echo(f"{plural(len(result.problems), 'problem')} in the specs", err=True)
    elif output_format == "gitlab":
        echo(render_validation_gitlab(result.problems, result.notes), nl=False)
        # The report goes to a file: the job's log says the same as text.
        _print_text(result, targets, err=True)
    else:
        _print_text(result, targets)
    sys.exit(1 if result.problems else 0)


def _print_text(result: Outcome, targets: Sequence[str], *, err: bool = False) -> None:
    """Every problem and note as ``path:line:column: message``, then how many problems there
    are, or what the valid specs declare."""
    for problem in result.problems:
        echo(clean(str(problem)), err=err)
    for note in result.notes:
        text = f"{note.where}: note: {note.message}" if note.where else note.message
        echo(clean(text), err=err)
    if result.problems:
        files = {p.where.path for p in result.problems if p.where is not None}
        summary = f"{plural(len(result.problems), 'problem')} in {plural(len(files), 'file')}"
        secho(summary, fg="red", err=err)
        return
    tally = result.tally
    indices = tally.indices
    secho(
        f"{' '.join(targets)} is valid: {plural(len(result.files), 'file')}, "
        f"{plural(tally.aois, 'AOI')}"
        + (f", {plural(tally.selectors, 'selector')}" if tally.selectors else "")
        + f", {plural(tally.visualizations, 'visualization')}"
        + (f", {indices} custom {'index' if indices == 1 else 'indices'}" if indices else ""),
        fg="green",
        err=err,
    )


@click.command()
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

    from reconciler.spec.models import SpecFile

    out.write(json.dumps(SpecFile.model_json_schema(), indent=2) + "\n")
