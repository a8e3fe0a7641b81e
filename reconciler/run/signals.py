"""Stop signals: what Ctrl-C, SIGTERM (how CI cancels a job) and SIGHUP do to a command.

One policy, in one place, decided per moment of the command:

- **Before any change** (reading specs, planning, waiting for the lock) a signal raises
  ``KeyboardInterrupt`` where the main thread is, so the command unwinds at once: nothing has
  been changed, and the exit status says which signal it was (130, 143, 129).
- **While changes are made** (``delivering(stop)``) a signal calls ``stop(reason)`` instead
  of raising: apply starts nothing new, lets requests in flight finish and accounts for every
  change. Raising there could cut the bookkeeping of what was done in half.
- **From the moment changes end** to the end of the command, and during any cleanup marked
  ``shield.shielded()`` (saving the state, releasing its lock), a signal is only noted: what
  was done is saved, printed and reported before the command ends.

``stop_on_signals()`` installs the handlers for the duration of a command (the CLI wraps every
command in it); code that is not run by the CLI (tests, benchmarks) keeps Python's defaults.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from reconciler import shield

log = logging.getLogger(__name__)

#: Signals that stop a command like Ctrl-C: CI cancels a job with SIGTERM; a closed terminal or
#: SSH session sends SIGHUP.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)

# Reentrant: a signal handler runs in the main thread, maybe while it holds this very lock.
_mutex = threading.RLock()
_sinks: list[Callable[[str], None]] = []
_stopped_by: list[int] = []  # the signal that stopped the running command, if one did
_changes_ended = False  # changes were made and have ended: signals are only noted from now on


def interrupt_exit_code() -> int:
    """128 + the signal that stopped the command (143 SIGTERM, 129 SIGHUP); 130 for Ctrl-C."""
    return 128 + _stopped_by[0] if _stopped_by else 130


def interrupt_message(exc: KeyboardInterrupt) -> str:
    """'stopped by SIGTERM' or 'interrupted (Ctrl-C)'."""
    return str(exc) or "interrupted (Ctrl-C)"


def stop_reason() -> str:
    """What stopped the command, for a summary: 'stopped by SIGTERM', else 'Ctrl-C'."""
    return f"stopped by {signal.Signals(_stopped_by[0]).name}" if _stopped_by else "Ctrl-C"


@contextlib.contextmanager
def delivering(stop: Callable[[str], None]) -> Iterator[None]:
    """Within the block, stop signals call ``stop(reason)`` instead of interrupting; after it,
    until the command ends, they are only noted (the changes it made are being reported)."""
    global _changes_ended
    with _mutex:
        _sinks.append(stop)
    try:
        yield
    finally:
        with _mutex:
            # Noting starts before delivering ends: a signal in between must not raise.
            _changes_ended = True
            _sinks.remove(stop)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP stop the command like Ctrl-C does (see above).

    A repeat of the signal while stopping is ignored (Ctrl-C still interrupts). Only the main
    thread can install handlers; elsewhere the block runs unchanged.
    """
    global _changes_ended
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _stopped_by.clear()
    _changes_ended = False

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if shield.active() or _changes_ended:
            # Saving the state, releasing the lock, reporting: cutting that short would leave
            # the lock behind and the report wrong, so finish first.
            shield.note(name)
            log.warning("%s received while finishing: saving and reporting first", name)
            return
        with _mutex:
            stop = _sinks[-1] if _sinks else None
        if stop is not None:  # making changes: stop them cleanly, raise nothing
            if not _stopped_by:
                _stopped_by.append(signum)
            stop("interrupted (Ctrl-C)" if signum == signal.SIGINT else f"stopped by {name}")
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        if _stopped_by:
            log.warning("%s received while already stopping: still finishing", name)
            return
        _stopped_by.append(signum)
        raise KeyboardInterrupt(f"stopped by {name}")

    handled = STOP_SIGNALS
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        handled = (*STOP_SIGNALS, signal.SIGINT)  # Ctrl-C too, only while cleaning up
    previous = {sig: signal.signal(sig, handler) for sig in handled}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _changes_ended = False
