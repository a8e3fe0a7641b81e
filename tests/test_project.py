"""The project's own promises: README commands, CI script and shipped schema stay in step."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.planning import run_cli

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    """The first two ```sh blocks of the README: install-and-run, then the tests."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [block.strip() for block in blocks[:2]]


def test_readme_opens_with_the_two_commands_a_newcomer_needs() -> None:
    run, tests = _readme_commands()
    assert "pip install -e ." in run and run.endswith("reconciler plan --sandbox")
    assert tests == "pip install --upgrade pip && pip install -e '.[test]' && python -m pytest"


def test_ci_runs_exactly_what_the_readme_says() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    run, tests = _readme_commands()
    install_and_run = run.split("&& ", 2)[-1]  # after creating and activating the venv
    assert install_and_run.replace("pip install -e .", "pip install -q -e .") in script
    assert tests.replace("pip install ", "pip install -q ") in script


def test_shipped_schema_matches_the_spec_models() -> None:
    result = run_cli("schema")
    assert result.exit_code == 0
    shipped = json.loads((ROOT / "specs" / "reconciler.schema.json").read_text())
    assert json.loads(result.output) == shipped, (
        "specs/reconciler.schema.json is out of date: "
        "run reconciler schema --out specs/reconciler.schema.json"
    )


def test_readme_links_the_example_pipelines_and_every_link_resolves() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(((?:examples|docs)/[^)#]*)\)", readme)
    assert "examples/github/" in links and "examples/gitlab/" in links
    for link in links:
        assert (ROOT / link).exists(), f"README links {link}, which does not exist"
    for example in ("github", "gitlab"):
        text = (ROOT / "examples" / example / "README.md").read_text()
        for link in re.findall(r"\]\(([^)#:]+)\)", text):
            assert (ROOT / "examples" / example / link).exists(), f"{example}: {link}"


def test_spec_reference_describes_every_key_and_its_examples_are_valid(tmp_path: Path) -> None:
    from reconciler.spec.load import validate_specs
    from reconciler.spec.models import SpecFile

    doc = (ROOT / "docs" / "spec-reference.md").read_text(encoding="utf-8")
    schema = SpecFile.model_json_schema()
    keys = {key for d in [schema, *schema["$defs"].values()] for key in d.get("properties", {})}
    missing = sorted(k for k in keys if f"`{k}`" not in doc)
    assert not missing, f"docs/spec-reference.md does not describe: {missing}"
    assert "docs/spec-reference.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    # Every example that is a whole spec file is a valid one.
    whole = [
        b
        for b in re.findall(r"```yaml\n(.*?)```", doc, re.S)
        if b.startswith(("version", "aois", "selectors", "ignore", "indices"))
    ]
    assert len(whole) >= 3
    for n, block in enumerate(whole):
        (tmp_path / f"{n}.yaml").write_text(block, encoding="utf-8")
    report = validate_specs([str(tmp_path)])
    assert report.problems == ()


def test_the_constraints_file_pins_every_dependency_within_its_range() -> None:
    """constraints.txt (what the example pipelines install with) names one version of every
    runtime dependency and of the [s3] extra, each allowed by pyproject.toml."""
    import tomllib

    from packaging.requirements import Requirement

    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[name.lower().replace("_", "-")] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["s3"]]
    for spec in map(Requirement, wanted):
        name = spec.name.lower().replace("_", "-")
        assert name in pins, f"constraints.txt does not pin {name}"
        assert spec.specifier.contains(pins[name]), f"{name}=={pins[name]} is not {spec}"
