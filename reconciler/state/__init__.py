"""The rollback state: what this tool last made auto-computed, kept safe between runs.

Owns the records (``records``: ``State``, parsed and versioned), where they are kept
(``store``: a local file or a remote object, and its ``journal`` so a killed apply loses
nothing), the lock that lets one apply at a time write them (``lock``, its holder and the
"locked" errors in ``holder``), the unsharded state and every shard's side by side
(``family``), remote storage through fsspec (``remotefs``) and files written whole or not at
all (``atomicfile``).

May import: the foundation modules only (``shield`` marks the store's cleanup as something a
stop signal must not cut short). Knows nothing of specs, the API or plans.
"""
