"""Saved plans as apply and show take them: which argument is one, reading it, and what to
say when it is refused (the command that makes it again)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from reconciler.core import planfile
from reconciler.core.plan import Plan
from reconciler.core.shards import Shard
from reconciler.errors import PlanFileError
from reconciler.run.settings import DEFAULT_SPEC_PATHS
from reconciler.text import command_line


def replan_command(
    saved: Plan, path: str, spec_paths: Sequence[str], carried: Sequence[str]
) -> str:
    """For a refused saved plan: the command that makes a new one of the same AOIs, same place."""
    paths = [] if tuple(spec_paths) == DEFAULT_SPEC_PATHS else list(spec_paths)
    targets = [word for target in saved.targets for word in ("--target", target)]
    if saved.changed_since is not None:
        targets = ["--changed-since", saved.changed_since.ref]
    if saved.shard is not None and len(saved.shard.shards) == 1 and "--shard" not in carried:
        targets += ["--shard", f"{saved.shard.shards[0]}/{saved.shard.count}"]
    return command_line("plan", *paths, *targets, "--out", path, *carried)


def check_spec_paths(saved: Plan, plan_path: str, spec_paths: Sequence[str]) -> None:
    """Refuse a plan made from other spec paths than this apply reads: the file's word for
    where its specs are is not taken, it is only compared."""

    def norm(paths: Sequence[str]) -> list[str]:
        return sorted({os.path.normpath(p) for p in paths})

    if norm(saved.spec_paths) != norm(spec_paths):
        shown = ", ".join(saved.spec_paths) or "(none)"
        raise PlanFileError(
            f"{plan_path}: the plan was made from the specs in {shown}, and this apply reads "
            f"{', '.join(spec_paths)}; nothing was applied. Apply it with the same spec paths "
            f"({command_line('apply', plan_path, *saved.spec_paths)}), or make a new plan"
        )


def is_plan_file(paths: Sequence[str]) -> bool:
    """Whether ``apply``'s arguments start with a saved plan (``split_plan_paths``)."""
    return split_plan_paths(paths)[0] is not None


def _is_plan_path(path: str) -> bool:
    """A file that is not YAML: a saved plan (from 'plan --out').

    A missing ``*.json`` counts too: it is a plan that did not arrive (a CI artifact that was
    not downloaded), to be reported as such rather than as a missing spec.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if not file.exists():
        return suffix == ".json"
    return file.is_file() and suffix not in (".yaml", ".yml")


def split_plan_paths(paths: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """``apply``'s arguments: a saved plan first, if the first is one, then spec paths."""
    if paths and _is_plan_path(paths[0]):
        return paths[0], tuple(paths[1:])
    return None, tuple(paths)


def load_plan_file(path: Path) -> Plan:
    """A plan saved by ``plan --out``; ``PlanFileError`` for anything else."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanFileError(f"{path}: no such saved plan (make one with 'plan --out')") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanFileError(f"{path}: not a saved plan ({exc})") from None
    return planfile.loads(text, source=str(path))


def saved_shard(saved: Plan, plan_path: str, mine: Shard | None) -> Shard | None:
    """The shard whose state applies ``saved``: the one it was made for. ``mine``
    (``--shard``) may say so again, not otherwise."""
    theirs = saved.shard
    if theirs is None:
        if mine is not None:
            raise PlanFileError(
                f"{plan_path}: the plan was made without --shard, and this apply has "
                f"--shard {mine} (the option, or RECONCILER_SHARD); nothing was applied. "
                "Apply it without either"
            )
        return None
    if len(theirs.shards) != 1:
        raise PlanFileError(f"{plan_path}: a plan of several shards cannot be applied")
    try:
        shard = Shard(theirs.shards[0], theirs.count)
    except ValueError as exc:
        raise PlanFileError(f"{plan_path}: not a valid reconciler plan: shard: {exc}") from None
    if mine is not None and mine != shard:
        raise PlanFileError(
            f"{plan_path}: the plan is shard {shard}'s, and this apply has --shard {mine} (the "
            f"option, or RECONCILER_SHARD); nothing was applied. Apply it with --shard {shard}, "
            "or without either"
        )
    return shard
