"""The rollback state: its records, and how they are written as JSON.

The API never returns legends in its listings, so the state is the tool's memory of them: per
visualization id, which (mode, date) legends this tool last made auto-computed, at which spec
``revision``, which it set to a declared custom legend (and what that one declared), what each
looked like right after where the API showed it (a fingerprint), and the visualization's
``updated_at`` right after. The planner reads it (a legend is pending when there is no record,
when the spec asks for something else, or when ``updated_at`` moved and the legend's content did
too); apply writes it after every successful PATCH and PUT and when a new visualization is
ready.

The file (default ``.reconciler/state.json``, or a remote object) is small, human-readable JSON
that diffs well::

    {
      "version": 1,
      "visualizations": {
        "<visualization id>": {
          "aoi_id": "<aoi id>",
          "legends": {"dynamic": {"2024-05-06": 0}},
          "custom": {"theoretical": {"2024-05-06": {"bins": null, "items": [
            {"min": -1, "max": 0.2, "color": "#d7191c", "label": "Bare"}, ...]}}},
          "content": {"dynamic": {"2024-05-06": "<fingerprint of the legend>"}},
          "updated_at": "2025-01-02T03:04:05Z"
        }
      },
      "selectors": {"specs/farms.yaml": {"names: Farm-*": {"<aoi id>": "<aoi name>"}}},
      "pending": {"<aoi id>": "<aoi name>"}
    }

``custom`` and ``content`` are present once used, and the file is then version 2 (1 otherwise,
as older reconcilers wrote it).

``pending`` (present while it holds anything; the file is then version 3) names the AOIs an
apply set out to change and did not finish: marked before the first change of the apply is
sent, cleared once every change it planned on the AOI succeeded (or a later apply found nothing
to do there). A killed, stopped or failed apply leaves them marked, and ``plan --changed-since``
plans them beside what the pull request changed, so their leftovers are in the next review.

``selectors`` (present once specs use selectors) remembers, per spec file, which AOIs each of
its selectors matched at the last apply that read that file, so a plan can say which ones it
no longer matches. Per file, because a plan or apply may read some spec files only: it reports
and replaces the records of those files, and leaves the others' alone.

This module is the pure model (``State``, ``VizRecord``) and its parsing (``parse_state``,
``parse_record``); where the state is kept, how it is written without losing a record on a crash,
and how it is locked is ``reconciler.state.store``. Nothing secret is ever stored: ids, dates,
revisions and timestamps only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from reconciler.dates import iso_date
from reconciler.errors import StateError

log = logging.getLogger(__name__)

#: Where the state lives unless ``--state`` says otherwise (relative to the working directory).
DEFAULT_STATE_PATH = Path(".reconciler/state.json")

#: The newest ``version`` this module reads and writes. A file is written as version 1 while
#: no record holds what version 2 added (custom legends, content fingerprints), so that an
#: older reconciler still reads it; one that cannot says "upgrade" instead of "not a state".
STATE_VERSION = 3
_READS = (1, 2, 3)


# ---- the in-memory model --------------------------------------------------------------------


@dataclass
class VizRecord:
    """What this tool knows about one visualization's legends.

    ``legends`` maps mode -> ISO date -> the spec revision at which that legend was made
    auto-computed; ``custom`` mode -> ISO date -> the custom legend this tool set there, as
    declared (``LegendContent.as_record``); ``content`` mode -> ISO date -> the fingerprint of the
    legend as the API showed it right after this tool's change, where it showed it (a
    rollback's answer does), so that a plan can tell an edit from a change elsewhere.
    ``updated_at`` is the visualization's ``updated_at`` right after the last of them.
    """

    aoi_id: str
    updated_at: str
    legends: dict[str, dict[str, int]] = field(default_factory=dict)
    custom: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    content: dict[str, dict[str, str]] = field(default_factory=dict)

    def revision_of(self, mode: str, date: str) -> int | None:
        """The revision at which (mode, date) was rolled back, or None if there is no record."""
        return self.legends.get(mode, {}).get(date)

    def custom_of(self, mode: str, date: str) -> dict[str, Any] | None:
        """The custom legend this tool set on (mode, date), as declared then, or None."""
        return self.custom.get(mode, {}).get(date)

    def content_of(self, mode: str, date: str) -> str | None:
        """The fingerprint of (mode, date)'s legend right after this tool changed it, or None."""
        return self.content.get(mode, {}).get(date)

    def dated(self) -> list[tuple[str, str]]:
        """Every (mode, date) legend this record tells of, auto-computed or custom."""
        return sorted(
            {(m, d) for table in (self.legends, self.custom) for m, ds in table.items() for d in ds}
        )

    @property
    def newer(self) -> bool:
        """Whether it holds what only version 2 of the file can say."""
        return any(self.custom.values()) or any(self.content.values())

    def to_dict(self) -> dict[str, Any]:
        """This record as written in the state file."""
        data: dict[str, Any] = {
            "aoi_id": self.aoi_id,
            "updated_at": self.updated_at,
            "legends": _kept(self.legends),
        }
        if any(self.custom.values()):
            data["custom"] = _kept(self.custom)
        if any(self.content.values()):
            data["content"] = _kept(self.content)
        return data

    def fingerprints(self) -> dict[tuple[str, str], str]:
        """(mode, date) -> the fingerprint of that legend right after this tool's change."""
        return {(m, d): f for m, dates in self.content.items() for d, f in dates.items()}

    def _forget_each(self, pairs: Iterable[tuple[str, str]]) -> None:
        for mode, date in pairs:
            self._forget(mode, (date,))

    def _forget(self, mode: str, dates: Iterable[str]) -> None:
        """Drop every record of these dates of ``mode``: a change is being recorded there."""
        for table in (self.legends, self.custom, self.content):
            held: dict[str, Any] = table.get(mode, {})
            for date in dates:
                held.pop(date, None)


