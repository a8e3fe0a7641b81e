"""Date spellings: one rule of ``iso_date`` per test, and the conversion to the API's form."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from reconciler.dates import iso_date, iso_to_api_date

EXPECTED = "^expected an ISO date like 2024-05-06$"


def test_an_iso_date_comes_back_unchanged() -> None:
    assert iso_date("2024-05-06") == "2024-05-06"


def test_the_api_spelling_is_refused() -> None:
    with pytest.raises(ValueError, match=EXPECTED):
        iso_date("2024_05_06")


def test_the_compact_spelling_is_refused() -> None:
    # datetime.date.fromisoformat reads it; a second spelling would never match the first.
    with pytest.raises(ValueError, match=EXPECTED):
        iso_date("20240506")


def test_a_week_date_is_refused() -> None:
    with pytest.raises(ValueError, match=EXPECTED):
        iso_date("2024-W19-1")


def test_unpadded_month_and_day_are_refused() -> None:
    with pytest.raises(ValueError, match=EXPECTED):
        iso_date("2024-5-6")


def test_a_day_that_is_not_in_the_calendar_is_refused() -> None:
    with pytest.raises(ValueError, match=EXPECTED):
        iso_date("2023-02-29")


def test_a_leap_day_is_a_date() -> None:
    assert iso_date("2024-02-29") == "2024-02-29"


def test_a_time_part_is_refused() -> None:
    with pytest.raises(ValueError, match=EXPECTED):
        iso_date("2024-05-06T00:00:00")


def test_surrounding_whitespace_is_refused() -> None:
    with pytest.raises(ValueError, match=EXPECTED):
        iso_date(" 2024-05-06")


@pytest.mark.parametrize("value", [None, 20240506, dt.date(2024, 5, 6)])
def test_anything_but_a_string_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match=EXPECTED):
        iso_date(value)


def test_iso_to_api_date() -> None:
    assert iso_to_api_date("2024-05-06") == "2024_05_06"


def test_iso_to_api_date_refuses_what_is_not_an_iso_date() -> None:
    with pytest.raises(ValueError, match=EXPECTED):
        iso_to_api_date("2024_05_06")
