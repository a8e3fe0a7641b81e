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


#: Plain scalars of every form YAML 1.1 resolves implicitly, and near misses of each.
_SCALARS = (
    "~",
    "null",
    "Null",
    "NULL",
    "''",
    "yes",
    "No",
    "TRUE",
    "off",
    "On",
    "y",
    "n",
    "0",
    "-1",
    "+7",
    "0x1F",
    "0o17",
    "017",
    "0b101",
    "1_000",
    "190:20:30",
    "1.5",
    "-.5",
    "6.8e+5",
    ".inf",
    "-.INF",
    ".nan",
    "2024-05-06",
    "2024-5-6",
    "2024-05-06T01:02:03Z",
    "2024_05_06",
    "<<",
    "=",
    "!x",
    "&a",
    "*a",
    "Farm-1",
    "farm",
    "1a",
    ".5x",
    "+x",
    "-x",
    "0x",
    "2024-05",
    "True-Color",
    "NDVI",
)


def test_the_fast_parser_resolves_every_plain_scalar_as_yaml_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quoted = [s for s in _SCALARS if s[:1] in "!&*"]
    plain = [s for s in _SCALARS if s not in quoted and s not in ("<<", "=")]
    listed = "\n".join(f"  - {s}" for s in plain)
    text = f"x-values:\n{listed}\n  - '{quoted[0]}'\n".encode()
    fast = yamlsource.parse_yaml(text, "scalars.yaml")
    # '<<' and '=' resolve to tags a spec refuses: the same refusal either way.
    tagged = b"x-values:\n  - <<\n  - =\n"
    with pytest.raises(SpecError) as fast_refusal:
        yamlsource.parse_yaml(tagged, "tagged.yaml")
    monkeypatch.setattr(yamlsource, "_FastLoader", None)
    pure = yamlsource.parse_yaml(text, "scalars.yaml")
    with pytest.raises(SpecError) as pure_refusal:
        yamlsource.parse_yaml(tagged, "tagged.yaml")
    assert fast_refusal.value.problems == pure_refusal.value.problems
    assert repr(fast.data) == repr(pure.data)  # NaN is no NaN's equal, but prints alike
    assert [type(v) for v in fast.data["x-values"]] == [type(v) for v in pure.data["x-values"]]
