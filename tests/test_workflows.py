"""The GitHub workflows users run: actionlint passes (checkov: tests/test_checkov.py), actions
are pinned by commit, permissions are least-privilege, AWS is reached through OIDC, and no
untrusted input is interpolated into a shell."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
# The platform's own workflows (this repository's events); service-ci.yml is a reusable
# workflow the service repositories call (tests/test_service_ci.py).
PLATFORM_WORKFLOWS = [p for p in WORKFLOWS if p.name != "service-ci.yml"]
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _uses_lines(path: Path) -> list[str]:
    return [line.split("uses:", 1)[1].strip() for line in path.read_text().splitlines()
            if line.strip().startswith(("uses:", "- uses:")) or " uses: " in line]


def test_there_are_the_platforms_three_workflows_and_the_service_ci():
    assert {p.name for p in WORKFLOWS} == {"pull-request.yml", "deploy.yml", "drift.yml",
                                           "service-ci.yml"}


def test_actionlint_passes():
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # shellcheck
    result = subprocess.run([str(BIN / "actionlint"), "-config-file",
                             str(REPO / ".github" / "actionlint.yaml"), *map(str, WORKFLOWS)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
                   "      - run: echo ${{ github.event.pull_request.title }}\n"
                   "      - uses: actions/checkout@v5\n        with:\n          nonsense: 1\n")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([str(BIN / "actionlint"), str(bad)], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode != 0
    assert "potentially untrusted" in result.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_a_commit_with_the_tag_in_a_comment(path):
    uses = _uses_lines(path)
    assert uses
    for use in uses:
        assert PINNED.match(use), use


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_is_interpolated_into_a_shell(path):
    for job in _load(path)["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step.get("name")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_least_privilege_and_aws_is_oidc(path):
    workflow = _load(path)
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        permissions = job["permissions"]
        assert set(permissions.values()) <= {"read", "write"}
        assert permissions.get("contents") == "read", name
        uses_aws = any("configure-aws-credentials" in step.get("uses", "")
                       for step in job["steps"])
        assert (permissions.get("id-token") == "write") == uses_aws, name
        for step in job["steps"]:
            assert "aws-access-key-id" not in (step.get("with") or {}), name
            assert "AWS_SECRET_ACCESS_KEY" not in json.dumps(step), name


DEPLOY_RUNNER = ["self-hosted", "linux", "platform-deploy"]
PREVIEW_RUNNER = ["self-hosted", "linux", "platform-preview"]
MAIN_ONLY = "github.ref == 'refs/heads/main'"


def _jobs(name: str) -> dict:
    return _load(REPO / ".github" / "workflows" / name)["jobs"]


def _stack(job: dict) -> str | None:
    return (job.get("env") or {}).get("STACK")


def test_cloud_jobs_run_where_the_eks_api_is_reachable():
    for path in WORKFLOWS:
        for name, job in _load(path)["jobs"].items():
            if any("pulumi/actions" in step.get("uses", "") for step in job["steps"]):
                assert job["runs-on"] in (DEPLOY_RUNNER, PREVIEW_RUNNER), (path.name, name)


def test_every_job_with_cloud_credentials_has_an_environment_the_role_trusts():
    """A role's trust names one environment (the OIDC `sub` claim carries it), so a job without
    one could assume no role; each environment's rules (reviewers, branches) apply to the job."""
    for path in PLATFORM_WORKFLOWS:
        workflow = _load(path)
        assert "pull_request_target" not in workflow[True], path.name  # `on:` parses as True
        for name, job in workflow["jobs"].items():
            if job["permissions"].get("id-token") == "write":
                assert job.get("environment"), (path.name, name)


