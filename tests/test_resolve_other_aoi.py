"""An asset written under the wrong AOI is said to be another AOI's: pure tests on hand-built
declarations and listings, with the helpers of tests/test_resolve.py."""

from __future__ import annotations

from reconciler.api.types import Asset
from reconciler.core.observed import Observed, ObservedAoi
from reconciler.core.resolve import asset_owners, resolve_desired, select_aois
from reconciler.errors import Problem
from reconciler.spec.decls import SelectorDecl, Specs, VisualizationDecl
from tests.test_resolve import (
    AOIS,
    ASSETS,
    INDICES,
    NDVI,
    NORTH,
    SOUTH,
    at,
    entry,
    existing,
    specs,
    uid,
    viz,
)

SOUTH_A = Asset(id=uid(41), name="South-A", date="2024-06-01")
#: What refresh read: North's and South's assets and visualizations.
OBSERVED = Observed(
    AOIS,
    INDICES,
    {
        NORTH.id: ObservedAoi(NORTH, (), ASSETS),
        SOUTH.id: ObservedAoi(SOUTH, (), (SOUTH_A,)),
    },
)


def _problems(declared: Specs, observed: Observed = OBSERVED) -> list[Problem]:
    return list(resolve_desired(select_aois(declared, AOIS), observed).problems)


def test_an_asset_name_of_another_aoi_names_that_aoi() -> None:
    decl = viz("NDVI", ["South-A"])
    (problem,) = _problems(specs(entry(NORTH.name, decl)))
    assert decl.assets is not None and problem.where == decl.assets[0].where
    assert problem.message == (
        "unknown asset 'South-A' in AOI 'Bengaluru-North'; it is an asset of AOI "
        "'Bengaluru-South': an asset belongs to one AOI"
    )


def test_an_asset_id_of_another_aoi_names_that_aoi() -> None:
    (problem,) = _problems(specs(entry(NORTH.name, viz("NDVI", [SOUTH_A.id]))))
    assert problem.message == (
        f"asset id '{SOUTH_A.id}' is not an asset of AOI 'Bengaluru-North'; it is an asset of "
        "AOI 'Bengaluru-South': an asset belongs to one AOI"
    )


def test_an_asset_seen_only_in_another_aois_visualization_names_that_aoi() -> None:
    """Where its asset listing was not read, an AOI's visualizations show its assets."""
    south = ObservedAoi(SOUTH, (existing(NDVI, SOUTH_A),), None)
    observed = Observed(AOIS, INDICES, {NORTH.id: ObservedAoi(NORTH, (), ASSETS), SOUTH.id: south})
    assert asset_owners(observed)["South-A"] == ("Bengaluru-South",)
    (problem,) = _problems(specs(entry(NORTH.name, viz("NDVI", ["South-A"]))), observed)
    assert "it is an asset of AOI 'Bengaluru-South'" in problem.message


def test_a_selector_says_which_aoi_the_asset_is_of_once() -> None:
    decl: VisualizationDecl = viz("NDVI", ["South-A"])
    selector = SelectorDecl(
        names=(NORTH.name,),
        name_wheres=(at(),),
        ids=(),
        id_wheres=(),
        projects=(),
        where=at(),
        visualizations=(decl,),
    )
    declared = Specs(files=("specs/test.yaml",), fingerprint="", aois=(), selectors=(selector,))
    (problem,) = _problems(declared)
    assert problem.message == (
        "unknown asset 'South-A'; asset names and ids belong to one AOI: a selector selects "
        "assets by date, or declares assets: all | any; it is an asset of AOI "
        "'Bengaluru-South' (on AOI 'Bengaluru-North', matched by this selector)"
    )


def test_a_name_no_other_aoi_has_still_gets_the_closest_names() -> None:
    (problem,) = _problems(specs(entry(NORTH.name, viz("NDVI", ["North-Z"]))))
    assert problem.message.startswith("unknown asset 'North-Z' in AOI 'Bengaluru-North' (closest:")
