"""What apply records about legends it did not (or no longer) own: a change that failed, an
edit made by someone else between its write and its read-back. Through a proxy in front of the
emulator that fails or interleaves chosen calls; the next plan must show every such legend."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from reconciler.api.client import PixxelClient
from reconciler.emulator import Emulator
from reconciler.run.apply import Applier
from reconciler.run.engine import Engine
from reconciler.run.settings import Settings
from reconciler.state.store import StateStore
from tests.apiproxy import Answer, ApiProxy, Request, error_answer
from tests.planning import (
    BENGALURU,
    NDVI_BENGALURU_AB,
    SECRET,
    client_for,
    run_cli,
    write_spec,
)

METADATA = f"/v0/aois/{BENGALURU}/visualizations/{NDVI_BENGALURU_AB}/metadata"

SPEC = """\
aois:
  - aoi: {name: Bengaluru-North}
    visualizations:
      - index: NDVI
        assets: [Bengaluru-A, Bengaluru-B]
        rollback:
          - {mode: dynamic, dates: [2024-05-06]}
        legend:
          - mode: theoretical
            dates: [2024-11-20]
            items: [{min: -1, max: 1, color: "#1a9641", label: All}]
"""


@pytest.fixture
def proxy(world: Emulator) -> Iterator[ApiProxy]:
    with ApiProxy(world.url) as server:
        yield server


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: Emulator) -> Path:
    monkeypatch.chdir(tmp_path)
    write_spec(tmp_path / "specs", SPEC)
    applied = run_cli("apply", "--yes", url=world.url, key=SECRET)
    assert applied.exit_code == 0, applied.output
    return tmp_path


def plan_of(world: Emulator) -> dict[str, Any]:
    result = run_cli("plan", "--format", "json", url=world.url, key=SECRET)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def apply_through(proxy: ApiProxy) -> Result:
    return run_cli("apply", "--yes", url=proxy.url, key=SECRET)


def edit(world: Emulator, mode: str, date: str) -> None:
    """Someone edits one legend of Bengaluru's NDVI over A and B in the console."""
    items = [{"color": "#000000", "label": "by hand"}]
    with client_for(world, api_key=SECRET) as client:
        client.update_metadata(
            BENGALURU,
            NDVI_BENGALURU_AB,
            mode=mode,
            legend={date: items if mode == "theoretical" else items * 5},
            dynamic_bins=None if mode == "theoretical" else 5,
        )


def after_the_put(then: Callable[[], None]) -> Callable[[Request, Any], Answer | None]:
    """A spoiler: the PUT goes through, then ``then`` happens, then the PUT is answered."""

    def spoil(request: Request, forward: Any) -> Answer | None:
        if not request.matches("PUT", METADATA):
            return None
        answer: Answer = forward(request)
        then()
        return answer

    return spoil


def test_a_change_that_fails_leaves_its_legend_planned_on_a_confirmed_visualization(
    world: Emulator, project: Path, proxy: ApiProxy
) -> None:
    edit(world, "dynamic", "2024-05-06")
    write_spec(project / "specs", SPEC.replace("#1a9641", "#d7191c"))
    plan = plan_of(world)
    assert plan["confirmed"] == [NDVI_BENGALURU_AB]
    assert [r["reason"] for r in plan["rollbacks"]] == ["changed"]
    assert [lg["reason"] for lg in plan["legends"]] == ["declared-changed"]

    def failed_patch(request: Request, forward: Any) -> Answer | None:
        if request.matches("PATCH", METADATA):
            return error_answer(500, "internal", "the rollback failed")
        return None

    proxy.spoilers.append(failed_patch)
    assert apply_through(proxy).exit_code == 1  # the rollback failed, the legend was set
    again = plan_of(world)
    assert [(r["mode"], r["dates"]) for r in again["rollbacks"]] == [("dynamic", ["2024-05-06"])]
    assert again["legends"] == []


def test_an_edit_of_another_legend_right_after_a_put_is_not_taken_as_ours(
    world: Emulator, project: Path, proxy: ApiProxy
) -> None:
    write_spec(project / "specs", SPEC.replace("#1a9641", "#d7191c"))
    proxy.spoilers.append(after_the_put(lambda: edit(world, "dynamic", "2024-05-06")))
    assert apply_through(proxy).exit_code == 0
    again = plan_of(world)
    assert [(r["mode"], r["dates"]) for r in again["rollbacks"]] == [("dynamic", ["2024-05-06"])]


def test_an_edit_of_the_same_legend_right_after_a_put_fails_the_change_and_stays_planned(
    world: Emulator, project: Path, proxy: ApiProxy
) -> None:
    edit(world, "theoretical", "2024-11-20")
    assert plan_of(world)["confirmed"] == [NDVI_BENGALURU_AB]
    proxy.spoilers.append(after_the_put(lambda: edit(world, "theoretical", "2024-11-20")))
    applied = apply_through(proxy)
    assert applied.exit_code == 1
    assert "the API accepted the legend but shows another one right after" in applied.output
    (legend,) = plan_of(world)["legends"]
    assert (legend["mode"], legend["dates"]) == ("theoretical", ["2024-11-20"])


def test_a_bound_with_more_digits_than_the_api_keeps_is_set_once(
    world: Emulator, project: Path
) -> None:
    write_spec(project / "specs", SPEC.replace("max: 1,", "max: 0.12345678,"))
    applied = run_cli("apply", "--yes", url=world.url, key=SECRET)
    assert applied.exit_code == 0, applied.output
    assert plan_of(world)["legends"] == []


def test_a_stop_signal_while_indices_are_made_makes_no_further_index(
    world: Emulator, tmp_path: Path, proxy: ApiProxy
) -> None:
    indices = "".join(
        f"  - {{name: Stop-{n}, expression: B08, expression_type: index, rescale: [0, 1],\n"
        "     colormap: c, satellite: 0005c5bb-0bd2-4c80-9393-4a808341c54c}\n"
        for n in range(3)
    )
    specs = write_spec(tmp_path / "specs", f"indices:\n{indices}")
    state = tmp_path / "state.json"
    with PixxelClient(world.url, SECRET) as client:
        engine = Engine(Settings(api_url=world.url, state=state), client=client)
        plan = engine.plan([str(specs)])
    assert [i.name for i in plan.indices] == ["Stop-0", "Stop-1", "Stop-2"]
    store = StateStore(state)
    store.load()
    with PixxelClient(proxy.url, SECRET, backoff_factor=0.01) as client, store.lock():
        applier = Applier(client, store)

        def stop_after_the_first(request: Request, forward: Any) -> Answer | None:
            if not request.matches("POST", "/v0/indices"):
                return None
            answer: Answer = forward(request)
            applier.signal("stopped by SIGTERM")
            return answer

        proxy.spoilers.append(stop_after_the_first)
        result = applier.apply(plan)
    assert [(i.index_name, i.outcome) for i in result.items] == [
        ("Stop-0", "created"),
        ("Stop-1", "skipped"),
        ("Stop-2", "skipped"),
    ]
    assert result.interrupted and proxy.count("POST", "/v0/indices") == 1
