#!/usr/bin/env python3
"""The GitLab API calls the example pipeline needs, with the standard library only.

    python3 ci/reconciler_gitlab.py comment plan.md        # post or update the MR's plan note
    python3 ci/reconciler_gitlab.py pending-plans reviewed   # reviewed plans not applied yet
    python3 ci/reconciler_gitlab.py label 7 applied          # mark MR !7's plan as handled
    python3 ci/reconciler_gitlab.py note-merged left.md      # a note on the MR this commit merged
    python3 ci/reconciler_gitlab.py fetch-remainder left.json  # this pipeline's apply job's file
    python3 ci/reconciler_gitlab.py merged-plan shard-2/plan.json out.json  # a reviewed shard

``comment`` finds the merge request note that this token's user posted and that ends with the
same hidden marker as the file's last line (``<!-- reconciler-plan -->``, or
``<!-- reconciler-plan:ID -->``) and replaces its text, or adds the note: one comment per merge
request, updated on every push; nobody else's note is ever touched.

``pending-plans DIR`` finds every merge request merged into the default branch in the last 30
days (the plans' retention) that has no ``reconciler-*`` label yet, oldest merge first, and for
each the newest pipeline that ran for its last head and that pipeline's ``plan`` job, by id:
it downloads that job's ``plan.json`` (exactly the plan shown in the merge request when it was
merged) into ``DIR/IID/plan.json``. ``DIR/pending.txt`` lists one ``IID PATH`` line per merge
request, ``IID -`` when it has no reviewed plan (that job failed or never ran, its artifacts
expired): an older push's plan is never taken. ``label IID OUTCOME`` then adds the label
``reconciler-OUTCOME`` (applied, refused, failed, no-plan), so it is not picked up again.

``note-merged FILE`` posts FILE as a note on the merge request this commit merged (its merge or
squash commit, or its head when it was fast-forwarded), if any. ``fetch-remainder OUT``
downloads ``remainder.json`` from the ``apply`` job of this pipeline: the plan of what no
reviewed plan covered, as that job showed it. ``merged-plan ARTIFACT OUT`` downloads ARTIFACT
of the plan job (``RECONCILER_PLAN_JOB``, such as a shard's ``plan: [2]``) of the last pipeline
of the merge request this commit merged into OUT: the sharded pipeline's reviewed plan of one
shard; nothing (exit 0, saying why) when this commit merged none or that job has no plan.

GitLab's predefined variables say where (CI_API_V4_URL, CI_PROJECT_ID, CI_MERGE_REQUEST_IID,
CI_COMMIT_SHA, CI_DEFAULT_BRANCH, CI_PIPELINE_ID); RECONCILER_PLAN_JOB names the plan job if it
is not ``plan``. Authentication:
GITLAB_TOKEN (a project access token with the api scope, as a masked CI/CD variable); without
it ``comment`` and ``note-merged`` skip (exit 0, the plan is still in the job log) and the others
try the job's own CI_JOB_TOKEN. Failures exit 1 with one line saying why; tokens are never printed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

MARKER = re.compile(r"<!-- reconciler-plan(?::[A-Za-z0-9._/-]+)? -->")
TIMEOUT = 30
MAX_PAGES = 50
#: How long plan artifacts are kept (the plan job's expire_in): older merges have none.
RETENTION_DAYS = 30
OUTCOMES = ("applied", "refused", "failed", "no-plan")


class Failure(Exception):
    """Something the pipeline log should show in one line."""


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise Failure(f"{name} is not set (this runs in a GitLab CI job)")
    return value


def _headers() -> dict[str, str]:
    token = os.environ.get("GITLAB_TOKEN")
    if token:
        return {"PRIVATE-TOKEN": token}
    return {"JOB-TOKEN": _env("CI_JOB_TOKEN")}


def _call(method: str, path: str, body: dict[str, Any] | None = None) -> tuple[Any, dict[str, str]]:
    url = _env("CI_API_V4_URL").rstrip("/") + path
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method, headers=_headers())
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            raw = response.read()
            headers = {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        raise Failure(f"{method} {path}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise Failure(f"{method} {path}: {exc}") from None
    if headers.get("content-type", "").startswith("application/json"):
        return json.loads(raw), headers
    return raw, headers


def _pages(path: str, query: str = "") -> list[Any]:
    """Every item of a paginated listing (``path`` without a query, ``query`` its filters)."""
    items: list[Any] = []
    page = "1"
    for _ in range(MAX_PAGES):
        extra = f"&{query}" if query else ""
        listed, headers = _call("GET", f"{path}?per_page=100&page={page}{extra}")
        items.extend(listed)
        page = headers.get("x-next-page", "")
        if not page:
            break
    return items


def _project() -> str:
    return "/projects/" + urllib.parse.quote(_env("CI_PROJECT_ID"), safe="")


def comment(path: str) -> int:
    """Post ``path`` as the merge request's plan note, or update the note posted before."""
    if not os.environ.get("GITLAB_TOKEN"):
        print("GITLAB_TOKEN is not set: not posting the plan on the merge request", flush=True)
        return 0
    with open(path, encoding="utf-8") as handle:
        body = handle.read()
    # The marker is the last line: a note that merely quotes it is not ours.
    marker = body.rstrip().rpartition("\n")[2]
    if not MARKER.fullmatch(marker):
        raise Failure(f"{path} does not end with the reconciler marker line")
    me, _ = _call("GET", "/user")
    notes = f"{_project()}/merge_requests/{int(_env('CI_MERGE_REQUEST_IID'))}/notes"
    for note in _pages(notes):
        ours = (note.get("author") or {}).get("id") == me.get("id") and not note.get("system")
        if ours and note.get("body", "").rstrip().endswith(marker):
            _call("PUT", f"{notes}/{int(note['id'])}", {"body": body})
            print(f"updated the plan note {note['id']} on the merge request", flush=True)
            return 0
    created, _ = _call("POST", notes, {"body": body})
    print(f"posted the plan note {created.get('id')} on the merge request", flush=True)
    return 0


