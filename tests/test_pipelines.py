"""The example pipelines (examples/github, examples/gitlab) are valid and work, for real.

- Both validate against the GitHub workflow and GitLab CI JSON schemas (check-jsonschema).
- The GitHub workflow's jobs run step by step against the emulator (tests/ci_runners.py):
  pull request (plan, one comment updated on every push, errors in the comment), merge (the
  reviewed plan applied after an unrelated edit), schedule (drift).
- The GitLab pipeline's jobs run with gitlab-ci-local against the emulator and a little fake
  of GitLab's API for the merge request note and the reviewed plan.
"""

from __future__ import annotations

import datetime as dt
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
from tests.conftest import S3
from tests.planning import SECRET, SPEC, edit_legend_by_hand, write_spec

ROOT = Path(__file__).resolve().parent.parent
GITHUB_WORKFLOW = ROOT / "examples" / "github" / ".github" / "workflows" / "reconciler.yml"
GITHUB_SHARDED = GITHUB_WORKFLOW.with_name("reconciler-sharded.yml")
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
        ("vendor.github-workflows", GITHUB_SHARDED),
        ("vendor.gitlab-ci", GITLAB_DIR / ".gitlab-ci.yml"),
        ("vendor.gitlab-ci", GITLAB_DIR / "sharded.gitlab-ci.yml"),
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


@pytest.mark.parametrize("workflow", [GITHUB_WORKFLOW, GITHUB_SHARDED], ids=lambda p: p.name)
def test_the_github_workflow_is_clean_under_zizmor(workflow: Path) -> None:
    """Copy-paste safe: actions pinned by commit, no persisted credentials, secrets only in
    jobs bound to an environment; zizmor finds nothing at medium severity or above."""
    result = subprocess.run(
        [f"{BIN}/zizmor", "--offline", "--min-severity", "medium", "--format", "plain",
         str(workflow)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


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
    assert gitlab["apply"]["extends"] == gitlab["apply:remainder"]["extends"] == ".apply"
    assert gitlab[".apply"]["resource_group"] == "reconciler-apply"
    # The state is in S3 for every job, reached with short-lived credentials: GitLab's ID token
    # for the role that may write it in the apply jobs, a read-only one elsewhere.
    assert gitlab["default"]["id_tokens"]["AWS_ID_TOKEN"]["aud"] == "sts.amazonaws.com"
    assert gitlab["variables"]["STATE_ROLE"] == "$RECONCILER_STATE_READ_ROLE"
    assert gitlab[".apply"]["variables"]["STATE_ROLE"] == "$RECONCILER_STATE_ROLE"
    assert not [name for name, job in gitlab.items() if isinstance(job, dict) and "cache" in job]
    # Drift fails the scheduled pipeline, so that someone hears of it.
    assert "allow_failure" not in gitlab["drift"]
    jobs = [job for job in gitlab.values() if isinstance(job, dict) and "script" in job]
    scripts = [" ".join(_flat(job["script"])) for job in jobs]
    assert any("--detailed-exitcode" in s and "-ne 2" in s for s in scripts)


def test_gitlab_installs_git_only_for_a_git_package(tmp_path: Path) -> None:
    """python:3.11-slim has no git: the install step adds it when the package needs it."""
    gitlab = yaml.safe_load((GITLAB_DIR / ".gitlab-ci.yml").read_text())
    install = gitlab["default"]["before_script"][0]
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("apt-get", "pip"):
        (tools / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "$CALLS"\n')
        (tools / tool).chmod(0o755)

    def calls(package: str) -> list[str]:
        log = tmp_path / f"calls-{len(package)}"
        env = {"PATH": str(tools), "CALLS": str(log), "RECONCILER_PACKAGE": package,
               "RECONCILER_CONSTRAINTS": "https://e.x/constraints.txt"}  # fmt: skip
        subprocess.run(["/bin/bash", "-eo", "pipefail", "-c", install], env=env, check=True)
        return log.read_text().splitlines()

    git = "reconciler @ git+https://gitlab.example.com/platform/reconciler.git@v0.1.0"
    assert calls(git) == [
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends git",
        f"pip install --quiet --constraint https://e.x/constraints.txt {git}",
    ]
    assert calls("reconciler==0.1.0") == [
        "pip install --quiet --constraint https://e.x/constraints.txt reconciler==0.1.0"
    ]


# --- GitHub: the workflow's jobs, step by step ---------------------------------------------------


#: The variables of the AWS SDK that the workflow's credentials step sets, or the runner has.
_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@pytest.fixture
def github(
    tmp_path: Path, world: Emulator, s3: S3
) -> Iterator[tuple[WorkflowRunner, dict[str, Any]]]:
    """The workflow's runner, with the rollback state in a bucket of the S3 server: the
    credentials step hands each job the role's credentials, as GitHub's OIDC would."""
    yield _github_runner(GITHUB_WORKFLOW, tmp_path, world, s3)


@pytest.fixture
def github_sharded(
    tmp_path: Path, world: Emulator, s3: S3
) -> Iterator[tuple[WorkflowRunner, dict[str, Any]]]:
    """``github``, for the sharded workflow."""
    yield _github_runner(GITHUB_SHARDED, tmp_path, world, s3)


def _github_runner(
    workflow: Path, tmp_path: Path, world: Emulator, s3: S3
) -> tuple[WorkflowRunner, dict[str, Any]]:
    if _no_tool("node"):
        pytest.skip("node is not installed: it runs the workflow's actions/github-script steps")
    repo = tmp_path / "repo"
    # A pull request's checkout: its base commit (no specs yet), and the specs it adds.
    repo.mkdir()
    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "base"], cwd=repo, check=True)
    pr_base = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    write_spec(repo / "specs", SPEC)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    where = {k: v for k, v in s3.env.items() if k not in _CREDENTIALS and "REGION" not in k}
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), **where}
    runner = WorkflowRunner(workflow, repo, scratch, env)
    runner.aws_credentials = {k: s3.env[k] for k in _CREDENTIALS}
    base = {
        "secrets": {"PIXXEL_API_KEY": SECRET},
        "vars": {
            "PIXXEL_API_URL": world.url,
            "RECONCILER_STATE": s3.url(),
            "AWS_REGION": "us-east-1",
            "RECONCILER_STATE_ROLE": "arn:aws:iam::123456789012:role/reconciler-apply",
            "RECONCILER_STATE_READ_ROLE": "arn:aws:iam::123456789012:role/reconciler-plan",
        },
        "inputs": {},
        "pr_base": pr_base,
    }
    return runner, base


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
    pull = {"number": number, "base": {"sha": base["pr_base"]}}
    context = _github_context(base, "pull_request", run_id, sha, pull_request=pull)
    assert runner.jobs_for(context) == ["plan"]
    runner.github["runs"].append(
        {"id": run_id, "run_number": run_id, "name": "reconciler", "event": "pull_request",
         "head_sha": sha}
    )  # fmt: skip
    return runner.run_job("plan", context)


