"""Helpers shared by the plan and apply tests: write specs, plan and apply against an emulator."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from reconciler.apply import Applier, ApplyResult
from reconciler.client import PixxelClient
from reconciler.emulator import Emulator
from reconciler.plan import Plan
from reconciler.planner import build_plan
from reconciler.refresh import refresh
from reconciler.spec import load_specs
from reconciler.state import StateStore

API_KEY = "test-key"


def write_spec(directory: Path, text: str, name: str = "spec.yaml") -> Path:
    """Write one spec file (dedented) and return the directory holding it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return directory


def client_for(emulator: Emulator, *, api_key: str = API_KEY, **kwargs: object) -> PixxelClient:
    """A client with a tiny backoff, so fault tests converge quickly."""
    options: dict[str, object] = {"backoff_factor": 0.01, "retry_after_cap": 0.05}
    options.update(kwargs)
    return PixxelClient(emulator.url, api_key, **options)  # type: ignore[arg-type]


def make_plan(
    emulator: Emulator, specs_dir: Path, state_path: Path, *, targets: Sequence[str] = ()
) -> Plan:
    specs = load_specs([str(specs_dir)])
    with client_for(emulator) as client:
        observed = refresh(specs, client, targets=targets)
    return build_plan(
        observed,
        StateStore(state_path).load(),
        spec_fingerprint=specs.fingerprint,
        spec_paths=[str(specs_dir)],
        api_url=emulator.url,
        targets=targets,
    )


def run_apply(emulator: Emulator, plan: Plan, state_path: Path, **kwargs: object) -> ApplyResult:
    store = StateStore(state_path)
    store.load()
    options: dict[str, object] = {"poll_interval": 0.02, "wait_timeout": 10.0}
    options.update(kwargs)
    with client_for(emulator) as client, store.lock():
        return Applier(client, store, **options).apply(plan)  # type: ignore[arg-type]


def count_visualizations(emulator: Emulator, aoi_id: str, index_id: str) -> int:
    with client_for(emulator) as client:
        return len(client.list_visualizations(aoi_id, index_id=index_id))
