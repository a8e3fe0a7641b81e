"""Helpers shared by the tests: the demo world's ids, specs built from named pieces, and plan
and apply against an emulator, in this process or through the command line (``run_cli``, or
``run_process`` for a process of its own)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypedDict, Unpack

from click.testing import CliRunner, Result
from requests.adapters import BaseAdapter

from reconciler.api.client import PixxelClient
from reconciler.cli.main import cli
from reconciler.core.plan import Plan
from reconciler.emulator import Emulator
from reconciler.emulator.world import Asset, derived_id
from reconciler.run.apply import Applier
from reconciler.run.engine import Engine
from reconciler.run.events import Listener
from reconciler.run.results import ApplyResult
from reconciler.run.settings import Settings
from reconciler.state.store import StateStore

API_KEY = "test-key"

#: A key that looks real, for end-to-end tests: a leak of it would be obvious.
SECRET = "sk-live-0123456789abcdef"


# --- specs from named pieces ---------------------------------------------------------------------


def viz(index: str, **fields: str) -> str:
    """One item of ``visualizations:``; ``fields`` are YAML values in flow style, in order."""
    return "".join([f"- index: {index}\n", *(f"  {k}: {v}\n" for k, v in fields.items())])


def aoi(name: str, *visualizations: str) -> str:
    """One item of ``aois:``, the AOI by name, declaring these ``viz`` items."""
    declared = textwrap.indent("".join(visualizations), "    ")
    return f"- aoi: {{name: {name}}}\n  visualizations:\n{declared}"


def spec(*aois: str) -> str:
    """A spec file declaring these ``aoi`` items."""
    return "aois:\n" + textwrap.indent("".join(aois), "  ")


#: Bengaluru-North's NDVI over its A and B assets, its 2024-05-06 dynamic legend rolled back:
#: a visualization the demo world has, so planning it is a rollback, not a create.
NDVI_ROLLED_BACK = viz(
    "NDVI",
    assets="[Bengaluru-A, Bengaluru-B]",
    rollback="[{mode: dynamic, dates: [2024-05-06]}]",
)
#: That rollback alone: the smallest spec with a change to apply.
ROLLBACK_SPEC = spec(aoi("Bengaluru-North", NDVI_ROLLED_BACK))
#: Pune-East's NDWI, which the demo world has, and NDVI, a create; both over all its assets.
PUNE_NDWI_NDVI = aoi("Pune-East", viz("NDWI"), viz("NDVI"))
#: A spec repository's one file for end-to-end tests: a create, a rollback, one AOI of each kind.
SPEC = spec(aoi("Bengaluru-North", NDVI_ROLLED_BACK, viz("True-Color")), PUNE_NDWI_NDVI)

# Ids from reconciler/emulator/demo_world.yaml that the plan, apply and CLI tests refer to.
BENGALURU = "89a291cd-7ad8-5f86-aeee-55e92b0a0f5d"
PUNE = "8ee03236-8358-5969-a280-c39238c3c46b"
NAGPUR = "1a3cd9bf-677d-5205-8fbf-1414083293b0"
NDVI = "cb668cf4-b6fc-5c37-a944-84c62fd95299"
NDWI = "04d0a9cd-f653-558c-9d19-4103e6386d5a"
NDVI_BENGALURU_AB = "f4810809-db7f-5877-9305-3e51eb6a61a3"
NDVI_NAGPUR_JKL = "d17b2df7-eae7-5807-8fa5-661c39f02570"
NDVI_NAGPUR_M_FAILED = "a6c61636-b17f-506e-92e2-665375801ab6"
BENGALURU_C = "28feba53-9c1f-5b4f-ad79-431fa406dad0"
BENGALURU_D = "e867d4cd-b221-5b2d-974f-6c505cce2e9c"
KOCHI = "a4cb9e5f-39ca-5083-b695-e628f4e8019b"


def write_spec(directory: Path, text: str, name: str = "spec.yaml") -> Path:
    """Write one spec file (dedented) and return the directory holding it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return directory


class ClientOptions(TypedDict, total=False):
    """``PixxelClient``'s keyword arguments."""

    parallelism: int
    max_rps: float | None
    timeout: tuple[float, float]
    retries: int
    backoff_factor: float
    retry_after_cap: float
    page_size: int
    transport: BaseAdapter | None
    deadline: float
    max_body_bytes: int
    max_pages: int


class ApplierOptions(TypedDict, total=False):
    """``Applier``'s keyword arguments."""

    parallelism: int
    wait_timeout: float
    poll_interval: float
    fail_fast: bool
    listener: Listener


