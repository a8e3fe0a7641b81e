"""Offline ``validate`` over files it validated before reads its whole outcome back from the
spec cache: the same output, in every format, without the spec checks or pydantic."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.spec.cache import SpecCache
from reconciler.spec.files import read_sources, sources_digest
from reconciler.spec.outcome import Outcome, Tally, _decoded, _encoded, validate_offline
from tests.planning import run_cli

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "specs"
#: Every example and fixture: valid specs, and every kind of problem and note.
EVERY_SET = sorted([ROOT / "specs", *FIXTURES.iterdir()])
FORMATS = ("text", "json", "github", "gitlab")


def _outcome_entry(cache: Path, paths: list[Path]) -> Path:
    disk = SpecCache(cache)
    digest = sources_digest(read_sources(paths))
    return disk.folder / f"{disk.key(chr(0) + 'validate', digest.encode())}.json"


@pytest.mark.parametrize("path", EVERY_SET, ids=lambda p: p.name)
def test_the_outcome_read_back_is_the_one_validated(path: Path, tmp_path: Path) -> None:
    env = {"RECONCILER_CACHE_DIR": str(tmp_path / "cache")}
    for output_format in FORMATS:
        cold = run_cli("validate", "--format", output_format, str(path), env=env)
        warm = run_cli("validate", "--format", output_format, str(path), env=env)
        assert (warm.exit_code, warm.output) == (cold.exit_code, cold.output), output_format
    assert _outcome_entry(tmp_path / "cache", [path]).is_file()


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"{",
        b"[]",
        b"[" * 100_000,  # deeper than the JSON reader goes
        b'{"files": [1], "problems": [], "notes": [], "tally": [0, 0, 0, 0]}',
        b'{"files": ["other.yaml"], "problems": [], "notes": [], "tally": [0, 0, 0, 0]}',
    ],
    ids=["empty", "cut", "list", "deep", "not-text", "other-files"],
)
def test_a_damaged_outcome_is_dropped_and_the_files_validated(
    tmp_path: Path, damage: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path / "cache"))
    path = FIXTURES / "bad-date-twice.yaml"
    first = validate_offline([path])
    entry = _outcome_entry(tmp_path / "cache", [path])
    entry.write_bytes(damage)
    assert validate_offline([path]) == first
    assert entry.read_bytes() != damage  # written again, whole


def test_a_set_with_a_file_it_cannot_read_is_validated_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path / "cache"))
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text("aois: []\n")
    (specs / "b.yaml").write_text("#" * (1024 * 1024 + 1))  # too large to be read
    first = validate_offline([specs])
    assert first.problems and "b.yaml" in str(first.problems[0])
    assert validate_offline([specs]) == first
    assert not _outcome_entry(tmp_path / "cache", [specs]).exists()


def test_an_outcome_round_trips_positions_and_their_absence() -> None:
    from reconciler.errors import Problem, Where

    outcome = Outcome(
        ("a.yaml",),
        (Problem("bad \x1b[31m", Where("a.yaml", 3, 7)), Problem("no place")),
        (Problem("note", Where("a.yaml", 1, 1)),),
        Tally(1, 2, 3, 4),
    )
    assert _decoded(_encoded(outcome), ["a.yaml"]) == outcome
    with pytest.raises(ValueError, match="position"):
        _decoded(
            b'{"files": [], "notes": [], "tally": [0, 0, 0, 0], "problems": '
            b'[{"message": "m", "path": "a", "line": "1", "column": 1}]}',
            [],
        )
    with pytest.raises(ValueError, match="counts"):
        _decoded(b'{"files": [], "notes": [], "problems": [], "tally": [0, -1, 0, 0]}', [])


def test_a_file_name_that_is_no_text_is_validated_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path / "cache"))
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "ok.yaml").write_text("aois: []\n")
    try:
        with open(os.path.join(os.fsencode(specs), b"bad\xff.yaml"), "wb") as bad:
            bad.write(b"aois: []\n")
    except OSError:
        pytest.skip("this file system takes only file names that are text")
    first = validate_offline([specs])
    assert len(first.files) == 2 and not first.problems
    assert validate_offline([specs]) == first
