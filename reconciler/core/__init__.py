"""The pure core: from declarations and observations to a plan, with no I/O.

Owns resolution of the specs' references against what the API returned (``targets`` for the
AOIs the specs declare and a command targets, ``changes`` for those a change to the specs
touches, ``shards`` for the shard an AOI belongs to, ``resolve`` for what each must have,
``selectors`` for the AOIs a selector matches, ``ignore`` for ignore rules), what makes two
visualizations the same one (``identity``), what was observed (``observed``), planning
(``planner``: desired + observed + state records -> ``Plan``), which legends to read back and
what they tell (``legends``), the plan model (``plan``), its
saved form (``planfile``, the one parser of saved plans), shard plans merged for one review
(``merge``), when a saved plan is stale
(``stale``) and whether its changes are the ones called for now (``verify``), what is not in
sync by kind (``drift``), the plan's
warnings about the state (``statecheck``) and specs written from what exists (``export``).

Everything here is a function of its arguments: tests build the inputs by hand. May import
``spec``, ``api.types``, ``api.legends``, ``state.records`` and the foundation; never the
client, the state store, or anything that opens a socket or a file (an import-linter contract
checks this).
"""
