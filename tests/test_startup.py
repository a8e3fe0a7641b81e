"""Start-up in proportion to the command: what ``reconciler --help`` and ``--version`` import.

Counted, not timed: a module that is not imported costs nothing, on any machine. Each check
runs in a fresh interpreter, as a user's shell or a pre-commit hook starts one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from reconciler.cli.main import COMMANDS, cli
from tests.planning import SPEC

#: What a command that talks to no API and reads no spec must not load.
HEAVY = ("pydantic", "requests", "urllib3", "yaml", "deepdiff", "fsspec", "reconciler.run")

_IMPORTED = """
import json, sys
from reconciler.cli.main import cli
try:
    cli(sys.argv[1:], prog_name="reconciler")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def imported(*args: str, env: dict[str, str] | None = None) -> list[str]:
    """The modules a fresh interpreter holds after ``reconciler ARGS``."""
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTED, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    modules: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return modules


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("-h",)])
def test_help_and_version_import_only_the_command_line(args: tuple[str, ...]) -> None:
    modules = imported(*args)
    heavy = [m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]
    assert heavy == []
    loaded = [m for m in modules if m.startswith("reconciler.")]
    assert set(loaded) <= {"reconciler.cli", "reconciler.cli.main", "reconciler.redact"}


def test_a_command_is_imported_when_it_runs_and_not_before() -> None:
    modules = imported("show", "--help")
    assert "reconciler.cli.plan" in modules
    assert "reconciler.cli.apply" not in modules and "reconciler.cli.emulator" not in modules


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_help_line_of_every_command_is_its_own(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert command.get_short_help_str(1000) == COMMANDS[name][2]


#: What offline ``validate`` needs beyond the spec language: the command line and foundation.
_VALIDATE_MAY_LOAD = (
    "reconciler.spec",
    "reconciler.cli",
    "reconciler.api.config",  # the settings' default URL: no client, no response types
    "reconciler.run.settings",
    "reconciler.core.shards",  # --shard is parsed with the other options: hashlib and re only
    "reconciler.run.events",
    "reconciler.run.signals",
)


def test_offline_validate_loads_the_spec_language_and_no_engine(tmp_path: Path) -> None:
    spec = tmp_path / "specs" / "team.yaml"
    spec.parent.mkdir()
    spec.write_text(SPEC, encoding="utf-8")
    modules = imported("validate", str(spec.parent))
    assert "reconciler.spec.load" in modules  # it did validate
    heavy = ("requests", "urllib3", "deepdiff", "fsspec", "http.server")
    assert [m for m in modules if m.split(".")[0] in heavy or m in heavy] == []
    ours = [m for m in modules if m.startswith("reconciler.") and "." in m[len("reconciler.") :]]
    extra = [m for m in ours if not m.startswith(_VALIDATE_MAY_LOAD)]
    assert extra == []  # no engine, client, planner, renderer or state store


def test_validate_of_unchanged_specs_builds_no_models(tmp_path: Path) -> None:
    spec = tmp_path / "specs" / "team.yaml"
    spec.parent.mkdir()
    spec.write_text(SPEC, encoding="utf-8")
    cache = {"RECONCILER_CACHE_DIR": str(tmp_path / "cache")}
    first = imported("validate", str(spec.parent), env=cache)
    assert "reconciler.spec.models" in first  # checked: the cache was empty
    again = imported("validate", str(spec.parent), env=cache)
    assert "reconciler.spec.outcome" in again
    # The outcome is read back whole: neither the checks nor pydantic are even imported.
    assert "reconciler.spec.load" not in again and "reconciler.spec.checkfile" not in again
    assert [m for m in again if m.split(".")[0] in ("pydantic", "pydantic_core")] == []
    # A changed file is checked again, and only it: the other comes from its own entry.
    (spec.parent / "other.yaml").write_text("aois: []\n", encoding="utf-8")
    changed = imported("validate", str(spec.parent), env=cache)
    assert "reconciler.spec.load" in changed and "reconciler.spec.models" in changed
