"""Where the client's settings come from and which are acceptable: the API key and API URL.

No HTTP happens here. Every refusal is a ``ConfigError`` that says where the value came from
and never quotes the key.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from reconciler.errors import ConfigError
from reconciler.redact import MIN_KEY_CHARS
from reconciler.text import shorten

__all__ = [
    "DEFAULT_API_URL",
    "check_api_key",
    "known_api_keys",
    "normalise_base_url",
    "resolve_api_key",
]

#: A key file larger than this is not read for redaction (``known_api_keys``); keys are short.
_PEEK_LIMIT = 64 * 1024

#: Where the CLI points the client when neither --api-url nor PIXXEL_API_URL says otherwise.
DEFAULT_API_URL = "https://api.pixxel.space"


def resolve_api_key(key_file: Path | None, environ: Mapping[str, str]) -> str:
    """Find the API key: ``--api-key-file`` if given, else ``PIXXEL_API_KEY``.

    Surrounding whitespace is stripped (files usually end with a newline). A key shorter than
    ``MIN_KEY_CHARS`` is refused: it could not be kept out of output. Every failure is a
    ``ConfigError`` naming where the key was looked for, never quoting any of its content.
    """
    if key_file is not None:
        try:
            text = Path(key_file).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"API key file {key_file} does not exist.") from None
        except IsADirectoryError:
            raise ConfigError(f"API key file {key_file} is a directory, not a file.") from None
        except UnicodeDecodeError:
            # The codec error quotes bytes of the file: say only that it is not text.
            raise ConfigError(f"API key file {key_file} is not UTF-8 text.") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConfigError(f"Cannot read API key file {key_file}: {reason}.") from None
        key = text.strip()
        if not key:
            raise ConfigError(f"API key file {key_file} is empty.")
        check_api_key(key, f"API key file {key_file}")
        _check_redactable(key, f"API key file {key_file}")
        return key

    if "PIXXEL_API_KEY" in environ:
        key = environ["PIXXEL_API_KEY"].strip()
        if not key:
            raise ConfigError(
                "PIXXEL_API_KEY is set but empty. Put your API key in it, or use "
                "--api-key-file FILE."
            )
        check_api_key(key, "PIXXEL_API_KEY")
        _check_redactable(key, "PIXXEL_API_KEY")
        return key

    raise ConfigError(
        "No API key. Set the PIXXEL_API_KEY environment variable, or pass --api-key-file FILE "
        "(a file holding only the key). To try reconciler without a key, add --sandbox to run "
        "against the bundled emulator."
    )


#: Shorter words of a key text are not taken as a key of their own.
_MIN_PIECE = 8


def known_api_keys(key_file: Path | None, environ: Mapping[str, str]) -> list[str]:
    """Every key the settings name (the key file's and ``PIXXEL_API_KEY``), where readable.

    For redaction: a command that never connects (offline ``validate``) may still read a spec
    that holds a key (a symlink to the key file), and must not print it. Never raises; a key
    file is only read when it is a small regular file (never a FIFO or a terminal).
    """
    texts = []
    if key_file is not None:
        try:
            info = os.stat(key_file)
            if stat.S_ISREG(info.st_mode) and info.st_size <= _PEEK_LIMIT:
                texts.append(Path(key_file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            pass
    texts.append(environ.get("PIXXEL_API_KEY", ""))
    keys: list[str] = []
    for text in texts:
        for key in [text.strip(), *_key_pieces(text)]:
            if key and key not in keys:
                keys.append(key)
    return keys


def _key_pieces(text: str) -> list[str]:
    """The parts of a key text that may be the bare key: ``KEY # prod`` holds ``KEY``.

    The whole text is what the client sends, but a user who annotated the file still has the
    bare key elsewhere (and a spec may quote it): each line, without a ``#`` comment, and each
    word of it long enough to be a key are secrets too. Comments are left out, or a word of
    them ("production") would be scrubbed everywhere.
    """
    pieces = []
    for line in text.splitlines():
        content = line.split(" #", 1)[0].strip()
        if not content or content.startswith("#"):
            continue
        pieces.append(content)
        pieces += [word for word in content.split() if len(word) >= _MIN_PIECE]
    return pieces


def check_api_key(key: str, source: str) -> None:
    """Refuse keys that cannot travel in a header; ``source`` names where the key came from.

    requests would otherwise raise ``InvalidHeader`` quoting the whole header value, key
    included, in its message.
    """
    if not key.isascii() or not key.isprintable():
        raise ConfigError(
            f"The API key from {source} contains line breaks, control or non-ASCII characters; "
            "it must be a single line of plain text."
        )


def _check_redactable(key: str, source: str) -> None:
    # A key shorter than MIN_KEY_CHARS could not be scrubbed from what we print without
    # scrubbing those letters from every word: the command line never sends one, so every key
    # it sends is kept out of its output.
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError(
            f"The API key from {source} is shorter than {MIN_KEY_CHARS} characters, too short "
            "to be kept out of what reconciler prints, and no Pixxel API key is that short "
            "(a local emulator takes any longer one: reconciler emulator --api-key dev-key)."
        )


def normalise_base_url(base_url: str) -> tuple[str, bool]:
    """Check the API URL; return it without a trailing slash, and whether it is loopback.

    Only ``https://``, or ``http://`` to a loopback host (a local emulator), is accepted: the
    key must not travel unencrypted. Credentials, queries and fragments are refused.
    """
    shown = shorten(base_url, 120)
    try:
        parts = urlsplit(base_url.strip())
    except ValueError:
        raise ConfigError(f"API URL {shown!r} is not a valid URL.") from None
    if "@" in parts.netloc:
        # Credentials in the URL would end up in logs and messages (so this message does not
        # quote the URL); the key has its own place.
        raise ConfigError(
            "API URL must not contain a user name or password; pass the key with "
            "PIXXEL_API_KEY or --api-key-file."
        )
    try:
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigError(f"API URL {shown!r} is not a valid URL (bad host or port).") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(
            f"API URL {shown!r} must start with https:// and name a host, e.g. {DEFAULT_API_URL}."
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"API URL {shown!r} must not have a query string or fragment.")
    loopback = _is_loopback(host)
    if parts.scheme == "http" and not loopback:
        raise ConfigError(
            f"Refusing plain http:// for {host}: the API key would travel unencrypted. Use "
            "https://, or http:// only for a local emulator (localhost, 127.0.0.1, ::1)."
        )
    return parts.geturl().rstrip("/"), loopback


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
