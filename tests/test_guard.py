"""platform-guard over the real stacks through the offline adapter: the unmodified stacks pass,
turning off a control (in a copy of a stack's config or its recorded inputs) makes the matching
policy fire, and the adapter treats unknowns, not-applicable and enforcement like the analyzer."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from pulumi_policy import StackValidationPolicy

from platformctl.crossguard import (
    GuardResource,
    check,
    check_evaluation,
    from_recording,
    policy_config,
)
from platformctl.recording import Evaluation
from tests.conftest import REPO, mutate, stack_config, write_stack
from tests.units import eks_cluster, evaluate_alone, own_network


def test_unmodified_stacks_have_no_mandatory_violations(stack):
    report = check_evaluation(stack)
    assert report.mandatory == []
    assert report.cannot_run == []


def test_dev_is_warned_near_its_budget(evaluations):
    report = check_evaluation(evaluations["dev"])
    # (node-capacity is advisory too while the stacks do not fit their nodes)
    assert {v.policy for v in report.advisory} <= {"budget-warning", "node-capacity"}
    (warning,) = report.of("budget-warning")
    assert "estimated $104.53/month is 99% of the $106.00 budget" in warning.message


def _with(evaluation: Evaluation, type_token: str, path: str, value: Any,
          protect: bool | None = None) -> list[GuardResource]:
    """The evaluation's resources, with `path` set to `value` on every resource of a type."""
    resources = []
    for recorded in evaluation.resources:
        resource = from_recording(recorded)
        if recorded.type == type_token:
            props = copy.deepcopy(dict(resource.props))
            target = props
            keys = path.split(".")
            for key in keys[:-1]:
                target = target[int(key)] if isinstance(target, list) else target.setdefault(key, {})
            target[keys[-1]] = value
            resource = dataclasses.replace(resource, props=props)
            if protect is not None:
                resource = dataclasses.replace(resource, protect=protect)
        resources.append(resource)
    return resources


INPUT_MUTATIONS = [
    ("dev", "aws:ec2/vpc:Vpc", "tags.owner", "", "required-tags"),
    ("prod", "aws:rds/instance:Instance", "storageEncrypted", False, "storage-encrypted"),
    ("prod", "aws:rds/instance:Instance", "publiclyAccessible", True, "rds-not-public"),
    ("prod", "aws:rds/instance:Instance", "deletionProtection", False, "prod-data-protection"),
    ("prod", "aws:rds/instance:Instance", "engineLifecycleSupport",
     "open-source-rds-extended-support", "no-extended-support"),
    ("dev", "aws:eks/cluster:Cluster", "enabledClusterLogTypes", ["api"], "eks-control-plane-logs"),
    ("dev", "aws:eks/cluster:Cluster", "encryptionConfig", {}, "eks-secrets-encryption"),
    ("dev", "aws:eks/cluster:Cluster", "vpcConfig.publicAccessCidrs", ["0.0.0.0/0"],
     "eks-public-endpoint-restricted"),
    ("dev", "aws:ec2/launchTemplate:LaunchTemplate", "metadataOptions.httpTokens", "optional",
     "imdsv2-required"),
    ("dev", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "cidrIpv4", "0.0.0.0/0",
     "security-group-open-ingress"),
    ("dev", "kubernetes:storage.k8s.io/v1:StorageClass", "parameters.type", "gp2", "no-gp2"),
]


@pytest.mark.parametrize(("stack_name", "type_token", "path", "value", "policy"), INPUT_MUTATIONS,
                         ids=[m[-1] for m in INPUT_MUTATIONS])
def test_turning_off_a_control_in_the_inputs_fires_its_policy(evaluations, stack_name,
                                                              type_token, path, value, policy):
    evaluation = evaluations[stack_name]
    report = check(_with(evaluation, type_token, path, value), policy_config(evaluation.config))
    fired = report.of(policy)
    assert fired, report.violations
    assert all(v.resource_type == type_token for v in fired)


def test_an_unprotected_prod_database_fires(evaluations):
    prod = evaluations["prod"]
    resources = _with(prod, "aws:rds/instance:Instance", "deletionProtection", True,
                      protect=False)
    (verdict,) = check(resources, policy_config(prod.config)).of("prod-data-protection")
    assert "the Pulumi resource is not protected" in verdict.message


# (stack, settings, the policy that must fire, the component that makes the resource it judges:
# built alone under mocks; None for the budget, which judges the whole stack's cost)
CONFIG_MUTATIONS = [
    ("dev", {"platform:network.natStrategy": "one-per-az"}, "nat-per-az-outside-prod",
     own_network),
    ("dev", {"platform:cluster.nodeGroups": {"system": {"capacityType": "ON_DEMAND"}}},
     "on-demand-nodes-outside-prod", eks_cluster),
    ("dev", {"platform:cluster.supportType": "EXTENDED"}, "no-extended-support",
     eks_cluster),
    ("dev", {"platform:budgetMonthlyUsd": 100}, "budget-limit", None),
]


