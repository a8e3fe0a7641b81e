"""Untrusted text made safe for markdown: code spans and fences that names cannot end early,
and links that go only where they say.

GitHub renders a comment as markdown with HTML: a name with backticks could close a span or a
fence and turn the rest into live markup, mentions or links. Everything here leaves such text
literal, whatever it holds.
"""

from __future__ import annotations

import re

from reconciler.render.layout import safe_url


def safe_link(url: str) -> str:
    """A URL for a markdown link target: http(s) only, nothing that ends the link early."""
    cleaned = safe_url(url)
    if not cleaned.startswith(("https://", "http://")):
        return "#"
    return "".join(f"%{ord(ch):02X}" if ch in "()<> `[]\\" else ch for ch in cleaned)


def code_span(text: str) -> str:
    """A code span ``text`` cannot end early: backticks, markup, @mentions all stay literal."""
    if not text:
        return "` `"
    # A span closes at the first backtick run of exactly its own length, so use a length no
    # run inside has.
    runs = {len(run) for run in _BACKTICK_RUN.findall(text)}
    ticks = next(n for n in range(1, len(text) + 2) if n not in runs)
    # CommonMark strips one space from each end when both are present, so pad symmetrically.
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{'`' * ticks}{pad}{text}{pad}{'`' * ticks}"


def fence_for(body: str) -> str:
    """A code fence that outruns any backtick run inside ``body``: names cannot close it."""
    longest = max((len(run) for run in _BACKTICK_RUN.findall(body)), default=0)
    return "`" * max(3, longest + 1)


_BACKTICK_RUN = re.compile(r"`+")
