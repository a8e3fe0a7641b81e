"""Renderers: pure tests on hand-built plans (no network), with golden files for review.

Golden files live in tests/golden/. After an intended change of output, regenerate them with
``UPDATE_GOLDEN=1 pytest tests/test_render.py`` and read the diff as a reviewer would.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from reconciler.core import planfile
from reconciler.core.drift import Drift, Finding
from reconciler.core.plan import (
    LEGEND_REASON_TEXT,
    NEW_INDEX_PREFIX,
    REASON_TEXT,
    AoiName,
    AoiSnapshot,
    AoiSummary,
    AssetRef,
    Create,
    DesiredViz,
    Ignored,
    IndexCreate,
    LegendChange,
    LegendTarget,
    Plan,
    PlanWarning,
    Rollback,
    RollbackTarget,
    SelectorSummary,
    VizSnapshot,
)
from reconciler.errors import ConfigError
from reconciler.render.formats import FORMATS, render
from reconciler.render.json import render_json
from reconciler.render.markdown import (
    GITHUB_COMMENT_LIMIT,
    MIN_MARKDOWN_CHARS,
    render_drift_markdown,
    render_markdown,
)
from reconciler.render.text import render_drift_text, render_text
from reconciler.run.results import OUTCOMES, ItemResult
from reconciler.spec.decls import LegendContent, LegendItemDecl

GOLDEN = Path(__file__).parent / "golden"
DOCS = Path(__file__).parent.parent / "docs" / "plan-json.md"

# Ids from reconciler/emulator/demo_world.yaml, so the goldens read like a real plan.
BLR = "89a291cd-7ad8-5f86-aeee-55e92b0a0f5d"
PUNE = "8ee03236-8358-5969-a280-c39238c3c46b"
NAGPUR = "1a3cd9bf-677d-5205-8fbf-1414083293b0"
MYSURU = "3f1d2c4b-5a69-5788-9c0d-1e2f3a4b5c6d"
NDVI = "cb668cf4-b6fc-5c37-a944-84c62fd95299"
NDWI = "04d0a9cd-f653-558c-9d19-4103e6386d5a"
SAVI = "58daa3ea-1018-5594-9e35-9056ba51867e"
CHL = "07d5b720-886c-56ff-88bb-2298b1ee62ed"
TRUE_COLOR = "fd0d7fb2-ac09-57a9-a3e1-5de17df7b6b5"
BLR_A = AssetRef("4bbe45b3-ef5d-54f4-ba70-b6700fa56d61", "Bengaluru-A", "2024-05-06")
BLR_B = AssetRef("0a32dbb1-14f4-5013-a2c5-f9efdf927607", "Bengaluru-B", "2024-08-19")
BLR_C = AssetRef("28feba53-9c1f-5b4f-ad79-431fa406dad0", "Bengaluru-C", "2025-11-14")
NDWI_BLR = "5f0c1e2a-6b1d-4f4e-9b9b-0c1d2e3f4a5b"
NDVI_PUNE = "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6"

#: Custom legends as a spec declares them: ranges with colours and labels, or dynamic bins.
BARE_GREEN = LegendContent(
    items=(
        LegendItemDecl(-1.0, 0.2, "#d7191c", "Bare"),
        LegendItemDecl(0.2, 1.0, "#1a9641", "Green"),
    )
)
WET_DRY = LegendContent(
    items=(
        LegendItemDecl(-1.0, 0.0, "#8c510a", "Dry"),
        LegendItemDecl(0.0, 0.3, "#f6e8c3", None),
        LegendItemDecl(0.3, 1.0, "#01665e", "Wet"),
    )
)
FIVE_BINS = LegendContent(items=(), bins=5)
NDRE = IndexCreate(
    name="NDRE",
    description="Red-edge NDVI, for crop stress",
    expression="(B08-B05)/(B08+B05)",
    expression_type="index",
    rescale=(-1, 1),
    colormap="rdylgn",
    satellite_id="pixxel-td",
    where="specs/indices.yaml:2:5",
)


def realistic_plan() -> Plan:
    """A plan with every kind of change, reason and warning, as the planner would sort it."""
    return Plan(
        indices=(NDRE,),
        creates=(
            Create(
                aoi_id=BLR,
                aoi_name="Bengaluru-North",
                index_id=NDVI,
                index_name="NDVI",
                assets=(BLR_A, BLR_C),
                resolution=10.0,
                where="specs/bengaluru.yaml:5:7",
                rollbacks=(RollbackTarget("dynamic", ("2024-05-06", "2025-11-14")),),
                identity=(BLR_A.id, BLR_C.id),
                legend_modes=("dynamic", "theoretical"),
            ),
            Create(
                aoi_id=BLR,
                aoi_name="Bengaluru-North",
                index_id=TRUE_COLOR,
                index_name="True-Color",
                assets=None,
                resolution=None,
                where="specs/bengaluru.yaml:12:7",
                identity=(BLR_A.id, BLR_B.id, BLR_C.id),
            ),
            Create(
                aoi_id=PUNE,
                aoi_name="Pune-East",
                index_id=SAVI,
                index_name="SAVI",
                assets=(AssetRef("1ba5adf0-fd81-5d05-8902-a3a160f17a7c", "Pune-B", "2024-03-02"),),
                resolution=2.5,
                where="specs/pune.yaml:4:7",
                identity=("1ba5adf0-fd81-5d05-8902-a3a160f17a7c",),
                legend_modes=("dynamic", "theoretical"),
            ),
            # Over the custom index this plan creates first, with a legend of its own.
            Create(
                aoi_id=NAGPUR,
                aoi_name="Nagpur-Farms",
                index_id=NEW_INDEX_PREFIX + "NDRE",
                index_name="NDRE",
                assets=None,
                resolution=None,
                where="specs/nagpur.yaml:21:7",
                identity=("9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",),
                legend_modes=("dynamic",),
                legends=(LegendTarget("dynamic", ("2024-07-03", "2024-07-17"), FIVE_BINS),),
            ),
        ),
        legends=(
            LegendChange(
                aoi_id=BLR,
                aoi_name="Bengaluru-North",
                visualization_id=NDWI_BLR,
                index_id=NDWI,
                index_name="NDWI",
                mode="dynamic",
                dates=("2025-11-14",),
                legends=(LegendTarget("dynamic", ("2025-11-14",), BARE_GREEN),),
                reason="edited",
                detail="the legend of 2025-11-14 was changed: range 2 is #ff0000, not #1a9641",
                where="specs/bengaluru.yaml:24:11",
            ),
            # Two legends in one PUT: each said with the dates it is for.
            LegendChange(
                aoi_id=PUNE,
                aoi_name="Pune-East",
                visualization_id=NDVI_PUNE,
                index_id=NDVI,
                index_name="NDVI",
                mode="dynamic",
                dates=("2024-03-02", "2024-06-01", "2024-09-14"),
                legends=(
                    LegendTarget("dynamic", ("2024-03-02",), BARE_GREEN),
                    LegendTarget("dynamic", ("2024-06-01", "2024-09-14"), WET_DRY),
                ),
                reason="no-record",
                detail="",
                where="specs/pune.yaml:14:11",
            ),
        ),
        rollbacks=(
            Rollback(
                aoi_id=BLR,
                aoi_name="Bengaluru-North",
                visualization_id=NDWI_BLR,
                index_id=NDWI,
                index_name="NDWI",
                mode="dynamic",
                dates=("2024-05-06", "2024-08-19"),
                reason="changed",
                detail="updated_at moved from 2025-11-20 09:14:02+00:00 (after the last rollback) "
                "to 2025-11-21 04:12:09+00:00",
                revision=0,
                where="specs/bengaluru.yaml:19:11",
            ),
            Rollback(
                aoi_id=BLR,
                aoi_name="Bengaluru-North",
                visualization_id=NDWI_BLR,
                index_id=NDWI,
                index_name="NDWI",
                mode="theoretical",
                dates=("2025-11-14",),
                reason="revision",
                detail="the spec asks for revision 2; the last rollback was revision 1",
                revision=2,
                where="specs/bengaluru.yaml:22:11",
            ),
            Rollback(
                aoi_id=NAGPUR,
                aoi_name="Nagpur-Farms",
                visualization_id="a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d",
                index_id=CHL,
                index_name="Chlorophyll-Red-Edge",
                mode="dynamic",
                dates=tuple(f"2024-{m:02d}-{d:02d}" for m in range(1, 8) for d in (3, 17)),
                reason="no-record",
                detail="the state file has no record of this visualization",
                revision=0,
                where="specs/nagpur.yaml:9:11",
            ),
            Rollback(
                aoi_id=PUNE,
                aoi_name="Pune-East",
                visualization_id=NDVI_PUNE,
                index_id=NDVI,
                index_name="NDVI",
                mode="theoretical",
                dates=("2024-03-02",),
                reason="adopted",
                detail="",
                revision=0,
                where="specs/pune.yaml:11:11",
            ),
        ),
        warnings=(
            PlanWarning(
                kind="failed",
                aoi_id=BLR,
                aoi_name="Bengaluru-North",
                message="declared visualization 'EVI' (e9f8a7b6-c5d4-4e3f-a2b1-c0d9e8f7a6b5) "
                "failed when it was created; its rollbacks are skipped: fix it in the Pixxel "
                "console",
                visualization_id="e9f8a7b6-c5d4-4e3f-a2b1-c0d9e8f7a6b5",
                where="specs/bengaluru.yaml:26:7",
            ),
            PlanWarning(
                kind="partial_success",
                aoi_id=NAGPUR,
                aoi_name="Nagpur-Farms",
                message="declared visualization 'NDVI' was only partly computed (partial_success); "
                "some dates may have no legend",
                visualization_id="b7c6d5e4-f3a2-4b1c-9d8e-7f6a5b4c3d2e",
                where="specs/nagpur.yaml:3:7",
            ),
            PlanWarning(
                kind="creating",
                aoi_id=NAGPUR,
                aoi_name="Nagpur-Farms",
                message="declared visualization 'SAVI' is still being created; apply waits for it "
                "before rolling back its legends",
                visualization_id="c8d7e6f5-a4b3-4c2d-8e1f-0a9b8c7d6e5f",
                where="specs/nagpur.yaml:15:7",
            ),
            PlanWarning(
                kind="undeclared",
                aoi_id=PUNE,
                aoi_name="Pune-East",
                message="'NDWI' over [Pune-A 2024-06-01] is not declared in the specs: left alone",
                visualization_id="f0e1d2c3-b4a5-4968-8776-655443322110",
            ),
            PlanWarning(
                kind="index-differs",
                aoi_id="",
                aoi_name="",
                message="custom index 'CIre' (7c6b5a49-3827-4165-9f4e-3d2c1b0a9f8e) exists but "
                "differs from its declaration: colormap is 'viridis', declared 'rdylgn'. The API "
                "cannot change an index: visualizations use it as it is. Change the declaration "
                "to match, or declare an index of another name",
                where="specs/indices.yaml:10:5",
            ),
        ),
        aois=(
            AoiSummary(BLR, "Bengaluru-North", declared=6, unchanged=2),
            AoiSummary(MYSURU, "Mysuru-West", declared=3, unchanged=3),
            AoiSummary(NAGPUR, "Nagpur-Farms", declared=8, unchanged=5),
            AoiSummary(PUNE, "Pune-East", declared=3, unchanged=1),
        ),
        ignored=(
            Ignored(
                PUNE,
                "Pune-East",
                "0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f",
                "True-Color",
                rule="specs/ignore.yaml:3:5",
                reason="quick looks made by the field team",
            ),
            Ignored(
                BLR,
                "Bengaluru-North",
                "1d0e9f8a-7b6c-4d5e-8f3a-2b1c0d9e8f7a",
                "True-Color",
                rule="specs/ignore.yaml:3:5",
                reason="quick looks made by the field team",
            ),
            Ignored(
                PUNE,
                "Pune-East",
                "2e1f0a9b-8c7d-4e6f-9a4b-3c2d1e0f9a8b",
                "NDWI",
                rule="specs/pune.yaml:3:9",
            ),
        ),
        desired={
            PUNE: {
                f"{SAVI}:1ba5adf0-fd81-5d05-8902-a3a160f17a7c": DesiredViz(
                    label="SAVI over Pune-B (2024-03-02)",
                    index_id=SAVI,
                    assets=("1ba5adf0-fd81-5d05-8902-a3a160f17a7c",),
                    identity=("1ba5adf0-fd81-5d05-8902-a3a160f17a7c",),
                    resolution=2.5,
                    rollbacks=(),
                    legends=(LegendTarget("dynamic", ("2024-03-02",), BARE_GREEN),),
                )
            }
        },
        confirmed=(NDWI_BLR,),
        observed={
            BLR: AoiSnapshot(
                name="Bengaluru-North",
                visualizations={
                    NDWI_BLR: VizSnapshot(
                        index="NDVI",
                        assets=("a1", "a2"),
                        status="success",
                        updated_at="2025-11-21T08:00:00Z",
                    )
                },
            ),
            NAGPUR: AoiSnapshot(name="Nagpur-Farms", visualizations={}),
        },
        api_url="https://api.pixxel.space",
        spec_paths=("specs",),
        targets=(),
    )


def empty_plan_with_warnings() -> Plan:
    plan = realistic_plan()
    kept = [w for w in plan.warnings if w.kind in ("creating", "undeclared")]
    return dataclasses.replace(
        plan, indices=(), creates=(), rollbacks=(), legends=(), warnings=tuple(kept)
    )


HOSTILE_AOI = "Farm | North `x` ``` **b** <b>@team</b> #12 :+1: \x1b[31mRED\n\u202eevil"
HOSTILE_INDEX = "````NDVI|x"


def hostile_plan() -> Plan:
    """Names that try to break tables, fences, HTML, terminals and mentions."""
    aoi_id = "id|with`ticks"
    return Plan(
        creates=(
            Create(
                aoi_id=aoi_id,
                aoi_name=HOSTILE_AOI,
                index_id=NDVI,
                index_name=HOSTILE_INDEX,
                assets=(AssetRef("a1", "asset | one ```", "2024-05-06"),),
                resolution=None,
                where="specs/we|ird `name`.yaml:1:3",
            ),
        ),
        rollbacks=(
            Rollback(
                aoi_id=aoi_id,
                aoi_name=HOSTILE_AOI,
                visualization_id="v`1",
                index_id=NDWI,
                index_name="<script>",
                mode="dynamic",
                dates=("2024-05-06",),
                reason="no-record",
                detail="detail with ``` and \x1b]8;;http://x\x07link",
                revision=0,
                where="specs/a.yaml:2:2",
            ),
        ),
        warnings=(
            PlanWarning(
                kind="undeclared",
                aoi_id=aoi_id,
                aoi_name=HOSTILE_AOI,
                message="message ```\n| x | y |",
                visualization_id="v2",
            ),
        ),
        aois=(AoiSummary(aoi_id, HOSTILE_AOI, declared=2, unchanged=0),),
        api_url="https://user:secret@api.example.com/base",
    )


def huge_plan(n_aois: int = 200, per_aoi: int = 20, warnings_per_aoi: int = 1) -> Plan:
    """Thousands of changes: n_aois AOIs with per_aoi changes each (half creates)."""
    creates: list[Create] = []
    rollbacks: list[Rollback] = []
    warnings: list[PlanWarning] = []
    aois: list[AoiSummary] = []
    for a in range(n_aois):
        aoi_id, name = f"{a:08d}-aoi-0000-0000-000000000000", f"Field-{a:04d}"
        aois.append(AoiSummary(aoi_id, name, declared=per_aoi + 1, unchanged=1))
        for i in range(per_aoi // 2):
            creates.append(
                Create(
                    aoi_id=aoi_id,
                    aoi_name=name,
                    index_id=f"idx-{i}",
                    index_name=f"Index-{i}",
                    assets=None,
                    resolution=None,
                    where=f"specs/{a}.yaml:{i}:7",
                )
            )
            rollbacks.append(
                Rollback(
                    aoi_id=aoi_id,
                    aoi_name=name,
                    visualization_id=f"vis-{a}-{i}",
                    index_id=f"idx-{i}",
                    index_name=f"Index-{i}",
                    mode="dynamic",
                    dates=("2024-05-06", "2024-06-07"),
                    reason="no-record",
                    detail="no record",
                    revision=0,
                    where=f"specs/{a}.yaml:{i}:11",
                )
            )
        warnings += [
            PlanWarning(
                kind="undeclared",
                aoi_id=aoi_id,
                aoi_name=name,
                message=f"undeclared visualization {w}",
            )
            for w in range(warnings_per_aoi)
        ]
    return Plan(
        creates=tuple(creates),
        rollbacks=tuple(rollbacks),
        warnings=tuple(warnings),
        aois=tuple(aois),
        api_url="https://api.pixxel.space",
    )


# --- golden files -----------------------------------------------------------------------------


def check_golden(name: str, actual: str) -> None:
    """Compare with tests/golden/<name>, or rewrite it when UPDATE_GOLDEN=1."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing: run UPDATE_GOLDEN=1 pytest {__file__}")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"golden/{name}",
                tofile="rendered",
            )
        )
        pytest.fail(f"output differs from golden/{name} (UPDATE_GOLDEN=1 to accept):\n{diff}")


