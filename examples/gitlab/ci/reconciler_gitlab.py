#!/usr/bin/env python3
"""The GitLab API calls the example pipeline needs, with the standard library only.

    python3 ci/reconciler_gitlab.py comment plan.md    # post or update the MR's plan note
    python3 ci/reconciler_gitlab.py fetch-plan plan.json  # the plan reviewed in the merged MR

``comment`` finds the merge request note that this token's user posted and that ends with the
same hidden marker as the file's last line (``<!-- reconciler-plan -->``, or
``<!-- reconciler-plan:ID -->``) and replaces its text, or adds the note: one comment per merge
request, updated on every push; nobody else's note is ever touched.

``fetch-plan`` finds the merge request this commit merged (its merge or squash commit, or its
head when it was fast-forwarded), the newest pipeline that ran for that merge request's last
head, and downloads ``plan.json`` from that pipeline's ``plan`` job, by job id: exactly the
plan shown in the merge request when it was merged. When there is none (the commit merged no
merge request, that plan job failed or never ran, its artifacts expired) it says so and exits 1;
it never falls back to an older plan.

GitLab's predefined variables say where (CI_API_V4_URL, CI_PROJECT_ID, CI_MERGE_REQUEST_IID,
CI_COMMIT_SHA); RECONCILER_PLAN_JOB names the plan job if it is not ``plan``. Authentication:
GITLAB_TOKEN (a project access token with the api scope, as a masked CI/CD variable); without
it ``comment`` skips (exit 0, the plan is still in the job log) and ``fetch-plan`` tries the
job's own CI_JOB_TOKEN. Failures exit 1 with one line saying why; tokens are never printed.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

MARKER = re.compile(r"<!-- reconciler-plan(?::[A-Za-z0-9._/-]+)? -->")
TIMEOUT = 30
MAX_PAGES = 50


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


def _pages(path: str) -> list[Any]:
    """Every item of a paginated listing (``path`` without a query)."""
    items: list[Any] = []
    page = "1"
    for _ in range(MAX_PAGES):
        listed, headers = _call("GET", f"{path}?per_page=100&page={page}")
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


def fetch_plan(out: str) -> int:
    """Download the plan reviewed in the merge request that this commit merged."""
    sha = _env("CI_COMMIT_SHA")
    mrs, _ = _call("GET", f"{_project()}/repository/commits/{sha}/merge_requests")
    merged = [
        mr
        for mr in mrs
        if mr.get("state") == "merged"
        and sha in (mr.get("merge_commit_sha"), mr.get("squash_commit_sha"), mr.get("sha"))
    ]
    if not merged:
        raise Failure(f"commit {sha[:12]} merged no merge request, so no plan was reviewed")
    mr = merged[0]
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
    job_id = int(jobs[0]["id"])
    try:
        raw, _ = _call("GET", f"{_project()}/jobs/{job_id}/artifacts/plan.json")
    except Failure as exc:
        raise Failure(f"no plan.json in job {job_id} of merge request !{iid} ({exc})") from None
    if isinstance(raw, dict | list):
        raw = json.dumps(raw).encode("utf-8")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "wb") as handle:
        handle.write(raw)
    print(
        f"fetched the plan reviewed in merge request !{iid} (job {job_id}) into {out}", flush=True
    )
    return 0


def main(argv: list[str]) -> int:
    commands = {"comment": comment, "fetch-plan": fetch_plan}
    if len(argv) != 2 or argv[0] not in commands:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        return commands[argv[0]](argv[1])
    except (Failure, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
