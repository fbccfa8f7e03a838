"""Every IAM policy document the program writes passes `parliament`, except its known false
positives, each filtered by name with the reason."""

from __future__ import annotations

import json

import parliament
import pytest

from platformctl.recording import Evaluation

# (finding, what its detail must contain, why it is not a problem)
KNOWN_FALSE_POSITIVES = [
    ("MALFORMED", "neither Resource nor NotResource",
     "trust (assume-role) policies have no Resource: the role itself is the resource"),
    ("UNKNOWN_FEDERATION_SOURCE", ":oidc-provider/oidc.eks.",
     "parliament only knows public identity providers; an EKS cluster's OIDC issuer is per "
     "cluster"),
    ("UNKNOWN_CONDITION_FOR_ACTION", "elasticloadbalancing:CreateAction",
     "parliament 1.6.4's IAM database predates the elasticloadbalancing:CreateAction condition "
     "key that AWS documents for tagging at creation"),
    ("UNKNOWN_ACTION", "elasticloadbalancing:ModifyIpPools",
     "parliament 1.6.4's IAM database predates ModifyIpPools (IPAM pools for ALBs), which the "
     "load balancer controller's upstream policy at the vendored v3.5.0 grants"),
]


def documents(evaluation: Evaluation) -> list[tuple[str, str, str]]:
    found = []
    for resource in evaluation.resources:
        if resource.type == "aws:iam/role:Role":
            found.append((resource.name, "trust", resource.inputs["assumeRolePolicy"]))
        elif resource.type in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy",
                               "aws:sns/topicPolicy:TopicPolicy"):
            found.append((resource.name, "policy", resource.inputs["policy"]))
        elif resource.type == "aws:kms/keyPolicy:KeyPolicy":
            found.append((resource.name, "key-policy", resource.inputs["policy"]))
    return found


def findings(document: str) -> list[tuple[str, str]]:
    policy = parliament.analyze_policy_string(document, include_community_auditors=False)
    return [(f.issue, json.dumps(f.detail) if not isinstance(f.detail, str) else f.detail)
            for f in policy.findings]


def real_findings(document: str, kind: str) -> list[tuple[str, str]]:
    kept = []
    for issue, detail in findings(document):
        known = any(issue == name and fragment in detail
                    for name, fragment, _ in KNOWN_FALSE_POSITIVES)
        if issue == "MALFORMED" and kind != "trust":
            known = False  # only trust policies may lack a Resource
        if issue == "RESOURCE_STAR" and kind == "key-policy":
            known = True  # in a key policy, "Resource": "*" is the key itself (AWS KMS guide)
        if not known:
            kept.append((issue, detail))
    return kept


def test_every_policy_document_passes_parliament(stack):
    docs = documents(stack)
    assert len(docs) >= 8  # trust and permission policies of network and cluster
    problems = {f"{name} ({kind})": real_findings(doc, kind) for name, kind, doc in docs}
    assert {k: v for k, v in problems.items() if v} == {}


@pytest.mark.parametrize("document", [
    # Resource "*" on a scopable action, and a wildcard action.
    {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:DeleteSecurityGroup", "Resource": "*"}]},
    {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "arn:aws:s3:::b/*"}]},
])
def test_the_check_catches_a_bad_policy(document):
    assert real_findings(json.dumps(document), "policy")


def test_a_permission_policy_without_resource_is_not_excused():
    document = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject"}]}
    assert ("MALFORMED" in {i for i, _ in real_findings(json.dumps(document), "policy")})
