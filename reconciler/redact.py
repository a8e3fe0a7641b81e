"""Keeping secrets out of text we show: log records, error messages and echoed API details.

The one place that knows which secrets exist. A client registers its key with
``install_redaction``; from then on ``redact`` and ``redact_obj`` scrub it from text, and a
process-wide logging filter scrubs it from every record on the reconciler and urllib3 loggers.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["REDACTED", "install_redaction", "redact", "redact_obj"]

#: What a secret is replaced with.
REDACTED = "***"

#: Secrets shorter than this are not scrubbed from log text: replacing "ab" everywhere would
#: mangle unrelated messages. They are still never logged by us.
_MIN_REDACTABLE = 4


class _RedactingFilter(logging.Filter):
    """Replaces known secrets in log records with ``***`` (defence in depth).

    We never log the key; this catches a third party (or a future bug) that does. One
    instance is shared by every client, so installing it twice is harmless.
    """

    def __init__(self) -> None:
        super().__init__("")
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        if len(secret) >= _MIN_REDACTABLE:
            with self._lock:
                self._secrets.add(secret)

    def redact(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the handler's problem, not ours
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


_redactor = _RedactingFilter()


def install_redaction(secret: str) -> None:
    """Remember ``secret`` and attach the shared redacting filter to the loggers that matter.

    A logger's filters only see records logged on that very logger, not those propagated
    from its children, so the filter goes on every existing ``reconciler.*`` / ``urllib3.*``
    logger too (urllib3 logs from ``urllib3.connectionpool`` and friends).
    """
    _redactor.add(secret)
    names = ["reconciler", "urllib3"]
    names += [
        name
        for name in list(logging.Logger.manager.loggerDict)
        if name.startswith(("reconciler.", "urllib3."))
    ]
    for name in names:
        logging.getLogger(name).addFilter(_redactor)  # addFilter ignores duplicates


def redact(text: str) -> str:
    """``text`` with every installed secret replaced by ``***``."""
    return _redactor.redact(text)


def redact_obj(value: object) -> object:
    """Redact secrets from every string inside a JSON-like value (an API ``details``)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_obj(v) for v in value]
    if isinstance(value, dict):
        return {k: redact_obj(v) for k, v in value.items()}
    return value
