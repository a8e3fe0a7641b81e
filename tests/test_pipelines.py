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

from reconciler.emulator import Emulator
from tests.ci_runners import FakeGitLab, WorkflowRunner
from tests.planning import BENGALURU, NDVI_BENGALURU_AB, client_for, write_spec

ROOT = Path(__file__).resolve().parent.parent
GITHUB_WORKFLOW = ROOT / "examples" / "github" / ".github" / "workflows" / "reconciler.yml"
GITLAB_DIR = ROOT / "examples" / "gitlab"
KEY = "pipeline-key-0123456789"
BIN = str(Path(sys.executable).parent)  # where this environment's reconciler is

SPEC = """
aois:
  - aoi: {name: Bengaluru-North}
    visualizations:
      - index: NDVI
        assets: [Bengaluru-A, Bengaluru-B]
        rollback: [{mode: dynamic, dates: [2024-05-06]}]
      - index: True-Color
  - aoi: {name: Pune-East}
    visualizations:
      - index: NDWI
      - index: NDVI
"""


def _no_tool(name: str) -> str | None:
    return None if shutil.which(name) else name


def _edit_legend_by_hand(world: Emulator) -> None:
    with client_for(world, api_key=KEY) as client:
        client.update_metadata(
            BENGALURU,
            NDVI_BENGALURU_AB,
            mode="dynamic",
            legend={"2024_05_06": [{"min": 0, "max": 1, "color": "#000000", "label": "x"}]},
            dynamic_bins=1,
        )


@pytest.fixture
def world(make_emulator) -> Emulator:
    return make_emulator(api_keys=(KEY,))


# --- schemas -------------------------------------------------------------------------------------


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


def test_pipelines_keep_applies_serial_and_treat_exit_2_as_changes() -> None:
    github = yaml.safe_load(GITHUB_WORKFLOW.read_text())
    apply = github["jobs"]["apply"]
    assert apply["concurrency"] == {"group": "reconciler-apply", "cancel-in-progress": False}
    gitlab = yaml.safe_load((GITLAB_DIR / ".gitlab-ci.yml").read_text())
    assert gitlab["apply"]["resource_group"] == gitlab["apply:fresh"]["resource_group"]
    assert gitlab["drift"]["allow_failure"] == {"exit_codes": [2]}
    scripts = [" ".join(job.get("script", [])) for job in gitlab.values() if isinstance(job, dict)]
    assert any("--detailed-exitcode" in s and "-ne 2" in s for s in scripts)


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
        "secrets": {"PIXXEL_API_KEY": KEY},
        "vars": {"PIXXEL_API_URL": world.url},
        "inputs": {},
    }
    yield runner, base


def _github_context(base: dict[str, Any], event: str, run_id: int, sha: str, **event_data: Any):
    return {
        **base,
        "github": {
            "event_name": event,
            "run_id": run_id,
            "run_attempt": 1,
            "sha": sha,
            "server_url": "https://github.com",
            "repository": "team/specs",
            "token": "ghs_fake",
            "event": event_data,
        },
    }


