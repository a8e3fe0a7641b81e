"""``reconciler export``: write specs from what exists."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.common import carried_options
from reconciler.cli.console import Reporter, echo, handle_errors
from reconciler.cli.options import api_options, state_option
from reconciler.run.engine import Engine, ExportOptions
from reconciler.run.settings import Settings
from reconciler.text import command_line, plural

# --- export -----------------------------------------------------------------------------------


@click.command()
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
        check = command_line("plan", str(out), *carried_options(ctx), "--detailed-exitcode")
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
