"""``reconciler drift``: does the live API still match the specs, and if not, in what way."""

from __future__ import annotations

import sys

import click

from reconciler.cli.common import details_url_option, failures_in_format, max_chars_option
from reconciler.cli.console import Reporter, echo, handle_errors
from reconciler.cli.options import (
    api_options,
    shard_option,
    spec_paths_argument,
    state_option,
    target_option,
)
from reconciler.run.settings import Settings


@click.command()
@spec_paths_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="json for alerting (docs/drift.md); markdown for an issue or a job summary.",
)
@details_url_option
@max_chars_option
@target_option
@state_option
@shard_option
@api_options
@handle_errors
def drift(
    paths: tuple[str, ...],
    fmt: str,
    details_url: str | None,
    max_chars: int | None,
    targets: tuple[str, ...],
    settings: Settings,
) -> None:
    """Check, read-only, whether the live API still matches the specs.

    Plans the specs (default: specs/) against the API and sorts what is not in sync by what to
    do about it. It never writes a plan or the state and takes no lock, so a scheduled job can
    run it at any time. The exit status says which kind was found, the most serious one:

    \b
      0  in sync
      2  pending: merged specs not applied yet (declared, never created or rolled back)
      3  moved: the world changed (a legend edited by hand, a declared visualization gone,
         new imagery, a visualization nobody declared and no ignore rule covers)
      4  unhealthy: a declared visualization the API finished as failed or partial_success
      1  an error (the specs, the API, the state)

    \b
    Examples:
      reconciler drift --sandbox
      reconciler drift --format json > drift.json    # {"status": "moved", ...}
    """
    from reconciler.render.json import render_drift_json
    from reconciler.render.markdown import GITHUB_COMMENT_LIMIT, render_drift_markdown
    from reconciler.render.text import render_drift_text
    from reconciler.run.engine import Engine

    reporter = Reporter()
    with failures_in_format(fmt, "drift"):
        try:
            plan, found = Engine(settings, listener=reporter).drift(paths, targets=targets)
        finally:
            reporter.clear()
    if fmt == "json":
        echo(render_drift_json(plan, found), nl=False)
    elif fmt == "markdown":
        limit = max_chars or GITHUB_COMMENT_LIMIT
        echo(render_drift_markdown(plan, found, max_chars=limit, details_url=details_url), nl=False)
    else:
        echo(render_drift_text(plan, found), nl=False)
    # What the API refused to show cannot be told in sync or not: an error, after the rest.
    plan.raise_if_incomplete()
    sys.exit(found.exit_code)