def _kept(table: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {mode: dict(dates) for mode, dates in table.items() if dates}


@dataclass
class State:
    """Every record, keyed by visualization id: plain data, JSON-serialisable via ``to_dict``."""

    visualizations: dict[str, VizRecord] = field(default_factory=dict)
    #: spec file -> selector key -> {AOI id: AOI name} it matched at the last apply; the file
    #: "" holds records of an older reconciler, which did not keep the file
    selectors: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    #: AOI id -> AOI name: AOIs an apply set out to change and did not finish
    pending: dict[str, str] = field(default_factory=dict)

    def get(self, visualization_id: str) -> VizRecord | None:
        """The record of one visualization, or None if this tool never rolled it back."""
        return self.visualizations.get(visualization_id)

    def record_rollback(
        self,
        visualization_id: str,
        *,
        aoi_id: str,
        mode: str,
        dates: Iterable[str],
        revision: int,
        updated_at: str,
        previous_updated_at: str | None = None,
        fingerprints: Mapping[str, str] | None = None,
        forget: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Remember that a PATCH made ``dates`` in ``mode`` auto-computed at ``revision``.

        Merges into the existing record (other modes and dates are kept) and sets ``updated_at``
        to the one the PATCH answered with. ``fingerprints``: date -> the fingerprint of the
        legend the PATCH answered with, where it did. ``forget``: other (mode, date) legends
        whose records can no longer be trusted (found changed, or meant to be changed by a
        change that did not happen): dropped, so the next plan makes them again.

        ``previous_updated_at`` is the ``updated_at`` the visualization had just before this
        PATCH (the observed one, or the answer of this run's previous PATCH of the same
        visualization). Pass it when known: if it differs from the recorded one, someone changed
        the visualization since our record, so the other legends' records can no longer be
        trusted and are dropped; otherwise a later PATCH failing would leave them claiming
        "auto-computed" under a fresh ``updated_at`` and the next plan would miss them.
        """
        checked = _checked_dates(dates)
        _check_revision(revision)
        record = self._record_for(visualization_id, aoi_id, updated_at, previous_updated_at)
        record._forget_each(forget)
        record._forget(mode, checked)
        if checked:
            record.legends.setdefault(mode, {}).update(dict.fromkeys(checked, revision))
        shown = {d: f for d, f in (fingerprints or {}).items() if d in set(checked)}
        if shown:
            record.content.setdefault(mode, {}).update(shown)

    def record_legend(
        self,
        visualization_id: str,
        *,
        aoi_id: str,
        mode: str,
        legends: Mapping[str, Mapping[str, Any]],
        updated_at: str,
        previous_updated_at: str | None = None,
        fingerprints: Mapping[str, str] | None = None,
        forget: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Remember that a PUT set the custom legends of ``mode``: date -> the legend as
        declared (``LegendContent.as_record``), and ``fingerprints`` date -> the fingerprint of
        the legend read back right after.

        Merges like ``record_rollback``, whose rules on ``previous_updated_at`` and ``forget``
        it shares.
        """
        checked = _checked_dates(legends)
        declared = {iso_date(d): _custom(legend) for d, legend in legends.items()}
        record = self._record_for(visualization_id, aoi_id, updated_at, previous_updated_at)
        record._forget_each(forget)
        record._forget(mode, checked)
        if declared:
            record.custom.setdefault(mode, {}).update(declared)
        shown = {d: f for d, f in (fingerprints or {}).items() if d in set(checked)}
        if shown:
            record.content.setdefault(mode, {}).update(shown)

    def _record_for(
        self,
        visualization_id: str,
        aoi_id: str,
        updated_at: str,
        previous_updated_at: str | None,
    ) -> VizRecord:
        """The record a change is merged into, its ``updated_at`` set to ``updated_at``: a new
        one when there is none, or when the visualization changed since (see
        ``record_rollback``)."""
        record = self.visualizations.get(visualization_id)
        untrusted = (
            record is not None
            and previous_updated_at is not None
            and previous_updated_at != record.updated_at
        )
        if record is None or untrusted:
            if untrusted:
                log.info(
                    "visualization %s changed since its last record; dropping the other legends' "
                    "records so the next plan checks them again",
                    visualization_id,
                )
            record = VizRecord(aoi_id=aoi_id, updated_at=updated_at)
            self.visualizations[visualization_id] = record
        record.aoi_id = aoi_id
        record.updated_at = updated_at
        return record

    def record_fresh(
        self,
        visualization_id: str,
        *,
        aoi_id: str,
        legends: Mapping[str, Iterable[str]],
        updated_at: str,
        revision: int = 0,
        fingerprints: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """Remember a newly created visualization that reached ``success``: all legends auto.

        Replaces any earlier record of that id; ``legends`` maps each mode the index has to
        the dates it has legends for, ``fingerprints`` mode -> date -> the fingerprint of
        that legend, where it was read.
        """
        _check_revision(revision)
        made = {
            mode: dict.fromkeys(checked, revision)
            for mode, dates in legends.items()
            if (checked := _checked_dates(dates))
        }
        self.visualizations[visualization_id] = VizRecord(
            aoi_id=aoi_id,
            updated_at=updated_at,
            legends=made,
            content=_kept(
                {
                    mode: {
                        d: f for d, f in (fingerprints or {}).get(mode, {}).items() if d in dates
                    }
                    for mode, dates in made.items()
                }
            ),
        )

    def remove(self, visualization_id: str) -> bool:
        """Forget one visualization's record; whether there was one."""
        return self.visualizations.pop(visualization_id, None) is not None

    def put(self, visualization_id: str, record: VizRecord | None) -> None:
        """Set (or, with None, remove) one visualization's record as it is."""
        if record is None:
            self.visualizations.pop(visualization_id, None)
        else:
            self.visualizations[visualization_id] = record

    def record_selectors(
        self,
        matches: Mapping[str, Mapping[str, Mapping[str, str]]],
        *,
        replacing: Callable[[str], bool],
    ) -> bool:
        """Remember what each selector matched: spec file -> selector key -> {AOI id: name}.

        The records of every file in ``matches`` and of every recorded file ``replacing``
        accepts (the files the apply read, or would have read had they not been deleted) give
        way to ``matches``; other files' records stay. Returns whether anything changed.
        """
        merged = {file: keys for file, keys in self.selectors.items() if not replacing(file)}
        merged.update(
            {
                file: {key: dict(aois) for key, aois in keys.items()}
                for file, keys in matches.items()
                if keys
            }
        )
        if merged == self.selectors:
            return False
        self.selectors = merged
        return True

    def mark_pending(self, aois: Mapping[str, str]) -> bool:
        """Remember ``aois`` (id -> name) as set out to change; whether anything changed."""
        marked = {**self.pending, **aois}
        if marked == self.pending:
            return False
        self.pending = marked
        return True

    def finish_pending(self, aoi_ids: Iterable[str]) -> bool:
        """Forget that ``aoi_ids`` were pending: nothing is left to do there; whether any
        was."""
        done = set(aoi_ids) & self.pending.keys()
        for aoi_id in done:
            del self.pending[aoi_id]
        return bool(done)

    def to_dict(self) -> dict[str, Any]:
        """The whole state as the JSON object written to disk (a deep copy)."""
        # The oldest version that can say it all, so that older reconcilers keep reading the
        # files they can.
        newer = any(rec.newer for rec in self.visualizations.values())
        data: dict[str, Any] = {
            "version": 3 if self.pending else 2 if newer else 1,
            "visualizations": {vid: rec.to_dict() for vid, rec in self.visualizations.items()},
        }
        if self.selectors:  # absent unless used, so such files stay as they always were
            data["selectors"] = {
                file: {key: dict(aois) for key, aois in keys.items()}
                for file, keys in self.selectors.items()
            }
        if self.pending:
            data["pending"] = dict(sorted(self.pending.items()))
        return data

    @classmethod
    def from_dict(cls, data: object, *, source: str) -> State:
        """Read what ``to_dict`` wrote; raise ``StateError`` naming ``source`` on anything else."""
        if not isinstance(data, dict):
            raise StateError(
                f"{source}: not a reconciler state file: expected a JSON object, "
                f"found {_json_type(data)}"
            )
        if "version" not in data:
            raise StateError(f'{source}: not a reconciler state file: it has no "version"')
        version = data["version"]
        if type(version) is not int or version not in _READS:
            if type(version) is int and version > STATE_VERSION:
                hint = "it was written by a newer reconciler; upgrade reconciler to use it"
            else:
                hint = f"this reconciler reads versions {' and '.join(map(str, _READS))}"
            raise StateError(f"{source}: unsupported state file version {_short(version)}: {hint}")
        selectors = data.get("selectors")
        if isinstance(selectors, dict) and any(
            isinstance(keys, dict) and (not keys or any(isinstance(v, str) for v in keys.values()))
            for keys in selectors.values()
        ):
            # Written before records named their spec file: selector key -> {AOI id: name}
            # (empty for a selector that matched nothing; a file always has a selector).
            data = {**data, "selectors": {"": selectors}}
        try:
            parsed = _StateFile.model_validate(data)
        except ValidationError as exc:
            raise _invalid(source, exc) from None
        return cls(
            visualizations={vid: _record(rec) for vid, rec in parsed.visualizations.items()},
            selectors={
                file: {key: dict(aois) for key, aois in keys.items()}
                for file, keys in parsed.selectors.items()
            },
            pending=dict(parsed.pending),
        )


def _checked_dates(dates: Iterable[str]) -> list[str]:
    # A wrong spelling here (say the API's 2024_05_06) would never match what the planner
    # looks up, silently re-planning the rollback forever: refuse it where the bug is.
    if isinstance(dates, str):
        raise StateError(f"dates must be a collection of ISO dates, not the string {dates!r}")
    checked = []
    for date in dates:
        try:
            checked.append(iso_date(date))
        except ValueError:
            raise StateError(f"cannot record legend date {date!r}: expected 2024-05-06") from None
    return checked


def _custom(legend: Mapping[str, Any]) -> dict[str, Any]:
    """A custom legend as the file keeps it; ``StateError`` for anything else (a bug)."""
    try:
        return _CustomLegend.model_validate(legend).model_dump()
    except ValidationError as exc:
        raise StateError(f"cannot record custom legend {legend!r}: {exc}") from None


def _check_revision(revision: int) -> None:
    if type(revision) is not int or revision < 0:
        raise StateError(f"cannot record revision {revision!r}: expected an integer >= 0")


# ---- file validation (pydantic) ---------------------------------------------------------------

_IsoDate = Annotated[str, AfterValidator(iso_date)]
_Revision = Annotated[int, Field(ge=0)]


class _LegendItem(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    min: float | None
    max: float | None
    color: str
    label: str | None


class _CustomLegend(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    bins: int | None
    items: list[_LegendItem]


class _VizFile(BaseModel):
    # strict: a "3" where we wrote 3 means someone else wrote the file; refuse, do not coerce.
    model_config = ConfigDict(strict=True, extra="forbid")

    aoi_id: str
    updated_at: str
    legends: dict[str, dict[_IsoDate, _Revision]]
    custom: dict[str, dict[_IsoDate, _CustomLegend]] = Field(default_factory=dict)
    content: dict[str, dict[_IsoDate, str]] = Field(default_factory=dict)


class _StateFile(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    version: int
    visualizations: dict[str, _VizFile]
    selectors: dict[str, dict[str, dict[str, str]]] = Field(default_factory=dict)
    pending: dict[str, str] = Field(default_factory=dict)


def _json_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as a JSONPath, e.g. ``$.visualizations["v1"].aoi_id``."""
    out = "$"
    for part in loc:
        if part == "[key]":  # pydantic's marker for "the key itself is wrong"
            out += " (the key)"
        elif isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def _short(value: object) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | None) else None
    text = text or _json_type(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_state(raw: bytes, source: str) -> State:
    """The state in a file's bytes; ``StateError`` naming ``source`` on anything else."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StateError(
            f"state file {source} is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg}). Fix it, or delete it: the next plan then rolls back "
            "every declared legend, which is harmless."
        ) from None
    except UnicodeDecodeError:
        raise StateError(f"state file {source} is not UTF-8 text") from None
    return State.from_dict(data, source=source)


def parse_record(data: object) -> VizRecord:
    """One record as ``VizRecord.to_dict`` wrote it; ``ValueError`` saying what is wrong."""
    try:
        return _record(_VizFile.model_validate(data))
    except ValidationError as exc:
        raise ValueError("; ".join(_problems(exc)[:10])) from None


def _record(rec: _VizFile) -> VizRecord:
    return VizRecord(
        aoi_id=rec.aoi_id,
        updated_at=rec.updated_at,
        legends=_kept(rec.legends),
        custom=_kept(
            {
                mode: {d: legend.model_dump() for d, legend in dates.items()}
                for mode, dates in rec.custom.items()
            }
        ),
        content=_kept(rec.content),
    )


def _problems(exc: ValidationError) -> list[str]:
    return [
        f"{_json_path(err['loc'])}: {err['msg']}"
        + ("" if err["type"] == "missing" else f" (found {_short(err['input'])})")
        for err in exc.errors()
    ]


def _invalid(source: str, exc: ValidationError) -> StateError:
    problems = _problems(exc)
    shown = "\n  ".join(problems[:10])
    more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
    return StateError(
        f"{source}: not a state file this reconciler wrote:\n  {shown}{more}\n"
        "Fix it, or delete it: the next plan then rolls back every declared legend, "
        "which is harmless."
    )


def parse_pending(data: object) -> dict[str, str]:
    """Pending AOIs as ``State.to_dict`` writes them; ``ValueError`` saying what is wrong."""
    try:
        parsed = _StateFile.model_validate(
            {"version": STATE_VERSION, "visualizations": {}, "pending": data}
        )
    except ValidationError as exc:
        raise ValueError("; ".join(_problems(exc)[:10])) from None
    return dict(parsed.pending)


def parse_selectors(data: object) -> dict[str, dict[str, dict[str, str]]]:
    """Selector records as ``State.to_dict`` writes them; ``ValueError`` saying what is wrong."""
    try:
        parsed = _StateFile.model_validate(
            {"version": STATE_VERSION, "visualizations": {}, "selectors": data}
        )
    except ValidationError as exc:
        raise ValueError("; ".join(_problems(exc)[:10])) from None
    return {
        file: {key: dict(aois) for key, aois in keys.items()}
        for file, keys in parsed.selectors.items()
    }