@pytest.mark.parametrize(
    ("name", "renderer"),
    [
        ("plan.txt", lambda p: render_text(p)),
        ("plan.color.txt", lambda p: render_text(p, color=True)),
        ("plan.md", lambda p: render_markdown(p)),
        ("plan.json", lambda p: render_json(p)),
        ("empty-with-warnings.txt", lambda p: render_text(empty_plan_with_warnings())),
        ("empty-with-warnings.md", lambda p: render_markdown(empty_plan_with_warnings())),
        # A big plan cut to fit (a small limit keeps the file readable): every change that
        # fits, no warning, and the note saying what is missing and where the rest is.
        (
            "huge-truncated.md",
            lambda p: render_markdown(
                huge_plan(n_aois=12, per_aoi=6, warnings_per_aoi=2),
                max_chars=6_000,
                details_url="https://ci.example.com/team/specs/-/jobs/42/artifacts/browse",
            ),
        ),
    ],
)
def test_golden(name: str, renderer: Any) -> None:
    check_golden(name, renderer(realistic_plan()))


# --- text -------------------------------------------------------------------------------------


def test_text_summary_line_is_last_and_exact() -> None:
    out = render_text(realistic_plan())
    assert out.endswith(
        "\nPlan: 1 custom index to create, 4 to create, 4 to roll back, 2 legends to set, "
        "5 warnings,\n      11 unchanged, 3 ignored.\n"
    )