def _merged_pull(runner: WorkflowRunner, number: int, head: str, merge_sha: str) -> None:
    """Pull request ``number`` (last head ``head``) merged as ``merge_sha``, a second after
    the one merged before it (the workflow looks back 30 days)."""
    at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1, seconds=-len(runner.github["pulls"]))
    runner.github["pulls"].append(
        {"number": number, "merged_at": at.isoformat().replace("+00:00", "Z"),
         "head": {"sha": head}, "merge_commit_sha": merge_sha, "base": "main", "labels": []}
    )  # fmt: skip


def _labels(runner: WorkflowRunner, number: int) -> list[str]:
    (pull,) = [p for p in runner.github["pulls"] if p["number"] == number]
    return [label["name"] for label in pull["labels"]]


def _merge(
    runner: WorkflowRunner,
    base: dict[str, Any],
    number: int,
    head: str,
    merge_sha: str,
    run_id: int,
) -> JobResult:
    """Pull request ``number`` merged as ``merge_sha``: the apply job of that push."""
    _merged_pull(runner, number, head, merge_sha)
    push = _github_context(base, "push", run_id, merge_sha)
    assert runner.jobs_for(push) == ["apply"]
    return runner.run_job("apply", push)


def _plan_exit(world: Emulator, runner: WorkflowRunner, state: str) -> int:
    """What ``plan --detailed-exitcode`` says of the runner's checkout and the shared state."""
    env = {**os.environ, "PIXXEL_API_KEY": SECRET, "PIXXEL_API_URL": world.url}
    return subprocess.run(
        [f"{BIN}/reconciler", "plan", "--detailed-exitcode", "--state", state],
        cwd=runner.workdir,
        env=env,
        capture_output=True,
        timeout=120,
    ).returncode


