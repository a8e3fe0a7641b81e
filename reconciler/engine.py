"""The engine: one owner for the pipeline between the command line and the library.

It holds the typed ``Settings`` (API, key source, parallelism, rate, state location, sandbox),
builds the client and the state store from them, and runs every command from start to end:
validate (offline and online), plan, and apply of specs or of a saved plan (load, re-read, stale
check, safety, lock). The CLI parses flags, calls one method here and prints what comes back;
tests and benchmarks call the same methods, so there is no second copy of the pipeline.

Settings travel one road: ``parallelism`` sizes the client's connection pool and every worker
pool, so the two can never drift apart.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.apply import Applier, ApplyResult, now
from reconciler.atomicfile import write_atomically
from reconciler.client import PixxelClient
from reconciler.config import DEFAULT_API_URL, resolve_api_key
from reconciler.errors import ConfigError, PlanFileError, Problem, SpecError, StateError
from reconciler.events import Listener, ignore
from reconciler.lock import Holder
from reconciler.plan import Plan
from reconciler.planner import build_plan
from reconciler.refresh import refresh
from reconciler.resolve import resolve_desired
from reconciler.spec import Specs, load_specs, validate_specs
from reconciler.stale import check_not_stale
from reconciler.state import DEFAULT_STATE_PATH, State
from reconciler.statecheck import with_state_warnings
from reconciler.statestore import StateStore

log = logging.getLogger(__name__)

#: What ``plan`` and ``apply`` read when given no spec paths.
DEFAULT_SPEC_PATHS = ("specs/",)


@dataclass(frozen=True)
class Settings:
    """Everything that says where and how to talk to the API and keep state.

    The key itself is not held here: only where to find it (``api_key_file``, else
    ``PIXXEL_API_KEY`` in ``environ``), read when a connection is opened.
    """

    api_url: str = DEFAULT_API_URL
    api_key_file: Path | None = None
    sandbox: bool = False
    parallelism: int = 8
    max_rps: float | None = None
    #: A path or URL (s3://, gs://, az://, file://); default .reconciler/state.json, and
    #: .reconciler/sandbox/state.json with the sandbox.
    state: str | Path | None = None
    #: Seconds to wait for another apply's state lock (0: fail at once).
    lock_timeout: float = 0.0
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)


@dataclass(frozen=True)
class ApplyOptions:
    """How apply runs, beyond what the plan says."""

    targets: tuple[str, ...] = ()
    wait_timeout: float = 600.0
    poll_interval: float = 1.0
    fail_fast: bool = False
    max_changes: int | None = None
    force: bool = False


@dataclass(frozen=True)
class ValidationResult:
    """What ``validate`` found: problems make the specs invalid, notes do not."""

    files: tuple[str, ...]
    problems: tuple[Problem, ...]
    notes: tuple[Problem, ...]
    specs: Specs | None

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Connection:
    client: PixxelClient
    api_label: str  # what plans record as their API (stable across sandbox runs)
    store: StateStore


def is_plan_file(paths: Sequence[str]) -> bool:
    """One argument naming a file that is not YAML: a saved plan (from 'plan --out')."""
    if len(paths) != 1:
        return False
    path = Path(paths[0])
    return path.is_file() and path.suffix.lower() not in (".yaml", ".yml")


def load_plan_file(path: Path) -> Plan:
    """A plan saved by ``plan --out``; ``PlanFileError`` for anything else."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanFileError(f"{path}: not a saved plan ({exc})") from None
    return Plan.from_dict(data)


