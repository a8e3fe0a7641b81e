"""What CI reads: failures in every output format, annotations, hints that work as printed,
logs without colour, -v after the command."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import Result

from reconciler.emulator import Emulator
from tests.planning import PUNE_NDWI_NDVI, run_cli, run_process, spec, write_spec

KEY = "test-key"
GOOD = spec(PUNE_NDWI_NDVI)
# Two problems only the API can find, one the offline checks find.
BAD = """
aois:
  - aoi: {name: Pune-East}
    visualizations:
      - index: NVDI
      - index: NDWI
        assets: [Pune-Z]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_spec(tmp_path / "specs", GOOD)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(emulator: Emulator | None, *args: str, key: str = KEY) -> Result:
    url = emulator.url if emulator is not None else None
    return run_cli(*args, url=url, key=key, env={"NO_COLOR": None})


# --- failures are documents too ----------------------------------------------------------------


def test_plan_failures_in_markdown_and_json_say_what_went_wrong_with_positions(
    emulator: Emulator, project: Path
) -> None:
    write_spec(project / "specs", BAD)
    md = run(emulator, "plan", "--format", "markdown", "--comment-id", "eu")
    assert md.exit_code == 1
    assert md.stdout.startswith("### reconciler plan failed: 2 problems in the specs\n")
    assert "specs/spec.yaml:4:16: unknown index 'NVDI' (closest: NDVI" in md.stdout
    assert "specs/spec.yaml:6:18: unknown asset 'Pune-Z' in AOI 'Pune-East'" in md.stdout
    assert md.stdout.endswith("\n<!-- reconciler-plan:eu -->\n")  # replaces the plan comment
    assert "Error: 2 problems in the specs" in md.stderr  # and the log says it too

    as_json = run(emulator, "plan", "--format", "json", "--detailed-exitcode")
    assert as_json.exit_code == 1
    document = json.loads(as_json.stdout)
    assert document["format_version"] == 8 and document["command"] == "plan"
    error = document["error"]
    assert error["kind"] == "spec" and error["message"] == "2 problems in the specs"
    assert [(p["path"], p["line"], p["column"]) for p in error["problems"]] == [
        ("specs/spec.yaml", 4, 16),
        ("specs/spec.yaml", 6, 18),
    ]

    write_spec(project / "specs", "aois: [{aoi: {name: Pune-East}, visualizations: 3}]\n")
    offline = json.loads(run(emulator, "plan", "--format", "json").stdout)
    assert offline["error"]["problems"][0]["line"] == 1  # offline problems too


def test_api_failures_in_markdown_and_json(emulator: Emulator, project: Path) -> None:
    md = run(emulator, "plan", "--format", "markdown", key="wrong-key")
    assert md.exit_code == 1
    assert md.stdout.startswith("### reconciler plan failed: the Pixxel API could not be read\n")
    assert "401" in md.stdout and "<!-- reconciler-plan -->" in md.stdout
    assert "wrong-key" not in md.stdout + md.stderr

    document = json.loads(run(emulator, "plan", "--format", "json", key="wrong-key").stdout)
    assert document["error"]["kind"] == "api"
    assert document["error"]["api"]["status"] == 401
    assert document["error"]["api"]["method"] == "GET"
    assert document["error"]["problems"] == []

    annotated = run(emulator, "validate", "--online", "--format", "github", key="wrong-key")
    assert annotated.exit_code == 1
    assert annotated.stdout.startswith("::error title=reconciler validate::GET /v0/")
    assert annotated.stdout.count("\n") == 1 and "401" in annotated.stdout
    online_json = json.loads(
        run(emulator, "validate", "--online", "--format", "json", key="wrong-key").stdout
    )
    assert online_json["command"] == "validate" and online_json["error"]["kind"] == "api"


def test_text_failures_stay_on_stderr(emulator: Emulator, project: Path) -> None:
    write_spec(project / "specs", BAD)
    result = run(emulator, "plan")
    assert result.exit_code == 1 and result.stdout == ""
    assert "unknown index 'NVDI'" in result.stderr


