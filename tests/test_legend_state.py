"""Custom legends and custom indices as code, end to end through the command line against the
emulator: planned, applied in order, kept, and a hand edit found by reading legends back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from reconciler.emulator import Emulator
from tests.planning import (
    BENGALURU,
    NDVI_BENGALURU_AB,
    ROLLBACK_SPEC,
    SECRET,
    client_for,
    run_cli,
    write_spec,
)

SATELLITE = "0005c5bb-0bd2-4c80-9393-4a808341c54c"

NDRE = f"""\
  - name: NDRE
    description: red-edge NDVI for late-season crops
    expression: (B08-B05)/(B08+B05)
    expression_type: index
    rescale: [-1, 1]
    colormap: rdylgn
    satellite: {SATELLITE}
"""

#: A custom index, a visualization over it, and a custom theoretical legend of two dates on a
#: visualization the demo world has.
SPEC = f"""\
indices:
{NDRE}
aois:
  - aoi: {{name: Bengaluru-North}}
    visualizations:
      - index: NDRE
      - index: NDVI
        assets: [Bengaluru-A, Bengaluru-B]
        legend:
          - mode: theoretical
            dates: [2024-05-06, 2024-11-20]
            items:
              - {{min: -1, max: 0.2, color: "#d7191c", label: Bare}}
              - {{min: 0.2, max: 1, color: "#1a9641", label: Crop}}
"""

DECLARED = [
    {"min": -1, "max": 0.2, "color": "#d7191c", "label": "Bare"},
    {"min": 0.2, "max": 1, "color": "#1a9641", "label": "Crop"},
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_spec(tmp_path / "specs", SPEC)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(world: Emulator, *args: str) -> Result:
    return run_cli(*args, url=world.url, key=SECRET)


def plan_json(world: Emulator) -> dict[str, Any]:
    result = run(world, "plan", "--format", "json")
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def converged(world: Emulator) -> bool:
    return run(world, "plan", "--detailed-exitcode").exit_code == 0


def put_by_hand(
    world: Emulator, mode: str, dates: list[str], items: list[dict[str, Any]] | None
) -> None:
    """Someone edits a legend of Bengaluru's NDVI over A and B in the console."""
    with client_for(world, api_key=SECRET) as client:
        client.update_metadata(
            BENGALURU,
            NDVI_BENGALURU_AB,
            mode=mode,
            legend=dict.fromkeys(dates, items),
            dynamic_bins=None if mode == "theoretical" else 5,
        )


def apply(world: Emulator, project: Path) -> dict[str, Any]:
    result = run(world, "apply", "--yes", "--report", "report.json")
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads((project / "report.json").read_text())
    return report


def test_an_index_a_visualization_over_it_and_a_legend_are_made_in_order(
    world: Emulator, project: Path
) -> None:
    plan = plan_json(world)
    assert [i["name"] for i in plan["indices"]] == ["NDRE"]
    assert [(c["index_name"], c["index_id"]) for c in plan["creates"]] == [
        ("NDRE", "new-index:NDRE")
    ]
    (legend,) = plan["legends"]
    assert (legend["visualization_id"], legend["mode"], legend["dates"]) == (
        NDVI_BENGALURU_AB,
        "theoretical",
        ["2024-05-06", "2024-11-20"],
    )
    assert plan["summary"]["index"] == 1 and plan["summary"]["legend"] == 1

    report = apply(world, project)
    assert [(i["change"], i["outcome"]) for i in report["items"]] == [
        ("index", "created"),
        ("create", "created"),
        ("legend", "legend set"),
    ]
    with client_for(world, api_key=SECRET) as client:
        (ndre,) = [i for i in client.list_indices() if i.name == "NDRE"]
        assert ndre.type == "custom" and ndre.expression == "(B08-B05)/(B08+B05)"
        assert [v.index_id for v in client.list_visualizations(BENGALURU, index_id=ndre.id)]
        shown = client.read_sld(
            BENGALURU, NDVI_BENGALURU_AB, modes=["theoretical"], dates=["2024-11-20"]
        )
    bins = shown["theoretical"]["2024-11-20"]
    assert [(b.min, b.max, b.color, b.label) for b in bins] == [
        (-1, 0.2, "#d7191c", "Bare"),
        (0.2, 1, "#1a9641", "Crop"),
    ]
    assert converged(world)


def test_a_hand_edit_of_one_date_is_planned_for_that_mode_and_date_and_reverted(
    world: Emulator, project: Path
) -> None:
    apply(world, project)
    put_by_hand(world, "theoretical", ["2024-11-20"], [{"min": -1, "max": 1, "color": "#ff0000"}])

    plan = plan_json(world)
    (legend,) = plan["legends"]
    assert (legend["mode"], legend["dates"], legend["reason"]) == (
        "theoretical",
        ["2024-11-20"],
        "edited",
    )
    assert "2024-11-20" in legend["detail"] and "#ff0000" in legend["detail"]
    assert plan["rollbacks"] == [] and plan["creates"] == []

    report = apply(world, project)
    assert [(i["change"], i["outcome"]) for i in report["items"]] == [("legend", "legend set")]
    assert converged(world)


