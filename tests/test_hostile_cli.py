"""plan and apply end to end against an API that answers wrongly: clear errors, reports, no key.

A hostile server (``tests/hostile.py``) sits in front of the emulator: it forwards every
request and spoils the answers of one route (a misspelt list key, deep nesting, a huge body).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from click.testing import Result

from reconciler.emulator import Emulator
from tests.hostile import HostileServer, Reply
from tests.planning import ROLLBACK_SPEC, SECRET, run_cli, write_spec

Spoiler = Callable[[str, str, int, bytes], Reply | None]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_spec(tmp_path / "specs", ROLLBACK_SPEC)
    return tmp_path


@pytest.fixture
def proxy(world: Emulator, hostile: HostileServer) -> Iterator[tuple[HostileServer, list[Spoiler]]]:
    """A server forwarding to the emulator; each spoiler may replace an answer."""
    spoilers: list[Spoiler] = []
    session = requests.Session()

    def forward(head: bytes) -> Reply:
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ")
        headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
        answer = session.request(
            method, world.url + target, headers={"Authorization": headers["Authorization"]}
        )
        path = target.split("?")[0]
        for spoil in spoilers:
            spoiled = spoil(method, path, answer.status_code, answer.content)
            if spoiled is not None:
                return spoiled
        content_type = [("Content-Type", "application/json")]
        return Reply.raw(answer.status_code, answer.content, content_type)

    hostile.replies = forward
    yield hostile, spoilers
    session.close()


def run(server: HostileServer, *args: str) -> Result:
    return run_cli(*args, url=server.url, key=SECRET)


def renamed(key: str, to: str, route: str) -> Spoiler:
    def spoil(method: str, path: str, status: int, body: bytes) -> Reply | None:
        if method == "GET" and re.fullmatch(route, path) and status == 200:
            data = json.loads(body)
            data[to] = data.pop(key)
            return Reply.json(200, data)
        return None

    return spoil


def test_an_aoi_listing_without_its_list_is_an_api_error_not_an_unknown_aoi(
    proxy: tuple[HostileServer, list[Spoiler]], project: Path
) -> None:
    server, spoilers = proxy
    spoilers.append(renamed("aois", "aoi", "/v0/aois"))
    result = run(server, "plan")
    assert result.exit_code == 1
    assert "GET /v0/aois (offset 0): the answer has no 'aois' list (it has 'aoi': misspelt?)" in (
        result.output
    )
    assert "unknown AOI" not in result.output and "Traceback" not in result.output


def test_a_misspelt_visualization_listing_plans_no_create_and_drops_no_rollback(
    proxy: tuple[HostileServer, list[Spoiler]], project: Path
) -> None:
    server, spoilers = proxy
    spoilers.append(renamed("visualization", "visualizations", r"/v0/aois/[^/]+/visualizations"))
    for args in (("plan", "--detailed-exitcode"), ("apply", "--yes", "--report", "r.json")):
        result = run(server, *args)
        assert result.exit_code == 1, result.output
        assert "the answer has no 'visualization' list" in result.output
        assert "create" not in result.output.lower()
    assert json.loads((project / "r.json").read_text())["ok"] is False


def test_deep_nesting_during_apply_fails_the_item_and_the_report_says_so(
    proxy: tuple[HostileServer, list[Spoiler]], project: Path
) -> None:
    server, spoilers = proxy

    def nested(method: str, path: str, status: int, body: bytes) -> Reply | None:
        if method == "PATCH":
            return Reply.raw(200, b'{"id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
        return None

    spoilers.append(nested)
    result = run(server, "apply", "--yes", "--report", "report.json")
    assert result.exit_code == 1 and "Traceback" not in result.output
    report = json.loads((project / "report.json").read_text())
    [item] = report["items"]
    assert item["outcome"] == "failed"
    assert "answered 200 with JSON nested too deeply to read" in item["message"]
    assert SECRET not in result.output + (project / "report.json").read_text()
