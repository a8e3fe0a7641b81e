"""A saved plan is carried out only if its changes are the ones called for when apply runs.

The file's checksum proves nothing against someone who can write it: each forgery below is
re-sealed with the documented checksum, then applied through the engine against the emulator.
Every one must be refused before a single write; the unmodified plan applies as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.api.client import PixxelClient
from reconciler.core import planfile
from reconciler.core.plan import Create, Plan, Rollback, RollbackTarget
from reconciler.core.verify import check_changes
from reconciler.emulator import Emulator
from reconciler.errors import PlanFileError, UnverifiedPlanError
from reconciler.run.engine import ApplyOptions, Engine
from reconciler.run.results import ApplyOutcome
from reconciler.run.settings import Settings
from tests.planning import (
    BENGALURU,
    NAGPUR,
    NDVI_BENGALURU_AB,
    NDVI_NAGPUR_JKL,
    NDWI,
    PUNE,
    client_for,
    write_spec,
)

Document = dict[str, Any]
WRITES = (("POST", "/v0/aois/{aoi_id}/visualizations"), ("PATCH", None), ("PUT", None))


#: Two rollbacks and a create on one AOI, a create on another.
SPEC = """
aois:
  - aoi: {name: Bengaluru-North}
    visualizations:
      - index: NDVI
        assets: [Bengaluru-A, Bengaluru-B]
        rollback:
          - {mode: dynamic, dates: [2024-05-06]}
          - {mode: theoretical, dates: [2024-05-06]}
      - index: NDWI
  - aoi: {name: Pune-East}
    visualizations:
      - index: NDVI
"""


def engine_for(emulator: Emulator, client: PixxelClient, tmp_path: Path) -> Engine:
    return Engine(Settings(api_url=emulator.url, state=tmp_path / "state.json"), client=client)


def saved_plan(emulator: Emulator, tmp_path: Path) -> tuple[Path, Document]:
    specs = write_spec(tmp_path / "specs", SPEC)
    with client_for(emulator) as client:
        plan = engine_for(emulator, client, tmp_path).plan([str(specs)])
    kinds = sorted((c.kind, c.aoi_name) for c in plan.changes)
    assert kinds == [
        ("create", "Bengaluru-North"),
        ("create", "Pune-East"),
        ("rollback", "Bengaluru-North"),
        ("rollback", "Bengaluru-North"),
    ]
    return specs, planfile.document(plan)


def reseal(document: Document, path: Path) -> Path:
    content = {k: v for k, v in document.items() if k != "checksum"}
    path.write_text(json.dumps({**content, "checksum": planfile.checksum(content)}))
    return path


def apply_file(emulator: Emulator, tmp_path: Path, plan: Path, specs: Path) -> ApplyOutcome:
    emulator.counter.reset()
    with client_for(emulator) as client:
        engine = engine_for(emulator, client, tmp_path)
        return engine.apply([str(plan), str(specs)], ApplyOptions(poll_interval=0.02))


def writes(emulator: Emulator) -> int:
    return sum(emulator.counter.count(method, route) for method, route in WRITES)


def _rollback(document: Document) -> Document:
    """The dynamic rollback of Bengaluru's NDVI."""
    rollbacks: list[Document] = [
        r
        for r in document["rollbacks"]
        if r["visualization_id"] == NDVI_BENGALURU_AB and r["mode"] == "dynamic"
    ]
    (rollback,) = rollbacks
    return rollback


def _create(document: Document) -> Document:
    """Pune's NDVI, over all its assets."""
    creates: list[Document] = [c for c in document["creates"] if c["aoi_id"] == PUNE]
    (create,) = creates
    return create


def undeclared_rollback(document: Document) -> None:
    """Roll back a visualization of Nagpur, which no spec declares."""
    extra = {**_rollback(document), "aoi_id": NAGPUR, "aoi_name": "Nagpur-Farms"}
    document["rollbacks"].append({**extra, "visualization_id": NDVI_NAGPUR_JKL})


def undeclared_create(document: Document) -> None:
    """Create NDVI over all assets on Bengaluru too: permanent, the API has no delete."""
    extra = {**_create(document), "aoi_id": BENGALURU, "aoi_name": "Bengaluru-North"}
    document["creates"].append(extra)


def extra_date(document: Document) -> None:
    _rollback(document)["dates"].append("2024-08-19")


def switched_mode(document: Document) -> None:
    document["rollbacks"].remove(_rollback(document))
    for rollback in document["rollbacks"]:
        rollback["mode"] = "dynamic"


def dropped_rollback(document: Document) -> None:
    document["rollbacks"].remove(_rollback(document))


def other_index(document: Document) -> None:
    _create(document)["index_id"] = NDWI


def forged_ids(document: Document) -> None:
    _rollback(document)["visualization_id"] = NDVI_NAGPUR_JKL


def other_api(document: Document) -> None:
    document["api_url"] = "https://api.example.com"


