"""Who holds a state lock, and the errors that name them.

A lock's content is its ``Holder`` as JSON: the lock id, host, pid, command line (secret option
values left out) and start and heartbeat times. Every "locked" error carries the holder, when
its details are readable, so the message can say who to wait for and how to break a stale lock;
a lock its holder could not remove is a ``LockNotReleasedError`` carrying the command that does.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reconciler.errors import StateError
from reconciler.state.remotefs import display_url

# Option names whose value must never reach the lock's ``command`` (it is plain text on disk).
_SECRET_OPTION_WORDS = ("key", "token", "secret", "password")


@dataclass(frozen=True)
class Holder:
    """Who holds a lock; written into the lock as JSON."""

    id: str
    pid: int
    hostname: str
    started_at: str
    heartbeat_at: str
    command: str

    @classmethod
    def for_this_process(cls) -> Holder:
        """A new holder for this process, with a fresh lock id."""
        stamp = _now_iso()
        return cls(
            id=str(uuid.uuid4()),
            pid=os.getpid(),
            hostname=socket.gethostname(),
            started_at=stamp,
            heartbeat_at=stamp,
            command=_command_line(),
        )

    def beat(self) -> Holder:
        """This holder with its heartbeat set to now."""
        return Holder(**{**asdict(self), "heartbeat_at": _now_iso()})

    def heartbeat_age(self) -> float | None:
        """Seconds since the last heartbeat (by this host's clock), None if unreadable."""
        try:
            then = dt.datetime.fromisoformat(self.heartbeat_at)
        except ValueError:
            return None
        if then.tzinfo is None:
            then = then.replace(tzinfo=dt.UTC)
        return (dt.datetime.now(dt.UTC) - then).total_seconds()

    def describe(self) -> str:
        """'pid 12 on host ci-7, running 'reconciler apply' since …, last heartbeat 3 s ago'."""
        age = self.heartbeat_age()
        beat = f"{age:.0f} s ago" if age is not None else self.heartbeat_at
        return (
            f"pid {self.pid} on host {self.hostname}, running '{self.command}' since "
            f"{self.started_at}, last heartbeat {beat} (lock id {self.id})"
        )

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _HolderFile(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    pid: Annotated[int, Field(gt=0)]  # > 0: os.kill(0, 0) would probe our own process group
    hostname: str
    started_at: str
    command: str
    # Absent in locks written by older reconcilers: they heartbeat never, so started_at counts.
    id: str = ""
    heartbeat_at: str = ""


def parse_holder(raw: bytes) -> Holder | None:
    """The holder in a lock's bytes, or None if they are not valid holder details."""
    try:
        found = _HolderFile.model_validate_json(raw)
    except ValidationError:
        return None
    return Holder(
        id=found.id,
        pid=found.pid,
        hostname=found.hostname,
        started_at=found.started_at,
        heartbeat_at=found.heartbeat_at or found.started_at,
        command=found.command,
    )


class StateLockedError(StateError):
    """Another apply holds the state lock; ``holder`` says who, when its details are readable."""

    refusal = "locked"

    def __init__(self, message: str, *, holder: Holder | None = None) -> None:
        self.holder = holder
        super().__init__(message)


class LockWaitTimeoutError(StateLockedError):
    """The wait for the state lock reached the run's deadline (``--timeout``)."""

    refusal = "timeout"


class StaleLockError(StateLockedError):
    """The state lock's holder looks dead (old heartbeat, or its process is gone).

    Never broken automatically across hosts: the message gives the ``state unlock`` command.
    """


class LockNotReleasedError(StateError):
    """The state lock could not be removed when its holder was done: it is left behind.

    Every later apply finds the state locked until ``unlock`` (the exact ``reconciler state
    unlock`` command, with ``lock_id``) clears it; the message says so.
    """

    def __init__(self, message: str, *, lock_id: str, unlock: str) -> None:
        self.lock_id = lock_id
        self.unlock = unlock
        super().__init__(message)


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _command_line() -> str:
    """This process's command line for the lock, with any secret-looking value hidden."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    words = ["reconciler" if program == "__main__.py" else program]  # python -m reconciler
    hide_next = False
    for arg in sys.argv[1:]:
        name = arg.split("=", 1)[0].lower()
        secret = name.startswith("-") and any(w in name for w in _SECRET_OPTION_WORDS)
        if hide_next:
            words.append("***")
        elif secret and "=" in arg:
            words.append(arg.split("=", 1)[0] + "=***")
        else:
            words.append(display_url(arg) if "://" in arg else arg)
        hide_next = secret and "=" not in arg
    return " ".join(words)
