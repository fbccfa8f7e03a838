"""workload-identity: every workload of the Helm releases that calls AWS has a Pod Identity role
granting what it calls and nothing more (platform_facts/identities.json)."""

from __future__ import annotations

import dataclasses
import json

from platformctl import runtime_checks as runtime
from platformctl.crossguard import check_evaluation
from platformctl.recording import Evaluation
from tests.conftest import with_resources

POLICY = "workload-identity"


def test_the_shipped_stacks_give_each_aws_caller_exactly_its_actions(rendered):
    for evaluation in rendered.values():
        report = check_evaluation(evaluation)
        assert report.of(POLICY) == []
        assert report.evaluated(POLICY)


def test_the_load_balancer_controller_gets_upstreams_actions_less_waf_and_shield():
    declared = runtime.identities()["workloads"]["aws-load-balancer-controller"]
    assert "kubernetes-sigs/aws-load-balancer-controller v3.5.0" in declared["source"]
    for action in ("elasticloadbalancing:SetRulePriorities", "ec2:GetSecurityGroupsForVpc"):
        assert action in declared["actions"]
    assert all(a.split(":")[0] in ("shield", "waf-regional", "wafv2")
               or a == "elasticloadbalancing:SetWebAcl"
               for a in declared["notCalled"]["actions"])


def _changed(evaluation: Evaluation, keep, edit=lambda r: r) -> Evaluation:
    return with_resources(evaluation, [edit(r) for r in evaluation.resources if keep(r)])


def _messages(evaluation: Evaluation) -> list[str]:
    return [v.message for v in check_evaluation(evaluation).of(POLICY)]


def test_a_service_account_without_identity_is_refused(rendered):
    prod = rendered["prod"]
    changed = _changed(prod, lambda r: not (
        r.type == runtime.ASSOCIATION and r.inputs["serviceAccount"] == "policy-controller-webhook"))
    assert _messages(changed) == [
        "Helm release 'policy-controller': its service account cosign-system/"
        "policy-controller-webhook calls AWS (ecr:BatchCheckLayerAvailability, ecr:BatchGetImage, "
        "ecr:GetAuthorizationToken, ...) but has no EKS Pod Identity association in the plan; "
        "pods cannot borrow the node's role (IMDS hop limit 1). Fix: give it a role with "
        "Cluster.service_account_role"]


def _edit_policy(name: str, change):
    def edit(resource):
        if resource.type != runtime.ROLE_POLICY or resource.name != name:
            return resource
        document = json.loads(resource.inputs["policy"])
        change(document)
        return dataclasses.replace(resource, inputs={**resource.inputs,
                                                     "policy": json.dumps(document)})
    return edit


def test_a_missing_action_and_an_extra_one_are_refused(rendered):
    dev = rendered["dev"]

    def drop_set_rule_priorities(document):
        for statement in document["Statement"]:
            if isinstance(statement["Action"], list):
                statement["Action"] = [a for a in statement["Action"]
                                       if a != "elasticloadbalancing:SetRulePriorities"]

    messages = _messages(_changed(dev, lambda r: True, _edit_policy(
        "dev-load-balancer-controller", drop_set_rule_priorities)))
    assert len(messages) == 1 and messages[0].startswith(
        "IAM role 'dev-load-balancer-controller': role 'dev-load-balancer-controller' of "
        "kube-system/aws-load-balancer-controller lacks elasticloadbalancing:SetRulePriorities")

    def add_key_admin(document):
        document["Statement"][0]["Action"] = [document["Statement"][0]["Action"], "kms:*"] \
            if isinstance(document["Statement"][0]["Action"], str) else [
                *document["Statement"][0]["Action"], "kms:*"]

    messages = _messages(_changed(dev, lambda r: True, _edit_policy("dev-vault", add_key_admin)))
    assert messages == ["IAM role 'dev-vault': role 'dev-vault' of vault/vault grants more than "
                        "vault calls: kms:*. Fix: remove them (least privilege)"]


def test_an_add_on_role_without_its_managed_policy_is_refused(rendered):
    prod = rendered["prod"]
    changed = _changed(prod, lambda r: not (
        r.type == runtime.ROLE_POLICY_ATTACHMENT and r.name == "prod-ebs-csi-AmazonEBSCSIDriverPolicy"))
    (message,) = _messages(changed)
    assert message.startswith("IAM role 'prod-ebs-csi': role of the aws-ebs-csi-driver add-on "
                              "lacks AmazonEBSCSIDriverPolicy")


def test_the_autoscaler_scales_only_this_clusters_node_groups(rendered):
    prod = rendered["prod"]
    (policy,) = [r for r in prod.of_type(runtime.ROLE_POLICY) if r.name == "prod-cluster-autoscaler"]
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    scale = statements["ScaleThisClustersNodeGroups"]
    assert scale["Condition"] == {"StringEquals": {
        "aws:ResourceTag/k8s.io/cluster-autoscaler/platform-prod": "owned"}}
    assert scale["Resource"].endswith(":autoScalingGroup:*:autoScalingGroupName/eks-*")
    # Without its association, the autoscaler is refused like any other AWS caller.
    changed = _changed(prod, lambda r: not (
        r.type == runtime.ASSOCIATION and r.inputs["serviceAccount"] == "cluster-autoscaler"))
    (message,) = _messages(changed)
    assert message.startswith("Helm release 'cluster-autoscaler': its service account "
                              "kube-system/cluster-autoscaler calls AWS")
