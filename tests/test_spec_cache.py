"""The spec cache: an unchanged file is read back from disk, declaring exactly what it did.

Real files in a temporary cache directory; nothing of the loader is replaced.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from reconciler.redact import install_redaction
from reconciler.spec import cache as cache_module
from reconciler.spec.cache import SpecCache, cache_root, code_digest
from reconciler.spec.load import CheckedFiles, validate_specs
from tests.planning import run_cli

ROOT = Path(__file__).resolve().parent.parent
EVERY_SPEC = sorted(
    [*(ROOT / "specs").glob("*.yaml"), *(ROOT / "tests" / "fixtures" / "specs").rglob("*.yaml")]
)
FROM_CACHE = "as checked before: spec cache"


def _entries(root: Path) -> list[Path]:
    return sorted((root / "specs").rglob("*.json"))


@pytest.mark.parametrize("path", EVERY_SPEC, ids=lambda p: p.name)
def test_a_file_read_back_declares_what_it_did(path: Path, tmp_path: Path) -> None:
    raw = path.read_bytes()
    cold = CheckedFiles(SpecCache(tmp_path)).check(str(path), raw)
    assert len(_entries(tmp_path)) == 1
    warm = CheckedFiles(SpecCache(tmp_path)).check(str(path), raw)
    assert warm == cold
    assert warm is not cold  # it was read back, not kept in memory


def test_an_unchanged_repository_is_not_checked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path / "cache"))
    specs = str(ROOT / "specs")
    with caplog.at_level(logging.DEBUG, logger="reconciler.spec.load"):
        cold = validate_specs([specs])
        assert FROM_CACHE not in caplog.text
        caplog.clear()
        warm = validate_specs([specs])
    assert caplog.text.count(FROM_CACHE) == 4  # the four spec files
    assert warm == cold


def test_a_changed_file_is_checked_again(tmp_path: Path) -> None:
    spec = tmp_path / "a.yaml"
    spec.write_text("aois:\n  - aoi: {name: A}\n    visualizations: [{index: NDVI}]\n")
    disk = SpecCache(tmp_path / "cache")
    first = CheckedFiles(disk).check(str(spec), spec.read_bytes())
    spec.write_text("aois:\n  - aoi: {name: B}\n    visualizations: [{index: NDVI}]\n")
    second = CheckedFiles(disk).check(str(spec), spec.read_bytes())
    assert [a.name for a in first.aois] == ["A"] and [a.name for a in second.aois] == ["B"]
    # The same bytes under another name are another entry: positions name the file.
    elsewhere = CheckedFiles(disk).check("other.yaml", spec.read_bytes())
    assert elsewhere.aois[0].where.path == "other.yaml"


@pytest.mark.parametrize(
    "damage",
    [b"", b"{not json", b'{"aois": 3}', json.dumps({"aois": [{"name": 5}]}).encode(), b"\xff"],
    ids=["empty", "not-json", "wrong-type", "wrong-shape", "not-utf8"],
)
def test_a_damaged_entry_is_dropped_and_the_file_checked(tmp_path: Path, damage: bytes) -> None:
    path = ROOT / "specs" / "bengaluru.yaml"
    raw = path.read_bytes()
    disk = SpecCache(tmp_path)
    cold = CheckedFiles(disk).check(str(path), raw)
    (entry,) = _entries(tmp_path)
    entry.write_bytes(damage)
    again = CheckedFiles(disk).check(str(path), raw)
    assert again == cold
    assert entry.read_bytes() != damage  # checked again, and kept again


def test_entries_of_other_code_are_never_read(tmp_path: Path) -> None:
    path, water = ROOT / "specs" / "bengaluru.yaml", ROOT / "specs" / "water.yaml"
    raw = path.read_bytes()
    disk = SpecCache(tmp_path)
    # Another version's entry under this file's key, declaring another file's AOIs.
    older = SpecCache(tmp_path)
    older.folder = tmp_path / "specs" / "another-version"
    CheckedFiles(older).check(str(water), water.read_bytes())
    (entry,) = older.folder.iterdir()
    planted = entry.rename(older.folder / f"{disk.key(str(path), raw)}.json")
    assert disk.folder.name == code_digest() != "another-version"
    fresh = CheckedFiles(disk).check(str(path), raw)
    assert {a.where.path for a in fresh.aois} == {str(path)}
    # The planted entry is well formed: only the code's own folder keeps it out.
    (disk.folder / planted.name).write_bytes(planted.read_bytes())
    misled = CheckedFiles(disk).check(str(path), raw)
    assert {a.where.path for a in misled.aois} == {str(water)}


def test_an_entry_holding_a_secret_is_never_written(tmp_path: Path) -> None:
    secret = "sk-cache-0123456789abcdefXYZ"
    install_redaction(secret, "the test's secret")
    disk = SpecCache(tmp_path)
    disk.write("k" * 64, json.dumps({"note": secret}).encode())
    disk.write("j" * 64, b'{"note": "nothing secret"}')
    assert [p.stem for p in _entries(tmp_path)] == ["j" * 64]


def test_the_cache_stays_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "MAX_ENTRIES", 8)
    earlier = SpecCache(tmp_path)
    for n in range(30):
        earlier.write(f"{n:064x}", b"{}")
    # A run keeps every entry it used, however many: its repository is that large.
    assert len(_entries(tmp_path)) == 30
    for entry in _entries(tmp_path):
        os.utime(entry, (1, 1))  # used long ago
    later = SpecCache(tmp_path)
    for n in range(100, 130):
        later.write(f"{n:064x}", b"{}")
    kept = {p.stem for p in _entries(tmp_path)}
    assert {f"{n:064x}" for n in range(100, 130)} <= kept
    # The earlier run's went first, down to three quarters of the bound (pruned at a run's
    # first write and every hundredth).
    assert len({f"{n:064x}" for n in range(30)} & kept) <= 8 * 3 // 4


def test_pruning_follows_no_link_and_stops_at_nothing(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "state.json").write_text("{}")
    cache = tmp_path / "cache"
    (cache / "specs").mkdir(parents=True)
    (cache / "specs" / "0000planted").symlink_to(victim, target_is_directory=True)
    resisting = cache / "specs" / "0000older" / "a-folder"
    resisting.mkdir(parents=True)
    for old in (victim, cache / "specs" / "0000older"):
        os.utime(old, (1, 1))
    disk = SpecCache(cache)
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    disk.folder.mkdir(parents=True)
    (disk.folder / f"{'e' * 64}.json").symlink_to(outside)
    disk.write("f" * 64, b"{}")  # the first write of a run prunes
    assert (victim / "state.json").exists()  # not deleted through the link
    assert resisting.exists()  # what could not go stays, and stops nothing else
    assert disk.read("e" * 64) is None  # an entry that is a link is no entry
    assert outside.exists()
    os.mkfifo(disk.folder / f"{'d' * 64}.json")
    assert disk.read("d" * 64) is None  # a FIFO is no entry, and reading it does not block


def test_a_file_whose_name_is_not_text_is_checked_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path / "cache"))
    specs = tmp_path / "specs"
    specs.mkdir()
    name = os.path.join(os.fsencode(specs), b"b\xff.yaml")
    with open(name, "wb") as handle:
        handle.write(b"aois:\n  - aoi: {name: A}\n    visualizations: [{index: NDVI}]\n")
    assert validate_specs([str(specs)]).specs is not None
    assert validate_specs([str(specs)]).specs is not None


def test_no_home_is_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    def homeless() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", homeless)
    assert cache_root({}) is None
    assert cache_root({"XDG_CACHE_HOME": "relative/cache"}) is None  # relative: ignored
    assert cache_root({"XDG_CACHE_HOME": "/abs/cache"}) == Path("/abs/cache/reconciler")


def test_where_the_cache_is(tmp_path: Path) -> None:
    assert cache_root({"RECONCILER_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert cache_root({"RECONCILER_CACHE_DIR": "off"}) is None
    assert cache_root({"RECONCILER_CACHE_DIR": ""}) is None
    assert cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "reconciler"


def test_the_cache_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert validate_specs([str(ROOT / "specs")]).specs is not None
    assert list(tmp_path.iterdir()) == []


def test_a_cache_that_cannot_be_written_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(blocker / "cache"))
    assert validate_specs([str(ROOT / "specs")]).specs is not None
    # The command line's validate, which keeps its outcome too, says so once.
    other = tmp_path / "another-file"
    other.write_text("not a directory")
    validated = run_cli(
        "validate", str(ROOT / "specs"), env={"RECONCILER_CACHE_DIR": str(other / "cache")}
    )
    assert validated.exit_code == 0, validated.output
    assert validated.stderr.count("spec cache: cannot write to") == 1