@pytest.mark.parametrize(("stack_name", "mutations", "policy", "alone"), CONFIG_MUTATIONS,
                         ids=[m[2] for m in CONFIG_MUTATIONS])
def test_turning_off_a_control_in_the_stack_config_fires_its_policy(
        tmp_path, evaluations, stack_name, mutations, policy, alone):
    config = stack_config(stack_name)
    for key, value in mutations.items():
        config = mutate(config, key, value)
    path = write_stack(tmp_path, config)
    if alone is None:
        # The budget policy weighs the stack's cost (which the key does not change: it moves
        # only the AWS Budget's free limit) against its policy config: the stack's recording,
        # judged with the policy config the changed stack file makes.
        from platformctl.harness import load_config

        fired = check_evaluation(evaluations[stack_name],
                                 policy_config(load_config(path, REPO))).of(policy)
    else:
        fired = check_evaluation(evaluate_alone(path, alone)).of(policy)
    assert fired
    # ...and only because of the setting: the same component from the stack as it is passes.
    unchanged = (evaluations[stack_name] if alone is None
                 else evaluate_alone(stack_name, alone))
    assert not check_evaluation(unchanged).of(policy)


def test_instance_families_come_from_policy_config(evaluations):
    dev = evaluations["dev"]
    config = policy_config(dev.config)
    config["allowed-instance-families"] = {"families": ["m7g"]}
    fired = check_evaluation(dev, config).of("allowed-instance-families")
    # The nodes and the NAT instance's launch template.
    assert {v.resource_type for v in fired} == {"aws:eks/nodeGroup:NodeGroup",
                                                "aws:ec2/launchTemplate:LaunchTemplate"}
    assert any("t4g.medium" in v.message for v in fired)
    assert any("t4g.nano" in v.message for v in fired)


def test_budget_limit_is_mandatory_and_names_the_largest_lines(evaluations):
    dev = evaluations["dev"]
    config = policy_config(dev.config)
    config["budget-limit"]["budgetMonthlyUsd"] = 100
    (verdict,) = check_evaluation(dev, config).of("budget-limit")
    assert verdict.enforcement == "mandatory"
    assert "estimated $104.53/month is 105% of the $100.00 budget" in verdict.message
    assert "EKS control plane (standard support) $73.00" in verdict.message


def test_enforcement_comes_from_policy_config(evaluations):
    prod = evaluations["prod"]
    resources = _with(prod, "aws:rds/instance:Instance", "publiclyAccessible", True)
    config = policy_config(prod.config)
    config["rds-not-public"] = "advisory"
    (verdict,) = check(resources, config).of("rds-not-public")
    assert verdict.enforcement == "advisory"
    config["rds-not-public"] = {"enforcementLevel": "disabled"}
    assert check(resources, config).of("rds-not-public") == []
    assert check(resources, {**config, "all": "disabled", "rds-not-public": {}}).violations == []


def test_unknown_values_make_a_policy_unable_to_run_not_violated():
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # pulumi_policy's unknown string
    resource = GuardResource("aws:rds/instance:Instance", "db", "urn:db",
                             {"publiclyAccessible": unknown, "storageEncrypted": True})
    report = check([resource], {})
    assert report.of("rds-not-public") == []
    (cannot,) = [v for v in report.cannot_run if v.policy == "rds-not-public"]
    assert "can't run policy 'rds-not-public'" in cannot.message and "during preview" in cannot.message
    assert cannot.enforcement == "advisory"


def test_not_applicable_is_recorded(evaluations):
    report = check_evaluation(evaluations["dev"])
    assert ("prod-data-protection", "not a production stack",
            evaluations["dev"].of_type("aws:rds/instance:Instance")[0].urn) in report.not_applicable
    assert [n for n in report.not_applicable if n[0] == "nat-per-az-outside-prod"] == []


def test_stack_policies_see_linked_parents_and_dependencies(evaluations):
    seen = {}

    def validate(args, report_violation):
        node_group = next(r for r in args.resources
                          if r.resource_type == "aws:eks/nodeGroup:NodeGroup")
        seen["parent"] = node_group.parent.resource_type
        seen["template"] = [d.resource_type for d in node_group.property_dependencies[
            "launchTemplate"]]
        seen["depends"] = {d.resource_type for d in node_group.dependencies}
        seen["provider"] = node_group.provider.props["region"] if node_group.provider else None

    probe = StackValidationPolicy(name="probe", description="links", validate=validate)
    check_evaluation(evaluations["dev"], {}, [probe])
    assert seen["parent"] == "platform:index:Cluster"
    assert seen["template"] == ["aws:ec2/launchTemplate:LaunchTemplate"]
    assert "aws:eks/addon:Addon" in seen["depends"]
    assert seen["provider"] == "us-east-1"
