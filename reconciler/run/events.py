"""Progress and results as typed events: the library reports, the command line renders.

Long work (refresh, apply) calls a ``Listener`` with one of these as it goes. Nothing is ever
parsed back from text: the CLI decides how each event looks on a terminal (a live status line)
or in a CI log (timestamped lines), and tests can simply collect them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only named: every command's console imports the events, validate too
    from reconciler.core.plan import Plan
    from reconciler.run.results import ItemResult


@dataclass(frozen=True)
class Refreshed:
    """One read of the API finished: ``done`` of ``total`` submitted so far."""

    done: int
    total: int
    label: str  # e.g. "visualizations of Bengaluru-North"


@dataclass(frozen=True)
class Planned:
    """Apply has the plan it will carry out: made now, or a saved one that passed its checks.

    Sent before it asks for approval and before any change, also when there is nothing to do.
    """

    plan: Plan


@dataclass(frozen=True)
class ItemFinished:
    """One change of a plan ended (created, adopted, rolled back, failed or skipped)."""

    item: ItemResult
    done: int  # changes finished so far, this one included
    total: int  # changes in the plan


@dataclass(frozen=True)
class Waiting:
    """Apply is waiting for a visualization to become usable (to reach a final status)."""

    label: str  # "NDVI on Bengaluru-North"
    visualization_id: str
    progress: int | None  # percent, when the API says
    #: Its status in words: "creating", or one the contract does not list, said to be so.
    status: str = "creating"


@dataclass(frozen=True)
class Stopping:
    """Apply was asked to stop: nothing new starts, work in flight finishes."""

    reason: str


Event = Refreshed | Planned | ItemFinished | Waiting | Stopping
Listener = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The listener of callers that do not care about progress."""
