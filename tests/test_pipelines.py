"""The example pipelines (examples/github, examples/gitlab) are valid and work, for real.

- Both validate against the GitHub workflow and GitLab CI JSON schemas (check-jsonschema).
- The GitHub workflow's jobs run step by step against the emulator (tests/ci_runners.py):
  pull request (plan, one comment updated on every push, errors in the comment), merge (the
  reviewed plan applied after an unrelated edit), schedule (drift).
- The GitLab pipeline's jobs run with gitlab-ci-local against the emulator and a little fake
  of GitLab's API for the merge request note and the reviewed plan.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.emulator import Emulator, FaultConfig
from tests.ci_runners import FakeGitLab, JobResult, WorkflowRunner
from tests.planning import SECRET, SPEC, edit_legend_by_hand, write_spec

ROOT = Path(__file__).resolve().parent.parent
GITHUB_WORKFLOW = ROOT / "examples" / "github" / ".github" / "workflows" / "reconciler.yml"
GITLAB_DIR = ROOT / "examples" / "gitlab"
BIN = str(Path(sys.executable).parent)  # where this environment's reconciler is


def _no_tool(name: str) -> str | None:
    return None if shutil.which(name) else name


# --- schemas -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ("vendor.github-workflows", GITHUB_WORKFLOW),
        ("vendor.gitlab-ci", GITLAB_DIR / ".gitlab-ci.yml"),
    ],
)
def test_pipelines_validate_against_their_ci_schemas(schema: str, path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _flat(script: Any) -> list[str]:
    """A GitLab script with its nested lists (from YAML anchors) flattened, as GitLab does."""
    if isinstance(script, str):
        return [script]
    return [line for item in script or () for line in _flat(item)]


def test_pipelines_keep_applies_serial_and_treat_exit_2_as_changes() -> None:
    github = yaml.safe_load(GITHUB_WORKFLOW.read_text())
    apply = github["jobs"]["apply"]
    assert apply["concurrency"] == {"group": "reconciler-apply", "cancel-in-progress": False}
    gitlab = yaml.safe_load((GITLAB_DIR / ".gitlab-ci.yml").read_text())
    assert gitlab["apply"]["extends"] == gitlab["apply:fresh"]["extends"] == ".apply"
    assert gitlab[".apply"]["resource_group"] == "reconciler-apply"
    # Protected and unprotected branches share the state's cache.
    caches = [gitlab["default"]["cache"], gitlab[".apply"]["cache"]]
    assert all(c["key"] == "reconciler-state" and c["unprotect"] is True for c in caches)
    # Drift fails the scheduled pipeline, so that someone hears of it.
    assert "allow_failure" not in gitlab["drift"]
    jobs = [job for job in gitlab.values() if isinstance(job, dict) and "script" in job]
    scripts = [" ".join(_flat(job["script"])) for job in jobs]
    assert any("--detailed-exitcode" in s and "-ne 2" in s for s in scripts)


def test_gitlab_installs_git_only_for_a_git_package(tmp_path: Path) -> None:
    """python:3.11-slim has no git: the install step adds it when the package needs it."""
    gitlab = yaml.safe_load((GITLAB_DIR / ".gitlab-ci.yml").read_text())
    (install,) = gitlab["default"]["before_script"]
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("apt-get", "pip"):
        (tools / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "$CALLS"\n')
        (tools / tool).chmod(0o755)

    def calls(package: str) -> list[str]:
        log = tmp_path / f"calls-{len(package)}"
        env = {"PATH": str(tools), "CALLS": str(log), "RECONCILER_PACKAGE": package}
        subprocess.run(["/bin/bash", "-eo", "pipefail", "-c", install], env=env, check=True)
        return log.read_text().splitlines()

    git = "reconciler @ git+https://gitlab.example.com/platform/reconciler.git@v0.1.0"
    assert calls(git) == [
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends git",
        f"pip install --quiet {git}",
    ]
    assert calls("reconciler==0.1.0") == ["pip install --quiet reconciler==0.1.0"]


# --- GitHub: the workflow's jobs, step by step ---------------------------------------------------


@pytest.fixture
def github(tmp_path: Path, world: Emulator) -> Iterator[tuple[WorkflowRunner, dict[str, Any]]]:
    if _no_tool("node"):
        pytest.skip("node is not installed: it runs the workflow's actions/github-script steps")
    repo = tmp_path / "repo"
    write_spec(repo / "specs", SPEC)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path)}
    runner = WorkflowRunner(GITHUB_WORKFLOW, repo, scratch, env)
    base = {
        "secrets": {"PIXXEL_API_KEY": SECRET},
        "vars": {"PIXXEL_API_URL": world.url},
        "inputs": {},
    }
    yield runner, base


def _github_context(
    base: dict[str, Any], event: str, run_id: int, sha: str, **event_data: Any
) -> dict[str, Any]:
    return {
        **base,
        "github": {
            "event_name": event,
            "run_id": run_id,
            "run_attempt": 1,
            "sha": sha,
            "ref": event_data.pop("ref", "refs/heads/main"),
            "server_url": "https://github.com",
            "repository": "team/specs",
            "token": "ghs_fake",
            "event": {"repository": {"default_branch": "main"}, **event_data},
        },
    }


def _bot_comments(runner: WorkflowRunner) -> list[dict[str, Any]]:
    return [c for c in runner.github["comments"] if c["user"]["login"] == "github-actions[bot]"]


def _pull_request(
    runner: WorkflowRunner, base: dict[str, Any], number: int, run_id: int, sha: str
) -> JobResult:
    """The plan job of a push to pull request ``number`` (head ``sha``), as GitHub runs it."""
    context = _github_context(base, "pull_request", run_id, sha, pull_request={"number": number})
    assert runner.jobs_for(context) == ["plan"]
    runner.github["runs"].append(
        {"id": run_id, "run_number": run_id, "name": "reconciler", "event": "pull_request",
         "head_sha": sha}
    )  # fmt: skip
    return runner.run_job("plan", context)


def _merge(
    runner: WorkflowRunner,
    base: dict[str, Any],
    number: int,
    head: str,
    merge_sha: str,
    run_id: int,
) -> JobResult:
    """Pull request ``number`` merged as ``merge_sha``: the apply job of that push."""
    runner.github["pulls"].append(
        {"number": number, "merged_at": "2025-01-01T00:00:00Z", "head": {"sha": head},
         "merge_commit_sha": merge_sha}
    )  # fmt: skip
    push = _github_context(base, "push", run_id, merge_sha)
    assert runner.jobs_for(push) == ["apply"]
    return runner.run_job("apply", push)


def _plan_exit(world: Emulator, repo: Path) -> int:
    env = {**os.environ, "PIXXEL_API_KEY": SECRET, "PIXXEL_API_URL": world.url}
    return subprocess.run(
        [f"{BIN}/reconciler", "plan", "--detailed-exitcode"],
        cwd=repo,
        env=env,
        capture_output=True,
        timeout=120,
    ).returncode


@pytest.mark.slow
def test_github_workflow_pull_request_merge_and_drift(
    github: tuple[WorkflowRunner, dict[str, Any]], world: Emulator
) -> None:
    runner, base = github
    for job, name, script in runner.run_scripts():
        assert "${{" not in script, f"{job}/{name}: expressions must reach scripts via env"
    repo = runner.workdir
    # A reply quoting the marker, and another bot's comment ending with it: neither is ours.
    human = {"id": 998, "issue_number": 7, "body": "nice, see <!-- reconciler-plan -->",
             "user": {"login": "octocat", "type": "User"}}  # fmt: skip
    other_bot = {"id": 999, "issue_number": 7, "body": "beep\n<!-- reconciler-plan -->\n",
                 "user": {"login": "renovate[bot]", "type": "Bot"}}  # fmt: skip
    runner.github["comments"] += [human, other_bot]

    # First push: the plan is posted as a comment, kept as an artifact, summarised.
    first = _pull_request(runner, base, 7, 101, "aaa1")
    assert first.status == "success", first.log
    bot = _bot_comments(runner)
    assert len(bot) == 1
    assert bot[0]["body"].startswith("### reconciler plan: 1 to create, 1 to roll back")
    assert bot[0]["body"].endswith("\n<!-- reconciler-plan -->\n")
    assert "+ create NDVI visualization" in first.summary
    assert (runner.artifacts / "101" / "reconciler-plan" / "plan.json").is_file()
    steps = [step.name for step in first.steps]
    assert steps.index("Keep the plan for the merge") < steps.index(
        "Post or update the plan comment"
    )

    # A push with invalid specs: the same comment now says what is wrong, the job fails.
    write_spec(repo / "specs", SPEC.replace("index: NDWI", "index: NDWX"))
    broken = _pull_request(runner, base, 7, 102, "aaa2")
    assert broken.status == "failure"
    assert "::error file=" not in broken.log  # offline validation cannot know index names
    assert "reconciler plan failed (exit 1)" in broken.log
    bot = _bot_comments(runner)
    assert len(bot) == 1 and bot[0]["updates"] == 1
    assert bot[0]["body"].startswith("### reconciler plan failed: 1 problem in the specs")
    assert "specs/spec.yaml:10:16: unknown index 'NDWX'" in bot[0]["body"]

    write_spec(repo / "specs", SPEC.replace("index: True-Color", "index: True-Color\n  - x: 1"))
    invalid = _pull_request(runner, base, 7, 103, "aaa3")
    assert invalid.status == "failure"
    assert "::error file=specs/spec.yaml,line=" in invalid.log  # an annotation on the diff

    # Fixed: one comment still, back to the plan; nobody else's comment is touched.
    write_spec(repo / "specs", SPEC)
    fixed = _pull_request(runner, base, 7, 104, "aaa4")
    assert fixed.status == "success", fixed.log
    bot = _bot_comments(runner)
    assert len(bot) == 1 and bot[0]["updates"] == 3
    assert bot[0]["body"].startswith("### reconciler plan: 1 to create")
    assert runner.github["comments"][:2] == [human, other_bot]

    # Merged, with a comment line another merge added meanwhile: the reviewed plan applies,
    # and main as it is has nothing left.
    (repo / "specs" / "spec.yaml").write_text("# merged\n" + (repo / "specs/spec.yaml").read_text())
    applied = _merge(runner, base, 7, "aaa4", "mmm1", 201)
    assert applied.status == "success", applied.log
    assert "Apply complete: 1 created, 0 adopted, 1 rolled back" in applied.log
    assert "::warning" not in applied.log
    assert json.loads((repo / "reviewed-report.json").read_text())["ok"] is True
    assert list(runner.cache.iterdir())  # the state is kept for the next jobs

    # Schedule: no drift, then a legend edited by hand is reported.
    schedule = _github_context(base, "schedule", 301, "mmm1")
    assert runner.jobs_for(schedule) == ["drift"]
    calm = runner.run_job("drift", schedule)
    assert calm.status == "success", calm.log
    edit_legend_by_hand(world, api_key=SECRET)
    drift = runner.run_job("drift", _github_context(base, "schedule", 302, "mmm1"))
    assert drift.status == "failure"
    assert "::warning title=reconciler drift::" in drift.log
    assert "the visualization changed since the last rollback" in drift.summary

    # By hand, from the default branch only: plan the specs as they are and apply that.
    fresh = {**_github_context(base, "workflow_dispatch", 401, "mmm1"),
             "inputs": {"apply_fresh": True}}  # fmt: skip
    assert runner.jobs_for(fresh) == ["apply"]
    elsewhere = _github_context(base, "workflow_dispatch", 402, "fff1", ref="refs/heads/feature")
    assert runner.jobs_for({**elsewhere, "inputs": {"apply_fresh": True}}) == []
    capped = runner.run_job("apply", {**fresh, "inputs": {"apply_fresh": True, "max_changes": "0"}})
    assert capped.status == "failure" and "more than --max-changes 0" in capped.log
    again = runner.run_job("apply", fresh)
    assert again.status == "success", again.log
    assert "0 created, 0 adopted, 1 rolled back" in again.log
    assert "::warning" not in again.log


PUNE_SAVI = SPEC.replace("      - index: NDWI\n", "      - index: NDWI\n      - index: SAVI\n")
BENGALURU_EVI = SPEC.replace(
    "      - index: True-Color\n", "      - index: True-Color\n      - index: EVI\n"
)


@pytest.mark.slow
def test_github_workflow_never_drops_a_merge_whose_apply_was_superseded(
    github: tuple[WorkflowRunner, dict[str, Any]], world: Emulator
) -> None:
    """Three quick merges: GitHub cancels the waiting apply of the second when the third
    arrives. The third's apply applies its reviewed plan, then main as it is: the second's
    changes too. A reviewed plan made stale meanwhile is not applied; main is, instead."""
    runner, base = github
    repo = runner.workdir
    assert _pull_request(runner, base, 7, 101, "aaa1").status == "success"
    assert _merge(runner, base, 7, "aaa1", "mmm1", 201).status == "success"
    # Two pull requests from main: one adds SAVI to Pune-East, one EVI to Bengaluru-North.
    write_spec(repo / "specs", PUNE_SAVI)
    assert _pull_request(runner, base, 8, 102, "bbb1").status == "success"
    write_spec(repo / "specs", BENGALURU_EVI)
    assert _pull_request(runner, base, 9, 103, "ccc1").status == "success"
    # Both merged; only the apply of the second one runs.
    both = PUNE_SAVI.replace("- index: True-Color\n", "- index: True-Color\n      - index: EVI\n")
    write_spec(repo / "specs", both)
    runner.github["pulls"].append(
        {"number": 8, "merged_at": "2025-01-02T00:00:00Z", "head": {"sha": "bbb1"},
         "merge_commit_sha": "mmm2"}
    )  # fmt: skip
    last = _merge(runner, base, 9, "ccc1", "mmm3", 203)
    assert last.status == "success", last.log
    assert json.loads((repo / "reviewed-report.json").read_text())["summary"]["created"] == 1
    report = json.loads((repo / "report.json").read_text())
    assert [(i["index_name"], i["aoi_name"]) for i in report["items"]] == [("SAVI", "Pune-East")]
    assert _plan_exit(world, repo) == 0

    # A reviewed plan whose AOI was edited by hand after the review: refused, saying what
    # moved, and main is applied as it is instead.
    spec = repo / "specs" / "spec.yaml"
    spec.write_text(
        spec.read_text().replace("dates: [2024-05-06]", "dates: [2024-05-06], revision: 1")
    )
    assert _pull_request(runner, base, 10, 104, "ddd1").status == "success"
    edit_legend_by_hand(world, api_key=SECRET)
    stale = _merge(runner, base, 10, "ddd1", "mmm4", 204)
    assert stale.status == "success", stale.log
    assert "the saved plan is stale, nothing was applied" in stale.log
    assert "::warning title=reconciler::the reviewed plan was refused" in stale.log
    assert "0 created, 0 adopted, 1 rolled back" in stale.log
    assert _plan_exit(world, repo) == 0

    # A push no pull request reviewed: main as it is, with a warning.
    lone = runner.run_job("apply", _github_context(base, "push", 205, "mmm5"))
    assert lone.status == "success", lone.log
    assert "::warning title=reconciler::no reviewed plan for this commit" in lone.log


_STOPPED_APPLY = """#!/bin/sh
# The reviewed plan's apply, stopped by a SIGTERM (a cancelled job) one second in.
if [ "$1" = apply ] && [ "$2" = reviewed/plan.json ]; then
  "$REAL_RECONCILER" "$@" &
  pid=$!
  sleep 1
  kill -TERM "$pid"
  wait "$pid"
  exit $?
