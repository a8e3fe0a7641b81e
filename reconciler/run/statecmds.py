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


def remove_records(store: StateStore, visualization_ids: Sequence[str], locked: Locked) -> None:
    """Forget the records of ``visualization_ids``, under the lock; all or nothing.

    ``StateError`` naming the ids that have no record (then nothing is removed).
    ``LockNotReleasedError`` when the lock could not be released afterwards, saying whether
    the records were removed and how to clear the lock.
    """
    try:
        with locked(store):
            unknown = [v for v in visualization_ids if store.state.get(v) is None]
            if unknown:
                raise StateError(
                    f"{store.label} has no record of {', '.join(unknown)}; nothing was "
                    "removed (see 'reconciler state show')"
                )
            for visualization_id in visualization_ids:
                store.remove(visualization_id)
    except (StateError, KeyboardInterrupt) as exc:
        left = store.lock_left
        if left is None:
            raise
        if exc is left:
            done = f"removed {len(visualization_ids)} record(s) from {store.label}"
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
