"""Finding the API key: the file flag first, then the environment; refusals never quote it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from reconciler.api.config import known_api_keys, resolve_api_key
from reconciler.errors import ConfigError


def test_resolve_key_from_file_strips_whitespace(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text("  file-key-1234\n")
    assert resolve_api_key(f, {"PIXXEL_API_KEY": "env-key"}) == "file-key-1234"  # flag wins
    assert resolve_api_key(None, {"PIXXEL_API_KEY": " env-key \n"}) == "env-key"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        (b"  \n", "is empty"),
        (b"\xff\xfe-key", "not UTF-8"),
        (b"line-one\nline-two", "line breaks"),
        ("dir", "directory"),
    ],
)
def test_resolve_key_file_problems_name_the_file_not_the_content(
    tmp_path: Path, content: bytes | str | None, expected: str
) -> None:
    f = tmp_path / "key"
    if content == "dir":
        f.mkdir()
    elif isinstance(content, bytes):
        f.write_bytes(content)
    with pytest.raises(ConfigError, match=expected) as info:
        resolve_api_key(f, {})
    assert str(f) in str(info.value)
    assert not {"line-one", "line-two", "-key"} & set(re.split(r"[\s/]+", str(info.value)))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_resolve_key_unreadable_file(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text("secret")
    f.chmod(0)
    with pytest.raises(ConfigError, match="Cannot read"):
        resolve_api_key(f, {})


def test_resolve_key_missing_everywhere_explains_both_ways() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_api_key(None, {})
    text = str(info.value)
    assert "PIXXEL_API_KEY" in text and "--api-key-file" in text and "--sandbox" in text
    with pytest.raises(ConfigError, match="empty"):
        resolve_api_key(None, {"PIXXEL_API_KEY": "   "})


def test_known_keys_for_redaction_never_block_or_fail(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("file-key-123\n")
    environ = {"PIXXEL_API_KEY": " env-key-456 "}
    assert known_api_keys(key_file, environ) == ["file-key-123", "env-key-456"]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # reading it would wait for a writer
    assert known_api_keys(fifo, {}) == []
    assert known_api_keys(tmp_path / "missing", {}) == []
    (tmp_path / "big").write_bytes(b"x" * 100_000)
    assert known_api_keys(tmp_path / "big", {"PIXXEL_API_KEY": ""}) == []


def test_urllib3_is_required_where_chained_decompression_is_bounded() -> None:
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    (urllib3,) = [
        Requirement(r) for r in project["project"]["dependencies"] if r.startswith("urllib3")
    ]
    # Before 2.6, 'Content-Encoding: gzip, gzip' decompressed without bound (gigabytes).
    assert not urllib3.specifier.contains("2.5.0")
    assert urllib3.specifier.contains("2.6.0")
