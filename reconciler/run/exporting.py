"""``export``: where the spec files of what exists go, checked before a request is sent.

``core.export`` says what the files contain; this module decides which files, refuses to
replace one unless forced (before reading the account where it can, and again before writing),
and writes them. ``Engine.export`` reads the account between ``Export.pick`` (called with the
AOI listing, before any AOI is read) and ``Export.finish``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.api.types import Aoi
from reconciler.core.export import SCHEMA_FILE, document, export_aois, file_names
from reconciler.core.observed import Observed
from reconciler.errors import ConfigError
from reconciler.run.output import write_file
from reconciler.spec.files import find_spec_files
from reconciler.spec.models import SpecFile
from reconciler.state.records import State
from reconciler.text import closest


@dataclass(frozen=True)
class ExportOptions:
    """What ``export`` writes and where.

    ``aois``: AOI names or ids (``all_aois``: every AOI with a visualization instead).
    ``out``: None for one document on standard output; a path ending in .yaml/.yml for one
    file; anything else is a directory that gets one file per AOI. ``by_name``: refer to AOIs,
    indices and assets by name where unambiguous. ``force``: replace existing files.
    """

    aois: tuple[str, ...] = ()
    all_aois: bool = False
    out: Path | None = None
    by_name: bool = False
    force: bool = False


@dataclass(frozen=True)
class ExportResult:
    """What ``export`` wrote: ``files`` (schema included), or ``text`` when given no ``out``."""

    files: tuple[Path, ...]
    text: str | None
    aois: int
    visualizations: int
    without_visualizations: int  # AOIs --all left out: nothing to declare there
    #: Spec files that were in the --out directory already: a plan of it reads them too.
    others: tuple[Path, ...] = ()


class Export:
    """One export with ``options``: its checks, the AOIs it picks, the files it writes."""

    def __init__(self, options: ExportOptions) -> None:
        if options.all_aois == bool(options.aois):
            raise ConfigError(
                "--all and --aoi exclude each other"
                if options.all_aois
                else "say which AOIs to export: --all, or --aoi NAME|ID (repeatable)"
            )
        self.options = options
        self.single = options.out is None or options.out.suffix.lower() in (".yaml", ".yml")
        _check_out(options.out, self.single)
        self.schema = json.dumps(SpecFile.model_json_schema(), indent=2) + "\n"
        self.names: dict[str, str] = {}
        if self.single and options.out is not None:
            # Before any request: the one file's name is known already.
            _refuse_overwrite(
                {options.out: "", options.out.parent / SCHEMA_FILE: self.schema},
                force=options.force,
            )

    def pick(self, aois: Sequence[Aoi]) -> list[Aoi]:
        """The AOIs to export, from the AOI listing, before any of them is read."""
        options = self.options
        chosen = list(aois) if options.all_aois else _pick_aois(options.aois, aois)
        chosen.sort(key=lambda a: (a.name, a.id))
        if not self.single and options.out is not None:
            # Right after the AOI listing, before reading any AOI. With --all that also
            # refuses the file of an AOI that turns out to have nothing to export: better
            # too careful with nothing read yet than exact after reading the whole account.
            self.names.update(file_names(chosen))
            wanted = {options.out / self.names[a.id]: "" for a in chosen}
            _refuse_overwrite(
                {**wanted, options.out / SCHEMA_FILE: self.schema}, force=options.force
            )
        return chosen

    def finish(self, observed: Observed, records: State) -> ExportResult:
        """Write what ``observed`` holds (``records``: the state, for the rollback hints)."""
        options = self.options
        entries = export_aois(
            sorted(observed.by_aoi.values(), key=lambda s: (s.aoi.name, s.aoi.id)),
            observed.aois,
            observed.indices,
            records,
            by_name=options.by_name,
        )
        kept = [e for e in entries if e.visualizations or not options.all_aois]
        count = sum(e.visualizations for e in kept)
        empty = len(entries) - len(kept)
        if options.out is None:
            text = document(kept, schema_beside=False) if kept else None
            return ExportResult((), text, len(kept), count, empty)
        files: dict[Path, str] = {}
        if self.single:
            if kept:
                files[options.out] = document(kept)
        else:
            files = {options.out / self.names[e.aoi.id]: document([e]) for e in kept}
        if files:
            files[next(iter(files)).parent / SCHEMA_FILE] = self.schema
        # Again, for files that appeared while the account was read.
        _refuse_overwrite(files, force=options.force)
        for path, text in files.items():
            write_file(path, text)
        others: tuple[Path, ...] = ()
        if not self.single and files:
            written = {p.resolve() for p in files}
            others = tuple(
                p for _, p in find_spec_files([options.out]) if p.resolve() not in written
            )
        return ExportResult(tuple(files), None, len(kept), count, empty, others)


def _check_out(out: Path | None, single: bool) -> None:
    if out is None:
        return
    if single and out.is_dir():
        raise ConfigError(f"--out {out} is a directory; name a .yaml file, or drop the suffix")
    if not single and out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory: for one file, name it *.yaml")
    if not single and out.suffix and not out.is_dir():
        # Most likely a file meant in another format (plan --out takes plan.json).
        raise ConfigError(
            f"--out {out}: export writes YAML specs; for one file name it *.yaml, for a "
            f"directory drop the '{out.suffix}' (or create the directory first)"
        )


def _pick_aois(refs: Sequence[str], aois: Sequence[Aoi]) -> list[Aoi]:
    """The AOIs ``--aoi`` names (ids first, then unique names); every miss in one error."""
    chosen: dict[str, Aoi] = {}
    problems: list[str] = []
    for ref in refs:
        by_id = [a for a in aois if a.id == ref]
        named = by_id or [a for a in aois if a.name == ref]
        if len(named) == 1:
            chosen[named[0].id] = named[0]
        elif named:
            problems.append(
                f"--aoi '{ref}': {len(named)} AOIs have this name "
                f"({', '.join(a.id for a in named)}): give the id"
            )
        else:
            problems.append(f"--aoi '{ref}' matches no AOI{closest(ref, (a.name for a in aois))}")
    if problems:
        raise ConfigError("; ".join(problems))
    return list(chosen.values())


def _refuse_overwrite(files: Mapping[Path, str], *, force: bool) -> None:
    """Export never replaces a file unless forced (an identical schema file is no change)."""
    if force:
        return
    taken = []
    for path, text in files.items():
        if not path.exists():
            continue
        if path.name == SCHEMA_FILE and path.is_file():
            try:
                if path.read_text(encoding="utf-8") == text:
                    continue
            except (OSError, UnicodeDecodeError):
                pass
        taken.append(str(path))
    if taken:
        shown = ", ".join(taken[:5]) + (f" and {len(taken) - 5} more" if len(taken) > 5 else "")
        raise ConfigError(
            f"refusing to overwrite {shown}: nothing was written. Choose another --out, or "
            "pass --force to replace them"
        )
