"""Ignore rules: declared in the specs, checked offline and online, counted in the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from reconciler.errors import ResolutionError
from reconciler.render.markdown import render_markdown
from reconciler.render.text import render_text
from reconciler.spec.load import validate_specs
from tests.planning import NDVI_NAGPUR_M_FAILED, make_plan, run_cli, write_spec

TRUE_COLOR = "fd0d7fb2-ac09-57a9-a3e1-5de17df7b6b5"

# Nagpur-Farms holds ten visualizations nobody declares here (NDWI x2, EVI, SAVI, True-Color,
# NIR-Grayscale, NDVI x4 of which one failed); Bengaluru-North one (True-Color over all).
BODY = """
    visualizations:
      - index: Chlorophyll-Red-Edge
        assets: [Nagpur-M, Nagpur-N]
  - aoi: {name: Bengaluru-North}
    visualizations:
      - index: NDVI
        assets: [Bengaluru-A, Bengaluru-B]
"""
SPEC = (
    f"""
ignore:
  - index: {TRUE_COLOR}
    reason: quick looks
aois:
  - aoi: {{name: Nagpur-Farms}}
    ignore:
      - index: NDWI
      - visualization: {NDVI_NAGPUR_M_FAILED}
        reason: failed, kept for the record"""
    + BODY
)


def test_rules_turn_warnings_into_counts_that_name_the_rule(
    emulator: Emulator, tmp_path: Path
) -> None:
    specs = write_spec(tmp_path / "specs", SPEC)
    plan = make_plan(emulator, specs, tmp_path / "state.json")

    by_rule: dict[str, list[tuple[str, str]]] = {}
    for item in plan.ignored:
        by_rule.setdefault(item.rule.rsplit("/", 1)[-1], []).append(
            (item.aoi_name, item.index_name)
        )
    assert by_rule == {
        # The top-level rule holds for every AOI, in the file's order of rules.
        "spec.yaml:2:5": [("Bengaluru-North", "True-Color"), ("Nagpur-Farms", "True-Color")],
        "spec.yaml:7:9": [("Nagpur-Farms", "NDWI"), ("Nagpur-Farms", "NDWI")],
        "spec.yaml:8:9": [("Nagpur-Farms", "NDVI")],
    }
    assert plan.summary()["ignored"] == 5
    warned = {w.visualization_id for w in plan.warnings if w.kind == "undeclared"}
    ignored = {i.visualization_id for i in plan.ignored}
    # The same specs without rules: exactly the ignored ones come back as warnings.
    bare = write_spec(tmp_path / "bare", "aois:\n  - aoi: {name: Nagpur-Farms}" + BODY)
    unruled = make_plan(emulator, bare, tmp_path / "state.json")
    assert {w.visualization_id for w in unruled.warnings if w.kind == "undeclared"} == (
        warned | ignored
    )
    assert len(ignored) == 5 and not warned & ignored

    text = " ".join(render_text(plan).split())  # long temporary paths wrap
    assert f"2 undeclared, ignored by rule at {specs}/spec.yaml:2:5 (quick looks)" in text
    assert text.endswith(f"{len(plan.warnings)} warnings, 2 unchanged, 5 ignored.")
    md = render_markdown(plan)
    assert f"- **2** undeclared, ignored by rule at `{specs}/spec.yaml:7:9`" in md


def test_a_rule_never_hides_a_declared_visualization(emulator: Emulator, tmp_path: Path) -> None:
    # NDVI is ignored everywhere, but Nagpur declares its failed NDVI: still warned about.
    specs = write_spec(
        tmp_path / "specs",
        """
        ignore: [{index: NDVI}]
        aois:
          - aoi: {name: Nagpur-Farms}
            visualizations:
              - index: NDVI
                assets: [Nagpur-M]
        """,
    )
    plan = make_plan(emulator, specs, tmp_path / "state.json")
    assert [(w.kind, w.visualization_id) for w in plan.warnings if w.kind == "failed"] == [
        ("failed", NDVI_NAGPUR_M_FAILED)
    ]
    assert NDVI_NAGPUR_M_FAILED not in {i.visualization_id for i in plan.ignored}
    assert {i.index_name for i in plan.ignored} == {"NDVI"}  # the other, undeclared NDVIs


def test_a_rule_for_one_aoi_does_not_hold_for_another(emulator: Emulator, tmp_path: Path) -> None:
    specs = write_spec(
        tmp_path / "specs",
        """
        aois:
          - aoi: {name: Nagpur-Farms}
            ignore: [{index: True-Color}]
            visualizations: []
          - aoi: {name: Bengaluru-North}
            visualizations: []
        """,
    )
    plan = make_plan(emulator, specs, tmp_path / "state.json")
    assert {(i.aoi_name, i.index_name) for i in plan.ignored} == {("Nagpur-Farms", "True-Color")}
    assert any(w.aoi_name == "Bengaluru-North" and "True-Color" in w.message for w in plan.warnings)


def test_an_unknown_index_in_a_rule_is_a_problem_at_its_position(
    emulator: Emulator, tmp_path: Path
) -> None:
    specs = write_spec(
        tmp_path / "specs",
        """
        ignore: [{index: Tru-Color}]
        aois:
          - aoi: {name: Pune-East}
            visualizations: []
        """,
    )
    with pytest.raises(ResolutionError) as caught:
        make_plan(emulator, specs, tmp_path / "state.json")
    (problem,) = caught.value.problems
    assert str(problem) == (
        f"{specs}/spec.yaml:1:10: ignore rule: unknown index 'Tru-Color' (closest: True-Color)"
    )


def test_validate_checks_rules_offline_and_online(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(
        tmp_path / "specs",
        """
        ignore:
          - {index: NDVI, visualization: f0e1d2c3-b4a5-4968-8776-655443322110}
          - {reason: no target}
          - {index: EVI}
          - {index: EVI, reson: typo}
        aois:
          - aoi: {name: Pune-East}
            ignore: [{index: SAVI}, {index: SAVI}, {index: NDWX}]
            visualizations: []
        """,
    )
    monkeypatch.chdir(tmp_path)
    offline = run_cli("validate")
    assert offline.exit_code == 1
    assert offline.stdout.splitlines()[:4] == [
        "specs/spec.yaml:2:5: an ignore rule names either an index ({index: ...}) or one "
        "visualization ({visualization: <id>}), not both",
        "specs/spec.yaml:3:5: an ignore rule names either an index ({index: ...}) or one "
        "visualization ({visualization: <id>})",
        "specs/spec.yaml:5:18: unknown key 'reson' (did you mean 'reason'?)",
        "specs/spec.yaml:8:29: ignore rule for index SAVI on AOI 'Pune-East' is given twice: "
        "first at specs/spec.yaml:8:14",
    ]

    write_spec(
        tmp_path / "specs",
        "aois: [{aoi: {name: Pune-East}, ignore: [{index: NDWX}], visualizations: []}]\n",
    )
    assert run_cli("validate").exit_code == 0  # names need the API
    online = run_cli("validate", "--online", url=emulator.url, key="test-key")
    assert online.exit_code == 1
    assert "specs/spec.yaml:1:42: ignore rule: unknown index 'NDWX' (closest: NDWI" in online.stdout


def test_rules_are_in_the_json_schema_and_validate_the_same_way() -> None:
    from reconciler.spec.models import SpecFile

    schema = SpecFile.model_json_schema()
    rule = schema["$defs"]["IgnoreRuleModel"]
    assert set(rule["properties"]) == {"index", "visualization", "reason"}
    assert rule["oneOf"] == [{"required": ["index"]}, {"required": ["visualization"]}]
    assert schema["properties"]["ignore"]["items"] == {"$ref": "#/$defs/IgnoreRuleModel"}
    entry = schema["$defs"]["AoiEntry"]
    assert entry["properties"]["ignore"]["items"] == {"$ref": "#/$defs/IgnoreRuleModel"}


def test_examples_use_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Path(__file__).resolve().parent.parent
    report = validate_specs([repo / "specs"])
    assert report.specs is not None
    assert report.specs.ignore and any(a.ignore for a in report.specs.aois)
