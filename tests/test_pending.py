"""What an apply set out to change and did not finish stays marked in the state (``pending``),
and the next pull request's plan (``plan --changed-since``) plans it beside what the pull request
changed, so the leftovers are in that review. Real git, the emulator over HTTP, a proxy that
refuses what an API can refuse."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from reconciler.emulator import Emulator
from reconciler.state.records import State
from reconciler.state.store import StateStore
from tests.faultproxy import Action, Fault, FaultProxy
from tests.planning import (
    API_KEY,
    BENGALURU,
    NDVI_BENGALURU_AB,
    NDVI_ROLLED_BACK,
    PUNE,
    PUNE_NDWI_NDVI,
    aoi,
    client_for,
    run_cli,
    spec,
    viz,
)
from tests.test_changed_since import commit, git, repo  # noqa: F401  (a fixture)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _untracked(checkout: Path) -> None:
    """Keep the state and saved plans out of the commits a test makes (``git add -A``)."""
    (checkout / ".git" / "info" / "exclude").write_text("*.json\n*.journal\n")


def _plan_since(url: str, *more: str) -> Result:
    """A pull request's plan: ``plan --changed-since main`` with the test's state."""
    return run_cli(
        "plan", "--changed-since", "main", "--state", "state.json", *more, url=url, key=API_KEY
    )


def _state() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path("state.json").read_text())
    return data


def test_a_failed_rollback_leaves_its_aoi_pending_for_the_next_pull_request(
    repo: Path,  # noqa: F811
    emulator: Emulator,
) -> None:
    # The rollbacks are refused (Bengaluru-North's); the creates go through (both AOIs).
    with FaultProxy(emulator.url) as proxy:
        proxy.faults = [Fault("PATCH", "/metadata", Action.FAIL, times=None, status=422)]
        failed = run_cli("apply", "--yes", "--state", "state.json", url=proxy.url, key=API_KEY)
    assert failed.exit_code == 1, failed.output
    state = _state()
    assert state["version"] == 3 and state["pending"] == {BENGALURU: "Bengaluru-North"}

    # A pull request that changes nothing else: its plan reads Bengaluru-North all the same.
    planned = _plan_since(emulator.url, "--out", "pr.json", "--detailed-exitcode")
    assert planned.exit_code == 2, planned.output
    text = " ".join(planned.output.split())
    assert "No AOI's declarations changed since main" in text
    assert "Also planned: what an earlier apply set out to change on Bengaluru-North and did " in (
        text
    )
    assert (
        "AOI Bengaluru-North (89a291cd): 1 to roll back, 1 unchanged, left unfinished by an "
        in (text)
    )
    saved = json.loads(Path("pr.json").read_text())
    assert saved["changed_since"]["pending"] == [BENGALURU]
    assert [(r["aoi_name"], r["mode"]) for r in saved["rollbacks"]] == [
        ("Bengaluru-North", "dynamic")
    ]
    assert not saved["creates"]  # Pune-East was finished: not read, not planned
    shown = run_cli("show", "pr.json", "--format", "markdown")
    assert "set out to change on `Bengaluru-North` and did not finish" in shown.output
    assert "left unfinished by an earlier apply" in shown.output  # on its section too

    # Applying the reviewed plan finishes it: nothing is pending any more.
    applied = run_cli(
        "apply", "pr.json", "--yes", "--state", "state.json", url=emulator.url, key=API_KEY
    )
    assert applied.exit_code == 0, applied.output
    state = _state()
    assert "pending" not in state and state["version"] in (1, 2)
    again = _plan_since(emulator.url)
    assert "No AOI's declarations changed since main" in again.output


def test_pending_aois_nothing_declares_are_not_looked_for(
    repo: Path,  # noqa: F811
    emulator: Emulator,
) -> None:
    store = StateStore(Path("state.json"))
    with store.lock():
        store.mark_pending({PUNE: "Pune-East", "gone": "Not-Declared"})
    # A pull request's plan looks only for the pending AOIs that are still declared, one by
    # one: no AOI listing is read for them.
    emulator.counter.reset()
    plan = _plan_since(emulator.url)
    assert plan.exit_code == 0, plan.output
    assert "on Pune-East and did not finish" in " ".join(plan.output.split())
    assert "Not-Declared" not in plan.output
    assert emulator.counter.count("GET", "/v0/aois") == 1  # Pune-East, looked up by name
    # An apply that reads Pune-East finishes it. The other stays marked, and is never read:
    # only a spec that declares it again brings it back into a plan.
    applied = run_cli("apply", "--yes", "--state", "state.json", url=emulator.url, key=API_KEY)
    assert applied.exit_code == 0, applied.output
    assert _state()["pending"] == {"gone": "Not-Declared"}


def test_a_failed_visualization_is_named_and_then_finished(
    repo: Path,  # noqa: F811
    make_emulator: Callable[..., Emulator],
) -> None:
    # The API finishes Pune-East's NDVI as failed: nothing to do there that apply can do.
    emulator = make_emulator(outcomes={"NDVI": "failed"})
    first = run_cli("apply", "--yes", "--state", "state.json", url=emulator.url, key=API_KEY)
    assert first.exit_code == 1
    assert _state()["pending"] == {PUNE: "Pune-East"}
    planned = _plan_since(emulator.url, "--out", "pr.json")
    text = " ".join(planned.output.split())
    assert "An earlier apply did not finish Pune-East either, but nothing is left to do" in text
    # Applying that plan (nothing to change) reads Pune-East again, and finishes it.
    applied = run_cli(
        "apply", "pr.json", "--yes", "--state", "state.json", url=emulator.url, key=API_KEY
    )
    assert applied.exit_code == 0, applied.output
    assert "pending" not in _state()


def test_leftovers_another_apply_finished_do_not_make_a_plan_stale(
    repo: Path,  # noqa: F811
    emulator: Emulator,
) -> None:
    _untracked(repo)
    with FaultProxy(emulator.url) as proxy:
        proxy.faults = [Fault("PATCH", "/metadata", Action.FAIL, times=None, status=422)]
        assert run_cli("apply", "--yes", "--state", "state.json", url=proxy.url, key=API_KEY)
    assert _state()["pending"] == {BENGALURU: "Bengaluru-North"}
    # Two pull requests open at once; each plan carries Bengaluru-North's leftover rollback.
    bengaluru = aoi("Bengaluru-North", NDVI_ROLLED_BACK, viz("True-Color"))
    pune = aoi("Pune-East", viz("NDWI"), viz("NDVI"), viz("True-Color"))
    nagpur = aoi("Nagpur-Farms", viz("True-Color"))
    plans = {}
    for name, declared in {
        "a": (bengaluru, pune),
        "b": (bengaluru, PUNE_NDWI_NDVI, nagpur),
    }.items():
        git(repo, "checkout", "-q", "-b", name, "main")
        (repo / "specs" / "team.yaml").write_text(spec(*declared))
        commit(repo)
        plans[name] = repo.parent / f"{name}.json"
        assert _plan_since(emulator.url, "--out", str(plans[name])).exit_code == 0
        assert json.loads(plans[name].read_text())["rollbacks"]
    # A is merged and applied: the leftover rollback too. Then B, onto what A left.
    (repo / "specs" / "team.yaml").write_text(spec(bengaluru, pune))
    api = ("--yes", "--state", "state.json")
    assert run_cli("apply", str(plans["a"]), *api, url=emulator.url, key=API_KEY).exit_code == 0
    (repo / "specs" / "team.yaml").write_text(spec(bengaluru, pune, nagpur))
    applied = run_cli("apply", str(plans["b"]), *api, url=emulator.url, key=API_KEY)
    assert applied.exit_code == 0, applied.output
    assert "Apply complete: 1 created, 0 adopted, 0 rolled back" in applied.output
    assert "pending" not in _state()


def _edit_bengaluru_by_hand(emulator: Emulator) -> None:
    with client_for(emulator) as client:
        client.set_legend(
            BENGALURU,
            NDVI_BENGALURU_AB,
            mode="dynamic",
            legend={"2024-05-06": [{"min": -1, "max": 1, "color": "#FF0000", "label": "x"}]},
            dynamic_bins=1,
        )


def test_leftovers_that_moved_since_the_review_wait_and_refuse_nothing(
    repo: Path,  # noqa: F811
    emulator: Emulator,
) -> None:
    _untracked(repo)
    url = emulator.url
    assert run_cli("apply", "--yes", "--state", "state.json", url=url, key=API_KEY).exit_code == 0
    store = StateStore(Path("state.json"))
    with store.lock():
        store.mark_pending({BENGALURU: "Bengaluru-North"})  # killed after its changes were made
    # A pull request that adds a visualization to Pune-East: its plan carries Bengaluru-North,
    # with nothing left to do there.
    git(repo, "checkout", "-q", "-b", "pr")
    pune = aoi("Pune-East", viz("NDWI"), viz("NDVI"), viz("True-Color"))
    (repo / "specs" / "team.yaml").write_text(
        spec(aoi("Bengaluru-North", NDVI_ROLLED_BACK, viz("True-Color")), pune)
    )
    commit(repo)
    assert _plan_since(url, "--out", "pr.json").exit_code == 0
    saved = json.loads(Path("pr.json").read_text())
    assert saved["changed_since"]["pending"] == [BENGALURU] and not saved["rollbacks"]
    # Meanwhile Bengaluru-North's legend is edited by hand: a rollback is due there now, which
    # nobody reviewed. The pull request's own change is applied; that rollback is not.
    _edit_bengaluru_by_hand(emulator)
    late = run_cli(
        "apply",
        "pr.json",
        "--yes",
        "--state",
        "state.json",
        "--report",
        "r.json",
        url=url,
        key=API_KEY,
    )
    assert late.exit_code == 0, late.output
    report = json.loads(Path("r.json").read_text())
    assert report["left_pending"] == [{"aoi_id": BENGALURU, "aoi_name": "Bengaluru-North"}]
    said = " ".join(late.output.split())
    assert "Apply complete: 1 created, 0 adopted, 0 rolled back" in said
    assert "not applied: what an earlier apply left unfinished on AOI Bengaluru-North" in said
    assert _state()["pending"] == {BENGALURU: "Bengaluru-North"}  # the next plan shows it
    again = _plan_since(url)
    assert "on Bengaluru-North and did not finish" in " ".join(again.output.split())


def test_leftovers_another_apply_half_finished_wait_for_the_next_plan(
    repo: Path,  # noqa: F811
    emulator: Emulator,
) -> None:
    _untracked(repo)
    refused = [
        Fault("POST", "/visualizations", Action.FAIL, times=None, status=422),
        Fault("PATCH", "/metadata", Action.FAIL, times=None, status=422),
    ]
    api = ("--yes", "--state", "state.json")
    # Bengaluru-North: a visualization to create and a legend to roll back.
    bengaluru = aoi("Bengaluru-North", NDVI_ROLLED_BACK, viz("True-Color"), viz("NDWI"))
    nagpur = aoi("Nagpur-Farms", viz("True-Color"))
    (repo / "specs" / "team.yaml").write_text(spec(bengaluru, PUNE_NDWI_NDVI))
    commit(repo)
    with FaultProxy(emulator.url) as proxy:  # one API URL for every command
        proxy.faults = refused
        assert run_cli("apply", *api, url=proxy.url, key=API_KEY).exit_code == 1
        assert set(_state()["pending"]) == {BENGALURU, PUNE}
        proxy.faults = []
        # A changes nothing but a comment: its plan is the leftovers. B adds an AOI.
        merged = (bengaluru, PUNE_NDWI_NDVI, nagpur)
        plans = {}
        for name, declared in {"a": merged[:2], "b": merged}.items():
            git(repo, "checkout", "-q", "-b", name, "main")
            (repo / "specs" / "team.yaml").write_text(spec(*declared) + f"# {name}\n")
            commit(repo)
            plans[name] = str(repo.parent / f"{name}.json")
            assert _plan_since(proxy.url, "--out", plans[name]).exit_code == 0
        # A is merged and applied: the creates are made, Bengaluru-North's rollback is
        # refused again.
        git(repo, "checkout", "-q", "a")
        proxy.faults = refused[1:]
        a = run_cli("apply", plans["a"], *api, url=proxy.url, key=API_KEY)
        assert a.exit_code == 1 and "2 created" in a.output, a.output
        # B reviewed Bengaluru-North's create and rollback; only the rollback is left: B's
        # own change goes ahead, and the rollback waits for a plan that shows it as it is.
        proxy.faults = []
        (repo / "specs" / "team.yaml").write_text(spec(*merged))
        b = run_cli("apply", plans["b"], *api, url=proxy.url, key=API_KEY)
    assert b.exit_code == 0, b.output
    said = " ".join(b.output.split())
    assert "Apply complete: 1 created, 0 adopted, 0 rolled back" in said
    assert "left unfinished on AOI Bengaluru-North changed since this plan was made" in said
    assert _state()["pending"] == {BENGALURU: "Bengaluru-North"}


def test_applying_one_spec_file_leaves_another_files_pending_aois(
    repo: Path,  # noqa: F811
    emulator: Emulator,
) -> None:
    _untracked(repo)
    (repo / "specs" / "team.yaml").write_text(spec(aoi("Bengaluru-North", NDVI_ROLLED_BACK)))
    (repo / "specs" / "pune.yaml").write_text(spec(PUNE_NDWI_NDVI))
    commit(repo)
    with FaultProxy(emulator.url) as proxy:
        proxy.faults = [Fault("POST", "/visualizations", Action.FAIL, times=None, status=422)]
        assert run_cli("apply", "--yes", "--state", "state.json", url=proxy.url, key=API_KEY)
    assert PUNE in _state()["pending"]
    one = run_cli(
        "apply", "specs/team.yaml", "--yes", "--state", "state.json", url=emulator.url, key=API_KEY
    )
    assert one.exit_code == 0, one.output
    assert PUNE in _state()["pending"]


def test_an_apply_of_some_aois_leaves_the_others_pending(
    repo: Path,  # noqa: F811
    emulator: Emulator,
) -> None:
    store = StateStore(Path("state.json"))
    with store.lock():
        store.mark_pending({PUNE: "Pune-East", BENGALURU: "Bengaluru-North"})
    some = ("--target", "Pune-East", "--state", "state.json")
    assert run_cli("plan", *some, "--out", "p.json", url=emulator.url, key=API_KEY).exit_code == 0
    # A saved plan of one AOI re-reads that AOI only: the other stays pending.
    applied = run_cli(
        "apply", "p.json", "--yes", "--state", "state.json", url=emulator.url, key=API_KEY
    )
    assert applied.exit_code == 0, applied.output
    assert _state()["pending"] == {BENGALURU: "Bengaluru-North"}
    again = run_cli("apply", *some, "--yes", url=emulator.url, key=API_KEY)
    assert again.exit_code == 0  # nothing was left to do there
    assert _state()["pending"] == {BENGALURU: "Bengaluru-North"}


def test_pending_aois_survive_a_kill_and_are_replayed(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = StateStore(path)
    store.mark_pending({PUNE: "Pune-East", BENGALURU: "Bengaluru-North"})
    store.finish_pending([PUNE])
    # Never flushed (as after a SIGKILL): the journal alone has them.
    assert not path.exists()
    assert StateStore(path).load().pending == {BENGALURU: "Bengaluru-North"}
    store.flush()
    assert json.loads(path.read_text())["pending"] == {BENGALURU: "Bengaluru-North"}


def test_pending_round_trips_and_an_empty_one_keeps_the_older_version() -> None:
    state = State(pending={PUNE: "Pune-East"})
    data = state.to_dict()
    assert data["version"] == 3 and data["pending"] == {PUNE: "Pune-East"}
    assert State.from_dict(data, source="s").pending == {PUNE: "Pune-East"}
    assert state.finish_pending([PUNE]) and not state.finish_pending([PUNE])
    assert state.to_dict() == {"version": 1, "visualizations": {}}
    assert not state.mark_pending({}) and state.mark_pending({BENGALURU: "Bengaluru-North"})


def test_a_damaged_pending_line_in_the_journal_is_named(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    journal = tmp_path / "state.json.journal"
    journal.write_text('{"journal": 3, "state": "x"}\n{"pending": {"a": 1}}\n')
    with pytest.raises(Exception, match=r"state.json.journal:2: .*not valid pending AOIs"):
        StateStore(path).load()
