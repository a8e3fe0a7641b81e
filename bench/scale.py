"""Benchmark: plan and apply of N AOIs against the emulator, next to a plain sequential script.

The world: N AOIs with 4 dated assets each and 3 preset indices. Every AOI declares 3
visualizations (one per index, over its 4 assets, by id); half the AOIs already have 1 of them,
half have 2, so 1.5 per AOI must be created. Every AOI declares 2 rollbacks on the visualizations
that exist (2 dates each). The emulator runs in a separate process (``reconciler emulator``)
with a fixed added latency, so its CPU is measured apart from ours.

Phases, each measured by calling ``reconciler.run.engine.Engine`` (the plans, which change nothing,
``--repeat`` times: the median of each figure):

- cold plan: no state file, nothing applied yet;
- first apply: plan again, create what is missing, wait until usable, roll legends back;
- converged plan: nothing left to do (checked).

Then the same work as a plain sequential ``requests`` script (one session: list each AOI's
visualizations, create the missing ones, 409 = present, PATCH every rollback) on a fresh emulator,
and as the strongest script a competent user writes instead (a pool of ``--parallelism`` threads,
one session each), twice: its second run is what the converged plan (the drift job) replaces.
A pull request's plan (``--changed-since``, ``--pr-touched`` AOIs of ``--pr-aois``) is measured
beside the plan of that whole estate, and the spec loading beside a bare libyaml load of the same
files; start-up (``--help``, offline ``validate``) beside the imports it cannot avoid.
Finally the offline cost: resolving and planning 10,000 AOIs x 5 visualizations on hand-built
specs and observed data (no network), in a fresh process: the CPU of resolve_desired +
build_plan, and the process's peak memory, input included (what planning itself added is
printed apart).

For each phase it prints requests against the lower bound (see docs/requests.md), wall time
against requests x latency / parallelism, our CPU seconds (this process: user + system), CPU per
request, peak memory (max RSS of this process so far), the emulator's CPU, and the ratio to the
sequential script. Then every target, met or not (exit status 1 if one is missed). Every
target on time or CPU is a ratio to a peer measured in the same run (the sequential script's
CPU per request is the unit of CPU): the machine's speed and load cancel out.

    python bench/scale.py --aois 1000
    python bench/scale.py --aois 300 --latency-ms 50 --parallelism 16 --skip sequential

Bounded: a fixed amount of work, timeouts on every wait, and the emulator is stopped at the end.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import functools
import gc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

KEY = "bench-key"
NAMESPACE = uuid.UUID("0b9c6a9e-3f52-4c4b-8d1e-5a0f1c2e7d11")
INDICES = ("NDVI", "NDWI", "EVI")
ASSETS_PER_AOI = 4
DATES = ("2024-01-15", "2024-04-15", "2024-07-15", "2024-10-15")
PAGE = 100  # the API's largest page (AOI listing pages)
#: Emulator startup (world loading included) must not take longer than this.
STARTUP_TIMEOUT = 120.0


def _id(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(map(str, parts))))


# --- the world ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchAoi:
    """One AOI of the bench world: what exists and what is declared."""

    id: str
    name: str
    asset_ids: tuple[str, ...]
    existing: tuple[str, ...]  # index names that already have their visualization
    rollbacks: tuple[tuple[str, str, tuple[str, ...]], ...]  # (index, mode, dates)


@dataclass(frozen=True)
class BenchWorld:
    aois: tuple[BenchAoi, ...]
    index_ids: dict[str, str] = field(default_factory=dict)

    @property
    def creates(self) -> int:
        return sum(len(INDICES) - len(a.existing) for a in self.aois)

    @property
    def rollbacks(self) -> int:
        return sum(len(a.rollbacks) for a in self.aois)


def build_world(n: int) -> BenchWorld:
    aois = []
    for k in range(n):
        aoi_id = _id("aoi", k)
        asset_ids = tuple(_id("asset", k, j) for j in range(ASSETS_PER_AOI))
        if k % 2 == 0:  # one exists, two to create; both rollbacks on the one that exists
            existing: tuple[str, ...] = ("NDVI",)
            rollbacks = (
                ("NDVI", "dynamic", DATES[:2]),
                ("NDVI", "theoretical", DATES[2:]),
            )
        else:  # two exist, one to create; one rollback on each that exists
            existing = ("NDVI", "NDWI")
            rollbacks = (("NDVI", "dynamic", DATES[:2]), ("NDWI", "dynamic", DATES[1:3]))
        aois.append(BenchAoi(aoi_id, f"AOI-{k:05d}", asset_ids, existing, rollbacks))
    return BenchWorld(tuple(aois), {name: _id("index", name) for name in INDICES})


def world_file(world: BenchWorld) -> dict[str, Any]:
    """The emulator's world file (see reconciler/emulator/world.py)."""
    return {
        "indices": [
            {"id": world.index_ids[name], "name": name, "type": "preset"}
            | {"expression_type": "index", "expression": "(b1 - b2) / (b1 + b2)"}
            for name in INDICES
        ],
        "aois": [
            {
                "id": aoi.id,
                "name": aoi.name,
                "assets": [
                    {"id": asset_id, "name": f"{aoi.name}-{j}", "date": DATES[j]}
                    for j, asset_id in enumerate(aoi.asset_ids)
                ],
            }
            for aoi in world.aois
        ],
        "visualizations": [
            {"aoi": aoi.id, "index": name, "assets": list(aoi.asset_ids)}
            for aoi in world.aois
            for name in aoi.existing
        ],
    }