def test_github_workflow_pull_request_merge_and_drift(
    github: tuple[WorkflowRunner, dict[str, Any]], world: Emulator
) -> None:
    runner, base = github
    for job, name, script in runner.run_scripts():
        assert "${{" not in script, f"{job}/{name}: expressions must reach scripts via env"
    repo = runner.workdir
    human = {"id": 999, "issue_number": 7, "body": "nice, see <!-- reconciler-plan -->",
             "user": {"type": "User"}}  # fmt: skip
    runner.github["comments"].append(human)

    def pull_request(run_id: int, sha: str):
        context = _github_context(base, "pull_request", run_id, sha, pull_request={"number": 7})
        assert runner.jobs_for(context) == ["plan"]
        runner.github["runs"].append(
            {"id": run_id, "run_number": run_id, "name": "reconciler", "event": "pull_request",
             "head_sha": sha}
        )  # fmt: skip
        return runner.run_job("plan", context)

    # First push: the plan is posted as a comment, kept as an artifact, summarised.
    first = pull_request(101, "aaa1")
    assert first.status == "success", first.log
    bot = [c for c in runner.github["comments"] if c["user"]["type"] == "Bot"]
    assert len(bot) == 1
    assert bot[0]["body"].startswith("### reconciler plan: 1 to create, 1 to roll back")
    assert "<!-- reconciler-plan -->" in bot[0]["body"]
    assert "+ create NDVI visualization" in first.summary
    assert (runner.artifacts / "101" / "reconciler-plan" / "plan.json").is_file()

    # A push with invalid specs: the same comment now says what is wrong, the job fails.
    write_spec(repo / "specs", SPEC.replace("index: NDWI", "index: NDWX"))
    broken = pull_request(102, "aaa2")
    assert broken.status == "failure"
    assert "::error file=" not in broken.log  # offline validation cannot know index names
    assert "reconciler plan failed (exit 1)" in broken.log
    bot = [c for c in runner.github["comments"] if c["user"]["type"] == "Bot"]
    assert len(bot) == 1 and bot[0]["updates"] == 1
    assert bot[0]["body"].startswith("### reconciler plan failed: 1 problem in the specs")
    assert "specs/spec.yaml:10:16: unknown index 'NDWX'" in bot[0]["body"]

    write_spec(repo / "specs", SPEC.replace("index: True-Color", "index: True-Color\n  - x: 1"))
    invalid = pull_request(103, "aaa3")
    assert invalid.status == "failure"
    assert "::error file=specs/spec.yaml,line=" in invalid.log  # an annotation on the diff

    # Fixed: one comment still, back to the plan; the human's comment is never touched.
    write_spec(repo / "specs", SPEC)
    fixed = pull_request(104, "aaa4")
    assert fixed.status == "success", fixed.log
    bot = [c for c in runner.github["comments"] if c["user"]["type"] == "Bot"]
    assert len(bot) == 1 and bot[0]["updates"] == 3
    assert bot[0]["body"].startswith("### reconciler plan: 1 to create")
    assert runner.github["comments"][0] == human

    # Merged, with a comment line another merge added meanwhile: the reviewed plan applies.
    (repo / "specs" / "spec.yaml").write_text("# merged\n" + (repo / "specs/spec.yaml").read_text())
    runner.github["pulls"].append(
        {"number": 7, "merged_at": "2025-01-01T00:00:00Z", "head": {"sha": "aaa4"},
         "merge_commit_sha": "mmm1"}
    )  # fmt: skip
    push = _github_context(base, "push", 201, "mmm1")
    assert runner.jobs_for(push) == ["apply"]
    applied = runner.run_job("apply", push)
    assert applied.status == "success", applied.log
    assert "Apply complete: 1 created, 0 adopted, 1 rolled back" in applied.log
    assert json.loads((repo / "report.json").read_text())["ok"] is True
    assert list(runner.cache.iterdir())  # the state is kept for the next jobs

    # A push that no pull request reviewed is refused, saying what to do instead.
    (repo / "plan.json").unlink()
    lone = runner.run_job("apply", _github_context(base, "push", 202, "mmm2"))
    assert lone.status == "failure" and "no reviewed plan for this commit" in lone.log

    # Schedule: no drift, then a legend edited by hand is reported.
    schedule = _github_context(base, "schedule", 301, "mmm2")
    assert runner.jobs_for(schedule) == ["drift"]
    calm = runner.run_job("drift", schedule)
    assert calm.status == "success", calm.log
    _edit_legend_by_hand(world)
    drift = runner.run_job("drift", _github_context(base, "schedule", 302, "mmm2"))
    assert drift.status == "failure"
    assert "::warning title=reconciler drift::" in drift.log
    assert "the visualization changed since the last rollback" in drift.summary

    # By hand, after a refused plan: plan the specs as they are and apply that.
    fresh = {
        **_github_context(base, "workflow_dispatch", 401, "mmm2"),
        "inputs": {"apply_fresh": True},
    }
    assert runner.jobs_for(fresh) == ["apply"]
    again = runner.run_job("apply", fresh)
    assert again.status == "success", again.log
    assert "0 created, 0 adopted, 1 rolled back" in again.log


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