def test_each_job_assumes_its_environments_role_only():
    """The role comes from the job's environment (its AWS_ROLE_ARN variable), never a literal
    ARN or a repository-wide secret, so a job can hold no role its environment does not give."""
    for path in PLATFORM_WORKFLOWS:
        for name, job in _load(path)["jobs"].items():
            for step in job["steps"]:
                if "configure-aws-credentials" in step.get("uses", ""):
                    assert step["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}", name
                    assert job.get("environment"), (path.name, name)


def test_pull_request_code_never_reaches_a_deploy_role_or_runner():
    jobs = _jobs("pull-request.yml")
    for name, job in jobs.items():
        assert job["runs-on"] != DEPLOY_RUNNER, name
        assert job.get("environment") in (None, "preview-dev", "preview-prod"), name
    # prod is previewed only in the environment whose required reviewers approve the run, after
    # the offline review, and never for forks.
    (prod,) = [j for j in jobs.values() if _stack(j) == "prod"]
    (dev,) = [j for j in jobs.values() if _stack(j) == "dev"]
    assert prod["environment"] == "preview-prod" and dev["environment"] == "preview-dev"
    for job in (prod, dev):
        assert job["runs-on"] == PREVIEW_RUNNER and job["needs"] == "offline-review"
        assert job["if"].startswith(
            "github.event.pull_request.head.repo.full_name == github.repository")
    # dev's preview, which needs no approval, runs for the organisation's members only.
    assert dev["if"].endswith("&& contains(fromJSON('[\"OWNER\", \"MEMBER\"]'), "
                              "github.event.pull_request.author_association)")


def _comment_step() -> dict:
    job = _jobs("pull-request.yml")["offline-review"]
    return next(s for s in job["steps"] if s.get("name", "").startswith("Comment on the pull"))


# `gh` for the comment step: `gh api ... --jq FILTER` runs the filter with the real jq on the
# comments the test gives (gh embeds gojq, the same language); every other call is logged.
GH_STUB = """#!/usr/bin/env bash
echo "$*" >> "$GH_LOG"
filter=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--jq" ]; then filter="$2"; shift; fi
  shift
done
if [ -n "$filter" ]; then jq -r "$filter" "$GH_COMMENTS"; fi
"""


def _run_comment_step(tmp_path: Path, comments: list[dict]) -> list[str]:
    """The workflow's comment step, as bash runs it in the job, against a stub `gh`: the calls
    it made, in order."""
    (tmp_path / "bin").mkdir()
    gh = tmp_path / "bin" / "gh"
    gh.write_text(GH_STUB)
    gh.chmod(0o755)
    (tmp_path / "comments.json").write_text(json.dumps(comments))
    (tmp_path / "review.md").write_text("### Every stack: **Passes**\n")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "GH_LOG": str(tmp_path / "gh.log"), "GH_COMMENTS": str(tmp_path / "comments.json"),
           "REPOSITORY": "org/platform", "PR_NUMBER": "7", "GH_TOKEN": "x"}
    result = subprocess.run(["bash", "-e", "-c", _comment_step()["run"]], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "comment.md").read_text().startswith(
        "<!-- platformctl-review:all -->\n### Every stack: **Passes**")
    return [line for line in (tmp_path / "gh.log").read_text().splitlines()
            if "--paginate" not in line]


BOT = {"login": "github-actions[bot]"}


def test_the_review_comment_edited_in_place_is_the_bots_own(tmp_path):
    """One comment for every stack, edited in place: only the workflow's own (anyone can post
    the marker); the bot's comments of one stack each, from before, are deleted."""
    assert _load(REPO / ".github" / "workflows" / "pull-request.yml")[True] == {
        "pull_request": {"branches": ["main"]}}
    calls = _run_comment_step(tmp_path, [
        {"id": 1, "user": {"login": "mallory"}, "body": "<!-- platformctl-review:all -->\nforged"},
        {"id": 2, "user": BOT, "body": "<!-- platformctl-review:dev -->\n### `dev`"},
        {"id": 3, "user": BOT, "body": "<!-- platformctl-review:all -->\n### Every stack"},
        {"id": 4, "user": BOT, "body": "<!-- platformctl-review:prod -->\n### `prod`"},
        {"id": 5, "user": BOT, "body": "some other bot comment"},
        {"id": 6, "user": BOT, "body": "<!-- platformctl-review:all -->\n(a race's second)"},
    ])
    assert calls == [
        "api --method DELETE repos/org/platform/issues/comments/2",
        "api --method DELETE repos/org/platform/issues/comments/4",
        "api --method DELETE repos/org/platform/issues/comments/6",
        "api --method PATCH repos/org/platform/issues/comments/3 -F body=@comment.md",
    ]


