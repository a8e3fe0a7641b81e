"""The specs as they were at a git revision: what ``plan --changed-since REF`` compares with.

The spec files under the given paths are read from git's object store at REF (never checked
out: the work tree is not touched) into a temporary directory, and loaded there with the same
rules as the specs of the work tree. Every git call is bounded in time; every way it can fail
(no git, not a checkout, an unknown or shallow-cloned revision) is a ``ConfigError`` that says
what to do.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import ConfigError, SpecError
from reconciler.spec.decls import Specs
from reconciler.spec.fields import SPEC_SUFFIXES
from reconciler.spec.load import validate_specs
from reconciler.spec.yamlsource import MAX_BYTES

log = logging.getLogger(__name__)

#: Seconds any one git command may take (a repository of specs answers in milliseconds).
GIT_TIMEOUT = 60.0

#: What a shallow clone needs, said wherever a revision is missing.
_FETCH_ADVICE = (
    "A shallow clone lacks older commits: fetch the base first (GitHub Actions: "
    "actions/checkout with fetch-depth: 0; GitLab CI: GIT_DEPTH: 0; or git fetch origin "
    "BRANCH)."
)


@dataclass(frozen=True, slots=True)
class BaseSpecs:
    """The specs at ``ref`` (``commit``): ``specs`` when they load, else ``reason`` says why
    not (they cannot then be compared, and the whole estate is planned)."""

    ref: str
    commit: str
    specs: Specs | None
    reason: str = ""


def specs_at(ref: str, paths: Sequence[str], *, cwd: Path | None = None) -> BaseSpecs:
    """The specs under ``paths`` (as given to plan, relative to ``cwd``) at git revision
    ``ref``. ``ConfigError`` when git cannot answer."""
    here = Path(cwd or Path.cwd()).resolve()
    top = Path(_git(["rev-parse", "--show-toplevel"], here, "find the repository").strip())
    commit = _commit(ref, here)
    relative: list[str] = []
    for given in paths:
        resolved = (here / given).resolve()
        try:
            relative.append(resolved.relative_to(top.resolve()).as_posix() or ".")
        except ValueError:
            raise ConfigError(
                f"--changed-since: the spec path {given} is outside the git repository at "
                f"{top}, so git cannot say how it changed"
            ) from None
    blobs = _spec_blobs(commit, relative, top)
    if not blobs:
        # The spec paths are new since then: every declaration is a change.
        return BaseSpecs(ref, commit, Specs((), "", ()))
    with tempfile.TemporaryDirectory(prefix="reconciler-base-") as tmp:
        root = Path(tmp)
        for path, content in _read_blobs(blobs, top):
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        wanted = [str(root / rel) for rel in relative if (root / rel).exists()]
        try:
            report = validate_specs(wanted)
        except SpecError as exc:
            return BaseSpecs(ref, commit, None, f"the specs at {ref} could not be read ({exc})")
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


def _commit(ref: str, cwd: Path) -> str:
    if ref.startswith("-"):
        raise ConfigError(f"--changed-since {ref!r}: a revision does not start with '-'")
    done = _run(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], cwd)
    if done.returncode != 0:
        raise ConfigError(
            f"--changed-since {ref}: no such commit in this checkout. {_FETCH_ADVICE}"
        )
    return done.stdout.decode("ascii", "replace").strip()


def _spec_blobs(commit: str, relative: Sequence[str], top: Path) -> list[tuple[str, str]]:
    """(path, object id) of every spec file under ``relative`` at ``commit``."""
    out = _git(
        ["ls-tree", "-r", "-z", "--full-tree", commit, "--", *relative],
        top,
        f"list the files of {commit[:12]}",
    )
    found: list[tuple[str, str]] = []
    for entry in out.split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        mode, kind, oid = meta.split()
        # Regular files only: a link's target is not in the tree at a revision, and a spec
        # link that the work tree follows is then planned as a change, never missed.
        if kind != "blob" or mode not in ("100644", "100755"):
            continue
        name = path.rsplit("/", 1)[-1]
        if name.endswith(SPEC_SUFFIXES) and not any(p.startswith(".") for p in path.split("/")):
            found.append((path, oid))
    return found


def _read_blobs(blobs: Sequence[tuple[str, str]], top: Path) -> list[tuple[str, bytes]]:
    """The content of each blob, read in one ``git cat-file --batch``; an oversized one is
    cut to what the spec loader refuses anyway (it then reports the file too large)."""
    request = "".join(f"{oid}\n" for _, oid in blobs).encode("ascii")
    done = _run(["cat-file", "--batch"], top, stdin=request)
    if done.returncode != 0:
        raise ConfigError(f"--changed-since: git cat-file failed: {_said(done.stderr)}")
    data: bytes = done.stdout
    found: list[tuple[str, bytes]] = []
    at = 0
    for path, _ in blobs:
        end = data.index(b"\n", at)
        header = data[at:end].split()
        if len(header) != 3 or header[1] != b"blob":
            raise ConfigError(f"--changed-since: git could not read {path} at that revision")
        size = int(header[2])
        content = data[end + 1 : end + 1 + size]
        found.append((path, content[: MAX_BYTES + 1]))
        at = end + 1 + size + 1
    return found


def _git(args: list[str], cwd: Path, doing: str) -> str:
    done = _run(args, cwd)
    if done.returncode != 0:
        raise ConfigError(f"--changed-since: git could not {doing}: {_said(done.stderr)}")
    return done.stdout.decode("utf-8", "surrogateescape")


def _run(
    args: list[str], cwd: Path, *, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    # No pager, no prompts, no translated messages; the repository's own config stands.
    env = {**os.environ, "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
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
