"""What the commands share: colour, plan output, failures as documents, follow-up hints."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import click

from reconciler.cli.console import echo, isatty
from reconciler.core.plan import Plan
from reconciler.errors import ReconcilerError


def no_color_env() -> bool:
    """NO_COLOR (https://no-color.org): any non-empty value turns colour off."""
    return bool(os.environ.get("NO_COLOR"))


def use_color(option: bool | None, stream: IO[str] | None = None) -> bool:
    if option is not None:
        return option
    return isatty(stream or sys.stdout) and not no_color_env()


def show_plan(
    plan: Plan,
    fmt: str,
    color: bool,
    *,
    comment_id: str | None = None,
    details_url: str | None = None,
    max_chars: int | None = None,
) -> None:
    from reconciler.render.formats import render
    from reconciler.render.markdown import GITHUB_COMMENT_LIMIT

    text = render(
        plan,
        fmt,
        color=color,
        comment_id=comment_id,
        details_url=details_url,
        max_chars=max_chars or GITHUB_COMMENT_LIMIT,
    )
    echo(text, nl=False, color=color)


@contextmanager
def failures_in_format(fmt: str, command: str, comment_id: str | None = None) -> Iterator[None]:
    """In markdown and json, a failure is still a document on stdout (the PR comment, the
    machine's answer) saying what went wrong; the error also goes to stderr, exit 1."""
    try:
        yield
    except ReconcilerError as exc:
        from reconciler.render.json import render_failure_json
        from reconciler.render.markdown import render_failure_markdown

        if fmt == "json":
            echo(render_failure_json(exc, command), nl=False)
        elif fmt == "markdown":
            echo(render_failure_markdown(exc, command, comment_id=comment_id), nl=False)
        raise


#: Options whose values a follow-up command needs to reach the same API and state.
CARRIED = (("sandbox", "--sandbox"), ("api_url", "--api-url"), ("api_key_file", "--api-key-file"))


def carried_options(ctx: click.Context) -> list[str]:
    """The flags of this invocation that the next command must repeat to work as printed."""
    words: list[str] = []
    for name, flag in (*CARRIED, ("state_path", "--state"), ("shard", "--shard")):
        value = ctx.params.get(name)
        if value in (None, False):
            continue
        # Environment variables are still set for the next command; flags are not.
        if ctx.get_parameter_source(name) != click.core.ParameterSource.COMMANDLINE:
            continue
        words += [flag] if value is True else [flag, str(value)]
    return words


def check_comment_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from reconciler.errors import ConfigError
    from reconciler.render.markdown import comment_marker

    try:
        comment_marker(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


comment_id_option = click.option(
    "--comment-id",
    metavar="ID",
    callback=check_comment_id,
    help="markdown: end the comment with <!-- reconciler-plan:ID --> instead of "
    "<!-- reconciler-plan -->, so several plans (of several spec directories, say) each update "
    "their own comment. Shard plans are better merged into one: 'reconciler show PLAN...'.",
)
max_chars_option = click.option(
    "--max-chars",
    type=click.IntRange(min=2_048),
    default=None,
    metavar="N",
    help="markdown: stay under N characters (default 65,536, a GitHub comment; a job summary "
    "holds 1 MiB: --max-chars 1000000).",
)
details_url_option = click.option(
    "--details-url",
    metavar="URL",
    help="markdown: where the full plan is kept (e.g. the CI job's artifacts), linked from the "
    "note of a comment cut to fit GitHub's size limit.",
)
