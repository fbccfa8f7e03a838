"""The components stand on their own: each module owns its args and imports nothing from the
composition (stacks/), the Kubernetes-side components take a `KubernetesTarget` rather than the
EKS component (so they run on any cluster), and `SecurityStack` is the security of an
environment in one place."""

from __future__ import annotations

import ast

import pytest

from components.admission import AdmissionArgs, AdmissionControl
from components.network import NetworkArgs
from components.observability import AlertingArgs, ObservabilityArgs, ObservabilityStack
from stacks import config as config_model
from tests.conftest import REPO
from tests.units import (
    EXISTING_VPC,
    eks_cluster,
    evaluate_alone,
    existing_alarms,
    existing_database,
    existing_instance,
    existing_network,
    plain_target,
)

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


def _observability_on_a_plain_cluster(cfg):
    stack = ObservabilityStack("lab", cfg.observability, cfg.alerting, plain_target(),
                               environment="lab")
    return {"topic": stack.topic.arn}


def test_observability_stack_on_a_plain_kubernetes_provider():
    evaluation = evaluate_alone("dev", _observability_on_a_plain_cluster)
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


def _admission_without_identity(cfg):
    with pytest.raises(ValueError, match="needs a target with a workload identity"):
        AdmissionControl("lab", cfg.security, plain_target())


def test_a_component_that_gives_pods_aws_roles_refuses_a_target_without_identity():
    evaluate_alone("dev", _admission_without_identity)


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

def _cluster_and_database_in_an_existing_vpc(cfg):
    from components.cluster import Cluster
    from components.database import Database

    network = existing_network()
    cluster = Cluster("lab", cfg.cluster, network, cfg.region, tags_for=cfg.standard_tags)
    database = Database("lab", cfg.database, network, cluster.node_security_group, cfg.region,
                        cluster.key_administrators)
    assert database.ref.ready is database.instance and database.ref.config is cfg.database


def test_a_cluster_and_database_take_a_network_reference_not_a_network():
    evaluation = evaluate_alone("dev", _cluster_and_database_in_an_existing_vpc)
    types = {r.type for r in evaluation.resources}
    assert "platform:index:Network" not in types and "aws:ec2/vpc:Vpc" not in types
    (eks,) = evaluation.of_type("aws:eks/cluster:Cluster")
    assert eks.inputs["vpcConfig"]["subnetIds"] == EXISTING_VPC["private_subnet_ids"]
    # Zonal node groups: one per AZ the reference names, each in that AZ's subnet.
    assert [(g.name.rsplit("-", 3)[-3:], g.inputs["subnetIds"])
            for g in evaluation.of_type("aws:eks/nodeGroup:NodeGroup")] == [
        (zone.split("-"), [subnet]) for zone, subnet in zip(
            EXISTING_VPC["private_subnet_zones"], EXISTING_VPC["private_subnet_ids"], strict=True)]
    (subnets,) = evaluation.of_type("aws:rds/subnetGroup:SubnetGroup")
    assert subnets.inputs["subnetIds"] == EXISTING_VPC["database_subnet_ids"]
    groups = {r.inputs.get("vpcId") for r in evaluation.of_type(
        "aws:ec2/securityGroup:SecurityGroup")}
    assert groups == {EXISTING_VPC["vpc_id"]}
    (lbc,) = [r for r in evaluation.of_type(RELEASE)
              if r.inputs["name"] == "aws-load-balancer-controller"]
    assert lbc.inputs["values"]["vpcId"] == EXISTING_VPC["vpc_id"]


# -- every component alone ---------------------------------------------------------------------

def _tenancy(cfg):
    from components.tenancy import Tenancy

    return Tenancy(cfg.environment, cfg.teams, plain_target(), existing_network(),
                   cfg.observability.namespace)


def _logs(cfg):
    from components.logs import LogPipeline

    return LogPipeline(cfg.environment, cfg.observability.logs, eks_cluster(cfg).target,
                       environment=cfg.environment, region=cfg.region,
                       monitoring_namespace=cfg.observability.namespace)


