"""``-v`` works after every command, those of ``reconciler state`` included."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from reconciler.cli.main import COMMANDS, cli
from tests.planning import run_cli


def _every_command() -> list[tuple[str, ...]]:
    """Every command's words: ``("plan",)``, ``("state", "show")``, ..."""
    context = click.Context(cli)
    found: list[tuple[str, ...]] = []
    for name in COMMANDS:
        command = cli.get_command(context, name)
        assert command is not None
        found.append((name,))
        if isinstance(command, click.Group):
            found += [(name, sub) for sub in command.commands]
    return found


@pytest.mark.parametrize("words", _every_command(), ids=" ".join)
def test_every_command_takes_verbose_after_its_name(words: tuple[str, ...]) -> None:
    shown = run_cli(*words, "--help")
    assert shown.exit_code == 0
    assert shown.stdout.count("-v, --verbose") == 1, shown.stdout


def test_state_show_logs_with_v_after_it(tmp_path: Path) -> None:
    result = run_cli("state", "show", "-v", "--state", str(tmp_path / "state.json"))
    assert result.exit_code == 0, result.output
    assert "INFO reconciler.state.store: no state at" in result.stderr
