"""The components stand on their own: each module owns its args and imports nothing from the
composition (stacks/), the Kubernetes-side components take a `KubernetesTarget` rather than the
EKS component (so they run on any cluster), and `SecurityStack` is the security of an
environment in one place."""

from __future__ import annotations

import ast

import pytest

from components import tagging
from components.admission import AdmissionArgs, AdmissionControl
from components.network import NetworkArgs
from components.observability import AlertingArgs, ObservabilityArgs, ObservabilityStack
from platformctl.harness import evaluate
from stacks import config as config_model
from tests.conftest import REPO
from tests.units import EXISTING_VPC, existing_network, plain_target

RELEASE = "kubernetes:helm.sh/v3:Release"


def test_no_component_imports_the_composition():
    offenders = []
    for path in sorted((REPO / "components").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names
                          if n == "stacks" or n.startswith(("stacks.", "platformctl"))]
    assert offenders == []


def test_component_args_are_the_config_models_sections():
    fields = config_model.PlatformConfig.model_fields
    assert fields["network"].annotation is NetworkArgs
    assert fields["observability"].annotation is ObservabilityArgs
    assert fields["alerting"].annotation is AlertingArgs
    assert fields["security"].annotation is AdmissionArgs
    # Built in Python with the stack file's keys, validated the same way.
    args = NetworkArgs(cidr="10.40.0.0/16", azCount=2, natStrategy="single",
                       flowLogs={"retentionDays": 14})
    assert args.nat_strategy == "single"
    with pytest.raises(ValueError, match="prefix /8 is out of range"):
        NetworkArgs(cidr="10.0.0.0/8", azCount=2, natStrategy="single",
                    flowLogs={"retentionDays": 14})


def _observability_on_a_plain_cluster(source):
    cfg = config_model.load(source)
    tagging.install(cfg.standard_tags)
    stack = ObservabilityStack("lab", cfg.observability, cfg.alerting, plain_target(),
                               environment="lab")
    return {"topic": stack.topic.arn}


def test_observability_stack_on_a_plain_kubernetes_provider():
    evaluation = evaluate("dev", project_dir=REPO, program=_observability_on_a_plain_cluster)
    types = {r.type for r in evaluation.resources}
    assert not any(t.startswith("aws:eks") or t.startswith("aws:ec2") for t in types)
    assert "platform:index:Cluster" not in types
    (provider,) = evaluation.of_type("pulumi:providers:kubernetes")
    kubernetes_objects = [r for r in evaluation.resources if r.type.startswith("kubernetes:")]
    assert kubernetes_objects
    assert {r.provider.rsplit("::", 1)[0] for r in kubernetes_objects} == {provider.urn}
    (release,) = evaluation.of_type(RELEASE)
    assert release.inputs["name"] == "kube-prometheus-stack"
    assert release.dependencies == [evaluation.one("kubernetes:core/v1:Namespace",
                                                   "lab-monitoring").urn]
    # No database to watch and no budget given: neither is made.
    assert not evaluation.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert not evaluation.of_type("aws:budgets/budget:Budget")
    # The webhook's network policy admits the given API server network.
    policy = evaluation.one("kubernetes:networking.k8s.io/v1:NetworkPolicy",
                            "lab-monitoring-allow-api-server-to-the-operator-webhook")
    assert policy.inputs["spec"]["ingress"][0]["from"] == [
        {"ipBlock": {"cidr": "192.168.0.0/16"}}]
    assert provider.name == "existing"


def _admission_without_identity(source):
    cfg = config_model.load(source)
    tagging.install(cfg.standard_tags)
    with pytest.raises(ValueError, match="needs a target with a workload identity"):
        AdmissionControl("lab", cfg.security, plain_target())
    return {}


def test_a_component_that_gives_pods_aws_roles_refuses_a_target_without_identity():
    evaluate("dev", project_dir=REPO, program=_admission_without_identity)


def test_security_stack_composes_admission_tenancy_and_secrets(evaluations):
    for name, evaluation in evaluations.items():
        (security,) = evaluation.of_type("platform:index:SecurityStack")
        assert security.urn == f"urn:pulumi:{name}::platform::platform:index:SecurityStack::{name}"
        children = {r.type: r for r in evaluation.resources if r.parent == security.urn}
        assert sorted(children) == ["platform:index:AdmissionControl",
                                    "platform:index:SecretsStack", "platform:index:Tenancy"]
        for child in children.values():
            assert child.aliases == [{"name": "", "type": "", "stack": "", "project": "",
                                      "parentUrn": "", "noParent": True}]
        # Vault after the team namespaces it delivers secrets into (the SDK sends a
        # dependency on a component as one on everything in it).
        namespaces = {r.urn for r in evaluation.of_type("kubernetes:core/v1:Namespace")
                      if r.parent == children["platform:index:Tenancy"].urn}
        assert namespaces
        assert namespaces <= set(children["platform:index:SecretsStack"].dependencies)
        # Argo CD after all of it.
        (argo,) = evaluation.of_type("platform:index:ArgoBootstrap")
        releases = {r.urn for r in evaluation.of_type(RELEASE)
                    if r.name in (f"{name}-gatekeeper", f"{name}-vault")}
        assert len(releases) == 2 and releases <= set(argo.dependencies)
        # Nothing else is a SecurityStack child: every security resource sits in one of the
        # three, so a reviewer reads the tree as the architecture.
        assert all(evaluation.component_of(r).type != "platform:index:SecurityStack"
                   for r in evaluation.resources
                   if r.custom and evaluation.component_of(r) is not None)


def test_security_stack_outputs(evaluations):
    dev = evaluations["dev"]
    assert dev.outputs["admissionPolicies"].value
    assert dev.outputs["teamNamespaces"].value == ["checkout"]


# -- components built from references, no other component in sight ---------------------------

def _cluster_and_database_in_an_existing_vpc(source):
    from components.cluster import Cluster
    from components.database import Database

    cfg = config_model.load(source)
    tagging.install(cfg.standard_tags)
    network = existing_network()
    cluster = Cluster("lab", cfg.cluster, network, cfg.region, tags_for=cfg.standard_tags)
    database = Database("lab", cfg.database, network, cluster.node_security_group, cfg.region,
                        cluster.key_administrators)
    assert database.ref.ready is database.instance and database.ref.config is cfg.database
    return {}


def test_a_cluster_and_database_take_a_network_reference_not_a_network():
    evaluation = evaluate("dev", project_dir=REPO, program=_cluster_and_database_in_an_existing_vpc)
    types = {r.type for r in evaluation.resources}
    assert "platform:index:Network" not in types and "aws:ec2/vpc:Vpc" not in types
    (eks,) = evaluation.of_type("aws:eks/cluster:Cluster")
    assert eks.inputs["vpcConfig"]["subnetIds"] == EXISTING_VPC["private_subnet_ids"]
    for group in evaluation.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert group.inputs["subnetIds"] == EXISTING_VPC["private_subnet_ids"]
    (subnets,) = evaluation.of_type("aws:rds/subnetGroup:SubnetGroup")
    assert subnets.inputs["subnetIds"] == EXISTING_VPC["database_subnet_ids"]
    groups = {r.inputs.get("vpcId") for r in evaluation.of_type(
        "aws:ec2/securityGroup:SecurityGroup")}
    assert groups == {EXISTING_VPC["vpc_id"]}
    (lbc,) = [r for r in evaluation.of_type(RELEASE)
              if r.inputs["name"] == "aws-load-balancer-controller"]
    assert lbc.inputs["values"]["vpcId"] == EXISTING_VPC["vpc_id"]