def test_an_edit_undone_or_one_of_the_other_mode_plans_nothing(
    world: Emulator, project: Path
) -> None:
    apply(world, project)
    put_by_hand(world, "theoretical", ["2024-05-06"], [{"min": 0, "max": 1, "color": "#000000"}])
    put_by_hand(world, "theoretical", ["2024-05-06"], DECLARED)  # undone
    assert converged(world)

    put_by_hand(world, "dynamic", ["2024-11-20"], None)  # the mode the specs leave alone
    assert converged(world)


def test_a_custom_index_that_differs_from_its_declaration_is_reported(
    world: Emulator, project: Path
) -> None:
    apply(world, project)
    write_spec(project / "specs", SPEC.replace("(B08-B05)/(B08+B05)", "(B08-B04)/(B08+B04)"))
    plan = plan_json(world)
    (warning,) = [w for w in plan["warnings"] if w["kind"] == "index-differs"]
    assert (
        "expression is '(B08-B05)/(B08+B05)', declared '(B08-B04)/(B08+B04)'"
        in (warning["message"])
    )
    assert warning["where"].startswith("specs/spec.yaml:2:")
    assert plan["indices"] == []  # it exists: never created twice
    # Spaces change nothing an expression computes: no difference to report.
    write_spec(project / "specs", SPEC.replace("(B08-B05)/(B08+B05)", "( B08 - B05 ) / (B08+B05)"))
    assert [w for w in plan_json(world)["warnings"] if w["kind"] == "index-differs"] == []


def test_a_hand_edit_names_the_mode_it_touched(world: Emulator, project: Path) -> None:
    write_spec(project / "specs", ROLLBACK_SPEC)
    apply(world, project)
    assert converged(world)

    # The other mode, then the rolled-back one: only the second calls for a rollback.
    put_by_hand(world, "theoretical", ["2024-05-06"], [{"min": 0, "max": 1, "color": "#000000"}])
    assert converged(world)
    put_by_hand(world, "dynamic", ["2024-05-06"], [{"color": "#000000"}] * 5)
    (rollback,) = plan_json(world)["rollbacks"]
    assert (rollback["mode"], rollback["dates"], rollback["reason"]) == (
        "dynamic",
        ["2024-05-06"],
        "changed",
    )
    assert "the dynamic legend of 2024-05-06 was changed" in rollback["detail"]
    apply(world, project)
    assert converged(world)


NEW_WITH_LEGENDS = """\
aois:
  - aoi: {name: Bengaluru-North}
    visualizations:
      - index: NDVI
        assets: [Bengaluru-C, Bengaluru-D]
        rollback:
          - {mode: dynamic, dates: [2025-05-02]}
        legend:
          - mode: theoretical
            dates: [2025-11-14]
            items: [{min: -1, max: 1, color: "#1a9641", label: All}]
          - mode: dynamic
            dates: [2025-11-14]
            bins: 3
"""


def test_a_new_visualization_gets_its_declared_legends_once_usable(
    world: Emulator, project: Path
) -> None:
    write_spec(project / "specs", NEW_WITH_LEGENDS)
    plan = plan_json(world)
    (create,) = plan["creates"]
    assert [(t["mode"], t["dates"]) for t in create["legends"]] == [
        ("theoretical", ["2025-11-14"]),
        ("dynamic", ["2025-11-14"]),
    ]
    report = apply(world, project)
    assert sorted((i["change"], i["outcome"], i["mode"]) for i in report["items"]) == [
        ("create", "created", None),
        ("legend", "legend set", "dynamic"),
        ("legend", "legend set", "theoretical"),
    ]
    assert converged(world)


def test_drift_tells_a_pending_index_and_legend_from_an_edited_one(
    world: Emulator, project: Path
) -> None:
    def ours() -> list[tuple[str, str, str]]:
        # The demo world has visualizations these specs do not declare: those are moved too.
        result = run(world, "drift", "--format", "json")
        assert result.exit_code in (2, 3), result.output
        return [
            (f["kind"], f["what"], f["why"])
            for f in json.loads(result.output)["findings"]
            if "not declared in the specs" not in f["what"]
        ]

    assert ours() == [
        ("pending", "create custom index NDRE", "declared, not created yet"),
        ("pending", "create NDRE", "declared, not created yet"),
        (
            "pending",
            "set the theoretical legends of NDVI (2024-05-06, 2024-11-20)",
            "declared, never set by this tool",
        ),
    ]
    apply(world, project)
    assert ours() == []
    put_by_hand(world, "theoretical", ["2024-05-06"], [{"min": 0, "max": 1, "color": "#000000"}])
    assert ours() == [
        (
            "moved",
            "set the theoretical legends of NDVI (2024-05-06)",
            "changed since this tool set it",
        )
    ]


