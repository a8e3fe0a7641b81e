"""The spec language: what a spec file may say, read with every value's position.

Owns the YAML reader that keeps line and column (``yamlsource``), the format as pydantic
models and its JSON Schema (``models``, ``fields``), the declarations the rest of reconciler
reads (``decls``: ``Specs``, plain frozen dataclasses carrying their ``path:line:column``),
finding spec files (``files``), loading and checking them (``load``; one file on its own in
``checkfile``, across files in ``agreement``), checked files kept on disk for the next run
(``cache``; offline validate's whole ``outcome`` too) and the messages a spec author reads
(``messages``). Selectors and ignore rules are declared here; matching them against the API's
AOIs and indices is resolution, in ``core``.

A spec file looks like this (``specs/`` has commented examples; docs/spec-reference.md
describes every key)::

    version: 1
    aois:
      - aoi: {name: Bengaluru-North}        # or `aoi: <id>` or `aoi: {id: <id>}`
        visualizations:
          - index: NDVI                       # index name or id
            assets: [Bengaluru-A, 2024-05-06] # optional: asset ids, names or ISO dates,
                                              # or a policy: all (default) | any
            resolution: 10                    # optional, > 0
            rollback:                         # optional
              - mode: dynamic                 # dynamic | theoretical
                dates: [2024-05-06]
                revision: 1                   # optional; bump to force the rollback again
    selectors:                                # optional: the same for many AOIs
      - match: {names: ["Farm-*"], projects: [<id>]}   # names/globs, ids, projects: all hold
        visualizations: [{index: NDWI, assets: any}]

Top-level keys starting with ``x-`` are ignored, so they can hold YAML anchors to reuse with
``<<: *name`` merge keys or ``*name`` aliases. Declarations of the same visualization (in
several files, or by a selector and a per-AOI entry) are one when they agree
(``agreement.disagreement``).

``load.load_specs(paths)`` reads files and directories, validates everything, and either
returns ``Specs`` or raises one ``SpecError`` listing every problem in every file, each at the
YAML node it is about. ``load.validate_specs(paths)`` does the same checks but returns the
problems instead of raising them, for ``reconciler validate``.

Offline checks cannot resolve names against the API, so some questions wait for ``plan`` or
``validate --online``. One of them deserves a rule: AOI ``{name: X}`` in one place and AOI
``<id>`` in another may or may not be the same AOI. Giving AOIs in both forms is legitimate,
so it is never an error offline. When a by-name AOI and a by-id AOI declare a visualization
with the same index and assets but disagree about it (a conflict if they are the same AOI),
validation adds a **note** (shown, exit status unaffected) pointing at both; a real conflict is
an error once names are resolved, which is the planner's and ``validate --online``'s job. An
error here would fire on every pair of AOIs that both want, say, NDWI over all assets.

May import: the foundation modules (``errors``, ``text``, ``redact``, ``dates``, ``_gc``)
only. Reads spec files (and writes the cache); knows nothing of the API, the state or plans.
"""
