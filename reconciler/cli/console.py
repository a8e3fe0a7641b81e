"""What the command line shows while it works: errors, progress, summaries.

Only the CLI layer prints, and only through ``echo`` / ``secho`` here, which redact every
installed secret (``reconciler.redact``) from whatever is printed. Progress arrives as typed
events (``reconciler.run.events``) and is drawn for where it is read: on a terminal a live progress
line that redraws itself; in a CI log (no terminal) plain lines stamped with the time and the
seconds since the start, with waiting and refresh lines throttled so a long run never floods the
log or looks hung.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import shutil
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

from reconciler.errors import ReconcilerError, SpecError
from reconciler.redact import RedactingFormatter, redact
from reconciler.run.events import Event, ItemFinished, Refreshed, Stopping, Waiting
from reconciler.run.signals import (
    interrupt_exit_code,
    interrupt_message,
    stop_on_signals,
    stop_reason,
)
from reconciler.text import clean, clean_lines, plural

if TYPE_CHECKING:  # only named: the results bring in the plan model, which validate need not load
    from reconciler.run.results import ApplyResult, ItemResult

F = TypeVar("F", bound=Callable[..., Any])

#: Without a terminal, at most one "waiting for …" line this often (seconds).
WAIT_LOG_INTERVAL = 30.0
#: Without a terminal, at most one "refreshed n/m" line this often (seconds).
REFRESH_LOG_INTERVAL = 10.0


def echo(message: str = "", **kwargs: Any) -> None:
    """``click.echo`` with every installed secret redacted: the one way the CLI prints text."""
    click.echo(redact(message), **kwargs)


def secho(message: str = "", **kwargs: Any) -> None:
    """``click.secho`` (styled ``echo``) with every installed secret redacted."""
    click.secho(redact(message), **kwargs)


def isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


log = logging.getLogger(__name__)


def handle_errors(func: F) -> F:
    """Turn the project's errors into a clear message and exit status 1, never a traceback.

    Stop signals follow ``run.signals.stop_on_signals``; an interruption that
    reaches here exits 130 (Ctrl-C), 143 (SIGTERM) or 129 (SIGHUP) with one line saying so.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with stop_on_signals():
                return func(*args, **kwargs)
        except KeyboardInterrupt as exc:
            secho(f"Error: {interrupt_message(exc)}", fg="red", err=True)
            sys.exit(interrupt_exit_code())
        except SpecError as exc:
            if len(exc.problems) == 1:
                secho(f"Error: {clean(str(exc.problems[0]))}", fg="red", err=True)
                sys.exit(1)
            for problem in exc.problems:  # one per line, so editors and CI can jump to each
                echo(clean(str(problem)), err=True)
            secho(f"Error: {len(exc.problems)} problems in the specs", fg="red", err=True)
            sys.exit(1)
        except ReconcilerError as exc:
            # Messages quote names from the API and the specs: no line of theirs may pass
            # for a terminal escape or a CI workflow command.
            secho(f"Error: {clean_lines(str(exc))}", fg="red", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


class LogFormatter(RedactingFormatter):
    """Log records as printed: secrets redacted, every line ``clean`` (messages quote names)."""

    def format(self, record: logging.LogRecord) -> str:
        return clean_lines(super().format(record))


def describe_item(item: ItemResult) -> str:
    """'created: NDVI on Bengaluru-North: created 1f…' — one line per finished change."""
    return clean(f"{item.outcome}: {_what(item)}: {item.message}")


def _what(item: ItemResult) -> str:
    """'custom index NDRE', 'NDVI on Pune-East', 'NDVI on Pune-East, dynamic legends of …'."""
    if item.change == "index":  # belongs to no AOI
        return f"custom index {item.index_name}"
    what = f"{item.index_name} on {item.aoi_name}"
    if item.change in ("rollback", "legend"):
        what += f", {item.mode} legends of {', '.join(item.dates)}"
    return what


class Reporter:
    """Draws progress events on ``stream`` (stderr by default); safe from many threads.

    ``live`` (default: whether the stream is a terminal) chooses the live line over log lines.
    """

    def __init__(self, stream: IO[str] | None = None, *, live: bool | None = None) -> None:
        self._stream = stream
        self.live = isatty(stream or sys.stderr) if live is None else live
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._shown = False
        # A quick refresh stays silent in a log; a long one says how far it got every so often.
        self._last: dict[str, float] = {"refresh": self._started}
        self._bar = ""  # apply's progress, kept in front of whatever the live line says next

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, ItemFinished):
                self._line(describe_item(event.item))
                self._bar = f"{_bar(event.done, event.total)} {event.done}/{event.total} done"
                self._status("")
            elif isinstance(event, Refreshed):
                text = f"refreshed {event.done}/{event.total}: {event.label}"
                self._progress(text, "refresh", REFRESH_LOG_INTERVAL)
            elif isinstance(event, Waiting):
                pct = f" {event.progress}%" if event.progress is not None else ""
                text = f"waiting for {event.label} ({event.visualization_id}): {event.status}{pct}"
                self._progress(text, "wait", WAIT_LOG_INTERVAL)
            elif isinstance(event, Stopping):
                self._line(f"{event.reason}: finishing requests in flight, starting nothing new …")

    def clear(self) -> None:
        """Remove the live line (before printing anything else)."""
        with self._lock:
            self._clear()

    # -- internals (caller holds the lock) --

    def _progress(self, text: str, kind: str, interval: float) -> None:
        """Transient news: the live line on a terminal, a throttled line in a log."""
        if self.live:
            self._status(text)
        elif self._due(kind, interval):
            self._line(text)

    def _due(self, kind: str, interval: float) -> bool:
        now = time.monotonic()
        if now - self._last.get(kind, float("-inf")) < interval:
            return False
        self._last[kind] = now
        return True

    def _line(self, text: str) -> None:
        self._clear()
        if not self.live:
            stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%SZ")
            text = f"{stamp} +{time.monotonic() - self._started:.1f}s {text}"
        echo(clean(text), file=self._stream, err=self._stream is None)

    def _status(self, text: str) -> None:
        if not self.live:
            return
        text = clean(" · ".join(part for part in (self._bar, text) if part))
        width = shutil.get_terminal_size().columns - 1
        self._raw("\r\x1b[K" + text[:width])
        self._shown = True

    def _clear(self) -> None:
        if self._shown:
            self._raw("\r\x1b[K")
            self._shown = False

    def _raw(self, text: str) -> None:
        # color=True: the live line is only drawn on a terminal, and must keep its escapes.
        echo(text, nl=False, file=self._stream, err=self._stream is None, color=True)


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = width * done // total if total else width
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def print_summary(result: ApplyResult) -> None:
    """The failures again (they scroll away in a long log), then one line of counts."""
    for item in result.items:
        if item.outcome == "failed":
            what = f"{_what(item)} ({item.where}): {item.message}"
            secho(f"  failed: {clean(what)}", fg="red", err=True)
    headline = "Apply complete"
    if result.interrupted:
        # What apply itself says stopped it: the first of several signals.
        reason = result.stop_reason or stop_reason()
        headline = f"Apply interrupted ({'Ctrl-C' if reason == 'interrupted (Ctrl-C)' else reason})"
    if result.stopped_early:
        headline = f"Apply stopped early ({result.stop_reason or '--fail-fast'})"
    echo(f"{headline}: {outcome_counts(result)}.")
    print_left_pending(result)


def print_left_pending(result: ApplyResult) -> None:
    """The leftovers of earlier applies that a saved plan carried and left for the next one."""
    for aoi in result.left_pending:
        secho(
            f"  not applied: what an earlier apply left unfinished on AOI {clean(aoi.name)} "
            "changed since this plan was made; it stays pending, and the next plan shows what "
            "is left there",
            fg="yellow",
            err=True,
        )


def outcome_counts(result: ApplyResult) -> str:
    """'2 created (1 custom index), 0 adopted, 1 rolled back, 1 legend set, 0 failed, 0
    skipped': every outcome; legends set only when the apply had legends to set."""
    counts = result.counts()
    parts = []
    for outcome in counts:  # in the order of results.OUTCOMES
        if outcome == "legend set":
            if any(i.change == "legend" for i in result.items):
                parts.append(f"{plural(counts[outcome], 'legend')} set")
            continue
        part = f"{counts[outcome]} {outcome}"
        # Indices are created and adopted like visualizations: said, or the count surprises.
        indices = sum(i.change == "index" and i.outcome == outcome for i in result.items)
        if indices:
            part += f" ({indices} custom {'index' if indices == 1 else 'indices'})"
        parts.append(part)
    return ", ".join(parts)
