"""Apply against the emulator over HTTP: converge, adopt, wait, report, refuse, resume."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.core import planfile
from reconciler.core.stale import check_not_stale
from reconciler.emulator import Emulator, FaultConfig
from reconciler.errors import StalePlanError
from reconciler.render.json import render_report, report_document
from reconciler.run.apply import Applier
from reconciler.run.events import Event, ItemFinished, Stopping, Waiting
from reconciler.run.results import ApplyOutcome
from reconciler.state.holder import StateLockedError
from reconciler.state.store import StateStore
from tests.planning import (
    BENGALURU,
    BENGALURU_C,
    BENGALURU_D,
    NDVI,
    NDVI_BENGALURU_AB,
    NDVI_ROLLED_BACK,
    NDWI,
    PUNE,
    aoi,
    client_for,
    count_visualizations,
    make_plan,
    run_apply,
    spec,
    viz,
    write_spec,
)

SPEC = """
aois:
  - aoi: {name: Bengaluru-North}
    visualizations:
      - index: NDVI
        assets: [Bengaluru-A, Bengaluru-B]
        rollback:
          - {mode: dynamic, dates: [2024-05-06, 2024-11-20]}
          - {mode: theoretical, dates: [2024-05-06]}
      - index: NDWI
        assets: [Bengaluru-C, Bengaluru-D]
        rollback:
          - {mode: dynamic, dates: [2025-05-02]}
      - index: True-Color
  - aoi: {name: Pune-East}
    visualizations:
      - index: NDWI
      - index: NDVI
