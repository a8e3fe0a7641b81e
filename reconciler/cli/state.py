"""``reconciler state``: look at the rollback state, repair it, break a stale lock.

Click wiring only: the engine does the work (``Engine.state_show``, ``state_rm``,
``state_copy``, ``state_unlock``); this module prints and picks exit codes.
"""

from __future__ import annotations

import json
from typing import Any

import click

from reconciler.cli.console import echo, handle_errors
from reconciler.cli.options import lock_timeout_option, state_option
from reconciler.run.engine import Engine
from reconciler.run.settings import Settings
from reconciler.state.holder import Holder
from reconciler.state.records import State
from reconciler.text import clean, plural

_sandbox_option = click.option(
    "--sandbox", is_flag=True, help="The sandbox's state (.reconciler/sandbox/state.json)."
)


@click.group("state")
def state_command() -> None:
    """Inspect or repair the rollback state, or break a stale lock.

    The state remembers, per visualization, which legends reconciler last made auto-computed
    and the visualization's updated_at right after; see 'reconciler state show'. Every
    subcommand takes --state (or RECONCILER_STATE) like plan and apply.
    """


@state_command.command("show")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people; json: the state file's own format, plus where it is and its lock.",
)
@state_option
@_sandbox_option
@handle_errors
def show(fmt: str, state_path: str | None, sandbox: bool) -> None:
    """Show the records: per visualization its AOI, updated_at, and the legends
    (mode, date, revision) reconciler last rolled back; the AOIs an apply did not finish
    (pending); and who holds the state lock.

    \b
    Examples:
      reconciler state show
      reconciler state show --state s3://bucket/reconciler/state.json --format json
    """
    store, state, holder = Engine(Settings(state=state_path, sandbox=sandbox)).state_show()
    if fmt == "json":
        data: dict[str, Any] = {
            "location": store.label,
            "lock": holder.to_dict() if holder is not None else None,
            **state.to_dict(),
        }
        echo(json.dumps(data, indent=2, sort_keys=True))
        return
    echo(_render_text(store.label, state, holder), nl=False)


def _render_text(label: str, state: State, holder: Holder | None) -> str:
    count = len(state.visualizations)
    out = [f"State {label}: {plural(count, 'visualization')} recorded."]
    if holder is not None:
        out.append(f"Locked by {holder.describe()}.")
    if state.pending:
        shown = ", ".join(f"{clean(n)} ({clean(a)})" for a, n in sorted(state.pending.items()))
        out.append(f"Pending (an apply set out to change them and did not finish): {shown}.")
        out.append("  Pull request plans plan them; 'reconciler state rm AOI_ID' forgets one.")
    by_aoi: dict[str, list[str]] = {}
    for vid, record in state.visualizations.items():
        by_aoi.setdefault(record.aoi_id, []).append(vid)
    for aoi_id in sorted(by_aoi):
        out += ["", f"AOI {aoi_id}"]
        for vid in sorted(by_aoi[aoi_id]):
            record = state.visualizations[vid]
            out.append(f"  visualization {vid}")
            out.append(f"    updated_at  {record.updated_at or '(unknown)'}")
            if not record.legends:
                out.append("    legends     (none recorded)")
            for mode in sorted(record.legends):
                dates = record.legends[mode]
                shown = ", ".join(f"{d} (revision {r})" for d, r in sorted(dates.items()))
                out.append(f"    {mode:<11} {shown}")
    return "\n".join(out) + "\n"


@state_command.command("rm")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@state_option
@_sandbox_option
@lock_timeout_option
@handle_errors
def rm(ids: tuple[str, ...], state_path: str | None, sandbox: bool, lock_timeout: float) -> None:
    """Forget the records of these visualizations, or the pending marks of these AOIs (under
    the state lock).

    A visualization's record: the next plan then rolls back every declared legend of it
    again, which changes nothing where they are already auto-computed. Use it to repair a
    state that claims something no longer true.

    An AOI's pending mark (an apply set out to change it and did not finish; 'state show'
    lists them): pull request plans then stop planning it. A plan of every AOI still shows
    what is left there. Ids that are neither are an error, and then nothing is removed.
    """
    settings = Settings(state=state_path, sandbox=sandbox, lock_timeout=lock_timeout)
    store, records, marks = Engine(settings).state_rm(ids)
    removed = [plural(records, "record")] if records else []
    removed += [plural(marks, "pending mark")] if marks else []
    echo(f"Removed {' and '.join(removed)} from {store.label}.")


@state_command.command("copy")
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
@click.option("--force", is_flag=True, help="Replace the records DST already holds.")
@lock_timeout_option
@handle_errors
def copy(source: str, destination: str, force: bool, lock_timeout: float) -> None:
    """Copy the state at SRC to DST, holding both locks, to move it (say, to S3).

    SRC and DST are paths or URLs as --state takes them (s3://, gs://, az://, file://). The
    records of SRC, its journal included, are written whole to DST; SRC is left as it was. A
    DST that holds records is refused unless --force. Then point RECONCILER_STATE (or --state)
    at DST in every job.

    \b
    Examples:
      reconciler state copy .reconciler/state.json s3://bucket/reconciler/state.json
    """
    settings = Settings(lock_timeout=lock_timeout)
    src, dst, state = Engine(settings).state_copy(source, destination, force=force)
    selectors = sum(len(keys) for keys in state.selectors.values())
    also = f" and {plural(selectors, 'selector record')}" if selectors else ""
    echo(
        f"Copied {plural(len(state.visualizations), 'record')}{also} from {src.label} to "
        f"{dst.label}; {src.label} is unchanged. Point RECONCILER_STATE (or --state) at "
        f"{dst.label} from now on."
    )


@state_command.command("unlock")
@click.argument("lock_id")
@state_option
@_sandbox_option
@handle_errors
def unlock(lock_id: str, state_path: str | None, sandbox: bool) -> None:
    """Break the state lock LOCK_ID left by an apply that died (like terraform force-unlock).

    The error of a refused apply names the lock id and its holder. Only the lock with exactly
    that id is removed, so a lock taken by a new apply meanwhile is never broken by mistake.
    Make sure that apply is really gone: two applies at once make each other's records look
    edited.
    """
    store, holder = Engine(Settings(state=state_path, sandbox=sandbox)).state_unlock(lock_id)
    echo(f"Broke the lock on {store.label} held by {holder.describe()}.")