def _merged_by(sha: str) -> dict[str, Any] | None:
    """The merge request this commit merged, if any."""
    mrs, _ = _call("GET", f"{_project()}/repository/commits/{sha}/merge_requests")
    for mr in mrs:
        heads = (mr.get("merge_commit_sha"), mr.get("squash_commit_sha"), mr.get("sha"))
        if mr.get("state") == "merged" and sha in heads:
            return dict(mr)
    return None


def _plan_of(mr: dict[str, Any], out: str, artifact: str = "plan.json") -> None:
    """Download the plan shown in merge request ``mr`` when it was merged into ``out``
    (``artifact``: its path in the plan job's artifacts)."""
    iid, head = int(mr["iid"]), str(mr["sha"])
    # Newest first: the pipeline of the merge request's last push, as reviewers saw it.
    pipelines = [
        p for p in _pages(f"{_project()}/merge_requests/{iid}/pipelines") if p["sha"] == head
    ]
    if not pipelines:
        raise Failure(f"no pipeline ran for the last push ({head[:12]}) of merge request !{iid}")
    pipeline = max(pipelines, key=lambda p: int(p["id"]))
    name = os.environ.get("RECONCILER_PLAN_JOB") or "plan"
    jobs = [
        j for j in _pages(f"{_project()}/pipelines/{int(pipeline['id'])}/jobs") if j["name"] == name
    ]
    if not jobs or jobs[0].get("status") != "success":
        status = jobs[0].get("status") if jobs else "missing"
        raise Failure(
            f"the {name} job of merge request !{iid}'s last pipeline ({pipeline['id']}) is "
            f"{status}: no plan was reviewed for its last push"
        )
    _download(int(jobs[0]["id"]), artifact, out, f"merge request !{iid}")


def _download(job_id: int, name: str, out: str, what: str) -> None:
    try:
        raw, _ = _call("GET", f"{_project()}/jobs/{job_id}/artifacts/{name}")
    except Failure as exc:
        raise Failure(f"no {name} in job {job_id} of {what} ({exc})") from None
    if isinstance(raw, dict | list):
        raw = json.dumps(raw).encode("utf-8")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "wb") as handle:
        handle.write(raw)
    print(f"fetched {name} of {what} (job {job_id}) into {out}", flush=True)


