"""Click options shared by the commands, and how they become the engine's ``Settings``.

One definition per option, so ``plan``, ``apply`` and ``validate`` cannot drift apart in names,
defaults or help; the API options arrive in the command as one typed ``settings`` argument.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler.api.config import DEFAULT_API_URL
from reconciler.core.shards import Shard, parse_shard
from reconciler.render import FORMAT_NAMES
from reconciler.run.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

_API_PARAMS = (
    "api_url",
    "api_key_file",
    "sandbox",
    "parallelism",
    "max_rps",
    "state_path",
    "lock_timeout",
    "timeout",
    "shard",
)


def api_options(func: F) -> F:
    """The options of every command that talks to the API, passed on as ``settings``.

    The command must also take ``--state`` (``state_option``) or accept no state at all.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name, None) for name in _API_PARAMS}
        if kwargs.get("targets") and values["shard"] is not None:
            # A target of another shard would plan nothing, and say nothing of why.
            raise click.UsageError("--target and --shard cannot be used together: choose one")
        # Passed on as given: click supplies the defaults, and an empty --api-url (an unset
        # CI variable) must be refused by the client, not replaced by the production URL.
        kwargs["settings"] = Settings(
            api_url=values["api_url"],
            api_key_file=values["api_key_file"],
            sandbox=bool(values["sandbox"]),
            parallelism=values["parallelism"],
            max_rps=values["max_rps"],
            state=values["state_path"],
            lock_timeout=values["lock_timeout"] or 0.0,
            timeout=values["timeout"],
            shard=values["shard"],
        )
        return func(*args, **kwargs)

    options = [
        click.option(
            "--api-url",
            envvar="PIXXEL_API_URL",
            default=DEFAULT_API_URL,
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
            default=Settings.parallelism,
            show_default=True,
            help="How many requests run at once.",
        ),
        click.option(
            "--max-rps",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="At most this many requests per second, across all threads.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            metavar="SECONDS",
            help="Give up on the whole command after this long (the wait for the state lock "
            "included): requests in flight are cut, apply starts nothing new and reports every "
            "change, like after Ctrl-C. "
            "[default: no limit; each request has its own]",
        ),
    ]
    decorated: Callable[..., Any] = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[return-value]


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
    envvar="RECONCILER_STATE",
    metavar="PATH|URL",
    help="Rollback state: a file, or s3://BUCKET/KEY, gs://…, az://…, file://… (env "
    "RECONCILER_STATE). Plan and apply must use the same one. [default: "
    ".reconciler/state.json; .reconciler/sandbox/state.json with --sandbox]",
)


def _parse_shard(ctx: click.Context, param: click.Parameter, value: str | None) -> Shard | None:
    if value is None:
        return None
    from_env = ctx.get_parameter_source("shard") == click.core.ParameterSource.ENVIRONMENT
    # A wrong value set in a CI matrix's variable is told as that variable, not as an option
    # nobody typed.
    hint = "RECONCILER_SHARD" if from_env else None
    if not value.strip():
        if from_env:
            return None  # RECONCILER_SHARD set empty, as for a job outside the matrix
        # Given empty on the command line (a mistyped matrix variable): no silent whole estate.
        raise click.BadParameter("expected I/N, such as 2/4 (shard 2 of 4), got ''")
    try:
        return parse_shard(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from None


shard_option = click.option(
    "--shard",
    metavar="I/N",
    envvar="RECONCILER_SHARD",
    callback=_parse_shard,
    help="Only shard I of N of the AOIs (a CI matrix job; env RECONCILER_SHARD): each AOI "
    "belongs to one shard, by its id, so adding AOIs moves none. The shard keeps its own "
    "state beside --state (state.shard-I-of-N.json) and its own lock. See docs/sharding.md.",
)

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float:
    """Seconds from '90', '90s', '5m', '1h' or '1m30s' (a click option callback)."""
    text = (value or "0").strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if re.fullmatch(r"(\d+(\.\d+)?[smh])+", text):
        return sum(
            float(n) * _DURATION_UNITS[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)([smh])", text)
        )
    raise click.BadParameter(f"{value!r} is not a duration: use seconds (30) or 30s, 5m, 1h, 1m30s")


lock_timeout_option = click.option(
    "--lock-timeout",
    metavar="DURATION",
    callback=parse_duration,
    default="0",
    show_default=True,
    help="Wait this long (30s, 5m, ...) for another apply's state lock, retrying with backoff, "
    "instead of failing at once.",
)
color_option = click.option(
    "--color/--no-color", default=None, help="Colour the text output. [default: on a terminal]"
)
plan_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMAT_NAMES),
    default="text",
    show_default=True,
    help="text for people, markdown for PR comments, json for programs.",
)
