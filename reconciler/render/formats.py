"""The plan's formats by name (``--format``): as a reviewer reads it (text, markdown) or a
machine does (json).

Renderers only read a ``Plan``; they never touch the network, files or the terminal, and they
return one string. Order is the plan's own (the planner sorts): the custom indices to create
come first (apply creates them first), then changes grouped by AOI, in order of first
appearance in ``plan.aois``, and within an AOI shown as creates, rollbacks, legends to set,
then warnings.

Everything shown comes from the API or the specs, so it is untrusted text: control characters
are escaped before they reach a terminal (no escape-code injection, no bidi tricks), and in
markdown names go into code spans, fences and HTML that they cannot break out of.

    from reconciler.render.formats import FORMATS, render
    text = render(plan, "text", color=True)
"""

from __future__ import annotations

from collections.abc import Callable

from reconciler.core.plan import Plan
from reconciler.errors import ConfigError
from reconciler.render import FORMAT_NAMES
from reconciler.render.json import render_json
from reconciler.render.markdown import GITHUB_COMMENT_LIMIT, render_markdown
from reconciler.render.text import render_text

#: The ``--format`` choices, in the order ``--help`` should list them.
FORMATS: dict[str, Callable[..., str]] = dict(
    zip(FORMAT_NAMES, (render_text, render_markdown, render_json), strict=True)
)


def render(
    plan: Plan,
    fmt: str,
    *,
    color: bool = False,
    comment_id: str | None = None,
    details_url: str | None = None,
    max_chars: int = GITHUB_COMMENT_LIMIT,
) -> str:
    """Render ``plan`` in format ``fmt`` (a key of ``FORMATS``); ``color`` only affects text,
    ``comment_id``, ``details_url`` and ``max_chars`` only markdown (see ``render_markdown``).

    Raises ``ConfigError`` for an unknown format.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown plan format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "text":
        return render_text(plan, color=color)
    if fmt == "markdown":
        return render_markdown(
            plan, comment_id=comment_id, details_url=details_url, max_chars=max_chars
        )
    return FORMATS[fmt](plan)