def test_validate_github_annotations(project: Path) -> None:
    write_spec(
        project / "specs",
        "aois:\n  - aoi: {name: Pune-East}\n    visualizations:\n"
        "      - {index: NDVI, resolution: 0, colour: 'red, 100%'}\n",
    )
    result = run(None, "validate", "--format", "github")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "::error file=specs/spec.yaml,line=4,col=35,title=reconciler validate::"
        "'resolution' must be greater than 0, got 0",
        "::error file=specs/spec.yaml,line=4,col=38,title=reconciler validate::"
        "unknown key 'colour'; expected one of: index, assets, resolution, rollback, legend",
    ]
    write_spec(project / "specs", GOOD)
    assert run(None, "validate", "--format", "github").stdout == ""

    missing = run(None, "validate", "--format", "github", "nowhere/")
    assert missing.exit_code == 1
    assert (
        missing.stdout == "::error title=reconciler validate::nowhere/: no such file or directory\n"
    )


def test_github_annotations_cannot_be_broken_by_a_message() -> None:
    from reconciler.errors import Problem, Where
    from reconciler.render.github import render_validation_github

    out = render_validation_github(
        [Problem("50% done\n::error::injected", Where("a,b:c.yaml", 1, 2))], []
    )
    assert out == (
        "::error file=a%2Cb%3Ac.yaml,line=1,col=2,title=reconciler validate::"
        "50%25 done\\n::error::injected\n"
    )
    assert out.count("\n") == 1


def test_show_renders_a_saved_plan_and_refuses_garbage(emulator: Emulator, project: Path) -> None:
    assert run(emulator, "plan", "--out", "p.json").exit_code == 0
    text = run(None, "show", "p.json")
    assert text.exit_code == 0 and "+ create NDVI visualization" in text.stdout
    md = run(None, "show", "p.json", "--format", "markdown", "--comment-id", "a")
    assert md.stdout.startswith("### reconciler plan: 1 to create")
    assert md.stdout.endswith("<!-- reconciler-plan:a -->\n")
    assert json.loads(run(None, "show", "p.json", "--format", "json").stdout) == json.loads(
        (project / "p.json").read_text()
    )
    (project / "bad.json").write_text("{}")
    bad = run(None, "show", "bad.json", "--format", "markdown")
    assert bad.exit_code == 1
    assert bad.stdout.startswith("### reconciler show failed: the saved plan cannot be used")


# --- custom indices and legends, from plan to report ---------------------------------------------

#: A custom index, a visualization over it with a legend of its own, and a legend on one that
#: exists (the demo world's NDWI of Pune-East). The satellite is Pixxel-TD2.
CUSTOM = """
indices:
  - {name: NDRE, expression: (B08-B05)/(B08+B05), expression_type: index,
     rescale: [-1, 1], colormap: rdylgn, satellite: 0005c5bb-0bd2-4c80-9393-4a808341c54c}
aois:
  - aoi: {name: Pune-East}
    visualizations:
      - index: NDWI
        legend:
          - mode: dynamic
            dates: [2024-06-01]
            bins: 2
            items:
              - {min: -1, max: 0.2, color: "#d7191c", label: Dry}
              - {min: 0.2, max: 1, color: "#1a9641", label: Wet}
      - index: NDRE
        legend:
          - {mode: dynamic, dates: [2025-01-15], bins: 5}
"""


def test_custom_indices_and_legends_from_plan_to_the_apply_report(
    emulator: Emulator, project: Path
) -> None:
    write_spec(project / "specs", CUSTOM)
    planned = run(emulator, "plan", "--out", "p.json")
    assert planned.exit_code == 0, planned.output
    out = planned.stdout
    assert out.index("\nCustom indices: 1 to create\n") < out.index("\nAOI Pune-East (8ee03236)")
    assert "  + create custom index NDRE\n      expression     (B08-B05)/(B08+B05)\n" in out
    assert "      index          NDRE: a new custom index, created first\n" in out
    assert "      legends        dynamic 2025-01-15: 5 auto-computed bins\n" in out
    assert "  ~ set NDWI legends as declared\n" in out
    assert "      legend         2 bins: -1 … 0.2 #d7191c 'Dry'; 0.2 … 1 #1a9641 'Wet'\n" in out
    assert "new-index:" not in out
    assert "\nPlan: 1 custom index to create, 1 to create, 0 to roll back, 1 legend to set," in out

    md = run(None, "show", "p.json", "--format", "markdown").stdout
    assert md.startswith("### reconciler plan: 1 custom index to create, 1 to create, 0 to roll")
    assert (
        "@@ custom indices @@\n"
        "+ NDRE: (B08-B05)/(B08+B05), type index, rescale [-1, 1], colormap rdylgn\n"
    ) in md
    assert "+ NDRE (new custom index) over all assets · custom legends: dynamic\n" in md
    assert "~ NDWI dynamic 2024-06-01: 2 bins, 2 ranges\n" in md

    applied = run(emulator, "apply", "p.json", "--yes", "--report", "report.json")
    assert applied.exit_code == 0, applied.output
    assert re.search(r" created: custom index NDRE: created \S+$", applied.stderr, re.M)
    assert (
        " legend set: NDWI on Pune-East, dynamic legends of 2024-06-01: set as declared\n"
    ) in applied.stderr
    assert applied.stdout.endswith(
        "Apply complete: 2 created (1 custom index), 0 adopted, 0 rolled back, 2 legends set, "
        "0 failed, 0 skipped.\n"
    )
    report = json.loads((project / "report.json").read_text())
    assert report["ok"] is True and report["format_version"] == 3
    assert report["summary"] == {
        "created": 2,
        "adopted": 0,
        "rolled_back": 0,
        "legend_set": 2,
        "failed": 0,
        "skipped": 0,
    }
    index = report["items"][0]  # made before anything that uses it
    assert (index["change"], index["outcome"], index["index_name"]) == ("index", "created", "NDRE")
    assert index["aoi_id"] == index["aoi_name"] == ""
    legends = [i for i in report["items"] if i["change"] == "legend"]
    assert sorted((i["index_name"], i["dates"][0]) for i in legends) == [
        ("NDRE", "2025-01-15"),
        ("NDWI", "2024-06-01"),
    ]
    assert {i["outcome"] for i in legends} == {"legend set"}

    again = run(emulator, "plan", "--detailed-exitcode")
    assert again.exit_code == 0, again.output