def test_text_shows_every_change_with_its_spec_position() -> None:
    plan = realistic_plan()
    out = render_text(plan)
    for change in plan.changes:
        assert f"# spec: {change.where}" in out
    for r in plan.rollbacks:
        assert r.visualization_id in out
        assert REASON_TEXT[r.reason] in out
    assert "all assets (API default)" in out
    assert "Bengaluru-A (2024-05-06), Bengaluru-C (2025-11-14)" in out
    assert "resolution     2.5" in out


def test_text_has_no_escape_codes_without_color_and_same_text_with_it() -> None:
    plan = realistic_plan()
    plain, colored = render_text(plan), render_text(plan, color=True)
    assert "\x1b" not in plain
    assert "\x1b[32m+" in colored and "\x1b[33m!" in colored and "\x1b[35m*" in colored
    assert "\x1b[36m~" in colored
    # Colour only decorates: stripped, it is exactly the plain rendering.
    assert click.unstyle(colored) == plain


def test_text_groups_by_aoi_in_plan_order_then_creates_rollbacks_legends_warnings() -> None:
    out = render_text(realistic_plan())
    headers = re.findall(r"^(AOI \S+|Custom indices)[ :]", out, flags=re.MULTILINE)
    # The custom indices first, as apply creates them first; Mysuru-West has nothing to do: it
    # is only named in the closing "nothing to change" line.
    assert headers == ["Custom indices", "AOI Bengaluru-North", "AOI Nagpur-Farms", "AOI Pune-East"]
    blr = out.split("AOI Bengaluru-North")[1].split("\nAOI ")[0]
    markers = re.findall(r"^  ([+!~*]) ", blr, flags=re.MULTILINE)
    assert markers == ["+", "+", "!", "!", "~", "*"]
    assert "Nothing to change in: Mysuru-West (3 unchanged)" in out


def test_text_keeps_changes_for_an_aoi_missing_from_the_summaries() -> None:
    plan = realistic_plan()
    plan = dataclasses.replace(plan, aois=plan.aois[1:])  # Bengaluru-North's summary is lost
    out = render_text(plan)
    assert "AOI Bengaluru-North (89a291cd)" in out
    assert out.index("AOI Nagpur-Farms") < out.index("AOI Bengaluru-North")


def test_text_empty_plan_says_nothing_changes_and_lists_warnings() -> None:
    plan = empty_plan_with_warnings()
    out = render_text(plan)
    assert out.splitlines()[2].startswith("No changes.")
    assert "nagpur.yaml:15:7" in out and "'SAVI' is still being created" in out
    assert "f0e1d2c3-b4a5-4968-8776-655443322110" in out  # id shown when the message lacks it
    assert "+" not in re.sub(r"[^\n]*\+00:00", "", out)  # no create marker anywhere
    assert out.endswith("Plan: 0 to create, 0 to roll back, 2 warnings, 11 unchanged, 3 ignored.\n")


def test_text_empty_plan_without_anything() -> None:
    out = render_text(Plan())
    assert (
        out
        == "No changes. The live API already matches the specs; apply would do nothing.\n\n"
        + ("Plan: 0 to create, 0 to roll back, 0 warnings, 0 unchanged.\n")
    )


def test_text_escapes_control_characters_in_names() -> None:
    out = render_text(hostile_plan())
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "\\x1b[31mRED\\n\\u202eevil" in out
    assert "user:secret" not in out and "secret" not in out
    assert "https://api.example.com/base" in out


def test_text_wraps_long_lists_between_items() -> None:
    out = render_text(realistic_plan())
    assert max(len(line) for line in out.splitlines()) <= 100
    dates = [line for line in out.splitlines() if line.strip() == "2024-07-03, 2024-07-17"]
    assert dates and dates[0].startswith(" " * 21 + "2024-")  # continuation under the value
    # A legend wraps between its ranges, never inside one.
    assert "\n" + " " * 21 + "0.3 … 1 #01665e 'Wet'\n" in out


