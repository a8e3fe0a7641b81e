#!/usr/bin/env python3
"""The two GitLab API calls the example pipeline needs, with the standard library only.

    python3 ci/reconciler_gitlab.py comment plan.md    # post or update the MR's plan note
    python3 ci/reconciler_gitlab.py fetch-plan plan.json  # the plan reviewed in the merged MR

``comment`` finds the merge request note that carries the same hidden marker as the file
(``<!-- reconciler-plan -->``, or ``<!-- reconciler-plan:ID -->``) and replaces its text, or adds
the note: one comment per merge request, updated on every push. ``fetch-plan`` finds the merge
request this commit came from and downloads ``plan.json`` from that merge request's latest
``plan`` job: the plan that was reviewed.

GitLab's predefined variables say where (CI_API_V4_URL, CI_PROJECT_ID, CI_MERGE_REQUEST_IID,
CI_COMMIT_SHA). Authentication: GITLAB_TOKEN (a project access token with the api scope, as a
masked CI/CD variable); without it ``comment`` skips (exit 0, the plan is still in the job log)
and ``fetch-plan`` tries the job's own CI_JOB_TOKEN. Failures exit 1 with one line saying why;
the tokens are never printed.
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


def _project() -> str:
    return "/projects/" + urllib.parse.quote(_env("CI_PROJECT_ID"), safe="")


def comment(path: str) -> int:
    """Post ``path`` as the merge request's plan note, or update the note posted before."""
    if not os.environ.get("GITLAB_TOKEN"):
        print("GITLAB_TOKEN is not set: not posting the plan on the merge request", flush=True)
        return 0
    with open(path, encoding="utf-8") as handle:
        body = handle.read()
    found = MARKER.search(body)
    marker = found.group(0) if found else "<!-- reconciler-plan -->"
    notes = f"{_project()}/merge_requests/{int(_env('CI_MERGE_REQUEST_IID'))}/notes"
    page = "1"
    for _ in range(MAX_PAGES):
        listed, headers = _call("GET", f"{notes}?per_page=100&sort=asc&page={page}")
        for note in listed:
            if not note.get("system") and marker in note.get("body", ""):
                _call("PUT", f"{notes}/{int(note['id'])}", {"body": body})
                print(f"updated the plan note {note['id']} on the merge request", flush=True)
                return 0
        page = headers.get("x-next-page", "")
        if not page:
            break
    created, _ = _call("POST", notes, {"body": body})
    print(f"posted the plan note {created.get('id')} on the merge request", flush=True)
    return 0


def fetch_plan(out: str) -> int:
    """Download the plan reviewed in the merge request that this commit merged."""
    sha = _env("CI_COMMIT_SHA")
    merged, _ = _call("GET", f"{_project()}/repository/commits/{sha}/merge_requests")
    merged = [mr for mr in merged if mr.get("state") == "merged"] or merged
    if not merged:
        raise Failure(
            f"commit {sha[:12]} did not come from a merge request, so no plan was reviewed: "
            "run the manual apply:fresh job to plan and apply the specs as they are"
        )
    iid = int(merged[0]["iid"])
    ref = urllib.parse.quote(f"refs/merge-requests/{iid}/head", safe="")
    try:
        raw, _ = _call("GET", f"{_project()}/jobs/artifacts/{ref}/raw/plan.json?job=plan")
    except Failure as exc:
        raise Failure(
            f"no plan.json from the plan job of merge request !{iid} ({exc}): its plan failed "
            "or its artifacts expired; run the manual apply:fresh job to plan and apply the "
            "specs as they are"
        ) from None
    if isinstance(raw, dict | list):
        raw = json.dumps(raw).encode("utf-8")
    with open(out, "wb") as handle:
        handle.write(raw)
    print(f"fetched the plan reviewed in merge request !{iid} into {out}", flush=True)
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
