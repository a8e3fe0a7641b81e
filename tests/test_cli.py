"""plan, apply and validate --online end to end through the command line, against the emulator."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from reconciler.emulator import Emulator, FaultConfig
from reconciler.run.engine import is_plan_file
from reconciler.state.journal import Journal
from reconciler.state.store import StateStore
from tests.planning import (
    BENGALURU,
    SECRET,
    SPEC,
    edit_legend_by_hand,
    run_cli,
    run_process,
    write_spec,
)

TYPO = "aois: [{aoi: {name: Pune-East}, visualizations: [{index: NVDI}]}]\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A spec repository as users have it: specs/ in the working directory."""
    write_spec(tmp_path / "specs", SPEC)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(world: Emulator, *args: str, input: str | None = None) -> Result:
    return run_cli(*args, url=world.url, key=SECRET, input=input)


def test_plan_exit_codes_and_formats(world: Emulator, project: Path) -> None:
    text = run(world, "plan")
    assert text.exit_code == 0, text.output
    assert "+ create NDVI visualization" in text.output
    assert "Plan: 1 to create, 1 to roll back" in text.output
    assert "\x1b[" not in text.output  # no colour without a terminal

    assert run(world, "plan", "--detailed-exitcode").exit_code == 2

    markdown = run(world, "plan", "--format", "markdown")
    assert markdown.output.startswith("### ") and "<details" in markdown.output
    assert "Pune-East" in markdown.output

    as_json = json.loads(run(world, "plan", "--format", "json").output)
    assert as_json["format_version"] == 8
    assert as_json["summary"]["create"] == 1 and as_json["summary"]["rollback"] == 1
    assert as_json["creates"][0]["aoi_name"] == "Pune-East"


def test_plan_errors_exit_1_with_the_spec_position(world: Emulator, project: Path) -> None:
    write_spec(project / "specs", TYPO)
    result = run(world, "plan", "--detailed-exitcode")
    assert result.exit_code == 1
    assert "specs/spec.yaml:1:58: unknown index 'NVDI' (closest: NDVI" in result.output
    assert "Traceback" not in result.output


