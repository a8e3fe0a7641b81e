"""The declarations: plain frozen dataclasses, each carrying its spec position, that the
resolver and planner read (``Specs``), and what ``validate`` returns (``ValidationReport``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from reconciler.errors import Problem, SpecError, Where

#: A legend's mode, as the spec and the API name it.
Mode = Literal["dynamic", "theoretical"]
#: Which assets a visualization without ``assets`` means: all of the AOI's, or any existing one.
AssetPolicy = Literal["all", "any"]

#: How a note on what online validation had to leave out begins.
NOT_CHECKED = "not checked against the API: "
UNREAD = "this file could not be read as a spec"

log = logging.getLogger(__name__)


# --- declarations (what the planner reads) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssetSel:
    """One source asset selector; ``value`` is ISO for dates."""

    kind: Literal["id", "name", "date"]
    value: str
    where: Where


@dataclass(frozen=True, slots=True)
class RollbackDecl:
    """Legends of ``dates`` (ISO, sorted) in ``mode`` that must be auto-computed."""

    mode: Mode
    dates: tuple[str, ...]
    date_wheres: tuple[Where, ...]  # same order as dates
    revision: int
    where: Where  # the rollback list item


@dataclass(frozen=True, slots=True)
class LegendItemDecl:
    """One range of a custom legend; ``min``/``max`` None: auto-computed (dynamic only),
    ``label`` None: the API's."""

    min: float | None
    max: float | None
    color: str  # lower case #rrggbb
    label: str | None

    def describe(self) -> str:
        """ "-1 … 0.2 #d7191c 'Bare'", or the colour alone when the API computes both bounds."""
        if self.min is None and self.max is None:
            text = self.color  # a dynamic bin whose bounds the API computes
        else:
            low = "auto" if self.min is None else f"{self.min:g}"
            high = "auto" if self.max is None else f"{self.max:g}"
            text = f"{low} … {high} {self.color}"
        return text if self.label is None else f"{text} {self.label!r}"


@dataclass(frozen=True, slots=True)
class LegendContent:
    """What a custom legend is, whatever the dates: its ranges, and for dynamic the bins."""

    items: tuple[LegendItemDecl, ...]
    bins: int | None = None  # dynamic only

    def as_record(self) -> dict[str, Any]:
        """What it declares as plain data: what the state remembers of a custom legend this
        tool set, and compares with the declaration (``LegendContent.from_record`` reads it)."""
        return {
            "bins": self.bins,
            "items": [
                {"min": i.min, "max": i.max, "color": i.color, "label": i.label} for i in self.items
            ],
        }

    def describe(self) -> str:
        """'2 ranges: -1 … 0.2 #d7191c 'Bare', …' or '5 bins', for messages."""
        if not self.items:
            return f"{self.bins} auto-computed bins"
        ranges = "; ".join(item.describe() for item in self.items)
        if self.bins is not None:
            return f"{self.bins} bins: {ranges}"
        return f"{len(self.items)} range{'s' if len(self.items) != 1 else ''}: {ranges}"


@dataclass(frozen=True, slots=True)
class LegendDecl:
    """A custom legend the API must keep for ``dates`` (ISO, sorted) in ``mode``."""

    mode: Mode
    dates: tuple[str, ...]
    date_wheres: tuple[Where, ...]  # same order as dates
    content: LegendContent
    where: Where  # the legend list item


@dataclass(frozen=True, slots=True)
class VisualizationDecl:
    """One declared visualization.

    ``assets`` is None when the spec gives a policy instead of a list (or omits the key, which
    is ``asset_policy`` "all"): see ``AssetPolicy``.
    """

    index: str
    index_where: Where
    assets: tuple[AssetSel, ...] | None
    resolution: float | None
    rollbacks: tuple[RollbackDecl, ...]
    where: Where  # the visualizations list item
    asset_policy: AssetPolicy = "all"
    legends: tuple[LegendDecl, ...] = ()
    #: The keys ('index', 'assets', 'rollback', a misspelt one, ...) this declaration lacks
    #: or has only in part, because they have problems of their own. Empty for every
    #: declaration of valid specs; otherwise ``validate --online`` checks the rest and claims
    #: nothing of these, and the declaration is never compared with others (what it will be
    #: once fixed is not known).
    incomplete: tuple[str, ...] = ()

    def describe(self) -> str:
        """'NDVI over [Bengaluru-A, 2024-05-06]', 'NDVI over all assets', for messages."""
        if self.assets is None:
            if self.asset_policy == "any":
                return f"{self.index} (any existing one)"
            return f"{self.index} over all assets"
        return f"{self.index} over [{', '.join(a.value for a in self.assets)}]"


@dataclass(frozen=True, slots=True)
class IgnoreDecl:
    """One ignore rule: an index (name or id) or one visualization id; exactly one is set."""

    index: str | None
    visualization: str | None
    reason: str | None
    where: Where  # the rule's list item

    def describe(self) -> str:
        """'index NDVI' or 'visualization f0e1…', for messages."""
        return (
            f"index {self.index}"
            if self.index is not None
            else f"visualization {self.visualization}"
        )


