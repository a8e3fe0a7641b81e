"""The specs as they were at a git revision: what ``plan --changed-since REF`` compares with.

The spec files under the given paths are read from git's object store at REF (never checked
out: the work tree is not touched) and loaded with the same rules as the specs of the work
tree, each shown under the path its work-tree copy has. Every git call is bounded in time;
every way it can fail (no git, not a checkout, an unknown or shallow-cloned revision) is a
``ConfigError`` that says what to do.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import ConfigError, Problem, SpecError, Where
from reconciler.spec.decls import Specs
from reconciler.spec.files import SPEC_SUFFIXES
from reconciler.spec.load import CheckedFiles, validate_sources
from reconciler.spec.yamlsource import MAX_BYTES, screened_spec_bytes

log = logging.getLogger(__name__)

#: Seconds any one git command may take (a repository of specs answers in milliseconds).
GIT_TIMEOUT = 60.0

#: What a shallow clone needs, said wherever a revision is missing.
_FETCH_ADVICE = (
    "Check its spelling; if it is right, this checkout lacks it (a shallow clone): fetch it "
    "first (GitHub Actions: actions/checkout with fetch-depth: 2 for a pull request's merge "
    "commit, or 0; GitLab CI: GIT_DEPTH: 0; or git fetch origin BRANCH)."
)


@dataclass(frozen=True, slots=True)
class BaseSpecs:
    """The specs at ``ref`` (``commit``): ``specs`` when they load, else ``reason`` says why
    not (they cannot then be compared, and the whole estate is planned)."""

    ref: str
    commit: str
    specs: Specs | None
    reason: str = ""


def specs_at(
    ref: str,
    paths: Sequence[str],
    *,
    cwd: Path | None = None,
    checked: CheckedFiles | None = None,
) -> BaseSpecs:
    """The specs under ``paths`` (as given to plan, relative to ``cwd``) at git revision
    ``ref``, each file shown as its work-tree copy is (so an unchanged file is checked once).
    ``ConfigError`` when git cannot answer."""
    here = Path(cwd or Path.cwd()).resolve()
    top = Path(_git(["rev-parse", "--show-toplevel"], here, "find the repository").rstrip("\n"))
    commit = _commit(ref, here)
    files: dict[str, tuple[str, str, int]] = {}  # display -> (path in the tree, object, size)
    seen: set[str] = set()  # as the work tree reads a file named twice once
    for given in paths:
        resolved = (here / given).resolve()
        try:
            relative = resolved.relative_to(top.resolve()).as_posix()
        except ValueError:
            raise ConfigError(
                f"--changed-since: the spec path {given} is outside the git repository at "
                f"{top}, so git cannot say how it changed"
            ) from None
        for path, oid, size in _blobs(commit, relative or ".", top):
            display = _shown(given, relative, path)
            if display is not None and path not in seen:
                seen.add(path)
                files[display] = (path, oid, size)
    # The order the work tree's files are read in (``spec.files``): by path parts.
    ordered = sorted(files.items(), key=lambda item: Path(item[0]).parts)
    contents = _read_blobs([(path, oid, size) for _, (path, oid, size) in ordered], top)
    sources: list[tuple[str, bytes | SpecError]] = []
    for (display, (_, _, size)), content in zip(ordered, contents, strict=True):
        if size > MAX_BYTES:
            too_big = f"larger than the {MAX_BYTES // 2**20} MiB limit for one spec file at {ref}"
            sources.append((display, SpecError([Problem(too_big, Where(display, 1, 1))])))
            continue
        try:
            # As a file of the work tree is: a secret in it is refused, never parsed.
            sources.append((display, screened_spec_bytes(content, display)))
        except SpecError as exc:
            sources.append((display, exc))
    report = validate_sources(sources, checked=checked)
    if report.specs is None:
        count = len(report.problems)
        return BaseSpecs(
            ref,
            commit,
            None,
            f"the specs at {ref} do not validate ({count} problem{'s' if count != 1 else ''}), "
            "so they cannot be compared",
        )
    return BaseSpecs(ref, commit, report.specs)


def _shown(given: str, relative: str, path: str) -> str | None:
    """How the work tree shows the file at ``path`` (in the repository) found under the spec
    path ``given`` (``relative`` in the repository), or None when it would not read it."""
    if path == relative:
        return given  # named on its own: read whatever its name
    below = path[len(relative) + 1 :] if relative not in ("", ".") else path
    parts = below.split("/")
    if any(p.startswith(".") for p in parts) or not parts[-1].endswith(SPEC_SUFFIXES):
        return None
    return os.path.join(given, *parts)


def _commit(ref: str, cwd: Path) -> str:
    if not ref.strip():
        raise ConfigError("--changed-since needs a git revision, such as origin/main; got ''")
    if ref.startswith("-"):
        raise ConfigError(
            f"--changed-since {ref!r}: a revision does not start with '-' (give a branch, tag "
            "or commit, such as origin/main)"
        )
    done = _run(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], cwd)
    if done.returncode != 0:
        raise ConfigError(
            f"--changed-since {ref}: no such commit in this checkout. {_FETCH_ADVICE}"
        )
    return done.stdout.decode("ascii", "replace").strip()


def _blobs(commit: str, relative: str, top: Path) -> list[tuple[str, str, int]]:
    """(path, object id, size) of every regular file under ``relative`` at ``commit``."""
    out = _git(
        ["ls-tree", "-r", "-z", "-l", "--full-tree", commit, "--", relative],
        top,
        f"list the files of {commit[:12]}",
    )
    found: list[tuple[str, str, int]] = []
    for entry in out.split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        mode, kind, oid, size = meta.split()
        # Regular files only: a link's target is not in the tree at a revision, and a spec
        # link that the work tree follows is then planned as a change, never missed.
        if kind == "blob" and mode in ("100644", "100755"):
            found.append((path, oid, int(size)))
    return found


def _read_blobs(blobs: Sequence[tuple[str, str, int]], top: Path) -> list[bytes]:
    """The content of each blob small enough to be a spec, read in one ``git cat-file
    --batch`` (a larger one is not read at all: b'')."""
    wanted = [(path, oid) for path, oid, size in blobs if size <= MAX_BYTES]
    request = "".join(f"{oid}\n" for _, oid in wanted).encode("ascii")
    done = _run(["cat-file", "--batch"], top, stdin=request) if wanted else None
    if done is not None and done.returncode != 0:
        raise ConfigError(f"--changed-since: git cat-file failed: {_said(done.stderr)}")
    data: bytes = done.stdout if done is not None else b""
    read: dict[str, bytes] = {}
    at = 0
    for path, _ in wanted:
        end = data.index(b"\n", at)
        header = data[at:end].split()
        if len(header) != 3 or header[1] != b"blob":
            raise ConfigError(f"--changed-since: git could not read {path} at that revision")
        size = int(header[2])
        read[path] = data[end + 1 : end + 1 + size]
        at = end + 1 + size + 1
    return [read.get(path, b"") for path, _, _ in blobs]


def _git(args: list[str], cwd: Path, doing: str) -> str:
    done = _run(args, cwd)
    if done.returncode != 0:
        raise ConfigError(f"--changed-since: git could not {doing}: {_said(done.stderr)}")
    return done.stdout.decode("utf-8", "surrogateescape")


def _run(
    args: list[str], cwd: Path, *, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    # No pager, no prompts, no translated messages; the repository's own config stands.
    env = {
        **os.environ,
        "GIT_PAGER": "cat",
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
        "GIT_LITERAL_PATHSPECS": "1",  # a spec path is a path, never ':(glob)...' magic
    }
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            env=env,
            check=False,
        )
    except FileNotFoundError:
        raise ConfigError("--changed-since needs git, and no git command was found") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"--changed-since: git {args[0]} took more than {GIT_TIMEOUT:g} s; stopped"
        ) from None


def _said(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace")
    return " ".join(text.split())[:300] or "no reason given"
