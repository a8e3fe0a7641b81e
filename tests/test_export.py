"""export: specs written from the live account, against the emulator; then plan them again."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict, Unpack

import pytest
import yaml
from click.testing import Result

from reconciler.api.types import Aoi
from reconciler.core.export import (
    SCHEMA_FILE,
    SCHEMA_HINT,
    SCHEMA_LINE,
    comment,
    file_names,
    scalar,
)
from reconciler.emulator import Emulator
from reconciler.errors import ConfigError
from reconciler.run.engine import Engine, ExportOptions, ExportResult
from reconciler.run.settings import Settings
from reconciler.spec.load import load_specs
from reconciler.spec.models import SpecFile
from tests.planning import (
    BENGALURU,
    NDVI_BENGALURU_AB,
    client_for,
    make_plan,
    remember_rollback,
    run_cli,
)

#: Small pages, so every listing of the paged world takes several requests.
PAGE = 3

ODD_AOI = 'Odd: "names" #1'
KOCHI = "a4cb9e5f-39ca-5083-b695-e628f4e8019b"
TWIN = "00000000-0000-4000-8000-0000000000aa"


def paged_world() -> str:
    """13 fields over two projects, one AOI with 12 visualizations, and one with odd names."""
    lines = [
        "indices:",
        "  - {name: NDVI, type: preset, expression_type: index, expression: a, rescale: [-1, 1]}",
        "  - {name: NDWI, type: preset, expression_type: index, expression: b, rescale: [-1, 1]}",
        "  - {name: Chl, type: custom, expression_type: index, expression: c, rescale: [0, 5]}",
        "  - {name: TC, type: custom, expression_type: composite, expression: d, rescale: [0, 9]}",
        "projects: [{name: North}, {name: South}]",
        "aois:",
    ]
    for n in range(1, 14):
        lines.append(f"  - name: Field-{n:02d}")
        lines.append(f"    project: {'North' if n <= 7 else 'South'}")
        lines.append("    assets:")
        for k, letter in enumerate("ABC"):
            lines.append(f"      - {{name: F{n}-{letter}, date: 2024-0{k + 1}-{n:02d}}}")
    lines.append("  - name: Big")
    lines.append("    assets:")
    for k in range(14):
        lines.append(
            f"      - {{name: Big-{k:02d}, date: 2024-{k % 12 + 1:02d}-{k // 12 + 1:02d}}}"
        )
    lines.append(f"  - name: {json.dumps(ODD_AOI)}")
    lines.append("    assets:")
    lines += [
        '      - {name: "2024-01-01", date: 2024-02-02}',
        '      - {name: "ÄÖ Ü", date: 2024-03-03}',
        '      - {name: "yes", date: 2024-04-04}',
        "      - {name: Twin-A, date: 2024-05-05}",
        "      - {name: Twin-B, date: 2024-05-05}",
        "      - {name: aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee, date: 2024-06-06}",
    ]
    lines.append("  - {name: Empty, assets: [{name: E-A, date: 2024-01-01}]}")
    lines.append("visualizations:")
    for n in range(1, 14):
        lines.append(f"  - {{aoi: Field-{n:02d}, index: NDVI}}")
    for k in range(12):
        index = ("NDVI", "NDWI", "Chl", "TC")[k % 4]
        assets = ", ".join(f"Big-{j:02d}" for j in range(k, k + 1 + k % 3))
        lines.append(f"  - {{aoi: Big, index: {index}, assets: [{assets}]}}")
    odd = json.dumps(ODD_AOI)
    lines.append(f"  - {{aoi: {odd}, index: NDVI}}")
    lines.append(f'  - {{aoi: {odd}, index: NDWI, assets: ["2024-01-01", "yes", Twin-A]}}')
    lines.append(
        f'  - {{aoi: {odd}, index: TC, assets: ["ÄÖ Ü", aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee]}}'
    )
    return "\n".join(lines) + "\n"


@pytest.fixture
def paged(make_emulator: Callable[..., Emulator], tmp_path: Path) -> Emulator:
    path = tmp_path / "world.yaml"
    path.write_text(paged_world(), encoding="utf-8")
    return make_emulator(world=path)


class ExportFields(TypedDict, total=False):
    """``ExportOptions``' fields."""

    aois: tuple[str, ...]
    all_aois: bool
    out: Path | None
    by_name: bool
    force: bool


