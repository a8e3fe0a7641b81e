"""The ``reconciler`` command line: thin wrappers that parse flags, call the library, print.

Only this module prints to the terminal or chooses exit codes. Every ``ReconcilerError`` becomes
a one-paragraph message and exit status 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler import __version__
from reconciler.errors import ConfigError, ReconcilerError, SpecError

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Turn the project's errors into a clear message and exit status 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            if len(exc.problems) == 1:
                click.secho(f"Error: {exc.problems[0]}", fg="red", err=True)
                sys.exit(1)
            for problem in exc.problems:  # one per line, so editors and CI can jump to each
                click.echo(str(problem), err=True)
            click.secho(f"Error: {len(exc.problems)} problems in the specs", fg="red", err=True)
            sys.exit(1)
        except ReconcilerError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="reconciler")
@click.option("-v", "--verbose", count=True, help="Log more to stderr (-vv: every request).")
def cli(verbose: int) -> None:
    """Visualizations-as-code for the Pixxel API.

    Keep YAML specs in git that declare which visualizations every AOI must have and which
    legends must be auto-computed. 'plan' shows what would change; 'apply' makes it so.

    Try it without an API key against the bundled emulator:

        reconciler plan --sandbox
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    # force: the command line owns logging; replace whatever an embedding process set up.
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True
    )


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="reconciler")


# --- options and helpers shared by the commands that talk to the API -------------------------

DEFAULT_SPEC_PATHS = ("specs/",)