# --- hints that work as printed ------------------------------------------------------------------


@pytest.mark.slow
def test_the_hint_after_out_works_as_printed_with_sandbox_and_state(project: Path) -> None:
    state = "my state.json"  # a space: the hint must quote it
    planned = run_process(project, "plan", "--sandbox", "--state", state, "--out", "p.json")
    assert planned.returncode == 0, planned.stderr
    hint = re.search(r"apply it with: (.*)$", planned.stderr, re.M)
    assert hint, planned.stderr
    words = shlex.split(hint.group(1))
    assert words == ["reconciler", "apply", "p.json", "--sandbox", "--state", state]
    applied = run_process(project, *words[1:], "--yes")  # no terminal here, so --yes
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete: 1 created" in applied.stdout
    assert (project / state).is_file()

    again = run_process(project, "plan", "--sandbox", "--state", state, "--out", "q.json")
    assert "it has no changes: applying it would do nothing" in again.stderr


def test_the_hint_repeats_no_flag_that_the_environment_gives(
    emulator: Emulator, project: Path
) -> None:
    result = run(emulator, "plan", "--out", "p.json")
    assert result.stderr.strip().endswith("apply it with: reconciler apply p.json")


# --- logs for CI ---------------------------------------------------------------------------------


def test_no_colour_without_a_terminal_nor_with_no_color(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.cli import common

    write_spec(project / "specs", BAD)
    piped = run(None, "validate", "nowhere/")
    assert "\x1b[" not in piped.output
    # On a terminal errors are red, unless NO_COLOR says otherwise.
    colored = run_cli("validate", "nowhere/", color=True, env={"NO_COLOR": None})
    assert "\x1b[31m" in colored.output
    plain = run_cli("validate", "nowhere/", color=True, env={"NO_COLOR": "1"})
    assert plain.exit_code == 1 and "\x1b[" not in plain.output
    monkeypatch.setattr(common, "isatty", lambda stream: True)
    monkeypatch.setenv("NO_COLOR", "1")
    assert common.use_color(None) is False
    assert common.use_color(True) is True  # --color still wins
    monkeypatch.delenv("NO_COLOR")
    assert common.use_color(None) is True


def test_verbose_after_the_command_and_timestamps_in_logs(
    emulator: Emulator, project: Path
) -> None:
    after = run(emulator, "plan", "-v")
    assert after.exit_code == 0
    stamped = re.compile(r"^\d\d:\d\d:\d\dZ INFO reconciler(\.\w+)+: ", re.M)
    assert stamped.search(after.stderr), after.stderr
    before = run(emulator, "-v", "plan")
    assert stamped.search(before.stderr)
    assert "GET /v0/aois" not in after.stderr
    both = run(emulator, "-v", "plan", "-v")  # -v twice: every request
    assert "GET /v0/aois" in both.stderr
    assert run(emulator, "validate", "-vv").exit_code == 0
    assert run(emulator, "show", "--help").stdout.count("--verbose") == 1