def spec_file(aois: tuple[BenchAoi, ...]) -> dict[str, Any]:
    """One spec file declaring ``aois`` (assets by id, the form CI generators write)."""
    entries = []
    for aoi in aois:
        visualizations = []
        for name in INDICES:
            declared: dict[str, Any] = {"index": name, "assets": list(aoi.asset_ids)}
            modes = [(m, list(d)) for i, m, d in aoi.rollbacks if i == name]
            if modes:
                declared["rollback"] = [{"mode": m, "dates": d} for m, d in modes]
            visualizations.append(declared)
        entries.append({"aoi": {"name": aoi.name}, "visualizations": visualizations})
    return {"aois": entries}


# --- lower bounds (docs/requests.md) ------------------------------------------------------------


def shared_listings(n: int) -> int:
    """Every AOI listing page (100 a page) and the one index page, read once per plan."""
    return max(1, math.ceil(n / PAGE)) + 1


def lower_bounds(world: BenchWorld) -> dict[str, int]:
    n = len(world.aois)
    with_creates = sum(1 for a in world.aois if len(a.existing) < len(INDICES))
    # Every declared visualization is over all of the AOI's assets and one of them exists, so
    # the listed visualizations show every asset id a create needs checked and dated: no asset
    # listing is needed (docs/requests.md).
    with_asset_listing = 0
    cold = shared_listings(n) + n + with_asset_listing
    return {
        "cold plan": cold,
        # plan again, one POST per missing visualization, at least one listing per AOI that
        # created something (a POST answers "creating"), one PATCH per rollback.
        "first apply": cold + world.creates + with_creates + world.rollbacks,
        "converged plan": shared_listings(n) + n,
        "sequential script": n + world.creates + world.rollbacks,
    }


# --- the emulator in its own process ------------------------------------------------------------