# --- markdown ---------------------------------------------------------------------------------


def fences(md: str) -> Iterator[tuple[int, int, list[str]]]:
    """Yield (open line, close line, body) for each fenced block, per CommonMark's rules."""
    lines = md.split("\n")
    i = 0
    while i < len(lines):
        m = re.fullmatch(r"(`{3,})([^`]*)", lines[i])
        if m:
            ticks = len(m.group(1))
            for j in range(i + 1, len(lines)):
                if re.fullmatch(rf"`{{{ticks},}}\s*", lines[j]):
                    yield i, j, lines[i + 1 : j]
                    i = j
                    break
            else:
                raise AssertionError(f"fence opened on line {i + 1} never closes")
        i += 1


def md_length(md: str) -> int:
    """Length as GitHub's limit is checked: never more than the UTF-16 code units."""
    return len(md.encode("utf-16-le")) // 2


def change_list(md: str) -> list[str]:
    """The lines of the change list: the ``diff`` blocks that start with an ``@@ AOI @@``."""
    return [
        line
        for _, _, body in fences(md)
        if body and body[0].startswith("@@ ")
        for line in body
        if not line.startswith("@@ ")
    ]


def test_markdown_structure_of_a_realistic_plan() -> None:
    plan = realistic_plan()
    md = render_markdown(plan)
    assert md.startswith(
        "### reconciler plan: 1 custom index to create, 4 to create, 4 to roll back, "
        "2 legends to set, 5 warnings, 11 unchanged, 3 ignored\n"
    )
    # Reading order: the list (one block per spec file, the custom indices first), the
    # details (open, a small plan), unchanged AOIs, ignored, warnings (collapsed).
    assert md.count("<details open>") == 4 + 4
    assert md.count("<details>") == 1 and md.count("</details>") == 9
    listed = change_list(md)
    assert len(listed) == len(plan.all_changes)
    # Creates and rollbacks are marked so that GitHub's diff highlighting colours them.
    assert sorted(line[0] for line in listed) == ["!"] * 4 + ["+"] * 5 + ["~"] * 2
    assert listed[0] == "+ NDRE: (B08-B05)/(B08+B05), type index, rescale [-1, 1], colormap rdylgn"
    assert "! NDWI theoretical 2025-11-14 · revision bumped" in listed
    assert "! Chlorophyll-Red-Edge dynamic 2024-01-03 … 2024-07-17 (14 dates) · no record" in listed
    assert "unmarked: the visualization changed since the last rollback (**1**)" in md
    first_warning = md.index("5 warnings: apply does not act on these")
    for change in plan.all_changes:
        assert md.index(f"# spec: {change.where}\n") < first_warning
    assert md.index("Nothing to change in: `Mysuru-West`") < md.index("Ignored") < first_warning
    assert "- **2** undeclared, ignored by rule at `specs/ignore.yaml:3:5`" in md
    details = md[md.index("Details, with the spec position") : first_warning]
    marks = {line[0] for _, _, body in fences(details) for line in body if line}
    assert marks == {"#", "+", "!", "~"}
    assert md.endswith("\n<!-- reconciler-plan -->\n")
    assert "cut to fit" not in md


def test_markdown_marker_takes_an_id_and_refuses_one_that_breaks_the_comment() -> None:
    md = render_markdown(realistic_plan(), comment_id="shard-2/eu")
    assert md.endswith("\n<!-- reconciler-plan:shard-2/eu -->\n")
    assert "<!-- reconciler-plan -->" not in md
    for bad in ("x -->", "", "a b", "-x", "x" * 65):
        with pytest.raises(ConfigError, match="comment id"):
            render_markdown(realistic_plan(), comment_id=bad)


def test_markdown_hostile_names_do_not_break_fences_or_html() -> None:
    md = render_markdown(hostile_plan())
    # Diff blocks stay closed around names with triple backticks: the list (two spec files),
    # the details, the warnings.
    blocks = list(fences(md))
    assert len(blocks) == 4
    bodies = ["\n".join(body) for _, _, body in blocks]
    assert "asset | one ```" in bodies[1]
    assert "asset | one ```" in bodies[2] and "detail with ``` and" in bodies[2]
    assert "message\n    ```\\n| x | y |" in bodies[3]
    # Outside fences, tags and mentions from names are escaped or inside code.
    in_fence = {n for start, end, _ in blocks for n in range(start, end + 1)}
    loose = [line for n, line in enumerate(md.split("\n")) if n not in in_fence]
    assert not [line for line in loose if "<b>" in line or "<script>" in line]
    summary = next(line for line in loose if "<summary><code>" in line and "id|with" in line)
    assert "&lt;b&gt;@team&lt;/b&gt;" in summary and "<code>id|with`</code>" in summary
    assert "\x1b" not in md and "\u202e" not in md
    assert "secret" not in md


#: Texts that try to end a code span early and leave a live mention and link behind.
SPAN_BREAKERS = (
    "x `` @octocat [c](https://e.x) `` y",
    "`` @octocat [c](https://e.x) ``",
    "` @octocat [c](https://e.x) `",
    "```@octocat [c](https://e.x)```",
    "a ` b `` c ``` @octocat [c](https://e.x)",
)


@pytest.mark.parametrize("hostile", SPAN_BREAKERS)
def test_markdown_code_spans_hold_any_backtick_runs(hostile: str) -> None:
    """Parsed as CommonMark: every hostile name, rule and reason stays inside its code span."""
    aois = [AoiSummary(f"aoi-{n}", f"{hostile} {n}", declared=1, unchanged=1) for n in range(2)]
    ignored = Ignored("aoi-0", aois[0].aoi_name, "v1", "NDVI", f"{hostile}.yaml:1:1", hostile)
    plan = Plan(aois=tuple(aois), ignored=(ignored,), targets=(hostile,), api_url="https://a")
    md = render_markdown(plan)
    assert md.count("@octocat") == 5  # two names, a rule, a reason, a target
    inline = [
        child
        for token in MarkdownIt("commonmark").parse(md)
        if token.type == "inline"
        for child in token.children or ()
    ]
    assert not [t for t in inline if t.type == "link_open"]
    loose = "".join(t.content for t in inline if t.type != "code_inline")
    assert "@octocat" not in loose and "https://e.x" not in loose
    spans = [t.content for t in inline if t.type == "code_inline"]
    assert sum("@octocat" in span for span in spans) == 5


def _changes_before_warnings(md: str) -> None:
    warnings_at = md.find("warnings: apply does not act on these")
    if warnings_at >= 0:
        last_change = max(md.rfind("\n+ "), md.rfind("\n! "), md.rfind("\n~ "))
        assert last_change < warnings_at