fi
exec "$REAL_RECONCILER" "$@"
"""


@pytest.mark.slow
def test_github_apply_job_ends_when_its_apply_is_stopped_by_a_signal(
    github: tuple[WorkflowRunner, dict[str, Any]], world: Emulator, tmp_path: Path
) -> None:
    """A SIGTERM ends the job: it is not a refused plan, so main is not applied after it."""
    runner, base = github
    assert _pull_request(runner, base, 7, 101, "aaa1").status == "success"
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "reconciler").write_text(_STOPPED_APPLY)
    (shim / "reconciler").chmod(0o755)
    path = f"{shim}:{runner.base_env['PATH']}"
    runner.base_env = {**runner.base_env, "PATH": path, "REAL_RECONCILER": f"{BIN}/reconciler"}
    world.faults = FaultConfig(latency_ms=3000)  # still checking the plan when the signal comes
    stopped = _merge(runner, base, 7, "aaa1", "mmm1", 201)
    world.faults = FaultConfig()
    assert stopped.status == "failure", stopped.log
    assert "stopped by SIGTERM" in stopped.log
    assert "applying main as it is" not in stopped.log
    assert _plan_exit(world, runner.workdir) == 2  # nothing was applied


# --- GitLab: the pipeline's jobs with gitlab-ci-local --------------------------------------------


@pytest.fixture
def gitlab_repo(tmp_path: Path) -> Path:
    missing = _no_tool("gitlab-ci-local") or _no_tool("rsync") or _no_tool("git")
    if missing:
        pytest.skip(
            f"{missing} is not installed: .ci/run installs gitlab-ci-local@4.60.x (npm) and rsync"
        )
    repo = tmp_path / "repo"
    shutil.copytree(GITLAB_DIR, repo, ignore=shutil.ignore_patterns("README.md", "__pycache__"))
    write_spec(repo / "specs", SPEC)
    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "specs"], cwd=repo, check=True)
    return repo


def _gitlab_ci_local(
    repo: Path, job: str, variables: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    args = ["gitlab-ci-local", "--force-shell-executor", "--no-color", job]
    for name, value in variables.items():
        args += ["--variable", f"{name}={value}"]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "NO_COLOR": "1"}
    return subprocess.run(args, cwd=repo, capture_output=True, text=True, timeout=300, env=env)


def _commit(repo: Path, message: str) -> str:
    git = ["git", "-c", "user.email=ci@e.com", "-c", "user.name=ci"]
    subprocess.run([*git, "commit", "-qam", message], cwd=repo, check=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def _merged(
    gitlab: FakeGitLab,
    iid: int,
    *,
    head: str,
    pipelines: list[tuple[int, str, int, str, bytes]],
    **commit_shas: str,
) -> None:
    """Merge request ``iid`` (last head ``head``) merged as ``commit_shas`` (merge_commit_sha,
    squash_commit_sha); ``pipelines``: (id, sha, plan job id, its status, its plan.json)."""
    commit = next(iter(commit_shas.values()))
    gitlab.commits[commit] = [
        {"iid": iid, "state": "merged", "sha": head, "merge_commit_sha": None,
         "squash_commit_sha": None, **commit_shas}
    ]  # fmt: skip
    gitlab.pipelines[iid] = [{"id": pid, "sha": sha} for pid, sha, *_ in pipelines]
    for pid, _, job_id, status, plan in pipelines:
        gitlab.jobs[pid] = [{"id": job_id, "name": "plan", "status": status}]
        gitlab.artifacts[(job_id, "plan.json")] = plan


@pytest.mark.slow
def test_gitlab_pipeline_runs_with_gitlab_ci_local(gitlab_repo: Path, world: Emulator) -> None:
    """Acceptance: gitlab-ci-local runs the example pipeline's plan job green against the
    emulator; then the comment is updated, the reviewed plan applied, drift reported."""
    with FakeGitLab(token="glpat-fake", project_id="1217") as gitlab:
        common = {
            "PIXXEL_API_URL": world.url,
            "PIXXEL_PLAN_API_KEY": SECRET,
            "GITLAB_TOKEN": "glpat-fake",
            "CI_API_V4_URL": gitlab.url,
            "CI_PROJECT_ID": "1217",
        }
        # A merge request pipeline of an unprotected branch: no protected PIXXEL_API_KEY.
        mr = {**common, "CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7"}
        # Someone else's note ending with the marker: never ours to update.
        theirs = {"id": 1, "system": False, "author": {"id": 7}, "updates": 0,
                  "body": "copied:\n<!-- reconciler-plan -->"}  # fmt: skip
        gitlab.notes[7] = [theirs]

        validated = _gitlab_ci_local(gitlab_repo, "validate", mr)
        assert validated.returncode == 0, validated.stdout + validated.stderr
        assert "is valid: 1 file, 2 AOIs, 4 visualizations" in validated.stdout

        planned = _gitlab_ci_local(gitlab_repo, "plan", mr)
        assert planned.returncode == 0, planned.stdout + planned.stderr
        assert "PASS" in planned.stdout and "plan" in planned.stdout
        assert "+ create NDVI visualization" in planned.stdout  # the plan, in the job log
        theirs_now, note = gitlab.notes[7]
        assert theirs_now == theirs
        assert note["body"].startswith("### reconciler plan: 1 to create, 1 to roll back")
        assert note["body"].endswith("<!-- reconciler-plan -->\n")
        artifact = gitlab_repo / ".gitlab-ci-local" / "artifacts" / "plan" / "plan.json"
        assert artifact.is_file()

        # Another push: the same note is updated, not a second one added.
        again = _gitlab_ci_local(gitlab_repo, "plan", mr)
        assert again.returncode == 0, again.stdout + again.stderr
        assert len(gitlab.notes[7]) == 2 and gitlab.notes[7][1]["updates"] == 1

        # Merged (with an unrelated comment line): the plan of the merge request's last
        # pipeline is fetched by job id and applied; an older pipeline's plan is not used.
        spec = gitlab_repo / "specs" / "spec.yaml"
        spec.write_text("# merged\n" + spec.read_text())
        merged = _commit(gitlab_repo, "merge !7")
        _merged(gitlab, 7, merge_commit_sha=merged, head="head7", pipelines=[
            (301, "head7", 5001, "success", artifact.read_bytes()),
            (300, "older7", 5000, "success", b"not this one"),
        ])  # fmt: skip
        push = {**common, "PIXXEL_API_KEY": SECRET, "CI_PIPELINE_SOURCE": "push"}
        applied = _gitlab_ci_local(gitlab_repo, "apply", push)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "fetched the plan reviewed in merge request !7 (job 5001)" in applied.stdout
        assert "Apply complete: 1 created, 0 adopted, 1 rolled back" in applied.stdout
        assert "WARNING" not in applied.stdout

        # Merged when the last push's plan never finished: the plan of an earlier push is not
        # applied; the default branch is planned and applied as it is.
        spec.write_text(
            spec.read_text().replace("- index: NDWI\n", "- index: NDWI\n      - index: SAVI\n")
        )
        second = _commit(gitlab_repo, "merge !8")
        _merged(gitlab, 8, squash_commit_sha=second, head="head8b", pipelines=[
            (402, "head8b", 6002, "canceled", b""),
            (401, "head8a", 6001, "success", artifact.read_bytes()),  # an outdated plan
        ])  # fmt: skip
        fresh = _gitlab_ci_local(gitlab_repo, "apply", push)
        assert fresh.returncode == 0, fresh.stdout + fresh.stderr
        assert (
            "the plan job of merge request !8's last pipeline (402) is canceled"
            in fresh.stderr + fresh.stdout
        )
        assert "WARNING: no reviewed plan for this commit" in fresh.stdout
        assert "Apply complete: 1 created, 0 adopted, 0 rolled back" in fresh.stdout
        report = json.loads((gitlab_repo / "report.json").read_text())
        assert [(i["index_name"], i["aoi_name"]) for i in report["items"]] == [
            ("SAVI", "Pune-East")
        ]

        # Schedule: no drift (green), then a hand edit is drift: the job fails, visibly.
        schedule = {**common, "PIXXEL_API_KEY": SECRET, "CI_PIPELINE_SOURCE": "schedule"}
        calm = _gitlab_ci_local(gitlab_repo, "drift", schedule)
        assert calm.returncode == 0 and "PASS" in calm.stdout, calm.stdout + calm.stderr
        edit_legend_by_hand(world, api_key=SECRET)
        drift = _gitlab_ci_local(gitlab_repo, "drift", schedule)
        assert drift.returncode != 0, drift.stdout + drift.stderr
        assert "PASS" not in drift.stdout
        assert "Drift - the API no longer matches the specs" in drift.stdout
        drift_md = gitlab_repo / ".gitlab-ci-local" / "artifacts" / "drift" / "drift.md"
        assert "the visualization changed since the last rollback" in drift_md.read_text()
        logs = applied.stdout + fresh.stdout + drift.stdout + planned.stdout
        assert SECRET not in logs


@pytest.mark.slow
@pytest.mark.parametrize(
    ("merge_request", "fetched"),
    [
        ({"merge_commit_sha": "c0ffee"}, True),
        ({"squash_commit_sha": "c0ffee"}, True),
        ({"sha": "c0ffee"}, True),  # fast-forwarded: the head is the commit itself
        ({"merge_commit_sha": "other"}, False),  # merely contains the commit
        ({"merge_commit_sha": "c0ffee", "state": "opened"}, False),
    ],
)
def test_gitlab_fetch_plan_takes_only_the_merge_request_this_commit_merged(
    tmp_path: Path, merge_request: dict[str, str], fetched: bool
) -> None:
    with FakeGitLab(token="glpat-fake", project_id="5") as gitlab:
        gitlab.commits["c0ffee"] = [
            {"iid": 3, "state": "merged", "sha": "head3", "merge_commit_sha": None,
             "squash_commit_sha": None, **merge_request}
        ]  # fmt: skip
        head = merge_request.get("sha", "head3")
        gitlab.pipelines[3] = [{"id": 9, "sha": head}]
        gitlab.jobs[9] = [{"id": 90, "name": "plan", "status": "success"}]
        gitlab.artifacts[(90, "plan.json")] = b'{"reviewed": true}'
        env = {"PATH": os.environ["PATH"], "CI_API_V4_URL": gitlab.url, "CI_PROJECT_ID": "5",
               "CI_COMMIT_SHA": "c0ffee", "GITLAB_TOKEN": "glpat-fake"}  # fmt: skip
        out = tmp_path / "reviewed" / "plan.json"
        result = subprocess.run(
            [
                sys.executable,
                str(GITLAB_DIR / "ci" / "reconciler_gitlab.py"),
                "fetch-plan",
                str(out),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert (result.returncode == 0) is fetched, result.stderr
    if fetched:
        assert out.read_bytes() == b'{"reviewed": true}'
    else:
        assert not out.exists()
        assert "merged no merge request, so no plan was reviewed" in result.stderr
        assert "glpat" not in result.stderr