class EmulatorProcess:
    """``reconciler emulator`` in a child process: its URL, request counter and CPU time."""

    def __init__(self, world_path: Path, latency_ms: float) -> None:
        self._args = [
            sys.executable,
            "-m",
            "reconciler",
            "emulator",
            "--port",
            "0",
            "--world",
            str(world_path),
            "--api-key",
            KEY,
            "--latency-ms",
            f"{latency_ms:g}",
        ]
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""
        self._session = requests.Session()
        self._session.trust_env = False

    def __enter__(self) -> EmulatorProcess:
        self._proc = subprocess.Popen(
            self._args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        found: list[str] = []
        reader = threading.Thread(target=self._read_url, args=(found,), daemon=True)
        reader.start()
        reader.join(STARTUP_TIMEOUT)
        if not found:
            self.__exit__(None, None, None)
            raise SystemExit(f"the emulator did not start within {STARTUP_TIMEOUT:g} s")
        self.url = found[0]
        return self

    def _read_url(self, found: list[str]) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            if "listening on " in line:
                found.append(line.rsplit(" ", 1)[-1].strip())
                return

    def __exit__(self, *exc: object) -> None:
        self._session.close()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)

    def requests(self) -> tuple[int, dict[str, int]]:
        """Requests since the last reset: the total, and by method and route."""
        answer = self._session.get(self.url + "/_emulator/requests", timeout=10)
        answer.raise_for_status()
        counts = answer.json()
        return int(counts["total"]), dict(counts["requests"])

    def reset(self) -> None:
        self._session.post(self.url + "/_emulator/reset-counter", timeout=10).raise_for_status()

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the emulator process so far (Linux /proc; None elsewhere)."""
        assert self._proc is not None
        try:
            stat = Path(f"/proc/{self._proc.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- measuring ----------------------------------------------------------------------------------


def our_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_mb() -> float:
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


@dataclass
class Phase:
    name: str
    n: int
    requests: int
    lower_bound: int
    wall: float
    cpu: float
    peak_mb: float
    emulator_cpu: float | None
    routes: dict[str, int] = field(default_factory=dict)
    state_cpu: float | None = None
    state_occupied: float | None = None
    state_calls: int = 0
    note: str = ""


@dataclass
class StateTimer:
    """Time spent in the state store's write calls, from every thread.

    Every rollback and create writes a state record, so the store's share is measured apart
    (it must stay a small, constant cost per record): CPU of the calling threads inside the
    calls, and the wall time during which at least one thread was inside one (with writes
    serialised by the store's lock, that is how long they held up the whole apply).
    """

    methods: tuple[str, ...] = ("record_rollback", "record_fresh", "save", "flush", "close")
    cpu: float = 0.0
    occupied: float = 0.0
    calls: int = 0
    _inside: int = 0
    _since: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        store = _state_store_class()
        originals = {name: getattr(store, name) for name in self.methods if hasattr(store, name)}
        for name, original in originals.items():
            setattr(store, name, self._wrap(original))
        try:
            yield
        finally:
            for name, original in originals.items():
                setattr(store, name, original)

    def _wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                if self._inside == 0:
                    self._since = time.perf_counter()
                self._inside += 1
            cpu = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.thread_time() - cpu
                with self._lock:
                    self.cpu += spent
                    self.calls += 1
                    self._inside -= 1
                    if self._inside == 0:
                        self.occupied += time.perf_counter() - self._since

        return timed


def _state_store_class() -> type[Any]:
    """The state store class, wherever this version of reconciler keeps it."""
    import importlib

    for module in ("reconciler.state.store", "reconciler.state.records"):
        with contextlib.suppress(ImportError):
            found = getattr(importlib.import_module(module), "StateStore", None)
            if found is not None:
                return found  # type: ignore[no-any-return]
    raise SystemExit("cannot find reconciler's StateStore")


def measure(
    name: str,
    n: int,
    lower_bound: int,
    emulator: EmulatorProcess,
    work: Callable[[], str],
    timer: StateTimer | None = None,
) -> Phase:
    # Each command is a process of its own in real use: what an earlier phase left for the
    # garbage collector is collected before this one is measured, not during it.
    gc.collect()
    emulator.reset()
    emu_before = emulator.cpu_seconds()
    cpu, wall = our_cpu(), time.perf_counter()
    note = work()
    wall = time.perf_counter() - wall
    cpu = our_cpu() - cpu
    emu_after = emulator.cpu_seconds()
    total, routes = emulator.requests()
    phase = Phase(
        name=name,
        n=n,
        requests=total,
        routes=routes,
        lower_bound=lower_bound,
        wall=wall,
        cpu=cpu,
        peak_mb=peak_mb(),
        emulator_cpu=None if emu_before is None or emu_after is None else emu_after - emu_before,
        note=note,
    )
    if timer is not None:
        phase.state_cpu, phase.state_occupied = timer.cpu, timer.occupied
        phase.state_calls = timer.calls
    return phase


def median_of(
    repeat: int,
    name: str,
    n: int,
    lower_bound: int,
    emulator: EmulatorProcess,
    work: Callable[[], str],
) -> Phase:
    """A read-only phase run ``repeat`` times: the median of each figure.

    On a shared machine one run can land on a busy moment; a plan changes nothing, so it can
    be measured again (an apply cannot).
    """
    runs = [measure(name, n, lower_bound, emulator, work) for _ in range(max(1, repeat))]
    middle = sorted(runs, key=lambda p: p.wall)[len(runs) // 2]
    middle.cpu = statistics.median(p.cpu for p in runs)
    emulator_cpu = [p.emulator_cpu for p in runs if p.emulator_cpu is not None]
    middle.emulator_cpu = statistics.median(emulator_cpu) if emulator_cpu else None
    return middle


# --- the phases ---------------------------------------------------------------------------------


def run_reconciler(
    world: BenchWorld, tmp: Path, emulator: EmulatorProcess, parallelism: int, repeat: int
) -> list[Phase]:
    from reconciler.run.engine import ApplyOptions, Engine
    from reconciler.run.settings import Settings

    n = len(world.aois)
    bounds = lower_bounds(world)
    specs = tmp / "specs"
    specs.mkdir()
    for start in range(0, n, 100):  # a spec file per 100 AOIs, as a team might split them
        chunk = world.aois[start : start + 100]
        (specs / f"aois-{start:05d}.yaml").write_text(yaml.safe_dump(spec_file(chunk)))
    settings = Settings(
        api_url=emulator.url,
        parallelism=parallelism,
        state=tmp / "state" / "state.json",
        environ={"PIXXEL_API_KEY": KEY},
    )
    engine = Engine(settings)
    paths = [str(specs)]

    def cold_plan() -> str:
        plan = engine.plan(paths)
        summary = plan.summary()
        expected = {"create": world.creates, "rollback": world.rollbacks}
        got = {k: summary[k] for k in expected}
        return "" if got == expected else f"unexpected plan {got}, expected {expected}"

    def first_apply() -> str:
        outcome = engine.apply(paths, ApplyOptions(poll_interval=0.05, wait_timeout=60))
        if not outcome.started:
            return f"nothing applied: {outcome.error or outcome.signal or 'no changes'}"
        result = outcome.result
        counts = {k: v for k, v in result.counts().items() if v}
        expected = {"created": world.creates, "rolled back": world.rollbacks}
        return "" if result.ok and counts == expected else f"unexpected outcomes {counts}"

    def converged_plan() -> str:
        plan = engine.plan(paths)
        return f"not converged: {plan.summary()}" if plan.has_changes else ""

    timer = StateTimer()
    phases = [median_of(repeat, "cold plan", n, bounds["cold plan"], emulator, cold_plan)]
    with timer.installed():
        phases.append(
            measure("first apply", n, bounds["first apply"], emulator, first_apply, timer)
        )
    phases.append(
        median_of(repeat, "converged plan", n, bounds["converged plan"], emulator, converged_plan)
    )
    return phases


def run_sequential(world: BenchWorld, emulator: EmulatorProcess) -> Phase:
    """The same work as a first apply, by the simplest script: one request at a time."""

    def script() -> str:
        session = requests.Session()
        session.trust_env = False
        session.headers["Authorization"] = KEY
        with session:
            failed = sum(
                _script_aoi(session, emulator.url, world, aoi, create=True) for aoi in world.aois
            )
        return f"{failed} requests failed" if failed else ""

    n = len(world.aois)
    bound = lower_bounds(world)["sequential script"]
    return measure("sequential script", n, bound, emulator, script)


def _script_aoi(
    session: requests.Session, url: str, world: BenchWorld, aoi: BenchAoi, *, create: bool
) -> int:
    """One AOI as a hand-written script does it: list, create what is missing (409 = present),
    PATCH every rollback (a script keeps no state, so it sends them on every run). Failures."""
    base = f"{url}/v0/aois/{aoi.id}/visualizations"
    listed = session.get(base, params={"limit": PAGE}, timeout=30)
    listed.raise_for_status()
    present = {v["index_id"]: v["id"] for v in listed.json()["visualization"]}
    problems = 0
    for name in INDICES if create else ():
        index_id = world.index_ids[name]
        if index_id in present:
            continue
        body = {"index_id": index_id, "src_asset_ids": list(aoi.asset_ids)}
        created = session.post(base, json=body, timeout=30)
        if created.status_code not in (201, 409):  # 409: already present
            problems += 1
    for name, mode, dates in aoi.rollbacks:
        index_id = world.index_ids[name]
        body = {
            "index_id": index_id,
            "dates": [d.replace("-", "_") for d in dates],
            "visualization_mode": mode,
        }
        done = session.patch(f"{base}/{present[index_id]}/metadata", json=body, timeout=30)
        problems += done.status_code != 200
    return problems


def run_concurrent(world: BenchWorld, emulator: EmulatorProcess, parallelism: int) -> list[Phase]:
    """The strongest script a competent user writes instead: a pool of ``parallelism`` threads,
    one session each, an AOI per task; run twice (its second run is the drift job's peer)."""
    local = threading.local()
    sessions: list[requests.Session] = []
    guard = threading.Lock()

    def session() -> requests.Session:
        found: requests.Session | None = getattr(local, "session", None)
        if found is None:
            found = requests.Session()
            found.trust_env = False
            found.headers["Authorization"] = KEY
            local.session = found
            with guard:
                sessions.append(found)
        return found

    def script(create: bool) -> Callable[[], str]:
        def run() -> str:
            with ThreadPoolExecutor(parallelism) as pool:
                failed = sum(
                    pool.map(
                        lambda aoi: _script_aoi(session(), emulator.url, world, aoi, create=create),
                        world.aois,
                    )
                )
            return f"{failed} requests failed" if failed else ""

        return run

    n = len(world.aois)
    bound = lower_bounds(world)
    again_bound = n + world.rollbacks
    try:
        return [
            measure("concurrent script", n, bound["sequential script"], emulator, script(True)),
            measure("concurrent, again", n, again_bound, emulator, script(False)),
        ]
    finally:
        for made in sessions:
            made.close()


# --- a pull request's plan: what changed, of a large estate --------------------------------------


def run_pr_plan(n: int, touched: int, latency_ms: float, parallelism: int) -> dict[str, float]:
    """``plan --changed-since`` of a pull request that touches ``touched`` AOIs of ``n``, next
    to the plan of the whole estate (its peer), and the spec loading beside a bare libyaml
    load of the same files."""
    from reconciler.run.engine import Engine
    from reconciler.run.settings import Settings
    from reconciler.spec.cache import SpecCache
    from reconciler.spec.load import CheckedFiles, validate_specs

    world = build_world(n)
    with tempfile.TemporaryDirectory(prefix="reconciler-pr-") as tmp_name:
        tmp = Path(tmp_name)
        repo = tmp / "repo"
        specs = repo / "specs"
        specs.mkdir(parents=True)
        for start in range(0, n, 100):
            chunk = world.aois[start : start + 100]
            (specs / f"aois-{start:05d}.yaml").write_text(yaml.safe_dump(spec_file(chunk)))
        git = ["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench"]
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-qm", "base"], cwd=repo, check=True)
        # The pull request: another resolution on one visualization of each touched AOI.
        step = max(1, n // max(1, touched))
        for k in range(0, step * touched, step):
            path = specs / f"aois-{k - k % 100:05d}.yaml"
            data = yaml.safe_load(path.read_text())
            data["aois"][k % 100]["visualizations"][0]["resolution"] = 10
            path.write_text(yaml.safe_dump(data))
        files = sorted(specs.glob("*.yaml"))
        load = time.process_time()
        for file in files:
            yaml.load(file.read_bytes(), Loader=yaml.CSafeLoader)
        libyaml = time.process_time() - load
        load = time.process_time()
        validate_specs([str(specs)], checked=CheckedFiles(None))
        validate = time.process_time() - load
        # With the spec cache: a first run fills it, the next reads it back.
        cache = tmp / "cache"
        load = time.process_time()
        validate_specs([str(specs)], checked=CheckedFiles(SpecCache(cache)))
        filling = time.process_time() - load
        load = time.process_time()
        validate_specs([str(specs)], checked=CheckedFiles(SpecCache(cache)))
        warm = time.process_time() - load
        world_path = tmp / "world.yaml"
        world_path.write_text(yaml.safe_dump(world_file(world)))
        figures = {
            "libyaml load": libyaml,
            "validate": validate,
            "validate filling the cache": filling,
            "validate warm": warm,
        }
        here = Path.cwd()
        os.chdir(repo)  # --changed-since reads the repository of the current directory
        try:
            with EmulatorProcess(world_path, latency_ms) as emulator:
                settings = Settings(
                    api_url=emulator.url,
                    parallelism=parallelism,
                    state=tmp / "state.json",
                    environ={"PIXXEL_API_KEY": KEY},
                )
                runs = (
                    ("whole plan", None, "off"),
                    ("pr plan", "HEAD", "off"),
                    # The first fills the cache under the paths a plan shows ('specs/...').
                    ("pr plan filling the cache", "HEAD", str(cache)),
                    ("pr plan warm", "HEAD", str(cache)),
                )
                for name, since, cache_dir in runs:
                    os.environ["RECONCILER_CACHE_DIR"] = cache_dir
                    gc.collect()
                    emulator.reset()
                    cpu, wall = our_cpu(), time.perf_counter()
                    plan = Engine(settings).plan(["specs"], changed_since=since)
                    figures[f"{name} wall"] = time.perf_counter() - wall
                    figures[f"{name} cpu"] = our_cpu() - cpu
                    figures[f"{name} requests"] = emulator.requests()[0]
                    figures[f"{name} aois"] = len(plan.observed)
        finally:
            os.chdir(here)
            os.environ["RECONCILER_CACHE_DIR"] = "off"
    return figures


# --- start-up: a command's cost before any work -------------------------------------------------


def _byte_compiled() -> bool:
    """Compile reconciler's modules to bytecode, as an installed package has them.

    pip compiles a package as it installs it, and an editable install writes its bytecode on
    its first run, unless ``PYTHONDONTWRITEBYTECODE`` is set (as on some CI machines and
    sandboxes): then every fresh process would compile every module it imports, a cost no
    user's second run pays, and the start-up and pull-request figures (fresh processes) would
    measure the compiler. Whether the bytecode could be written.
    """
    import reconciler

    package = Path(reconciler.__file__).resolve().parent
    try:
        return bool(compileall.compile_dir(package, quiet=2))
    except OSError:
        return False


def _wall_of(command: list[str], repeat: int = 5) -> float:
    """The median wall time of ``command`` run ``repeat`` times, each in a fresh process."""
    walls = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, timeout=120, check=False)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def run_startup(specs: Path) -> dict[str, float]:
    """``reconciler --help`` and offline ``validate`` beside the imports they cannot avoid."""
    python = sys.executable
    reconciler = [python, "-m", "reconciler"]
    figures = {
        "help": _wall_of([*reconciler, "--help"]),
        "import click": _wall_of([python, "-c", "import click"]),
        "validate": _wall_of([*reconciler, "validate", str(specs)]),
        "import click, pydantic, yaml": _wall_of([python, "-c", "import click, pydantic, yaml"]),
    }
    with tempfile.TemporaryDirectory(prefix="reconciler-cache-") as cache:
        os.environ["RECONCILER_CACHE_DIR"] = cache
        try:
            # The first run fills the cache; the median of the next five reads it back.
            figures["validate, spec cache warm"] = _wall_of(
                [*reconciler, "validate", str(specs)], repeat=6
            )
        finally:
            os.environ["RECONCILER_CACHE_DIR"] = "off"
    return figures


# --- offline: the pure core at scale ------------------------------------------------------------


def offline_child(n: int, per_aoi: int) -> dict[str, float]:
    """Resolve and plan ``n`` AOIs x ``per_aoi`` visualizations on hand-built data (no I/O).

    Shaped like the world above: 4 dated assets per AOI, one visualization per index over all
    of them (given by id), 1 or 2 of them missing, one rollback (2 dates) declared on each,
    no state file. What the client would read is decoded from JSON text and validated the way
    the client does it, AOI by AOI, so every visualization brings its own strings and assets
    as it would from the API; the declarations are built as the spec loader builds them.
    """
    from reconciler.api.types import Aoi, Asset, Index, Visualization, parse_listing
    from reconciler.core.observed import Observed, ObservedAoi
    from reconciler.core.planner import build_plan
    from reconciler.core.resolve import (
        IndexLookup,
        Selection,
        needs_assets_for_creates,
        resolve_desired,
    )
    from reconciler.errors import Where
    from reconciler.spec.decls import AoiDecl, AssetSel, RollbackDecl, VisualizationDecl
    from reconciler.state.records import State

    def listed(model: type[Any], items: list[dict[str, Any]]) -> list[Any]:
        return parse_listing(model, json.loads(json.dumps(items)), {})

    indices = tuple(
        listed(
            Index,
            [
                {"id": _id("index", k), "name": f"IDX-{k}", "type": "preset"}
                | {"expression_type": "index", "expression": "(b1 - b2) / (b1 + b2)"}
                for k in range(per_aoi)
            ],
        )
    )
    aois: list[Aoi] = listed(
        Aoi, [{"aoi_id": _id("aoi", a), "name": f"AOI-{a:05d}"} for a in range(n)]
    )
    groups: dict[str, tuple[Aoi, tuple[AoiDecl, ...]]] = {}
    by_aoi: dict[str, ObservedAoi] = {}
    lookup = IndexLookup(indices)
    line = 0

    def at() -> Where:
        nonlocal line
        line += 1
        return Where("specs/offline.yaml", line, 5)

    for a, aoi in enumerate(aois):
        asset_items: list[dict[str, Any]] = [
            {
                "id": _id("asset", a, j),
                "name": f"{aoi.name}-{j}",
                "date": f"{DATES[j]}T00:00:00Z",
                "resolution": 5.0,
                "status": "success",
                "created_at": f"{DATES[j]} 08:00:00.000000+00:00",
            }
            for j in range(ASSETS_PER_AOI)
        ]
        decls = []
        existing = []
        for k, index in enumerate(indices):
            rollbacks = (RollbackDecl("dynamic", DATES[:2], (at(), at()), 0, at()),)
            decls.append(
                VisualizationDecl(
                    index=index.name,
                    index_where=at(),
                    assets=tuple(AssetSel("id", asset["id"], at()) for asset in asset_items),
                    resolution=None,
                    rollbacks=rollbacks,
                    where=at(),
                )
            )
            if k < len(indices) - 1 - a % 2:  # 1 or 2 of the 5 are missing, like the world above
                existing.append(
                    {
                        "id": _id("viz", a, k),
                        "aoi_id": aoi.id,
                        "index_id": index.id,
                        "index_name": index.name,
                        "status": "success",
                        "progress": 100,
                        "updated_at": "2025-01-01 00:00:00.000000+00:00",
                        "created_at": "2025-01-01 00:00:00.000000+00:00",
                        "assets": asset_items,
                        "expression_type": "index",
                        "user_id": _id("user"),
                    }
                )
        declared = (AoiDecl(None, aoi.name, at(), tuple(decls)),)
        groups[aoi.id] = (aoi, declared)
        visualizations = listed(Visualization, existing)
        # The asset listing only when refresh would read it (docs/requests.md).
        assets: tuple[Asset, ...] | None = None
        if needs_assets_for_creates(declared, lookup, visualizations):
            assets = tuple(listed(Asset, asset_items))
        by_aoi[aoi.id] = ObservedAoi(aoi, tuple(visualizations), assets)
    observed = Observed(aois=tuple(aois), indices=indices, by_aoi=by_aoi)
    selection = Selection(groups)

    gc.collect()  # what building the inputs left behind is not the planner's to collect
    inputs_mb = peak_mb()
    cpu = time.process_time()
    plan = build_plan(resolve_desired(selection, observed), observed, State())
    cpu = time.process_time() - cpu
    return {
        "cpu": cpu,
        "planning_mb": peak_mb() - inputs_mb,
        "process_mb": peak_mb(),
        "inputs_mb": inputs_mb,
        "changes": len(plan.changes),
        "visualizations": n * per_aoi,
    }


def run_offline(n: int, per_aoi: int) -> dict[str, float]:
    """``offline_child`` in a fresh interpreter, so its peak memory is its own."""
    done = subprocess.run(
        [sys.executable, __file__, "--offline-child", str(n), str(per_aoi)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the offline benchmark failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


# --- report -------------------------------------------------------------------------------------


def print_phases(phases: list[Phase], latency_ms: float, parallelism: int) -> None:
    sequential = {p.n: p for p in phases if p.name == "sequential script"}
    header = (
        f"{'N':>5} {'phase':<18} {'requests':>8} {'bound':>6} {'x bound':>7} {'wall s':>7} "
        f"{'ideal s':>7} {'x ideal':>7} {'CPU s':>6} {'ms/req':>6} {'peak MB':>7} "
        f"{'emu CPU s':>9} {'seq/this':>8}"
    )
    print(header)
    print("-" * len(header))
    for p in phases:
        par = 1 if p.name == "sequential script" else parallelism
        ideal = p.requests * latency_ms / 1000 / par
        seq = sequential.get(p.n)
        versus = f"{seq.wall / p.wall:8.1f}" if seq is not None and p is not seq else f"{'':>8}"
        emu = f"{p.emulator_cpu:9.2f}" if p.emulator_cpu is not None else f"{'n/a':>9}"
        print(
            f"{p.n:>5} {p.name:<18} {p.requests:>8} {p.lower_bound:>6} "
            f"{p.requests / p.lower_bound:>7.3f} {p.wall:>7.2f} {ideal:>7.2f} "
            f"{p.wall / ideal if ideal else 0:>7.2f} {p.cpu:>6.2f} "
            f"{1000 * p.cpu / max(1, p.requests):>6.2f} {p.peak_mb:>7.0f} {emu} {versus}"
        )
        if p.state_calls:
            cpu_share = 100 * (p.state_cpu or 0) / max(p.cpu, 1e-9)
            wall_share = 100 * (p.state_occupied or 0) / max(p.wall, 1e-9)
            print(
                f"{'':>5}   state writes (the state store's journal): {p.state_calls} "
                f"calls, {p.state_cpu or 0:.2f} CPU s ({cpu_share:.0f}% of the phase's), "
                f"{p.state_occupied or 0:.2f} s of its wall ({wall_share:.0f}%); without them "
                f"{1000 * (p.cpu - (p.state_cpu or 0)) / max(1, p.requests):.2f} CPU ms/request"
            )
        if p.name == "first apply":
            shown = ", ".join(f"{n} {route}" for route, n in sorted(p.routes.items()))
            print(f"{'':>5}   requests: {shown}")
        if p.note:
            print(f"{'':>5}   !! {p.note}")


@dataclass
class Check:
    name: str
    value: str
    ok: bool


def _without_state(p: Phase) -> float:
    return p.cpu - (p.state_cpu or 0.0)


def checks(
    phases: list[Phase],
    offline: dict[str, float] | None,
    n: int,
    baseline: int | None,
    latency_ms: float,
    parallelism: int,
    startup: dict[str, float] | None = None,
    pr: dict[str, float] | None = None,
) -> tuple[list[Check], list[str]]:
    """Every target, met or not, and notes on what they depend on."""
    out: list[Check] = []
    notes: list[str] = []
    at_n = {p.name: p for p in phases if p.n == n}
    for name in ("cold plan", "first apply", "converged plan"):
        p = at_n.get(name)
        if p is None:
            continue
        ratio = p.requests / p.lower_bound
        out.append(Check(f"{name}: requests <= 1.05 x lower bound", f"{ratio:.3f}", ratio <= 1.05))
        ideal = p.requests * latency_ms / 1000 / parallelism
        out.append(
            Check(
                f"{name}: wall <= 1.5 x requests x latency / parallelism",
                f"{p.wall / ideal:.2f}",
                p.wall <= 1.5 * ideal,
            )
        )
        seq = at_n.get("sequential script")
        if seq is not None:
            # The unit is the plainest script's CPU per request, measured in this run: the
            # machine's speed and load cancel out.
            ratio = (p.cpu / p.requests) / (seq.cpu / seq.requests)
            out.append(
                Check(
                    f"{name}: our CPU per request <= 1.5 x the sequential script's",
                    f"{ratio:.2f}",
                    ratio <= 1.5,
                )
            )
        if p.note:
            out.append(Check(f"{name}: did the expected work", p.note, False))
        if p.state_calls and (p.state_cpu or 0) > 0.25 * p.cpu:
            notes.append(
                f"{name}: the state store's writes took {p.state_cpu or 0:.1f} of its "
                f"{p.cpu:.1f} CPU s and held up {p.state_occupied or 0:.1f} of its "
                f"{p.wall:.1f} s; without them {1000 * _without_state(p) / p.requests:.2f} CPU "
                "ms/request. Each record should be an O(1) journal append: a share this "
                "large means the state store's write path regressed."
            )
    apply_n, seq = at_n.get("first apply"), at_n.get("sequential script")
    if apply_n is not None and seq is not None:
        speedup = seq.wall / apply_n.wall
        out.append(
            Check(
                "first apply >= 5x faster than the sequential script",
                f"{speedup:.1f}x",
                speedup >= 5,
            )
        )
    concurrent, again = at_n.get("concurrent script"), at_n.get("concurrent, again")
    if apply_n is not None and concurrent is not None:
        slower = apply_n.wall / concurrent.wall
        out.append(
            Check(
                "first apply: wall <= 1.1 x the concurrent script's",
                f"{slower:.2f}",
                slower <= 1.1,
            )
        )
        # What the request counts alone allow: the product waits for each new visualization
        # to be usable (one listing per AOI with creates) and the script does not.
        per_request = (apply_n.wall / apply_n.requests) / (concurrent.wall / concurrent.requests)
        notes.append(
            f"first apply: {apply_n.requests} requests to the concurrent script's "
            f"{concurrent.requests}, so {apply_n.requests / concurrent.requests:.2f} x its wall "
            f"at an equal time per request; per request it took {per_request:.2f} x the script's"
        )
    converged = at_n.get("converged plan")
    if converged is not None and again is not None:
        faster = again.wall / converged.wall
        out.append(
            Check(
                "converged plan >= 3x faster than the concurrent script's second run",
                f"{faster:.1f}x",
                faster >= 3,
            )
        )
        per_request = (converged.wall / converged.requests) / (again.wall / again.requests)
        notes.append(
            f"converged plan: {converged.requests} requests to the script's {again.requests}, "
            f"so at most {again.requests / converged.requests:.2f} x faster at an equal time per "
            f"request and no fixed cost; per request it took {per_request:.2f} x the script's"
        )
    if baseline is not None:
        for name in ("cold plan", "first apply", "converged plan"):
            big = at_n.get(name)
            small = next((p for p in phases if p.n == baseline and p.name == name), None)
            if big is None or small is None:
                continue
            growth = (big.cpu / big.n) / (small.cpu / small.n)
            out.append(
                Check(
                    f"{name}: CPU per AOI at N={n} <= 1.3 x N={baseline}",
                    f"{growth:.2f}",
                    growth <= 1.3,
                )
            )
            if big.state_calls and growth > 1.3:
                mine = (_without_state(big) / big.n) / (_without_state(small) / small.n)
                notes.append(
                    f"{name}: without the state store's writes, CPU per AOI grows {mine:.2f}x "
                    f"from N={baseline} to N={n}"
                )
    if offline is not None and seq is not None:
        # Planning a visualization must cost far less than sending one request does.
        ratio = (offline["cpu"] / offline["visualizations"]) / (seq.cpu / seq.requests)
        out.append(
            Check(
                "offline plan: CPU per visualization <= 0.05 x the sequential script's per request",
                f"{ratio:.3f}",
                ratio <= 0.05,
            )
        )
    if offline is not None:
        out.append(
            Check(
                # The whole process, input included: a real plan holds its input too.
                "offline plan < 300 MB at its peak (the whole process)",
                f"{offline['process_mb']:.0f}",
                offline["process_mb"] < 300,
            )
        )
    if pr is not None:
        out.append(
            Check(
                "pr plan: requests <= 10",
                f"{pr['pr plan requests']:.0f}",
                pr["pr plan requests"] <= 10,
            )
        )
        share = pr["pr plan wall"] / pr["whole plan wall"]
        out.append(Check("pr plan: wall <= 0.1 x the whole plan's", f"{share:.3f}", share <= 0.1))
        share = pr["pr plan warm wall"] / pr["whole plan wall"]
        out.append(
            Check(
                "pr plan, spec cache warm: wall <= 0.1 x the whole plan's",
                f"{share:.3f}",
                share <= 0.1,
            )
        )
        cold = pr["validate"] / pr["libyaml load"]
        out.append(
            Check("specs: validate cold <= 1.2 x a bare libyaml load", f"{cold:.2f}", cold <= 1.2)
        )
        warm = pr["validate warm"] / pr["libyaml load"]
        out.append(
            Check("specs: validate warm <= 0.5 x a bare libyaml load", f"{warm:.2f}", warm <= 0.5)
        )
    if startup:
        for name, command, peer in (
            ("reconciler --help", "help", "import click"),
            ("offline validate", "validate", "import click, pydantic, yaml"),
            (
                "offline validate, spec cache warm",
                "validate, spec cache warm",
                "import click, pydantic, yaml",
            ),
        ):
            ratio = startup[command] / startup[peer]
            out.append(Check(f"{name}: wall <= 2 x `{peer}`", f"{ratio:.2f}", ratio <= 2))
    return out, notes


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--aois", type=int, default=1000, help="N, the AOIs of the world")
    parser.add_argument(
        "--baseline-aois",
        type=int,
        default=100,
        help="also run at this N to check that the cost grows linearly (0: skip)",
    )
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="run each plan (read-only) this many times and keep the median of each figure",
    )
    parser.add_argument("--offline-aois", type=int, default=10_000)
    parser.add_argument(
        "--pr-aois", type=int, default=10_000, help="the estate a pull request's plan is part of"
    )
    parser.add_argument("--pr-touched", type=int, default=3, help="AOIs the pull request changes")
    parser.add_argument("--offline-visualizations", type=int, default=5, help="per AOI")
    parser.add_argument(
        "--skip",
        nargs="+",
        choices=("sequential", "concurrent", "offline", "startup", "pr"),
        default=[],
        help="leave out a peer script (the sequential one is the slowest part), the offline "
        "plan, the start-up figures or the pull request's plan",
    )
    parser.add_argument("--offline-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    # The spec cache is off unless a figure says it is on: every run here starts cold, as on
    # a fresh CI runner, and the user's own cache is never touched.
    os.environ["RECONCILER_CACHE_DIR"] = "off"

    if args.offline_child:
        print(json.dumps(offline_child(*args.offline_child)))
        return 0
    compiled = _byte_compiled()

    if not compiled:
        print("note: reconciler's bytecode could not be written; every process compiles it")
    sizes = [args.aois]
    baseline = args.baseline_aois if 0 < args.baseline_aois < args.aois else None
    if baseline is not None:
        sizes.insert(0, baseline)
    print(
        f"reconciler scale benchmark: {args.latency_ms:g} ms latency, parallelism "
        f"{args.parallelism}, {os.cpu_count()} CPUs; emulator in its own process; plans: "
        f"medians of {args.repeat} runs"
    )
    phases: list[Phase] = []
    for n in sizes:
        world = build_world(n)
        print(
            f"N={n}: {n} AOIs x {ASSETS_PER_AOI} assets, {n * len(INDICES)} declared "
            f"visualizations ({world.creates} to create), {world.rollbacks} rollbacks ...",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="reconciler-scale-") as tmp_name:
            tmp = Path(tmp_name)
            world_path = tmp / "world.yaml"
            world_path.write_text(yaml.safe_dump(world_file(world)))
            with EmulatorProcess(world_path, args.latency_ms) as emulator:
                phases += run_reconciler(world, tmp, emulator, args.parallelism, args.repeat)
            if "sequential" not in args.skip:
                with EmulatorProcess(world_path, args.latency_ms) as emulator:
                    phases.append(run_sequential(world, emulator))
            if "concurrent" not in args.skip:
                with EmulatorProcess(world_path, args.latency_ms) as emulator:
                    phases += run_concurrent(world, emulator, args.parallelism)

    print()
    print_phases(phases, args.latency_ms, args.parallelism)
    offline = None
    if "offline" not in args.skip:
        offline = run_offline(args.offline_aois, args.offline_visualizations)
        print(
            f"\noffline: {args.offline_aois} AOIs x {args.offline_visualizations} visualizations "
            f"resolved and planned ({int(offline['changes'])} changes) in "
            f"{offline['cpu']:.2f} CPU s, using {offline['planning_mb']:.0f} MB at its peak "
            f"(the process peaked at {offline['process_mb']:.0f} MB, "
            f"{offline['inputs_mb']:.0f} MB of it the interpreter and the hand-built input)"
        )
    pr = None
    if "pr" not in args.skip:
        pr = run_pr_plan(args.pr_aois, args.pr_touched, args.latency_ms, args.parallelism)
        print(
            f"\npull request touching {args.pr_touched} of {args.pr_aois:,} AOIs: "
            f"--changed-since read {pr['pr plan aois']:.0f} AOIs with "
            f"{pr['pr plan requests']:.0f} requests in {pr['pr plan wall']:.2f} s "
            f"({pr['pr plan cpu']:.2f} CPU s); the whole plan {pr['whole plan requests']:.0f} "
            f"requests in {pr['whole plan wall']:.2f} s ({pr['whole plan cpu']:.2f} CPU s). "
            f"With the spec cache warm: {pr['pr plan warm wall']:.2f} s. Spec loading: validate "
            f"{pr['validate']:.2f} CPU s ({pr['validate filling the cache']:.2f} filling the "
            f"spec cache, {pr['validate warm']:.2f} from it), a bare libyaml load "
            f"{pr['libyaml load']:.2f}"
        )
    startup = None
    if "startup" not in args.skip:
        startup = run_startup(Path(__file__).resolve().parent.parent / "specs")
        print(
            "\nstart-up (median wall of 5 fresh processes): "
            + ", ".join(f"{name} {wall:.2f} s" for name, wall in startup.items())
        )
    print()
    results, notes = checks(
        phases, offline, args.aois, baseline, args.latency_ms, args.parallelism, startup, pr
    )
    for check in results:
        print(f"  [{'ok' if check.ok else 'MISSED'}] {check.name}: {check.value}")
    for note in notes:
        print(f"  note: {note}")
    return 0 if all(c.ok for c in results) else 1


if __name__ == "__main__":
    sys.exit(main())