def review_plan(n_aois: int, files: int = 20) -> Plan:
    """A first plan of an estate: per AOI two creates over listed assets or one, and one or two
    rollbacks (three changes on average), from 20 spec files, with no state records yet."""
    dates = ("2024-05-06", "2024-08-19", "2025-01-10", "2025-06-02")
    creates: list[Create] = []
    rollbacks: list[Rollback] = []
    aois: list[AoiSummary] = []
    for k in range(n_aois):
        aoi_id, name = f"{k:08d}-aoi0-4000-8000-000000000000", f"AOI-{k:05d}"
        spec = f"specs/shard-{k % files:02d}.yaml"
        line = 1 + (k // files) * 12
        assets = tuple(
            AssetRef(f"{k:08d}-ast{j}-4000-8000-000000000000", f"{name}-{j}", dates[j])
            for j in range(4)
        )
        aois.append(AoiSummary(aoi_id, name, declared=3, unchanged=0))
        for index in ["EVI"] if k % 2 else ["EVI", "NDWI"]:
            creates.append(
                Create(
                    aoi_id=aoi_id,
                    aoi_name=name,
                    index_id=f"idx-{index}",
                    index_name=index,
                    assets=assets,
                    resolution=None,
                    identity=tuple(sorted(a.id for a in assets)),
                    where=f"{spec}:{line + 3}:7",
                )
            )
        modes = (
            [("dynamic", dates[:2]), ("theoretical", dates[2:])]
            if k % 2
            else [("dynamic", dates[:2])]
        )
        for mode, when in modes:
            rollbacks.append(
                Rollback(
                    aoi_id=aoi_id,
                    aoi_name=name,
                    visualization_id=f"{k:08d}-viz0-4000-8000-000000000000",
                    index_id="idx-NDVI",
                    index_name="NDVI",
                    mode=mode,  # type: ignore[arg-type]
                    dates=when,
                    reason="no-record",
                    detail="the state file has no record of this visualization",
                    revision=0,
                    where=f"{spec}:{line + 6}:11",
                )
            )
    state = PlanWarning(
        kind="state",
        aoi_id="",
        aoi_name="",
        message=f"the state has no records, yet {len(rollbacks)} rollbacks are planned",
    )
    undeclared = tuple(
        PlanWarning(kind="undeclared", aoi_id=a.aoi_id, aoi_name=a.aoi_name, message="x")
        for a in aois[:40]
    )
    return Plan(
        api_url="https://api.pixxel.space",
        aois=tuple(aois),
        creates=tuple(creates),
        rollbacks=tuple(rollbacks),
        warnings=(state, *undeclared),
    )


def test_markdown_400_aois_list_every_change_within_githubs_limit() -> None:
    """Acceptance: 400 AOIs x 3 changes: all 1,200 listed in one comment, the warning that
    explains the rollbacks at the top; details and the other warnings give way first."""
    plan = review_plan(400)
    assert len(plan.changes) == 1_200
    md = render_markdown(plan, details_url="https://ci.example/runs/7")
    assert md_length(md) < GITHUB_COMMENT_LIMIT
    assert md.startswith("### reconciler plan: 600 to create, 600 to roll back, 41 warnings")
    assert len(change_list(md)) == 1_200
    top = md.index("`+` create a visualization")
    assert md.index("the state has no records, yet 600 rollbacks are planned") < top
    assert "Every change is listed." in md and "[!NOTE]" in md and "[!WARNING]" not in md
    assert "Why the rollbacks: no record that this tool made the legend auto-computed" in md
    assert "+ EVI over AOI-00001-0, AOI-00001-1 … (4 assets)" in md
    assert "[The whole plan](https://ci.example/runs/7) is in the CI job" in md
    list(fences(md))  # every fence that opens, closes


def test_markdown_3000_aois_stay_within_the_limit_and_say_what_they_cut() -> None:
    plan = review_plan(3_000)
    md = render_markdown(plan)
    assert md_length(md) < GITHUB_COMMENT_LIMIT
    listed = len(change_list(md))
    assert 1_000 < listed < 9_000
    note = re.search(r"Not shown: ([\d,]+) of 9,000 changes \(([^)]*)\)", md)
    assert note, md[:2000]
    assert int(note.group(1).replace(",", "")) == 9_000 - listed
    # Cut by whole AOIs, and counted per spec file.
    assert "`specs/shard-03.yaml`: 150 AOIs, 450 changes" in note.group(2)
    assert note.group(2).endswith("and 8 more spec files")
    assert "[!WARNING]" in md and md.index("[!WARNING]") < md.index("<details")
    assert f"… and {9_000 - listed:,} more changes on" in md
    assert change_list(md)[-1].startswith("! NDVI")  # the AOI's last line: a whole AOI


def test_markdown_cuts_details_then_warnings_then_the_list() -> None:
    plan = huge_plan(n_aois=30, per_aoi=4, warnings_per_aoi=20)
    full = render_markdown(plan, max_chars=10**7)
    assert "Not shown" not in full
    bare = render_markdown(dataclasses.replace(plan, warnings=()), max_chars=10**7)
    without_details = bare.split("<details><summary>Details")[0]
    # Room for the list and some warnings: no details, warnings cut from the end.
    limit = md_length(without_details) + 3_000
    md = render_markdown(plan, max_chars=limit, details_url="https://ci.example/job/7")
    assert md_length(md) < limit
    assert len(change_list(md)) == 120 and "# spec:" not in md
    kept = md.count("\n* Field-")
    assert 0 < kept < 600
    assert re.search(rf"Not shown: the details of 30 AOIs, {600 - kept} warnings\.", md)
    assert f"… and {600 - kept} more warnings, not shown" in md
    assert "[The whole plan](https://ci.example/job/7)" in md


def test_markdown_a_single_huge_aoi_is_cut_inside_its_changes() -> None:
    plan = huge_plan(n_aois=1, per_aoi=3000, warnings_per_aoi=0)
    md = render_markdown(plan)
    assert md_length(md) < GITHUB_COMMENT_LIMIT
    shown = len(change_list(md))
    assert shown > 500
    assert f"… and {3000 - shown:,} more changes on 1 AOI, not listed here" in md
    assert f"Not shown: {3000 - shown:,} of 3,000 changes (the rest of `specs/0.yaml`" in md
    # One way of writing numbers from the heading down; without --details-url the note
    # promises nothing about a CI job.
    assert md.startswith("### reconciler plan: 1,500 to create, 1,500 to roll back")
    assert "CI job" not in md and "`reconciler show` shows a saved plan in full" in md


def test_markdown_fits_whatever_the_limit() -> None:
    plan = huge_plan(n_aois=40, per_aoi=10)
    full = render_markdown(plan, max_chars=10**7)
    assert "Not shown" not in full
    for limit in (MIN_MARKDOWN_CHARS, 5_000, 20_000, len(full), len(full) + 1):
        md = render_markdown(plan, max_chars=limit)
        assert len(md) < limit
        assert md.startswith("### reconciler plan: 200 to create, 200 to roll back")
        assert ("Not shown" in md) == (len(full) >= limit)
        assert md.endswith("<!-- reconciler-plan -->\n")
        _changes_before_warnings(md)


def test_markdown_small_plans_open_their_details_big_ones_do_not() -> None:
    small = render_markdown(realistic_plan())
    assert "Details, with the spec position of each change:" in small
    big = render_markdown(huge_plan(n_aois=4, per_aoi=10))
    assert "<details><summary>Details of the changes (4 AOIs)" in big


def test_markdown_empty_plan() -> None:
    md = render_markdown(empty_plan_with_warnings())
    assert md.startswith("### reconciler plan: no changes (2 warnings, 11 unchanged, 3 ignored)\n")
    assert "<details open>" not in md and md.count("<details>") == 1
    assert "* Nagpur-Farms (1a3cd9bf): declared visualization 'SAVI' is still being created" in md


def test_markdown_says_at_the_top_which_aois_the_plan_could_not_read() -> None:
    unreadable = PlanWarning(
        kind="unreadable",
        aoi_id="aoi-x",
        aoi_name="Secret-Farm",
        message="could not be read, so nothing is planned for this AOI: 403",
    )
    plan = realistic_plan()
    plan = dataclasses.replace(plan, warnings=(*plan.warnings, unreadable))
    md = render_markdown(plan, max_chars=MIN_MARKDOWN_CHARS + 500)
    assert "This plan is incomplete: 1 AOI could not be read" in md
    assert md.index("[!CAUTION]") < md.index("`+` create a custom index or a visualization")
    assert "`Secret-Farm`" in md and "No longer matched by a selector" not in md


def test_markdown_refuses_a_limit_too_small_for_the_summary() -> None:
    with pytest.raises(ConfigError, match="at least"):
        render_markdown(realistic_plan(), max_chars=MIN_MARKDOWN_CHARS - 1)


# --- custom indices and legends ---------------------------------------------------------------


def test_text_shows_the_custom_indices_first_with_what_the_api_is_asked_for() -> None:
    out = render_text(realistic_plan())
    indices = out[out.index("Custom indices: 1 to create, 1 warning\n") : out.index("\nAOI ")]
    assert "  # spec: specs/indices.yaml:2:5\n  + create custom index NDRE\n" in indices
    for line in (
        "expression     (B08-B05)/(B08+B05)",
        "type           index",
        "rescale        [-1, 1]",
        "colormap       rdylgn",
        "satellite      pixxel-td",
        "description    Red-edge NDVI, for crop stress",
    ):
        assert f"\n      {line}\n" in indices
    # The index that differs is told with the indices, not under some AOI.
    assert "  * custom index 'CIre' (7c6b5a49-3827-4165-9f4e-3d2c1b0a9f8e) exists but" in indices
    assert "  + create a custom index or a visualization\n" in out


def test_text_a_create_names_the_new_index_it_is_over_and_the_legends_it_gets() -> None:
    out = render_text(realistic_plan())
    ndre = out[out.index("  # spec: specs/nagpur.yaml:21:7") :]
    ndre = ndre[: ndre.index("\n\n")]
    assert ndre.splitlines()[1:] == [
        "  + create NDRE visualization",
        "      index          NDRE: a new custom index, created first",
        "      assets         all assets (API default)",
        "      legends        dynamic 2024-07-03, 2024-07-17: 5 auto-computed bins",
        "                     set once it is usable, new or adopted",
    ]
    # The placeholder id is the plan's business, never the reader's.
    assert NEW_INDEX_PREFIX not in out and NEW_INDEX_PREFIX not in render_markdown(realistic_plan())


def test_text_shows_every_legend_change_with_its_legend_reason_and_detail() -> None:
    plan = realistic_plan()
    out = render_text(plan)
    for change in plan.legends:
        block = out[out.index(f"  # spec: {change.where}\n") :].split("\n\n")[0]
        assert f"  ~ set {change.index_name} legends as declared\n" in block
        assert f"visualization  {change.visualization_id}\n" in block
        assert f"mode           {change.mode}\n" in block
        assert LEGEND_REASON_TEXT[change.reason] in block
        assert change.detail in block
    assert (
        "legend         2 ranges: -1 … 0.2 #d7191c 'Bare'; 0.2 … 1 #1a9641 'Green'\n"
        "      reason         the legend was changed since this tool set it\n"
        "      detail         the legend of 2025-11-14 was changed: range 2 is #ff0000, not #1a9641"
    ) in out
    # Two legends in one change: each after the dates it is for.
    assert "legends        2024-03-02: 2 ranges: -1 … 0.2 #d7191c 'Bare';" in out
    assert "\n                     2024-06-01, 2024-09-14: 3 ranges: -1 … 0 #8c510a 'Dry';" in out
    assert "  ~ set custom legends as declared\n" in out


def test_text_counts_indices_and_legends_only_when_there_are_some() -> None:
    legends_only = dataclasses.replace(realistic_plan(), indices=(), creates=(), rollbacks=())
    out = render_text(legends_only)
    assert out.endswith(
        "\nPlan: 0 to create, 0 to roll back, 2 legends to set, 5 warnings, 11 unchanged, "
        "3 ignored.\n"
    )
    assert "AOI Pune-East (8ee03236): 1 legend to set, 1 warning, 1 unchanged\n" in out
    assert "create a custom index" not in out and "  + " not in out
    one_index = Plan(indices=(NDRE,))
    assert render_text(one_index).endswith(
        "Plan: 1 custom index to create, 0 to create, 0 to roll back, 0 warnings, 0 unchanged.\n"
    )
    assert "  + create a custom index\n" in render_text(one_index)


def test_markdown_lists_index_creates_first_and_legend_changes_with_their_reasons() -> None:
    md = render_markdown(realistic_plan())
    listed = change_list(md)
    assert listed[0] == "+ NDRE: (B08-B05)/(B08+B05), type index, rescale [-1, 1], colormap rdylgn"
    assert "<code>specs/indices.yaml</code>: 1 custom index to create</summary>" in md
    assert md.index("@@ custom indices @@") < md.index("@@ Bengaluru-North @@")
    assert "+ NDRE (new custom index) over all assets · custom legends: dynamic" in listed
    # The commonest reason is said once above the list and left off its lines.
    assert "~ NDWI dynamic 2025-11-14: 2 ranges" in listed
    assert "~ NDVI dynamic 2024-03-02, 2024-06-01, 2024-09-14: 2 different legends · no record" in (
        listed
    )
    assert (
        "Why the legends: unmarked: the legend was changed since this tool set it (**1**) · "
        "`no record`: no record that this tool set this legend (**1**)."
    ) in md
    assert "`~` set custom legends as declared" in md
    assert "<details open><summary>Custom indices: 1 to create</summary>" in md
    # Without legend changes the symbols line says nothing of them.
    assert "`~`" not in render_markdown(dataclasses.replace(realistic_plan(), legends=()))


def test_markdown_a_plan_of_only_an_index_that_differs_has_no_changes() -> None:
    differs = next(w for w in realistic_plan().warnings if w.kind == "index-differs")
    md = render_markdown(Plan(warnings=(differs,)))
    assert md.startswith(
        "### reconciler plan: nothing to change, 1 custom index differs (1 warning, 0 unchanged)\n"
    )
    assert "\n* custom index 'CIre' (7c6b5a49-3827-4165-9f4e-3d2c1b0a9f8e) exists but" in md
    out = render_text(Plan(warnings=(differs,)))
    assert "\nCustom indices: 1 warning\n" in out and "AOI" not in out
    # Apply cannot change it, yet it is not in sync: neither format says the API matches.
    for shown in (md, out):
        assert "already matches" not in shown
        assert "the live API does not match the specs" in " ".join(shown.split())
    other = dataclasses.replace(differs, message="another", where="specs/i.yaml:9:5")
    assert "2 custom indices differ (2 warnings" in render_markdown(Plan(warnings=(differs, other)))


def custom_review_plan(n_aois: int) -> Plan:
    """``review_plan`` with three custom indices to create and a legend to set on every AOI."""
    plan = review_plan(n_aois)
    indices = tuple(
        dataclasses.replace(NDRE, name=f"NDRE-{n}", where=f"specs/indices.yaml:{2 + 9 * n}:5")
        for n in range(3)
    )
    legends = tuple(
        LegendChange(
            aoi_id=r.aoi_id,
            aoi_name=r.aoi_name,
            visualization_id=r.visualization_id,
            index_id=r.index_id,
            index_name=r.index_name,
            mode="theoretical",
            dates=r.dates,
            legends=(LegendTarget("theoretical", r.dates, WET_DRY),),
            reason="no-record",
            detail="",
            where=r.where,
        )
        for r in plan.rollbacks
        if r.mode == "dynamic"
    )
    return dataclasses.replace(plan, indices=indices, legends=legends)


def test_markdown_cut_counts_index_creates_and_legend_changes_and_keeps_indices_first() -> None:
    plan = custom_review_plan(3_000)
    total = len(plan.all_changes)
    assert total == 3 + 9_000 + 3_000
    md = render_markdown(plan)
    assert md_length(md) < GITHUB_COMMENT_LIMIT
    assert md.startswith(
        "### reconciler plan: 3 custom indices to create, 4,500 to create, 4,500 to roll back, "
        "3,000 legends to set, "
    )
    listed = change_list(md)
    assert [line.split(":")[0] for line in listed[:3]] == ["+ NDRE-0", "+ NDRE-1", "+ NDRE-2"]
    assert "~ NDVI theoretical" in listed[6]
    note = re.search(rf"Not shown: ([\d,]+) of {total:,} changes \(([^)]*)\)", md)
    assert note, md[:2000]
    assert int(note.group(1).replace(",", "")) == total - len(listed)
    # Every AOI shown is shown whole: its create, rollbacks and legend.
    assert listed[-1].startswith("~ NDVI")
    assert "`specs/indices.yaml`" not in note.group(2)  # listed whole, first


def test_markdown_a_comment_too_small_for_the_indices_counts_them_as_cut() -> None:
    indices = tuple(
        dataclasses.replace(NDRE, name=f"Index-{n:03d}", where=f"specs/indices.yaml:{n}:5")
        for n in range(200)
    )
    md = render_markdown(Plan(indices=indices), max_chars=MIN_MARKDOWN_CHARS)
    assert md_length(md) < MIN_MARKDOWN_CHARS
    listed = change_list(md)
    assert 0 < len(listed) < 200
    assert re.search(
        rf"Not shown: {200 - len(listed)} of 200 changes \(the rest of `specs/indices.yaml`: "
        rf"{200 - len(listed)} custom indices\)",
        md,
    )
    assert f"<code>specs/indices.yaml</code>: {len(listed)} of 200 custom indices to create" in md


def test_markdown_details_name_the_custom_indices_among_what_is_cut() -> None:
    plan = dataclasses.replace(huge_plan(n_aois=30, per_aoi=4, warnings_per_aoi=0), indices=(NDRE,))
    full = render_markdown(plan, max_chars=10**7)
    assert "<details><summary>Details of the changes (the custom indices and 30 AOIs)" in full
    without_details = full.split("<details><summary>Details")[0]
    md = render_markdown(plan, max_chars=md_length(without_details) + 400)
    assert "Not shown: the details of the custom indices and 30 AOIs." in md
    # Cut from the end: the custom indices, first, keep their details longest.
    md = render_markdown(plan, max_chars=(md_length(without_details) + md_length(full)) // 2)
    shown = re.search(r"Details of the changes \(the custom indices and (\d+) of 30 AOIs\)", md)
    cut = re.search(r"Not shown: the details of (\d+) AOIs\.", md)
    assert shown and cut and int(shown.group(1)) + int(cut.group(1)) == 30


def hostile_custom_plan() -> Plan:
    """A custom index and legend labels that try to break fences, HTML and terminals."""
    index = dataclasses.replace(
        NDRE, name="````NDRE|<b>", expression="(B08```B05)\x1b[31m", colormap="<script>"
    )
    label = LegendContent(items=(LegendItemDecl(0, 1, "#000000", "```\n<b>@team</b>\u202e"),))
    legend = LegendChange(
        aoi_id=BLR,
        aoi_name="Bengaluru-North",
        visualization_id=NDWI_BLR,
        index_id=NDWI,
        index_name="NDWI",
        mode="dynamic",
        dates=("2025-11-14",),
        legends=(LegendTarget("dynamic", ("2025-11-14",), label),),
        reason="edited",
        detail="range 1 is ``` <b>x</b>\x07",
        where="specs/bengaluru.yaml:24:11",
    )
    return Plan(indices=(index,), legends=(legend,))


def test_hostile_indices_and_legends_stay_inside_their_fences_and_out_of_terminals() -> None:
    plan = hostile_custom_plan()
    out = render_text(plan)
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "(B08```B05)\\x1b[31m" in out and "\\u202e" in out
    md = render_markdown(plan)
    blocks = list(fences(md))
    in_fence = {n for start, end, _ in blocks for n in range(start, end + 1)}
    loose = [line for n, line in enumerate(md.split("\n")) if n not in in_fence]
    assert not [line for line in loose if "<b>" in line or "<script>" in line]
    bodies = "\n".join("\n".join(body) for _, _, body in blocks)
    assert "````NDRE|<b>: (B08```B05)" in bodies and "'```\\n<b>@team</b>\\u202e'" in bodies
    assert "\x1b" not in md and "\u202e" not in md


def test_drift_tells_a_custom_index_on_no_aoi_and_a_legend_on_its_aoi() -> None:
    found = Drift(
        (
            Finding(
                "moved",
                BLR,
                "Bengaluru-North",
                "set the dynamic legends of NDWI (2025-11-14)",
                "changed since this tool set it",
                NDWI_BLR,
                "specs/bengaluru.yaml:24:11",
            ),
            Finding(
                "pending",
                "",
                "",
                "create custom index NDRE",
                "declared, not created yet",
                where="specs/indices.yaml:2:5",
            ),
        )
    )
    text = render_drift_text(realistic_plan(), found)
    assert (
        "\nmoved (1):\n  AOI Bengaluru-North: set the dynamic legends of NDWI (2025-11-14): "
        "changed since this tool set it\n    # spec: specs/bengaluru.yaml:24:11\n"
    ) in text
    assert (
        "\npending (1):\n  create custom index NDRE: declared, not created yet\n"
        "    # spec: specs/indices.yaml:2:5\n"
    ) in text
    md = render_drift_markdown(realistic_plan(), found)
    assert "\n- **pending** create custom index NDRE: declared, not created yet (`specs/" in md


# --- json -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plan",
    [
        realistic_plan(),
        empty_plan_with_warnings(),
        hostile_plan(),
        hostile_custom_plan(),
        Plan(),
        huge_plan(5, 4),
    ],
    ids=["realistic", "empty", "hostile", "hostile-custom", "blank", "huge"],
)
def test_json_round_trips(plan: Plan) -> None:
    out = render_json(plan)
    assert out.endswith("}\n")
    assert planfile.loads(out) == plan


def test_json_is_versioned_and_in_a_stable_order() -> None:
    data = json.loads(render_json(realistic_plan()))
    assert list(data)[:2] == ["format_version", "summary"]
    assert data["format_version"] == 8
    assert data["summary"] == {
        "index": 1,
        "create": 4,
        "rollback": 4,
        "legend": 2,
        "warning": 5,
        "unchanged": 11,
        "ignored": 3,
        "unreadable": 0,
    }
    assert list(data)[-1] == "checksum"
    assert render_json(realistic_plan()) == render_json(realistic_plan())


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_json_doc_describes_every_field() -> None:
    if not DOCS.exists():
        pytest.fail(f"{DOCS} documents the JSON format and must exist")
    doc = DOCS.read_text(encoding="utf-8")
    data = planfile.document(with_selectors(realistic_plan()))
    data.pop("observed")  # its keys are AOI ids, not fields
    desired = data.pop("desired")  # the same, then identity keys
    data["desired"] = [v for vizs in desired.values() for v in vizs.values()]
    missing = sorted(k for k in _keys(data) if f"`{k}`" not in doc)
    assert not missing, f"docs/plan-json.md does not document: {missing}"
    assert "format_version" in doc and "`observed`" in doc


def test_report_doc_names_every_outcome_summary_key_and_change() -> None:
    doc = (DOCS.parent / "report-json.md").read_text(encoding="utf-8")
    summary = next(line for line in doc.splitlines() if line.startswith("| `summary` |"))
    for outcome in OUTCOMES:
        assert f"`{outcome.replace(' ', '_')}`" in summary, outcome
    item = doc[doc.index("## Item") : doc.index("## `error`")]
    for outcome in OUTCOMES:
        assert f"`{outcome}`" in item, outcome
    for change in typing.get_args(typing.get_type_hints(ItemResult)["change"]):
        assert f"`{change}`" in item, change


# --- selectors --------------------------------------------------------------------------------


def with_selectors(plan: Plan, count: int = 2, aois: int = 3) -> Plan:
    names = tuple(
        AoiName(f"00000000-0000-4000-8000-{n:012d}", f"Farm-{n:02d}") for n in range(aois)
    )
    selectors = tuple(
        SelectorSummary(
            key=f"names: Farm-*; projects: p{n}",
            where=f"specs/farms.yaml:{2 + 5 * n}:12",
            matched=names,
            unmatched=(AoiName("00000000-0000-4000-8000-999999999999", "Old-\x1b[31mFarm"),),
        )
        for n in range(count)
    )
    gone = SelectorSummary(key="names: Gone-*", where=None, matched=(), unmatched=names[:1])
    return dataclasses.replace(plan, selectors=(*selectors, gone))


def test_text_lists_what_each_selector_matched() -> None:
    text = render_text(with_selectors(realistic_plan(), count=1, aois=12))
    section = text[text.index("Selectors (which AOIs each one matched):") :]
    lines = section.splitlines()
    assert lines[1] == (
        "  specs/farms.yaml:2:12 (names: Farm-*; projects: p0): 12 AOIs: Farm-00, Farm-01, Farm-02,"
    )
    assert lines[2].startswith("      Farm-03,") and lines[2].endswith("Farm-09, … (2 more)")
    assert lines[3] == "    no longer matched since the last apply: Old-\\x1b[31mFarm"
    assert lines[4] == "  no longer in the specs (names: Gone-*): no AOI"
    assert all(len(line) <= 100 for line in lines)
    assert "\x1b" not in section


def test_markdown_keeps_the_selectors_collapsed_and_bounded() -> None:
    plan = with_selectors(realistic_plan(), count=500, aois=400)
    markdown = render_markdown(plan)
    assert len(markdown) < GITHUB_COMMENT_LIMIT
    assert "<details><summary>501 selectors</summary>" in markdown
    assert "… and 481 more selectors (see --format json)" in markdown
    assert markdown.count("Farm-09, … (390 more)") == 20


def test_markdown_tells_aois_no_longer_matched_from_unchanged_ones() -> None:
    old = PlanWarning(
        kind="unmatched",
        aoi_id="00000000-0000-4000-8000-999999999999",
        aoi_name="Old-Farm",
        message="no longer matched by the selector (names: Farm-*), which matched it at the "
        "last apply, and nothing in the specs declares it now",
        where="specs/farms.yaml:2:12",
    )
    plan = dataclasses.replace(realistic_plan(), warnings=(old,))
    markdown = render_markdown(plan)
    assert "(0 unchanged)" not in markdown  # it was not planned at all
    assert "No longer matched by a selector, so not planned (see the warnings): `Old-Farm`." in (
        markdown
    )


def test_saved_plans_keep_their_selectors() -> None:
    plan = with_selectors(realistic_plan())
    assert planfile.loads(render_json(plan)) == plan


# --- dispatch ---------------------------------------------------------------------------------


def test_formats_and_render_dispatch() -> None:
    plan = realistic_plan()
    assert list(FORMATS) == ["text", "markdown", "json"]
    assert render(plan, "text") == render_text(plan)
    assert render(plan, "text", color=True) == render_text(plan, color=True)
    assert render(plan, "markdown") == render_markdown(plan)
    assert render(plan, "json") == render_json(plan)
    with pytest.raises(ConfigError, match="unknown plan format 'yaml'"):
        render(plan, "yaml")


# --- properties -------------------------------------------------------------------------------

_names = st.text(min_size=1, max_size=30)
_dates = st.lists(st.dates().map(str), min_size=1, max_size=4, unique=True).map(
    lambda d: tuple(sorted(d))
)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    n = draw(st.integers(min_value=0, max_value=6))
    aois = [AoiSummary(f"aoi-{i}", draw(_names), 3, draw(st.integers(0, 3))) for i in range(n)]
    creates, rollbacks, legends, warnings = [], [], [], []
    indices = [
        dataclasses.replace(NDRE, name=f"{draw(_names)}-{k}", expression=draw(_names), where=where)
        for k, where in enumerate(draw(st.lists(_names, max_size=4)))
    ]
    for a in aois:
        for _ in range(draw(st.integers(0, 30))):
            creates.append(
                Create(
                    aoi_id=a.aoi_id,
                    aoi_name=a.aoi_name,
                    index_id="i",
                    index_name=draw(_names),
                    assets=None,
                    resolution=10.0,
                    where=draw(_names),
                )
            )
        for _ in range(draw(st.integers(0, 30))):
            rollbacks.append(
                Rollback(
                    aoi_id=a.aoi_id,
                    aoi_name=a.aoi_name,
                    visualization_id=draw(_names),
                    index_id="i",
                    index_name=draw(_names),
                    mode="dynamic",
                    dates=draw(_dates),
                    reason="changed",
                    detail=draw(st.text(max_size=200)),
                    revision=0,
                    where="s.yaml:1:1",
                )
            )
        for _ in range(draw(st.integers(0, 10))):
            dates = draw(_dates)
            label = LegendContent(items=(LegendItemDecl(0, 1, "#000000", draw(_names)),))
            legends.append(
                LegendChange(
                    aoi_id=a.aoi_id,
                    aoi_name=a.aoi_name,
                    visualization_id=draw(_names),
                    index_id="i",
                    index_name=draw(_names),
                    mode="dynamic",
                    dates=dates,
                    legends=(LegendTarget("dynamic", dates, label),),
                    reason="edited",
                    detail=draw(st.text(max_size=200)),
                    where=draw(_names),
                )
            )
        if draw(st.booleans()):
            warnings.append(
                PlanWarning(
                    kind="undeclared",
                    aoi_id=a.aoi_id,
                    aoi_name=a.aoi_name,
                    message=draw(_names),
                )
            )
    return Plan(
        indices=tuple(indices),
        creates=tuple(creates),
        rollbacks=tuple(rollbacks),
        legends=tuple(legends),
        warnings=tuple(warnings),
        aois=tuple(aois),
    )


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans(), limit=st.integers(MIN_MARKDOWN_CHARS, 30_000))
def test_properties_hold_for_any_plan(plan: Plan, limit: int) -> None:
    md = render_markdown(plan, max_chars=limit)
    assert len(md.encode("utf-16-le")) // 2 < limit
    assert md.startswith("### reconciler plan: ")
    list(fences(md))  # raises if a fence never closes
    # Every change, custom indices and legends included, is listed or counted as not shown.
    listed = len(change_list(md))
    cut = re.search(r"Not shown: ([\d,]+) of ([\d,]+) changes?", md)
    left = int(cut.group(1).replace(",", "")) if cut else 0
    assert listed + left == len(plan.all_changes)
    assert not cut or int(cut.group(2).replace(",", "")) == len(plan.all_changes)
    text = render_text(plan)
    assert "\x1b" not in text
    assert text.endswith(f"{plan.summary()['unchanged']} unchanged.\n")
    assert planfile.loads(render_json(plan)) == plan
