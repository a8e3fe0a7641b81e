"""Outside text made safe to print: one sanitiser for terminals, CI logs and comments."""

from __future__ import annotations

import pytest

from reconciler.text import clean, clean_lines


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Bengaluru-North", "Bengaluru-North"),
        ("Evil\n::error::pwned", "Evil\\n::error::pwned"),
        ("::error::x", "\\x3a:error::x"),
        ("a ::warning::wrapped", "a \\x3a:warning::wrapped"),
        ("\x1b[31mred\u202e", "\\x1b[31mred\\u202e"),
        ("http://[::1]:8080 a::b", "http://[::1]:8080 a::b"),
    ],
)
def test_clean_escapes_what_could_act_on_a_terminal_or_a_ci_log(raw: str, shown: str) -> None:
    assert clean(raw) == shown
    assert clean(shown) == shown  # printing twice does not escape twice
    assert "\n" not in shown


def test_clean_lines_keeps_the_line_breaks_of_a_message() -> None:
    assert clean_lines("stale:\n  - AOI x\n  ::error::y") == "stale:\n  - AOI x\n  \\x3a:error::y"
