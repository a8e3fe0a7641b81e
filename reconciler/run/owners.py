"""Which state owns an AOI, when an estate's AOIs are split over several states (shards).

A state owns the AOIs it has records of. Its family (``state.family``: the unsharded state and
every shard's, side by side) is read once per command, without locks:

- a plan uses the records of the state that owns each AOI, so a pull request's plan, or a
  shard's after the shards changed, does not roll back what another state already did;
- an apply refuses AOIs another state owns (naming it), unless told to take them over
  (``apply --take-over``): their records then move to this state, under both locks. Two states
  over one AOI would each roll its legends back on every apply, forever, each making the
  other's records look edited.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass

from reconciler.core.plan import Plan, PlanWarning
from reconciler.errors import StateError
from reconciler.state.family import Relative, relatives
from reconciler.state.lock import StateLock
from reconciler.state.records import State
from reconciler.state.store import StateStore

log = logging.getLogger(__name__)

#: Owners named in one message; the others are counted.
_NAMED = 5


@dataclass(frozen=True)
class Family:
    """This state's relatives (the other states of its family) that hold records."""

    relatives: tuple[Relative, ...] = ()
    #: Why some of the family could not be read (then apply refuses: ownership is unknown).
    problems: tuple[str, ...] = ()

    @classmethod
    def of(cls, store: StateStore) -> Family:
        """The relatives of ``store``, and what of the family could not be read (logged)."""
        try:
            found, problems = relatives(store.location.path or store.location.url)
        except StateError as exc:
            log.warning("could not look for other states beside %s: %s", store.label, exc)
            return cls(problems=(str(exc),))
        return cls(tuple(found), tuple(problems))

    def with_records(self, state: State) -> State:
        """``state`` plus the relatives' records of visualizations it has none of: what a
        plan compares with, so that an AOI another state owns is planned from its records."""
        if not self.relatives:
            return state
        merged = dict(state.visualizations)
        for relative in self.relatives:
            for viz_id, record in relative.state.visualizations.items():
                merged.setdefault(viz_id, record)
        return dataclasses.replace(state, visualizations=merged)

    def pending(self, state: State) -> dict[str, str]:
        """The AOIs (id -> name) that an apply with ``state``, or with a relative that owns
        them, set out to change and did not finish. (A relative's marks of AOIs it holds no
        records of are its own business: no apply of this state would clear them.)"""
        found: dict[str, str] = {}
        for relative in self.relatives:
            owned = {r.aoi_id for r in relative.state.visualizations.values()}
            found.update({a: n for a, n in relative.state.pending.items() if a in owned})
        return {**found, **state.pending}

    def owners(self, aoi_ids: Collection[str]) -> dict[str, list[str]]:
        """For each state of the family holding records of ``aoi_ids``: those AOI ids."""
        wanted = set(aoi_ids)
        found: dict[str, list[str]] = {}
        for relative in self.relatives:
            held = sorted({r.aoi_id for r in relative.state.visualizations.values()} & wanted)
            if held:
                found[relative.label] = held
        return found

    def warning(self, plan: Plan, label: str) -> PlanWarning | None:
        """The warning a plan gets when other states own some of its AOIs, or None."""
        owners = self.owners(plan.observed)
        if not owners:
            return None
        first = next(iter(owners.values()))[0]
        names = {aoi_id: snapshot.name for aoi_id, snapshot in plan.observed.items()}
        return PlanWarning(
            kind="owned",
            aoi_id=first,
            aoi_name=names[first],
            message=(
                f"{describe(owners, names)}. This plan uses their records; an apply with the state "
                f"{label} refuses them unless 'apply --take-over' moves their records to it "
                "(see docs/sharding.md)"
            ),
        )

    def take_over(
        self,
        aoi_ids: Collection[str],
        store: StateStore,
        locked: Callable[[StateStore], AbstractContextManager[StateLock]],
    ) -> int:
        """Move the records of ``aoi_ids`` from their owners to ``store`` (whose lock is
        held), each owner under its own lock; how many records moved.

        This state keeps them (journal, then its snapshot) before the owner forgets them: a
        stop in between leaves them in both, and the next take-over finishes the move.
        """
        wanted = set(aoi_ids)
        moved = 0
        for relative in self.relatives:
            if not _holds(relative.state, wanted):
                continue
            other = StateStore(relative.location)
            with locked(other):
                records = {
                    viz_id: record
                    for viz_id, record in other.state.visualizations.items()
                    if record.aoi_id in wanted
                }
                pending = {a: n for a, n in other.state.pending.items() if a in wanted}
                store.adopt(records)
                store.mark_pending(pending)
                store.flush()
                for viz_id in records:
                    other.remove(viz_id)
                other.finish_pending(pending)
            log.warning(
                "took over %d record(s) of %d AOI(s) from %s",
                len(records),
                len({r.aoi_id for r in records.values()}),
                other.label,
            )
            moved += len(records)
        return moved


def _holds(state: State, aoi_ids: Iterable[str]) -> bool:
    wanted = set(aoi_ids)
    return any(r.aoi_id in wanted for r in state.visualizations.values())


def describe(owners: dict[str, list[str]], names: Mapping[str, str]) -> str:
    """'3 AOIs of this plan are owned by other states: s3://b/state.json has records of 2
    (Farm-1, Farm-2); …', AOIs by name (``names``: id -> name)."""
    total = len({a for held in owners.values() for a in held})
    parts = []
    for label, held in list(owners.items())[:_NAMED]:
        shown = ", ".join(sorted(names.get(a, a) for a in held)[:_NAMED])
        rest = f" and {len(held) - _NAMED} more" if len(held) > _NAMED else ""
        parts.append(f"{label} has records of {len(held)} ({shown}{rest})")
    more = len(owners) - _NAMED
    states = "another state" if len(owners) == 1 else "other states"
    return (
        f"{total} AOI{'' if total == 1 else 's'} of this plan "
        f"{'is' if total == 1 else 'are'} owned by {states}: {'; '.join(parts)}"
        + (f"; and {more} more states" if more > 0 else "")
    )
