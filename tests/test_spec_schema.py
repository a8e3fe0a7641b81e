"""The JSON Schema editors check specs with: it flags what it can say as the author types."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from reconciler.spec.models import SpecFile


def _errors(document: dict[str, Any]) -> list[str]:
    """Every message, also those under a oneOf (the assets' list-or-policy)."""
    validator = jsonschema.Draft202012Validator(SpecFile.model_json_schema())
    found: list[str] = []
    pending = list(validator.iter_errors(document))
    while pending:
        error = pending.pop()
        found.append(error.message)
        pending.extend(error.context or ())
    return found


def _spec(visualization: dict[str, Any]) -> dict[str, Any]:
    return {"aois": [{"aoi": {"name": "North"}, "visualizations": [visualization]}]}


@pytest.mark.parametrize(
    "visualization",
    [
        {"index": "NDVI", "assets": ["North-A", "North-A"]},
        {"index": "NDVI", "rollback": [{"mode": "dynamic", "dates": ["2024-05-06"] * 2}]},
    ],
    ids=["asset", "date"],
)
def test_a_repeated_asset_or_date_is_flagged(visualization: dict[str, Any]) -> None:
    assert any("non-unique elements" in message for message in _errors(_spec(visualization)))


def test_distinct_assets_and_dates_pass() -> None:
    visualization = {
        "index": "NDVI",
        "assets": ["North-A", "2024-11-20"],
        "rollback": [{"mode": "dynamic", "dates": ["2024-05-06", "2024-11-20"]}],
    }
    assert _errors(_spec(visualization)) == []