def export(
    emulator: Emulator, state: Path, page_size: int = 100, **options: Unpack[ExportFields]
) -> ExportResult:
    with client_for(emulator, page_size=page_size) as client:
        engine = Engine(Settings(api_url=emulator.url, state=state), client=client)
        return engine.export(ExportOptions(**options))


@pytest.mark.parametrize("by_name", [False, True], ids=["by-id", "by-name"])
def test_export_then_plan_shows_no_changes_across_pages(
    paged: Emulator, tmp_path: Path, by_name: bool
) -> None:
    out, state = tmp_path / "exported", tmp_path / "state.json"
    paged.counter.reset()
    result = export(paged, state, PAGE, all_aois=True, out=out, by_name=by_name)
    assert paged.counter.count(route="/v0/aois") == 6  # 16 AOIs, 3 a page
    assert paged.counter.count(route="/v0/aois/{aoi_id}/visualizations") >= 4 + 15
    assert result.aois == 15 and result.visualizations == 13 + 12 + 3
    assert result.without_visualizations == 1  # "Empty"
    assert len(result.files) == 16  # one per AOI, and the schema
    assert not (out / "empty.yaml").exists()
    for path in out.glob("*.yaml"):
        assert path.read_text(encoding="utf-8").splitlines()[0] == SCHEMA_LINE
    schema = json.loads((out / SCHEMA_FILE).read_text(encoding="utf-8"))
    assert schema == SpecFile.model_json_schema()

    plan = make_plan(paged, out, state, page_size=PAGE)
    assert (plan.creates, plan.rollbacks, plan.warnings) == ((), (), ())
    assert sum(a.unchanged for a in plan.aois) == 28