@pytest.mark.slow
def test_github_workflow_pull_request_merge_and_drift(
    github: tuple[WorkflowRunner, dict[str, Any]], world: Emulator, s3: S3
) -> None:
    runner, base = github
    state = base["vars"]["RECONCILER_STATE"]
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
    # Only what the pull request changed since its base: here, every AOI it adds.
    assert "> [!NOTE]\n> Only what changed since `" in bot[0]["body"]
    assert "the base commit is not in the checkout" not in first.log
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
    # Validated against the API: what only the API knows is on the diff, at its line.
    assert (
        "::error file=specs/spec.yaml,line=10,col=16,title=reconciler validate::unknown index "
        "'NDWX'" in broken.log
    )
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
    assert "::warning" not in applied.log and "Nothing left" in applied.log
    assert json.loads((repo / "reviewed" / "7" / "report.json").read_text())["ok"] is True
    assert _labels(runner, 7) == ["reconciler-applied"]
    # The state is in the bucket for the next jobs, and its lock is gone.
    bucket = s3.fs()
    assert bucket.exists(state) and not bucket.exists(state + ".lock")

    # Schedule: in sync (no issue), then a legend edited by hand is drift: the run fails and
    # one tracking issue says what moved; the next run updates that issue.
    schedule = _github_context(base, "schedule", 301, "mmm1")
    assert runner.jobs_for(schedule) == ["drift"]
    calm = runner.run_job("drift", schedule)
    assert calm.status == "success", calm.log
    assert runner.github["issues"] == []
    edit_legend_by_hand(world, api_key=SECRET)
    drift = runner.run_job("drift", _github_context(base, "schedule", 302, "mmm1"))
    assert drift.status == "failure"
    assert "::warning title=reconciler drift::" in drift.log and "(exit 3" in drift.log
    assert "edited since the last rollback" in drift.summary
    again = runner.run_job("drift", _github_context(base, "schedule", 303, "mmm1"))
    assert again.status == "failure"
    (issue,) = runner.github["issues"]
    assert issue["state"] == "open" and issue["updates"] == 1
    assert issue["body"].startswith("### reconciler drift: moved (1 moved)")

    # A push no pull request reviewed (and the legend edited by hand since): shown, not
    # applied; the run fails with the one command that applies exactly that plan.
    write_spec(repo / "specs", PUNE_SAVI)
    lone = runner.run_job("apply", _github_context(base, "push", 205, "mmm5"))
    assert lone.status == "failure", lone.log
    assert "::error title=reconciler::main calls for changes that no reviewed plan" in lone.log
    assert "gh workflow run reconciler.yml --ref main -f remainder_of_run=205" in lone.log
    assert "+ SAVI over all assets" in lone.summary
    assert "the visualization changed since the last rollback" in lone.summary
    assert _plan_exit(world, runner, state) == 2  # nothing of it was applied
    kept = runner.artifacts / "205" / "reconciler-remainder" / "remainder.json"
    assert kept.is_file()

    # Reviewed, it is applied by hand from the default branch only, exactly that plan.
    reviewed = {**_github_context(base, "workflow_dispatch", 401, "mmm5"),
                "inputs": {"remainder_of_run": "205"}}  # fmt: skip
    assert runner.jobs_for(reviewed) == ["apply"]
    elsewhere = _github_context(base, "workflow_dispatch", 402, "fff1", ref="refs/heads/feature")
    assert runner.jobs_for({**elsewhere, "inputs": {"remainder_of_run": "205"}}) == []
    done = runner.run_job("apply", reviewed)
    assert done.status == "success", done.log
    assert "1 created, 0 adopted, 1 rolled back" in done.log
    assert _plan_exit(world, runner, state) == 0

    # In sync again: the tracking issue is closed, saying so.
    synced = runner.run_job("drift", _github_context(base, "schedule", 304, "mmm5"))
    assert synced.status == "success", synced.log
    assert issue["number"] in [i["number"] for i in runner.github["issues"]]
    assert runner.github["issues"][0]["state"] == "closed"
    assert runner.github["comments"][-1]["body"] == "In sync again: closing."


def _shards(
    runner: WorkflowRunner, job: str, context: dict[str, Any], count: int = 4
) -> list[JobResult]:
    """One job of the sharded workflow, for every shard of its matrix."""
    strategy = {"job-total": count}
    return [
        runner.run_job(job, {**context, "matrix": {"shard": i}, "strategy": strategy})
        for i in range(1, count + 1)
    ]


