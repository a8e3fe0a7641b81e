"""Files a command writes for other programs to read: a plan, a report, exported specs.

Each is written whole or not at all (``state.atomicfile``), and a failure is the user's to fix
(a path they gave), so it is a ``ConfigError`` naming the file.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import ConfigError
from reconciler.state.atomicfile import write_atomically


def write_file(path: Path, text: str) -> None:
    """Write a plan or report whole or not at all (other programs read them)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text, mode=None)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