def test_gitlab_pipeline_runs_with_gitlab_ci_local(gitlab_repo: Path, world: Emulator) -> None:
    """Acceptance: gitlab-ci-local runs the example pipeline's plan job green against the
    emulator; then the comment is updated, the reviewed plan applied, drift reported."""
    with FakeGitLab(token="glpat-fake", project_id="1217") as gitlab:
        common = {
            "PIXXEL_API_URL": world.url,
            "PIXXEL_API_KEY": KEY,
            "GITLAB_TOKEN": "glpat-fake",
            "CI_API_V4_URL": gitlab.url,
            "CI_PROJECT_ID": "1217",
        }
        mr = {**common, "CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7"}

        validated = _gitlab_ci_local(gitlab_repo, "validate", mr)
        assert validated.returncode == 0, validated.stdout + validated.stderr
        assert "is valid: 1 file, 2 AOIs, 4 visualizations" in validated.stdout

        planned = _gitlab_ci_local(gitlab_repo, "plan", mr)
        assert planned.returncode == 0, planned.stdout + planned.stderr
        assert "PASS" in planned.stdout and "plan" in planned.stdout
        assert "+ create NDVI visualization" in planned.stdout  # the plan, in the job log
        (note,) = gitlab.notes[7]
        assert note["body"].startswith("### reconciler plan: 1 to create, 1 to roll back")
        assert note["body"].endswith("<!-- reconciler-plan -->\n")
        artifact = gitlab_repo / ".gitlab-ci-local" / "artifacts" / "plan" / "plan.json"
        assert artifact.is_file()

        # Another push: the same note is updated, not a second one added.
        again = _gitlab_ci_local(gitlab_repo, "plan", mr)
        assert again.returncode == 0, again.stdout + again.stderr
        assert len(gitlab.notes[7]) == 1 and gitlab.notes[7][0]["updates"] == 1

        # Merged (with an unrelated comment line): the reviewed plan is fetched and applied.
        spec = gitlab_repo / "specs" / "spec.yaml"
        spec.write_text("# merged\n" + spec.read_text())
        subprocess.run(
            ["git", "-c", "user.email=ci@e.com", "-c", "user.name=ci", "commit", "-qam", "merge"],
            cwd=gitlab_repo,
            check=True,
        )
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=gitlab_repo, capture_output=True, text=True
        ).stdout.strip()
        gitlab.commits[head] = [{"iid": 7, "state": "merged"}]
        gitlab.artifacts[("refs/merge-requests/7/head", "plan", "plan.json")] = (
            artifact.read_bytes()
        )
        (gitlab_repo / "plan.json").unlink()
        push = {**common, "CI_PIPELINE_SOURCE": "push"}
        applied = _gitlab_ci_local(gitlab_repo, "apply", push)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "fetched the plan reviewed in merge request !7" in applied.stdout
        assert "Apply complete: 1 created, 0 adopted, 1 rolled back" in applied.stdout

        # Schedule: no drift (green), then a hand edit is drift: a warning, not a failure.
        schedule = {**common, "CI_PIPELINE_SOURCE": "schedule"}
        calm = _gitlab_ci_local(gitlab_repo, "drift", schedule)
        assert calm.returncode == 0 and "PASS" in calm.stdout, calm.stdout + calm.stderr
        _edit_legend_by_hand(world)
        drift = _gitlab_ci_local(gitlab_repo, "drift", schedule)
        assert drift.returncode == 0, drift.stdout + drift.stderr
        assert "WARN" in drift.stdout and "PASS" not in drift.stdout
        drift_md = gitlab_repo / ".gitlab-ci-local" / "artifacts" / "drift" / "drift.md"
        assert "the visualization changed since the last rollback" in drift_md.read_text()
        assert KEY not in applied.stdout + drift.stdout + planned.stdout
