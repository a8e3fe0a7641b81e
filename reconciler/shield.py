"""Cleanup that a stop signal must not cut short: saving the state and releasing its lock.

The command line turns SIGTERM, SIGHUP and Ctrl-C into ``KeyboardInterrupt`` wherever the main
thread is, before any change (``run.signals``). An exception while the final state is written
or the lock removed would leave the lock behind and a report that says less than what
happened. Code doing such cleanup runs inside ``shielded()``; the signal handlers ask
``active()`` and, while it is true, only note the signal (``noted()``)::

    with shielded():
        store.flush()
        lock.release()

Nesting is allowed. The state is per process: signal handlers run in the main thread, and
only the main thread's cleanup needs shielding. This module knows nothing of signals, so the
layers that have such cleanup (the state store) need not know the command line's policy.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

# Reentrant: a signal handler runs in the main thread, maybe while it holds this very lock.
_mutex = threading.RLock()
_depth = 0
_noted: list[str] = []


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Within the block, stop signals are noted instead of interrupting."""
    global _depth
    with _mutex:
        _depth += 1
    try:
        yield
    finally:
        with _mutex:
            _depth -= 1


def active() -> bool:
    """Whether cleanup is running that a signal must not interrupt."""
    return _depth > 0


def note(name: str) -> None:
    """Remember that ``name`` (e.g. 'SIGTERM') arrived during cleanup."""
    with _mutex:
        _noted.append(name)


def noted() -> list[str]:
    """The signals that arrived during cleanup, oldest first (and forget them)."""
    with _mutex:
        names = list(_noted)
        _noted.clear()
        return names
