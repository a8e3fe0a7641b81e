"""Redaction that never corrupts, spec files that cannot smuggle secrets out, and output
formats that escape alike.

End to end through the command line against the emulator: a placeholder cloud secret from the
environment (``AWS_SECRET_ACCESS_KEY=test``) leaves specs, saved plans and logs alone, a real
one is still never printed, and the API key is always redacted; a file that would hold a secret
is refused rather than written with ``***`` inside; a spec that is a symlink out of the spec
paths is refused unread; a file that is no spec is reported by name and position only;
``validate --format github`` escapes file names and API data as the text format does.

Installed secrets stay installed for the whole test process, so each secret here is unlikely
to appear anywhere else.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from click.testing import Result

from reconciler.emulator import Emulator
from reconciler.errors import SpecError
from reconciler.redact import (
    MIN_SECRET_CHARS,
    REDACTED,
    install_environment_secrets,
    install_redaction,
    redact,
)
from reconciler.spec.load import validate_specs
from reconciler.state.atomicfile import SecretInFileError, write_atomically
from reconciler.text import clean
from tests.planning import ROLLBACK_SPEC, SECRET, run_cli, write_spec

#: What localstack and many local setups put in the variable: a word, not a secret.
PLACEHOLDER = "test"
#: Shaped like a real AWS secret access key (40 characters), for this module only.
AWS_SECRET = "wJalrXUtnFEMI-K7MDENG-r2d2-bPxRfiCYZZ40z"
#: A 40-character token (no variable of ours names it) and a password, each in a file.
TOKEN = "ghp_r2d2QuietToken0123456789abcdefghijkl"
PASSWORD = "hunter2-c3po"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout: ``specs/latest.yaml`` (a word that holds the placeholder) and a cwd there."""
    monkeypatch.chdir(tmp_path)
    write_spec(tmp_path / "specs", ROLLBACK_SPEC + "# the latest legend\n", name="latest.yaml")
    return tmp_path


def run(world: Emulator | None, *args: str, aws_secret: str | None = None) -> Result:
    env = {"AWS_SECRET_ACCESS_KEY": aws_secret, "NO_COLOR": None}
    return run_cli(*args, url=world.url if world else None, key=SECRET, env=env)


def outside_secret_files(root: Path) -> dict[str, Path]:
    """Secrets outside the checkout, as a runner's home holds them."""
    home = root.parent / f"{root.name}-home"
    (home / ".aws").mkdir(parents=True)
    files = {
        "credentials": home / ".aws" / "credentials",
        "token": home / "token.txt",
        "password": home / "password",
    }
    files["credentials"].write_text(
        f"[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = {AWS_SECRET}\n"
    )
    files["token"].write_text(TOKEN + "\n")
    files["password"].write_text(PASSWORD + "\n")
    return files


# --- cloud secrets from the environment, and the API key ------------------------------------------


def test_a_placeholder_cloud_secret_does_not_refuse_a_spec_with_the_word_in_it(
    project: Path,
) -> None:
    result = run(None, "validate", aws_secret=PLACEHOLDER)
    assert result.exit_code == 0, result.output
    assert result.stdout == "specs/ is valid: 1 file, 1 AOI, 1 visualization\n"


def test_a_plan_saved_with_a_placeholder_secret_keeps_its_spec_paths_and_applies(
    world: Emulator, project: Path
) -> None:
    planned = run(world, "plan", "--out", "plan.json", aws_secret=PLACEHOLDER)
    assert planned.exit_code == 0, planned.output
    assert "specs/latest.yaml:" in planned.stdout
    saved = (project / "plan.json").read_text()
    assert "specs/latest.yaml:" in saved and REDACTED not in saved
    applied = run(world, "apply", "plan.json", "--yes", aws_secret=PLACEHOLDER)
    assert applied.exit_code == 0, applied.output


def test_log_lines_keep_the_word_and_say_the_placeholder_was_skipped(project: Path) -> None:
    result = run(None, "validate", "-vv", aws_secret=PLACEHOLDER)
    assert result.exit_code == 0, result.output
    assert "read specs/latest.yaml: " in result.stderr  # checked, or read back as checked
    skipped = [line for line in result.stderr.splitlines() if "AWS_SECRET_ACCESS_KEY" in line]
    assert len(skipped) == 1, result.stderr
    assert skipped[0].endswith(
        "INFO reconciler.redact: the value of AWS_SECRET_ACCESS_KEY is shorter than 16 "
        "characters, so it is taken for a placeholder, not a secret: it is not scrubbed from "
        "output (where it would match parts of ordinary words)"
    )


def test_the_skip_line_never_holds_the_value(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="reconciler.redact")
    install_environment_secrets({"AZURE_STORAGE_KEY": "r2d2-short-v"})
    [record] = [r for r in caplog.records if "AZURE_STORAGE_KEY" in r.getMessage()]
    assert record.levelno == logging.INFO
    assert "r2d2" not in record.getMessage()