@pytest.mark.slow
def test_github_sharded_workflow_plans_merges_applies_and_drifts_by_shard(
    github_sharded: tuple[WorkflowRunner, dict[str, Any]], world: Emulator, s3: S3
) -> None:
    runner, base = github_sharded
    workflow = yaml.safe_load(GITHUB_SHARDED.read_text())
    shards = workflow["env"]["SHARDS"]
    for job in ("plan", "apply", "drift"):
        matrix = workflow["jobs"][job]["strategy"]["matrix"]["shard"]
        assert matrix == list(range(1, int(shards) + 1)), f"{job}: the matrix is not SHARDS long"
    for job, name, script in runner.run_scripts():
        assert "${{" not in script, f"{job}/{name}: expressions must reach scripts via env"

    # A pull request: each shard plans its AOIs (Pune-East is shard 1's, Bengaluru-North 3's),
    # and one comment shows them all.
    pull = {"number": 7, "base": {"sha": base["pr_base"]}}
    pr = _github_context(base, "pull_request", 101, "aaa1", pull_request=pull)
    assert runner.jobs_for(pr) == ["plan", "comment"]
    runner.github["runs"].append(
        {"id": 101, "run_number": 101, "name": "reconciler-sharded", "event": "pull_request",
         "head_sha": "aaa1"}
    )  # fmt: skip
    planned = _shards(runner, "plan", pr)
    assert [job.status for job in planned] == ["success"] * 4, planned[0].log
    assert "--shard 1/4" in " ".join(planned[0].log.split()) or "Shard 1 of 4" in planned[0].log
    comment = runner.run_job("comment", pr)
    assert comment.status == "success", comment.log
    (bot,) = _bot_comments(runner)
    assert bot["body"].startswith("### reconciler plan: 1 to create, 1 to roll back")
    assert "The plans of shards 1-4 of 4, merged: 2 AOIs." in bot["body"]
    assert bot["body"].endswith("\n<!-- reconciler-plan -->\n")

    # Merged: each shard applies its reviewed plan, into its own state in the bucket.
    _merged_pull(runner, 7, "aaa1", "mmm1")
    push = _github_context(base, "push", 201, "mmm1")
    assert runner.jobs_for(push) == ["apply"]
    applied = _shards(runner, "apply", push)
    assert [job.status for job in applied] == ["success"] * 4, applied[2].log
    assert "1 created, 0 adopted, 0 rolled back" in applied[0].log  # Pune-East's shard
    assert "0 created, 0 adopted, 1 rolled back" in applied[2].log  # Bengaluru-North's
    assert all("is up to date" in job.log for job in applied)
    kept = runner.artifacts / "201" / "reconciler-apply-shard-3"
    assert (kept / "remainder.json").is_file() and (kept / "reviewed" / "report.json").is_file()
    state = base["vars"]["RECONCILER_STATE"]
    bucket = s3.fs()
    assert bucket.exists(state.replace("state.json", "state.shard-3-of-4.json"))
    assert not bucket.exists(state)  # no unsharded state: every AOI is a shard's

    # Drift, per shard: a hand edit in Bengaluru-North fails that shard's job only.
    schedule = _github_context(base, "schedule", 301, "mmm1")
    assert runner.jobs_for(schedule) == ["drift"]
    assert [job.status for job in _shards(runner, "drift", schedule)] == ["success"] * 4
    edit_legend_by_hand(world, api_key=SECRET)
    drifted = _shards(runner, "drift", _github_context(base, "schedule", 302, "mmm1"))
    assert [job.status for job in drifted] == ["success", "success", "failure", "success"]
    assert "moved" in drifted[2].summary

    # A take-over, as after changing SHARDS: nothing to move here, and nothing changes.
    dispatch = {**_github_context(base, "workflow_dispatch", 401, "mmm1"),
                "inputs": {"take_over": True}}  # fmt: skip
    assert runner.jobs_for(dispatch) == ["apply"]
    taken = runner.run_job(
        "apply", {**dispatch, "matrix": {"shard": 1}, "strategy": {"job-total": 4}}
    )
    assert taken.status == "success", taken.log
    # A matrix that is not SHARDS long fails at once, before anything is planned or applied.
    short = runner.run_job("plan", {**pr, "matrix": {"shard": 1}, "strategy": {"job-total": 3}})
    assert short.status == "failure"
    assert "this job's matrix has 3 shards and SHARDS says 4" in short.log


PUNE_SAVI = SPEC.replace("      - index: NDWI\n", "      - index: NDWI\n      - index: SAVI\n")
BENGALURU_EVI = SPEC.replace(
    "      - index: True-Color\n", "      - index: True-Color\n      - index: EVI\n"
)


@pytest.mark.slow
def test_github_workflow_applies_every_merge_from_its_reviewed_plan(
    github: tuple[WorkflowRunner, dict[str, Any]], world: Emulator
) -> None:
    """Two quick merges: GitHub cancels the waiting apply of the first when the second
    arrives. The second's run applies both reviewed plans, oldest merge first. A reviewed plan
    made stale meanwhile is refused, and what it changed is not applied unreviewed instead."""
    runner, base = github
    state = base["vars"]["RECONCILER_STATE"]
    repo = runner.workdir
    assert _pull_request(runner, base, 7, 101, "aaa1").status == "success"
    assert _merge(runner, base, 7, "aaa1", "mmm1", 201).status == "success"
    # Two pull requests from main: one adds SAVI to Pune-East, one EVI to Bengaluru-North.
    write_spec(repo / "specs", PUNE_SAVI)
    assert _pull_request(runner, base, 8, 102, "bbb1").status == "success"
    write_spec(repo / "specs", BENGALURU_EVI)
    assert _pull_request(runner, base, 9, 103, "ccc1").status == "success"
    # Both merged; the apply run of the first was cancelled before it started.
    both = PUNE_SAVI.replace("- index: True-Color\n", "- index: True-Color\n      - index: EVI\n")
    write_spec(repo / "specs", both)
    _merged_pull(runner, 8, "bbb1", "mmm2")
    last = _merge(runner, base, 9, "ccc1", "mmm3", 203)
    assert last.status == "success", last.log
    applied = {
        number: json.loads((repo / "reviewed" / number / "report.json").read_text())["items"]
        for number in ("8", "9")
    }
    assert [(i["index_name"], i["aoi_name"]) for i in applied["8"]] == [("SAVI", "Pune-East")]
    assert [(i["index_name"], i["aoi_name"]) for i in applied["9"]] == [("EVI", "Bengaluru-North")]
    found = ["pull request #8: the plan reviewed in run 102", "#9: the plan reviewed in run 103"]
    assert last.log.index(found[0]) < last.log.index(found[1])  # oldest merge first
    assert _labels(runner, 8) == _labels(runner, 9) == ["reconciler-applied"]
    assert "Nothing left" in last.log and _plan_exit(world, runner, state) == 0

    # A reviewed plan whose AOI was edited by hand after the review: refused, saying what
    # moved; what it would have done is shown on the pull request and not applied.
    spec = repo / "specs" / "spec.yaml"
    spec.write_text(
        spec.read_text().replace("dates: [2024-05-06]", "dates: [2024-05-06], revision: 1")
    )
    assert _pull_request(runner, base, 10, 104, "ddd1").status == "success"
    edit_legend_by_hand(world, api_key=SECRET)
    stale = _merge(runner, base, 10, "ddd1", "mmm4", 204)
    assert stale.status == "failure", stale.log
    assert "the saved plan is stale, nothing was applied" in stale.log
    assert "::warning title=reconciler::the reviewed plan of pull request #10 was refused" in (
        stale.log
    )
    assert _labels(runner, 10) == ["reconciler-refused"]
    assert _plan_exit(world, runner, state) == 2  # nothing unreviewed was applied
    (left,) = [
        c for c in _bot_comments(runner) if c["issue_number"] == 10 and "Merged" in c["body"]
    ]
    assert "remainder_of_run=204" in left["body"]
    assert left["body"].rstrip().endswith("<!-- reconciler-plan:remainder -->")

    # The next merge's run does not pick the handled pull requests up again.
    again = runner.run_job("apply", _github_context(base, "push", 206, "mmm6"))
    assert "pull request #" not in again.log, again.log


