"""Running the example pipelines' jobs locally, for tests/test_pipelines.py.

``WorkflowRunner`` runs one job of a GitHub Actions workflow the way a runner does: steps in
order, ``run:`` scripts with ``bash -eo pipefail`` and GitHub's files (GITHUB_OUTPUT,
GITHUB_STEP_SUMMARY), step ``if:`` conditions, ``${{ }}`` expressions from a context the test
gives. The actions it meets are played by small stand-ins: checkout and setup-python do
nothing (the test prepared the directory and Python), cache and artifacts are directories,
and ``actions/github-script`` runs the workflow's own JavaScript with Node against an
in-memory GitHub (comments, pull requests, runs) kept in a JSON file.

``FakeGitLab`` is the little of GitLab's REST API that ci/reconciler_gitlab.py calls, served
on 127.0.0.1 for gitlab-ci-local's jobs to reach.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

# --- GitHub Actions expressions ------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\)|,)|(?P<num>\d+)"
    r"|(?P<call>[A-Za-z]+(?=\())|(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*))"
)


class Expression:
    """A small evaluator of the expression language: enough for the example workflow, and
    strict: anything it does not know fails the test instead of evaluating wrongly."""

    def __init__(self, text: str, context: dict[str, Any]) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise AssertionError(f"unsupported expression: {text!r}")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.context = context
        self.i = 0

    def evaluate(self) -> Any:
        value = self._or()
        assert self.i == len(self.tokens), f"trailing tokens in {self.tokens}"
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def _or(self) -> Any:
        value = self._and()
        while self._peek() == "||":
            self.i += 1
            right = self._and()
            value = value if _truthy(value) else right
        return value

    def _and(self) -> Any:
        value = self._cmp()
        while self._peek() == "&&":
            self.i += 1
            right = self._cmp()
            value = right if _truthy(value) else value
        return value

    def _cmp(self) -> Any:
        value = self._unary()
        while self._peek() in ("==", "!="):
            op = self.tokens[self.i][1]
            self.i += 1
            right = self._unary()
            same = _text(value).lower() == _text(right).lower()
            value = same if op == "==" else not same
        return value

    def _unary(self) -> Any:
        if self._peek() == "!":
            self.i += 1
            return not _truthy(self._unary())
        if self._peek() == "(":
            self.i += 1
            value = self._or()
            assert self._peek() == ")"
            self.i += 1
            return value
        kind, token = self.tokens[self.i]
        self.i += 1
        if kind == "str":
            return token[1:-1].replace("''", "'")
        if kind == "num":
            return int(token)
        if kind == "call":
            return self._call(token)
        if token in ("true", "false"):
            return token == "true"
        found: Any = self.context
        for part in token.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        return found

    def _call(self, name: str) -> Any:
        assert self._peek() == "("
        self.i += 1
        args: list[Any] = []
        while self._peek() != ")":
            args.append(self._or())
            if self._peek() == ",":
                self.i += 1
        self.i += 1
        status = self.context.get("job_status", "success")
        if name == "format":
            return re.sub(r"\{(\d+)\}", lambda m: _text(args[1:][int(m.group(1))]), args[0])
        functions = {
            "always": True,
            "success": status == "success",
            "failure": status == "failure",
            "cancelled": False,
        }
        assert name in functions and not args, f"unsupported function {name}"
        return functions[name]


def _truthy(value: Any) -> bool:
    return value not in (None, False, "", 0)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def substitute(text: str, context: dict[str, Any]) -> str:
    """Replace every ``${{ … }}`` in ``text``."""
    return re.sub(
        r"\$\{\{(.*?)\}\}", lambda m: _text(Expression(m.group(1), context).evaluate()), text
    )


def condition(text: str | None, context: dict[str, Any]) -> bool:
    if text is None:
        return bool(context.get("job_status", "success") == "success")
    text = str(text).strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    expression = Expression(text, context)
    uses_status = any(
        kind == "call" and token in ("always", "success", "failure", "cancelled")
        for kind, token in expression.tokens
    )
    result = _truthy(expression.evaluate())
    if not uses_status:  # GitHub adds success() unless a status function is named
        result = result and context.get("job_status", "success") == "success"
    return result


# --- the runner ----------------------------------------------------------------------------------

_NODE_WRAPPER = r"""
const fs = require('fs');
const path = require('path');
const statePath = process.env.FAKE_GITHUB_STATE;
const state = JSON.parse(fs.readFileSync(statePath, 'utf8'));
const outputs = {};
const core = {
  info: (m) => console.log(m),
  setOutput: (k, v) => { outputs[k] = String(v); },
  setFailed: (m) => { console.error(m); process.exitCode = 1; },
};
const byIssue = (n) => state.comments.filter((c) => c.issue_number === n);
const github = {
  paginate: async (fn, params) => (await fn(params)).data,
  rest: {
    issues: {
      listComments: async ({ issue_number }) => ({ data: byIssue(issue_number) }),
      createComment: async ({ issue_number, body }) => {
        const c = { id: state.next_id++, issue_number, body,
                    user: { login: 'github-actions[bot]', type: 'Bot' } };
        state.comments.push(c);
        return { data: c };
      },
      updateComment: async ({ comment_id, body }) => {
        const c = state.comments.find((x) => x.id === comment_id);
        c.body = body;
        c.updates = (c.updates || 0) + 1;
        return { data: c };
      },
      listForRepo: async ({ state: wanted, labels }) => ({
        data: state.issues.filter((i) => i.state === wanted
          && i.labels.some((l) => l.name === labels)),
      }),
      create: async ({ title, body, labels }) => {
        const issue = { number: state.next_id++, title, body, state: 'open', updates: 0,
                        labels: labels.map((name) => ({ name })) };
        state.issues.push(issue);
        return { data: issue };
      },
      update: async ({ issue_number, body, state: wanted }) => {
        const issue = state.issues.find((i) => i.number === issue_number);
        if (!issue) throw new Error(`no issue #${issue_number}`);
        if (body !== undefined) { issue.body = body; issue.updates += 1; }
        if (wanted !== undefined) issue.state = wanted;
        return { data: issue };
      },
      addLabels: async ({ issue_number, labels }) => {
        const pull = state.pulls.find((p) => p.number === issue_number);
        if (!pull) throw new Error(`no pull request #${issue_number}`);
        pull.labels = [...(pull.labels || []), ...labels.map((name) => ({ name }))];
        return { data: pull.labels };
      },
    },
    pulls: {
      // Closed pull requests into `base`, most recently updated first, a page at a time.
      list: async ({ state: wanted, base, per_page, page }) => {
        const all = state.pulls
          .filter((p) => wanted === 'closed' && (p.base || 'main') === base)
          .map((p) => ({ labels: [], updated_at: p.merged_at, ...p }))
          .sort((a, b) => Date.parse(b.updated_at) - Date.parse(a.updated_at));
        return { data: all.slice((page - 1) * per_page, page * per_page) };
      },
    },
    repos: {
      listPullRequestsAssociatedWithCommit: async ({ commit_sha }) =>
        ({ data: state.pulls.filter((p) => p.merge_commit_sha === commit_sha) }),
    },
    actions: {
      listWorkflowRunsForRepo: async ({ event, head_sha }) => ({
        data: {
          workflow_runs: state.runs.filter((r) => r.event === event && r.head_sha === head_sha),
        },
      }),
      // Artifacts are the runner's upload directories; each is also kept as a zip.
      listWorkflowRunArtifacts: async ({ run_id }) => {
        const dir = path.join(process.env.ARTIFACTS, String(run_id));
        const names = fs.existsSync(dir)
          ? fs.readdirSync(dir).filter((n) => !n.endsWith('.zip')) : [];
        return { data: { artifacts: names.map((name) => (
          { id: `${run_id}/${name}`, name, expired: false })) } };
      },
      downloadArtifact: async ({ artifact_id, archive_format }) => {
        if (archive_format !== 'zip') throw new Error('artifacts come as zip archives');
        return { data: fs.readFileSync(path.join(process.env.ARTIFACTS, `${artifact_id}.zip`)) };
      },
    },
  },
};
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
(async () => {
  try {
    const script = fs.readFileSync(process.env.SCRIPT, 'utf8');
    await new AsyncFunction('require', 'github', 'context', 'core', script)(
      require, github, state.context, core);
  } catch (e) {
    console.error(e);
    process.exitCode = 1;
  }
  fs.writeFileSync(statePath, JSON.stringify(state));
  fs.writeFileSync(process.env.OUTPUTS, JSON.stringify(outputs));
})();
"""


@dataclass
class StepResult:
    name: str
    outcome: str  # success, failure, skipped
    output: str = ""


@dataclass
class JobResult:
    status: str  # success or failure
    steps: list[StepResult] = field(default_factory=list)
    summary: str = ""

    @property
    def log(self) -> str:
        return "\n".join(f"--- {s.name} [{s.outcome}]\n{s.output}" for s in self.steps)


class WorkflowRunner:
    """Runs jobs of one workflow file in ``workdir``, sharing caches and artifacts between runs.

    ``github`` is the fake GitHub's state: ``comments``, ``pulls`` and ``runs`` (see the Node
    wrapper above); tests read and change it between runs.
    """

    def __init__(self, workflow: Path, workdir: Path, scratch: Path, env: dict[str, str]):
        self.workflow = yaml.safe_load(workflow.read_text(encoding="utf-8"))
        self.workdir = workdir
        self.scratch = scratch
        self.base_env = env
        self.artifacts = scratch / "artifacts"
        self.cache = scratch / "cache"
        self.github: dict[str, Any] = {
            "comments": [], "pulls": [], "runs": [], "issues": [], "next_id": 1
        }  # fmt: skip
        #: What aws-actions/configure-aws-credentials exports for the role it assumes.
        self.aws_credentials: dict[str, str] = {}
        self._exported: dict[str, dict[str, str]] = {}
        self._left_over: set[Path] = set()

    def jobs_for(self, context: dict[str, Any]) -> list[str]:
        """The jobs whose ``if:`` holds for this event, in file order."""
        jobs = self.workflow["jobs"]
        return [name for name, job in jobs.items() if condition(job.get("if"), dict(context))]

    def run_scripts(self) -> Iterator[tuple[str, str, str]]:
        """(job, step name, script) of every run: step, for checks on the scripts themselves."""
        for job_name, job in self.workflow["jobs"].items():
            for step in job["steps"]:
                if "run" in step:
                    yield job_name, step.get("name", ""), step["run"]

    def run_job(self, job_name: str, context: dict[str, Any]) -> JobResult:
        """Run one job in a checkout as the test left it: what earlier jobs wrote is gone (a
        runner starts each job from a fresh checkout); what this one writes stays for the
        test to read until the next job."""
        for left in self._left_over:
            if left.is_dir():
                shutil.rmtree(left)
            else:
                left.unlink(missing_ok=True)
        before = set(self.workdir.iterdir())
        result = self._run_job(job_name, context)
        self._left_over = set(self.workdir.iterdir()) - before
        return result

    def _run_job(self, job_name: str, context: dict[str, Any]) -> JobResult:
        job = self.workflow["jobs"][job_name]
        context = {**context, "steps": {}, "job_status": "success"}
        result = JobResult("success")
        exported: dict[str, str] = {}  # what steps set for the later ones (GITHUB_ENV)
        for n, step in enumerate(job["steps"]):
            name = step.get("name") or step.get("uses") or f"step {n}"
            if not condition(step.get("if"), context):
                result.steps.append(StepResult(name, "skipped"))
                continue
            env: dict[str, str] = {}
            for scope in (self.workflow.get("env", {}), job.get("env", {}), step.get("env", {})):
                for key, value in scope.items():
                    env[key] = substitute(str(value), {**context, "env": env})
            context["env"] = env
            if "run" in step:
                outcome, output, outputs = self._run(step["run"], {**exported, **env}, result)
            else:
                with_ = {
                    k: substitute(str(v), context) for k, v in (step.get("with") or {}).items()
                }
                outcome, output, outputs = self._uses(step["uses"], with_, context)
                exported.update(self._exported.pop(step["uses"], {}))
            if outcome == "failure" and step.get("continue-on-error"):
                outcome = "success"
            if "id" in step:
                context["steps"][step["id"]] = {"outputs": outputs, "outcome": outcome}
            result.steps.append(StepResult(name, outcome, output))
            if outcome == "failure":
                context["job_status"] = result.status = "failure"
        return result

    def _run(
        self, script: str, env: dict[str, str], result: JobResult
    ) -> tuple[str, str, dict[str, str]]:
        assert "${{" not in script, "scripts must read expressions through env"
        output_file = self.scratch / "github_output"
        summary_file = self.scratch / "step_summary"
        output_file.write_text("")
        summary_file.write_text("")
        script_file = self.scratch / "step.sh"
        script_file.write_text(script)
        completed = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
            cwd=self.workdir,
            env={
                **self.base_env,
                **env,
                "GITHUB_OUTPUT": str(output_file),
                "GITHUB_STEP_SUMMARY": str(summary_file),
                "CI": "true",
                "GITHUB_ACTIONS": "true",
            },
            capture_output=True,
            text=True,
            timeout=300,
        )
        result.summary += summary_file.read_text()
        outputs = dict(
            line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line
        )
        outcome = "success" if completed.returncode == 0 else "failure"
        return outcome, completed.stdout + completed.stderr, outputs

    def _uses(
        self, action: str, with_: dict[str, str], context: dict[str, Any]
    ) -> tuple[str, str, dict[str, str]]:
        name = action.split("@")[0]
        if name in ("actions/checkout", "actions/setup-python"):
            return "success", "", {}
        if name == "aws-actions/configure-aws-credentials":
            # Credentials for the role, as the action exports them: the test's S3 server's.
            assert with_.get("role-to-assume") and with_.get("aws-region"), with_
            assert self.aws_credentials, "the test gives no AWS credentials for the role"
            region = with_["aws-region"]
            self._exported[action] = {
                **self.aws_credentials,
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
            }
            return "success", f"assumed {with_['role-to-assume']}", {}
        if name == "actions/cache/restore":
            saved = sorted(self.cache.glob(f"{with_['restore-keys']}*"), key=os.path.getmtime)
            if saved:
                target = self.workdir / with_["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(saved[-1], target)
            return "success", f"restored {saved[-1].name if saved else 'nothing'}", {}
        if name == "actions/cache/save":
            source = self.workdir / with_["path"]
            if source.exists():
                self.cache.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, self.cache / with_["key"])
            return "success", "", {}
        if name == "actions/upload-artifact":
            store = self.artifacts / str(context["github"]["run_id"]) / with_["name"]
            for pattern in with_["path"].split():
                for found in sorted(self.workdir.glob(pattern)):
                    # A directory is uploaded with everything in it, as the action does.
                    files = sorted(found.rglob("*")) if found.is_dir() else [found]
                    for file in (f for f in files if f.is_file()):
                        target = store / file.relative_to(self.workdir)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy(file, target)
            if store.is_dir():  # what downloadArtifact serves, as GitHub's API does
                with zipfile.ZipFile(f"{store}.zip", "w") as archive:
                    for file in sorted(store.rglob("*")):
                        if file.is_file():
                            archive.write(file, file.relative_to(store).as_posix())
            return "success", "", {}
        if name == "actions/download-artifact":
            if "pattern" in with_:
                # Every artifact of the run matching it, each into a directory of its name
                # (without merge-multiple, as the action does).
                assert with_.get("merge-multiple", "false") == "false", with_
                run = self.artifacts / with_["run-id"]
                matching = sorted(p for p in run.glob(with_["pattern"]) if p.is_dir())
                for each in matching:
                    target = self.workdir / with_.get("path", ".") / each.name
                    shutil.copytree(each, target, dirs_exist_ok=True)
                return "success", f"{len(matching)} artifacts", {}
            store = self.artifacts / with_["run-id"] / with_["name"]
            if not store.is_dir():
                return "failure", f"no artifact {with_['name']} in run {with_['run-id']}", {}
            target = self.workdir / with_.get("path", ".")
            shutil.copytree(store, target, dirs_exist_ok=True)
            return "success", "", {}
        if name == "actions/github-script":
            return self._github_script(with_["script"], context)
        raise AssertionError(f"no stand-in for action {action}")

    def _github_script(
        self, script: str, context: dict[str, Any]
    ) -> tuple[str, str, dict[str, str]]:
        state_file = self.scratch / "github.json"
        outputs_file = self.scratch / "outputs.json"
        script_file = self.scratch / "script.js"
        wrapper = self.scratch / "wrapper.js"
        github = context["github"]
        number = github.get("event", {}).get("pull_request", {}).get("number")
        self.github["context"] = {
            "repo": {"owner": "team", "repo": "specs"},
            "issue": {"number": number},
            "sha": github["sha"],
            "workflow": self.workflow["name"],
        }
        state_file.write_text(json.dumps(self.github))
        script_file.write_text(script)
        wrapper.write_text(_NODE_WRAPPER)
        completed = subprocess.run(
            ["node", str(wrapper)],
            cwd=self.workdir,
            env={
                **context.get("env", {}),  # the workflow's, job's and step's env, as on GitHub
                "PATH": os.environ["PATH"],
                "FAKE_GITHUB_STATE": str(state_file),
                "SCRIPT": str(script_file),
                "OUTPUTS": str(outputs_file),
                "ARTIFACTS": str(self.artifacts),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.github = json.loads(state_file.read_text())
        outputs = json.loads(outputs_file.read_text()) if outputs_file.exists() else {}
        outcome = "success" if completed.returncode == 0 else "failure"
        return outcome, completed.stdout + completed.stderr, outputs


# --- a little of GitLab's API --------------------------------------------------------------------


#: What a GitLab listing answers: its items, each as JSON.
Listing = list[dict[str, Any]]


class FakeGitLab:
    """Merge requests (listed, and labelled), their notes, the merge requests of a commit, a
    merge request's pipelines, a pipeline's jobs and a job's artifact file; ``/user`` says who
    the token belongs to.

    Requests must carry ``PRIVATE-TOKEN: <token>``, whose user is ``user_id``.
    ``merge_requests`` maps an iid to the merge request (``state``, ``sha``, ``merged_at``,
    ``labels``); ``notes`` an iid to its notes (``author.id`` says who wrote each); ``commits``
    a commit sha to the merge requests GitLab associates with it; ``pipelines`` an iid to its
    pipelines (``id``, ``sha``); ``jobs`` a pipeline id to its jobs (``id``, ``name``,
    ``status``); ``artifacts`` (job id, path) to the file's bytes.
    """

    user_id = 42

    def __init__(self, token: str, project_id: str) -> None:
        self.token = token
        self.project = f"/api/v4/projects/{project_id}"
        self.merge_requests: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, Listing] = {}
        self.commits: dict[str, Listing] = {}
        self.pipelines: dict[int, Listing] = {}
        self.jobs: dict[int, Listing] = {}
        self.artifacts: dict[tuple[int, str], bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v4"

    def __enter__(self) -> FakeGitLab:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                path = self.path.partition("?")[0]
                fake.requests.append((method, path))
                if self.headers.get("PRIVATE-TOKEN") != fake.token:
                    return self._send(401, {"message": "401 Unauthorized"})
                if path == "/api/v4/user" and method == "GET":
                    return self._send(200, {"id": fake.user_id, "username": "project_bot"})
                if not path.startswith(fake.project + "/"):
                    return self._send(404, {"message": "404 Project Not Found"})
                rest = path[len(fake.project) + 1 :]
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                m = re.fullmatch(r"merge_requests/(\d+)/notes(?:/(\d+))?", rest)
                if m:
                    notes = fake.notes.setdefault(int(m.group(1)), [])
                    if method == "GET":
                        return self._send(200, notes)
                    if method == "POST":
                        note = {"id": 1000 + sum(map(len, fake.notes.values())), "system": False}
                        author = {"id": fake.user_id}
                        notes.append({**note, "body": body["body"], "author": author, "updates": 0})
                        return self._send(201, notes[-1])
                    for note in notes:
                        if note["id"] == int(m.group(2) or 0):
                            note["body"], note["updates"] = body["body"], note["updates"] + 1
                            return self._send(200, note)
                    return self._send(404, {"message": "404 Not found"})
                m = re.fullmatch(r"merge_requests/(\d+)", rest)
                if m and method == "PUT" and int(m.group(1)) in fake.merge_requests:
                    mr = fake.merge_requests[int(m.group(1))]
                    mr["labels"] = [*mr.get("labels", []), *body["add_labels"].split(",")]
                    return self._send(200, mr)
                if rest == "merge_requests" and method == "GET":
                    merged = [mr for mr in fake.merge_requests.values() if mr["state"] == "merged"]
                    return self._send(200, merged)
                if method != "GET":
                    return self._send(405, {"message": "405 Method Not Allowed"})
                listings: dict[str, tuple[Mapping[Any, Listing], Callable[[str], object]]] = {
                    r"repository/commits/(\w+)/merge_requests": (fake.commits, str),
                    r"merge_requests/(\d+)/pipelines": (fake.pipelines, int),
                    r"pipelines/(\d+)/jobs": (fake.jobs, int),
                }
                for pattern, (table, key) in listings.items():
                    m = re.fullmatch(pattern, rest)
                    if m:
                        return self._send(200, table.get(key(m.group(1)), []))
                m = re.fullmatch(r"jobs/(\d+)/artifacts/(.+)", rest)
                if m and (int(m.group(1)), m.group(2)) in fake.artifacts:
                    data = fake.artifacts[(int(m.group(1)), m.group(2))]
                    return self._send(200, data, "application/octet-stream")
                return self._send(404, {"message": "404 Not found"})

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PUT(self) -> None:
                self._route("PUT")

        return Handler
