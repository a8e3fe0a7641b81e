"""``reconciler validate --format gitlab``: a Code Quality report on stdout, the problems as
text on stderr for the job's log; online against the emulator, offline without a key."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import Emulator
from tests.planning import SECRET, SPEC, run_cli, write_spec

MISSPELT_AOI = SPEC.replace("{name: Bengaluru-North}", "{name: Bengaluru-Nort}")
UNKNOWN_AOI = "unknown AOI 'Bengaluru-Nort' (closest: Bengaluru-North)"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # paths in the report as in the repository: specs/spec.yaml
    return tmp_path


def _entries(stdout: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(stdout)
    return entries


def test_a_misspelt_aoi_is_in_the_code_quality_report_at_its_line(
    world: Emulator, project: Path
) -> None:
    """Acceptance: `validate --online --format gitlab` names a misspelt AOI at its line."""
    write_spec(project / "specs", MISSPELT_AOI)
    result = run_cli(
        "validate", "--online", "--format", "gitlab", "--state", "state.json",
        url=world.url, key=SECRET,
    )  # fmt: skip
    assert result.exit_code == 1
    (entry,) = _entries(result.stdout)
    assert entry["description"] == UNKNOWN_AOI
    assert entry["location"] == {"path": "specs/spec.yaml", "lines": {"begin": 2}}
    assert (entry["severity"], entry["check_name"]) == ("major", "reconciler-validate")
    assert re.fullmatch(r"[0-9a-f]{64}", entry["fingerprint"])
    # The job's log shows the same, as text.
    assert result.stderr.splitlines() == [
        f"specs/spec.yaml:2:10: {UNKNOWN_AOI}",
        "1 problem in 1 file",
    ]
    assert SECRET not in result.output


def test_github_annotates_the_same_misspelt_aoi(world: Emulator, project: Path) -> None:
    write_spec(project / "specs", MISSPELT_AOI)
    result = run_cli(
        "validate", "--online", "--format", "github", "--state", "state.json",
        url=world.url, key=SECRET,
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stdout == (
        f"::error file=specs/spec.yaml,line=2,col=10,title=reconciler validate::{UNKNOWN_AOI}\n"
    )


def test_offline_the_report_holds_the_problems_in_the_files(project: Path) -> None:
    write_spec(project / "specs", SPEC.replace("index: NDWI", "index: NDWI\n        colour: red"))
    result = run_cli("validate", "--format", "gitlab", env={"PIXXEL_API_KEY": None})
    assert result.exit_code == 1
    (entry,) = _entries(result.stdout)
    assert entry["description"].startswith("unknown key 'colour'")
    assert entry["location"] == {"path": "specs/spec.yaml", "lines": {"begin": 11}}


def test_valid_specs_are_an_empty_report_and_say_so_in_the_log(project: Path) -> None:
    write_spec(project / "specs", SPEC)
    result = run_cli("validate", "--format", "gitlab", env={"PIXXEL_API_KEY": None})
    assert result.exit_code == 0
    assert _entries(result.stdout) == []
    assert result.stderr == "specs/ is valid: 1 file, 2 AOIs, 4 visualizations\n"


def test_when_the_api_cannot_be_read_the_report_is_empty_and_the_error_on_stderr(
    make_emulator: Callable[..., Emulator], project: Path
) -> None:
    """GitLab still gets a report it can read; the job fails with the reason in its log."""
    write_spec(project / "specs", SPEC)
    world = make_emulator(api_keys=("another-key",))
    result = run_cli(
        "validate", "--online", "--format", "gitlab", "--state", "state.json",
        url=world.url, key=SECRET,
    )  # fmt: skip
    assert result.exit_code == 1
    assert _entries(result.stdout) == []
    assert result.stderr.startswith("Error: ") and "401" in result.stderr
    assert SECRET not in result.output
