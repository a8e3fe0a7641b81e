"""The ``reconciler`` command line: parse flags, call the engine, print, choose the exit code.

Only this layer prints or prompts. Every ``ReconcilerError`` becomes a one-paragraph message and
exit status 1 (``console.handle_errors``); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from reconciler import __version__
from reconciler.cli.apply import apply
from reconciler.cli.common import no_color_env
from reconciler.cli.console import LogFormatter, isatty
from reconciler.cli.drift import drift
from reconciler.cli.emulator import emulator_command
from reconciler.cli.export import export
from reconciler.cli.plan import plan, show
from reconciler.cli.state import state_command
from reconciler.cli.validate import schema, validate
from reconciler.redact import install_environment_secrets

_VERBOSE_HELP = "Log more to stderr (-vv: every request); also accepted after the command."


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
    if no_color_env():
        ctx.color = False  # every click.echo below inherits it, errors on stderr too
    ctx.meta["reconciler.verbose"] = verbose
    _configure_logging(verbose)
    install_environment_secrets(os.environ)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="reconciler")


cli.add_command(emulator_command)


for command in (
    emulator_command,
    state_command,
    validate,
    schema,
    export,
    plan,
    show,
    drift,
    apply,
):
    cli.add_command(command)