@dataclass(frozen=True, slots=True)
class IndexDecl:
    """A custom index that must exist, as declared (``satellite_id``: the spec's ``satellite``)."""

    name: str
    description: str
    expression: str
    expression_type: str
    rescale: tuple[int, int]
    colormap: str
    satellite_id: str
    where: Where  # the indices list item

    @property
    def legend_modes(self) -> tuple[str, ...]:
        """The legend modes its visualizations will have (the contract's rule for custom)."""
        return ("dynamic",) if self.expression_type == "index" else ()

    def fields(self) -> dict[str, object]:
        """What the API is asked to create, and compared with the index that exists."""
        return {
            "description": self.description,
            "expression": self.expression,
            "expression_type": self.expression_type,
            "rescale": list(self.rescale),
            "colormap": self.colormap,
            "satellite_id": self.satellite_id,
        }


@dataclass(frozen=True, slots=True)
class SelectorDecl:
    """One ``selectors`` entry: which AOIs (every criterion given must hold) and what they need.

    ``names`` are names or glob patterns; ``ids`` AOI ids; ``projects`` project ids. Each
    empty tuple means "not a criterion". ``where`` is the position of the ``match`` value.
    """

    names: tuple[str, ...]
    name_wheres: tuple[Where, ...]
    ids: tuple[str, ...]
    id_wheres: tuple[Where, ...]
    projects: tuple[str, ...]
    where: Where
    visualizations: tuple[VisualizationDecl, ...]

    @property
    def key(self) -> str:
        """The criteria in one canonical line: what the state file remembers matches under."""
        parts = []
        for label, values in (
            ("names", self.names),
            ("ids", self.ids),
            ("projects", self.projects),
        ):
            if values:
                parts.append(f"{label}: {', '.join(sorted(set(values)))}")
        return "; ".join(parts)

    def describe(self) -> str:
        return f"selector ({self.key})"


@dataclass(frozen=True, slots=True)
class AoiDecl:
    """One ``aois`` entry: an AOI by id or by name (exactly one is set) and its visualizations.

    ``selector`` is set on the entries resolution derives from a selector, one per AOI it
    matches (by id); spec files never produce those directly.
    """

    id: str | None
    name: str | None
    where: Where  # the `aoi` value
    visualizations: tuple[VisualizationDecl, ...]
    selector: SelectorDecl | None = None
    ignore: tuple[IgnoreDecl, ...] = ()  # rules for this AOI only

    @property
    def label(self) -> str:
        """The name, or the id when the AOI is given by id."""
        return self.name if self.name is not None else str(self.id)

    def describe(self) -> str:
        return f"AOI {self.name!r}" if self.name is not None else f"AOI {self.id}"


@dataclass(frozen=True, slots=True)
class Specs:
    """Every declaration of every spec file, in load order.

    ``fingerprint`` is a sha256 over every (display path, file bytes): it changes with any byte
    of any spec file (a saved plan does not use it: comments must not stale a plan, see
    ``stale``). ``notes`` are remarks that do not
    make the specs invalid (see the module docstring). ``ignore`` holds the top-level ignore
    rules; each AOI entry carries its own.
    """

    files: tuple[str, ...]
    fingerprint: str
    aois: tuple[AoiDecl, ...]
    notes: tuple[Problem, ...] = ()
    selectors: tuple[SelectorDecl, ...] = ()
    ignore: tuple[IgnoreDecl, ...] = ()  # top-level rules: for every AOI
    indices: tuple[IndexDecl, ...] = ()  # custom indices, one per name

    @property
    def visualization_count(self) -> int:
        """Visualization entries written in the specs (a selector's count once)."""
        return sum(len(a.visualizations) for a in self.aois) + sum(
            len(s.visualizations) for s in self.selectors
        )

    @property
    def is_empty(self) -> bool:
        """Nothing declared: no AOI entries, no selectors and no indices."""
        return not self.aois and not self.selectors and not self.indices


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The outcome of validation: ``specs`` is None when the files themselves have problems.

    ``partial`` then holds what can still be checked against the API: every declaration
    whole enough to resolve (``VisualizationDecl.incomplete`` says what one lacks), so that
    ``validate --online`` reports the offline and the online problems in one round.
    ``unchecked`` says, at its position, what even ``partial`` leaves out (a file that could
    not be read, an entry whose AOI is not valid), for online validation to show as notes.
    """

    files: tuple[str, ...]
    problems: tuple[Problem, ...]
    notes: tuple[Problem, ...]
    specs: Specs | None
    partial: Specs | None = None
    unchecked: tuple[Problem, ...] = ()

    @property
    def checkable(self) -> Specs | None:
        """The declarations online validation resolves: all of them, or what is whole."""
        return self.specs if self.specs is not None else self.partial

    def with_online(self, found: Iterable[Problem]) -> ValidationReport:
        """This report with what online validation ``found``: one round, in display order.

        At a position where offline validation found a problem, an online one is the same
        conflict found again after resolving, and is left out. ``unchecked`` joins the notes:
        online, they say what could not be checked.
        """
        taken = {p.where for p in self.problems if p.where is not None}
        fresh = [p for p in found if p.where is None or p.where not in taken]
        problems = tuple(SpecError([*self.problems, *fresh]).problems)
        specs = self.specs if not problems else None
        partial = self.checkable if problems else None
        return ValidationReport(
            self.files, problems, (*self.notes, *self.unchecked), specs, partial
        )

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class FileResult:
    """What one spec file declares on its own, and its own problems (``load`` gathers them;
    ``cache`` keeps them)."""

    aois: tuple[AoiDecl, ...]
    problems: tuple[Problem, ...]
    unchecked: tuple[Problem, ...]
    ignores: tuple[IgnoreDecl, ...]
    selectors: tuple[SelectorDecl, ...]
    indices: tuple[IndexDecl, ...]
