"""What is wrong with a declaration is found in one round: its rollbacks are checked beside an
unknown index or asset, and a declaration that is incomplete (offline problems of its own) has
what it holds checked. Pure tests, with the helpers of tests/test_resolve.py."""

from __future__ import annotations

from dataclasses import replace

from reconciler.core.resolve import resolve_visualizations
from tests.test_resolve import (
    ASSETS,
    LOOKUP,
    NORTH,
    A,
    B,
    C,
    entry,
    resolve,
    rollback,
    selectors,
    viz,
)


def test_a_rollback_date_no_asset_of_the_aoi_has_is_found_beside_an_unknown_asset() -> None:
    bad = rollback("dynamic", A.date, "2030-01-01")
    decl = viz("NDVI", ["North-A", "North-Z"], bad)
    found, problems = resolve(decl)
    assert found == []
    assert [(p.where, p.message) for p in problems] == [
        (selectors(decl)[1].where, problems[0].message),
        (
            bad.date_wheres[1],
            "rollback date 2030-01-01 is not a date of any asset of AOI 'Bengaluru-North'; its "
            "asset dates are: 2024-05-06, 2024-08-19, 2024-11-20",
        ),
    ]
    assert problems[0].message.startswith("unknown asset 'North-Z'")


def test_beside_an_unknown_asset_a_date_of_another_asset_of_the_aoi_is_not_judged() -> None:
    """North-Z may be meant as North-C: its date is no proof of a mistake."""
    _, problems = resolve(viz("NDVI", ["North-A", "North-Z"], rollback("dynamic", C.date)))
    (problem,) = problems
    assert problem.message.startswith("unknown asset 'North-Z' in AOI 'Bengaluru-North'")


def test_beside_an_unknown_index_rollback_dates_are_checked_against_the_assets() -> None:
    bad = rollback("dynamic", C.date)
    decl = viz("NVDI", ["North-A", "North-B"], bad)
    _, problems = resolve(decl)
    assert [p.where for p in problems] == [decl.index_where, bad.date_wheres[0]]
    assert problems[1].message == (
        "rollback date 2024-11-20 is not a date of this visualization's assets "
        "(its dates: 2024-05-06, 2024-08-19)"
    )


def test_beside_an_unknown_asset_the_legend_mode_is_checked_against_the_index() -> None:
    bad = rollback("dynamic", A.date)
    _, problems = resolve(viz("True-Color", ["North-A", "North-Z"], bad))
    assert [p.where for p in problems][1:] == [bad.where]
    assert problems[1].message.startswith("index 'True-Color' has no dynamic legend")


def test_an_incomplete_declaration_has_its_assets_and_dates_checked_but_no_index() -> None:
    """Its index was not valid offline: nothing to look up, and no 'unknown index' for it."""
    bad = rollback("dynamic", B.date)
    decl = replace(
        viz("NDVI", ["North-A", "North-Z"], bad), index="", incomplete=("index", "assets")
    )
    found, problems = resolve(decl)
    assert found == []
    assert [p.where for p in problems] == [selectors(decl)[1].where]


def test_an_incomplete_declaration_is_neither_desired_nor_compared() -> None:
    """Were it compared, its one date would conflict with the other declaration's two."""
    whole = viz("NDVI", None, rollback("dynamic", A.date, B.date))
    cut = replace(viz("NDVI", None, rollback("dynamic", A.date)), incomplete=("rollback",))
    found, problems, _ = resolve_visualizations(
        NORTH, [entry(NORTH.name, whole, cut)], LOOKUP, ASSETS, ()
    )
    assert problems == []
    assert [d.decl for d in found] == [whole]
