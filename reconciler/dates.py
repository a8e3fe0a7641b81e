"""Date spellings: the one check of an ISO date, and its conversion to the API's form.

Specs, the state file and asset listings spell dates the ISO way (``2024-05-06``); the API's
metadata calls spell them ``2024_05_06``. Dates are compared and looked up as strings all over
(planner, state, emulator), so each form must have exactly one spelling.
"""

from __future__ import annotations

import datetime as dt

_EXPECTED = "expected an ISO date like 2024-05-06"


def iso_date(value: str) -> str:
    """Return ``value`` if it is a calendar date spelled ``YYYY-MM-DD``; else ``ValueError``.

    Nothing is normalised: ``20240506``, ``2024-5-6``, ``2024-05-06T00:00`` and surrounding
    spaces are refused, as is anything that is not a ``str``.
    """
    if not isinstance(value, str):
        raise ValueError(_EXPECTED)
    try:
        parsed = dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(_EXPECTED) from None
    # fromisoformat also reads 20240506 and 2024-W19-1; only one spelling may pass.
    if parsed.isoformat() != value:
        raise ValueError(_EXPECTED)
    return value


def iso_to_api_date(value: str) -> str:
    """``"2024-05-06"`` -> ``"2024_05_06"``, the form the metadata calls take.

    ``ValueError`` (from ``iso_date``) unless ``value`` is an ISO date.
    """
    return iso_date(value).replace("-", "_")
