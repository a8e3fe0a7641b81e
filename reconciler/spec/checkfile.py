"""One spec file checked on its own: parsed with positions, validated against the format's
models, and turned into declarations, every problem at its node (``check_file``).

Apart from ``load`` so that a run whose files all come from the spec cache never builds the
format's pydantic models: ``load`` imports this module only to check a file.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from reconciler.errors import Problem, SpecError, Where
from reconciler.spec.decls import (
    NOT_CHECKED,
    UNREAD,
    AoiDecl,
    AssetPolicy,
    AssetSel,
    FileResult,
    IgnoreDecl,
    IndexDecl,
    LegendContent,
    LegendDecl,
    LegendItemDecl,
    RollbackDecl,
    SelectorDecl,
    VisualizationDecl,
)
from reconciler.spec.fields import DATE_LIKE, EXTENSION_PREFIX, looks_like_uuid
from reconciler.spec.messages import data_loc, problem_from_error
from reconciler.spec.models import (
    AoiByRef,
    AoiEntry,
    AoiRef,
    IgnoreRuleModel,
    IndexModel,
    LegendModel,
    SelectorMatchModel,
    SpecFile,
    VisualizationModel,
)
from reconciler.spec.yamlsource import Document, Loc, parse_yaml
from reconciler.text import plural

log = logging.getLogger(__name__)


def check_file(display: str, raw: bytes) -> FileResult:
    unchecked: list[Problem] = []
    try:
        doc = parse_yaml(raw, display)
    except SpecError as exc:
        unread = Problem(NOT_CHECKED + UNREAD, Where(display, 1, 1))
        return FileResult((), tuple(exc.problems), (unread,), (), (), ())
    file_aois, problems = _check_document(doc, unchecked)
    log.debug("read %s: %d AOI entries, %d problems", display, len(file_aois), len(problems))
    ignores = _ignore_decls(doc, (), doc.data)
    selectors = _selector_decls(doc, problems, unchecked)
    indices = _index_decls(doc, unchecked)
    return FileResult(
        tuple(file_aois),
        tuple(problems),
        tuple(unchecked),
        tuple(ignores),
        tuple(selectors),
        tuple(indices),
    )


# --- per-file checks -----------------------------------------------------------------------------


def _check_document(doc: Document, unchecked: list[Problem]) -> tuple[list[AoiDecl], list[Problem]]:
    """Validate one parsed file; return the declarations that are whole (or whole enough to
    check against the API), and the problems. What cannot be checked against the API even
    in part goes to ``unchecked``."""
    if doc.data is None:
        return [], [
            Problem(
                "the file is empty; a spec file needs an 'aois' list (see 'reconciler schema')",
                Where(doc.path, 1, 1),
            )
        ]
    problems: list[Problem] = []
    data = doc.data
    if isinstance(data, dict):
        # `x-...` top-level keys hold YAML anchors to reuse (as in docker-compose files).
        data = {k: v for k, v in data.items() if not k.startswith(EXTENSION_PREFIX)}
    valid: SpecFile | None = None
    try:
        valid = SpecFile.model_validate(data)
    except ValidationError as exc:
        problems.extend(problem_from_error(error, doc) for error in exc.errors())
    # Rebuild the declarations from the pieces that are valid on their own, so checks that
    # need whole declarations (duplicates) still run next to pydantic's errors. A valid file's
    # entries are taken from its validation, not validated twice.
    aois: list[AoiDecl] = []
    entries = doc.data.get("aois") if isinstance(doc.data, dict) else None
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        model = valid.aois[i] if valid is not None else None
        decl = _aoi_decl(doc, ("aois", i), entry, problems, model)
        if decl is not None:
            aois.append(decl)
        elif isinstance(entry, dict) and entry.get("visualizations"):
            unchecked.append(
                Problem(
                    NOT_CHECKED + "the visualizations of this entry, since its 'aoi' is not valid",
                    doc.where(("aois", i)),
                )
            )
    return aois, problems


_AOI_ADAPTER: TypeAdapter[Any] = TypeAdapter(AoiRef)


def _aoi_decl(
    doc: Document, loc: Loc, entry: Any, problems: list[Problem], valid: AoiEntry | None = None
) -> AoiDecl | None:
    """The declaration of the AOI entry at ``loc``; ``valid``: the entry as the whole file's
    validation made it, when the file is valid."""
    if not isinstance(entry, dict) or "aoi" not in entry:
        return None
    if valid is not None:
        ref = valid.aoi
        visualizations = [
            _visualization_decl(doc, (*loc, "visualizations", j), model, problems)
            for j, model in enumerate(valid.visualizations)
        ]
    else:
        try:
            ref = _AOI_ADAPTER.validate_python(entry["aoi"])
        except ValidationError:
            return None  # already reported by the whole-file validation
        visualizations = _visualizations(doc, loc, entry.get("visualizations"), problems)
    if isinstance(ref, AoiByRef):
        aoi_id, name = ref.id, ref.name
    else:
        aoi_id, name = ref, None
    return AoiDecl(
        aoi_id,
        name,
        doc.where((*loc, "aoi")),
        tuple(visualizations),
        ignore=tuple(_ignore_decls(doc, loc, entry)),
    )


def _visualizations(
    doc: Document, loc: Loc, raw_list: Any, problems: list[Problem]
) -> list[VisualizationDecl]:
    """The declarations of a ``visualizations`` list at ``loc``: each whole one, and of each
    one with problems of its own what its valid pieces declare (see ``_salvaged``)."""
    found: list[VisualizationDecl] = []
    for j, raw in enumerate(raw_list if isinstance(raw_list, list) else []):
        vis_loc = (*loc, "visualizations", j)
        try:
            model = VisualizationModel.model_validate(raw)
        except ValidationError as exc:
            decl = _salvaged(doc, vis_loc, raw, exc, problems)
            if decl is not None:
                found.append(decl)
            continue
        found.append(_visualization_decl(doc, vis_loc, model, problems))
    return found


def _salvaged(
    doc: Document, loc: Loc, raw: Any, error: ValidationError, problems: list[Problem]
) -> VisualizationDecl | None:
    """What the valid pieces of a visualization with problems declare, marked incomplete.

    The whole-file validation reported the problems; without this, the checks of everything
    else in the entry (an asset listed twice, and online its index, assets and rollbacks)
    would wait for another round. Pieces with a problem are left out, each remaining one
    keeps its position: a rollback keeps its valid dates, an asset list its valid items (and
    is then cut short: ``incomplete``), a missing or invalid index is none.
    """
    if not isinstance(raw, dict):
        return None
    bad = [data_loc(tuple(e["loc"])) for e in error.errors()]

    def broken(*at: str | int) -> bool:
        return any(b[: len(at)] == at for b in bad)

    # Every key with a problem somewhere under it (an unknown key too: a misspelt 'rollback'
    # may hide rollbacks), whether it is left out or cut short.
    incomplete = tuple(dict.fromkeys(str(b[0]) if b else "visualization" for b in bad))
    kept: dict[str, Any] = {"index": _PLACEHOLDER_INDEX}
    if not broken("index"):
        kept["index"] = raw["index"]
    assets_at: list[int] | None = None
    if "assets" in raw:
        value = raw["assets"]
        if not broken("assets"):
            kept["assets"] = value
        elif isinstance(value, list) and ("assets",) not in bad:
            assets_at = [k for k in range(len(value)) if not broken("assets", k)]
            if assets_at:
                kept["assets"] = [value[k] for k in assets_at]
    if "resolution" in raw and not broken("resolution"):
        kept["resolution"] = raw["resolution"]
    rollback_at: list[int] = []
    dates_at: list[list[int]] = []
    items = raw.get("rollback")
    pruned: list[dict[str, Any]] = []
    for k, item in enumerate(items if isinstance(items, list) and ("rollback",) not in bad else []):
        if not isinstance(item, dict) or ("rollback", k) in bad or broken("rollback", k, "mode"):
            continue
        dates = item.get("dates")
        if not isinstance(dates, list) or ("rollback", k, "dates") in bad:
            continue
        good = [n for n in range(len(dates)) if not broken("rollback", k, "dates", n)]
        if not good:
            continue
        rollback_at.append(k)
        dates_at.append(good)
        pruned.append({"mode": item["mode"], "dates": [dates[n] for n in good]})
    if pruned:
        kept["rollback"] = pruned
    legends = raw.get("legend")
    legends = legends if isinstance(legends, list) and ("legend",) not in bad else []
    legend_at: list[int] = []
    stand_ins: list[int] = []  # legends checked with stand-ins for their bad colours
    kept_legends: list[Any] = []
    for k, legend in enumerate(legends):
        if not broken("legend", k):
            legend_at.append(k)
            kept_legends.append(legend)
            continue
        repaired = _with_stand_ins(legend, [b[2:] for b in bad if b[:2] == ("legend", k)])
        if repaired is not None:
            legend_at.append(k)
            stand_ins.append(k)
            kept_legends.append(repaired)
    if kept_legends:
        kept["legend"] = kept_legends
    try:
        model = VisualizationModel.model_validate(kept)
    except ValidationError:
        return None  # a problem these rules do not know how to leave out: check nothing
    decl = _visualization_decl(
        doc,
        loc,
        model,
        problems,
        assets_at=assets_at,
        rollback_at=rollback_at,
        dates_at=dates_at,
        legend_at=legend_at,
    )
    index = "" if "index" in incomplete else decl.index
    # A legend checked with stand-ins declares nothing: its colours are not the author's.
    made_up = {doc.where((*loc, "legend", k)) for k in stand_ins}
    legends_kept = tuple(lg for lg in decl.legends if lg.where not in made_up)
    return replace(decl, index=index, incomplete=incomplete, legends=legends_kept)


def _with_stand_ins(legend: Any, bad: Sequence[tuple[Any, ...]]) -> dict[str, Any] | None:
    """``legend`` with a valid stand-in for each bad item colour or label, so that the rest of
    it (dates, bounds, order, bins) is still checked; None when something else is wrong."""
    if not isinstance(legend, dict) or not isinstance(legend.get("items"), list):
        return None
    items = [dict(i) if isinstance(i, dict) else i for i in legend["items"]]
    for at in bad:
        if len(at) != 3 or at[0] != "items" or at[2] not in ("color", "label"):
            return None
        item = items[at[1]] if isinstance(at[1], int) and at[1] < len(items) else None
        if not isinstance(item, dict):
            return None
        if at[2] == "color":
            item["color"] = "#000000"
        else:
            item.pop("label", None)
    return {**legend, "items": items}


#: Stands in for a missing or invalid index while the rest is validated; never shown.
_PLACEHOLDER_INDEX = "index"


def _visualization_decl(
    doc: Document,
    loc: Loc,
    model: VisualizationModel,
    problems: list[Problem],
    *,
    assets_at: Sequence[int] | None = None,
    rollback_at: Sequence[int] | None = None,
    dates_at: Sequence[Sequence[int]] | None = None,
    legend_at: Sequence[int] | None = None,
) -> VisualizationDecl:
    """The declaration ``model`` makes at ``loc``, with its own duplicates reported.

    ``assets_at``, ``rollback_at`` and ``dates_at`` map the model's list items to the items of
    the file they came from, when ``_salvaged`` left some out; else they are the same
    (``legend_at`` likewise for the custom legends).
    """
    assets: tuple[AssetSel, ...] | None = None
    policy: AssetPolicy = "all"
    if isinstance(model.assets, str):
        policy = model.assets
    elif model.assets is not None:
        selected: list[AssetSel] = []
        seen: set[tuple[str, str]] = set()
        for i, value in enumerate(model.assets):
            k = assets_at[i] if assets_at is not None else i
            where = doc.where((*loc, "assets", k))
            sel = AssetSel(_asset_kind(doc, (*loc, "assets", k), value), value, where)
            if (sel.kind, sel.value) in seen:
                problems.append(Problem(f"asset {value} is listed twice", where))
                continue
            seen.add((sel.kind, sel.value))
            selected.append(sel)
        assets = tuple(selected)
    rollbacks: list[RollbackDecl] = []
    modes: set[str] = set()
    for i, rollback in enumerate(model.rollback):
        r_loc = (*loc, "rollback", rollback_at[i] if rollback_at is not None else i)
        at = dates_at[i] if dates_at is not None else range(len(rollback.dates))
        if rollback.mode in modes:
            problems.append(
                Problem(
                    f"mode {rollback.mode!r} has two rollback entries for this visualization; "
                    "merge their dates",
                    doc.where((*r_loc, "mode")),
                )
            )
            continue
        modes.add(rollback.mode)
        dated: dict[str, Where] = {}
        for n, date in zip(at, rollback.dates, strict=True):
            where = doc.where((*r_loc, "dates", n))
            if date in dated:
                problems.append(Problem(f"date {date} is listed twice", where))
                continue
            dated[date] = where
        ordered = sorted(dated.items())
        rollbacks.append(
            RollbackDecl(
                mode=rollback.mode,
                dates=tuple(d for d, _ in ordered),
                date_wheres=tuple(w for _, w in ordered),
                revision=rollback.revision,
                where=doc.where(r_loc),
            )
        )
    legends, claimed = _legend_decls(doc, loc, model.legend, legend_at, problems)
    _rolled_back_and_custom(rollbacks, claimed, problems)
    return VisualizationDecl(
        index=model.index,
        index_where=doc.where((*loc, "index")),
        assets=assets,
        resolution=model.resolution,
        rollbacks=tuple(rollbacks),
        where=doc.where(loc),
        asset_policy=policy,
        legends=tuple(legends),
    )


def _legend_decls(
    doc: Document,
    loc: Loc,
    models: Sequence[LegendModel],
    legend_at: Sequence[int] | None,
    problems: list[Problem],
) -> tuple[list[LegendDecl], dict[tuple[str, str], Where]]:
    """The custom legends of one visualization, each checked on its own and against the
    others (a (mode, date) has one legend), and every (mode, date) given one, valid or not,
    at its position."""
    legends: list[LegendDecl] = []
    first: dict[tuple[str, str], Where] = {}
    for i, model in enumerate(models):
        l_loc = (*loc, "legend", legend_at[i] if legend_at is not None else i)
        content = _legend_content(doc, l_loc, model, problems)
        dated: dict[str, Where] = {}
        for n, date in enumerate(model.dates):
            where = doc.where((*l_loc, "dates", n))
            if date in dated:
                problems.append(Problem(f"date {date} is listed twice", where))
                continue
            earlier = first.get((model.mode, date))
            if earlier is not None:
                problems.append(
                    Problem(
                        f"the {model.mode} legend of {date} is also given at {earlier}; a date "
                        "has one legend per mode",
                        where,
                    )
                )
                continue
            first[(model.mode, date)] = where
            dated[date] = where
        if content is None or not dated:
            continue
        ordered = sorted(dated.items())
        legends.append(
            LegendDecl(
                mode=model.mode,
                dates=tuple(d for d, _ in ordered),
                date_wheres=tuple(w for _, w in ordered),
                content=content,
                where=doc.where(l_loc),
            )
        )
    return legends, first


def _legend_content(
    doc: Document, loc: Loc, model: LegendModel, problems: list[Problem]
) -> LegendContent | None:
    """What one legend entry sets, or None after saying (at its positions) why it cannot be.

    The mode decides what is needed: a theoretical legend is its ranges, every bound given; a
    dynamic one a number of bins, and optionally one item per bin (bounds left out stay
    auto-computed). Ranges ascend and do not overlap.
    """
    before = len(problems)
    items = model.items or []
    if model.mode == "theoretical":
        if model.bins is not None:
            problems.append(
                Problem(
                    "'bins' is for dynamic legends; a theoretical legend lists its ranges in "
                    "'items'",
                    doc.key_where((*loc, "bins")),
                )
            )
        if model.items is None:
            problems.append(
                Problem(
                    "a theoretical legend needs 'items': its ranges, each with min, max and color",
                    doc.where(loc),
                )
            )
        for n, item in enumerate(items):
            for bound in ("min", "max"):
                if getattr(item, bound) is None:
                    problems.append(
                        Problem(
                            f"missing required key '{bound}': every range of a theoretical "
                            "legend has both bounds",
                            doc.where((*loc, "items", n)),
                        )
                    )
    else:
        if model.bins is None:
            problems.append(
                Problem(
                    "missing required key 'bins': how many equal-interval bins (1 to 15) the "
                    "dynamic legend has",
                    doc.where(loc),
                )
            )
        elif model.items is not None and len(items) != model.bins:
            problems.append(
                Problem(
                    f"{plural(len(items), 'item')} for {plural(model.bins, 'bin')}: give one "
                    "item per bin, or "
                    "none to keep the API's colours",
                    doc.where((*loc, "items")),
                )
            )
    last: tuple[int, str, float] | None = None  # the last bound given: item, which, value
    for n, item in enumerate(items):
        i_loc = (*loc, "items", n)
        if item.min is not None and item.max is not None and item.min >= item.max:
            problems.append(
                Problem(
                    f"the range {item.min:g} … {item.max:g} is empty: 'max' must be above 'min'",
                    doc.where((*i_loc, "max")),
                )
            )
        for bound in ("min", "max"):
            value = getattr(item, bound)
            if value is None:
                continue
            if last is not None and last[0] != n and value < last[2]:
                problems.append(
                    Problem(
                        f"{bound} {value:g} is below {last[2]:g}, the {last[1]} of item "
                        f"{last[0] + 1}: ranges must ascend without overlapping",
                        doc.where((*i_loc, bound)),
                    )
                )
            last = (n, bound, value)
    if len(problems) > before:
        return None
    return LegendContent(
        items=tuple(LegendItemDecl(item.min, item.max, item.color, item.label) for item in items),
        bins=model.bins,
    )


def _rolled_back_and_custom(
    rollbacks: Sequence[RollbackDecl],
    custom: Mapping[tuple[str, str], Where],
    problems: list[Problem],
) -> None:
    """A (mode, date) both rolled back and given a custom legend: an error at both places."""
    for rollback in rollbacks:
        for date, other in zip(rollback.dates, rollback.date_wheres, strict=True):
            where = custom.get((rollback.mode, date))
            if where is None:
                continue
            problems.append(
                Problem(
                    f"the {rollback.mode} legend of {date} is rolled back here and given a "
                    f"custom legend at {where}: it is one or the other",
                    other,
                )
            )
            problems.append(
                Problem(
                    f"the {rollback.mode} legend of {date} is given a custom legend here and "
                    f"rolled back at {other}: it is one or the other",
                    where,
                )
            )


def _selector_decls(
    doc: Document, problems: list[Problem], unchecked: list[Problem]
) -> list[SelectorDecl]:
    """The file's selectors whose match is valid (the whole-file validation reported the
    rest), with what their visualizations declare (see ``_visualizations``)."""
    entries = doc.data.get("selectors") if isinstance(doc.data, dict) else None
    found: list[SelectorDecl] = []
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        loc: Loc = ("selectors", i)
        if not isinstance(entry, dict):
            continue
        try:
            match = SelectorMatchModel.model_validate(entry.get("match"))
        except ValidationError:
            if entry.get("visualizations"):
                unchecked.append(
                    Problem(
                        NOT_CHECKED + "the visualizations of this selector, since its "
                        "'match' is not valid",
                        doc.where(loc),
                    )
                )
            continue
        visualizations = _visualizations(doc, loc, entry.get("visualizations"), problems)
        m_loc = (*loc, "match")
        names = tuple(match.names or ())
        ids = tuple(match.ids or ())
        found.append(
            SelectorDecl(
                names=names,
                name_wheres=tuple(doc.where((*m_loc, "names", k)) for k in range(len(names))),
                ids=ids,
                id_wheres=tuple(doc.where((*m_loc, "ids", k)) for k in range(len(ids))),
                projects=tuple(match.projects or ()),
                where=doc.where(m_loc),
                visualizations=tuple(visualizations),
            )
        )
    return found


def _index_decls(doc: Document, unchecked: list[Problem]) -> list[IndexDecl]:
    """The file's valid custom index declarations (the whole-file validation reported the
    rest, and online validation leaves those out: ``unchecked`` says so)."""
    raw = doc.data.get("indices") if isinstance(doc.data, dict) else None
    found: list[IndexDecl] = []
    for k, item in enumerate(raw if isinstance(raw, list) else []):
        try:
            model = IndexModel.model_validate(item)
        except ValidationError:
            unchecked.append(
                Problem(
                    NOT_CHECKED + "this custom index (its name among the API's indices), "
                    "since it has problems of its own",
                    doc.where(("indices", k)),
                )
            )
            continue
        found.append(
            IndexDecl(
                name=model.name,
                description=model.description,
                expression=model.expression,
                expression_type=model.expression_type,
                rescale=(model.rescale[0], model.rescale[1]),
                colormap=model.colormap,
                satellite_id=model.satellite,
                where=doc.where(("indices", k)),
            )
        )
    return found


def _asset_kind(doc: Document, loc: Loc, value: str) -> Literal["id", "name", "date"]:
    raw = _at(doc.data, loc)
    if isinstance(raw, dt.date) or (isinstance(raw, str) and DATE_LIKE.fullmatch(raw)):
        return "date"
    return "id" if looks_like_uuid(value) else "name"


def _at(data: Any, loc: Loc) -> Any:
    for part in loc:
        data = data[part]
    return data


def _ignore_decls(doc: Document, loc: Loc, holder: Any) -> list[IgnoreDecl]:
    """The valid ignore rules under ``holder['ignore']`` (invalid ones are reported elsewhere)."""
    raw = holder.get("ignore") if isinstance(holder, dict) else None
    rules: list[IgnoreDecl] = []
    for k, item in enumerate(raw if isinstance(raw, list) else []):
        try:
            model = IgnoreRuleModel.model_validate(item)
        except ValidationError:
            continue
        where = doc.where((*loc, "ignore", k))
        rules.append(IgnoreDecl(model.index, model.visualization, model.reason, where))
    return rules
