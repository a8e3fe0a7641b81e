"""Where and how to talk to the API and keep state (``Settings``), apart from the engine that
uses them: the command line builds them for every command, including the ones (``validate``
offline, ``--help``) that must start without loading the engine, the HTTP client and the
planner."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.api.config import DEFAULT_API_URL, known_api_keys
from reconciler.core.shards import Shard
from reconciler.redact import install_environment_secrets, install_redaction, install_secret_file

#: What ``validate``, ``plan`` and ``apply`` read when given no spec paths.
DEFAULT_SPEC_PATHS = ("specs/",)


@dataclass(frozen=True)
class Settings:
    """Everything that says where and how to talk to the API and keep state.

    The key itself is not held here: only where to find it (``api_key_file``, else
    ``PIXXEL_API_KEY`` in ``environ``), read when a connection is opened.
    """

    api_url: str = DEFAULT_API_URL
    api_key_file: Path | None = None
    sandbox: bool = False
    parallelism: int = 8
    max_rps: float | None = None
    #: A path or URL (s3://, gs://, az://, file://); default .reconciler/state.json, and
    #: .reconciler/sandbox/state.json with the sandbox.
    state: str | Path | None = None
    #: Seconds to wait for another apply's state lock (0: fail at once).
    lock_timeout: float = 0.0
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)
    #: Seconds a whole command may take (``--timeout``); None: no limit beyond each request's.
    timeout: float | None = None
    #: This job's shard of the AOIs (``--shard I/N``): only its AOIs are read and planned, and
    #: its state is the shard's, beside ``state`` (``state.family``).
    shard: Shard | None = None


def guard_secrets(settings: Settings) -> None:
    """Make every secret the settings name unprintable, before any spec is read.

    Also for a command that never connects: a spec file may hold the key (a link to the key
    file), and nothing printed or written may show it. The remote state's credentials too.
    """
    for key in known_api_keys(settings.api_key_file, settings.environ):
        install_redaction(key)
    install_environment_secrets(settings.environ)
    if settings.api_key_file is not None:
        install_secret_file(settings.api_key_file)
