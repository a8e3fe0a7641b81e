"""Where state lives: a local path or a URL, and the fsspec file system behind a URL.

``parse_location("s3://bucket/reconciler/state.json")`` says whether a ``--state`` value is a
local path (no scheme, or ``file://``) or a remote object (``s3://``, ``gs://``, ``az://``, ...)
served through fsspec and its backends, which are optional extras::

    pip install 'reconciler[s3]'      # s3fs: AWS S3, MinIO, Ceph, ... (AWS_* variables)
    pip install 'reconciler[gcs]'     # gcsfs: Google Cloud Storage
    pip install 'reconciler[azure]'   # adlfs: Azure Blob Storage

Credentials and endpoints come from each cloud's standard environment (for S3 the AWS variables,
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` included); nothing here reads or prints them.
``remote_error`` turns what those libraries raise into a ``StateError`` that names the URL (with
any user-info removed) and says what to check, never a traceback.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from reconciler.errors import ConfigError, StateError

log = logging.getLogger(__name__)

#: URL scheme -> the extra that installs its fsspec backend.
EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
}

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


@dataclass(frozen=True)
class Location:
    """A parsed ``--state``: ``path`` for a local file, else ``url`` (and its ``scheme``)."""

    path: Path | None = None
    url: str = ""
    scheme: str = ""

    @property
    def remote(self) -> bool:
        return self.path is None

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else display_url(self.url)


def parse_location(value: str | Path) -> Location:
    """A local path (plain, or ``file://``) or a remote URL; ``ConfigError`` if unusable."""
    if isinstance(value, Path):
        return Location(path=value)
    match = _SCHEME.match(value)
    if match is None:
        if not value.strip():
            raise ConfigError("--state is empty: give a file path or a URL such as s3://bucket/key")
        return Location(path=Path(value))
    scheme = match.group(1).lower()
    if scheme != "file" and scheme not in EXTRAS:
        # fsspec would read http(s):// and others, but cannot lock or write them: an apply
        # would fail only after planning, and a plan would read a state nobody can update.
        raise ConfigError(
            f"--state {display_url(value)}: {scheme}:// is not a supported state location; "
            "use a local path, file://, s3://, gs://, az:// or abfs[s]://"
        )
    if scheme == "file":
        path = urlsplit(value).path
        if not path:
            raise ConfigError(f"--state {value}: a file:// URL needs a path")
        return Location(path=Path(path))
    rest = value[match.end() :]
    if not rest.strip("/") or "/" not in rest.strip("/"):
        raise ConfigError(
            f"--state {display_url(value)}: expected {scheme}://BUCKET/PATH/state.json "
            "(a bucket or container, then the object's key)"
        )
    return Location(url=value, scheme=scheme)


def display_url(url: str) -> str:
    """``url`` without user-info (``scheme://user:secret@host`` -> ``scheme://***@host``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def install_hint(scheme: str) -> str:
    """The pip command that adds the backend of ``scheme``."""
    extra = EXTRAS.get(scheme)
    if extra is None:
        return "pip install fsspec (and the fsspec backend of this scheme)"
    return f"pip install 'reconciler[{extra}]'"


def open_filesystem(location: Location) -> tuple[Any, str]:
    """The fsspec file system and the object path inside it for a remote ``location``.

    ``ConfigError`` naming the ``pip install`` to run when fsspec or the scheme's backend is
    not installed, or when fsspec does not know the scheme.
    """
    what = f"--state {location}"
    try:
        import fsspec
        from fsspec.registry import known_implementations
    except ImportError:
        raise ConfigError(
            f"{what} needs the optional remote-state support: {install_hint(location.scheme)}"
        ) from None
    if location.scheme not in known_implementations and location.scheme not in EXTRAS:
        raise ConfigError(
            f"{what}: unknown URL scheme {location.scheme!r}; use a local path, file://, "
            "s3://, gs:// or az://"
        )
    try:
        # skip_instance_cache: each store gets its own client, so no listing cached by an
        # earlier one can hide an object another runner just wrote.
        fs, path = fsspec.core.url_to_fs(location.url, skip_instance_cache=True)
    except ImportError:
        raise ConfigError(
            f"{what} needs the {location.scheme}:// backend, which is not installed: "
            f"{install_hint(location.scheme)}"
        ) from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{what}: not a usable URL ({exc})") from None
    return fs, str(path)


def remote_error(action: str, url: str, exc: BaseException) -> StateError:
    """A ``StateError`` for ``exc`` raised while doing ``action`` (e.g. "read") on ``url``."""
    where = display_url(url)
    name = type(exc).__name__
    text = _first_line(str(exc)) or name
    if isinstance(exc, PermissionError) or _looks_like_auth(name, text):
        hint = (
            "check the credentials in the environment (for S3: AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE; for an S3-compatible store also "
            "AWS_ENDPOINT_URL_S3) and that they may read and write this bucket"
        )
        return StateError(f"cannot {action} {where}: access denied ({text}); {hint}")
    if isinstance(exc, FileNotFoundError):
        return StateError(
            f"cannot {action} {where}: {text}. Does the bucket (or container) exist? "
            "reconciler creates the object, not the bucket"
        )
    if "Credentials" in name or "credential" in text.lower():
        return StateError(
            f"cannot {action} {where}: no credentials found ({text}); set the cloud's standard "
            "variables (for S3: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
        )
    if "Endpoint" in name or "connect" in text.lower():
        return StateError(
            f"cannot {action} {where}: cannot reach the storage service ({text}); check the "
            "network and the endpoint (for S3: AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)"
        )
    return StateError(f"cannot {action} {where}: {name}: {text}")


def is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a storage failure to report (not a bug in reconciler).

    Backends raise ``OSError`` subclasses, but also their SDK's own errors (botocore's
    ``NoCredentialsError``, google-auth's, azure's); those are recognised by their module so
    that callers need not import the SDKs.
    """
    if isinstance(exc, OSError | TimeoutError):
        return True
    module = type(exc).__module__.split(".")[0]
    return module in {"botocore", "aiobotocore", "s3fs", "gcsfs", "google", "adlfs", "azure"}


def _looks_like_auth(name: str, text: str) -> bool:
    lowered = text.lower()
    return any(
        word in lowered
        for word in (
            "access denied",
            "accessdenied",
            "forbidden",
            "invalidaccesskeyid",
            "signaturedoesnotmatch",
            "access key id you provided",
            "request signature",
        )
    ) or name in {"ClientAuthenticationError", "Forbidden", "Unauthorized"}


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 300 else line[:297] + "..."
