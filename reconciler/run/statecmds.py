"""The ``state`` commands' changes to a state: forgetting records, copying a state whole.

Each runs under the state's lock (``locked``, the engine's: waited for as the settings say),
and says plainly what happened when the lock could not be released afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from reconciler.errors import StateError
from reconciler.run.signals import interrupt_message
from reconciler.state.holder import LockNotReleasedError
from reconciler.state.lock import StateLock
from reconciler.state.records import State
from reconciler.state.store import StateStore

Locked = Callable[[StateStore], AbstractContextManager[StateLock]]


def remove_records(store: StateStore, ids: Sequence[str], locked: Locked) -> tuple[int, int]:
    """Forget the records of the visualizations ``ids`` names and the pending marks of the
    AOIs it names, under the lock; all or nothing. How many records and marks went.

    ``StateError`` naming the ids that are neither (then nothing is removed).
    ``LockNotReleasedError`` when the lock could not be released afterwards, saying whether
    the records were removed and how to clear the lock.
    """
    records: list[str] = []
    marks: list[str] = []
    try:
        with locked(store):
            state = store.state
            records = [i for i in ids if state.get(i) is not None]
            marks = [i for i in ids if i in state.pending and i not in records]
            unknown = [i for i in ids if i not in records and i not in marks]
            if unknown:
                raise StateError(
                    f"{store.label} has no record of {', '.join(unknown)} (neither a "
                    "visualization's record nor an AOI's pending mark); nothing was removed "
                    "(see 'reconciler state show')"
                )
            for visualization_id in records:
                store.remove(visualization_id)
            store.finish_pending(marks)
            return len(records), len(marks)
    except (StateError, KeyboardInterrupt) as exc:
        left = store.lock_left
        if left is None:
            raise
        if exc is left:
            also = f" and {len(marks)} pending mark(s)" if marks else ""
            done = f"removed {len(records)} record(s){also} from {store.label}"
        elif isinstance(exc, KeyboardInterrupt):
            done = interrupt_message(exc)
        else:
            done = str(exc)
        # The lock left behind blocks every later apply: it is the error to say.
        raise LockNotReleasedError(
            f"{done}; but {left}", lock_id=left.lock_id, unlock=left.unlock
        ) from None


def copy_state(src: StateStore, dst: StateStore, locked: Locked, *, force: bool) -> State:
    """Write ``src``'s state, its journal folded in, whole to ``dst``, holding both locks; the
    state copied. Refuses (``StateError``, nothing written) a destination that holds anything
    unless ``force``. Locks are taken in the order of their locations, so two copies in
    opposite directions cannot wait for each other forever."""
    first, second = sorted((src, dst), key=lambda s: s.label)
    with locked(first), locked(second):
        state = src.state
        held = dst.state
        if (held.visualizations or held.selectors or held.pending) and not force:
            raise StateError(
                f"{dst.label} already holds {len(held.visualizations)} record(s)"
                + (f" and {len(held.pending)} pending AOI(s)" if held.pending else "")
                + f"; nothing was copied. Pass --force to replace them with {src.label}'s "
                f"{len(state.visualizations)}"
            )
        dst.save(state)
    return state