def api_options(func: F) -> F:
    """The options every command that talks to the API shares."""
    options = [
        click.option(
            "--api-url",
            envvar="PIXXEL_API_URL",
            default="https://api.pixxel.space",
            show_default=True,
            help="Pixxel API base URL (env PIXXEL_API_URL). http:// only for loopback hosts.",
        ),
        click.option(
            "--api-key-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Read the API key from this file (default: the PIXXEL_API_KEY variable).",
        ),
        click.option(
            "--sandbox",
            is_flag=True,
            help="Use the bundled emulator and demo world instead of the real API (no key needed; "
            "its world and state persist under .reconciler/sandbox/).",
        ),
        click.option(
            "--parallelism",
            type=click.IntRange(1, 64),
            default=8,
            show_default=True,
            help="How many requests run at once.",
        ),
        click.option(
            "--max-rps",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="At most this many requests per second, across all threads.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@dataclass(frozen=True)
class Connection:
    """A client and where its results belong (API label for plans, state file)."""

    client: Any
    api_url: str
    state_path: Path


@contextmanager
def connect(
    *,
    api_url: str,
    api_key_file: Path | None,
    sandbox: bool,
    parallelism: int,
    max_rps: float | None,
    state_path: Path | None,
) -> Iterator[Connection]:
    """A client for the real API, or for the in-process sandbox emulator."""
    from reconciler.client import PixxelClient
    from reconciler.config import resolve_api_key
    from reconciler.state import DEFAULT_STATE_PATH

    if sandbox:
        from reconciler.sandbox import SANDBOX_URL_LABEL
        from reconciler.sandbox import sandbox as start_sandbox

        with (
            start_sandbox() as box,
            PixxelClient(box.url, box.api_key, parallelism=parallelism, max_rps=max_rps) as client,
        ):
            yield Connection(client, SANDBOX_URL_LABEL, state_path or box.state_path)
        return
    key = resolve_api_key(api_key_file, os.environ)
    with PixxelClient(api_url, key, parallelism=parallelism, max_rps=max_rps) as client:
        yield Connection(client, api_url.rstrip("/"), state_path or DEFAULT_STATE_PATH)


class StderrProgress:
    """One self-overwriting status line on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = _isatty(sys.stderr)
        self._shown = False

    def __call__(self, message: str) -> None:
        if self.enabled:
            width = shutil.get_terminal_size().columns - 1
            click.echo("\r\x1b[K" + message[:width], nl=False, err=True)
            self._shown = True

    def clear(self) -> None:
        if self._shown:
            click.echo("\r\x1b[K", nl=False, err=True)
            self._shown = False


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# --- emulator (issue 2) ---------------------------------------------------------------------

_FAULT_KINDS = ("5xx", "429", "drop", "lost")


def _parse_fault_kinds(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    """``--faults 5xx,drop`` -> ("5xx", "drop"); unknown names are a usage error."""
    kinds = tuple(dict.fromkeys(k.strip() for k in value.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in _FAULT_KINDS]
    if unknown or not kinds:
        raise click.BadParameter(
            f"{', '.join(unknown) or 'nothing'}: choose from {', '.join(_FAULT_KINDS)}, "
            "comma-separated"
        )
    return kinds


def _parse_outcomes(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> dict[str, str]:
    """``--outcome NDVI=failed`` (repeatable) -> {"NDVI": "failed"}."""
    outcomes = {}
    for item in value:
        index, sep, status = item.partition("=")
        if not sep or not index.strip() or not status.strip():
            raise click.BadParameter(f"{item!r}: expected INDEX=STATUS, e.g. NDVI=failed")
        outcomes[index.strip()] = status.strip()
    return outcomes


@cli.command("emulator")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
    help="Port on 127.0.0.1 (0 picks a free one).",
)  # fmt: skip
@click.option(
    "--world", "world_file", type=click.Path(exists=True, dir_okay=False),
    help="YAML world file (AOIs, indices, assets, visualizations). Default: the demo world.",
)  # fmt: skip
@click.option(
    "--state-file", type=click.Path(dir_okay=False),
    help="JSON file the state is loaded from (if it exists) and saved to after every change, "
    "so it survives restarts.",
)  # fmt: skip
@click.option(
    "--api-key", "api_keys", multiple=True,
    help="Accepted API key (repeatable). Default: a random key, printed at startup.",
)  # fmt: skip
@click.option(
    "--creation-delay", type=click.FloatRange(min=0), default=0.0, show_default=True,
    help="Seconds a new visualization stays 'creating' before its final status.",
)  # fmt: skip
@click.option(
    "--outcome", "outcomes", multiple=True, callback=_parse_outcomes, metavar="INDEX=STATUS",
    help="Final status of new visualizations of an index: success, failed or partial_success "
    "(repeatable), e.g. --outcome NDVI=failed.",
)  # fmt: skip
@click.option(
    "--latency-ms", type=click.FloatRange(min=0), default=0.0, show_default=True,
    help="Added latency of every API request.",
)  # fmt: skip
@click.option(
    "--fault-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
    help="Share of API requests that get a fault, split evenly over --faults.",
)  # fmt: skip
@click.option(
    "--faults", "fault_kinds", default=",".join(_FAULT_KINDS), show_default=True,
    callback=_parse_fault_kinds,
    help="Fault kinds: 5xx (server error), 429 (rate limited, with Retry-After), drop "
    "(connection closed, no response), lost (POST create succeeds, response dropped).",
)  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fault draws.")
@click.option(
    "--max-faults", type=click.IntRange(min=0), default=None,
    help="Inject at most this many faults in total (default: no bound).",
)  # fmt: skip
@handle_errors
def emulator_command(
    port: int,
    world_file: str | None,
    state_file: str | None,
    api_keys: tuple[str, ...],
    creation_delay: float,
    outcomes: dict[str, str],
    latency_ms: float,
    fault_rate: float,
    fault_kinds: tuple[str, ...],
    seed: int,
    max_faults: int | None,
) -> None:
    """Run a local fake of the Pixxel API, for trying reconciler without an API key.

    Serves the API's endpoints on 127.0.0.1 from a world of AOIs, indices, assets and
    visualizations (the bundled demo world unless --world), with auth, validation, 409 on
    duplicates, the creating -> success lifecycle and legends. Listings page with a default
    limit of 10 and a maximum page size of 100 (a larger limit is clamped to 100).

    Faults for testing clients: --fault-rate 0.2 --faults 5xx,drop --seed 7 --max-faults 20.
    Request counts for benchmarks: GET /_emulator/requests (no key needed).

    Runs until Ctrl-C.

    \b
    Example:
        reconciler emulator --port 8765 --api-key k
        curl -H 'Authorization: k' http://127.0.0.1:8765/v0/aois
    """
    import secrets
    import shlex
    import signal
    import threading
    from pathlib import Path

    from reconciler.emulator import Emulator, FaultConfig

    share = fault_rate / len(fault_kinds)
    faults = FaultConfig(
        seed=seed,
        latency_ms=latency_ms,
        error_rate=share if "5xx" in fault_kinds else 0.0,
        rate_limit_rate=share if "429" in fault_kinds else 0.0,
        drop_rate=share if "drop" in fault_kinds else 0.0,
        lost_response_rate=share if "lost" in fault_kinds else 0.0,
        max_faults=max_faults,
    )
    keys = api_keys or (secrets.token_urlsafe(16),)
    emu = Emulator(
        Path(world_file) if world_file else None,
        api_keys=keys,
        port=port,
        creation_delay=creation_delay,
        outcomes=outcomes,
        faults=faults,
        state_file=Path(state_file) if state_file else None,
    ).start()

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # stop like Ctrl-C

    # Ctrl-C must stop us even when started from a shell that ignores SIGINT in the background.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    stop = threading.Event()
    try:
        # The key printed is the emulator's own (given or generated), never a real API key.
        click.echo(f"Pixxel API emulator listening on {emu.url}")
        more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
        click.echo(f"API key: {keys[0]}{more}")
        if state_file is not None:
            click.echo(f"State file: {state_file}")
        header = shlex.quote(f"Authorization: {keys[0]}")
        click.echo(f"Try: curl -H {header} {emu.url}/v0/aois")
        click.echo("Press Ctrl-C to stop.")
        sys.stdout.flush()
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    click.echo("Emulator stopped.")


# --- validate / schema (issue 3) ------------------------------------------------------------

#: Version of `validate --format json` output; bump on incompatible changes.
VALIDATE_FORMAT_VERSION = 1


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one 'path:line:column: message' line per problem; json: for machines.",
)
@click.option(
    "--online",
    is_flag=True,
    help="Also resolve every AOI, index, asset, rollback date and mode against the API.",
)
@api_options
@handle_errors
def validate(paths: tuple[str, ...], output_format: str, online: bool, **api: Any) -> None:
    """Check spec files without talking to the API.

    PATHS are spec files or directories (searched recursively for *.yaml and *.yml; hidden
    ones are skipped); the default is specs/. Every problem in every file is reported at
    once, as path:line:column: message, so editors and CI can jump to it. Exit status: 0
    when the specs are valid, 1 when not.

    \b
    Examples:
      reconciler validate                         # everything under specs/
      reconciler validate specs/team-a.yaml       # one file
      reconciler validate --format json specs/    # {"valid": ..., "problems": [...]}

    Checked offline: the YAML itself, unknown or missing keys, ISO dates, empty or
    repeated dates, one rollback entry per mode, and visualizations declared twice
    (also across files). With --online (read-only) also: AOI, index and asset names,
    ids and dates exist; rollback dates are dates of the visualization's assets; the
    index can have the rolled-back legend mode.

    \b
      reconciler validate --online --sandbox      # against the bundled emulator
    """
    from reconciler.errors import Problem, SpecError
    from reconciler.spec import validate_specs

    targets = paths or DEFAULT_SPEC_PATHS
    try:
        report = validate_specs(targets)
    except SpecError as exc:
        # Nothing to check (missing path, empty directory): text mode says so on stderr via
        # handle_errors; machines still get a JSON answer on stdout.
        if output_format != "json":
            raise
        _echo_validation_json((), exc.problems, ())
        sys.exit(1)
    problems: list[Problem] = list(report.problems)
    notes: list[Problem] = list(report.notes)

    if online and report.specs is not None and not problems:
        from reconciler.refresh import refresh, resolve_all

        with connect(state_path=None, **api) as conn:
            progress = StderrProgress()
            try:
                observed = refresh(
                    report.specs, conn.client, parallelism=api["parallelism"], progress=progress
                )
            finally:
                progress.clear()
        problems.extend(resolve_all(observed)[1])

    if output_format == "json":
        _echo_validation_json(report.files, problems, notes)
    else:
        for problem in problems:
            click.echo(str(problem))
        for note in notes:
            click.echo(f"{note.where}: note: {note.message}" if note.where else note.message)
        if problems:
            files = {p.where.path for p in problems if p.where is not None}
            summary = f"{_plural(len(problems), 'problem')} in {_plural(len(files), 'file')}"
            click.secho(summary, fg="red")
        else:
            specs = report.specs
            aois = len({a.label for a in specs.aois}) if specs else 0
            count = specs.visualization_count if specs else 0
            click.secho(
                f"{' '.join(targets)} is valid: {_plural(len(report.files), 'file')}, "
                f"{_plural(aois, 'AOI')}, {_plural(count, 'visualization')}",
                fg="green",
            )
    sys.exit(1 if problems else 0)


def _echo_validation_json(files: Any, problems: Any, notes: Any) -> None:
    import json

    document = {
        "format_version": VALIDATE_FORMAT_VERSION,
        "valid": not problems,
        "files": list(files),
        "problems": [p.to_dict() for p in problems],
        "notes": [n.to_dict() for n in notes],
    }
    click.echo(json.dumps(document, indent=2))


@cli.command()
@click.option(
    "--out",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="Write the schema to this file instead of standard output.",
)
def schema(out: Any) -> None:
    """Print the JSON Schema of spec files, for editor completion and checks.

    With the YAML language server (VS Code's YAML extension, Neovim, Helix, ...), save the
    schema next to your specs and point each spec file at it with a first line:

    \b
      reconciler schema --out specs/reconciler.schema.json
      # yaml-language-server: $schema=./reconciler.schema.json

    Editors then complete keys, show each key's help and flag mistakes as you type.
    'reconciler validate' remains the authority: it also checks what a schema cannot
    (real dates, duplicates across files).
    """
    import json

    from reconciler.spec import SpecFile

    out.write(json.dumps(SpecFile.model_json_schema(), indent=2) + "\n")


# --- plan (issue 4) -------------------------------------------------------------------------


def compute_plan(
    conn: Connection,
    specs: Any,
    *,
    spec_paths: Sequence[str],
    targets: Sequence[str],
    parallelism: int,
) -> Any:
    """Refresh what the specs refer to and plan against the state file (read-only)."""
    from reconciler.planner import build_plan
    from reconciler.refresh import refresh
    from reconciler.state import StateStore

    state = StateStore(conn.state_path).load()
    progress = StderrProgress()
    try:
        observed = refresh(
            specs, conn.client, targets=targets, parallelism=parallelism, progress=progress
        )
    finally:
        progress.clear()
    return build_plan(
        observed,
        state,
        spec_fingerprint=specs.fingerprint,
        spec_paths=spec_paths,
        api_url=conn.api_url,
        targets=targets,
    )


def _color(option: bool | None) -> bool:
    return _isatty(sys.stdout) if option is None else option


def write_atomically(path: Path, text: str) -> None:
    """Write a whole file or nothing (plans and reports are read by other programs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


spec_paths_argument = click.argument(
    "paths", nargs=-1, type=click.Path(path_type=str), metavar="[SPEC_PATHS]..."
)
target_option = click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="AOI",
    help="Only this AOI (name or id; repeatable). Other AOIs are not read at all.",
)
state_option = click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Rollback state file. [default: .reconciler/state.json; "
    ".reconciler/sandbox/state.json with --sandbox]",
)
color_option = click.option(
    "--color/--no-color", default=None, help="Colour the text output. [default: on a terminal]"
)


@cli.command()
@spec_paths_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="text for people, markdown for PR comments, json for programs.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also save the plan (JSON) here, for 'reconciler apply FILE'.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when nothing would change, 2 when something would, 1 on errors.",
)
@target_option
@state_option
@color_option
@api_options
@handle_errors
def plan(
    paths: tuple[str, ...],
    fmt: str,
    out: Path | None,
    detailed_exitcode: bool,
    targets: tuple[str, ...],
    state_path: Path | None,
    color: bool | None,
    **api: Any,
) -> None:
    """Show what apply would change, without changing anything.

    Reads the specs (default: specs/), reads what they refer to from the API, and prints the
    difference: '+' visualizations to create, '~' legends to roll back, '!' warnings.

    \b
    Examples:
      reconciler plan --sandbox                     # try it, no API key needed
      reconciler plan specs/ --format markdown      # for a pull-request comment
      reconciler plan --out plan.json               # review now, 'reconciler apply plan.json' later
      reconciler plan --detailed-exitcode           # exit 2 if anything would change
    """
    from reconciler.render import render
    from reconciler.spec import load_specs

    spec_paths = paths or DEFAULT_SPEC_PATHS
    specs = load_specs(spec_paths)
    with connect(state_path=state_path, **api) as conn:
        result = compute_plan(
            conn, specs, spec_paths=spec_paths, targets=targets, parallelism=api["parallelism"]
        )
    colored = _color(color)
    click.echo(render(result, fmt, color=colored), nl=False, color=colored)
    if out is not None:
        from reconciler.render import render_json

        write_atomically(out, render_json(result))
        click.echo(f"Saved this plan to {out}; apply it with: reconciler apply {out}", err=True)
    if detailed_exitcode and result.has_changes:
        sys.exit(2)


# --- apply (issue 5) ------------------------------------------------------------------------


#: Without a terminal, at most one "waiting for …" line this often (seconds).
WAIT_LOG_INTERVAL = 30.0


def _is_plan_file(paths: Sequence[str]) -> bool:
    """One argument naming a file that is not YAML: a saved plan (from 'plan --out')."""
    if len(paths) != 1:
        return False
    path = Path(paths[0])
    return path.is_file() and path.suffix.lower() not in (".yaml", ".yml")


def _load_plan_file(path: Path) -> Any:
    import json

    from reconciler.errors import PlanFileError
    from reconciler.plan import Plan

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanFileError(f"{path}: not a saved plan ({exc})") from None
    return Plan.from_dict(data)


def _confirm(count: int, yes: bool) -> None:
    from reconciler.errors import ApplyError

    if yes:
        return
    if not _isatty(sys.stdin):
        raise ApplyError(
            "refusing to apply without confirmation: stdin is not a terminal. "
            "Review the plan above, then run again with --yes."
        )
    click.echo(f"\nDo you want to apply these {count} changes? Only 'yes' will be accepted.")
    if click.prompt("Enter a value", default="", show_default=False).strip() != "yes":
        raise ApplyError("apply cancelled: nothing was changed")


def _print_summary(result: Any) -> None:
    counts = result.counts()
    for item in result.items:
        if item.outcome == "failed":
            click.secho(
                f"  failed: {item.index_name} on {item.aoi_name} ({item.where}): {item.message}",
                fg="red",
                err=True,
            )
    headline = "Apply interrupted" if result.interrupted else "Apply complete"
    if result.stopped_early:
        headline = "Apply stopped early (--fail-fast)"
    click.echo(
        f"{headline}: "
        + ", ".join(f"{counts[k]} {k}" for k in ("created", "adopted", "rolled back"))
        + f", {counts['failed']} failed, {counts['skipped']} skipped."
    )


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str), metavar="[SPEC_PATHS | PLAN]...")
@click.option(
    "-y", "--yes", is_flag=True, help="Apply without asking (required without a terminal)."
)
@target_option
@state_option
@click.option(
    "--wait-timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Seconds to wait for one new visualization to become usable.",
)
@click.option("--fail-fast", is_flag=True, help="Stop starting new work after the first failure.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write what happened to each change as JSON here (also when apply fails).",
)
@click.option(
    "--max-changes",
    type=click.IntRange(min=0),
    default=None,
    help="Refuse a plan with more changes than this (unless --force).",
)
@click.option("--force", is_flag=True, help="Apply even beyond --max-changes.")
@color_option
@api_options
@handle_errors
def apply(
    paths: tuple[str, ...],
    yes: bool,
    targets: tuple[str, ...],
    state_path: Path | None,
    wait_timeout: float,
    fail_fast: bool,
    report: Path | None,
    max_changes: int | None,
    force: bool,
    color: bool | None,
    **api: Any,
) -> None:
    """Create the missing visualizations and roll back the listed legends.

    With spec paths (default: specs/) apply plans first, shows the plan and asks for 'yes'
    (use --yes where there is no terminal). With a plan file saved by 'plan --out' it applies
    exactly that plan, after checking that neither the specs nor the affected AOIs changed
    since; otherwise it refuses and asks you to plan again.

    A visualization that already exists (HTTP 409) is adopted, not duplicated. New ones are
    waited for until usable. Every change ends as created, adopted, rolled back, failed or
    skipped; the exit status is 0 only if nothing failed.

    \b
    Examples:
      reconciler apply --sandbox --yes
      reconciler plan --out plan.json && reconciler apply plan.json --yes --report report.json
    """
    import json

    from reconciler.apply import ApplyResult, _now

    started = _now()
    try:
        result = _apply(
            paths,
            yes=yes,
            targets=targets,
            state_path=state_path,
            wait_timeout=wait_timeout,
            fail_fast=fail_fast,
            max_changes=max_changes,
            force=force,
            color=color,
            api=api,
        )
    except ReconcilerError as exc:
        if report is not None:
            failed = ApplyResult(api_url="", started_at=started, finished_at=_now())
            data = {**failed.to_dict(), "ok": False, "error": str(exc)}
            write_atomically(report, json.dumps(data, indent=2) + "\n")
        raise
    if report is not None and result is not None:
        write_atomically(report, json.dumps(result.to_dict(), indent=2) + "\n")
    if result is None:
        return
    _print_summary(result)
    if result.interrupted:
        sys.exit(130)
    if not result.ok:
        sys.exit(1)