"""


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "specs", SPEC)


def test_plan_apply_plan_converges(emulator: Emulator, specs: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    plan = make_plan(emulator, specs, state)
    assert plan.summary()["create"] == 2 and plan.summary()["rollback"] == 2

    result = run_apply(emulator, plan, state)

    assert result.ok, result
    assert result.counts() == {
        "created": 2,
        "adopted": 0,
        "rolled back": 2,
        "legend set": 0,
        "failed": 0,
        "skipped": 0,
    }
    again = make_plan(emulator, specs, state)
    assert not again.has_changes, planfile.document(again)
    # The new NDWI was recorded as auto-computed for every date of its assets.
    created = next(i for i in result.items if i.index_name == "NDWI" and i.aoi_name.startswith("B"))
    record = StateStore(state).load().get(created.visualization_id or "")
    assert record is not None and record.legends["dynamic"] == {"2025-05-02": 0, "2025-11-14": 0}


def test_a_new_visualization_with_a_revision_converges_in_one_apply(
    emulator: Emulator, tmp_path: Path
) -> None:
    specs = write_spec(
        tmp_path / "specs",
        """
        aois:
          - aoi: {name: Bengaluru-North}
            visualizations:
              - index: NDWI
                assets: [Bengaluru-C, Bengaluru-D]
                rollback:
                  - {mode: dynamic, dates: [2025-05-02], revision: 3}
                  - {mode: theoretical, dates: [2025-11-14]}
        """,
    )
    state = tmp_path / "state.json"
    result = run_apply(emulator, make_plan(emulator, specs, state), state)
    assert result.ok and result.counts()["created"] == 1
    again = make_plan(emulator, specs, state)
    assert not again.has_changes, planfile.document(again)
    record = StateStore(state).load().get(result.items[0].visualization_id or "")
    assert record is not None
    assert record.legends == {
        "dynamic": {"2025-05-02": 3, "2025-11-14": 0},
        "theoretical": {"2025-05-02": 0, "2025-11-14": 0},
    }


def test_visualization_created_behind_the_tools_back_is_adopted(
    emulator: Emulator, specs: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    plan = make_plan(emulator, specs, state)
    with client_for(emulator) as client:  # someone creates it between plan and apply
        client.create_visualization(BENGALURU, NDWI, src_asset_ids=[BENGALURU_D, BENGALURU_C])
    emulator.counter.reset()

    result = run_apply(emulator, plan, state)

    adopted = [i for i in result.items if i.outcome == "adopted"]
    assert [(i.aoi_name, i.index_name) for i in adopted] == [("Bengaluru-North", "NDWI")]
    # Its declared rollback ran, because a hand-made visualization may have edited legends.
    assert any(
        i.outcome == "rolled back" and i.visualization_id == adopted[0].visualization_id
        for i in result.items
    )
    # The 409's lookup already says it is ready: no readiness poll on Bengaluru, one on Pune.
    assert emulator.counter.count("GET", "/v0/aois/{aoi_id}/visualizations") == 2
    assert count_visualizations(emulator, BENGALURU, NDWI) == 1
    assert not make_plan(emulator, specs, state).has_changes


def test_apply_sends_no_request_beyond_the_lower_bound(emulator: Emulator, tmp_path: Path) -> None:
    bengaluru = aoi(
        "Bengaluru-North",
        viz("NDWI", assets="[Bengaluru-C, Bengaluru-D]"),
        viz("NDWI", assets="[Bengaluru-A]"),
        NDVI_ROLLED_BACK,
    )
    specs = write_spec(tmp_path / "specs", spec(bengaluru))
    state = tmp_path / "state.json"
    plan = make_plan(emulator, specs, state)
    assert (len(plan.creates), len(plan.rollbacks)) == (2, 1)
    emulator.counter.reset()

    assert run_apply(emulator, plan, state).ok

    # Two creates, one listing of the AOI that finds both ready, one rollback whose answer
    # carries the updated_at the state records (so nothing is read again after it).
    assert emulator.counter.snapshot() == {
        "POST /v0/aois/{aoi_id}/visualizations": 2,
        "GET /v0/aois/{aoi_id}/visualizations": 1,
        "PATCH /v0/aois/{aoi_id}/visualizations/{visualization_id}/metadata": 1,
    }
    assert not make_plan(emulator, specs, state).has_changes


def test_waiting_for_a_new_visualization_holds_no_worker(
    make_emulator: Callable[..., Emulator], specs: Path, tmp_path: Path
) -> None:
    emulator = make_emulator(creation_delay=0.3)
    state = tmp_path / "state.json"
    plan = make_plan(emulator, specs, state)
    assert sorted(c.aoi_name for c in plan.creates) == ["Bengaluru-North", "Pune-East"]
    posted: list[int] = []  # creates the API had received when the first one was ready

    def watch(event: Event) -> None:
        if isinstance(event, ItemFinished) and event.item.change == "create" and not posted:
            posted.append(emulator.counter.count("POST", "/v0/aois/{aoi_id}/visualizations"))

    result = run_apply(emulator, plan, state, parallelism=1, listener=watch)

    # One worker: while Bengaluru's visualization was being computed, Pune's was created.
    assert result.ok and posted == [2]
    assert not make_plan(emulator, specs, state).has_changes


def test_a_legend_edited_by_hand_is_rolled_back_once(
    emulator: Emulator, specs: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    run_apply(emulator, make_plan(emulator, specs, state), state)
    with client_for(emulator) as client:
        client.update_metadata(
            BENGALURU,
            NDVI_BENGALURU_AB,
            mode="theoretical",
            legend={"2024_05_06": [{"min": 0, "max": 1, "color": "#ffffff", "label": "Edited"}]},
        )

    # Read back, only the edited legend moved: the dynamic ones are left alone.
    plan = make_plan(emulator, specs, state)
    assert [(r.visualization_id, r.mode, r.dates, r.reason) for r in plan.rollbacks] == [
        (NDVI_BENGALURU_AB, "theoretical", ("2024-05-06",), "changed"),
    ]
    assert plan.confirmed == (NDVI_BENGALURU_AB,)
    assert run_apply(emulator, plan, state).ok
    assert not make_plan(emulator, specs, state).has_changes


def test_a_stale_saved_plan_is_refused_with_what_moved(
    emulator: Emulator, specs: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    plan = make_plan(emulator, specs, state)
    with client_for(emulator) as client:
        client.create_visualization(PUNE, NDVI)
    fresh = make_plan(emulator, specs, state)

    with pytest.raises(StalePlanError) as caught:
        check_not_stale(plan, desired=plan.desired, observed=fresh.observed, api_url=plan.api_url)
    message = str(caught.value)
    assert "AOI Pune-East: visualizations/" in message and "appeared" in message
    assert "Make a new plan, review it and apply that one: reconciler plan" in message
    # Unchanged world and specs: accepted.
    check_not_stale(fresh, desired=fresh.desired, observed=fresh.observed, api_url=fresh.api_url)
    with pytest.raises(StalePlanError, match="no longer declared in the specs"):
        check_not_stale(fresh, desired={}, observed=fresh.observed, api_url=fresh.api_url)


def test_apply_waits_for_a_slow_lifecycle(
    make_emulator: Callable[..., Emulator], specs: Path, tmp_path: Path
) -> None:
    emulator = make_emulator(creation_delay=0.3)
    state = tmp_path / "state.json"
    events: list[Event] = []

    result = run_apply(emulator, make_plan(emulator, specs, state), state, listener=events.append)

    assert result.ok
    assert any(isinstance(e, Waiting) and e.label == "NDWI on Bengaluru-North" for e in events)
    finished = [e for e in events if isinstance(e, ItemFinished)]
    assert [e.done for e in finished] == list(range(1, len(result.items) + 1))
    assert {i.status for i in result.items if i.change == "create"} == {"success"}
    assert not make_plan(emulator, specs, state).has_changes


def test_readiness_timeout_is_a_failure_that_a_later_apply_finishes(
    make_emulator: Callable[..., Emulator], specs: Path, tmp_path: Path
) -> None:
    emulator = make_emulator(creation_delay=0.5)
    state = tmp_path / "state.json"

    result = run_apply(emulator, make_plan(emulator, specs, state), state, wait_timeout=0.05)

    failed = [i for i in result.items if i.outcome == "failed"]
    assert len(failed) == 2 and all("--wait-timeout" in i.message for i in failed)
    assert not result.ok
    emulator_ready = make_plan(emulator, specs, state)
    assert emulator_ready.creates == ()  # they exist now; never created twice
    assert run_apply(emulator, emulator_ready, state).ok
    assert not make_plan(emulator, specs, state).has_changes


def test_a_failed_visualization_is_reported(
    make_emulator: Callable[..., Emulator], specs: Path, tmp_path: Path
) -> None:
    emulator = make_emulator(outcomes={"NDWI": "failed"})
    state = tmp_path / "state.json"

    result = run_apply(emulator, make_plan(emulator, specs, state), state)

    failed = [i for i in result.items if i.outcome == "failed"]
    assert [(i.aoi_name, i.status) for i in failed] == [("Bengaluru-North", "failed")]
    assert "finished it as failed" in failed[0].message
    assert report_document(ApplyOutcome(result))["ok"] is False
    assert result.counts()["rolled back"] == 2  # the others went ahead


def test_fail_fast_skips_what_was_not_started(
    make_emulator: Callable[..., Emulator], specs: Path, tmp_path: Path
) -> None:
    emulator = make_emulator(outcomes={"NDWI": "failed"})
    state = tmp_path / "state.json"

    result = run_apply(
        emulator, make_plan(emulator, specs, state), state, fail_fast=True, parallelism=1
    )

    assert result.stopped_early and not result.ok
    outcomes = [i.outcome for i in result.items]
    assert "failed" in outcomes and "skipped" in outcomes
    assert all("--fail-fast" in i.message for i in result.items if i.outcome == "skipped")


def test_an_interrupted_apply_resumes_to_convergence(
    emulator: Emulator, specs: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    plan = make_plan(emulator, specs, state)
    store = StateStore(state)
    store.load()
    with client_for(emulator) as client, store.lock():

        def stop_after_first(event: Event) -> None:
            if isinstance(event, ItemFinished):
                applier.request_stop("interrupted (Ctrl-C)")

        applier = Applier(
            client, store, parallelism=1, poll_interval=0.02, listener=stop_after_first
        )
        result = applier.apply(plan)
    assert result.counts()["skipped"] >= 1 and not result.ok

    # Nothing finished was lost: the next plan only holds what was skipped.
    resumed = make_plan(emulator, specs, state)
    assert len(resumed.changes) == result.counts()["skipped"]
    assert run_apply(emulator, resumed, state).ok
    assert not make_plan(emulator, specs, state).has_changes


def test_a_concurrent_apply_is_refused(emulator: Emulator, specs: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    plan = make_plan(emulator, specs, state)
    with StateStore(state).lock(), pytest.raises(StateLockedError, match="pid"):
        run_apply(emulator, plan, state)


def test_apply_converges_under_faults_without_duplicates(
    make_emulator: Callable[..., Emulator], specs: Path, tmp_path: Path
) -> None:
    emulator = make_emulator(
        faults=FaultConfig(
            seed=7,
            error_rate=0.15,
            rate_limit_rate=0.1,
            drop_rate=0.1,
            lost_response_rate=0.5,
            retry_after=0,
            max_faults=12,
        )
    )
    state = tmp_path / "state.json"

    result = run_apply(emulator, make_plan(emulator, specs, state), state)

    assert result.ok, render_report(ApplyOutcome(result))
    assert count_visualizations(emulator, BENGALURU, NDWI) == 1
    assert count_visualizations(emulator, PUNE, NDVI) == 1
    emulator.faults = FaultConfig()
    assert not make_plan(emulator, specs, state).has_changes


def test_a_rollback_waits_for_a_visualization_still_creating_at_plan_time(
    make_emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = make_emulator(creation_delay=0.4)
    with client_for(emulator) as client:  # made by someone else, still being computed
        client.create_visualization(BENGALURU, NDWI, src_asset_ids=[BENGALURU_C, BENGALURU_D])
    specs = write_spec(
        tmp_path / "specs",
        """
        aois:
          - aoi: {name: Bengaluru-North}
            visualizations:
              - index: NDWI
                assets: [Bengaluru-C, Bengaluru-D]
                rollback: [{mode: dynamic, dates: [2025-05-02]}]
        """,
    )
    state = tmp_path / "state.json"
    plan = make_plan(emulator, specs, state)
    assert "creating" in [w.kind for w in plan.warnings] and len(plan.rollbacks) == 1
    events: list[Event] = []

    result = run_apply(emulator, plan, state, listener=events.append)

    assert result.ok and [i.outcome for i in result.items] == ["rolled back"]
    assert any(isinstance(e, Waiting) for e in events)  # it waited before the PATCH
    assert not make_plan(emulator, specs, state).has_changes


def test_a_new_visualization_that_vanishes_while_waited_for_is_a_failure(
    make_emulator: Callable[..., Emulator], specs: Path, tmp_path: Path
) -> None:
    emulator = make_emulator(creation_delay=5)
    state = tmp_path / "state.json"
    plan = make_plan(emulator, specs, state)

    def vanish(event: Event) -> None:
        if isinstance(event, Waiting):
            with emulator.lock:  # gone from the API (the emulator has no delete)
                world = emulator.world
                world.visualizations = [
                    v for v in world.visualizations if v.id != event.visualization_id
                ]

    result = run_apply(emulator, plan, state, listener=vanish)

    failed = [i for i in result.items if i.outcome == "failed"]
    assert len(failed) == 2 and all(i.change == "create" for i in failed)
    assert all("is not listed on its AOI any more" in i.message for i in failed)
    assert result.counts()["rolled back"] == 2  # the rest went ahead


@pytest.mark.parametrize("presses", [1, 2], ids=["ctrl-c", "ctrl-c-twice"])
def test_ctrl_c_while_waiting_reports_every_change(
    make_emulator: Callable[..., Emulator], specs: Path, tmp_path: Path, presses: int
) -> None:
    emulator = make_emulator(creation_delay=30)
    state = tmp_path / "state.json"
    plan = make_plan(emulator, specs, state)
    sent: list[Event] = []

    def interrupt(event: Event) -> None:
        if isinstance(event, Waiting) and not sent:
            sent.append(event)
            signal.raise_signal(signal.SIGINT)  # from a worker: the main thread gets it
        elif isinstance(event, Stopping) and len(sent) < presses:
            sent.append(event)
            signal.raise_signal(signal.SIGINT)  # again, while the last looks are due

    try:
        result = run_apply(emulator, plan, state, listener=interrupt, parallelism=1)
    except KeyboardInterrupt:
        pytest.fail("a Ctrl-C escaped apply: the report would say nothing was done")

    assert len(sent) == presses and result.interrupted and not result.ok
    assert len(result.items) == len(plan.changes)  # every change accounted for
    created = [i for i in result.items if i.change == "create" and i.outcome == "created"]
    assert created and all(i.status == "creating" for i in created)
    assert all("interrupted (Ctrl-C) before it was ready" in i.message for i in created)


def test_a_bug_in_a_worker_stops_apply_and_is_raised(
    emulator: Emulator, specs: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    plan = make_plan(emulator, specs, state)

    def broken(event: Event) -> None:
        if isinstance(event, ItemFinished):
            raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        run_apply(emulator, plan, state, listener=broken)
