"""The redaction of installed secrets from text, API details and log records.

Installed secrets stay installed for the whole test process, so each test uses its own
long, unlikely secret.
"""

from __future__ import annotations

import logging

import pytest

from reconciler.redact import REDACTED, install_redaction, redact, redact_obj


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
