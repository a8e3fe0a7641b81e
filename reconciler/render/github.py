"""GitHub Actions workflow commands: spec problems as annotations on the pull request's diff."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.errors import Problem
from reconciler.text import clean_lines


def render_validation_github(problems: Sequence[Problem], notes: Sequence[Problem]) -> str:
    """The ``validate --format github`` output: one GitHub Actions workflow command per problem.

    ``::error file=…,line=…,col=…::message`` puts each problem on the pull request's diff, at its
    line; notes become ``::notice``. Values are escaped as the Actions toolkit does, so a message
    with a newline, ``%``, ``:`` or ``,`` cannot end the command early or inject another one.
    """
    lines = [_github_command("error", p) for p in problems]
    lines += [_github_command("notice", n) for n in notes]
    return "".join(line + "\n" for line in lines)


def render_github_error(message: str) -> str:
    """One ``::error::`` line for a failure that has no spec position (e.g. the API)."""
    return _github_command("error", Problem(message)) + "\n"


def _github_command(kind: str, problem: Problem) -> str:
    where = problem.where
    props = f" title={_gh_property('reconciler validate')}"
    if where is not None:
        props = (
            f" file={_gh_property(where.path)},line={where.line},col={where.column},"
            f"title={_gh_property('reconciler validate')}"
        )
    return f"::{kind}{props}::{_gh_data(clean_lines(problem.message))}"


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")
