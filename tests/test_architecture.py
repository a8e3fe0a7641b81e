"""The floor plan stays true: docs/architecture.md names every module, every layer says what it
may import, modules stay small, and every error's kind is one the documents list.

The import rules themselves are checked by ``lint-imports`` (pyproject.toml).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from reconciler import errors
from reconciler.state import holder

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "reconciler"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
LAYERS = ("spec", "api", "core", "render", "state", "run", "cli")


def tree_in_docs() -> set[str]:
    """The paths the tree in docs/architecture.md draws, relative to reconciler/."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = text.split("## The tree", 1)[1].split("```", 2)[1]
    paths: set[str] = set()
    folder = ""
    for line in block.splitlines():
        match = re.match(r"^([│ ]*)[├└]── (\S+)", line)
        if match is None:
            continue
        depth = len(match.group(1)) // 4
        name = match.group(2)
        if name.endswith("/"):
            folder = name if depth == 0 else folder
        elif depth == 0:
            paths.add(name)
        else:
            paths.add(folder + name)
    return paths


def modules_on_disk() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if path.name == "__init__.py" or relative.startswith("emulator/"):
            continue  # a package's own docstring says what it holds; the emulator is one line
        found.add(relative)
    return found


def test_the_architecture_page_draws_every_module_and_no_other() -> None:
    drawn, present = tree_in_docs(), modules_on_disk()
    assert drawn - present == set(), "docs/architecture.md draws modules that do not exist"
    assert present - drawn == set(), "modules missing from docs/architecture.md's tree"


@pytest.mark.parametrize("layer", LAYERS)
def test_every_layer_says_what_it_owns_and_may_import(layer: str) -> None:
    init = PACKAGE / layer / "__init__.py"
    docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    assert "May import" in docstring, f"reconciler/{layer}/__init__.py"
    for module in (PACKAGE / layer).glob("*.py"):
        if module.name != "__init__.py":
            assert module.stem in docstring, f"{layer}'s docstring does not name {module.name}"


def test_few_files_at_the_top_and_no_module_over_800_lines() -> None:
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= 10, sorted(top)
    long = {
        p.relative_to(PACKAGE).as_posix(): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 800
    }
    assert long == {}


def error_classes() -> list[type[errors.ReconcilerError]]:
    found: list[type[errors.ReconcilerError]] = []
    todo: list[type[errors.ReconcilerError]] = [errors.ReconcilerError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def documented_kinds(doc: str, heading: str) -> set[str]:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    return set(re.findall(r'`"?([a-z][a-z-]*)"?`', section.split("\n## ", 1)[0]))


def test_every_error_kind_is_documented_where_pipelines_read_it() -> None:
    assert holder.StateLockedError in error_classes()  # defined beside the lock, still a root's
    report_kinds = documented_kinds("report-json.md", "## `error`")
    failure_kinds = documented_kinds("plan-json.md", "## When the command fails")
    for cls in error_classes():
        assert cls.kind in failure_kinds, cls
        assert (cls.refusal or cls.kind) in report_kinds, cls


def test_an_error_knows_its_kind_and_refusal() -> None:
    assert errors.RunDeadlineError("late").report_kind == "timeout"
    assert errors.RunDeadlineError("late").kind == "api"
    assert errors.StalePlanError("moved").report_kind == "stale-plan"
    assert holder.LockWaitTimeoutError("waited").report_kind == "timeout"
    assert holder.StaleLockError("dead").report_kind == "locked"
    assert errors.UnknownTargetError("x", targets=["A"]).targets == ("A",)
