"""Property: no input at all makes spec loading raise anything but SpecError.

Two generators: arbitrary YAML-ish text (syntax junk, tags, anchors, odd characters), and
spec-shaped documents with random junk in random places, dumped to YAML.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import SpecError
from reconciler.spec.decls import Specs
from reconciler.spec.load import load_specs

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

YAML_TOKENS = st.sampled_from(
    [
        "aois:",
        "aoi:",
        "visualizations:",
        "index:",
        "assets:",
        "rollback:",
        "mode:",
        "dates:",
        "revision:",
        "version:",
        "name:",
        "id:",
        "- ",
        "  ",
        "\n",
        "\t",
        "[",
        "]",
        "{",
        "}",
        ",",
        ": ",
        "&a ",
        "*a",
        "<<: ",
        "!!python/object:os.system ",
        "!!binary ",
        "!!set ",
        "!Ref ",
        "---",
        "...",
        "#",
        "'",
        '"',
        "|",
        ">",
        "?",
        "%YAML 1.1",
        "2024-05-06",
        "2024-02-30",
        "2024-05-06T10:00:00",
        "-1",
        "1e400",
        ".nan",
        "~",
        "yes",
        "NDVI",
        "dynamic",
        "89a291cd-7ad8-5f86-aeee-55e92b0a0f5d",
        "\x00",
        "\ufeff",
        "é",
    ]
)
YAML_TEXT = st.one_of(
    st.lists(YAML_TOKENS, max_size=40).map("".join),
    st.text(max_size=200),
)


def _load_bytes(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_bytes(raw)
        try:
            result = load_specs([path])
        except SpecError as exc:
            assert exc.problems, "a SpecError must carry at least one problem"
            for problem in exc.problems:
                assert problem.message
                if problem.where is not None:
                    assert problem.where.line >= 1 and problem.where.column >= 1
        else:
            assert isinstance(result, Specs)


@SETTINGS
@given(YAML_TEXT)
def test_random_yaml_text_only_raises_spec_error(text: str) -> None:
    _load_bytes(text.encode("utf-8", errors="surrogatepass"))


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_spec_error(raw: bytes) -> None:
    _load_bytes(raw)


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1)),
    st.sampled_from(["2024-05-06", "2024-13-01", "NDVI", "dynamic", "theoretical", ""]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the well-formed value, junk one time in twelve (so whole specs stay likely)."""
    return st.integers(0, 11).flatmap(lambda n: JUNK if n == 0 else strategy)


DATE = maybe(st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2026, 12, 31)))
ROLLBACK = maybe(
    st.fixed_dictionaries(
        {
            "mode": maybe(st.sampled_from(["dynamic", "theoretical"])),
            "dates": maybe(st.lists(DATE, max_size=4)),
        },
        optional={"revision": maybe(st.integers(min_value=0, max_value=5)), "junk": JUNK},
    )
)
VISUALIZATION = maybe(
    st.fixed_dictionaries(
        {"index": maybe(st.sampled_from(["NDVI", "NDWI", "cb668cf4-b6fc-5c37-a944-84c62fd95299"]))},
        optional={
            "assets": maybe(st.lists(maybe(st.sampled_from(["A", "B", "2024-05-06"])), max_size=3)),
            "resolution": maybe(st.floats(min_value=0.5, max_value=100)),
            "rollback": maybe(st.lists(ROLLBACK, max_size=3)),
            "rolback": JUNK,
        },
    )
)
AOI_REF = maybe(
    st.one_of(
        st.just("89a291cd-7ad8-5f86-aeee-55e92b0a0f5d"),
        st.fixed_dictionaries({"name": maybe(st.sampled_from(["Bengaluru-North", "Pune-East"]))}),
        st.fixed_dictionaries({"id": maybe(st.just("8ee03236-8358-5969-a280-c39238c3c46b"))}),
        st.fixed_dictionaries({"name": st.just("X"), "id": st.just("Y")}),
    )
)
AOI_ENTRY = maybe(
    st.fixed_dictionaries(
        {"aoi": AOI_REF, "visualizations": maybe(st.lists(VISUALIZATION, max_size=4))},
        optional={"extra": JUNK},
    )
)
SPEC = maybe(
    st.fixed_dictionaries(
        {"aois": maybe(st.lists(AOI_ENTRY, max_size=4))},
        optional={"version": maybe(st.just(1)), "x-anchor": JUNK},
    )
)


@SETTINGS
@given(SPEC)
def test_spec_shaped_data_only_raises_spec_error(data: Any) -> None:
    _load_bytes(yaml.safe_dump(data, allow_unicode=True).encode("utf-8", errors="surrogatepass"))