def test_the_first_review_comment_is_posted(tmp_path):
    calls = _run_comment_step(tmp_path, [
        {"id": 1, "user": {"login": "mallory"}, "body": "<!-- platformctl-review:all -->\nforged"}])
    assert calls == ["api --method POST repos/org/platform/issues/7/comments -F body=@comment.md"]


def test_the_pull_request_review_is_one_run_for_every_stack():
    """One job reviews every stack against the base (no matrix of one comment per stack), keeps
    the whole document (every stack's) as the artefact and fails on its exit code."""
    job = _jobs("pull-request.yml")["offline-review"]
    assert "strategy" not in job
    review = next(s for s in job["steps"] if s.get("id") == "review")
    assert ('platformctl review --all --base "$BASE_SHA" --diff --format markdown'
            in review["run"])
    assert "--output review.md --json review.json" in review["run"]
    (keep,) = [s for s in job["steps"] if "upload-artifact" in s.get("uses", "")]
    assert keep["with"]["path"] == "review.json" and keep["with"]["name"] == "review"
    assert job["steps"][-1]["run"] == 'exit "$STATUS"'


def test_only_main_deploys_and_only_on_the_deploy_runners():
    workflow = _load(REPO / ".github" / "workflows" / "deploy.yml")
    assert workflow[True] == {"push": {"branches": ["main"]}, "workflow_dispatch": None}
    for name, job in workflow["jobs"].items():
        assert job["if"] == MAIN_ONLY, name  # a manual run from another branch is skipped
        assert job["runs-on"] == DEPLOY_RUNNER, name
    for path in WORKFLOWS:
        if path.name != "deploy.yml":
            for name, job in _load(path)["jobs"].items():
                assert job["runs-on"] != DEPLOY_RUNNER, (path.name, name)
                assert job.get("environment") not in ("dev", "prod"), (path.name, name)


def test_pull_requests_preview_with_the_policy_pack_and_review_offline_with_base():
    jobs = _jobs("pull-request.yml")
    for name in ("preview-dev", "preview-prod"):
        preview = next(s for s in jobs[name]["steps"] if "pulumi/actions" in s.get("uses", ""))
        assert preview["with"]["command"] == "preview"
        assert preview["with"]["stack-name"] == "${{ env.STACK }}"
        assert preview["with"]["policyPacks"] == "policy-packs/platform-guard"
        assert preview["with"]["comment-on-pr"] is True


def test_pull_requests_check_every_stack_against_the_organisations_cap():
    job = _jobs("pull-request.yml")["organisation-budget"]
    assert job["permissions"] == {"contents": "read"} and "environment" not in job
    (check,) = [s for s in job["steps"] if "platformctl budget" in s.get("run", "")]
    assert "--format markdown" in check["run"] and 'exit "$status"' in check["run"]


def test_merges_deploy_dev_then_prod_behind_an_approval():
    jobs = _jobs("deploy.yml")
    assert jobs["dev"]["environment"] == "dev"
    assert jobs["prod"]["needs"] == "dev" and jobs["prod"]["environment"] == "prod"
    for job in jobs.values():
        up = next(s for s in job["steps"] if "pulumi/actions" in s.get("uses", ""))
        assert up["with"]["command"] == "up"
        assert up["with"]["policyPacks"] == "policy-packs/platform-guard"


def test_drift_check_fails_on_changes_and_reports():
    workflow = _load(REPO / ".github" / "workflows" / "drift.yml")
    assert workflow[True]["schedule"]  # `on:` parses as True in YAML 1.1
    job = workflow["jobs"]["drift"]
    # main's code only, in its own environment (branch policy: main), on the preview runners.
    assert job["if"] == MAIN_ONLY and job["runs-on"] == PREVIEW_RUNNER
    assert job["environment"] == "drift-${{ matrix.stack }}"
    check = next(s for s in job["steps"] if "pulumi/actions" in s.get("uses", ""))
    assert check["with"]["refresh"] is True and check["with"]["expect-no-changes"] is True
    report = next(s for s in job["steps"] if s.get("if") == "failure()")
    assert "gh issue create" in report["run"]


