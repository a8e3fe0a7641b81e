"""Loading specs: every file parsed and checked, then checked across files, into ``Specs``
or every problem at once."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import (
    TypeAdapter,
    ValidationError,
)

from reconciler.errors import Problem, SpecError, Where
from reconciler.spec.agreement import cross_checks
from reconciler.spec.decls import (
    AoiDecl,
    AssetSel,
    IgnoreDecl,
    RollbackDecl,
    SelectorDecl,
    Specs,
    ValidationReport,
    VisualizationDecl,
)
from reconciler.spec.fields import DATE_LIKE, EXTENSION_PREFIX, AssetPolicy, looks_like_uuid
from reconciler.spec.files import find_spec_files
from reconciler.spec.messages import problem_from_error
from reconciler.spec.models import (
    AoiByRef,
    AoiRef,
    IgnoreRuleModel,
    SelectorMatchModel,
    SpecFile,
    VisualizationModel,
)
from reconciler.spec.yamlsource import (
    Document,
    Loc,
    read_yaml_file,
)

log = logging.getLogger(__name__)


def validate_specs(paths: Sequence[str | os.PathLike[str]]) -> ValidationReport:
    """Run every offline check on the spec files under ``paths`` and report the problems.

    Problems inside spec files are returned, not raised. Raises ``SpecError`` only when there is
    nothing to check: a path that does not exist, or a directory without spec files.
    """
    files = find_spec_files(paths)
    problems: list[Problem] = []
    digest = hashlib.sha256()
    aois: list[AoiDecl] = []
    ignores: list[IgnoreDecl] = []
    selectors: list[SelectorDecl] = []
    for display, path in files:
        try:
            raw, doc = read_yaml_file(path, display)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        # Length-prefixed so (a, bc) and (ab, c) never hash alike.
        name = display.encode("utf-8", errors="surrogateescape")
        digest.update(b"%d:%s%d:" % (len(name), name, len(raw)))
        digest.update(raw)
        file_aois, file_problems = _check_document(doc)
        log.debug(
            "read %s: %d AOI entries, %d problems", display, len(file_aois), len(file_problems)
        )
        aois.extend(file_aois)
        problems.extend(file_problems)
        ignores.extend(_ignore_decls(doc, (), doc.data))
        selectors.extend(_selector_decls(doc, problems))
    cross_problems, notes = cross_checks(aois)
    problems.extend(cross_problems)
    problems.extend(_duplicate_ignores(aois, ignores))
    shown = tuple(display for display, _ in files)
    ordered = tuple(SpecError(problems).problems)  # SpecError knows the display order
    if ordered:
        return ValidationReport(shown, ordered, tuple(notes), None)
    specs = Specs(
        shown,
        digest.hexdigest(),
        tuple(aois),
        tuple(notes),
        tuple(selectors),
        ignore=tuple(ignores),
    )
    return ValidationReport(shown, (), tuple(notes), specs)


def load_specs(paths: Sequence[str | os.PathLike[str]]) -> Specs:
    """Load and validate every spec file under ``paths`` (files or directories).

    Returns the declarations, or raises one ``SpecError`` carrying every problem found in every
    file, each at the position of the YAML node it is about.
    """
    report = validate_specs(paths)
    if report.specs is None:
        raise SpecError(report.problems)
    return report.specs


# --- per-file checks -----------------------------------------------------------------------------


def _check_document(doc: Document) -> tuple[list[AoiDecl], list[Problem]]:
    """Validate one parsed file; return the declarations that are whole, and the problems."""
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
    try:
        SpecFile.model_validate(data)
    except ValidationError as exc:
        problems.extend(problem_from_error(error, doc) for error in exc.errors())
    # Rebuild the declarations from the pieces that are valid on their own, so checks that
    # need whole declarations (duplicates) still run next to pydantic's errors.
    aois: list[AoiDecl] = []
    entries = doc.data.get("aois") if isinstance(doc.data, dict) else None
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        decl = _aoi_decl(doc, ("aois", i), entry, problems)
        if decl is not None:
            aois.append(decl)
    return aois, problems


_AOI_ADAPTER: TypeAdapter[Any] = TypeAdapter(AoiRef)


def _aoi_decl(doc: Document, loc: Loc, entry: Any, problems: list[Problem]) -> AoiDecl | None:
    if not isinstance(entry, dict) or "aoi" not in entry:
        return None
    try:
        ref = _AOI_ADAPTER.validate_python(entry["aoi"])
    except ValidationError:
        return None  # already reported by the whole-file validation
    visualizations: list[VisualizationDecl] = []
    raw_list = entry.get("visualizations")
    for j, raw in enumerate(raw_list if isinstance(raw_list, list) else []):
        vis_loc = (*loc, "visualizations", j)
        try:
            model = VisualizationModel.model_validate(raw)
        except ValidationError:
            continue
        visualizations.append(_visualization_decl(doc, vis_loc, model, problems))
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


def _visualization_decl(
    doc: Document, loc: Loc, model: VisualizationModel, problems: list[Problem]
) -> VisualizationDecl:
    assets: tuple[AssetSel, ...] | None = None
    policy: AssetPolicy = "all"
    if isinstance(model.assets, str):
        policy = model.assets
    elif model.assets is not None:
        selected: list[AssetSel] = []
        seen: set[tuple[str, str]] = set()
        for k, value in enumerate(model.assets):
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
    for k, rollback in enumerate(model.rollback):
        r_loc = (*loc, "rollback", k)
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
        for n, date in enumerate(rollback.dates):
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
    return VisualizationDecl(
        index=model.index,
        index_where=doc.where((*loc, "index")),
        assets=assets,
        resolution=model.resolution,
        rollbacks=tuple(rollbacks),
        where=doc.where(loc),
        asset_policy=policy,
    )


def _selector_decls(doc: Document, problems: list[Problem]) -> list[SelectorDecl]:
    """The file's selectors that are whole (the whole-file validation reported the rest)."""
    entries = doc.data.get("selectors") if isinstance(doc.data, dict) else None
    found: list[SelectorDecl] = []
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        loc: Loc = ("selectors", i)
        if not isinstance(entry, dict) or "match" not in entry:
            continue
        try:
            match = SelectorMatchModel.model_validate(entry["match"])
        except ValidationError:
            continue
        visualizations: list[VisualizationDecl] = []
        raw_list = entry.get("visualizations")
        for j, raw in enumerate(raw_list if isinstance(raw_list, list) else []):
            try:
                model = VisualizationModel.model_validate(raw)
            except ValidationError:
                continue
            vis_loc = (*loc, "visualizations", j)
            visualizations.append(_visualization_decl(doc, vis_loc, model, problems))
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


def _duplicate_ignores(aois: Sequence[AoiDecl], everywhere: Sequence[IgnoreDecl]) -> list[Problem]:
    """The same rule twice in one scope (an AOI, or every AOI) is a leftover: say so."""
    problems: list[Problem] = []
    scopes: list[tuple[str, Sequence[IgnoreDecl]]] = [("every AOI", everywhere)]
    scopes += [(aoi.describe(), aoi.ignore) for aoi in aois]
    first: dict[tuple[str, str | None, str | None], IgnoreDecl] = {}
    for scope, rules in scopes:
        for rule in rules:
            key = (scope, rule.index, rule.visualization)
            if key in first:
                problems.append(
                    Problem(
                        f"ignore rule for {rule.describe()} on {scope} is given twice: "
                        f"first at {first[key].where}",
                        rule.where,
                    )
                )
                continue
            first[key] = rule
    return problems
