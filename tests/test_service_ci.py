"""The golden path's service CI (.github/workflows/service-ci.yml), a reusable workflow: the
identity it signs with is the one prod's ClusterImagePolicy admits (derived from the workflow's
path and ref in this repository, as Fulcio names a reusable workflow), the policy requires the
attestations it makes, it scans before it signs, signs and pushes only for a service's main
branch, and refuses bad inputs with exit 2. zizmor passes on every workflow."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from components.admission import REQUIRED_ATTESTATIONS
from tests import k8s_objects
from tests.conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "service-ci.yml"
ISSUER = "https://token.actions.githubusercontent.com"  # GitHub Actions' OIDC tokens
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _steps(workflow: dict, job: str) -> dict[str, dict]:
    return {step["name"]: step for step in workflow["jobs"][job]["steps"]}


def _identity(repository: str, ref: str = "refs/heads/main") -> str:
    """Fulcio's subject for a reusable workflow: the called workflow's own path and ref."""
    path = WORKFLOW.relative_to(REPO).as_posix()
    return f"https://github.com/{repository}/{path}@{ref}"


def _authority(evaluation) -> dict:
    (policy,) = [p for p in evaluation.of_type(
        "kubernetes:policy.sigstore.dev/v1beta1:ClusterImagePolicy")
        if p.inputs["metadata"]["name"] == "signed-by-organisation"]
    (authority,) = k8s_objects.manifest(policy)["spec"]["authorities"]
    return authority


def test_the_workflow_signs_as_the_identity_prod_admits(evaluations, workflow):
    prod = evaluations["prod"]
    # This repository, as the stack knows it (the GitOps repository is this one).
    repository = urlparse(prod.config.gitops.repo_url).path.strip("/").removesuffix(".git")
    (identity,) = _authority(prod)["keyless"]["identities"]
    assert identity["issuer"] == ISSUER
    # The keyless certificate comes from the job's GitHub OIDC token.
    assert workflow["jobs"]["image"]["permissions"]["id-token"] == "write"
    pattern = re.compile(identity["subjectRegExp"])
    assert pattern.search(_identity(repository))
    # Not a fork's copy, not another branch, not another workflow of this or a service's repo.
    owner = repository.split("/")[0]
    for other in (_identity(f"someone-else/{repository.split('/')[1]}"),
                  _identity(repository, "refs/heads/feature"),
                  _identity(repository, "refs/pull/7/merge"),
                  f"https://github.com/{repository}/.github/workflows/deploy.yml@refs/heads/main",
                  f"https://github.com/{owner}/checkout/.github/workflows/ci.yml@refs/heads/main"):
        assert not pattern.search(other), other


def test_the_policy_requires_exactly_the_attestations_the_workflow_makes(evaluations, workflow):
    script = _steps(workflow, "image")["Sign and attest (keyless)"]["run"]
    made = set(re.findall(r"cosign attest .*--type (\S+)", script))
    assert made == set(REQUIRED_ATTESTATIONS.values())
    for evaluation in evaluations.values():
        authority = _authority(evaluation)
        assert {a["predicateType"] for a in authority["attestations"]} == made
        # The classic layout the workflow writes (not cosign 3's bundles).
        assert authority["signatureFormat"] == "legacy"
        assert "--new-bundle-format=false" in script


def test_it_scans_before_it_signs_and_releases_only_a_main_branch_push(workflow):
    image = workflow["jobs"]["image"]
    assert image["env"]["RELEASE"] == (
        "${{ github.event_name == 'push' && github.ref == 'refs/heads/main' }}")
    names = [step["name"] for step in image["steps"]]
    scan = names.index("Scan (fails on a critical vulnerability that has a fix)")
    assert scan < names.index("Sign and attest (keyless)")
    steps = _steps(workflow, "image")
    assert steps[names[scan]]["with"] == {"sbom": "sbom.spdx.json", "severity-cutoff": "critical",
                                          "only-fixed": True, "fail-build": True}
    for name in ("AWS credentials (OIDC; main only)", "Log in to ECR (main only)",
                 "SBOM of the arm64 image (what Graviton nodes run)", names[scan],
                 "Install cosign", "Sign and attest (keyless)"):
        assert steps[name]["if"] == "env.RELEASE == 'true'", name
    build = steps["Build (and on main, push by digest)"]["with"]
    assert "linux/arm64" in build["platforms"].split(",")
    assert build["push"] == "${{ env.RELEASE == 'true' }}"
    # The tests' job holds no token: the service's own code never runs next to the OIDC token.
    assert "id-token" not in workflow["jobs"]["test"]["permissions"]
    assert workflow["jobs"]["test"]["needs"] == "inputs" and image["needs"] == "test"
    pull = workflow["jobs"]["dev-pull-request"]
    assert pull["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    script = pull["steps"][-1]["run"]
    assert 'platformctl promote "$SERVICE" --to dev --digest "$DIGEST"' in script


def test_its_required_inputs_are_required(workflow):
    call = workflow[True]["workflow_call"]  # `on:` parses as True
    required = {name for name, spec in call["inputs"].items() if spec["required"]}
    assert required == {"service", "ecr-repository", "aws-role-arn", "test-command"}
    assert all("default" in spec for name, spec in call["inputs"].items()
               if name not in required)
    assert call["secrets"]["platform-token"]["required"] is True


GOOD = {"SERVICE": "checkout/checkout",
        "ECR_REPOSITORY": "111111111111.dkr.ecr.us-east-1.amazonaws.com/checkout",
        "AWS_ROLE_ARN": "arn:aws:iam::111111111111:role/checkout-ci", "AWS_REGION": "us-east-1",
        "TEST_COMMAND": "python -m pytest -q", "PLATFORM_REPOSITORY": "example-org/platform",
        "BUILD_CONTEXT": ".", "DOCKERFILE": "Dockerfile"}


def _check_inputs(workflow: dict, **changes: str) -> subprocess.CompletedProcess:
    script = _steps(workflow, "inputs")["Check the inputs"]["run"]
    env = {"PATH": os.environ["PATH"], **GOOD, **changes}
    # As GitHub runs a `run:` step (bash --noprofile --norc -eo pipefail).
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                          env=env, capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize(("changes", "message"), [
    ({"SERVICE": ""}, "service: '': allowed: NAME or TEAM/NAME"),
    ({"ECR_REPOSITORY": "docker.io/library/nginx"}, "ecr-repository: 'docker.io/library/nginx'"),
    ({"ECR_REPOSITORY": "111111111111.dkr.ecr.us-east-1.amazonaws.com/checkout:latest"},
     "no tag"),
    ({"AWS_REGION": "eu-west-1"}, "aws-region: 'eu-west-1': not the region of ecr-repository"),
    ({"AWS_ROLE_ARN": "checkout-ci"}, "aws-role-arn: 'checkout-ci'"),
    ({"TEST_COMMAND": "  "}, "test-command: empty"),
    ({"DOCKERFILE": "../other/Dockerfile"}, "'../other/Dockerfile': allowed: a path inside"),
])
def test_bad_inputs_fail_the_call_with_exit_2(workflow, changes, message):
    result = _check_inputs(workflow, **changes)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stdout.splitlines()  # one annotation per problem
    assert all(line.startswith("::error title=service-ci input::") for line in lines), lines
    assert any(message in line for line in lines), lines


def test_good_inputs_pass(workflow):
    result = _check_inputs(workflow)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def _zizmor(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "zizmor"), "--offline", "--no-progress", "--format", "plain",
                           *map(str, paths)], capture_output=True, text=True, timeout=120)


def test_zizmor_passes_on_every_workflow():
    result = _zizmor(*sorted((REPO / ".github" / "workflows").glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout


def test_zizmor_catches_a_template_injection(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: pull_request\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-24.04\n"
                   "    permissions: {}\n    steps:\n"
                   "      - run: echo ${{ github.event.pull_request.title }}\n")
    result = _zizmor(bad)
    assert result.returncode != 0 and "template-injection" in result.stdout, shlex.quote(
        result.stdout)