def test_the_floor_for_cloud_secrets_is_sixteen_characters() -> None:
    short = "r2d2-fifteen-ch"
    long = "r2d2-sixteen-chr"
    assert (len(short), len(long)) == (MIN_SECRET_CHARS - 1, MIN_SECRET_CHARS)
    install_environment_secrets({"AWS_SESSION_TOKEN": short, "AZURE_CLIENT_SECRET": long})
    assert redact(f"{short} {long}") == f"{short} {REDACTED}"


def test_a_spec_quoting_a_cloud_secret_is_refused_naming_the_variable(project: Path) -> None:
    write_spec(project / "specs", f"aois: []\n# {AWS_SECRET}\n", name="quoted.yaml")
    for output in ("text", "json", "github"):
        result = run(None, "validate", "--format", output, aws_secret=AWS_SECRET)
        assert result.exit_code == 1
        assert "the file contains the value of AWS_SECRET_ACCESS_KEY; refusing" in result.stdout
        assert "r2d2" not in result.output


def test_a_short_api_key_is_redacted_all_the_same() -> None:
    # Shorter than the floor for cloud secrets: the API key is always a secret.
    install_redaction("r2d2-api")
    assert redact("key r2d2-api") == f"key {REDACTED}"


def test_an_api_key_too_short_to_redact_is_refused_unsent(world: Emulator, project: Path) -> None:
    result = run_cli("plan", url=world.url, key="r2d")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: The API key from PIXXEL_API_KEY is shorter than 4 characters, too short to be "
        "kept out of what reconciler prints, and no Pixxel API key is that short (a local "
        "emulator takes any longer one: reconciler emulator --api-key dev-key).\n"
    )
    assert "r2d" not in result.stdout + result.stderr.replace("characters", "")


# --- a file that would hold a secret is refused, never mangled ------------------------------------


def test_a_plan_that_would_hold_a_secret_is_refused_not_mangled(
    world: Emulator, project: Path
) -> None:
    # A secret in a spec's file name reaches the plan: the positions name the file.
    (project / "specs" / "latest.yaml").rename(project / "specs" / f"{AWS_SECRET}.yaml")
    result = run(world, "plan", "--out", "plan.json", aws_secret=AWS_SECRET)
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "Error: cannot write plan.json: it would hold the value of AWS_SECRET_ACCESS_KEY, and "
        "files never hold a secret (nor *** in its place)\n"
    )
    assert "specs/***.yaml:" in result.stdout  # shown redacted, as everything printed
    assert "r2d2" not in result.output
    assert not (project / "plan.json").exists()


def test_a_file_that_would_hold_a_secret_keeps_its_old_content(tmp_path: Path) -> None:
    install_environment_secrets({"AWS_SECRET_ACCESS_KEY": AWS_SECRET})
    state = tmp_path / "state.json"
    state.write_text('{"records": {}}\n')
    new = json.dumps({"records": {"id": {"note": AWS_SECRET}}}).encode()
    with pytest.raises(SecretInFileError) as caught:
        write_atomically(state, new)
    assert caught.value.source == "the value of AWS_SECRET_ACCESS_KEY"
    assert "r2d2" not in str(caught.value)
    assert state.read_text() == '{"records": {}}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left


# --- symlinks out of the spec paths are refused unread --------------------------------------------


@pytest.mark.parametrize("what", ["credentials", "token", "password"])
@pytest.mark.parametrize(
    "command",
    [
        ("validate",),
        ("validate", "--format", "json"),
        ("validate", "--format", "github"),
        ("plan", "--format", "markdown"),
    ],
    ids=" ".join,
)
def test_a_spec_linked_to_a_secret_outside_is_refused_unread(
    world: Emulator, project: Path, what: str, command: tuple[str, ...]
) -> None:
    target = outside_secret_files(project)[what]
    (project / "specs" / "stolen.yaml").symlink_to(target)
    result = run(world, *command)
    assert result.exit_code == 1
    assert "stolen.yaml" in result.output
    assert "a symlink that leads outside specs/; refusing to read it" in result.output
    for secret in ("r2d2", "AKIAEXAMPLE", "hunter2", "c3po", str(target)):
        assert secret not in result.output


def test_a_link_out_is_refused_without_even_looking_at_its_target(project: Path) -> None:
    # Had the target been looked at, this would read "a symlink to a file that does not exist".
    (project / "specs" / "gone.yaml").symlink_to(project.parent / "nowhere" / "x.yaml")
    (project / "specs" / "null.yaml").symlink_to(os.devnull)
    with pytest.raises(SpecError) as caught:
        validate_specs(["specs"])
    assert [str(p) for p in caught.value.problems] == [
        f"specs/{name}.yaml:1:1: a symlink that leads outside specs; refusing to read it (spec "
        "files are read only from under the paths given)"
        for name in ("gone", "null")
    ]


