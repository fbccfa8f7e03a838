"""checkov's Kubernetes and GitHub Actions checks pass on what users deploy: the golden path's
generated service, the team baseline of a stack with two teams, and the GitHub workflows.

One checkov process scans all three (its start-up alone takes about three seconds); each test
reads the findings under its own directory."""

from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.test_golden import generated_objects
from tests.test_tenancy import _owned_manifests

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
WORKFLOWS = REPO / ".github" / "workflows"

pytestmark = pytest.mark.skipif(
    not CHECKOV.exists(), reason="checkov's own virtualenv is installed by `bash .ci/run` "
    "(.venv-checkov); run that to include these checks")


def _documents(text: str) -> list[Any]:
    """checkov prints one JSON document per scanned root and framework, one after another."""
    decoder, found, at, text = json.JSONDecoder(), [], 0, text.strip()
    while at < len(text):
        document, end = decoder.raw_decode(text, at)
        found += document if isinstance(document, list) else [document]
        at = len(text) - len(text[end:].lstrip())
    return found


def _service_objects() -> list[dict]:
    bodies = []
    for body in generated_objects():
        if body["kind"] == "Application":
            continue
        if body["kind"] == "Rollout":
            # checkov knows Deployments, not Rollouts: the same pod template, as a Deployment.
            spec = {k: v for k, v in body["spec"].items() if k != "strategy"}
            body = {**body, "apiVersion": "apps/v1", "kind": "Deployment", "spec": spec}
        bodies.append(body)
    return bodies


@pytest.fixture(scope="module")
def findings(two_teams, tmp_path_factory) -> dict[Path, dict[str, set]]:
    """Passed and failed checks per scanned directory, and every report's summary."""
    roots = {"service": tmp_path_factory.mktemp("service"),
             "teams": tmp_path_factory.mktemp("teams")}
    (roots["service"] / "service.yaml").write_text(
        yaml.safe_dump_all(_service_objects(), sort_keys=False))
    (roots["teams"] / "objects.yaml").write_text(
        yaml.safe_dump_all(_owned_manifests(two_teams), sort_keys=False))
    roots["workflows"] = WORKFLOWS
    command = [str(CHECKOV), "--framework", "kubernetes", "github_actions", "--compact",
               "-o", "json"]
    for root in roots.values():
        command += ["-d", str(root)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    reports = _documents(result.stdout)
    assert reports, result.stderr
    found: dict[str, dict[str, set]] = {name: defaultdict(set) for name in roots}
    for report in reports:
        assert report.get("summary", report)["parsing_errors"] == 0, report
        for outcome, checks in report.get("results", {}).items():
            for check in checks:
                path = Path(check["file_abs_path"]).resolve()
                (name,) = [n for n, root in roots.items() if root.resolve() in path.parents]
                found[name][outcome].add((check["check_id"], check.get("resource"),
                                          check["check_name"], path.name))
    return found


def test_the_generated_service_passes_the_kubernetes_checks(findings):
    assert len(findings["service"]["passed_checks"]) > 10
    assert sorted(findings["service"]["failed_checks"]) == []


def test_the_team_baseline_passes_the_kubernetes_checks(findings):
    assert findings["teams"]["passed_checks"]
    assert sorted(findings["teams"]["failed_checks"]) == []


def test_the_workflows_pass_the_github_actions_checks(findings):
    assert len(findings["workflows"]["passed_checks"]) > 50
    assert sorted(findings["workflows"]["failed_checks"]) == []
