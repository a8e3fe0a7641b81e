"""The Pixxel API as reconciler talks to it: one client, bounded and retried.

Owns the HTTP client (``client``: every call the contract lists, typed errors by status
class), how it reads a listing (``listing``: every page to the end, and a listing whose pages
do not add up read again, never used with an item missing), its retry policy (``retry``), the
bounds that keep a hostile server
from hanging or filling memory (``bounds``: deadlines, sizes, JSON depth), the checks on what
answers look like (``responses``), the response types (``types``: slotted pydantic
dataclasses, the vocabulary of AOIs, indices, assets and visualizations that ``core`` reasons
about), legends read from metadata and SLD documents in one comparable form (``legends``:
pure, bins and a fingerprint of them) and the configuration of a connection (``config``: base
URL, where the key comes from).

May import: the foundation modules only. Knows nothing of specs, plans or the state; ``core``
may import ``types`` and ``legends`` (an import-linter contract keeps the client out of it).
"""