def test_export_declares_the_custom_indices_in_use_and_the_legends_it_set(
    world: Emulator, project: Path
) -> None:
    apply(world, project)
    exported = run(world, "export", "--aoi", "Bengaluru-North", "--by-name")
    assert exported.exit_code == 0, exported.output
    text = exported.output
    assert "indices:\n" in text and "  - name: NDRE\n" in text
    assert '    expression: "(B08-B05)/(B08+B05)"\n' in text
    assert "        # legend:\n" in text
    assert "        #     dates: [2024-05-06, 2024-11-20]\n" in text
    assert '        #       - {min: -1, max: 0.2, color: "#d7191c", label: Bare}\n' in text

    # As exported, and with the legends uncommented: nothing to change either way.
    text = text.split("\nExported ")[0] + "\n"
    write_spec(project / "specs", text)
    assert converged(world)
    uncommented = "\n".join(
        "        " + line.removeprefix("        # ")
        if line.startswith(("        # legend:", "        # rollback:", "        #  "))
        else line
        for line in text.splitlines()
        if not line.startswith("Exported ")
    )
    write_spec(project / "specs", uncommented + "\n")
    assert run(world, "validate").exit_code == 0
    assert converged(world)


def test_validate_online_checks_legend_modes_and_dates_against_the_api(
    world: Emulator, project: Path
) -> None:
    wrong = SPEC.replace("dates: [2024-05-06, 2024-11-20]", "dates: [2024-05-06, 2023-01-01]")
    wrong += """\
      - index: NDRE
        assets: [Bengaluru-C]
        legend:
          - {mode: theoretical, dates: [2025-05-02], items: [{min: 0, max: 1, color: "#000000"}]}
"""
    write_spec(project / "specs", wrong)
    result = run(world, "validate", "--online")
    assert result.exit_code == 1, result.output
    assert (
        "specs/spec.yaml:18:33: legend date 2023-01-01 is not a date of this visualization's "
        "assets (its dates: 2024-05-06, 2024-11-20)"
    ) in result.output
    assert (
        "specs/spec.yaml:25:13: index 'NDRE' has no theoretical legend to set: a custom index "
        "with expression_type 'index' has only a dynamic legend"
    ) in result.output


def test_a_saved_plan_is_refused_when_a_declared_legend_changed_since(
    world: Emulator, project: Path
) -> None:
    assert run(world, "plan", "--out", "plan.json").exit_code == 0
    write_spec(project / "specs", SPEC.replace('color: "#1a9641"', 'color: "#000000"'))
    result = run(world, "apply", "plan.json", "--yes")
    assert result.exit_code == 1, result.output
    assert "theoretical legend of 2024-05-06 now 2 ranges" in result.output
    assert run(world, "plan", "--out", "plan.json").exit_code == 0
    assert run(world, "apply", "plan.json", "--yes").exit_code == 0
    assert converged(world)


ONLY_INDICES = f"indices:\n{NDRE}"


def test_a_saved_plan_of_indices_only_is_checked_like_any_other(
    world: Emulator, project: Path
) -> None:
    write_spec(project / "specs", ONLY_INDICES)
    assert run(world, "plan", "--out", "plan.json").exit_code == 0
    write_spec(project / "specs", ONLY_INDICES.replace("name: NDRE", "name: NDRE2"))
    refused = run(world, "apply", "plan.json", "--yes")
    assert refused.exit_code == 1, refused.output
    assert "create custom index NDRE, which nothing calls for" in refused.output
    with client_for(world, api_key=SECRET) as client:
        assert not [i for i in client.list_indices() if i.name.startswith("NDRE")]


def test_a_saved_plan_of_some_aois_creates_only_the_indices_they_need(
    world: Emulator, project: Path
) -> None:
    second = NDRE.replace("name: NDRE", "name: NDRE-Pune")
    write_spec(
        project / "specs",
        f"indices:\n{NDRE}{second}aois:\n"
        "  - aoi: {name: Bengaluru-North}\n    visualizations: [{index: NDRE}]\n"
        "  - aoi: {name: Pune-East}\n    visualizations: [{index: NDRE-Pune}]\n",
    )
    planned = run(world, "plan", "--target", "Bengaluru-North", "--out", "plan.json")
    assert planned.exit_code == 0, planned.output
    applied = run(world, "apply", "plan.json", "--yes")
    assert applied.exit_code == 0, applied.output
    with client_for(world, api_key=SECRET) as client:
        assert {i.name for i in client.list_indices() if i.type == "custom"} >= {"NDRE"}
        assert "NDRE-Pune" not in {i.name for i in client.list_indices()}
