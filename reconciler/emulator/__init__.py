"""A stateful fake of the Pixxel API, served over real HTTP on 127.0.0.1.

Used by the tests, by ``reconciler emulator`` and by ``--sandbox``::

    from reconciler.emulator import Emulator, FaultConfig

    with Emulator(api_keys=("k",), faults=FaultConfig(seed=1, error_rate=0.2, max_faults=5)) as emu:
        ...  # talk to emu.url with header "Authorization: k"; emu.counter counts the requests

Modules: ``world`` (state, loading, saving, changes), ``legends`` (legend rules and the
deterministic auto-computed legends), ``api`` (routes, validation, behaviour), ``views`` (the
contract's JSON shapes), ``faults`` (fault injection, request counter), ``server`` (HTTP).

Pagination: default limit 10, maximum page size 100 (larger limits are clamped to 100).

May import: the foundation modules and ``state.atomicfile`` (to keep its world). It follows
the published contract on its own and never imports the client or its response types, so the
two cannot share a misreading of the contract; its click command lives in ``cli.emulator``.
"""

from reconciler.emulator.api import MAX_PAGE_SIZE
from reconciler.emulator.faults import FaultConfig, RequestCounter
from reconciler.emulator.server import Emulator
from reconciler.emulator.world import DEMO_WORLD, World

__all__ = ["DEMO_WORLD", "MAX_PAGE_SIZE", "Emulator", "FaultConfig", "RequestCounter", "World"]
