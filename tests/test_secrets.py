"""The API key never appears in any output, whatever a spec file or the server contains.

End to end through the command line: a spec that is a symlink to the key file, a spec quoting
the key, a server echoing it; in text, JSON and Markdown, on stdout, stderr and in every file
written (saved plans, reports, state). The key holds the characters that ``repr``, JSON, URL and
Markdown escape, so every encoding we print is exercised.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import Result

from reconciler.emulator import Emulator
from reconciler.redact import encodings
from tests.planning import ROLLBACK_SPEC, run_cli, write_spec

# Quotes, a backslash, a pipe, a percent sign, a colon and a comma: repr, JSON, Markdown, GitHub
# workflow commands and URLs all escape it.
KEY = "sk-live-'leak\"test\\key|9%41:a,b=c"
FORMS = sorted(encodings(KEY) | {KEY, quote(KEY)}, key=len)


def assert_no_key(*texts: str) -> None:
    for text in texts:
        for form in FORMS:
            assert form not in text, f"the key (as {form!r}) leaked into:\n{text}"
        # No escaping touches letters: any form of the key, even half of it, shows this.
        assert "leak" not in text, f"part of the key leaked into:\n{text}"


def files_under(root: Path) -> list[str]:
    """Every file reconciler wrote under ``root`` (plans, reports, state, locks)."""
    return [
        p.read_text(encoding="utf-8", errors="replace")
        for p in root.rglob("*")
        if p.is_file() and p.name != "key.txt" and "specs" not in p.relative_to(root).parts
    ]


@pytest.fixture
def world_key() -> str:
    """The ``world`` emulator accepts only this module's hard-to-escape key."""
    return KEY


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "key.txt").write_text(KEY + "\n", encoding="utf-8")
    write_spec(tmp_path / "specs", ROLLBACK_SPEC)
    return tmp_path


def run(world: Emulator, *args: str, key_file: bool = True) -> Result:
    options = ["--api-key-file", "key.txt"] if key_file else []
    return run_cli(*args, *options, url=world.url, key=None if key_file else KEY)


@pytest.mark.parametrize("key_file", [True, False], ids=["key-file", "environment"])
@pytest.mark.parametrize(
    "command",
    [
        ("validate",),
        ("validate", "--format", "json"),
        ("validate", "--format", "github"),
        ("plan",),
        ("plan", "--format", "json"),
        ("plan", "--format", "markdown"),
        ("apply", "--yes", "--report", "report.json"),
    ],
    ids=" ".join,
)
def test_a_spec_symlinked_to_the_key_file_never_shows_the_key(
    world: Emulator, project: Path, command: tuple[str, ...], key_file: bool
) -> None:
    (project / "specs" / "stolen.yaml").symlink_to(project / "key.txt")
    result = run(world, *command, "specs/", key_file=key_file)
    assert result.exit_code == 1
    assert "stolen.yaml" in result.output
    assert "refusing to read it" in result.output
    assert "Traceback" not in result.output
    assert_no_key(result.output, *files_under(project))


def test_a_key_quoted_in_a_spec_is_redacted_in_every_format(world: Emulator, project: Path) -> None:
    write_spec(
        project / "specs",
        f"""
        aois:
          - aoi: {{name: Bengaluru-North}}
            visualizations:
              - index: NDVI
                assets: [{json.dumps(KEY)}]
        """,
        name="quoted.yaml",
    )
    for fmt in ("text", "json", "markdown"):
        result = run(world, "plan", "--format", fmt, "--out", "plan.json")
        assert result.exit_code == 1
        assert "unknown asset '***' in AOI 'Bengaluru-North'" in result.output
        assert_no_key(result.output, *files_under(project))


def test_a_server_echoing_the_key_cannot_plant_it_in_plans_or_state(
    world: Emulator, project: Path
) -> None:
    with world.lock:
        world.world.aois[0].name = f"Bengaluru-North {KEY}"
        world.world.indices[0].name = f"NDVI {KEY}"
    write_spec(
        project / "specs",
        """
        aois:
          - aoi: 89a291cd-7ad8-5f86-aeee-55e92b0a0f5d
            visualizations:
              - index: cb668cf4-b6fc-5c37-a944-84c62fd95299
                assets: [Bengaluru-C]
                rollback: [{mode: dynamic, dates: [2025-05-02]}]
        """,
    )
    outputs = [run(world, "plan", "--format", fmt).output for fmt in ("text", "json", "markdown")]
    assert "Bengaluru-North ***" in outputs[0]
    applied = run(world, "apply", "--yes", "--report", "report.json", "--state", "state.json")
    assert applied.exit_code == 0, applied.output
    assert_no_key(*outputs, applied.output, *files_under(project))
    assert json.loads((project / "report.json").read_text())["ok"] is True


@pytest.mark.slow
def test_no_key_in_verbose_logs_of_a_real_process(world: Emulator, project: Path) -> None:
    (project / "specs" / "stolen.yaml").symlink_to(project / "key.txt")
    env = {**os.environ, "PIXXEL_API_URL": world.url, "PIXXEL_API_KEY": KEY}
    for args in (["validate", "--online"], ["plan", "--format", "markdown"]):
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", "-vv", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 1
        assert "refusing to read it" in done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        assert_no_key(done.stdout, done.stderr)


@pytest.mark.parametrize(
    ("key", "key_text"),
    [
        ("0x4f3a9c2e8b7d6a5f4e3d", None),  # YAML 1.1 reads it as a number, printed in decimal
        ("1_234_567_890_123", None),
        ("*secretkey123abc", None),  # an alias: PyYAML's message drops the '*'
        ("kkkk-comment-key-42", "kkkk-comment-key-42 # prod key\n"),
    ],
    ids=["hex", "underscored", "alias", "inline comment"],
)
@pytest.mark.parametrize("how", ["symlink", "copy"])
def test_keys_yaml_would_rewrite_never_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, key_text: str | None, how: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "key.txt").write_text(key_text or key + "\n", encoding="utf-8")
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "stolen.yaml"
    if how == "symlink":
        spec.symlink_to(tmp_path / "key.txt")
    else:
        spec.write_text(key + "\n", encoding="utf-8")
    result = run_cli("validate", "specs/", "--api-key-file", "key.txt")
    assert result.exit_code == 1
    digits = str(int(key.replace("_", ""), 0)) if key[0].isdigit() else key
    for form in {key, key.lstrip("*"), digits}:
        assert form not in result.output
    assert "stolen.yaml" in result.output and "refusing to read it" in result.output


def test_a_key_file_with_a_comment_line_is_refused_without_quoting_it(tmp_path: Path) -> None:
    from reconciler.api.config import known_api_keys, resolve_api_key
    from reconciler.errors import ConfigError

    (tmp_path / "key.txt").write_text("commentkey-1234567\n# prod key\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        resolve_api_key(tmp_path / "key.txt", {})
    assert "commentkey" not in str(caught.value)
    # Redaction still knows the bare key, and leaves the comment's words alone.
    keys = known_api_keys(tmp_path / "key.txt", {"PIXXEL_API_KEY": "envkey-7654321 # production"})
    assert "commentkey-1234567" in keys and "envkey-7654321" in keys
    assert "production" not in keys and "prod" not in keys


def test_a_long_value_is_described_not_quoted() -> None:
    from reconciler.spec.fields import describe_value as _describe

    assert _describe(374139969834055452631474 * 10**30) == "a number of 54 digits"
    assert _describe("x" * 41) == "a text of 41 characters"
    assert _describe("NDVI") == "'NDVI'"
