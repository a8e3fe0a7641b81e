"""``reconciler validate --online`` against the emulator: what is wrong in the files and what
the API does not know come in one round, and what could not be checked is said."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from tests.planning import SECRET, run_cli, write_spec

#: Offline problems (a misspelt key, the API's date form, a bare AOI name) beside online ones
#: (an unknown AOI, an unknown index in the entry with the misspelt key, a rollback date that
#: no asset has in the entry with the date in the API's form).
MIXED = """\
aois:
  - aoi: {name: Bengaluru-Nort}
    visualizations:
      - index: NDVI
  - aoi: {name: Pune-East}
    visualizations:
      - index: NDVX
        colour: red
      - index: NDWI
        rollback: [{mode: dynamic, dates: [2025_03_03, 2030-01-01]}]
  - aoi: Pune
    visualizations: [{index: NDVI}]
"""

OFFLINE = [
    "specs/spec.yaml:8:9: unknown key 'colour'; expected one of: index, assets, resolution, "
    "rollback, legend",
    "specs/spec.yaml:10:44: '2025_03_03' is the API's spelling of a date; specs use ISO dates: "
    "write 2025-03-03",
    "specs/spec.yaml:11:10: 'Pune' is not an AOI id (ids look like "
    "89a291cd-7ad8-5f86-aeee-55e92b0a0f5d); to give the AOI by name write aoi: {name: Pune}",
]
ONLINE = [
    "specs/spec.yaml:2:10: unknown AOI 'Bengaluru-Nort' (closest: Bengaluru-North)",
    "specs/spec.yaml:7:16: unknown index 'NDVX' (closest: NDVI, NDWI)",
    "specs/spec.yaml:10:56: rollback date 2030-01-01 is not a date of this visualization's "
    "assets (its dates: 2024-06-01, 2025-01-15, 2025-06-10)",
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # positions as a user sees them: specs/spec.yaml:2:10
    return tmp_path


def _validate(world: Emulator, *args: str) -> tuple[int, list[str], str]:
    result = run_cli("validate", *args, "--state", "state.json", url=world.url, key=SECRET)
    assert SECRET not in result.output
    return result.exit_code, result.stdout.splitlines(), result.stderr


def test_offline_and_online_problems_come_in_one_round(world: Emulator, project: Path) -> None:
    write_spec(project / "specs", MIXED)
    code, offline, _ = _validate(world)
    assert code == 1
    assert offline == [*OFFLINE, "3 problems in 1 file"]
    code, lines, _ = _validate(world, "--online")
    assert code == 1
    assert lines == [
        *sorted([*OFFLINE, *ONLINE], key=lambda line: [int(n) for n in line.split(":")[1:3]]),
        "specs/spec.yaml:11:5: note: not checked against the API: the visualizations of this "
        "entry, since its 'aoi' is not valid",
        "6 problems in 1 file",
    ]


def test_a_conflict_found_offline_is_not_reported_again_online(
    world: Emulator, project: Path
) -> None:
    write_spec(
        project / "specs",
        """\
        aois:
          - aoi: {name: Pune-East}
            visualizations:
              - {index: NDWI, resolution: 10}
              - {index: NDWI, resolution: 20}
        """,
    )
    code, lines, _ = _validate(world, "--online")
    assert code == 1
    assert lines == [
        "specs/spec.yaml:5:9: visualization NDWI over all assets on AOI 'Pune-East' is declared "
        "twice with different resolutions: 20 here, 10 at specs/spec.yaml:4:9",
        "1 problem in 1 file",
    ]