def test_a_link_out_named_on_its_own_is_refused_too(project: Path) -> None:
    """``validate specs/*.yaml``: the shell names the link itself."""
    (project / "specs" / "stolen.yaml").symlink_to(outside_secret_files(project)["token"])
    result = run(None, "validate", "specs/latest.yaml", "specs/stolen.yaml")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: specs/stolen.yaml:1:1: a symlink that leads outside its own directory; "
        "refusing to read it"
    )
    assert "r2d2" not in result.output


def test_links_that_stay_under_the_spec_paths_are_followed(project: Path) -> None:
    (project / "specs" / "teams").mkdir()
    (project / "specs" / "latest.yaml").rename(project / "specs" / "teams" / "real.yaml")
    (project / "specs" / "teams" / "alias.yaml").symlink_to("real.yaml")
    (project / "specs" / "up.yaml").symlink_to("teams/real.yaml")
    result = run(None, "validate")
    assert result.exit_code == 0, result.output
    # One file, reached three ways, read once.
    assert result.stdout == "specs/ is valid: 1 file, 1 AOI, 1 visualization\n"
    named = run(None, "validate", "specs/teams/alias.yaml")
    assert named.exit_code == 0, named.output


def test_a_special_file_named_on_its_own_is_still_refused_unopened() -> None:
    with pytest.raises(SpecError) as caught:
        validate_specs([os.devnull])
    assert [str(p) for p in caught.value.problems] == [
        f"{os.devnull}: a character device, not a spec file; refusing to read it"
    ]


# --- a file that is no spec is reported by name and position only ---------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (f"{TOKEN}\n", "1:1: the file must be a mapping with an 'aois' list, got a text"),
        (f"{PASSWORD}\n", "1:1: the file must be a mapping with an 'aois' list, got a text"),
        ("1234567890123456\n", "1:1: the file must be a mapping with an 'aois' list, got a number"),
        (
            f"- {PASSWORD}\n- !{PASSWORD} x\n",
            "1:1: the file must be a mapping with an 'aois' list, got a list",
        ),
        (f"!{PASSWORD}\n", "1:1: the file must be a mapping with an 'aois' list, got a text"),
        (f"*{PASSWORD}\n", "1:1: invalid YAML: found undefined alias"),
        (
            f'"\\{PASSWORD}"\n',
            "1:3: invalid YAML: found unknown escape character (while "
            "scanning a double-quoted scalar at line 1, column 1)",
        ),
        (
            f'"\\x{PASSWORD}"\n',
            "1:4: invalid YAML: expected escape sequence of 2 hexadecimal numbers, but found "
            "something else (while scanning a double-quoted scalar at line 1, column 1)",
        ),
        (
            f"a: &{PASSWORD} 1\nb: &{PASSWORD} 2\n",
            "2:4: invalid YAML: second occurrence "
            "(found duplicate anchor; first occurrence at line 1, column 4)",
        ),
        (f"a: !{PASSWORD}!x 1\n", "1:4: invalid YAML: found undefined tag handle"),
        (f"a: `{PASSWORD}\n", "1:4: invalid YAML: found character that cannot start any token"),
    ],
    ids=[
        "token",
        "password",
        "number",
        "list",
        "tagged",
        "alias",
        "escape",
        "hex escape",
        "anchor",
        "tag handle",
        "reserved",
    ],
)
def test_a_file_that_is_no_spec_is_never_quoted(project: Path, content: str, problem: str) -> None:
    (project / "specs" / "latest.yaml").write_text(content)
    for output in ("text", "json", "github"):
        result = run(None, "validate", "--format", output)
        assert result.exit_code == 1
        assert "hunter2" not in result.output and "r2d2" not in result.output
        assert "c3po" not in result.output and "1234567890123456" not in result.output
    text = run(None, "validate")
    assert text.stdout.splitlines()[0] == f"specs/latest.yaml:{problem}"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            b"aois: []\n# \xfc" + PASSWORD.encode() + b"\n",
            "2:3: the file is not valid UTF-8 from here on; save it as UTF-8 text",
        ),
        (
            b"aois: []\n# \x07" + PASSWORD.encode() + b"\n",
            "2:3: a control or other non-printable character, which YAML does not allow; remove it",
        ),
    ],
    ids=["not utf-8", "control character"],
)
def test_a_file_that_is_not_text_is_never_quoted(
    project: Path, content: bytes, problem: str
) -> None:
    (project / "specs" / "latest.yaml").write_bytes(content)
    result = run(None, "validate")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == f"specs/latest.yaml:{problem}"
    assert "0xfc" not in result.output and "U+0007" not in result.output


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
