"""The atomic file writer: the old file or the new one, never half, and no temp files left over."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import NoReturn

import pytest

from reconciler.state.atomicfile import write_atomically


def _fail(*args: object, **kwargs: object) -> NoReturn:
    raise OSError(28, "No space left on device")


def test_text_is_written_as_utf8(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_atomically(target, "Bengaluru — north\n")
    assert target.read_bytes() == "Bengaluru — north\n".encode()


def test_bytes_are_written_verbatim(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    write_atomically(target, b"\x00\xff\r\n")
    assert target.read_bytes() == b"\x00\xff\r\n"


def test_replaces_the_old_contents_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old and longer than the new contents")
    write_atomically(target, "new")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.json"]


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="no POSIX file modes")
@pytest.mark.parametrize("mode", [0o644, 0o600])
def test_file_gets_exactly_the_mode_asked_for(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "out.json"
    old_umask = os.umask(0o077)  # a strict umask must not narrow the shared default
    try:
        write_atomically(target, "{}", mode=mode)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(target.stat().st_mode) == mode


def test_failed_rename_keeps_the_old_file_and_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    monkeypatch.setattr(os, "replace", _fail)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_failure_while_writing_keeps_the_old_file_and_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    monkeypatch.setattr(os, "fsync", _fail)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_interrupt_while_writing_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(fd: int) -> NoReturn:
        raise KeyboardInterrupt

    target = tmp_path / "state.json"
    target.write_text("old")
    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_missing_directory_is_an_oserror_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "missing" / "state.json", "{}")
    assert os.listdir(tmp_path) == []


def test_unfsyncable_directory_still_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some filesystems refuse to fsync a directory; the file is in place by then.
    real_fsync = os.fsync

    def fsync_files_only(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")
        real_fsync(fd)

    target = tmp_path / "state.json"
    monkeypatch.setattr(os, "fsync", fsync_files_only)
    write_atomically(target, "new")
    assert target.read_text() == "new"
