"""YAML loading: libyaml's fast path reads exactly what the pure-Python parser reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reconciler.errors import SpecError
from reconciler.spec import yamlsource

REPO = Path(__file__).resolve().parents[1]
FILES = sorted(
    [*REPO.joinpath("specs").glob("*.yaml"), *REPO.joinpath("tests/fixtures/specs").rglob("*.yaml")]
)

pytestmark = pytest.mark.skipif(
    getattr(yaml, "CSafeLoader", None) is None, reason="this PyYAML was built without libyaml"
)


def _parse(path: Path) -> yamlsource.Document | str:
    try:
        return yamlsource.parse_yaml(path.read_bytes(), path.name)
    except SpecError as exc:
        return "\n".join(map(str, exc.problems))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_both_parsers_read_the_same_data_positions_and_errors(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _parse(path)
    monkeypatch.setattr(yamlsource, "_FastLoader", None)
    assert fast == _parse(path)


def test_the_fast_parser_reads_valid_files(monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[str] = []
    real = yaml.CSafeLoader

    def counting(text: str) -> yaml.CSafeLoader:
        used.append(text)
        return real(text)

    monkeypatch.setattr(yamlsource, "_FastLoader", counting)
    document = yamlsource.parse_yaml(b"aois:\n  - aoi: {name: North}\n", "spec.yaml")

    assert used and document.data == {"aois": [{"aoi": {"name": "North"}}]}
    assert document.where(("aois", 0, "aoi", "name")).line == 2


@pytest.mark.parametrize("depth", [65, 200_000])
def test_deep_nesting_never_reaches_libyamls_recursive_composer(depth: int) -> None:
    # libyaml composes in C, past Python's recursion limit: 200,000 levels would crash the
    # interpreter. The fast path measures the depth on the parser's events first.
    with pytest.raises(SpecError) as caught:
        yamlsource.parse_yaml("aois: " + "[" * depth + "]" * depth + "\n", "deep.yaml")
    assert "nesting" in str(caught.value.problems[0])


def test_a_document_over_the_node_bound_takes_the_bounded_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(yamlsource, "MAX_NODES", 50)
    with pytest.raises(SpecError) as caught:
        yamlsource.parse_yaml("aois: [" + ", ".join(["x"] * 100) + "]\n", "big.yaml")
    assert "more than 50 YAML nodes" in str(caught.value.problems[0])
