"""How progress events look: a live line on a terminal, stamped lines in a CI log."""

from __future__ import annotations

import dataclasses
import io
import re

import pytest

from reconciler.cli.console import Reporter, describe_item, print_summary
from reconciler.run.events import ItemFinished, Refreshed, Stopping, Waiting
from reconciler.run.results import ApplyResult, ItemResult

ITEM = ItemResult(
    change="rollback",
    outcome="rolled back",
    aoi_id="a1",
    aoi_name="Pune-East",
    index_name="NDVI",
    message="auto-computed again",
    where="specs/pune.yaml:4:7",
    visualization_id="v1",
    mode="dynamic",
    dates=("2024-05-06",),
)


def test_log_lines_carry_time_and_elapsed_seconds_and_no_escape_codes() -> None:
    out = io.StringIO()
    reporter = Reporter(out, live=False)
    reporter(ItemFinished(ITEM, 1, 3))
    reporter(Stopping("interrupted (Ctrl-C)"))
    lines = out.getvalue().splitlines()
    assert re.fullmatch(
        r"\d\d:\d\d:\d\dZ \+\d+\.\ds rolled back: NDVI on Pune-East, dynamic legends of "
        r"2024-05-06: auto-computed again",
        lines[0],
    )
    assert lines[1].endswith(
        "interrupted (Ctrl-C): finishing requests in flight, starting nothing new …"
    )
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_log_throttles_waiting_lines_and_keeps_a_quick_refresh_silent() -> None:
    out = io.StringIO()
    reporter = Reporter(out, live=False)
    for percent in (10, 20, 30):
        reporter(Waiting("NDWI on Pune-East", "v2", percent))
    reporter(Refreshed(1, 2, "AOIs"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith("waiting for NDWI on Pune-East (v2): creating 10%")


def test_terminal_draws_a_bar_that_redraws_in_place_and_clears() -> None:
    out = io.StringIO()
    reporter = Reporter(out, live=True)
    reporter(Refreshed(1, 4, "visualizations of Pune-East"))
    reporter(ItemFinished(ITEM, 1, 2))
    reporter.clear()
    text = out.getvalue()
    assert "\r\x1b[Krefreshed 1/4: visualizations of Pune-East" in text
    assert "[##########----------] 1/2 done" in text
    assert text.endswith("\r\x1b[K")  # nothing of the live line is left behind
    assert not re.search(r"^\d\d:\d\d:\d\d", text, re.M)  # a terminal gets no timestamps


def test_describe_create_item() -> None:
    item = ItemResult(
        change="create",
        outcome="created",
        aoi_id="a1",
        aoi_name="Pune-East",
        index_name="NDVI",
        message="created v9",
        where="specs/pune.yaml:4:7",
        visualization_id="v9",
    )
    assert describe_item(item) == "created: NDVI on Pune-East: created v9"


def test_summary_repeats_failures_and_counts(capsys: pytest.CaptureFixture[str]) -> None:
    failed = ItemResult(
        change="create",
        outcome="failed",
        aoi_id="a1",
        aoi_name="Pune-East",
        index_name="NDVI",
        message="POST failed: 500",
        where="specs/pune.yaml:4:7",
    )
    result = ApplyResult(api_url="x", started_at="t", items=[ITEM, failed], stopped_early=True)
    print_summary(result)
    captured = capsys.readouterr()
    assert "failed: NDVI on Pune-East (specs/pune.yaml:4:7): POST failed: 500" in captured.err
    assert captured.out.strip() == (
        "Apply stopped early (--fail-fast): 0 created, 0 adopted, 1 rolled back, 1 failed, "
        "0 skipped."
    )


def test_terminal_keeps_the_bar_in_front_of_waiting_news(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    out = io.StringIO()
    reporter = Reporter(out, live=True)
    reporter(ItemFinished(ITEM, 1, 2))
    reporter(Waiting("NDWI on Pune-East", "v2", 40))
    assert out.getvalue().endswith(
        "\r\x1b[K[##########----------] 1/2 done · waiting for NDWI on Pune-East (v2): creating 40%"
    )


def test_counts_reach_the_reporter_in_order_from_many_threads() -> None:
    import threading

    out = io.StringIO()
    reporter = Reporter(out, live=False)
    threads = [
        threading.Thread(target=lambda n=n: reporter(ItemFinished(ITEM, n, 40)))
        for n in range(1, 41)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 40  # no line lost or torn by concurrent writers
    assert all(line.endswith("auto-computed again") for line in lines)


#: A custom index made by apply: it belongs to no AOI.
INDEX_ITEM = ItemResult(
    change="index",
    outcome="created",
    aoi_id="",
    aoi_name="",
    index_name="NDRE",
    message="created idx-7",
    where="specs/indices.yaml:2:5",
)
LEGEND_ITEM = ItemResult(
    change="legend",
    outcome="legend set",
    aoi_id="a1",
    aoi_name="Pune-East",
    index_name="NDVI",
    message="set as declared",
    where="specs/pune.yaml:9:11",
    visualization_id="v1",
    mode="dynamic",
    dates=("2024-05-06", "2024-08-19"),
)


def test_log_lines_say_custom_indices_and_legends_in_words() -> None:
    out = io.StringIO()
    reporter = Reporter(out, live=False)
    reporter(ItemFinished(INDEX_ITEM, 1, 2))
    reporter(ItemFinished(LEGEND_ITEM, 2, 2))
    lines = out.getvalue().splitlines()
    assert lines[0].endswith(" created: custom index NDRE: created idx-7")
    assert lines[1].endswith(
        " legend set: NDVI on Pune-East, dynamic legends of 2024-05-06, 2024-08-19: set as declared"
    )
    assert " on :" not in out.getvalue()  # an index is on no AOI


def test_summary_counts_custom_indices_and_legends_set(capsys: pytest.CaptureFixture[str]) -> None:
    failed = dataclasses.replace(
        INDEX_ITEM, outcome="failed", index_name="CIre", message="POST failed: 400"
    )
    created = ItemResult(
        change="create",
        outcome="created",
        aoi_id="a1",
        aoi_name="Pune-East",
        index_name="NDRE",
        message="created v9",
        where="specs/pune.yaml:4:7",
    )
    items = [INDEX_ITEM, failed, created, LEGEND_ITEM, ITEM]
    print_summary(ApplyResult(api_url="x", started_at="t", items=items))
    captured = capsys.readouterr()
    assert "failed: custom index CIre (specs/indices.yaml:2:5): POST failed: 400" in captured.err
    assert captured.out.strip() == (
        "Apply complete: 2 created (1 custom index), 0 adopted, 1 rolled back, 1 legend set, "
        "1 failed (1 custom index), 0 skipped."
    )
    # A legend that was to be set and was not is counted as not set, not left unsaid.
    skipped = dataclasses.replace(LEGEND_ITEM, outcome="skipped", message="not started")
    print_summary(ApplyResult(api_url="x", started_at="t", items=[skipped], interrupted=True))
    assert ": 0 created, 0 adopted, 0 rolled back, 0 legends set, 0 failed, 1 skipped." in (
        capsys.readouterr().out
    )
