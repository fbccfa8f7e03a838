"""Who must approve what, read from .github/CODEOWNERS as GitHub reads it: patterns in gitignore
style, the last matching line wins, and any one owner on that line may approve. The settings
that decide access (exemptions, prod exceptions, signatures, admission, the prod lock, the
policies, the workflows, the trusted CA bundle) are the security owners' alone: a line that also
names the platform team would let two platform engineers grant them between themselves."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

SECURITY = ["@example-org/platform-security"]
PLATFORM = ["@example-org/platform-team"]


def rules() -> list[tuple[str, list[str]]]:
    found = []
    for line in (REPO / ".github" / "CODEOWNERS").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            pattern, *owners = line.split()
            found.append((pattern, owners))
    return found


def _glob(body: str) -> re.Pattern[str]:
    """A gitignore glob: `*` within one path segment, `**` across them."""
    parts = re.split(r"(\*\*|\*|\?)", body)
    return re.compile("".join({"**": ".*", "*": "[^/]*", "?": "[^/]"}.get(p, re.escape(p))
                              for p in parts))


def _matches(pattern: str, path: str) -> bool:
    """gitignore-style matching of a repository path (no leading slash), as CODEOWNERS uses:
    a leading `/` anchors at the root, a trailing `/` means everything under a directory, a
    pattern without a `/` matches at any depth."""
    anchored = pattern.startswith("/")
    body = pattern.lstrip("/")
    directory = body.endswith("/")
    body = body.rstrip("/")
    glob = _glob(body)
    if anchored or "/" in body:
        candidates = ["/".join(path.split("/")[:n]) for n in range(1, path.count("/") + 2)]
        if not directory:
            return bool(glob.fullmatch(path)) or any(
                glob.fullmatch(c) for c in candidates[:-1])
        return any(glob.fullmatch(c) for c in candidates[:-1])
    segments = path.split("/")
    return any(glob.fullmatch(s) for s in (segments[:-1] if directory else segments))


def owners_of(path: str) -> list[str]:
    owners: list[str] = []
    for pattern, who in rules():
        if _matches(pattern, path):
            owners = who  # the last matching line wins
    return owners


def test_the_matching_is_gitignores():
    assert _matches("*", "components/network.py")
    assert _matches("/components/rego/", "components/rego/ingress.rego")
    assert not _matches("/components/rego/", "components/regolith.py")
    assert _matches("/Pulumi.*.yaml", "Pulumi.prod.yaml")
    assert not _matches("/Pulumi.*.yaml", "Pulumi.yaml")
    assert not _matches("/Pulumi.*.yaml", "docs/Pulumi.prod.yaml")


@pytest.mark.parametrize("path", [
    "Pulumi.dev.yaml", "Pulumi.prod.yaml",  # exemptions, prod exceptions, signatures, admission
    "stacks/config.py",  # the prod lock's controls
    "components/admission.py", "components/rego/ingress.rego", "components/iam.py",
    "policy-packs/platform-guard/platform_guard/policies/security.py",
    ".github/workflows/pull-request.yml", ".github/CODEOWNERS",
    "certs/rds-ca-us-east-1.pem",
])
def test_what_decides_access_is_the_security_owners_alone(path):
    assert (REPO / path).exists(), path
    assert owners_of(path) == SECURITY, path


@pytest.mark.parametrize(("path", "owners"), [
    ("components/network.py", PLATFORM),
    ("Pulumi.yaml", PLATFORM),
    ("gitops/teams/checkout/checkout/rollout.yaml",
     ["@example-org/checkout", "@example-org/platform-team"]),
])
def test_everything_else_keeps_its_owners(path, owners):
    assert owners_of(path) == owners


def test_exemption_approvers_are_who_approves_the_stack_files(evaluations):
    """approvedBy must name an approver (the config model refuses anyone else), and the
    approvers are listed in the stack files only the security owners approve."""
    for evaluation in evaluations.values():
        assert evaluation.config.security.gatekeeper.exemption_approvers
        assert owners_of(evaluation.source) == SECURITY
