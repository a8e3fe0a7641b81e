"""Keeping secrets out of everything we show or write: text, files, log records, API details.

The one place that knows which secrets exist. A client (or the engine, as soon as it knows
where the key is) registers it with ``install_redaction``; from then on:

- ``redact`` scrubs it from text, in every form it can take in what we print: as is, escaped
  the way ``repr``, JSON, HTML, Markdown tables, GitHub workflow commands and URLs escape it,
  and one such encoding inside another (a JSON rendering of a message that quotes a ``repr``);
- ``redact_bytes`` does the same for raw bytes (response bodies, before they are parsed);
- ``redact_obj`` scrubs every string inside a JSON-like value (an API error's ``details``);
- a process-wide logging filter scrubs records on the reconciler and urllib3 loggers, and
  ``RedactingFormatter`` scrubs whatever a handler finally writes (tracebacks included).

Every output path (the CLI's printing, ``write_atomically``, the log handler) goes through here,
so a key that reaches our data anyway (a spec file that is a symlink to the key file, a server
that echoes the key) is shown as ``***``.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from urllib.parse import quote, quote_plus

__all__ = [
    "REDACTED",
    "RedactingFormatter",
    "contains_secret",
    "install_redaction",
    "install_secret_file",
    "is_secret_file",
    "redact",
    "redact_bytes",
    "redact_obj",
]

#: What a secret is replaced with.
REDACTED = "***"

#: Secrets shorter than this are not scrubbed: replacing "ab" everywhere would mangle unrelated
#: text. They are still never printed by us.
_MIN_REDACTABLE = 4

#: ``redact_obj`` stops descending this deep; deeper parts are replaced (an API's ``details``
#: never nest like that, and a hostile answer must not exhaust the stack).
MAX_DEPTH = 32


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _lower_percent(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def _github_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


# How text is escaped on its way out: Python literals, JSON strings, HTML, Markdown table cells,
# GitHub Actions workflow commands, URL components (both hex cases).
_ENCODERS: tuple[Callable[[str], str], ...] = (
    lambda s: repr(s)[1:-1],
    lambda s: s.encode("unicode_escape").decode("ascii"),
    lambda s: s.replace("\\", "\\\\").replace("'", "\\'"),
    lambda s: s.replace("\\", "\\\\").replace('"', '\\"'),
    lambda s: json.dumps(s)[1:-1],
    lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    html.escape,
    lambda s: html.escape(s, quote=False),
    _markdown_cell,
    _github_data,
    _github_property,
    lambda s: quote(s, safe=""),
    quote,
    lambda s: quote_plus(s, safe=""),
    lambda s: _lower_percent(quote(s, safe="")),
)


def encodings(secret: str) -> set[str]:
    """Every form ``secret`` takes in our output: itself, each encoding, and two deep."""
    once = {secret} | {encode(secret) for encode in _ENCODERS}
    twice = {encode(form) for form in once for encode in _ENCODERS}
    return once | twice


class _Redactor(logging.Filter):
    """Knows the secrets; replaces every form of them with ``***`` in text, bytes and records.

    One instance is shared by every client, so installing the same secret twice is harmless.
    """

    def __init__(self) -> None:
        super().__init__("")
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._text: re.Pattern[str] | None = None
        self._bytes: re.Pattern[bytes] | None = None

    def add(self, secret: str) -> None:
        if len(secret) < _MIN_REDACTABLE:
            return
        with self._lock:
            if secret in self._secrets:
                return
            self._secrets.add(secret)
            forms = {form for s in self._secrets for form in encodings(s)}
            # Longest first: a secret containing another must be replaced whole.
            ordered = sorted(forms, key=lambda f: (-len(f), f))
            alternation = "|".join(re.escape(form) for form in ordered)
            self._text = re.compile(alternation)
            self._bytes = re.compile(
                b"|".join(re.escape(f.encode("utf-8", "surrogatepass")) for f in ordered)
            )

    def secrets(self) -> list[str]:
        with self._lock:
            return list(self._secrets)

    def redact(self, text: str) -> str:
        pattern = self._text
        return text if pattern is None else pattern.sub(REDACTED, text)

    def redact_bytes(self, data: bytes) -> bytes:
        pattern = self._bytes
        # Search first: a body without a secret (nearly all) is not copied.
        if pattern is None or pattern.search(data) is None:
            return data
        return pattern.sub(REDACTED.encode(), data)

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


_redactor = _Redactor()


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


#: Environment variables of the cloud SDKs (remote state) whose values are secrets.
CLOUD_SECRET_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
)

# The secret parts of an Azure connection string ("...;AccountKey=...;...").
_CONNECTION_STRING_SECRETS = re.compile(r"(?:AccountKey|SharedAccessSignature)=([^;]+)", re.I)


def install_environment_secrets(environ: Mapping[str, str]) -> None:
    """Redact the cloud credentials in ``environ`` (``CLOUD_SECRET_VARIABLES``) everywhere."""
    for name in CLOUD_SECRET_VARIABLES:
        value = environ.get(name, "").strip()
        if not value:
            continue
        install_redaction(value)
        for part in _CONNECTION_STRING_SECRETS.findall(value):
            install_redaction(part)


_secret_files: set[tuple[int, int]] = set()


def install_secret_file(path: str | os.PathLike[str]) -> None:
    """Remember that ``path`` (whatever links lead to it) holds a secret; unreadable: ignored."""
    try:
        info = os.stat(path)
    except OSError:
        return
    _secret_files.add((info.st_dev, info.st_ino))


def is_secret_file(info: os.stat_result) -> bool:
    """True if ``info`` (from ``stat`` or ``fstat``) is a file ``install_secret_file`` named."""
    return (info.st_dev, info.st_ino) in _secret_files


def contains_secret(data: bytes) -> bool:
    """True if ``data`` holds an installed secret as is (not escaped)."""
    return any(secret.encode("utf-8", "surrogatepass") in data for secret in _redactor.secrets())


def redact(text: str) -> str:
    """``text`` with every form of every installed secret replaced by ``***``."""
    return _redactor.redact(text)


def redact_bytes(data: bytes) -> bytes:
    """``data`` with every form of every installed secret replaced by ``***``."""
    return _redactor.redact_bytes(data)


def redact_obj(value: object, _depth: int = 0) -> object:
    """Redact secrets from every string (keys too) inside a JSON-like value.

    Nesting deeper than ``MAX_DEPTH`` is replaced by ``"…"``.
    """
    if _depth > MAX_DEPTH:
        return "…"
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_obj(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        return {redact(str(k)): redact_obj(v, _depth + 1) for k, v in value.items()}
    return value


class RedactingFormatter(logging.Formatter):
    """A formatter whose output never shows an installed secret (tracebacks included).

    The logging filter only reaches records of our own and urllib3's loggers, and runs before
    a traceback is formatted; this catches the rest at the handler.
    """

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
