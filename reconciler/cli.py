"""The ``reconciler`` command line: thin wrappers that parse flags, call the library, print.

Only this module prints to the terminal or chooses exit codes. Every ``ReconcilerError`` becomes
a one-paragraph message and exit status 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from reconciler import __version__
from reconciler.errors import ReconcilerError

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Turn the project's errors into a clear message and exit status 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ReconcilerError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


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
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="reconciler")


# --- emulator (issue 2) ---------------------------------------------------------------------
# --- validate / schema (issue 3) ------------------------------------------------------------
# --- plan (issue 4) -------------------------------------------------------------------------
# --- apply (issue 5) ------------------------------------------------------------------------
