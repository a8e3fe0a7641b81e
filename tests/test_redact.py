"""The redaction of installed secrets from text, API details and log records.

Installed secrets stay installed for the whole test process, so each test uses its own
long, unlikely secret.
"""

from __future__ import annotations

import html
import json
import logging
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from reconciler.redact import (
    MAX_DEPTH,
    REDACTED,
    RedactingFormatter,
    install_redaction,
    redact,
    redact_bytes,
    redact_obj,
)
from reconciler.state.atomicfile import write_atomically
from reconciler.text import shorten


def test_installed_secret_is_replaced_everywhere_in_text() -> None:
    install_redaction("redact-test-alpha-1")
    assert redact("a redact-test-alpha-1 b redact-test-alpha-1") == f"a {REDACTED} b {REDACTED}"


def test_longer_secret_wins_over_one_it_contains() -> None:
    install_redaction("redact-test-beta")
    install_redaction("redact-test-beta-longer")
    # Replacing the short one first would leave "-longer" behind, half a secret.
    assert redact("x redact-test-beta-longer y") == f"x {REDACTED} y"


def test_very_short_secrets_are_not_scrubbed() -> None:
    install_redaction("q7z")
    assert redact("q7z is left alone") == "q7z is left alone"


def test_every_string_inside_details_is_redacted() -> None:
    install_redaction("redact-test-gamma-3")
    details = {"key": "redact-test-gamma-3", "seen": ["ok", {"in": "redact-test-gamma-3!"}], "n": 1}
    assert redact_obj(details) == {"key": REDACTED, "seen": ["ok", {"in": f"{REDACTED}!"}], "n": 1}


def test_log_records_on_existing_child_loggers_are_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    child = logging.getLogger("reconciler.redact_test_child")  # exists before installation
    install_redaction("redact-test-delta-4")
    caplog.set_level(logging.DEBUG)
    child.warning("key %s in args", "redact-test-delta-4")
    logging.getLogger("urllib3.connectionpool").debug("key redact-test-delta-4 in message")
    assert [r.getMessage() for r in caplog.records] == [
        f"key {REDACTED} in args",
        f"key {REDACTED} in message",
    ]


def test_every_escaped_form_of_a_secret_is_redacted() -> None:
    secret = "redact-'test\"epsilon\\5|%"
    install_redaction(secret)
    shown = [
        repr(secret),
        json.dumps(secret),
        json.dumps(repr(secret)),  # a JSON rendering of a message that quotes a repr
        quote(secret, safe=""),
        quote(secret, safe="").lower(),
        quote_plus(secret),
        html.escape(secret),
        secret.replace("|", "\\|"),  # a Markdown table cell
    ]
    for text in shown:
        assert "epsilon" not in redact(f"before {text} after"), text
        assert REDACTED in redact(text)


def test_bytes_are_redacted_too() -> None:
    install_redaction("redact-test-zeta-6")
    assert redact_bytes(b'{"id": "redact-test-zeta-6"}') == b'{"id": "***"}'


def test_a_cut_never_leaves_half_a_secret() -> None:
    install_redaction("redact-test-eta-7-" + "x" * 40)
    assert shorten("key " + "redact-test-eta-7-" + "x" * 40, 20) == "key ***"


def test_details_nested_beyond_the_bound_are_cut_not_recursed() -> None:
    deep: object = "leaf"
    for _ in range(5000):
        deep = [deep]
    out = redact_obj(deep)
    for _ in range(MAX_DEPTH + 1):
        assert isinstance(out, list)
        out = out[0]
    assert out == "…"


def test_the_formatter_redacts_tracebacks_too() -> None:
    install_redaction("redact-test-theta-8")
    try:
        raise ValueError("redact-test-theta-8")
    except ValueError:
        record = logging.LogRecord("other", logging.ERROR, "", 0, "failed", None, sys.exc_info())
    text = RedactingFormatter().format(record)
    assert "ValueError: ***" in text and "theta" not in text


def test_files_written_never_hold_a_secret(tmp_path: Path) -> None:
    install_redaction("redact-test-iota-9")
    # Refused, not written with *** in its place (which would change what the file says).
    with pytest.raises(OSError, match="it would hold the API key"):
        write_atomically(tmp_path / "a.json", '{"id": "redact-test-iota-9"}')
    with pytest.raises(OSError, match="it would hold the API key"):
        write_atomically(tmp_path / "b.bin", b"redact-test-iota-9")
    assert list(tmp_path.iterdir()) == []
