"""Refresh + planning against the emulator over HTTP: what a plan contains and why."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from reconciler.core.plan import Plan
from reconciler.emulator import Emulator
from reconciler.errors import ConfigError, ResolutionError
from reconciler.run.engine import Engine
from reconciler.run.events import Event, Refreshed
from reconciler.run.settings import Settings
from tests.planning import (
    NDVI_BENGALURU_AB,
    NDVI_NAGPUR_JKL,
    NDVI_NAGPUR_M_FAILED,
    ROLLBACK_SPEC,
    client_for,
    edit_legend_by_hand,
    make_plan,
    remember_rollback,
    write_spec,
)

MIXED = """
aois:
  - aoi: {name: Bengaluru-North}
    visualizations:
      - index: NDVI
        assets: [Bengaluru-A, 2024-11-20]
        rollback:
          - mode: dynamic
            dates: [2024-05-06, 2024-11-20]
          - mode: theoretical
            dates: [2024-05-06]
      - index: NDWI
        assets: [Bengaluru-C, Bengaluru-D]
        resolution: 10
      - index: True-Color
"""


def test_plan_on_an_untouched_world_creates_and_rolls_back(
    emulator: Emulator, tmp_path: Path
) -> None:
    specs = write_spec(tmp_path / "specs", MIXED)
    plan = make_plan(emulator, specs, tmp_path / "state.json")

    assert [(c.index_name, [a.name for a in c.assets or ()]) for c in plan.creates] == [
        ("NDWI", ["Bengaluru-C", "Bengaluru-D"])
    ]
    assert plan.creates[0].resolution == 10
    assert plan.creates[0].where.endswith("spec.yaml:11:9")
    # The existing NDVI has no record in a missing state file: both modes are planned.
    assert [(r.visualization_id, r.mode, r.dates, r.reason) for r in plan.rollbacks] == [
        (NDVI_BENGALURU_AB, "dynamic", ("2024-05-06", "2024-11-20"), "no-record"),
        (NDVI_BENGALURU_AB, "theoretical", ("2024-05-06",), "no-record"),
    ]
    # Every visualization on the AOI is declared; the only warning is about the empty state.
    assert [w.kind for w in plan.warnings] == ["state"]
    assert (
        "has no records, so every declared rollback and custom legend of an existing "
        "visualization is planned (2)" in plan.warnings[0].message
    )
    assert "docs/state.md" in plan.warnings[0].message
    assert plan.summary() == {
        "index": 0,
        "create": 1,
        "rollback": 2,
        "legend": 0,
        "warning": 1,
        "unchanged": 1,
        "ignored": 0,
        "unreadable": 0,
    }


def test_plan_is_empty_when_state_records_the_rollbacks(emulator: Emulator, tmp_path: Path) -> None:
    specs = write_spec(tmp_path / "specs", ROLLBACK_SPEC)
    remember_rollback(emulator, tmp_path / "state.json")

    plan = make_plan(emulator, specs, tmp_path / "state.json")

    assert not plan.has_changes
    assert [w.kind for w in plan.warnings] == ["undeclared"]  # True-Color is not declared
    assert "True-Color" in plan.warnings[0].message


def test_revision_bump_and_new_dates_are_planned_with_their_reason(
    emulator: Emulator, tmp_path: Path
) -> None:
    remember_rollback(emulator, tmp_path / "state.json")
    specs = write_spec(
        tmp_path / "specs",
        """
        aois:
          - aoi: {name: Bengaluru-North}
            visualizations:
              - index: NDVI
                assets: [Bengaluru-A, Bengaluru-B]
                rollback:
                  - {mode: dynamic, dates: [2024-05-06], revision: 1}
                  - {mode: theoretical, dates: [2024-11-20]}
        """,
    )

    plan = make_plan(emulator, specs, tmp_path / "state.json")

    reasons = {r.mode: (r.reason, r.dates) for r in plan.rollbacks}
    assert reasons == {
        "dynamic": ("revision", ("2024-05-06",)),
        "theoretical": ("no-record", ("2024-11-20",)),
    }
    assert "revision 0 → 1" in plan.rollbacks[0].detail


def test_an_edit_behind_the_tools_back_is_planned_as_changed(
    emulator: Emulator, tmp_path: Path
) -> None:
    recorded = remember_rollback(emulator, tmp_path / "state.json")
    edit_legend_by_hand(emulator)
    specs = write_spec(tmp_path / "specs", ROLLBACK_SPEC)

    plan = make_plan(emulator, specs, tmp_path / "state.json")

    (rollback,) = plan.rollbacks
    assert rollback.reason == "changed"
    assert recorded in rollback.detail


def test_pagination_finds_visualizations_and_assets_beyond_the_first_page(
    emulator: Emulator, tmp_path: Path
) -> None:
    # Nagpur-Farms has 14 assets and 13 visualizations: both listings take two pages.
    specs = write_spec(
        tmp_path / "specs",
        """
        aois:
          - aoi: {name: Nagpur-Farms}
            visualizations:
              - index: NDVI
                assets: [Nagpur-J, Nagpur-K, 2024-12-06]
              - index: NDVI
                assets: [Nagpur-N]
              - index: NDVI
                assets: [Nagpur-M]
        """,
    )

    plan = make_plan(emulator, specs, tmp_path / "state.json")

    assert [[a.name for a in c.assets or ()] for c in plan.creates] == [["Nagpur-N"]]
    kinds = sorted((w.kind, w.visualization_id) for w in plan.warnings)
    assert ("failed", NDVI_NAGPUR_M_FAILED) in kinds
    assert ("undeclared", NDVI_NAGPUR_JKL) not in kinds  # matched on the second page
    assert sum(kind == "undeclared" for kind, _ in kinds) == 10


def test_omitted_assets_mean_all_assets(emulator: Emulator, tmp_path: Path) -> None:
    specs = write_spec(
        tmp_path / "specs",
        """
        aois:
          - aoi: {name: Pune-East}
            visualizations:
              - index: NDWI
              - index: NDVI
                rollback: [{mode: theoretical, dates: [2025-06-10]}]
        """,
    )

    plan = make_plan(emulator, specs, tmp_path / "state.json")

    (create,) = plan.creates
    assert create.index_name == "NDVI" and create.assets is None
    assert len(create.identity) == 3  # all of Pune-East's assets
    assert create.rollbacks[0].dates == ("2025-06-10",)
    assert plan.rollbacks == ()


def _problems(emulator: Emulator, tmp_path: Path, text: str) -> list[str]:
    specs = write_spec(tmp_path / "specs", text)
    with pytest.raises(ResolutionError) as caught:
        make_plan(emulator, specs, tmp_path / "state.json")
    return [str(p) for p in caught.value.problems]


def test_unknown_aoi_index_and_asset_name_their_position_and_closest_names(
    emulator: Emulator, tmp_path: Path
) -> None:
    problems = _problems(
        emulator,
        tmp_path,
        """
        aois:
          - aoi: {name: Bengaluru-Nort}
            visualizations:
              - index: NDVI
          - aoi: {name: Pune-East}
            visualizations:
              - index: NVDI
              - index: NDWI
                assets: [Pune-Z, 2023-01-01]
        """,
    )
    spec = str(tmp_path / "specs" / "spec.yaml")
    assert problems == [
        f"{spec}:2:10: unknown AOI 'Bengaluru-Nort' (closest: Bengaluru-North)",
        f"{spec}:7:16: unknown index 'NVDI' (closest: NDVI, NDWI, EVI)",
        f"{spec}:9:18: unknown asset 'Pune-Z' in AOI 'Pune-East' (closest: Pune-A, Pune-B, Pune-C)",
        f"{spec}:9:26: no asset of AOI 'Pune-East' is dated 2023-01-01; its asset dates are: "
        "2024-06-01, 2025-01-15, 2025-06-10",
    ]


def test_rollback_date_and_mode_errors(emulator: Emulator, tmp_path: Path) -> None:
    problems = _problems(
        emulator,
        tmp_path,
        """
        aois:
          - aoi: {name: Nagpur-Farms}
            visualizations:
              - index: NDVI
                assets: [Nagpur-A, Nagpur-B, Nagpur-C]
                rollback: [{mode: dynamic, dates: [2024-01-05, 2024-12-06]}]
              - index: Chlorophyll-Red-Edge
                assets: [Nagpur-M, Nagpur-N]
                rollback: [{mode: theoretical, dates: [2025-01-07]}]
              - index: True-Color
                assets: [Nagpur-M, Nagpur-N]
                rollback: [{mode: dynamic, dates: [2025-01-07]}]
        """,
    )
    assert len(problems) == 3
    assert "rollback date 2024-12-06 is not a date of this visualization's assets" in problems[0]
    assert ":6:56:" in problems[0]
    assert "has no theoretical legend" in problems[1]
    assert "only a dynamic legend" in problems[1]
    assert "composite index has no legends" in problems[2]


def test_same_visualization_by_id_and_by_name_declared_differently(
    emulator: Emulator, tmp_path: Path
) -> None:
    specs = tmp_path / "specs"
    write_spec(
        specs,
        "aois: [{aoi: {name: Kochi-Coast}, visualizations: [{index: NDVI, resolution: 5}]}]\n",
        "a.yaml",
    )
    write_spec(
        specs,
        "aois: [{aoi: a4cb9e5f-39ca-5083-b695-e628f4e8019b,\n"
        "        visualizations: [{index: NDVI, resolution: 10}]}]\n",
        "b.yaml",
    )
    with pytest.raises(ResolutionError) as caught:
        make_plan(emulator, specs, tmp_path / "state.json")
    (problem,) = caught.value.problems
    assert "declared twice" in problem.message and "a.yaml" in problem.message
    assert problem.where is not None and problem.where.path.endswith("b.yaml")


def test_targets_limit_what_is_read(emulator: Emulator, tmp_path: Path) -> None:
    specs = write_spec(
        tmp_path / "specs",
        """
        aois:
          - aoi: {name: Bengaluru-North}
            visualizations: [{index: NDWI, assets: [Bengaluru-A]}]
          - aoi: {name: Pune-East}
            visualizations: [{index: NDVI}]
        """,
    )
    emulator.counter.reset()
    plan = make_plan(emulator, specs, tmp_path / "state.json", targets=["Pune-East"])

    assert [c.aoi_name for c in plan.creates] == ["Pune-East"]
    assert emulator.counter.count(route="/v0/aois/{aoi_id}/visualizations") == 1
    with pytest.raises(ConfigError, match="'Pune-Eats' \\(closest: Pune-East\\)"):
        make_plan(emulator, specs, tmp_path / "state.json", targets=["Pune-Eats"])


def test_request_count_is_the_lower_bound(emulator: Emulator, tmp_path: Path) -> None:
    specs = write_spec(
        tmp_path / "specs",
        """
        aois:
          - aoi: {name: Bengaluru-North}
            visualizations: [{index: NDVI, assets: [Bengaluru-A, Bengaluru-B]}]
          - aoi: 8ee03236-8358-5969-a280-c39238c3c46b
            visualizations: [{index: NDWI}]
          - aoi: {name: Nagpur-Farms}
            visualizations:
              - {index: NDVI, assets: [a56aad94-8fbf-5b40-85cc-2bc614fa5186,
                 0200ff5e-06a0-5e4d-b772-6b343218539a, 14e9dfa5-c812-5068-a831-b875f26a93a9]}
              - {index: NDWI, assets: [a56aad94-8fbf-5b40-85cc-2bc614fa5186,
                 0200ff5e-06a0-5e4d-b772-6b343218539a]}
          - aoi: {name: Kochi-Coast}
            visualizations: [{index: EVI, assets: [Kochi-A]}]
        """,
    )
    emulator.counter.reset()
    plan = make_plan(emulator, specs, tmp_path / "state.json")

    # 1 AOI listing + 1 index listing, shared; one visualization listing per AOI (one page
    # each: the client asks for 100 items a page); assets only where names, dates or omitted
    # assets need them: Bengaluru (names), Pune (omitted), Kochi (names). Nagpur's NDVI ids
    # match an existing visualization, and its new NDWI's ids are all sources of listed ones,
    # which give their names and dates: its assets are never listed.
    snapshot = emulator.counter.snapshot()
    assert snapshot == {
        "GET /v0/aois": 1,
        "GET /v0/indices": 1,
        "GET /v0/aois/{aoi_id}/visualizations": 4,
        "GET /v0/aois/{aoi_id}/assets": 3,
    }
    (nagpur,) = [c for c in plan.creates if c.aoi_name == "Nagpur-Farms"]
    assert [(a.name, a.date) for a in nagpur.assets or ()] == [
        ("Nagpur-A", "2024-01-05"),
        ("Nagpur-B", "2024-02-03"),
    ]


def test_the_aoi_listing_pages_are_read_at_once_even_by_one_worker(
    emulator: Emulator, tmp_path: Path
) -> None:
    specs = write_spec(
        tmp_path / "specs",
        """
        aois:
          - aoi: {name: Pune-East}
            visualizations: [{index: NDVI}]
        """,
    )
    plans: list[Plan] = []
    events: list[Event] = []
    with client_for(emulator, page_size=1) as client:
        settings = Settings(api_url=emulator.url, state=tmp_path / "state.json", parallelism=1)
        engine = Engine(settings, client=client, listener=events.append)
        emulator.counter.reset()
        # The first page is read outside the pool, the others in it: were the listing read by
        # the pool's only worker, it would wait for itself.
        planning = threading.Thread(target=lambda: plans.append(engine.plan([str(specs)])))
        planning.start()
        planning.join(timeout=30)
    assert not planning.is_alive() and [c.aoi_name for c in plans[0].creates] == ["Pune-East"]
    read_in_pool = [e.label for e in events if isinstance(e, Refreshed)]
    assert "AOIs (from 1)" in read_in_pool and "AOIs (from 2)" in read_in_pool
    pages = emulator.counter.count("GET", "/v0/aois")
    with client_for(emulator) as client:
        assert pages == len(client.list_aois()) > 1  # one page per AOI