def test_apply_then_plan_is_empty_and_the_report_says_what_happened(
    world: Emulator, project: Path
) -> None:
    refused = run(world, "apply", "--report", "refused.json")  # stdin is not a terminal here
    assert refused.exit_code == 1 and "--yes" in refused.output
    assert json.loads((project / "refused.json").read_text())["error"]["kind"] == "config"

    applied = run(world, "apply", "--yes", "--report", "report.json")
    assert applied.exit_code == 0, applied.output
    assert "Apply complete: 1 created, 0 adopted, 1 rolled back, 0 failed" in applied.output
    report = json.loads((project / "report.json").read_text())
    assert report["ok"] is True and report["summary"]["created"] == 1
    assert report["format_version"] == 3 and report["error"] is None
    assert {i["outcome"] for i in report["items"]} == {"created", "rolled back"}

    again = run(world, "plan", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "No changes" in again.output

    nothing = run(world, "apply", "--yes", "--report", "nothing.json")
    assert nothing.exit_code == 0, nothing.output
    report = json.loads((project / "nothing.json").read_text())
    assert report["ok"] is True and report["items"] == [] and report["api_url"] == world.url


@pytest.mark.slow
def test_apply_stops_at_its_timeout_and_reports_every_change(
    make_emulator: Callable[..., Emulator], project: Path
) -> None:
    slow = make_emulator(api_keys=(SECRET,), creation_delay=60)
    started = time.monotonic()
    result = run(slow, "apply", "--yes", "--timeout", "1.5", "--report", "report.json")
    assert time.monotonic() - started < 6
    assert result.exit_code == 1, result.output
    assert "Apply stopped early (--timeout of 1.5 s reached)" in result.output
    report = json.loads((project / "report.json").read_text())
    assert report["ok"] is False and report["stop_reason"] == "--timeout of 1.5 s reached"
    created = [i for i in report["items"] if i["change"] == "create"]
    assert [i["status"] for i in created] == ["creating"]  # created, not yet usable
    assert "--timeout of 1.5 s reached before it was ready" in created[0]["message"]
    assert len(report["items"]) == 2  # the rollback too: every change is accounted for


@pytest.mark.slow
def test_plan_stops_at_its_timeout_with_a_clear_error(
    make_emulator: Callable[..., Emulator], project: Path
) -> None:
    slow = make_emulator(api_keys=(SECRET,), faults=FaultConfig(latency_ms=3000))
    started = time.monotonic()
    result = run(slow, "plan", "--timeout", "0.5")
    assert time.monotonic() - started < 2.5
    assert result.exit_code == 1
    assert "--timeout of 0.5 s reached." in result.output and "Traceback" not in result.output

    # The same cut in apply's planning: the report says it was the timeout, not the API.
    cut = run(slow, "apply", "--yes", "--timeout", "0.5", "--report", "r.json")
    assert cut.exit_code == 1
    report = json.loads((project / "r.json").read_text())
    assert report["error"]["kind"] == "timeout" and report["items"] == []


def test_apply_asks_on_a_terminal_and_takes_only_yes(
    world: Emulator, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reconciler.cli.apply._isatty", lambda stream: True)
    declined = run(world, "apply", "--no-color", input="y\n")
    assert declined.exit_code == 1 and "cancelled" in declined.output
    assert run(world, "plan", "--detailed-exitcode", "--no-color").exit_code == 2
    accepted = run(world, "apply", "--no-color", input="yes\n")
    assert accepted.exit_code == 0 and "Apply complete" in accepted.output


def test_saved_plan_applies_and_a_stale_one_is_refused(world: Emulator, project: Path) -> None:
    assert run(world, "plan", "--out", "plan.json").exit_code == 0
    assert json.loads((project / "plan.json").read_text())["spec_paths"] == ["specs/"]
    applied = run(world, "apply", "plan.json", "--yes")
    assert applied.exit_code == 0, applied.output
    assert "Apply complete: 1 created, 0 adopted, 1 rolled back" in applied.output

    edit_legend_by_hand(world, api_key=SECRET)
    assert run(world, "plan", "--out", "plan2.json", "--detailed-exitcode").exit_code == 2
    edit_legend_by_hand(world, api_key=SECRET)  # the world moves again after the plan was saved
    refused = run(world, "apply", "plan2.json", "--yes", "--report", "refused.json")
    assert refused.exit_code == 1
    assert "stale" in refused.output and "updated_at changed from" in refused.output
    assert "review it and apply that one: reconciler plan --out plan2.json" in refused.output
    report = json.loads((project / "refused.json").read_text())
    assert report["error"]["kind"] == "stale-plan" and report["items"] == []
    assert "updated_at changed from" in report["error"]["message"]


def test_a_saved_plan_survives_unrelated_edits_and_refuses_a_changed_intent(
    world: Emulator, project: Path
) -> None:
    """Acceptance: a comment line (and another AOI's edit) after 'plan --out' leave the saved
    plan valid; a changed rollback date of an AOI in the plan makes apply refuse."""
    spec = project / "specs" / "spec.yaml"
    assert run(world, "plan", "--out", "p.json").exit_code == 0
    spec.write_text(
        "# reviewed in the pull request\n"
        + SPEC.replace("      - index: NDVI\n", "      - index: NDVI   # moved along\n")
    )
    first = run(world, "apply", "p.json", "--yes")  # rollback dates unchanged: still valid
    assert first.exit_code == 0, first.output
    assert "Apply complete: 1 created, 0 adopted, 1 rolled back" in first.output

    # Bengaluru's rollback is recorded now; bump its revision so it is planned again.
    bumped = SPEC.replace("dates: [2024-05-06]}", "dates: [2024-05-06], revision: 1}")
    spec.write_text(bumped)
    assert run(world, "plan", "--out", "p.json", "--detailed-exitcode").exit_code == 2
    # Another AOI's edit (Pune-East, which the plan does not change) and a comment: valid.
    other = bumped.replace("      - index: NDWI\n", "      - index: NDWI\n        resolution: 30\n")
    spec.write_text("# another team's change\n" + other)
    plan = json.loads((project / "p.json").read_text())
    assert {c["aoi_name"] for c in plan["creates"] + plan["rollbacks"]} == {"Bengaluru-North"}
    (project / "p2.json").write_text((project / "p.json").read_text())
    # A rollback date of the AOI the plan changes: refused, saying what moved and what to run.
    spec.write_text(other.replace("dates: [2024-05-06]", "dates: [2024-05-06, 2024-11-20]"))
    changed = run(world, "apply", "p2.json", "--yes")
    assert changed.exit_code == 1
    assert "AOI Bengaluru-North: NDVI over Bengaluru-A (2024-05-06), Bengaluru-B" in changed.output
    assert "dynamic rollback dates 2024-05-06 → 2024-05-06, 2024-11-20" in changed.output
    assert "apply that one: reconciler plan --out p2.json" in changed.output
    spec.write_text(other)
    applied = run(world, "apply", "p.json", "--yes")
    assert applied.exit_code == 0, applied.output
    assert "0 created, 0 adopted, 1 rolled back" in applied.output


def test_the_replan_hint_of_a_refused_plan_keeps_its_targets(
    world: Emulator, project: Path
) -> None:
    planned = run(world, "plan", "--target", "Bengaluru-North", "--target", BENGALURU, "--out",
                  "p.json")  # fmt: skip
    assert planned.exit_code == 0, planned.output
    spec = project / "specs" / "spec.yaml"
    spec.write_text(SPEC.replace("dates: [2024-05-06]", "dates: [2024-05-06, 2024-11-20]"))
    refused = run(world, "apply", "p.json", "--yes")
    assert refused.exit_code == 1
    hint = f"reconciler plan --target Bengaluru-North --target {BENGALURU} --out p.json"
    assert refused.output.rstrip().endswith(f"apply that one: {hint}")


def test_a_modified_plan_file_is_refused(world: Emulator, project: Path) -> None:
    assert run(world, "plan", "--out", "p.json").exit_code == 0
    saved = project / "p.json"
    data = json.loads(saved.read_text())
    data["rollbacks"][0]["dates"] = ["2024-11-20"]
    saved.write_text(json.dumps(data, indent=2))
    refused = run(world, "apply", "p.json", "--yes")
    assert refused.exit_code == 1
    assert "changed after 'reconciler plan' saved it" in refused.output
    shown = run(world, "show", "p.json", "--format", "json")
    assert shown.exit_code == 1
    assert json.loads(shown.stdout)["error"]["kind"] == "plan-file"
    assert run(world, "plan", "--detailed-exitcode").exit_code == 2  # nothing was applied


def test_max_changes_refuses_unless_forced(world: Emulator, project: Path) -> None:
    refused = run(world, "apply", "--yes", "--max-changes", "1", "--report", "r.json")
    assert refused.exit_code == 1 and "more than --max-changes 1" in refused.output
    assert json.loads((project / "r.json").read_text())["ok"] is False
    assert run(world, "plan", "--detailed-exitcode").exit_code == 2  # nothing was applied
    assert run(world, "apply", "--yes", "--max-changes", "1", "--force").exit_code == 0


def test_concurrent_apply_is_refused(world: Emulator, project: Path) -> None:
    with StateStore(project / ".reconciler" / "state.json").lock():
        result = run(world, "apply", "--yes")
    assert result.exit_code == 1 and "pid" in result.output


def test_validate_online(world: Emulator, project: Path) -> None:
    assert run(world, "validate", "--online").exit_code == 0
    write_spec(project / "specs", TYPO)
    bad = run(world, "validate", "--online")
    assert bad.exit_code == 1
    assert "specs/spec.yaml:1:58: unknown index 'NVDI' (closest: NDVI" in bad.output
    assert run(world, "validate").exit_code == 0  # offline it cannot know


def test_the_key_never_appears_even_with_vv(world: Emulator, project: Path) -> None:
    outputs = [
        run(world, "-vv", "plan", "--out", "plan.json"),
        run(world, "-vv", "apply", "--yes", "--report", "report.json"),
        run(world, "-vv", "plan", "--format", "json"),
    ]
    assert all(r.exit_code == 0 for r in outputs)
    for result in outputs:
        assert SECRET not in result.output
    assert any("GET /v0/aois" in r.output for r in outputs)  # -vv does trace requests
    for path in project.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path


def test_plain_http_to_a_remote_host_is_refused(project: Path) -> None:
    result = run_cli("plan", "--api-url", "http://api.example.com", key=SECRET)
    assert result.exit_code == 1
    assert "http://" in result.output and SECRET not in result.output


def test_a_missing_key_explains_how_to_give_one(project: Path) -> None:
    result = run_cli("plan", env={"PIXXEL_API_KEY": None})
    assert result.exit_code == 1
    assert "PIXXEL_API_KEY" in result.output and "--sandbox" in result.output


@pytest.mark.slow
def test_sandbox_plan_apply_plan_converges_across_processes(tmp_path: Path) -> None:
    """The README's first command, then apply, then plan: three separate processes."""
    write_spec(tmp_path / "specs", SPEC)

    def reconciler(*args: str) -> subprocess.CompletedProcess[str]:
        return run_process(tmp_path, *args)

    first = reconciler("plan", "--sandbox", "--detailed-exitcode")
    assert first.returncode == 2, first.stderr
    applied = reconciler("apply", "--sandbox", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    last = reconciler("plan", "--sandbox", "--detailed-exitcode")
    assert last.returncode == 0, last.stdout + last.stderr
    assert (tmp_path / ".reconciler" / "sandbox" / "state.json").is_file()
    assert not (tmp_path / ".reconciler" / "state.json").exists()  # never mixed with real state


@pytest.mark.slow
def test_sandbox_export_of_everything_then_plan_shows_no_changes(tmp_path: Path) -> None:
    """Adoption in the sandbox: apply the example specs, export it all, plan the export."""
    shutil.copytree(Path(__file__).parent.parent / "specs", tmp_path / "specs")

    def reconciler(*args: str) -> subprocess.CompletedProcess[str]:
        return run_process(tmp_path, *args)

    applied = reconciler("apply", "--sandbox", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    exported = reconciler("export", "--all", "--out", "adopted", "--sandbox")
    assert exported.returncode == 0, exported.stderr
    assert "# rollback:" in (tmp_path / "adopted" / "bengaluru-north.yaml").read_text()
    planned = reconciler("plan", "adopted", "--sandbox", "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "Plan: 0 to create, 0 to roll back" in planned.stdout


def test_an_empty_api_url_is_refused_not_replaced_by_production(
    world: Emulator, project: Path
) -> None:
    result = run(world, "plan", "--api-url", "")
    assert result.exit_code == 1
    assert "API URL '' must start with https://" in result.output


def test_a_failed_apply_reports_when_it_started(world: Emulator, project: Path) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    result = run(world, "apply", "--max-changes", "0", "--yes", "--report", "report.json")
    assert result.exit_code == 1 and "--max-changes 0" in result.output
    report = json.loads((project / "report.json").read_text())
    assert report["ok"] is False and report["error"]["kind"] == "too-many-changes"
    assert "--max-changes 0" in report["error"]["message"]
    assert report["api_url"] == world.url  # the plan was shown: it is known
    assert dt.datetime.fromisoformat(report["started_at"]) >= before
    assert report["started_at"] <= report["finished_at"]


def test_a_saved_plan_that_did_not_arrive_is_a_plan_file_error(
    world: Emulator, project: Path
) -> None:
    missing = run(world, "apply", "reviewed/plan.json", "--yes", "--report", "r.json")
    assert missing.exit_code == 1 and "no such saved plan" in missing.output
    report = json.loads((project / "r.json").read_text())
    assert report["error"]["kind"] == "plan-file" and report["items"] == []
    (project / "specs.json").mkdir()  # a spec directory with an odd name is still one
    assert not is_plan_file([str(project / "specs.json")])


def test_a_report_path_that_cannot_be_written_is_refused_before_any_change(
    world: Emulator, project: Path
) -> None:
    (project / "afile").write_text("")
    for path, expected in (("afile/r.json", "afile is a file"), (".", "is a directory")):
        refused = run(world, "apply", "--yes", "--report", path)
        assert refused.exit_code == 1 and expected in refused.output
    assert run(world, "plan", "--detailed-exitcode").exit_code == 2  # nothing was applied


def test_a_full_disk_during_apply_stops_it_and_the_report_says_what_was_done(
    world: Emulator, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The state journal fills up once the apply has begun: the AOIs it sets out to change are
    # marked, then every record fails to be written (ENOSPC).
    full = os.open("/dev/full", os.O_WRONLY)
    opened = Journal._open
    calls: list[Journal] = []

    def filling(journal: Journal) -> int:
        calls.append(journal)
        return opened(journal) if len(calls) == 1 else full

    monkeypatch.setattr(Journal, "_open", filling)
    try:
        result = run(world, "apply", "--yes", "--parallelism", "1", "--report", "r.json")
    finally:
        os.close(full)
    assert result.exit_code == 1
    assert "No space left on device" in result.output and "Traceback" not in result.output
    report = json.loads((project / "r.json").read_text())
    assert report["error"] is None and report["ok"] is False
    assert "No space left on device" in report["state_error"]
    assert report["stop_reason"] == "stopped: the state could not be written"
    done, *rest = report["items"]  # the first change happened: said so, and nothing after it
    assert done["outcome"] in ("created", "rolled back")
    assert "the state could not record it" in done["message"]
    assert rest and {i["outcome"] for i in rest} == {"skipped"}
    assert "Apply stopped early" in result.output  # the summary is printed too


def test_a_full_disk_before_apply_begins_changes_nothing(
    world: Emulator, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not even the AOIs it sets out to change can be noted: nothing is sent.
    full = os.open("/dev/full", os.O_WRONLY)
    monkeypatch.setattr(Journal, "_open", lambda journal: full)
    try:
        result = run(world, "apply", "--yes", "--report", "r.json")
    finally:
        os.close(full)
    assert result.exit_code == 1
    assert "No space left on device" in result.output and "Traceback" not in result.output
    report = json.loads((project / "r.json").read_text())
    assert report["error"]["kind"] == "state" and report["items"] == []
    assert world.counter.count("POST") == 0 and world.counter.count("PATCH") == 0
    assert run(world, "plan", "--detailed-exitcode").exit_code == 2  # all still to do


def test_an_empty_saved_plan_applies_after_an_unrelated_spec_edit(
    world: Emulator, project: Path
) -> None:
    assert run(world, "apply", "--yes").exit_code == 0
    assert run(world, "plan", "--out", "plan.json").exit_code == 0
    spec = project / "specs" / "spec.yaml"
    spec.write_text(spec.read_text() + "# a comment\n")
    result = run(world, "apply", "plan.json", "--yes")
    assert result.exit_code == 0, result.output
    assert "No changes" in result.output


EVIL = "Evil\n::error::pwned \x1b[31m"


def _workflow_commands(text: str) -> list[str]:
    """Lines a CI runner would read as workflow commands (it trims leading blanks first)."""
    return [line for line in text.splitlines() if line.lstrip().startswith("::")]


def test_names_from_the_api_cannot_write_ci_workflow_commands(
    make_emulator: Callable[..., Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_emulator(api_keys=(SECRET,), outcomes={"SAVI": "failed"})
    with world.lock:
        aoi, index = world.world.aoi(BENGALURU), world.world.index_by_ref("NDVI")
        assert aoi is not None and index is not None
        aoi.name = EVIL
        index.name = "NDVI\n::warning::x"
    write_spec(
        tmp_path / "specs",
        f"""
        aois:
          - aoi: {BENGALURU}
            visualizations:
              - index: cb668cf4-b6fc-5c37-a944-84c62fd95299
                assets: [Bengaluru-A, Bengaluru-B]
                rollback: [{{mode: dynamic, dates: [2024-05-06]}}]
              - index: 58daa3ea-1018-5594-9e35-9056ba51867e
        """,
    )
    monkeypatch.chdir(tmp_path)
    planned = run(world, "plan", "--out", "p.json", "-v")
    assert planned.exit_code == 0, planned.output
    # A legend edited by hand after the plan: apply refuses, naming the AOI.
    edit_legend_by_hand(world, api_key=SECRET)
    stale = run(world, "apply", "p.json", "--yes", "-v")
    assert stale.exit_code == 1 and "the saved plan is stale" in stale.output
    assert "Evil\\n\\x3a:error::pwned" not in stale.output  # one escape, not two
    assert "Evil\\n::error::pwned" in stale.output
    # Apply from the specs: progress, a failed create and the summary all name the AOI.
    applied = run(world, "apply", "--yes", "-v")
    assert applied.exit_code == 1, applied.output
    assert "failed: SAVI on Evil\\n::error::pwned" in applied.output
    for result in (planned, stale, applied):
        assert _workflow_commands(result.output) == [], result.output
        assert "\x1b" not in result.output


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["plan", "--no-such-flag"], 1),
        (["no-such-command"], 1),
        (["plan", "--format", "yaml"], 1),
        (["--parallelism"], 1),
        (["plan", "--detailed-exitcode", "--comment-id", "a b"], 1),
        (["--help"], 0),
        (["--version"], 0),
        (["plan", "--help"], 0),
    ],
)
def test_usage_errors_exit_1_never_2_which_means_changes(args: list[str], code: int) -> None:
    result = run_cli(*args)
    assert result.exit_code == code, result.output
    if code:
        assert "Error:" in result.output and "Usage:" in result.output


@pytest.mark.slow
def test_the_console_script_maps_usage_errors_to_1() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", "--detailed-exitcode", "--bogus"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "No such option '--bogus'" in result.stderr
