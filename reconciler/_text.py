"""Quoting outside text (URLs, response bodies, exception messages) in our own messages."""

from __future__ import annotations

from reconciler.redact import redact

__all__ = ["SNIPPET_CHARS", "shorten"]

#: How much of an outside text to quote in a message.
SNIPPET_CHARS = 200


def shorten(text: str, limit: int = SNIPPET_CHARS) -> str:
    """``text`` on one line, cut to at most ``limit`` characters with a trailing ellipsis.

    A message quoting a whole HTML error page or a multi-line traceback would bury the one
    line a user needs. Secrets are redacted before cutting: a cut could leave half a key that
    later redaction no longer recognises.
    """
    text = " ".join(redact(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