def other_specs(document: Document) -> None:
    document["spec_paths"] = ["elsewhere/"]


FORGERIES: dict[str, tuple[Callable[[Document], None], str]] = {
    "undeclared target": (undeclared_rollback, "AOI Nagpur-Farms: no longer declared"),
    "extra create": (undeclared_create, "the plan would create NDVI"),
    "extra date": (
        extra_date,
        "the plan says dates 2024-05-06, 2024-08-19, but 2024-05-06 is called for",
    ),
    "changed mode": (
        switched_mode,
        "the plan leaves out what is called for: roll back the theoretical legends",
    ),
    "dropped rollback": (
        dropped_rollback,
        "the plan leaves out what is called for: roll back the dynamic legends",
    ),
    "other index": (other_index, "the plan would create NDVI ("),
    "forged visualization id": (forged_ids, f"({NDVI_NAGPUR_JKL})"),
    "other API": (other_api, "the plan was made against https://api.example.com"),
    "other spec paths": (other_specs, "the plan was made from the specs in elsewhere/"),
}


@pytest.mark.parametrize("name", FORGERIES)
def test_a_resealed_forgery_is_refused_before_any_write(
    make_emulator: Callable[..., Emulator], tmp_path: Path, name: str
) -> None:
    forge, said = FORGERIES[name]
    emulator = make_emulator()
    specs, document = saved_plan(emulator, tmp_path)
    forge(document)
    # Sealed as documented: the checksum alone cannot tell.
    plan = planfile.loads(reseal(document, tmp_path / "plan.json").read_text())
    assert isinstance(plan, Plan)

    outcome = apply_file(emulator, tmp_path, tmp_path / "plan.json", specs)

    assert isinstance(outcome.error, PlanFileError), outcome
    assert said in str(outcome.error)
    assert "nothing was applied" in str(outcome.error)
    assert writes(emulator) == 0
    assert not outcome.started and outcome.result.items == []


def test_the_unmodified_plan_applies_as_before(
    make_emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = make_emulator()
    specs, document = saved_plan(emulator, tmp_path)
    path = reseal(document, tmp_path / "plan.json")

    outcome = apply_file(emulator, tmp_path, path, specs)

    assert outcome.error is None and outcome.ok, outcome
    counts = {k: v for k, v in outcome.result.counts().items() if v}
    assert counts == {
        "created": len(document["creates"]),
        "rolled back": len(document["rollbacks"]),
    }


def test_a_plan_from_other_specs_names_the_command_that_applies_it(
    make_emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = make_emulator()
    specs, document = saved_plan(emulator, tmp_path)
    path = reseal(document, tmp_path / "plan.json")
    with client_for(emulator) as client:
        outcome = engine_for(emulator, client, tmp_path).apply([str(path)])  # reads specs/

    assert isinstance(outcome.error, PlanFileError)
    assert f"reconciler apply {path} {specs}" in str(outcome.error)


# --- the comparison itself, on plans built by hand ----------------------------------------------

CREATE = Create(
    aoi_id="aoi-1",
    aoi_name="Field",
    index_id="ndvi",
    index_name="NDVI",
    assets=None,
    resolution=None,
    identity=("a", "b"),
    rollbacks=(RollbackTarget("dynamic", ("2024-05-06",)),),
    where="s.yaml:3:7",
)
ROLLBACK = Rollback(
    aoi_id="aoi-1",
    aoi_name="Field",
    visualization_id="viz-1",
    index_id="ndvi",
    index_name="NDVI",
    mode="dynamic",
    dates=("2024-05-06",),
    reason="no-record",
    detail="no record",
    revision=0,
    where="s.yaml:9:7",
)


def test_names_positions_and_reasons_are_not_what_is_compared() -> None:
    renamed = Rollback(
        **{
            **{f: getattr(ROLLBACK, f) for f in ROLLBACK.__dataclass_fields__},
            "aoi_name": "Renamed",
            "where": "other.yaml:1:1",
            "reason": "changed",
            "detail": "edited",
        }
    )
    check_changes(
        Plan(creates=(CREATE,), rollbacks=(ROLLBACK,)),
        Plan(creates=(CREATE,), rollbacks=(renamed,)),
        "reconciler plan",
    )


def test_every_difference_is_named_once() -> None:
    revised = Rollback(
        **{**{f: getattr(ROLLBACK, f) for f in ROLLBACK.__dataclass_fields__}, "revision": 2}
    )
    with pytest.raises(UnverifiedPlanError) as refused:
        check_changes(
            Plan(creates=(CREATE, CREATE), rollbacks=(revised,)),
            Plan(rollbacks=(ROLLBACK,)),
            "reconciler plan --out plan.json",
        )
    message = str(refused.value)
    assert message.count("\n  - ") == 3
    assert "appears twice in the plan" in message
    assert "the plan would create NDVI (ndvi) over all assets" in message
    assert "the plan says revision 2, but 0 is called for" in message
    assert message.endswith("apply that one: reconciler plan --out plan.json")
