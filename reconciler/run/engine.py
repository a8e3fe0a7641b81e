"""The engine: one owner for the pipeline between the command line and the library.

It holds the typed ``Settings`` (API, key source, parallelism, rate, state location, sandbox),
builds the client and the state store from them, and runs every command from start to end:
validate (offline and online), plan, apply of specs or of a saved plan (load, re-read, stale
check, safety, lock), and export of what exists as specs. The CLI parses flags, calls one method
here and prints what comes back; tests and benchmarks call the same methods, so there is no
second copy of the pipeline.

Settings travel one road: ``parallelism`` sizes the client's connection pool and every worker
pool, so the two can never drift apart.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from reconciler.api.client import PixxelClient
from reconciler.api.config import resolve_api_key
from reconciler.core import selectors
from reconciler.core.changes import changed_scope, leftovers, pending_refs
from reconciler.core.drift import Drift, classify
from reconciler.core.ignore import resolve_ignores
from reconciler.core.legends import legends_to_read
from reconciler.core.observed import Observed
from reconciler.core.plan import AoiName, ChangedSince, IndexCreate, Plan, Sharding
from reconciler.core.planner import build_plan, index_changes
from reconciler.core.resolve import Selection, preset_named, resolve_desired
from reconciler.core.stale import check_not_stale, desired_snapshots, stale_error
from reconciler.core.statecheck import with_state_warnings
from reconciler.core.verify import changed_leftovers, check_changes
from reconciler.errors import (
    ApplyError,
    ConfigError,
    ReconcilerError,
    ResolutionError,
    StateError,
    UnknownTargetError,
)
from reconciler.run import signals
from reconciler.run.apply import Applier
from reconciler.run.events import Listener, Planned, Stopping, ignore
from reconciler.run.exporting import Export, ExportOptions, ExportResult
from reconciler.run.output import write_file
from reconciler.run.owners import Family, describe
from reconciler.run.refresh import read_account, read_legends, refresh
from reconciler.run.results import ApplyOutcome, ApplyResult, now
from reconciler.run.revision import specs_at
from reconciler.run.savedplan import (
    check_spec_paths,
    is_plan_file,
    load_plan_file,
    replan_command,
    saved_shard,
    split_plan_paths,
)
from reconciler.run.settings import DEFAULT_SPEC_PATHS, Settings, guard_secrets
from reconciler.run.signals import interrupt_message
from reconciler.run.statecmds import copy_state, remove_records
from reconciler.spec.decls import SelectorDecl, Specs, ValidationReport
from reconciler.spec.load import CheckedFiles, load_specs, validate_specs
from reconciler.state.family import names_a_shard, sharded
from reconciler.state.holder import Holder, LockNotReleasedError
from reconciler.state.lock import STALE_AFTER_SECONDS, StateLock
from reconciler.state.records import DEFAULT_STATE_PATH, State
from reconciler.state.store import StateStore

log = logging.getLogger(__name__)

#: Seconds a take-over waits for each other state's lock, whatever --lock-timeout says: shards
#: taking their AOIs from one state at once each hold its lock a moment only.
TAKE_OVER_WAIT = 60.0


@dataclass(frozen=True)
class ApplyOptions:
    """How apply runs, beyond what the plan says."""

    targets: tuple[str, ...] = ()
    wait_timeout: float = 600.0
    poll_interval: float = 1.0
    fail_fast: bool = False
    max_changes: int | None = None
    force: bool = False
    #: Asked once the plan is known and safe, before any change (the second argument: whether
    #: records also move here from the states that own the plan's AOIs, ``take_over``; asked
    #: for that alone too): False cancels apply. None applies without asking (``--yes``).
    approve: Callable[[Plan, bool], bool] | None = None
    #: Flags the follow-up commands that messages suggest must repeat (``--sandbox``, ...).
    carried: tuple[str, ...] = ()
    #: Move the records of this plan's AOIs from the other states that own them (``--take-over``)
    #: instead of refusing them.
    take_over: bool = False


@dataclass
class _ApplyRun:
    """What one ``Engine.apply`` has got to so far, for the outcome it returns."""

    started_at: str
    plan: Plan | None = None
    result: ApplyResult | None = None  # set the moment the changes end
    store: StateStore | None = None  # once connected: it says whether its lock was left
    left: tuple[AoiName, ...] = ()  # leftovers the saved plan carried and did not apply

    def outcome(self, *, error: ReconcilerError | None = None, signal: str = "") -> ApplyOutcome:
        result = self.result
        if result is None:  # no change was started: an empty result, timed
            api_url = self.plan.api_url if self.plan is not None else ""
            result = ApplyResult(api_url, started_at=self.started_at, finished_at=now())
            if signal:
                result.interrupted, result.stop_reason = True, signal
        result.left_pending = list(self.left)
        left = self.store.lock_left if self.store is not None else None
        if left is not None:
            # Whatever else ended apply, the lock it leaves blocks the next one: the report
            # and the exit status say so, with the command that clears it.
            result.state_error = "; ".join(filter(None, [result.state_error, str(left)]))
        return ApplyOutcome(result, self.plan, error, signal)


def _limited(since: ChangedSince | None) -> bool:
    """Whether a plan of what changed since a revision left anything out (not everything)."""
    return since is not None and not since.everything


@dataclass
class _Connection:
    client: PixxelClient
    api_label: str  # what plans record as their API (stable across sandbox runs)
    store: StateStore
    _family: Family | None = None

    @property
    def family(self) -> Family:
        """The other states beside this one (other shards'), read once, on first use."""
        return self.read_family()._family or Family()

    def read_family(self) -> _Connection:
        """This connection, with its family read (once)."""
        if self._family is None:
            self._family = Family.of(self.store)
        return self


def _remember_selectors(store: StateStore, plan: Plan) -> None:
    """Record what each selector of the applied plan matched, for later plans to compare.

    Only the records of the spec files the plan read are replaced: applying one file keeps
    what the others' selectors matched.
    """
    store.record_selectors(
        selectors.records(plan.selectors),
        replacing=lambda file: selectors.covered(file, plan.spec_paths),
    )


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
        if settings.timeout is not None and not settings.timeout > 0:
            raise ConfigError(f"--timeout must be positive, got {settings.timeout:g}.")
        # The run's clock starts with the engine: --timeout covers the whole command.
        self._deadline = (
            time.monotonic() + settings.timeout if settings.timeout is not None else None
        )
        guard_secrets(settings)

    # --- validate -------------------------------------------------------------------------

    def validate(self, paths: Sequence[str], *, online: bool = False) -> ValidationReport:
        """Offline checks of every spec file; with ``online`` also resolve against the API, in
        the same round (what offline problems leave whole: ``ValidationReport.checkable``).

        Online, ``assets: any`` resolves to the visualization the state remembers, as plan
        does, so its rollback dates are checked against the one apply would roll back.
        Raises ``SpecError`` only when there is nothing to check (no such path, no spec files).
        """
        report = validate_specs(paths)
        specs = report.checkable
        if online and specs is not None:
            with self._connect() as conn:
                remembered = conn.family.with_records(conn.store.load()).visualizations.keys()
                selection, observed = self._refresh(conn, specs)
            desired = resolve_desired(selection, observed.all_read(), remembered)
            rules = resolve_ignores(specs, selection, observed.indices)
            report = report.with_online((*desired.problems, *rules.problems))
        return report

    # --- plan -----------------------------------------------------------------------------

    def plan(
        self,
        spec_paths: Sequence[str] = (),
        *,
        targets: Sequence[str] = (),
        changed_since: str | None = None,
    ) -> Plan:
        """Read the specs and the API, and plan against the state (read-only).

        ``changed_since``: a git revision; only the AOIs whose declarations changed since then
        are read and planned (``core.changes``), and the plan says so.
        """
        paths = tuple(spec_paths) or DEFAULT_SPEC_PATHS
        checked = CheckedFiles()  # the files unchanged since changed_since are checked once
        specs = load_specs(paths, checked=checked)
        if changed_since is None:
            with self._connect() as conn:
                plan = self._plan(conn, specs, paths, targets, conn.store.load())
                _note_lock(conn.store)
                return plan
        if targets:
            raise ConfigError(
                "--changed-since chooses the AOIs itself; leave out --target (or plan the "
                "targets without --changed-since)"
            )
        base = specs_at(changed_since, paths, checked=checked)
        scope = changed_scope(base.specs, specs) if base.specs is not None else None
        everything = base.reason if scope is None else scope.everything
        if everything:
            log.warning("planning every AOI: %s", everything)
        left: tuple[str, ...] = ()
        with self._connect() as conn:
            state = conn.store.load()
            if everything or scope is None:
                plan = self._plan(conn, specs, paths, (), state)
            else:
                # What an earlier apply left unfinished is planned too, to be in this review.
                pending = conn.family.pending(state)
                targets, named = pending_refs(pending, specs)
                selection, observed = self._refresh(
                    conn,
                    specs,
                    tuple(dict.fromkeys((*scope.aois, *targets))),
                    also=scope.selectors,
                    also_named=(*scope.removed, *named),
                    limited=True,
                )
                left = leftovers(selection.groups, scope, pending)
                plan = self._plan_from(
                    conn,
                    specs,
                    paths,
                    tuple(aoi.name for aoi, _ in selection.groups.values()),
                    state,
                    selection,
                    observed,
                    # The custom indices the change touched, and those its creates need.
                    only_needed_indices=True,
                    also_indices=scope.indices,
                )
            _note_lock(conn.store)
        since = ChangedSince(
            ref=changed_since,
            commit=base.commit,
            aois=len(plan.observed),
            everything=everything,
            indices=() if scope is None or everything else scope.indices,
            removed=() if scope is None or everything else scope.removed,
            pending=left,
        )
        return dataclasses.replace(plan, changed_since=since)

    # --- drift ----------------------------------------------------------------------------

    def drift(
        self, spec_paths: Sequence[str] = (), *, targets: Sequence[str] = ()
    ) -> tuple[Plan, Drift]:
        """Plan, read-only, and sort what is not in sync by kind (``core.drift``).

        Never writes a plan, the state or a lock: a scheduled job can run it as often as it
        likes, beside applies.
        """
        paths = tuple(spec_paths) or DEFAULT_SPEC_PATHS
        specs = load_specs(paths)
        with self._connect() as conn:
            state = conn.store.load()
            plan = self._plan(conn, specs, paths, targets, state)
            records = conn.family.with_records(state)
        return plan, classify(plan, records)

    def _plan(
        self,
        conn: _Connection,
        specs: Specs,
        paths: Sequence[str],
        targets: Sequence[str],
        state: State,
    ) -> Plan:
        selection, observed = self._refresh(conn, specs, targets)
        return self._plan_from(conn, specs, paths, targets, state, selection, observed)

    def _plan_from(
        self,
        conn: _Connection,
        specs: Specs,
        paths: Sequence[str],
        targets: Sequence[str],
        state: State,
        selection: Selection,
        observed: Observed,
        *,
        only_needed_indices: bool | None = None,
        also_indices: Sequence[str] = (),
    ) -> Plan:
        """The plan of what ``selection`` and ``observed`` hold, against ``state`` (this
        command's own) and the records of the AOIs other states of its family own."""
        own, state = state, conn.family.with_records(state)
        shard = self.settings.shard
        if shard is not None and shard.index > 1:
            # The custom indices are the first shard's, but for those this one's creates need.
            only_needed_indices, also_indices = True, ()
        desired = resolve_desired(selection, observed, state.visualizations.keys())
        rules = resolve_ignores(specs, selection, observed.indices)
        if rules.problems:
            raise ResolutionError((*desired.problems, *rules.problems))
        if not desired.problems:
            reads = legends_to_read(desired, observed, state)
            if reads:
                legends = read_legends(
                    conn.client,
                    reads,
                    parallelism=self.settings.parallelism,
                    listener=self._listener,
                )
                observed = dataclasses.replace(observed, legends=legends)
        plan = build_plan(
            desired,
            observed,
            state,
            ignore=rules,
            spec_paths=paths,
            api_url=conn.api_label,
            targets=targets,
            previous_matches=selectors.in_shard(
                selectors.previous_records(own.selectors, paths), shard
            ),
            only_needed_indices=only_needed_indices,
            also_indices=also_indices,
        )
        if shard is not None:
            plan = dataclasses.replace(plan, shard=Sharding(shard.count, (shard.index,)))
        # A pull request's plan reading the shards' records is no conflict: only a state
        # that applies (a shard's, or one with records) can collide with another.
        owned = conn.family.warning(plan, conn.store.label)
        if owned is not None:
            plan = dataclasses.replace(plan, warnings=(*plan.warnings, owned))
        return with_state_warnings(plan, state, conn.store.label)

    # --- apply ----------------------------------------------------------------------------

    def apply(self, paths: Sequence[str], options: ApplyOptions = ApplyOptions()) -> ApplyOutcome:
        """Plan (or load and re-check a saved plan), then carry it out under the state lock.

        ``paths`` are spec paths, or one saved plan file. The listener gets a ``Planned``
        event with the plan about to be applied, before ``options.approve`` is asked.

        Returns how apply ended, whatever happened: what refused it (an error), a stop signal
        before any change (a ``KeyboardInterrupt`` here), or what every change came to. While
        changes are made, stop signals stop them cleanly (``signals.delivering``), and from
        then on they are only noted, so what was done is always reported.
        """
        run = _ApplyRun(started_at=now())
        try:
            self._apply(paths, options, run)
        except LockNotReleasedError:
            pass  # all else went well; the outcome tells the lock left behind (run.store)
        except StateError as exc:
            if run.result is None:
                return run.outcome(error=exc)
            # The changes happened: saving their records (or releasing the lock) failed after
            # them. Report both, rather than let the error hide what was done.
            run.result.state_error = str(exc)
        except ReconcilerError as exc:
            return run.outcome(error=exc)
        except KeyboardInterrupt as exc:
            if run.result is None:  # before any change: planning, the lock
                return run.outcome(signal=interrupt_message(exc))
        return run.outcome()

    def _apply(self, paths: Sequence[str], options: ApplyOptions, run: _ApplyRun) -> None:
        plan_path, spec_args = split_plan_paths(paths)
        spec_paths = tuple(spec_args) or DEFAULT_SPEC_PATHS
        saved, replan = None, ""
        if plan_path is not None:
            saved = load_plan_file(Path(plan_path))
            replan = replan_command(saved, plan_path, spec_paths, options.carried)
            shard = saved_shard(saved, plan_path, self.settings.shard)
            self.settings = dataclasses.replace(self.settings, shard=shard)
            if options.targets:
                raise ConfigError(
                    "--target applies to planning; a saved plan already has its targets"
                )
            check_spec_paths(saved, plan_path, spec_paths)
        specs = load_specs(spec_paths)
        # The other states are read before this one's lock is taken: they need no lock, and
        # a storage that fails meanwhile fails the apply before it holds anything.
        with self._connect() as conn, self._locked(conn.read_family().store):
            run.store = conn.store  # for the outcome: whether leaving the lock left it behind
            if saved is None:  # the lock above has just (re)loaded the state
                plan = self._plan(conn, specs, spec_paths, options.targets, conn.store.state)
            else:
                plan, run.left = self._verified(conn, saved, specs, spec_paths, replan)
            taking = self._check_owners(conn, plan, options.take_over)
            run.plan = plan
            self._listener(Planned(plan))
            if plan.has_changes:
                plan.raise_if_unsafe(options.max_changes, force=options.force)
            approve = options.approve
            if approve is not None and (plan.has_changes or taking) and not approve(plan, taking):
                raise ApplyError("apply cancelled: nothing was changed")
            if taking:  # approved: the records move, then the changes are made
                conn.family.take_over(plan.observed, conn.store, self._taking_lock)
            if not plan.has_changes:
                conn.store.finish_pending(plan.observed.keys())  # nothing is left to do there
                _remember_selectors(conn.store, plan)
                return
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
            with self._stop_at_deadline(applier), signals.delivering(applier.signal):
                run.result = applier.apply(plan)
            _remember_selectors(conn.store, plan)

    def _check_owners(self, conn: _Connection, plan: Plan, take_over: bool) -> bool:
        """Refuse the AOIs of ``plan`` that other states own, unless ``take_over``: then
        whether their records are to move here (after approval). The plan was made with those
        records, so it stands either way. A family that cannot be read is refused too: an
        owner it hides would be fought with."""
        family = conn.family
        if family.problems:
            raise StateError(
                "cannot tell which AOIs the other states beside this one own: "
                f"{'; '.join(family.problems)}; nothing was applied. Repair or remove those "
                "states, or give read access to them (see docs/sharding.md)"
            )
        owners = family.owners(plan.observed)
        if not owners or take_over:
            return bool(owners)
        names = {aoi_id: snapshot.name for aoi_id, snapshot in plan.observed.items()}
        raise StateError(
            f"{describe(owners, names)}; nothing was applied. Two states over one AOI roll "
            "its legends back on every apply, each making the other's records look edited. "
            f"To make {conn.store.label} their owner, apply again with --take-over: their "
            "records move here (see docs/sharding.md)"
        )

    def _taking_lock(self, other: StateStore) -> AbstractContextManager[StateLock]:
        return self._locked(other, at_least=TAKE_OVER_WAIT)

    @contextmanager
    def _stop_at_deadline(self, applier: Applier) -> Iterator[None]:
        """At ``--timeout``, stop ``applier`` like Ctrl-C: nothing new starts, all is reported.

        Requests still in flight then are cut by the client (it has the same deadline), so
        apply returns promptly with every change accounted for.
        """
        if self._deadline is None:
            yield
            return
        reason = self._timeout_reason()

        def expire() -> None:
            applier.request_stop(reason)
            self._listener(Stopping(reason))

        timer = threading.Timer(max(0.0, self._deadline - time.monotonic()), expire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def _locked(
        self, store: StateStore, *, at_least: float = 0.0
    ) -> AbstractContextManager[StateLock]:
        """``store``'s lock, waited for up to ``--lock-timeout`` (or ``at_least``) but never
        past ``--timeout``."""
        wait, bound = max(self.settings.lock_timeout, at_least), ""
        if self._deadline is not None:
            left = max(0.0, self._deadline - time.monotonic())
            if left < wait:
                wait, bound = left, self._timeout_reason()
        return store.lock(wait, bound=bound)

    def _timeout_reason(self) -> str:
        timeout = self.settings.timeout
        return f"--timeout of {timeout:g} s reached" if timeout is not None else ""

    def _verified(
        self, conn: _Connection, saved: Plan, specs: Specs, spec_paths: Sequence[str], replan: str
    ) -> tuple[Plan, tuple[AoiName, ...]]:
        """The plan to carry out for ``saved``: made again now for the AOIs it changes, and
        refused unless it is what ``saved`` says (``stale``, then ``verify``), but for AOIs the
        API now refuses to show (403): left out of both, and told like those ``saved`` left out.
        Nothing the file claims is used beyond that comparison: what apply does comes from the
        specs it reads, the live API and the state (reloaded under the lock). Also the AOIs
        whose leftovers of an earlier apply it carried and leaves out: they moved since.
        """
        since = saved.changed_since
        # Leftovers of an earlier apply it planned are read again too, changes or not.
        pending = frozenset(a for a in since.pending if a in saved.observed) if since else None
        affected = sorted(saved.affected_aois | (pending or set()))
        if not affected:
            # Custom indices only (or nothing): those are checked against the index listing.
            fresh_indices: list[IndexCreate] = []
            if saved.indices:
                indices = conn.client.list_indices()
                problems = preset_named(specs.indices, indices)
                if problems:
                    raise ResolutionError(problems)
                since = saved.changed_since
                fresh_indices, _ = index_changes(
                    specs.indices,
                    indices,
                    (),
                    only_needed=_limited(since),
                    also=since.indices if since is not None else (),
                )
            fresh = Plan(indices=tuple(fresh_indices), api_url=conn.api_label)
            check_changes(saved, fresh, replan)
            return dataclasses.replace(
                saved,
                indices=fresh.indices,
                observed={},  # none was read again: its own word on them is no evidence
                spec_paths=tuple(spec_paths),
                api_url=conn.api_label,
            ), ()
        try:
            try:
                selection, observed = self._refresh(conn, specs, affected)
            except UnknownTargetError as exc:
                # Leftovers nothing declares any more are no reason to refuse the plan.
                if not set(exc.targets) <= (pending or set()) - saved.affected_aois:
                    raise
                left = [a for a in affected if a not in exc.targets]
                selection, observed = (
                    self._refresh(conn, specs, left) if left else (Selection({}), Observed())
                )
        except UnknownTargetError as exc:
            # The plan's AOIs are its targets here: one the specs no longer declare is not a
            # configuration mistake but a change of intent.
            names = {c.aoi_id: c.aoi_name for c in saved.changes}
            gone = [names.get(a, a) for a in exc.targets]
            reasons = [f"AOI {name}: no longer declared in the specs" for name in gone]
            raise stale_error(reasons, replan) from None
        state = conn.store.state
        # The state the plan was made with may have moved since (then the plan is stale if
        # 'assets: any' settles elsewhere now).
        remembered = conn.family.with_records(state).visualizations.keys()
        desired = resolve_desired(selection, observed, remembered)
        desired.raise_for_problems()
        fresh = self._plan_from(
            conn,
            specs,
            spec_paths,
            (),
            state,
            selection,
            observed,
            # A plan of some AOIs creates only the custom indices their creates need.
            # (And one of what changed, also the custom indices the change touched.)
            only_needed_indices=bool(saved.targets) or _limited(saved.changed_since),
            also_indices=since.indices if since else (),
        )
        # The leftovers of earlier applies are applied only as reviewed, and never refuse the
        # plan's own changes: where they moved since, they wait for the next plan.
        carried = pending or frozenset()
        moved = changed_leftovers(saved, fresh, carried)
        checked = saved.without(observed.unreadable_ids | carried)
        check_not_stale(
            checked,
            desired=desired_snapshots(desired, observed.by_aoi),
            observed=observed.snapshots(),
            api_url=conn.api_label,
            replan=replan,
        )
        check_changes(checked, fresh.without(carried), replan)
        kept = tuple(AoiName(a, fresh.observed[a].name) for a in sorted(moved))
        return fresh.without(frozenset(moved)).also_unreadable(saved), kept

    def _refresh(
        self,
        conn: _Connection,
        specs: Specs,
        targets: Sequence[str] = (),
        *,
        also: Sequence[SelectorDecl] = (),
        also_named: Sequence[str] = (),
        limited: bool = False,
    ) -> tuple[Selection, Observed]:
        return refresh(
            specs,
            conn.client,
            targets=targets,
            also=also,
            also_named=also_named,
            limited=limited,
            shard=self.settings.shard,
            parallelism=self.settings.parallelism,
            listener=self._listener,
        )

    # --- export ---------------------------------------------------------------------------

    def export(self, options: ExportOptions) -> ExportResult:
        """Write specs declaring what exists, so that a plan of them shows no changes.

        Refuses (``ConfigError``, before writing anything) to overwrite a file unless
        ``options.force``; see ``run.exporting`` for where the files go and
        ``core.export`` for what they say.
        """
        job = Export(options)
        with self._connect() as conn:
            records = conn.store.load()
            observed = read_account(
                conn.client,
                job.pick,
                with_assets=options.by_name,
                refs=None if options.all_aois else options.aois,
                parallelism=self.settings.parallelism,
                listener=self._listener,
            )
        return job.finish(observed, records)

    # --- state ----------------------------------------------------------------------------

    def state_location(self) -> str | Path:
        """Where the state is: ``--state``, else the sandbox's or the default file; with
        ``--shard``, the shard's state beside it."""
        base: str | Path = DEFAULT_STATE_PATH
        if self.settings.state:
            base = self.settings.state
        elif self.settings.sandbox:
            from reconciler.run.sandbox import SANDBOX_DIR

            base = SANDBOX_DIR / "state.json"
        shard = self.settings.shard
        if shard is None or shard.count == 1:  # one shard is the whole estate: its state
            return base
        return sharded(base, shard.index, shard.count)

    def store(self) -> StateStore:
        """The state store the settings name (``ConfigError`` if its backend is missing)."""
        return StateStore(self.state_location())

    def state_show(self) -> tuple[StateStore, State, Holder | None]:
        """The state's records and who holds its lock now (read-only, no lock taken)."""
        store = self.store()
        return store, store.load(), store.read_lock()

    def state_rm(self, ids: Sequence[str]) -> tuple[StateStore, int, int]:
        """Forget the records of visualizations and the pending marks of AOIs ``ids`` names,
        under the lock; all or nothing (``statecmds.remove_records``): the store, and how many
        records and marks went."""
        store = self.store()
        records, marks = remove_records(store, ids, self._locked)
        return store, records, marks

    def state_copy(
        self, source: str | Path, destination: str | Path, *, force: bool = False
    ) -> tuple[StateStore, StateStore, State]:
        """Copy the state at ``source`` to ``destination``, holding both locks meanwhile.

        The first step of moving a state (from a local file to S3, say): the source is left as
        it was. Refuses the same location twice (``ConfigError``), and a destination that
        holds anything unless ``force`` (``statecmds.copy_state``).
        """
        src, dst = StateStore(source), StateStore(destination)
        if src.label == dst.label:
            raise ConfigError(f"state copy: {src.label} is both the source and the destination")
        return src, dst, copy_state(src, dst, self._locked, force=force)

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
        if settings.shard is None and names_a_shard(self.state_location()):
            raise ConfigError(
                f"--state {store.label} is a shard's state: give --shard I/N with the unsharded "
                "--state (each shard adds its own suffix); only the 'state' commands take a "
                "shard's state as it is"
            )
        if settings.sandbox:
            from reconciler.run.sandbox import SANDBOX_URL_LABEL, sandbox

            with sandbox() as box, self._client_for(box.url, box.api_key) as client:
                yield _Connection(client, SANDBOX_URL_LABEL, store)
            return
        if self._client is not None:
            self._client.set_run_deadline(self._deadline, self._timeout_reason())
            yield _Connection(self._client, self._client.base_url, store)
            return
        key = resolve_api_key(settings.api_key_file, settings.environ)
        with self._client_for(settings.api_url, key) as client:
            yield _Connection(client, client.base_url, store)

    def _client_for(self, url: str, key: str) -> PixxelClient:
        client = PixxelClient(
            url, key, parallelism=self.settings.parallelism, max_rps=self.settings.max_rps
        )
        client.set_run_deadline(self._deadline, self._timeout_reason())
        return client


__all__ = [
    "DEFAULT_SPEC_PATHS",
    "ApplyOptions",
    "ApplyOutcome",
    "Engine",
    "ExportOptions",
    "ExportResult",
    "Settings",
    "is_plan_file",
    "load_plan_file",
    "split_plan_paths",
    "write_file",
]


def _note_lock(store: StateStore) -> None:
    """Log one line when an apply holds the state's lock: this plan may soon be out of date."""
    try:
        holder = store.read_lock()
    except StateError as exc:  # the plan stands without it
        log.debug("could not read the lock of %s: %s", store.label, exc)
        return
    if holder is None:
        return
    age = holder.heartbeat_age()
    if age is None or age > STALE_AFTER_SECONDS:
        log.warning(
            "%s is locked by a stale lock: %s; if no apply is running, break it with: "
            "reconciler state unlock %s --state %s",
            store.label,
            holder.describe(),
            holder.id or "LOCK_ID",
            store.label,
        )
        return
    log.warning(
        "%s is locked by an apply in progress: %s; this plan may change once it ends",
        store.label,
        holder.describe(),
    )