_STOPPED_APPLY = """#!/bin/sh
# The reviewed plan's apply, stopped by a SIGTERM (a cancelled job) once it reads the API.
count() {
  python3 -c 'import json, sys, urllib.request as u
print(json.load(u.urlopen(sys.argv[1] + "/_emulator/requests", timeout=10))["total"])' \\
    "$PIXXEL_API_URL"
}
if [ "$1" = apply ] && [ "${2#reviewed/}" != "$2" ]; then
  before=$(count)
  "$REAL_RECONCILER" "$@" &
  pid=$!
  n=0
  while [ "$(count)" = "$before" ] && [ "$n" -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
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
    """A SIGTERM ends the job: it is not a refused plan, so the pull request is not labelled
    as handled and nothing else is planned after it."""
    runner, base = github
    state = base["vars"]["RECONCILER_STATE"]
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
    assert "stopped by SIGTERM" in stopped.log, stopped.log
    assert "Plan what no reviewed plan covered [skipped]" in stopped.log
    assert _labels(runner, 7) == []  # picked up again by the next run
    assert _plan_exit(world, runner, state) == 2  # nothing was applied


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
    repo: Path, job: str, variables: dict[str, str], *options: str
) -> subprocess.CompletedProcess[str]:
    args = ["gitlab-ci-local", "--force-shell-executor", "--no-color", *options, job]
    for name, value in variables.items():
        args += ["--variable", f"{name}={value}"]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "NO_COLOR": "1"}
    for name in _CREDENTIALS:  # a job gets its cloud credentials from its ID token only
        env.pop(name, None)
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
    at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1, seconds=-len(gitlab.merge_requests))
    gitlab.merge_requests[iid] = {
        "iid": iid, "state": "merged", "sha": head, "merge_commit_sha": None,
        "squash_commit_sha": None, "merged_at": at.isoformat(), "labels": [], **commit_shas,
    }  # fmt: skip
    gitlab.commits[commit] = [gitlab.merge_requests[iid]]
    gitlab.pipelines[iid] = [{"id": pid, "sha": sha} for pid, sha, *_ in pipelines]
    for pid, _, job_id, status, plan in pipelines:
        gitlab.jobs[pid] = [{"id": job_id, "name": "plan", "status": status}]
        gitlab.artifacts[(job_id, "plan.json")] = plan


def _gitlab_variables(gitlab: FakeGitLab, world: Emulator, s3: S3) -> dict[str, str]:
    """What every job of a pipeline gets: the API, GitLab's API, the state in S3 and the
    roles. No static cloud credentials: the SDK exchanges the ID token
    (AssumeRoleWithWebIdentity on the S3 server's STS) for the role's."""
    where = {k: v for k, v in s3.env.items() if k not in _CREDENTIALS}
    return {
        "PIXXEL_API_URL": world.url,
        "PIXXEL_PLAN_API_KEY": SECRET,
        "GITLAB_TOKEN": "glpat-fake",
        "CI_API_V4_URL": gitlab.url,
        "CI_PROJECT_ID": "1217",
        **where,
        "AWS_ENDPOINT_URL_STS": s3.endpoint,
        "AWS_ID_TOKEN": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwcm9qZWN0In0.c2ln",
        "RECONCILER_STATE": s3.url(),
        "RECONCILER_STATE_ROLE": "arn:aws:iam::123456789012:role/reconciler-apply",
        "RECONCILER_STATE_READ_ROLE": "arn:aws:iam::123456789012:role/reconciler-plan",
    }


@pytest.mark.slow
def test_gitlab_pipeline_runs_with_gitlab_ci_local(
    gitlab_repo: Path, world: Emulator, s3: S3
) -> None:
    """Acceptance: gitlab-ci-local runs the example pipeline's plan job green against the
    emulator, with the state in S3 reached through the job's ID token; then the comment is
    updated, the reviewed plans applied, what is left shown, drift reported."""
    with FakeGitLab(token="glpat-fake", project_id="1217") as gitlab:
        common = _gitlab_variables(gitlab, world, s3)
        # A merge request pipeline of an unprotected branch: no protected PIXXEL_API_KEY.
        mr = {**common, "CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7"}
        # Someone else's note ending with the marker: never ours to update.
        theirs = {"id": 1, "system": False, "author": {"id": 7}, "updates": 0,
                  "body": "copied:\n<!-- reconciler-plan -->"}  # fmt: skip
        gitlab.notes[7] = [theirs]

        validated = _gitlab_ci_local(gitlab_repo, "validate", mr)
        assert validated.returncode == 0, validated.stdout + validated.stderr
        # The report goes to its file; the job's log (stderr) says the same as text.
        assert "is valid: 1 file, 2 AOIs, 4 visualizations" in validated.stderr

        # A misspelt AOI: the job fails, and the Code Quality report the merge request shows
        # names it at its line (the job keeps it as artifacts:reports:codequality, always).
        pipeline = yaml.safe_load((gitlab_repo / ".gitlab-ci.yml").read_text())
        kept = pipeline["validate"]["artifacts"]
        assert kept["reports"]["codequality"] == "gl-code-quality-report.json"
        assert kept["when"] == "always"
        spec_file = gitlab_repo / "specs" / "spec.yaml"
        committed = spec_file.read_text()
        spec_file.write_text(committed.replace("{name: Bengaluru-North}", "{name: Bengaluru-Nort}"))
        misspelt = _gitlab_ci_local(gitlab_repo, "validate", mr)
        spec_file.write_text(committed)
        assert misspelt.returncode != 0, misspelt.stdout + misspelt.stderr
        (entry,) = json.loads((gitlab_repo / "gl-code-quality-report.json").read_text())
        assert entry["description"] == "unknown AOI 'Bengaluru-Nort' (closest: Bengaluru-North)"
        assert entry["location"] == {"path": "specs/spec.yaml", "lines": {"begin": 2}}
        assert "specs/spec.yaml:2:10: unknown AOI 'Bengaluru-Nort'" in misspelt.stderr

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
        push = {**common, "PIXXEL_API_KEY": SECRET, "CI_PIPELINE_SOURCE": "push",
                "CI_DEFAULT_BRANCH": "main", "CI_PIPELINE_ID": "900"}  # fmt: skip
        applied = _gitlab_ci_local(gitlab_repo, "apply", push)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "fetched plan.json of merge request !7 (job 5001)" in applied.stdout
        assert "Apply complete: 1 created, 0 adopted, 1 rolled back" in applied.stdout
        assert "Nothing left" in applied.stdout and "WARNING" not in applied.stdout
        assert gitlab.merge_requests[7]["labels"] == ["reconciler-applied"]

        # Two merges in a row whose first apply job was cancelled: the next apply job applies
        # both reviewed plans, oldest merge first.
        main_spec = spec.read_text()
        with_evi = {
            9: main_spec.replace(
                "- index: True-Color\n", "- index: True-Color\n      - index: EVI\n"
            ),
            10: main_spec.replace("- index: NDWI\n", "- index: NDWI\n      - index: EVI\n"),
        }
        reviewed = {}
        for iid, text in with_evi.items():
            spec.write_text(text)
            _commit(gitlab_repo, f"!{iid}")
            review = {**mr, "CI_MERGE_REQUEST_IID": str(iid)}
            assert _gitlab_ci_local(gitlab_repo, "plan", review).returncode == 0
            reviewed[iid] = artifact.read_bytes()
        spec.write_text(with_evi[9])
        first = _commit(gitlab_repo, "merge !9")
        spec.write_text(
            with_evi[9].replace("- index: NDWI\n", "- index: NDWI\n      - index: EVI\n")
        )
        both = _commit(gitlab_repo, "merge !10")
        _merged(gitlab, 9, merge_commit_sha=first, head="head9",
                pipelines=[(309, "head9", 5009, "success", reviewed[9])])  # fmt: skip
        _merged(gitlab, 10, merge_commit_sha=both, head="head10",
                pipelines=[(310, "head10", 5010, "success", reviewed[10])])  # fmt: skip
        caught_up = _gitlab_ci_local(gitlab_repo, "apply", push)
        assert caught_up.returncode == 0, caught_up.stdout + caught_up.stderr
        out = caught_up.stdout
        assert out.index("merge request !9 (job 5009)") < out.index("merge request !10 (job 5010)")
        assert out.count("Apply complete: 1 created, 0 adopted, 0 rolled back") == 2
        assert "Nothing left" in out
        assert (
            gitlab.merge_requests[9]["labels"]
            == gitlab.merge_requests[10]["labels"]
            == ["reconciler-applied"]
        )

        # Merged when the last push's plan never finished: the plan of an earlier push is not
        # applied, nor is the merge's change unreviewed: the job shows it, says so on the merge
        # request and fails; the manual job of that pipeline applies exactly the plan shown.
        spec.write_text(
            spec.read_text().replace("- index: NDWI\n", "- index: NDWI\n      - index: SAVI\n")
        )
        second = _commit(gitlab_repo, "merge !8")
        _merged(gitlab, 8, squash_commit_sha=second, head="head8b", pipelines=[
            (402, "head8b", 6002, "canceled", b""),
            (401, "head8a", 6001, "success", artifact.read_bytes()),  # an outdated plan
        ])  # fmt: skip
        left = _gitlab_ci_local(gitlab_repo, "apply", push)
        assert left.returncode != 0, left.stdout + left.stderr
        log = left.stdout + left.stderr
        assert "the plan job of merge request !8's last pipeline (402) is canceled" in log
        assert "WARNING: merge request !8 has no reviewed plan" in left.stdout
        assert "ERROR: the default branch calls for changes that no reviewed plan" in left.stdout
        assert "Apply complete" not in left.stdout
        assert gitlab.merge_requests[8]["labels"] == ["reconciler-no-plan"]
        (note,) = gitlab.notes[8]
        assert note["body"].startswith("**Merged, but not everything was applied.**")
        assert "+ SAVI over all assets" in note["body"]
        shown = gitlab_repo / ".gitlab-ci-local" / "artifacts" / "apply" / "remainder.json"
        gitlab.jobs[900] = [{"id": 7001, "name": "apply", "status": "failed"}]
        gitlab.artifacts[(7001, "remainder.json")] = shown.read_bytes()
        remainder = _gitlab_ci_local(
            gitlab_repo, "apply:remainder", push, "--manual", "apply:remainder"
        )
        assert remainder.returncode == 0, remainder.stdout + remainder.stderr
        assert "Apply complete: 1 created, 0 adopted, 0 rolled back" in remainder.stdout
        report = json.loads((gitlab_repo / "remainder-report.json").read_text())
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
        assert "### reconciler drift: moved (1 moved)" in drift.stdout
        drift_md = gitlab_repo / ".gitlab-ci-local" / "artifacts" / "drift" / "drift.md"
        assert "edited since the last rollback" in drift_md.read_text()
        logs = applied.stdout + left.stdout + remainder.stdout + drift.stdout + planned.stdout
        assert SECRET not in logs


def _gitlab_script(
    gitlab: FakeGitLab, tmp_path: Path, *args: str, sha: str = "c0ffee"
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "CI_API_V4_URL": gitlab.url, "CI_PROJECT_ID": "5",
           "CI_COMMIT_SHA": sha, "GITLAB_TOKEN": "glpat-fake",
           "CI_DEFAULT_BRANCH": "main"}  # fmt: skip
    return subprocess.run(
        [sys.executable, str(GITLAB_DIR / "ci" / "reconciler_gitlab.py"), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_gitlab_pending_plans_are_the_last_reviewed_plan_of_each_unhandled_merge(
    tmp_path: Path,
) -> None:
    """Oldest merge first; a labelled one is done; a failed plan job is no plan, never an
    older push's; then a label marks each one handled."""
    with FakeGitLab(token="glpat-fake", project_id="5") as gitlab:
        _merged(gitlab, 4, merge_commit_sha="m4", head="h4",
                pipelines=[(40, "h4", 400, "success", b'{"plan": 4}')])  # fmt: skip
        _merged(gitlab, 3, merge_commit_sha="m3", head="h3",
                pipelines=[(30, "h3", 300, "success", b'{"plan": 3}')])  # fmt: skip
        _merged(gitlab, 5, merge_commit_sha="m5", head="h5b", pipelines=[
            (51, "h5b", 510, "failed", b""), (50, "h5a", 500, "success", b"older"),
        ])  # fmt: skip
        _merged(gitlab, 6, merge_commit_sha="m6", head="h6",
                pipelines=[(60, "h6", 600, "success", b'{"plan": 6}')])  # fmt: skip
        gitlab.merge_requests[6]["labels"] = ["reconciler-applied"]
        gitlab.merge_requests[3]["merged_at"] = "2000-01-01T00:00:00+00:00"  # past retention
        gitlab.merge_requests[4]["merged_at"] = gitlab.merge_requests[5]["merged_at"]
        found = _gitlab_script(gitlab, tmp_path, "pending-plans", "reviewed")
        assert found.returncode == 0, found.stderr
        pending = (tmp_path / "reviewed" / "pending.txt").read_text().splitlines()
        assert pending == ["4 reviewed/4/plan.json", "5 -"]
        assert (tmp_path / "reviewed" / "4" / "plan.json").read_bytes() == b'{"plan": 4}'
        assert "the plan job of merge request !5's last pipeline (51) is failed" in found.stdout
        labelled = _gitlab_script(gitlab, tmp_path, "label", "5", "no-plan")
        assert labelled.returncode == 0 and gitlab.merge_requests[5]["labels"] == [
            "reconciler-no-plan"
        ]
        wrong = _gitlab_script(gitlab, tmp_path, "label", "5", "done")
        assert wrong.returncode == 1 and "one of applied, refused, failed, no-plan" in wrong.stderr
        assert "glpat" not in found.stdout + found.stderr + wrong.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("merge_request", "noted"),
    [
        ({"merge_commit_sha": "c0ffee"}, True),
        ({"squash_commit_sha": "c0ffee"}, True),
        ({"sha": "c0ffee"}, True),  # fast-forwarded: the head is the commit itself
        ({"merge_commit_sha": "other"}, False),  # merely contains the commit
        ({"merge_commit_sha": "c0ffee", "state": "opened"}, False),
    ],
)
def test_gitlab_note_goes_only_to_the_merge_request_this_commit_merged(
    tmp_path: Path, merge_request: dict[str, str], noted: bool
) -> None:
    with FakeGitLab(token="glpat-fake", project_id="5") as gitlab:
        gitlab.commits["c0ffee"] = [
            {"iid": 3, "state": "merged", "sha": "head3", "merge_commit_sha": None,
             "squash_commit_sha": None, **merge_request}
        ]  # fmt: skip
        (tmp_path / "left.md").write_text("what is left\n")
        result = _gitlab_script(gitlab, tmp_path, "note-merged", "left.md")
    assert result.returncode == 0, result.stderr
    assert bool(gitlab.notes.get(3)) is noted
    if not noted:
        assert "this commit merged no merge request" in result.stdout