def test_by_name_uses_names_where_they_cannot_be_mistaken(paged: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "odd.yaml"
    export(paged, tmp_path / "state.json", aois=(ODD_AOI,), out=out, by_name=True)
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    (entry,) = data["aois"]
    assert entry["aoi"] == {"name": ODD_AOI}
    by_index = {v["index"]: v["assets"] for v in entry["visualizations"]}
    # A name that reads as a date goes by its date, a UUID-like one too; twins of one date
    # go by name; "yes" stays a string.
    assert [str(a) for a in by_index["NDWI"]] == ["2024-02-02", "yes", "Twin-A"]
    assert [str(a) for a in by_index["TC"]] == ["ÄÖ Ü", "2024-06-06"]
    assert len(by_index["NDVI"]) == 6
    assert make_plan(paged, out, tmp_path / "state.json").creates == ()


def test_aoi_asks_the_api_for_that_aoi_only(paged: Emulator, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    paged.counter.reset()
    export(paged, state, PAGE, aois=("Field-03", "Field-11"))
    assert paged.counter.count(route="/v0/aois") == 2  # one filtered request each, not 6 pages
    with client_for(paged) as client:
        (field,) = client.list_aois(name="Field-05")
    paged.counter.reset()
    result = export(paged, state, PAGE, aois=(field.id,), by_name=True)
    # By id, then by its name: a reference by name needs the name to be unique.
    assert paged.counter.count(route="/v0/aois") == 2
    assert result.text is not None and "  - aoi: {name: Field-05}" in result.text


def test_by_id_comments_name_every_id(emulator: Emulator, tmp_path: Path) -> None:
    result = export(emulator, tmp_path / "state.json", aois=("Bengaluru-North",))
    assert result.text is not None and result.files == ()
    assert f"  - aoi: {BENGALURU} # Bengaluru-North" in result.text
    assert "- index: cb668cf4-b6fc-5c37-a944-84c62fd95299 # NDVI" in result.text
    assert "- 4bbe45b3-ef5d-54f4-ba70-b6700fa56d61 # Bengaluru-A 2024-05-06" in result.text
    assert f"# {NDVI_BENGALURU_AB} (success)" in result.text


def test_export_never_overwrites_without_force(emulator: Emulator, tmp_path: Path) -> None:
    out, state = tmp_path / "specs", tmp_path / "state.json"
    export(emulator, state, all_aois=True, out=out)
    (out / "pune-east.yaml").write_text("# mine\n")
    before = {p.name: p.read_text() for p in out.iterdir()}
    with pytest.raises(ConfigError) as caught:
        export(emulator, state, all_aois=True, out=out)
    assert "refusing to overwrite" in str(caught.value)
    assert "pune-east.yaml" in str(caught.value) and "--force" in str(caught.value)
    assert {p.name: p.read_text() for p in out.iterdir()} == before  # nothing written
    export(emulator, state, all_aois=True, out=out, force=True)
    assert (out / "pune-east.yaml").read_text() != "# mine\n"


def test_an_overwrite_is_refused_before_the_account_is_read(
    paged: Emulator, tmp_path: Path
) -> None:
    out, state = tmp_path / "specs", tmp_path / "state.json"
    out.mkdir()
    (out / "field-07.yaml").write_text("# mine\n")
    paged.counter.reset()
    with pytest.raises(ConfigError, match=r"field-07\.yaml"):
        export(paged, state, PAGE, all_aois=True, out=out)
    # The AOI listing names the files; no AOI's visualizations or assets were read.
    assert paged.counter.count(route="/v0/aois/{aoi_id}/visualizations") == 0
    assert paged.counter.count(route="/v0/aois/{aoi_id}/assets") == 0
    assert [p.name for p in out.iterdir()] == ["field-07.yaml"]

    # One file: refused before a single request.
    paged.counter.reset()
    with pytest.raises(ConfigError, match=r"field-07\.yaml"):
        export(paged, state, all_aois=True, out=out / "field-07.yaml")
    assert paged.counter.count() == 0


def test_an_identical_schema_beside_is_no_overwrite(emulator: Emulator, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    export(emulator, state, aois=("Pune-East",), out=tmp_path / "specs" / "pune.yaml")
    result = export(emulator, state, aois=("Kochi-Coast",), out=tmp_path / "specs" / "kochi.yaml")
    assert [p.name for p in result.files] == ["kochi.yaml", SCHEMA_FILE]
    (tmp_path / "specs" / SCHEMA_FILE).write_text("{}\n")
    with pytest.raises(ConfigError, match=r"reconciler\.schema\.json"):
        export(emulator, state, aois=("Kochi-Coast",), out=tmp_path / "specs" / "k2.yaml")


def test_one_file_for_several_aois_and_an_aoi_without_visualizations(
    emulator: Emulator, tmp_path: Path
) -> None:
    out = tmp_path / "two.yaml"
    result = export(emulator, tmp_path / "s.json", aois=("Kochi-Coast", BENGALURU), out=out)
    assert result.aois == 2 and result.without_visualizations == 0
    specs = load_specs([str(out)])
    assert [a.label for a in specs.aois] == [BENGALURU, "a4cb9e5f-39ca-5083-b695-e628f4e8019b"]
    assert specs.aois[1].visualizations == ()  # asked for by name: written, with nothing


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({}, "say which AOIs to export"),
        ({"all_aois": True, "aois": ("Pune-East",)}, "exclude each other"),
        ({"aois": ("Pune-Est", "Atlantis")}, "'Pune-Est' matches no AOI (closest: Pune-East)"),
    ],
)
def test_bad_selections_are_config_errors(
    emulator: Emulator, tmp_path: Path, options: ExportFields, fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        export(emulator, tmp_path / "s.json", **options)
    assert fragment in str(caught.value)
    assert "Atlantis" in str(caught.value) or "Atlantis" not in str(options)


def test_out_must_fit_its_form(emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        export(emulator, tmp_path / "s.json", all_aois=True, out=tmp_path / "file")
    with pytest.raises(ConfigError, match="is a directory"):
        export(emulator, tmp_path / "s.json", all_aois=True, out=tmp_path / "dir.yaml")


def test_rollbacks_the_state_vouches_for_are_written_commented(
    emulator: Emulator, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    remember_rollback(emulator, state, dates=("2024-05-06", "2024-11-20"), revision=2)
    out = tmp_path / "specs" / "b.yaml"
    export(emulator, state, aois=("Bengaluru-North",), out=out, by_name=True)
    text = out.read_text(encoding="utf-8")
    block = textwrap.dedent(
        """\
        # rollback:
        #   - mode: dynamic
        #     dates: [2024-05-06, 2024-11-20]
        #     revision: 2
        """
    )
    assert textwrap.indent(block, " " * 8) in text
    assert make_plan(emulator, out.parent, state).has_changes is False
    # Uncommented, it plans nothing either: the state's record holds.
    uncommented = text.replace("        # rollback:", "        rollback:")
    out.write_text(uncommented.replace("        #   ", "          "))
    assert load_specs([str(out)]).aois[0].visualizations[0].rollbacks
    assert make_plan(emulator, out.parent, state).has_changes is False


def test_an_edited_visualization_gets_no_rollback_block(emulator: Emulator, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    remember_rollback(emulator, state)
    with client_for(emulator) as client:
        client.update_metadata(
            BENGALURU,
            NDVI_BENGALURU_AB,
            mode="dynamic",
            legend={"2024-05-06": [{"color": "#000000", "label": "x", "min": 0, "max": 1}]},
            dynamic_bins=1,
        )
    result = export(emulator, state, aois=("Bengaluru-North",))
    assert result.text is not None
    assert "# rollback:" not in result.text
    assert "the\n        # visualization changed since (updated_at moved)" in result.text


def test_scalars_read_back_as_the_same_string() -> None:
    for text in [
        "Bengaluru-North",
        "yes",
        "2024-05-06",
        "a: b",
        "#x",
        " pad",
        "\x1b[31m",
        "ä\u202e",
        "1.5",
    ]:
        assert yaml.safe_load(f"v: {scalar(text)}")["v"] == text
    assert scalar("Bengaluru-North") == "Bengaluru-North"
    assert comment("a\nb\x1b") == "a\\x0ab\\x1b"


def test_file_names_are_unique_whatever_the_names() -> None:
    aois = [
        Aoi(id="00000000-0000-4000-8000-000000000001", name="Farm A"),
        Aoi(id="00000000-0000-4000-8000-000000000002", name="farm-a"),
        Aoi(id="00000000-0000-4000-8000-000000000003", name="!!!"),
        Aoi(id="00000000-0000-4000-8000-000000000004", name="Kochi"),
    ]
    names = file_names(aois)
    assert len(set(names.values())) == 4
    assert names[aois[3].id] == "kochi.yaml"
    assert names[aois[2].id] == f"{aois[2].id}.yaml"


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("Zürich Nord", "zurich-nord.yaml"),  # accents folded away
        ("São_Paulo", "sao-paulo.yaml"),
        ("東京 Farms", "東京-farms.yaml"),  # other letters kept
        ("ﬁeld №1", "field-no1.yaml"),  # compatibility forms spelled out
    ],
)
def test_file_names_keep_letters_of_any_script(name: str, file: str) -> None:
    aoi = Aoi(id="00000000-0000-4000-8000-000000000001", name=name)
    assert file_names([aoi]) == {aoi.id: file}


# --- the command line ------------------------------------------------------------------------


def run(emulator: Emulator, *args: str) -> Result:
    return run_cli(*args, url=emulator.url, key="test-key")


def test_cli_export_to_a_directory_then_refuse(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = run(emulator, "export", "--all", "--out", "adopted", "--by-name")
    assert first.exit_code == 0, first.output
    assert (
        "Exported 15 visualizations of 3 AOIs to adopted (4 files, schema included" in first.stderr
    )
    assert "; 1 AOI without visualizations left out)" in first.stderr
    again = run(emulator, "export", "--all", "--out", "adopted")
    assert again.exit_code == 1
    assert "refusing to overwrite" in again.stderr and "Traceback" not in again.output
    plan = run(emulator, "plan", "adopted", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output


@pytest.mark.parametrize("out", [[], ["--out", "-"]], ids=["no-out", "dash"])
def test_cli_export_to_stdout(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(emulator, "export", "--aoi", "Pune-East", "--by-name", *out)
    assert result.exit_code == 0
    # No schema is written beside standard output: the header says how to get it.
    assert result.stdout.startswith(SCHEMA_LINE + "\n" + SCHEMA_HINT + "\n")
    assert "  - aoi: {name: Pune-East}" in result.stdout
    assert "Exported 1 visualization of 1 AOI." in result.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def test_cli_export_hint_works_as_printed_and_names_other_spec_files(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my specs").mkdir()
    (tmp_path / "my specs" / "mine.yaml").write_text("aois: []\n")
    result = run(
        emulator, "export", "--aoi", "Pune-East", "--out", "my specs", "--state", "s t.json"
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.count("\n") == 2  # the summary, and the note about mine.yaml
    assert "Check with: reconciler plan 'my specs' --state 's t.json' --detailed-exitcode" in (
        result.stderr
    )
    assert "Note: my specs also holds 1 other spec file (my specs/mine.yaml)" in result.stderr
    assert "pune-east.yaml" not in result.stderr.split("Note:")[1]


def test_cli_export_refuses_an_out_of_another_format(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(emulator, "export", "--all", "--out", "specs.json")
    assert result.exit_code == 1
    assert "--out specs.json: export writes YAML specs" in result.stderr
    assert not list(tmp_path.iterdir())


def test_one_declaration_for_two_visualizations_of_one_identity_names_both(
    emulator: Emulator, tmp_path: Path
) -> None:
    with emulator.lock:  # the API answers 409 to such a create; the listing may still show two
        first = next(v for v in emulator.world.visualizations if v.id == NDVI_BENGALURU_AB)
        emulator.world.visualizations.append(first.model_copy(update={"id": TWIN}))
    result = export(emulator, tmp_path / "s.json", aois=("Bengaluru-North",))
    assert result.text is not None and result.visualizations == 2  # NDVI once, and the other
    # The first listed is declared; the comment names the other.
    assert f"      # {NDVI_BENGALURU_AB} (success)\n      # also {TWIN}: the same index and " in (
        result.text
    )


def test_two_aois_of_one_name_go_by_id(emulator: Emulator, tmp_path: Path) -> None:
    with emulator.lock:  # the contract calls names unique; the API does not promise it
        kochi = emulator.world.aoi(KOCHI)
        assert kochi is not None
        twin = kochi.model_copy(update={"id": TWIN})
        emulator.world.aois.append(twin)
    with pytest.raises(ConfigError) as caught:
        export(emulator, tmp_path / "s.json", aois=("Kochi-Coast",))
    assert f"2 AOIs have this name ({KOCHI}, {TWIN}): give the id" in str(caught.value)
    result = export(emulator, tmp_path / "s.json", aois=(KOCHI, TWIN), by_name=True)
    assert result.text is not None
    assert f"  - aoi: {KOCHI} # Kochi-Coast" in result.text
    assert f"  - aoi: {TWIN} # Kochi-Coast" in result.text
