"""The ``reconciler`` command line: parse flags, call the engine, print, choose the exit code.

Only this layer prints or prompts. Every ``ReconcilerError`` becomes a one-paragraph message and
exit status 1 (``console.handle_errors``); anything else is a bug and keeps its traceback.

A command's module is imported when that command runs, never before: ``reconciler --help`` and
``--version`` start as fast as click itself (pre-commit hooks and CI steps pay the start-up on
every call), and ``validate`` does not load the HTTP client it does not use.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from reconciler import __version__
from reconciler.redact import install_environment_secrets

#: Every command: its module and object, and the one line ``reconciler --help`` shows for it
#: (the first line of its docstring: tests/test_startup.py keeps them the same).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "apply": (
        "reconciler.cli.apply",
        "apply",
        "Create what is missing, roll back and set the declared legends.",
    ),
    "drift": (
        "reconciler.cli.drift",
        "drift",
        "Check, read-only, whether the live API still matches the specs.",
    ),
    "emulator": (
        "reconciler.cli.emulator",
        "emulator_command",
        "Run a local fake of the Pixxel API, for trying reconciler without an API key.",
    ),
    "export": (
        "reconciler.cli.export",
        "export",
        "Write specs that declare the visualizations that exist now.",
    ),
    "plan": (
        "reconciler.cli.plan",
        "plan",
        "Show what apply would change, without changing anything.",
    ),
    "schema": (
        "reconciler.cli.validate",
        "schema",
        "Print the JSON Schema of spec files, for editor completion and checks.",
    ),
    "show": (
        "reconciler.cli.plan",
        "show",
        "Show a saved plan, or shard plans merged into one, offline, in any format.",
    ),
    "state": (
        "reconciler.cli.state",
        "state_command",
        "Inspect or repair the rollback state, or break a stale lock.",
    ),
    "validate": (
        "reconciler.cli.validate",
        "validate",
        "Check spec files (offline; with --online also against the API).",
    ),
}

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
    from reconciler.cli.console import LogFormatter, isatty

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
    """A group whose every command (also of nested groups) accepts ``-v`` after its name, and
    whose commands are imported when they are used (``COMMANDS``)."""

    group_class = type  # nested groups are _Commands too
    lazy: dict[str, tuple[str, str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy:
            module, name, _ = self.lazy[cmd_name]
            command = getattr(importlib.import_module(module), name)
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from ``COMMANDS``: listing them imports none of them."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            # A stand-in carrying the command's line shortens it as click would the command's.
            command = self.commands.get(name) or click.Command(name, help=self.lazy[name][2])
            rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        _accept_verbose(cmd)
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


def _accept_verbose(cmd: click.Command) -> None:
    """Give ``cmd``, and every command of it if it is a group, a ``-v`` after its name.

    A group made with ``click.group`` (``state``) already holds its commands when it is
    added: each gets the flag here, so ``reconciler state show -v`` works as ``plan -v`` does.
    """
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
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _accept_verbose(sub)


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
    if os.environ.get("NO_COLOR"):  # https://no-color.org: any non-empty value
        ctx.color = False  # every click.echo below inherits it, errors on stderr too
    ctx.meta["reconciler.verbose"] = verbose
    _configure_logging(verbose)
    install_environment_secrets(os.environ)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="reconciler")


cli.lazy = COMMANDS
