"""``reconciler emulator``: serve the API fake on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import sys

import click

from reconciler.cli.console import handle_errors

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


@click.command("emulator")
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
        reconciler emulator --port 8765 --api-key dev-key
        curl -H 'Authorization: dev-key' http://127.0.0.1:8765/v0/aois
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
    if state_file:
        # As for reconciler's own state: a new world's directory is made, not asked for.
        try:
            Path(state_file).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise click.ClickException(
                f"cannot make the directory of state file {state_file}: {exc.strerror or exc}"
            ) from exc
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
