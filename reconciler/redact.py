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
so a key that reaches our data anyway (a spec file that quotes the key, a server that echoes
it) is shown as ``***``. Files are different: ``secret_in`` lets a writer refuse a file that
would hold a secret, since a file with ``***`` in it no longer says what it said (a saved plan's
checksum, a spec path).

Only values long enough to be secrets are scrubbed: every form of a short one would also match
ordinary words (``AWS_SECRET_ACCESS_KEY=test`` against "latest"). See ``MIN_KEY_CHARS`` and
``MIN_SECRET_CHARS``; a value skipped is logged (by the variable's name, never its value).
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
    "MIN_KEY_CHARS",
    "MIN_SECRET_CHARS",
    "REDACTED",
    "RedactingFormatter",
    "install_environment_secrets",
    "install_redaction",
    "install_secret_file",
    "is_secret_file",
    "raw_secret_in",
    "redact",
    "redact_bytes",
    "redact_obj",
    "secret_in",
]

log = logging.getLogger(__name__)

#: What a secret is replaced with.
REDACTED = "***"

#: The shortest API key that is scrubbed. The key is the one value we are handed as a secret,
#: so it gets the lowest floor that still leaves text readable: one to three characters would
#: match inside ordinary words everywhere. The command line refuses shorter keys
#: (``api.config.resolve_api_key``), so every key it sends is scrubbed, whatever its length.
MIN_KEY_CHARS = 4

#: The shortest cloud credential from the environment (``CLOUD_SECRET_VARIABLES``) that is
#: scrubbed. Real ones are far longer: an AWS secret access key has 40 characters, session and
#: OAuth tokens hundreds, an Azure storage key 88, a SAS token or client secret 34 and more.
#: Shorter values there are local placeholders (localstack's ``test``, MinIO's ``minioadmin``,
#: ``password``): words that specs, paths and names contain, where scrubbing them corrupted
#: output. Sixteen leaves room below every generated secret and above those words.
MIN_SECRET_CHARS = 16

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
        self._secrets: dict[str, str] = {}  # secret -> where it came from ("the API key")
        self._forms: dict[str, str] = {}  # every form of every secret -> where it came from
        self._skipped: set[tuple[str, str]] = set()  # (source, value) logged as too short
        self._lock = threading.Lock()
        self._text: re.Pattern[str] | None = None
        self._bytes: re.Pattern[bytes] | None = None

    def add(self, secret: str, source: str, floor: int) -> None:
        if len(secret) < floor:
            self._skip(secret, source, floor)
            return
        with self._lock:
            if secret in self._secrets:
                return
            self._secrets[secret] = source
            for form in encodings(secret):
                self._forms.setdefault(form, source)
            # Longest first: a secret containing another must be replaced whole.
            ordered = sorted(self._forms, key=lambda f: (-len(f), f))
            alternation = "|".join(re.escape(form) for form in ordered)
            self._text = re.compile(alternation)
            self._bytes = re.compile(
                b"|".join(re.escape(f.encode("utf-8", "surrogatepass")) for f in ordered)
            )

    def _skip(self, value: str, source: str, floor: int) -> None:
        # Once per value (a command installs the environment's twice), and only once it can be
        # seen: logging is configured again when -v follows the command name, after the first
        # installation ran.
        if (source, value) in self._skipped or not log.isEnabledFor(logging.INFO):
            return
        self._skipped.add((source, value))
        log.info(
            "%s is shorter than %d characters, so it is taken for a placeholder, not a secret: "
            "it is not scrubbed from output (where it would match parts of ordinary words)",
            source,
            floor,
        )

    def secrets(self) -> dict[str, str]:
        with self._lock:
            return dict(self._secrets)

    def find(self, data: str | bytes) -> str | None:
        """Where the first secret in ``data`` (in any of its forms) came from, or None."""
        if isinstance(data, str):
            text = self._text
            match = text.search(data) if text is not None else None
            return None if match is None else self._forms[match.group(0)]
        pattern = self._bytes
        found = pattern.search(data) if pattern is not None else None
        if found is None:
            return None
        return self._forms[found.group(0).decode("utf-8", "surrogatepass")]

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


def install_redaction(
    secret: str, source: str = "the API key", *, floor: int = MIN_KEY_CHARS
) -> None:
    """Remember ``secret`` and attach the shared redacting filter to the loggers that matter.

    ``source`` says where the secret came from, for messages that refuse to show or write it
    (never the secret itself). A secret shorter than ``floor`` is not remembered; an INFO line
    names its source and says so, once.

    A logger's filters only see records logged on that very logger, not those propagated
    from its children, so the filter goes on every existing ``reconciler.*`` / ``urllib3.*``
    logger too (urllib3 logs from ``urllib3.connectionpool`` and friends).
    """
    _redactor.add(secret, source, floor)
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
    """Redact the cloud credentials in ``environ`` (``CLOUD_SECRET_VARIABLES``) everywhere.

    Values shorter than ``MIN_SECRET_CHARS`` are placeholders, not secrets: skipped, and
    logged at INFO by the variable's name.
    """
    for name in CLOUD_SECRET_VARIABLES:
        value = environ.get(name, "").strip()
        if not value:
            continue
        install_redaction(value, f"the value of {name}", floor=MIN_SECRET_CHARS)
        for part in _CONNECTION_STRING_SECRETS.findall(value):
            install_redaction(part, f"the key in {name}", floor=MIN_SECRET_CHARS)


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


def raw_secret_in(data: bytes) -> str | None:
    """Where an installed secret that ``data`` holds as is (not escaped) came from, or None.

    For input that is parsed before it is shown (a spec file): the parser may print a secret
    in a form redaction does not know (a number in decimal), so the raw bytes are checked.
    """
    for secret, source in _redactor.secrets().items():
        if secret.encode("utf-8", "surrogatepass") in data:
            return source
    return None


def secret_in(data: str | bytes) -> str | None:
    """Where an installed secret that ``data`` holds in any form came from, or None.

    For files about to be written: one that would hold a secret is refused, not written with
    ``***`` in its place.
    """
    return _redactor.find(data)


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
