"""Cleanup that a stop signal must not cut short: saving the state and releasing its lock.

The CLI turns SIGTERM, SIGHUP and Ctrl-C into ``KeyboardInterrupt`` wherever the main thread
is. That is right while apply works (it stops starting changes), and wrong while the final
state is written or the lock removed: an exception there leaves the lock behind and a report
that says less than what happened. Code doing such cleanup runs inside ``shielded()``; the
signal handlers ask ``active()`` and, while it is true, only note the signal (``noted()``)::

    with shielded():
        store.flush()
        lock.release()

Nesting is allowed. The state is per process: signal handlers run in the main thread, and
only the main thread's cleanup needs shielding.

While changes are being made, a signal must stop them cleanly, but an exception raised
wherever the main thread is could cut the bookkeeping of what was done. Code that can stop
on request runs inside ``delivering(stop)``: the handlers then call ``stop(reason)`` instead
of raising (``sink()``). Shielding wins over delivering.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

# Reentrant: a signal handler runs in the main thread, maybe while it holds this very lock.
_mutex = threading.RLock()
_depth = 0
_noted: list[str] = []
_sinks: list[Callable[[str], None]] = []


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


@contextlib.contextmanager
def delivering(stop: Callable[[str], None]) -> Iterator[None]:
    """Within the block, stop signals call ``stop(reason)`` instead of interrupting."""
    with _mutex:
        _sinks.append(stop)
    try:
        yield
    finally:
        with _mutex:
            _sinks.remove(stop)


def sink() -> Callable[[str], None] | None:
    """Where a stop signal goes instead of interrupting, if anywhere (the innermost)."""
    with _mutex:
        return _sinks[-1] if _sinks else None
