"""`reconciler validate` and `reconciler schema`, end to end through click's CliRunner."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.planning import run_cli

REPO = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "specs"
POSITION_LINE = re.compile(r"^[^:\s]+:\d+:\d+: \S")


def test_examples_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = run_cli("validate", "specs/")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "specs/ is valid: 4 files, 4 AOIs, 2 selectors, 13 visualizations, 1 custom index\n"
    )
    assert result.stderr == ""


def test_default_path_is_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = run_cli("validate")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("specs/ is valid: 4 files")


def test_three_mistakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Acceptance: exit 1, exactly three path:line:column lines, a summary, no traceback."""
    monkeypatch.chdir(FIXTURES)
    result = run_cli("validate", "bad-three-mistakes.yaml")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    positioned = [line for line in lines if POSITION_LINE.match(line)]
    assert positioned == [
        "bad-three-mistakes.yaml:6:21: 'resolution' must be greater than 0, got 0",
        "bad-three-mistakes.yaml:9:33: '2024-11-31' is not a date: November 2024 has only 30 "
        "days (the last is 2024-11-30)",
        "bad-three-mistakes.yaml:12:13: unknown key 'revison' (did you mean 'revision'?)",
    ]
    assert lines[-1] == "3 problems in 1 file"
    assert len(lines) == 4
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_problems_across_files_are_summarised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    result = run_cli("validate", "bad-empty.yaml", "bad-declared-twice-across")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == "2 problems in 2 files"


def test_unreadable_yaml_is_a_problem_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    for name in (
        "bad-syntax.yaml",
        "bad-not-utf8.yaml",
        "bad-python-tag.yaml",
        "bad-alias-bomb.yaml",
    ):
        result = run_cli("validate", name)
        assert result.exit_code == 1, name
        assert result.stdout.startswith(f"{name}:"), result.stdout
        assert "Traceback" not in result.output


def test_missing_path_is_an_error_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    result = run_cli("validate", "nope.yaml")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: nope.yaml: no such file or directory\n"


def test_notes_do_not_fail_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    result = run_cli("validate", "good-mixed-forms.yaml")
    assert result.exit_code == 0
    first, summary = result.stdout.splitlines()
    assert first.startswith("good-mixed-forms.yaml:10:9: note: AOI 8ee03236-")
    assert summary == "good-mixed-forms.yaml is valid: 1 file, 2 AOIs, 2 visualizations"


def test_json_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    result = run_cli("validate", "--format", "json", "bad-unknown-key.yaml", "good-minimal.yaml")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "format_version": 1,
        "valid": False,
        "files": ["bad-unknown-key.yaml", "good-minimal.yaml"],
        "problems": [
            {
                "path": "bad-unknown-key.yaml",
                "line": 5,
                "column": 9,
                "message": "unknown key 'rolback' (did you mean 'rollback'?)",
            }
        ],
        "notes": [],
    }


def test_json_format_valid_and_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    valid = run_cli("validate", "--format", "json")
    assert valid.exit_code == 0
    document = json.loads(valid.stdout)
    assert document["valid"] is True
    assert document["problems"] == []
    assert document["files"] == [
        "specs/bengaluru.yaml",
        "specs/nagpur.yaml",
        "specs/selectors.yaml",
        "specs/water.yaml",
    ]
    missing = run_cli("validate", "--format", "json", "nowhere/")
    assert missing.exit_code == 1
    assert json.loads(missing.stdout)["problems"] == [
        {
            "path": None,
            "line": None,
            "column": None,
            "message": "nowhere/: no such file or directory",
        }
    ]


def test_help_teaches() -> None:
    result = run_cli("validate", "--help")
    assert result.exit_code == 0
    assert "reconciler validate specs/team-a.yaml" in result.stdout
    schema_help = run_cli("schema", "--help")
    assert "# yaml-language-server: $schema=" in schema_help.stdout


def test_schema_is_valid_json_schema_that_accepts_examples() -> None:
    result = run_cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for example in sorted((REPO / "specs").glob("*.yaml")):
        data = json.loads(json.dumps(yaml.safe_load(example.read_text()), default=str))
        assert list(validator.iter_errors(data)) == [], example
    bad = {"aois": [{"aoi": {"name": "X"}, "visualizations": [{"index": "NDVI", "rolback": []}]}]}
    assert list(validator.iter_errors(bad))


def test_schema_out_file(tmp_path: Path) -> None:
    out = tmp_path / "reconciler.schema.json"
    result = run_cli("schema", "--out", str(out))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert json.loads(out.read_text())["title"] == "reconciler spec"


def test_editor_schema_comment_points_next_to_the_specs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README recipe: schema saved into specs/, specs still validate (json is not a spec)."""
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    assert run_cli("schema", "--out", "specs/reconciler.schema.json").exit_code == 0
    result = run_cli("validate")
    assert result.exit_code == 0, result.output
    assert "4 files" in result.stdout