def _traces(cfg):
    from components.traces import TracePipeline

    return TracePipeline(cfg.environment, cfg.observability.traces, eks_cluster(cfg).target,
                         environment=cfg.environment, region=cfg.region,
                         monitoring_namespace=cfg.observability.namespace)


def _chaos_mesh(cfg):
    from components.chaos import ChaosMesh

    return ChaosMesh(cfg.environment, plain_target())


def _backup(cfg):
    from components.backup import Backup

    return Backup(cfg.environment, cfg.backup, region=cfg.region, cluster_name="existing",
                  database=existing_instance(cfg), key_administrators=[cfg.cluster.admin_role_arn],
                  protect=cfg.preset == "prod")


def _off_hours(cfg):
    from components.schedule import OffHours

    cluster = eks_cluster(cfg)
    return OffHours(cfg.environment, cfg.off_hours, cluster.eks.name, cluster.node_group_sizes,
                    existing_instance(cfg))


def _chaos_experiments(cfg):
    from components.chaos import ChaosExperiments

    cluster = eks_cluster(cfg)
    return ChaosExperiments(cfg.environment, cfg.chaos, cluster_name=cluster.eks.name,
                            node_groups=cluster.node_groups, database=existing_instance(cfg),
                            alarms=existing_alarms(), account=cluster.account,
                            partition=cluster.partition, region=cfg.region)


def _security(cfg):
    from components.security import SecurityStack, SecurityStackArgs

    cluster = eks_cluster(cfg)
    return SecurityStack(cfg.environment, SecurityStackArgs(
        admission=cfg.security, vault=cfg.vault, teams=cfg.teams,
        admin_role_arn=cfg.cluster.admin_role_arn, key_administrators=cluster.key_administrators,
        monitoring_namespace=cfg.observability.namespace, protect=cfg.preset == "prod"),
        cluster.target, existing_network(), existing_database(cfg, cluster.node_security_group),
        cfg.region)


# (component, the stack whose config it takes, how to build it alone from references, the
# platform components in its plan beside it: an EKS Cluster where it needs a target with
# workload identity or node groups, which only EKS has; its own children)
ALONE = [
    ("Tenancy", "dev", _tenancy, set()),
    ("LogPipeline", "dev", _logs, {"Cluster"}),
    ("TracePipeline", "dev", _traces, {"Cluster"}),
    ("ChaosMesh", "dev", _chaos_mesh, set()),
    ("Backup", "prod", _backup, set()),
    ("OffHours", "dev", _off_hours, {"Cluster"}),
    ("ChaosExperiments", "dev", _chaos_experiments, {"Cluster"}),
    ("SecurityStack", "prod", _security,
     {"Cluster", "AdmissionControl", "Tenancy", "SecretsStack"}),
]
PLATFORM_COMPONENTS = {"Network", "Cluster", "Database", "ObservabilityStack", "SecurityStack",
                       "AdmissionControl", "Tenancy", "SecretsStack", "LogPipeline",
                       "TracePipeline", "ArgoBootstrap", "ChaosMesh", "ChaosExperiments",
                       "Backup", "OffHours"}


@pytest.mark.parametrize(("component", "stack", "build", "beside"), ALONE,
                         ids=[a[0] for a in ALONE])
def test_each_component_builds_alone_from_references(component, stack, build, beside):
    """No component needs another platform component to exist: given references (an existing
    VPC, database, alarms; a cluster target), it builds, and the platform's other components
    are nowhere in the plan (a Cluster only where the component needs an EKS target's workload
    identity or node groups, which only EKS has)."""
    evaluation = evaluate_alone(stack, build)
    made = {r.type.rsplit(":", 1)[-1] for r in evaluation.resources
            if r.type.startswith("platform:index:")}
    assert component in made
    children = [r for r in evaluation.resources if r.custom and any(
        a.type == f"platform:index:{component}" for a in evaluation.ancestors(r))]
    assert children, f"{component} made nothing of its own"
    assert made & PLATFORM_COMPONENTS == {component} | beside