def write_file(path: Path, text: str) -> None:
    """Write a plan or report whole or not at all (other programs read them)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_report(
    path: Path, result: ApplyResult | None, error: BaseException | str | None = None
) -> None:
    """The ``--report`` JSON: what happened to every change, or why nothing started."""
    if result is None:
        result = ApplyResult(api_url="", started_at=now(), finished_at=now())
    data = result.to_dict()
    if error is not None:
        data = {**data, "ok": False, "error": str(error)}
    write_file(path, json.dumps(data, indent=2) + "\n")


class Engine:
    """Runs reconciler's commands with one set of ``Settings``.

    ``client`` replaces the client the settings would build (tests tune its retries);
    ``listener`` receives progress events from refresh and apply.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client: PixxelClient | None = None,
        listener: Listener = ignore,
    ) -> None:
        self.settings = settings
        self._client = client
        self._listener = listener

    # --- validate -------------------------------------------------------------------------

    def validate(self, paths: Sequence[str], *, online: bool = False) -> ValidationResult:
        """Offline checks of every spec file; with ``online`` also resolve against the API.

        Raises ``SpecError`` only when there is nothing to check (no such path, no spec files).
        """
        report = validate_specs(paths)
        problems = list(report.problems)
        if online and report.specs is not None and not problems:
            with self._connect() as conn:
                selection, observed = refresh(
                    report.specs,
                    conn.client,
                    parallelism=self.settings.parallelism,
                    listener=self._listener,
                )
            problems.extend(resolve_desired(selection, observed).problems)
        return ValidationResult(report.files, tuple(problems), report.notes, report.specs)

    # --- plan -----------------------------------------------------------------------------

    def plan(self, spec_paths: Sequence[str] = (), *, targets: Sequence[str] = ()) -> Plan:
        """Read the specs and the API, and plan against the state (read-only)."""
        paths = tuple(spec_paths) or DEFAULT_SPEC_PATHS
        specs = load_specs(paths)
        with self._connect() as conn:
            return self._plan(conn, specs, paths, targets)

    def _plan(
        self, conn: _Connection, specs: Specs, paths: Sequence[str], targets: Sequence[str]
    ) -> Plan:
        state = conn.store.load()
        selection, observed = refresh(
            specs,
            conn.client,
            targets=targets,
            parallelism=self.settings.parallelism,
            listener=self._listener,
        )
        plan = build_plan(
            resolve_desired(selection, observed),
            observed,
            state,
            spec_fingerprint=specs.fingerprint,
            spec_paths=paths,
            api_url=conn.api_label,
            targets=targets,
        )
        return with_state_warnings(plan, state, conn.store.label)

    # --- apply ----------------------------------------------------------------------------

    def apply(
        self,
        paths: Sequence[str],
        options: ApplyOptions = ApplyOptions(),
        *,
        show: Callable[[Plan], None] = lambda plan: None,
        confirm: Callable[[Plan], None] = lambda plan: None,
    ) -> ApplyResult | None:
        """Plan (or load and re-check a saved plan), then carry it out under the state lock.

        ``paths`` are spec paths, or one saved plan file. ``show`` sees the plan about to be
        applied; ``confirm`` may raise to refuse it. Returns None when there was nothing to do.
        """
        saved = load_plan_file(Path(paths[0])) if is_plan_file(paths) else None
        if saved is not None and options.targets:
            raise ConfigError("--target applies to planning; a saved plan already has its targets")
        spec_paths = saved.spec_paths if saved is not None else (tuple(paths) or DEFAULT_SPEC_PATHS)
        specs = load_specs(spec_paths)
        with self._connect() as conn, conn.store.lock(self.settings.lock_timeout):
            if saved is None:
                plan = self._plan(conn, specs, spec_paths, options.targets)
            else:
                plan = saved
                self._check_saved(conn, plan, specs)
            show(plan)
            if not plan.has_changes:
                return None
            plan.raise_if_unsafe(options.max_changes, force=options.force)
            confirm(plan)  # the lock above already (re)loaded the state
            applier = Applier(
                conn.client,
                conn.store,
                parallelism=self.settings.parallelism,
                wait_timeout=options.wait_timeout,
                poll_interval=options.poll_interval,
                fail_fast=options.fail_fast,
                listener=self._listener,
            )
            # Someone broke our lock: stop, rather than keep changing what another apply owns.
            conn.store.on_lock_lost = applier.request_stop
            return applier.apply(plan)

    def _check_saved(self, conn: _Connection, plan: Plan, specs: Specs) -> None:
        affected = sorted(plan.affected_aois)
        fresh = {}
        if affected:
            _, observed = refresh(
                specs,
                conn.client,
                targets=affected,
                parallelism=self.settings.parallelism,
                listener=self._listener,
            )
            fresh = observed.snapshots()
        check_not_stale(
            plan, spec_fingerprint=specs.fingerprint, observed=fresh, api_url=conn.api_label
        )

    # --- state ----------------------------------------------------------------------------

    def state_location(self) -> str | Path:
        """Where the state is: ``--state``, else the sandbox's or the default file."""
        if self.settings.state:
            return self.settings.state
        if self.settings.sandbox:
            from reconciler.sandbox import SANDBOX_DIR

            return SANDBOX_DIR / "state.json"
        return DEFAULT_STATE_PATH

    def store(self) -> StateStore:
        """The state store the settings name (``ConfigError`` if its backend is missing)."""
        return StateStore(self.state_location())

    def state_show(self) -> tuple[StateStore, State, Holder | None]:
        """The state's records and who holds its lock now (read-only, no lock taken)."""
        store = self.store()
        return store, store.load(), store.read_lock()

    def state_rm(self, visualization_ids: Sequence[str]) -> StateStore:
        """Forget the records of ``visualization_ids``, under the lock; all or nothing.

        ``StateError`` naming the ids that have no record (then nothing is removed).
        """
        store = self.store()
        with store.lock(self.settings.lock_timeout):
            unknown = [v for v in visualization_ids if store.state.get(v) is None]
            if unknown:
                raise StateError(
                    f"{store.label} has no record of {', '.join(unknown)}; nothing was removed "
                    "(see 'reconciler state show')"
                )
            for visualization_id in visualization_ids:
                store.remove(visualization_id)
        return store

    def state_unlock(self, lock_id: str) -> tuple[StateStore, Holder]:
        """Break the state lock whose id is ``lock_id``; the store and the lock's holder."""
        store = self.store()
        return store, store.unlock(lock_id)

    # --- connection -----------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[_Connection]:
        """A client for the real API or the in-process sandbox, and the state store to use."""
        settings = self.settings
        store = self.store()  # first: a missing backend is reported before any request
        if settings.sandbox:
            from reconciler.sandbox import SANDBOX_URL_LABEL, sandbox

            with sandbox() as box, self._client_for(box.url, box.api_key) as client:
                yield _Connection(client, SANDBOX_URL_LABEL, store)
            return
        if self._client is not None:
            yield _Connection(self._client, self._client.base_url, store)
            return
        key = resolve_api_key(settings.api_key_file, settings.environ)
        with self._client_for(settings.api_url, key) as client:
            yield _Connection(client, client.base_url, store)

    def _client_for(self, url: str, key: str) -> PixxelClient:
        return PixxelClient(
            url, key, parallelism=self.settings.parallelism, max_rps=self.settings.max_rps
        )


__all__ = [
    "DEFAULT_SPEC_PATHS",
    "ApplyOptions",
    "Engine",
    "Settings",
    "SpecError",
    "ValidationResult",
    "is_plan_file",
    "load_plan_file",
    "write_file",
    "write_report",
]