def client_for(
    emulator: Emulator, *, api_key: str = API_KEY, **options: Unpack[ClientOptions]
) -> PixxelClient:
    """A client with a tiny backoff, so fault tests converge quickly."""
    quick: ClientOptions = {"backoff_factor": 0.01, "retry_after_cap": 0.05}
    return PixxelClient(emulator.url, api_key, **(quick | options))


def make_plan(
    emulator: Emulator,
    specs_dir: Path,
    state_path: Path,
    *,
    targets: Sequence[str] = (),
    **client_options: Unpack[ClientOptions],
) -> Plan:
    with client_for(emulator, **client_options) as client:
        engine = Engine(Settings(api_url=emulator.url, state=state_path), client=client)
        return engine.plan([str(specs_dir)], targets=targets)


def run_apply(
    emulator: Emulator, plan: Plan, state_path: Path, **options: Unpack[ApplierOptions]
) -> ApplyResult:
    store = StateStore(state_path)
    store.load()
    quick: ApplierOptions = {"poll_interval": 0.02, "wait_timeout": 10.0}
    with client_for(emulator) as client, store.lock():
        return Applier(client, store, **(quick | options)).apply(plan)


def run_cli(
    *args: str,
    url: str | None = None,
    key: str | None = None,
    env: Mapping[str, str | None] | None = None,
    input: str | None = None,
    color: bool = False,
) -> Result:
    """``reconciler ARGS`` in this process, through click's ``CliRunner``.

    ``url`` and ``key`` set PIXXEL_API_URL and PIXXEL_API_KEY; ``env`` sets (or, with None,
    removes) more variables; the rest of this process's environment is kept. An exception the
    command does not turn into an exit status propagates: it is a bug, and shows its traceback.
    """
    environ: dict[str, str | None] = {}
    if url is not None:
        environ["PIXXEL_API_URL"] = url
    if key is not None:
        environ["PIXXEL_API_KEY"] = key
    environ.update(env or {})
    return CliRunner().invoke(
        cli, list(args), env=environ, input=input, color=color, catch_exceptions=False
    )


def run_process(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``reconciler ARGS`` as a user runs it: a process of its own in ``cwd``, with ``env`` or
    else a bare environment (PATH and HOME only: no key, no API URL)."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(env) if env is not None else {"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


def count_visualizations(emulator: Emulator, aoi_id: str, index_id: str) -> int:
    with client_for(emulator) as client:
        return len(client.list_visualizations(aoi_id, index_id=index_id))


def remember_rollback(
    emulator: Emulator,
    state_path: Path,
    *,
    mode: str = "dynamic",
    dates: Sequence[str] = ("2024-05-06",),
    revision: int = 0,
) -> str:
    """Record in the state file that Bengaluru's NDVI was rolled back as it is now.

    Returns the visualization's current ``updated_at`` (what the record holds).
    """
    with client_for(emulator) as client:
        (viz,) = client.list_visualizations(BENGALURU, visualization_id=NDVI_BENGALURU_AB)
    store = StateStore(state_path)
    store.load()
    store.record_rollback(
        NDVI_BENGALURU_AB,
        aoi_id=BENGALURU,
        mode=mode,
        dates=dates,
        revision=revision,
        updated_at=viz.updated_at or "",
    )
    return viz.updated_at or ""


def new_asset(emulator: Emulator, aoi_id: str, name: str, date: str) -> str:
    """A new acquisition lands on the AOI (there is no API call for that)."""
    with emulator.lock:
        aoi = emulator.world.aoi(aoi_id)
        assert aoi is not None
        stamp = emulator.world.tick(time.time())
        asset_id = derived_id("asset", aoi_id, name)
        aoi.assets.append(
            Asset(
                id=asset_id,
                name=name,
                date=date,
                resolution=10.0,
                created_at=stamp,
                updated_at=stamp,
            )
        )
    return asset_id


def edit_legend_by_hand(emulator: Emulator, *, api_key: str = API_KEY) -> None:
    """Someone edits the dynamic legend of Bengaluru's NDVI over A and B in the console: drift."""
    with client_for(emulator, api_key=api_key) as client:
        client.update_metadata(
            BENGALURU,
            NDVI_BENGALURU_AB,
            mode="dynamic",
            legend={"2024_05_06": [{"min": 0, "max": 1, "color": "#000000", "label": "x"}]},
            dynamic_bins=1,
        )