def test_every_exemption_in_gitops_is_granted_in_the_stack_config(evaluations):
    """An object opts in to an exemption by id; the id must be an entry of the stack config
    (reviewed by the security owners) for the object's namespace and the policy."""
    granted = {(e.id, e.policy, e.namespace) for ev in evaluations.values()
               for e in ev.config.security.gatekeeper.exemptions}
    prefix = "exempt.platform.example.org/"
    for path in (REPO / "gitops").rglob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            if not isinstance(document, dict):
                continue
            namespace = (document.get("metadata") or {}).get("namespace")
            for metadata in (document.get("metadata") or {},
                             ((document.get("spec") or {}).get("template") or {}).get(
                                 "metadata") or {}):
                for key, value in (metadata.get("annotations") or {}).items():
                    if key.startswith(prefix):
                        assert (value, key[len(prefix):], namespace) in granted, path


def _step(job: dict, starts: str) -> dict:
    return next(s for s in job["steps"] if s.get("name", "").startswith(starts))


def test_a_spec_only_pull_request_gets_its_manifests_from_the_base_code():
    """The template's pull request changes only a spec: the base branch's platformctl (trusted)
    writes the manifests into the pull request's files, and the platform's bot pushes them;
    nothing of the pull request runs, and a fork's branch is never written."""
    job = _jobs("pull-request.yml")["golden-path"]
    assert job["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert job["permissions"] == {"contents": "read"}
    base, head = (s for s in job["steps"] if "actions/checkout" in s.get("uses", ""))
    assert base["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    assert head["with"]["ref"] == "${{ github.event.pull_request.head.sha }}"
    assert base["with"]["persist-credentials"] is False is head["with"]["persist-credentials"]
    generate = _step(job, "Generate the manifests")
    assert "pip install --disable-pip-version-check --quiet ./base" in generate["run"]
    assert '.venv/bin/platformctl new-service "head/$spec" --project-dir head' in generate["run"]
    bot = _step(job, "The platform bot's token")
    assert bot["with"]["permission-contents"] == "write"
    push = _step(job, "Commit the manifests")
    assert push["env"]["TOKEN"] == "${{ steps.bot.outputs.token }}"
    assert "${{" not in push["run"]  # the branch name reaches the shell as a variable only


@pytest.mark.parametrize("changed, specs_only", [
    (["services/ledger.yaml"], True),
    (["services/ledger.yaml", "services/checkout.yaml"], True),
    (["services/ledger.yaml", "stacks/config.py"], False),
    (["services/ledger.yaml", "gitops/teams/x/y/rollout.yaml"], False),
])
def test_only_a_pull_request_of_specs_alone_is_generated(tmp_path, changed, specs_only):
    """The scope step, run by bash on a real history: specs alone, or nothing is generated."""
    head = tmp_path / "head"
    head.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(head), "-c", "user.email=t@example.com",
                               "-c", "user.name=t", *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q", "-b", "main")
    (head / "README.md").write_text("base\n")
    git("add", "-A")
    git("commit", "-qm", "base")
    base_sha = git("rev-parse", "HEAD")
    for name in changed:
        (head / name).parent.mkdir(parents=True, exist_ok=True)
        (head / name).write_text("changed\n")
    git("add", "-A")
    git("commit", "-qm", "change")
    output = tmp_path / "output"
    output.write_text("")
    step = _step(_jobs("pull-request.yml")["golden-path"], "Only service specs changed?")
    done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "BASE_SHA": base_sha,
                                          "GITHUB_OUTPUT": str(output)})
    assert done.returncode == 0, done.stderr
    assert ("specs_only=true" in output.read_text()) is specs_only
