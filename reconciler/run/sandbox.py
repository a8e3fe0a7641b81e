"""``--sandbox``: run any command against the bundled emulator, started in-process.

The sandbox world and its rollback state live under ``.reconciler/sandbox/`` so that
``plan`` → ``apply`` → ``plan`` converges across commands, and never mix with the state of a
real API. Delete that directory to start over.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from reconciler.emulator import Emulator

SANDBOX_DIR = Path(".reconciler/sandbox")

#: Long enough that apply visibly waits for readiness, short enough not to bore anyone.
CREATION_DELAY = 0.5


@dataclass(frozen=True)
class Sandbox:
    """Where the in-process emulator listens, the throwaway key it accepts, its state file."""

    url: str
    api_key: str
    state_path: Path

    def __repr__(self) -> str:  # the key is throwaway, but keys are never shown
        return f"Sandbox(url={self.url!r}, state_path={self.state_path!r})"


@contextmanager
def sandbox(directory: Path = SANDBOX_DIR) -> Iterator[Sandbox]:
    """Start the emulator on a free loopback port with the demo world persisted in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(24)
    emulator = Emulator(
        None,
        api_keys=(key,),
        creation_delay=CREATION_DELAY,
        state_file=directory / "world.json",
    )
    with emulator:
        yield Sandbox(url=emulator.url, api_key=key, state_path=directory / "state.json")


#: What plans made in the sandbox record as their API: the emulator's port changes every run,
#: and a saved sandbox plan must still apply in the next command.
SANDBOX_URL_LABEL = "sandbox:bundled-emulator"
