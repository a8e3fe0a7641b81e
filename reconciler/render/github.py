"""GitHub Actions workflow commands: spec problems as annotations on the pull request's diff."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.errors import Problem, Where
from reconciler.text import clean, clean_lines


def render_validation_github(problems: Sequence[Problem], notes: Sequence[Problem]) -> str:
    """The ``validate --format github`` output: one GitHub Actions workflow command per problem.

    ``::error file=…,line=…,col=…::message`` puts each problem on the pull request's diff, at its
    line; notes become ``::notice``. File names and messages are first made printable as the
    text format makes them (``text.clean``: no terminal control sequences, no line breaks, no
    workflow command of their own), then escaped as the Actions toolkit does, so a ``%``, ``:``
    or ``,`` cannot end the command early either.
    """
    lines = [_github_command("error", p.where, clean(p.message)) for p in problems]
    lines += [_github_command("notice", n.where, clean(n.message)) for n in notes]
    return "".join(line + "\n" for line in lines)


def render_github_error(message: str) -> str:
    """One ``::error::`` line for a failure that has no spec position (e.g. the API).

    Its lines stay lines (as the text format prints such an error), each made printable.
    """
    return _github_command("error", None, clean_lines(message)) + "\n"


def _github_command(kind: str, where: Where | None, message: str) -> str:
    props = f" title={_gh_property('reconciler validate')}"
    if where is not None:
        props = (
            f" file={_gh_property(clean(where.path))},line={where.line},col={where.column},"
            f"title={_gh_property('reconciler validate')}"
        )
    return f"::{kind}{props}::{_gh_data(message)}"


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")
