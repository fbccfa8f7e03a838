"""The GitHub workflows users run: actionlint and checkov pass, actions are pinned by commit,
permissions are least-privilege, AWS is reached through OIDC, and no untrusted input is
interpolated into a shell."""

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
BIN = Path(sys.executable).parent
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _uses_lines(path: Path) -> list[str]:
    return [line.split("uses:", 1)[1].strip() for line in path.read_text().splitlines()
            if line.strip().startswith(("uses:", "- uses:")) or " uses: " in line]


def test_there_are_the_three_workflows():
    assert {p.name for p in WORKFLOWS} == {"pull-request.yml", "deploy.yml", "drift.yml"}


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


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov's own virtualenv is installed by "
                    "`bash .ci/run` (.venv-checkov); run that to include this check")
def test_checkov_github_actions_checks_pass():
    result = subprocess.run(
        [str(CHECKOV), "-d", str(REPO / ".github" / "workflows"), "--framework",
         "github_actions", "--quiet", "--compact", "-o", "json"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [(c["check_id"], c["file_path"]) for r in reports
              for c in r.get("results", {}).get("failed_checks", [])]
    summary = reports[0]["summary"]
    assert summary["passed"] > 50 and summary["parsing_errors"] == 0
    assert failed == []


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


def test_cloud_jobs_run_where_the_eks_api_is_reachable():
    for path in WORKFLOWS:
        for name, job in _load(path)["jobs"].items():
            if any("pulumi/actions" in step.get("uses", "") for step in job["steps"]):
                assert job["runs-on"] == ["self-hosted", "linux", "platform"], (path.name, name)


def test_pull_requests_preview_with_the_policy_pack_and_review_offline_with_base():
    jobs = _load(REPO / ".github" / "workflows" / "pull-request.yml")["jobs"]
    preview = next(s for s in jobs["preview"]["steps"] if "pulumi/actions" in s.get("uses", ""))
    assert preview["with"]["command"] == "preview"
    assert preview["with"]["policyPacks"] == "policy-packs/platform-guard"
    assert preview["with"]["comment-on-pr"] is True
    assert jobs["preview"]["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in \
        jobs["preview"]["if"]  # no cloud credentials for forks
    review = next(s for s in jobs["offline-review"]["steps"] if s.get("id") == "review")
    assert "--base \"$BASE_SHA\" --format markdown" in review["run"]


def test_merges_deploy_dev_then_prod_behind_an_approval():
    jobs = _load(REPO / ".github" / "workflows" / "deploy.yml")["jobs"]
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
    check = next(s for s in job["steps"] if "pulumi/actions" in s.get("uses", ""))
    assert check["with"]["refresh"] is True and check["with"]["expect-no-changes"] is True
    report = next(s for s in job["steps"] if s.get("if") == "failure()")
    assert "gh issue create" in report["run"]
