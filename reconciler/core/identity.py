"""What makes two visualizations the same one: their index and their set of source assets.

The API answers 409 to a create with the same AOI, index and asset set (in any order, with any
repetition), so this pair is the key under which plan, refresh and apply match a declaration to
what exists. Keeping it in one named type means the rule cannot drift between those places.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # only named: the response types cost a start-up that validate need not pay
    from reconciler.api.types import Visualization


class Identity(NamedTuple):
    """(index id, set of source asset ids): equal exactly when the API would answer 409."""

    index_id: str
    asset_ids: frozenset[str]

    @classmethod
    def of(cls, index_id: str, asset_ids: Iterable[str]) -> Identity:
        return cls(index_id, frozenset(asset_ids))

    @classmethod
    def of_visualization(cls, viz: Visualization) -> Identity:
        return cls(viz.index_id, frozenset(a.id for a in viz.assets))


def by_identity(visualizations: Iterable[Visualization]) -> dict[Identity, Visualization]:
    """Index visualizations by identity; the first of any duplicates wins, as the API lists."""
    found: dict[Identity, Visualization] = {}
    for viz in visualizations:
        found.setdefault(Identity.of_visualization(viz), viz)
    return found
