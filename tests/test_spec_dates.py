"""Dates in the forms people copy into specs: each is said to be what it is, with what to
write instead (the API's own 2025_03_03, a number, 2024-5-6, a day that does not exist)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.spec.load import validate_specs
from tests.planning import aoi, spec, viz, write_spec

ROLLBACK_LINE, ROLLBACK_DATE_COLUMN = 6, 44  # where X is in _spec_with_date


def _spec_with_date(written: str, assets: str = "[North-A]") -> str:
    return spec(
        aoi(
            "North", viz("NDVI", assets=assets, rollback=f"[{{mode: dynamic, dates: [{written}]}}]")
        )
    )


def _problems(directory: Path) -> list[tuple[int, int, str]]:
    report = validate_specs([directory])
    return [
        (p.where.line, p.where.column, p.message) for p in report.problems if p.where is not None
    ]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (
            "2025_03_03",
            "'2025_03_03' is the API's spelling of a date; specs use ISO dates: write 2025-03-03",
        ),
        ("20250303", "the number 20250303 is not a date: write 2025-03-03"),
        ("2024-5-6", "'2024-5-6' is not an ISO date: write 2024-05-06"),
        (
            "2025-02-30",
            "'2025-02-30' is not a date: February 2025 has only 28 days (the last is 2025-02-28)",
        ),
        (
            "2024-02-30",
            "'2024-02-30' is not a date: February 2024 has only 29 days (the last is 2024-02-29)",
        ),
        (
            "2025_02_30",
            "'2025_02_30' is not a date: February 2025 has only 28 days (the last is 2025-02-28)",
        ),
        (
            "2024-13-01",
            "'2024-13-01' is not a date: there is no month 13 (months run from 01 to 12, as in "
            "2024-05-06)",
        ),
        ("2024-04-00", "'2024-04-00' is not a date: there is no day 0 (days start at 01)"),
        ("0000-01-01", "'0000-01-01' is not a date: there is no year 0"),
        ("nope", "expected an ISO date like 2024-05-06, got 'nope'"),
    ],
)
def test_a_rollback_date_in_another_form_says_what_it_is_and_what_to_write(
    tmp_path: Path, written: str, message: str
) -> None:
    write_spec(tmp_path, _spec_with_date(written))
    assert _problems(tmp_path) == [(ROLLBACK_LINE, ROLLBACK_DATE_COLUMN, message)]


def test_the_apis_date_form_among_assets_is_a_date_to_write_the_iso_way(tmp_path: Path) -> None:
    write_spec(tmp_path, _spec_with_date("2024-05-06", assets="[North_A, 2024_05_06]"))
    assert _problems(tmp_path) == [
        (
            5,
            27,
            "'2024_05_06' is the API's spelling of a date; specs use ISO dates: write 2024-05-06",
        )
    ]


def test_names_and_numbers_with_underscores_keep_their_meaning(tmp_path: Path) -> None:
    """Only the date's shape stays text: an asset named North_A, or resolution 1_0 (YAML 1.1
    reads it as 10), are what they were."""
    text = _spec_with_date("2024-05-06", assets="[North_A]").replace(
        "      - index: NDVI\n", "      - index: NDVI\n        resolution: 1_0\n"
    )
    write_spec(tmp_path, text)
    report = validate_specs([tmp_path])
    assert report.problems == ()
    assert report.specs is not None
    (declared,) = report.specs.aois[0].visualizations
    assert declared.resolution == 10
    assert declared.assets is not None and [a.value for a in declared.assets] == ["North_A"]