@pytest.mark.slow
def test_gitlab_sharded_pipeline_plans_notes_applies_and_drifts_by_shard(
    gitlab_repo: Path, world: Emulator, s3: S3
) -> None:
    """gitlab-ci-local runs the sharded pipeline: every shard's plan, one note of them all;
    after the merge each shard applies its reviewed plan; drift fails only the drifting shard."""
    shutil.move(gitlab_repo / "sharded.gitlab-ci.yml", gitlab_repo / ".gitlab-ci.yml")
    _commit(gitlab_repo, "sharded")
    with FakeGitLab(token="glpat-fake", project_id="1217") as gitlab:
        common = _gitlab_variables(gitlab, world, s3)
        mr = {**common, "CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7"}
        noted = _gitlab_ci_local(gitlab_repo, "note", mr, "--needs")
        assert noted.returncode == 0, noted.stdout + noted.stderr
        (note,) = gitlab.notes[7]
        assert note["body"].startswith("### reconciler plan: 1 to create, 1 to roll back")
        assert "The plans of shards 1-4 of 4, merged: 2 AOIs." in note["body"]
        artifacts = gitlab_repo / ".gitlab-ci-local" / "artifacts"
        reviewed = {
            i: next(artifacts.glob(f"*/shard-{i}/plan.json")).read_bytes() for i in range(1, 5)
        }

        # Merged: each shard's apply job fetches its shard's plan job's plan.json, applies it.
        spec = gitlab_repo / "specs" / "spec.yaml"
        spec.write_text("# merged\n" + spec.read_text())
        merged = _commit(gitlab_repo, "merge !7")
        _merged(gitlab, 7, merge_commit_sha=merged, head="head7", pipelines=[])
        gitlab.pipelines[7] = [{"id": 301, "sha": "head7"}]
        gitlab.jobs[301] = [
            {"id": 5000 + i, "name": f"plan: [{i}]", "status": "success"} for i in range(1, 5)
        ]
        for i, plan in reviewed.items():
            gitlab.artifacts[(5000 + i, f"shard-{i}/plan.json")] = plan
        push = {**common, "PIXXEL_API_KEY": SECRET, "CI_PIPELINE_SOURCE": "push",
                "CI_DEFAULT_BRANCH": "main", "CI_PIPELINE_ID": "900"}  # fmt: skip
        applied = _gitlab_ci_local(gitlab_repo, "apply", push)
        log = applied.stdout + applied.stderr
        assert applied.returncode == 0, log
        assert "1 created, 0 adopted, 0 rolled back" in log  # Pune-East's shard
        assert "0 created, 0 adopted, 1 rolled back" in log  # Bengaluru-North's
        assert log.count("is up to date.") == 4
        assert s3.fs().exists(s3.url().replace("state.json", "state.shard-3-of-4.json"))

        # Drift: a hand edit in Bengaluru-North (shard 3) fails the scheduled pipeline.
        schedule = {**common, "CI_PIPELINE_SOURCE": "schedule"}
        calm = _gitlab_ci_local(gitlab_repo, "drift", schedule)
        assert calm.returncode == 0, calm.stdout + calm.stderr
        edit_legend_by_hand(world, api_key=SECRET)
        drifted = _gitlab_ci_local(gitlab_repo, "drift", schedule)
        assert drifted.returncode != 0
        assert "moved" in drifted.stdout
