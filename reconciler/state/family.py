"""A state's family: the unsharded state and every shard's, kept side by side.

With ``--shard I/N`` each shard keeps its own state beside the unsharded one: ``state.json``
becomes ``state.shard-2-of-4.json`` (its lock and journal follow its name), local or remote
alike. Those files are one family. A state owns the AOIs it has records of; an apply reads its
family's other states (read-only, without their locks) to find AOIs that another state owns,
so that two states never roll back the same legends over and over, each making the other's
records look edited.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import ConfigError, StateError
from reconciler.state.records import State
from reconciler.state.remotefs import open_filesystem, parse_location, remote_error

log = logging.getLogger(__name__)

#: What a shard's state adds to the unsharded name's stem: 'state.shard-2-of-4.json'.
_SHARD_PART = re.compile(r"\.shard-[1-9]\d{0,3}-of-[1-9]\d{0,3}$")


def sharded(location: str | Path, index: int, count: int) -> str | Path:
    """The location of shard ``index`` of ``count``'s state, beside the unsharded ``location``.

    The suffix goes before the last extension ('state' becomes 'state.shard-2-of-4'). A
    location that already names a shard is a ``ConfigError``: the shards must share one base.
    """
    text = str(location)
    head, slash, name = text.rpartition("/")
    stem, ext = _split(name)
    if _SHARD_PART.search(stem):
        raise ConfigError(
            f"--state {name} already names a shard's state; with --shard give the unsharded "
            "location (each shard adds its own '.shard-I-of-N' to it)"
        )
    if not stem:
        raise ConfigError(f"--state {text}: expected a file name at the end, to add the shard to")
    new = f"{head}{slash}{stem}.shard-{index}-of-{count}{ext}"
    return Path(new) if isinstance(location, Path) else new


def names_a_shard(location: str | Path) -> bool:
    """Whether ``location`` is a shard's state ('state.shard-2-of-4.json')."""
    stem, _ = _split(str(location).rpartition("/")[2])
    return _SHARD_PART.search(stem) is not None


def _split(name: str) -> tuple[str, str]:
    """'state.json' -> ('state', '.json'); 'state' -> ('state', '')."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return name, ""
    if _SHARD_PART.search("." + ext) is not None:  # 'state.shard-1-of-2': no extension
        return name, ""
    return stem, "." + ext


def family_key(name: str) -> tuple[str, str]:
    """The unsharded stem and extension of a state's file name: 'state.shard-2-of-4.json' and
    'state.json' are both ('state', '.json')."""
    stem, ext = _split(name)
    return _SHARD_PART.sub("", stem), ext


@dataclass(frozen=True, slots=True)
class Relative:
    """Another state of the family: where it is (as messages show it) and its records."""

    label: str
    location: str | Path
    state: State


def relatives(location: str | Path) -> tuple[list[Relative], list[str]]:
    """The family's other states that hold records, by location; and why any could not be
    read (each logged too). ``StateError`` when the family cannot be listed.

    Read without their locks: ownership is decided by records, which only ever grow under a
    lock, and a record half-moved by a crashed take-over is in both states, which is told.
    """
    from reconciler.state.store import StateStore  # the store needs this module's names

    found: list[Relative] = []
    problems: list[str] = []
    for member in _members(location):
        store = StateStore(member)
        try:
            state = store.load()
        except StateError as exc:
            log.warning("could not read %s to see which AOIs it owns: %s", store.label, exc)
            problems.append(str(exc))
            continue
        if state.visualizations:
            found.append(Relative(store.label, member, state))
    return found, problems


def _members(location: str | Path) -> list[str | Path]:
    parsed = parse_location(location)
    if parsed.path is not None:
        path = parsed.path
        key = family_key(path.name)
        try:
            names = sorted(p.name for p in path.parent.iterdir() if p.is_file())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StateError(f"cannot list {path.parent} for the other states: {exc}") from None
        return [path.with_name(n) for n in names if n != path.name and family_key(n) == key]
    fs, key_path = open_filesystem(parsed)
    folder, _, name = key_path.rpartition("/")
    key = family_key(name)
    try:
        listed = fs.ls(folder, detail=False)
    except FileNotFoundError:
        return []
    except Exception as exc:
        raise remote_error("list the other shards' states", parsed.url, exc) from None
    base = parsed.url.rsplit("/", 1)[0]
    names = sorted(str(p).rstrip("/").rpartition("/")[2] for p in listed)
    return [f"{base}/{n}" for n in names if n != name and family_key(n) == key]