def _apply(
    paths: tuple[str, ...],
    *,
    yes: bool,
    targets: tuple[str, ...],
    state_path: Path | None,
    wait_timeout: float,
    fail_fast: bool,
    max_changes: int | None,
    force: bool,
    color: bool | None,
    api: dict[str, Any],
) -> Any:
    from reconciler.apply import Applier, check_not_stale
    from reconciler.errors import ApplyError
    from reconciler.refresh import refresh
    from reconciler.render import render
    from reconciler.spec import load_specs
    from reconciler.state import StateStore

    saved = _load_plan_file(Path(paths[0])) if _is_plan_file(paths) else None
    spec_paths = saved.spec_paths if saved is not None else (paths or DEFAULT_SPEC_PATHS)
    if saved is not None and targets:
        raise ConfigError("--target applies to planning; a saved plan already has its targets")
    specs = load_specs(spec_paths)
    with connect(state_path=state_path, **api) as conn:
        store = StateStore(conn.state_path)
        with store.lock():
            if saved is None:
                the_plan = compute_plan(
                    conn,
                    specs,
                    spec_paths=spec_paths,
                    targets=targets,
                    parallelism=api["parallelism"],
                )
            else:
                the_plan = saved
                affected = sorted({c.aoi_id for c in the_plan.changes})
                if affected:
                    progress = StderrProgress()
                    try:
                        observed = refresh(
                            specs,
                            conn.client,
                            targets=affected,
                            parallelism=api["parallelism"],
                            progress=progress,
                        )
                    finally:
                        progress.clear()
                    check_not_stale(
                        the_plan,
                        spec_fingerprint=specs.fingerprint,
                        observed={k: v.snapshot() for k, v in observed.by_aoi.items()},
                        api_url=conn.api_url,
                    )
            colored = _color(color)
            click.echo(render(the_plan, "text", color=colored), nl=False, color=colored)
            changes = len(the_plan.changes)
            if changes == 0:
                return None
            if max_changes is not None and changes > max_changes and not force:
                raise ApplyError(
                    f"the plan has {changes} changes, more than --max-changes {max_changes}; "
                    "nothing was applied. Check the plan, then raise the limit or pass --force."
                )
            _confirm(changes, yes)  # store.lock() above already (re)loaded the state
            progress = StderrProgress()

            last_wait_line = [0.0]

            def report_progress(message: str) -> None:
                if not message.startswith("waiting"):
                    progress.clear()
                    click.echo(message, err=True)
                elif progress.enabled:
                    progress(message)
                elif time.monotonic() - last_wait_line[0] >= WAIT_LOG_INTERVAL:
                    # No terminal (CI): an occasional line, so a long wait never looks hung.
                    last_wait_line[0] = time.monotonic()
                    click.echo(message, err=True)

            applier = Applier(
                conn.client,
                store,
                parallelism=api["parallelism"],
                wait_timeout=wait_timeout,
                fail_fast=fail_fast,
                progress=report_progress,
            )
            try:
                return applier.apply(the_plan)
            finally:
                progress.clear()
