"""Parsing --state values and turning storage failures into clear errors (pure)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from reconciler.errors import ConfigError, StateError
from reconciler.state.remotefs import (
    Location,
    display_url,
    install_hint,
    is_storage_error,
    open_filesystem,
    parse_location,
    remote_error,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("state.json", Location(path=Path("state.json"))),
        (Path("a/b.json"), Location(path=Path("a/b.json"))),
        ("file:///tmp/x/state.json", Location(path=Path("/tmp/x/state.json"))),
        ("s3://bucket/key.json", Location(url="s3://bucket/key.json", scheme="s3")),
        ("GS://bucket/a/b.json", Location(url="GS://bucket/a/b.json", scheme="gs")),
    ],
)
def test_parse_location(value: str | Path, expected: Location) -> None:
    assert parse_location(value) == expected
    assert parse_location(value).remote is (expected.path is None)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "--state is empty"),
        ("  ", "--state is empty"),
        ("file://", "a file:// URL needs a path"),
        ("s3://bucket", "expected s3://BUCKET/PATH/state.json"),
        ("s3://bucket/", "expected s3://BUCKET/PATH/state.json"),
        ("s3://", "expected s3://BUCKET/PATH/state.json"),
        ("http://x/state.json", "http:// is not a supported state location"),
        ("HTTPS://x/state.json", "https:// is not a supported state location"),
        ("memory://x/state.json", "memory:// is not a supported state location"),
    ],
)
def test_unusable_locations_are_config_errors(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_location(value)


def test_user_info_never_shows() -> None:
    url = "az://user:hunter2@container/state.json"
    assert display_url(url) == "az://***@container/state.json"
    assert str(Location(url=url, scheme="az")) == "az://***@container/state.json"
    assert display_url("s3://bucket/key") == "s3://bucket/key"
    assert display_url("http://[::1") == "<unparseable URL>"
    with pytest.raises(ConfigError) as info:
        parse_location("s3://user:hunter2@bucket")
    assert "hunter2" not in str(info.value)


def test_install_hints() -> None:
    assert install_hint("s3") == "pip install 'reconciler[s3]'"
    assert install_hint("abfs") == "pip install 'reconciler[azure]'"
    assert "fsspec" in install_hint("webdav")


def test_an_unknown_scheme_is_refused() -> None:
    pytest.importorskip("fsspec")
    with pytest.raises(ConfigError, match="unknown URL scheme 'nope'"):
        open_filesystem(Location(url="nope://bucket/key", scheme="nope"))


class NoCredentialsError(Exception):
    """Named like botocore's."""


class EndpointConnectionError(Exception):
    """Named like botocore's."""


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (PermissionError("Access Denied"), "access denied (Access Denied); check the credentials"),
        (OSError(errno.EIO, "The AWS Access Key Id you provided does not exist"), "access denied"),
        (FileNotFoundError("The specified bucket does not exist"), "Does the bucket"),
        (NoCredentialsError("Unable to locate credentials"), "no credentials found"),
        (EndpointConnectionError("Could not connect to the endpoint URL"), "cannot reach"),
        (OSError(errno.EIO, "boom\nsecond line"), "OSError: [Errno 5] boom"),
        (OSError(errno.EIO, "x" * 400), "..."),
    ],
)
def test_remote_errors_say_what_to_check(exc: Exception, expected: str) -> None:
    error = remote_error("read the state", "s3://u:secret@bucket/key", exc)
    assert isinstance(error, StateError)
    message = str(error)
    assert message.startswith("cannot read the state s3://***@bucket/key: ")
    assert expected in message
    assert "secret" not in message and "second line" not in message


def test_storage_errors_are_recognised_by_kind_or_origin() -> None:
    assert is_storage_error(OSError())
    assert is_storage_error(TimeoutError())
    assert not is_storage_error(ValueError())
    botocore_like = type("ClientError", (Exception,), {"__module__": "botocore.exceptions"})
    assert is_storage_error(botocore_like())
