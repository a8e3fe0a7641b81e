"""``plan --changed-since REF``: a pull request's plan reads only the AOIs it touched, says so,
and is applied like any other plan. Real git repositories, the emulator over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.core.changes import changed_scope
from reconciler.core.plan import Plan
from reconciler.emulator import Emulator
from reconciler.errors import ConfigError, ResolutionError
from reconciler.render.markdown import render_markdown
from reconciler.render.text import render_text
from reconciler.run.engine import Engine
from reconciler.run.settings import Settings
from reconciler.spec.decls import Specs
from reconciler.spec.load import load_specs
from tests.planning import (
    API_KEY,
    NDVI_ROLLED_BACK,
    PUNE_NDWI_NDVI,
    SPEC,
    aoi,
    client_for,
    run_cli,
    spec,
    viz,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **_GIT_ENV},
        timeout=60,
    )
    return done.stdout


def commit(repo: Path, message: str = "specs") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A spec repository, the current directory, with SPEC committed on its main branch."""
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "team.yaml").write_text(SPEC)
    commit(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def plan_since(emulator: Emulator, ref: str = "main") -> tuple[Plan, int]:
    """The plan of specs/ changed since ``ref``, and the requests it took."""
    emulator.counter.reset()
    with client_for(emulator) as client:
        engine = Engine(Settings(api_url=emulator.url, state=Path("state.json")), client=client)
        plan = engine.plan(["specs"], changed_since=ref)
    return plan, emulator.counter.total


def test_unchanged_specs_read_no_aoi(repo: Path, emulator: Emulator) -> None:
    (repo / "specs" / "team.yaml").write_text("# reviewed\n" + SPEC + "\n\n")  # no declaration
    plan, requests = plan_since(emulator)
    assert plan.changed_since is not None and plan.changed_since.aois == 0
    assert not plan.has_changes
    assert requests == 1  # the index listing: custom indices are always planned
    assert "No AOI's declarations changed since main (" in render_text(plan)


def test_a_changed_aoi_is_the_only_one_read_and_the_plan_says_so(
    repo: Path, emulator: Emulator
) -> None:
    changed = spec(
        aoi("Bengaluru-North", NDVI_ROLLED_BACK, viz("True-Color")),
        aoi("Pune-East", viz("NDWI"), viz("NDVI"), viz("EVI")),
    )
    (repo / "specs" / "team.yaml").write_text(changed)
    plan, requests = plan_since(emulator)
    assert plan.targets == ("Pune-East",)
    assert {c.aoi_name for c in plan.changes} == {"Pune-East"}
    # One AOI looked up by name, the index listing, its visualizations (and its assets):
    # not the AOI listing's pages, not Bengaluru-North.
    assert requests <= 4, requests
    assert emulator.counter.count("GET", "/v0/aois/{aoi_id}/visualizations") == 1
    text = " ".join(render_text(plan).split())
    assert "Only what changed since main (" in text and "is planned: 1 AOI;" in text
    markdown = render_markdown(plan)
    assert "> [!NOTE]\n> Only what changed since `main` (" in markdown


def test_moving_declarations_between_files_changes_nothing(repo: Path, emulator: Emulator) -> None:
    (repo / "specs" / "team.yaml").write_text(spec(PUNE_NDWI_NDVI))
    (repo / "specs" / "bengaluru.yaml").write_text(
        "# split out\n" + spec(aoi("Bengaluru-North", NDVI_ROLLED_BACK, viz("True-Color")))
    )
    plan, _ = plan_since(emulator)
    assert plan.changed_since is not None and plan.changed_since.aois == 0


def test_a_saved_plan_of_the_changes_applies_them_and_says_how_to_plan_again(
    repo: Path, emulator: Emulator
) -> None:
    (repo / "specs" / "team.yaml").write_text(
        spec(
            aoi("Bengaluru-North", NDVI_ROLLED_BACK, viz("True-Color")),
            aoi("Pune-East", viz("NDWI"), viz("NDVI"), viz("EVI")),
        )
    )
    url, key = emulator.url, API_KEY
    planned = run_cli("plan", "--changed-since", "main", "--out", "plan.json", url=url, key=key)
    assert planned.exit_code == 0, planned.output
    saved = json.loads(Path("plan.json").read_text())
    assert saved["changed_since"]["ref"] == "main" and saved["changed_since"]["aois"] == 1
    assert saved["targets"] == ["Pune-East"]
    applied = run_cli("apply", "plan.json", "--yes", url=url, key=key)
    assert applied.exit_code == 0, applied.output
    # Pune-East's two creates; not Bengaluru-North's rollback, which did not change.
    assert "Apply complete: 2 created, 0 adopted, 0 rolled back" in applied.output
    # A plan made stale by the world says to plan the changes again, not everything.
    again = run_cli("apply", "plan.json", "--yes", url=url, key=key)
    assert again.exit_code == 1
    assert "reconciler plan --changed-since main --out plan.json" in again.output


def test_specs_at_the_base_that_do_not_validate_plan_everything(
    repo: Path, emulator: Emulator
) -> None:
    (repo / "specs" / "team.yaml").write_text("aois: [oops\n")
    commit(repo, "broken")
    (repo / "specs" / "team.yaml").write_text(SPEC)
    plan, _ = plan_since(emulator, "HEAD")
    since = plan.changed_since
    assert since is not None and "do not validate (1 problem)" in since.everything
    assert plan.targets == () and since.aois == 2
    assert {c.aoi_name for c in plan.changes} == {"Bengaluru-North", "Pune-East"}
    assert "Every AOI is planned, not only what changed since HEAD" in render_text(plan)


def test_a_new_spec_directory_is_all_new(repo: Path, emulator: Emulator) -> None:
    (repo / "more").mkdir()
    (repo / "more" / "pune.yaml").write_text(spec(PUNE_NDWI_NDVI))
    emulator.counter.reset()
    with client_for(emulator) as client:
        engine = Engine(Settings(api_url=emulator.url, state=Path("state.json")), client=client)
        plan = engine.plan(["more"], changed_since="main")
    assert plan.targets == ("Pune-East",)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("no-such-branch", "no such commit in this checkout. Check its spelling"),
        ("", "needs a git revision"),
        ("--output=/tmp/x", "a revision does not start with '-'"),
    ],
)
def test_a_revision_git_does_not_know_says_how_to_fetch_it(
    repo: Path, emulator: Emulator, ref: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        plan_since(emulator, ref)


def test_outside_a_git_checkout_it_says_so(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "team.yaml").write_text(SPEC)
    result = run_cli("plan", "--changed-since", "main", url=emulator.url, key=API_KEY)
    assert result.exit_code == 1
    assert "--changed-since: git could not find the repository" in result.output
    both = run_cli("plan", "--changed-since", "main", "--target", "Pune-East", url=emulator.url)
    assert both.exit_code == 1 and "leave out --target" in both.output


# --- the scope of a change (pure) ----------------------------------------------------------------


def _specs(tmp_path: Path, name: str, text: str) -> Specs:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_specs([str(path)])


def test_a_changed_selector_an_index_and_ignore_rules_widen_the_scope(tmp_path: Path) -> None:
    index = (
        "indices:\n  - {name: NDRE, expression: (B08-B05)/(B08+B05), expression_type: index,\n"
        "     rescale: [-1, 1], colormap: rdylgn,\n"
        "     satellite: 0005c5bb-0bd2-4c80-9393-4a808341c54c}\n"
    )
    base = index + (
        "selectors:\n  - match: {names: ['Farm-*']}\n    visualizations: [{index: EVI}]\n"
        "aois:\n  - aoi: {name: A}\n    visualizations: [{index: NDRE}]\n"
        "  - aoi: {name: B}\n    visualizations: [{index: NDVI}]\n"
    )
    before = _specs(tmp_path, "a.yaml", base)
    same = _specs(tmp_path, "b.yaml", "# moved\n" + base)
    assert changed_scope(before, same).empty
    selector = _specs(tmp_path, "c.yaml", base.replace("Farm-*", "Farm-?"))
    scope = changed_scope(before, selector)
    # The new selector and the one it replaces: what either matches may change.
    assert (scope.aois, len(scope.selectors), scope.indices) == ((), 2, ())
    new_index = _specs(tmp_path, "d.yaml", base.replace("rdylgn", "viridis"))
    scope = changed_scope(before, new_index)
    assert (scope.aois, scope.selectors, scope.indices) == (("A",), (), ("NDRE",))
    ignore = _specs(tmp_path, "e.yaml", "ignore: [{index: NDWI}]\n" + base)
    assert "ignore rules" in changed_scope(before, ignore).everything


def test_a_file_unchanged_since_the_base_is_checked_once(repo: Path) -> None:
    from reconciler.run.revision import specs_at
    from reconciler.spec.load import CheckedFiles

    (repo / "specs" / "more.yaml").write_text(spec(PUNE_NDWI_NDVI).replace("Pune", "Kochi"))
    checked = CheckedFiles()
    now = load_specs(["specs"], checked=checked)
    base = specs_at("main", ["specs"], checked=checked)
    assert base.specs is not None and base.specs.files == ("specs/team.yaml",)
    # The same file, shown the same way: its declarations are the very same objects.
    assert all(a is b for a, b in zip(base.specs.aois, now.aois[1:], strict=True))
    assert changed_scope(base.specs, now).aois == ("Kochi-East",)


_INDEX = (
    "indices:\n  - {name: Red-Edge, expression: (B08-B05)/(B08+B05), expression_type: index,\n"
    "     rescale: [-1, 1], colormap: rdylgn,\n"
    "     satellite: 0005c5bb-0bd2-4c80-9393-4a808341c54c}\n"
)


def test_a_custom_index_nobody_touched_is_no_change_of_the_pull_request(
    repo: Path, emulator: Emulator
) -> None:
    (repo / "specs" / "indices.yaml").write_text(_INDEX)
    commit(repo, "an index, not made yet")
    plan, _ = plan_since(emulator)
    assert plan.changed_since is not None and plan.changed_since.indices == ()
    assert not plan.has_changes  # it is due, but not this pull request's: the merge job shows it
    (repo / "specs" / "indices.yaml").write_text(_INDEX.replace("rdylgn", "viridis"))
    plan, _ = plan_since(emulator)
    assert [i.name for i in plan.indices] == ["Red-Edge"]
    assert "only the custom indices it changed were read" in " ".join(render_text(plan).split())


def test_an_entry_removed_is_planned_where_something_else_still_declares_the_aoi(
    repo: Path, emulator: Emulator
) -> None:
    (repo / "specs" / "team.yaml").write_text(
        SPEC + "selectors:\n  - match: {names: [Pune-East]}\n    visualizations: [{index: NDWI}]\n"
    )
    commit(repo, "a selector too")
    (repo / "specs" / "team.yaml").write_text(
        spec(aoi("Bengaluru-North", NDVI_ROLLED_BACK, viz("True-Color")))
        + "selectors:\n  - match: {names: [Pune-East]}\n    visualizations: [{index: NDWI}]\n"
    )
    plan, _ = plan_since(emulator)
    assert plan.targets == ("Pune-East",)  # still declared, by the selector
    assert plan.changed_since is not None and plan.changed_since.removed == ("Pune-East",)
    (repo / "specs" / "team.yaml").write_text(
        spec(aoi("Bengaluru-North", NDVI_ROLLED_BACK, viz("True-Color")))
    )
    plan, _ = plan_since(emulator)
    assert plan.targets == ()
    text = " ".join(render_text(plan).split())
    assert "Entries removed for Pune-East: nothing else declares them" in text


def test_a_saved_plan_of_everything_applies_the_indices_it_shows(
    repo: Path, emulator: Emulator
) -> None:
    (repo / "specs" / "team.yaml").write_text("ignore: [{index: EVI}]\n" + SPEC)
    (repo / "specs" / "indices.yaml").write_text(_INDEX)  # declared, used by nothing yet
    url = emulator.url
    planned = run_cli("plan", "--changed-since", "main", "--out", "p.json", url=url, key=API_KEY)
    assert planned.exit_code == 0, planned.output
    assert "Every AOI is planned" in " ".join(planned.output.split())
    applied = run_cli("apply", "p.json", "--yes", url=url, key=API_KEY)
    assert applied.exit_code == 0, applied.output
    assert "(1 custom index)" in applied.output


def test_an_index_declared_no_more_plans_the_aois_that_name_it(
    repo: Path, emulator: Emulator
) -> None:
    (repo / "specs" / "indices.yaml").write_text(_INDEX)
    (repo / "specs" / "team.yaml").write_text(spec(aoi("Pune-East", viz("Red-Edge"))))
    commit(repo, "Pune-East over a custom index")
    (repo / "specs" / "indices.yaml").unlink()
    with pytest.raises(ResolutionError, match="unknown index 'Red-Edge'"):
        plan_since(emulator)  # as the plan of everything says: nothing names it any more


def test_a_secret_in_a_file_at_the_base_is_refused_unread(
    repo: Path, make_emulator: Callable[..., Emulator]
) -> None:
    leaked = "sk-live-0123456789abcdef"
    (repo / "specs" / "oops.yaml").write_text(spec(aoi(leaked, viz("NDVI"))))
    commit(repo, "a leak")
    (repo / "specs" / "oops.yaml").unlink()  # the pull request that removes it
    world = make_emulator(api_keys=(leaked,))
    result = run_cli(
        "plan", "--changed-since", "main", "--out", "p.json", url=world.url, key=leaked
    )
    assert result.exit_code == 0, result.output
    assert leaked not in result.output and leaked not in Path("p.json").read_text()
    assert "Every AOI is planned" in " ".join(result.output.split())  # the base is unreadable


def test_an_apply_of_a_few_aois_looks_them_up_instead_of_listing_every_aoi(
    tmp_path: Path, emulator: Emulator
) -> None:
    from reconciler.run.refresh import refresh
    from tests.planning import PUNE

    specs = _specs(tmp_path, "s.yaml", SPEC)
    read: list[str] = []
    # One AOI a page: the listing would be a request per AOI of the world.
    with client_for(emulator, page_size=1) as client:
        selection, _ = refresh(  # a saved plan's AOI, by id
            specs, client, targets=[PUNE], listener=lambda e: read.append(getattr(e, "label", ""))
        )
    assert [aoi.name for aoi, _ in selection.groups.values()] == ["Pune-East"]
    # By id, then by the name an entry gives it (two AOIs of that name would be an error).
    assert f"AOI {PUNE}" in read and "AOI Pune-East" in read
    assert not [label for label in read if label.startswith("AOIs")]  # no listing page
