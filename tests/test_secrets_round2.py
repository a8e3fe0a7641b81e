"""Redaction that never corrupts, spec files that cannot smuggle secrets out, and output
formats that escape alike.

End to end through the command line against the emulator: ``validate --format github`` escapes
file names and API data as the text format does.

Installed secrets stay installed for the whole test process, so each secret here is unlikely
to appear anywhere else.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result

from reconciler.emulator import Emulator
from reconciler.text import clean
from tests.planning import ROLLBACK_SPEC, SECRET, run_cli, write_spec


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout: ``specs/latest.yaml`` (a word that holds the placeholder) and a cwd there."""
    monkeypatch.chdir(tmp_path)
    write_spec(tmp_path / "specs", ROLLBACK_SPEC + "# the latest legend\n", name="latest.yaml")
    return tmp_path


def run(world: Emulator | None, *args: str, aws_secret: str | None = None) -> Result:
    env = {"AWS_SECRET_ACCESS_KEY": aws_secret, "NO_COLOR": None}
    return run_cli(*args, url=world.url if world else None, key=SECRET, env=env)


# --- every format escapes alike -------------------------------------------------------------------


#: Terminal control sequences: a clipboard write (OSC 52), a hyperlink (OSC 8), a colour.
HOSTILE_NAME = "ev\x1b]52;c;aGk=\x07il\x1b]8;;https:e.example\x07\x1b[31m.yaml"


def test_validate_github_escapes_file_names_as_text_does(project: Path) -> None:
    (project / "specs" / HOSTILE_NAME).write_text("aois: 3\n")
    text = run(None, "validate")
    github = run(None, "validate", "--format", "github")
    as_json = run(None, "validate", "--format", "json")
    for result in (text, github, as_json):
        assert result.exit_code == 1
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    shown = clean(f"specs/{HOSTILE_NAME}")
    assert f"{shown}:1:7: 'aois' must be a list" in text.stdout
    [annotation] = [line for line in github.stdout.splitlines() if "aois" in line]
    prefix = "::error file="
    assert annotation.startswith(prefix)
    encoded = annotation[len(prefix) : annotation.index(",line=")]
    assert encoded.replace("%3A", ":").replace("%2C", ",").replace("%25", "%") == shown
    assert json.loads(as_json.stdout)["problems"][0]["path"] == f"specs/{HOSTILE_NAME}"


def test_validate_github_escapes_api_data_as_text_does(world: Emulator, project: Path) -> None:
    with world.lock:
        world.world.indices[1].name = "NDWI\x1b\x07\n"  # a name to suggest, as the API sent it
    write_spec(
        project / "specs",
        "aois:\n  - aoi: {name: Bengaluru-North}\n    visualizations:\n      - index: NDWJ\n",
        name="latest.yaml",
    )
    text = run(world, "validate", "--online")
    github = run(world, "validate", "--online", "--format", "github")
    [line] = [line for line in text.stdout.splitlines() if "NDWJ" in line]
    [annotation] = [line for line in github.stdout.splitlines() if "NDWJ" in line]
    assert "\x1b" not in github.stdout and "\x07" not in github.stdout
    assert "NDWI\\x1b\\x07\\n" in line
    # The annotation's message is the text line's message, encoded as workflow-command data.
    message = line.split(": ", 1)[1]
    assert annotation.endswith("::" + message.replace("%", "%25"))
