"""Outside text (names and messages from the API or the specs, URLs, response bodies) in our
own output: made safe to print, short enough to read, and the names closest to a typo.

Everything printed to a terminal or a CI log goes through ``clean`` (one line) or
``clean_lines`` (a message of several lines), so no name can recolour a terminal, start a
line of its own, or be read as a CI workflow command (``::error::…`` on GitHub Actions).
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.redact import redact

__all__ = [
    "SNIPPET_CHARS",
    "clean",
    "clean_lines",
    "closest",
    "command_line",
    "plural",
    "shorten",
]

#: How much of an outside text to quote in a message.
SNIPPET_CHARS = 200

#: ``::`` where a runner would read a workflow command: at the start of a line once leading
#: blanks are trimmed, which wrapping can make of any word.
_COMMAND_START = re.compile(r"(?:^|(?<=\s))::")


def clean(text: str) -> str:
    """``text`` as one printable line.

    Anything non-printable (newlines, ANSI escapes, bidi overrides) is escaped as ``\\xNN``,
    and so is the first colon of a ``::`` that starts a word (``\\x3a:error::``).
    """
    if not text.isprintable():
        text = "".join(
            ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
        )
    return _COMMAND_START.sub(r"\\x3a:", text) if "::" in text else text


def clean_lines(text: str) -> str:
    """``text`` with its line breaks kept and every line ``clean``."""
    return "\n".join(clean(line) for line in text.split("\n"))


def shorten(text: str, limit: int = SNIPPET_CHARS) -> str:
    """``text`` on one line, cut to at most ``limit`` characters with a trailing ellipsis.

    A message quoting a whole HTML error page or a multi-line traceback would bury the one
    line a user needs. Secrets are redacted before cutting: a cut could leave half a key that
    later redaction no longer recognises.
    """
    text = " ".join(redact(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_kind(value: Any) -> str:
    """What a decoded JSON value is, for a message about an answer of the wrong shape: 'null',
    'a string', 'the number 7' (shortened: an answer may hold any number of digits)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {shorten(repr(value), 30)}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    return type(value).__name__


def plural(count: int, word: str) -> str:
    """'1 change', '2 changes', '1,600 changes'."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def closest(word: str, candidates: Iterable[str], n: int = 3) -> str:
    """' (closest: a, b)' for an error message, or '' when nothing is close.

    Case is ignored, and a candidate with exactly the same letters (a transposition such as
    NVDI for NDVI, the most common typo) comes first.
    """
    by_lower = {c.lower(): c for c in sorted(set(candidates))}
    key = word.lower()
    scored = [(difflib.SequenceMatcher(None, key, c).ratio(), c) for c in by_lower]
    ranked = sorted(
        ((score, c) for score, c in scored if score >= 0.5),
        key=lambda sc: (sorted(sc[1]) != sorted(key), -sc[0], sc[1]),
    )
    matches = [by_lower[c] for _, c in ranked[:n]]
    return f" (closest: {', '.join(matches)})" if matches else ""


def command_line(*words: str) -> str:
    """'reconciler plan --out plan.json': a command to suggest, quoted to work as printed."""
    return " ".join(shlex.quote(word) for word in ("reconciler", *words))