def pending_plans(directory: str) -> int:
    """The reviewed plans of merged merge requests not handled yet, oldest merge first."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=RETENTION_DAYS)
    query = urllib.parse.urlencode(
        {
            "state": "merged",
            "target_branch": _env("CI_DEFAULT_BRANCH"),
            "updated_after": since.isoformat(),
        }
    )
    merged = [
        mr
        for mr in _pages(f"{_project()}/merge_requests", query)
        if not any(str(label).startswith("reconciler-") for label in mr.get("labels") or ())
        and mr.get("merged_at")
        and dt.datetime.fromisoformat(str(mr["merged_at"]).replace("Z", "+00:00")) >= since
    ]
    merged.sort(key=lambda mr: (str(mr["merged_at"]), int(mr["iid"])))
    lines = []
    for mr in merged:
        iid = int(mr["iid"])
        out = os.path.join(directory, str(iid), "plan.json")
        try:
            _plan_of(mr, out)
        except Failure as exc:
            print(f"merge request !{iid}: {exc}", flush=True)
            out = "-"
        lines.append(f"{iid} {out}\n")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "pending.txt"), "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    print(f"{len(lines)} merged merge request(s) not handled yet", flush=True)
    return 0


def merged_plan(artifact: str, out: str) -> int:
    """The reviewed plan (``artifact`` of job ``RECONCILER_PLAN_JOB``) of the merge request
    this commit merged, into ``out``; nothing when there is none, which the job then says."""
    mr = _merged_by(_env("CI_COMMIT_SHA"))
    if mr is None:
        print("this commit merged no merge request: no reviewed plan", flush=True)
        return 0
    try:
        _plan_of(mr, out, artifact)
    except Failure as exc:
        print(f"merge request !{mr['iid']}: {exc}", flush=True)
    return 0


def label(iid: str, outcome: str) -> int:
    """Mark merge request ``iid``'s reviewed plan as handled: ``reconciler-OUTCOME``."""
    if outcome not in OUTCOMES:
        raise Failure(f"outcome {outcome!r}: one of {', '.join(OUTCOMES)}")
    path = f"{_project()}/merge_requests/{int(iid)}"
    _call("PUT", path, {"add_labels": f"reconciler-{outcome}"})
    print(f"labelled merge request !{int(iid)} reconciler-{outcome}", flush=True)
    return 0


def note_merged(path: str) -> int:
    """Post ``path`` as a note on the merge request this commit merged."""
    if not os.environ.get("GITLAB_TOKEN"):
        print("GITLAB_TOKEN is not set: not posting on the merge request", flush=True)
        return 0
    mr = _merged_by(_env("CI_COMMIT_SHA"))
    if mr is None:
        print("this commit merged no merge request: nothing to post on", flush=True)
        return 0
    with open(path, encoding="utf-8") as handle:
        body = handle.read()
    notes = f"{_project()}/merge_requests/{int(mr['iid'])}/notes"
    created, _ = _call("POST", notes, {"body": body})
    print(f"posted note {created.get('id')} on merge request !{mr['iid']}", flush=True)
    return 0


def fetch_remainder(out: str) -> int:
    """``remainder.json`` of this pipeline's ``apply`` job: the plan it showed, unreviewed."""
    pipeline = int(_env("CI_PIPELINE_ID"))
    jobs = [j for j in _pages(f"{_project()}/pipelines/{pipeline}/jobs") if j["name"] == "apply"]
    if not jobs:
        raise Failure(f"pipeline {pipeline} has no apply job: nothing was left to review")
    _download(int(jobs[0]["id"]), "remainder.json", out, f"pipeline {pipeline}")
    return 0


def main(argv: list[str]) -> int:
    commands: dict[str, Callable[..., int]] = {
        "comment": comment,
        "pending-plans": pending_plans,
        "label": label,
        "note-merged": note_merged,
        "fetch-remainder": fetch_remainder,
        "merged-plan": merged_plan,
    }
    arity = {"label": 2, "merged-plan": 2}
    if not argv or argv[0] not in commands or len(argv) != 1 + arity.get(argv[0], 1):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        return commands[argv[0]](*argv[1:])
    except (Failure, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
