"""Every platform-guard policy and rendered check, with a compliant and a violating resource;
each violation names the resource and says how to fix it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from platform_guard import policies

from platformctl.crossguard import GuardResource, RenderedObjects, check
from platformctl.runtime_checks import CHECKS, Release, RenderedCheck

ALL = [*policies.ALL, *CHECKS]  # what the review judges a stack by
BY_NAME = {policy.name: policy for policy in ALL}

GRAVITON_LT = {"metadataOptions": {"httpTokens": "required"},
               "blockDeviceMappings": [{"ebs": {"encrypted": "true", "volumeType": "gp3"}}]}
TAGS = {"team": "platform", "service": "network", "environment": "dev",
        "cost-center": "cc-1", "owner": "o@example.com", "managed-by": "pulumi"}
GOOD_POD = {"containers": [{"name": "api", "image": "registry.example.com/api@sha256:" + "a" * 64}]}


def resource(type_token: str, props: dict[str, Any], name: str = "subject",
             protect: bool = False, **kwargs) -> GuardResource:
    return GuardResource(type=type_token, name=name, urn=f"urn:pulumi:t::p::{type_token}::{name}",
                         props=props, protect=protect, **kwargs)


def deployment(pod_spec: dict[str, Any], labels: dict[str, str] | None = None) -> GuardResource:
    return resource("kubernetes:apps/v1:Deployment", {
        "metadata": {"labels": labels if labels is not None
                     else {"team": "payments", "app.kubernetes.io/name": "api"}},
        "spec": {"template": {"spec": pod_spec}}})


@dataclasses.dataclass(frozen=True)
class RenderedRelease(GuardResource):
    """A Helm release resource with what it renders (as `platformctl review` renders it): each
    case's releases carry their own objects, so no test sees another's."""

    rendered: Release | None = None


def release(name: str, objects: list[dict[str, Any]], namespace: str = "apps",
            chart: str = "chart 1.0.0", **kwargs) -> GuardResource:
    """A Helm release in `namespace` whose rendered objects are `objects`."""
    type_token = "kubernetes:helm.sh/v3:Release"
    urn = f"urn:pulumi:t::p::{type_token}::{name}"
    return RenderedRelease(type=type_token, name=name, urn=urn,
                           props={"name": name, "namespace": "apps"},
                           rendered=Release(urn, name, namespace, chart, objects), **kwargs)
SERVICE_WEBHOOK = {
    "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
    "metadata": {"name": "lbc"}, "webhooks": [{"name": "mservice", "failurePolicy": "Fail", "rules": [
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
         "resources": ["services"]}]}]}
RESTRICTED_NS = resource("kubernetes:core/v1:Namespace", {"metadata": {
    "name": "apps", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}, name="apps")
RESTRICTED_POD = {"securityContext": {"runAsNonRoot": True,
                                      "seccompProfile": {"type": "RuntimeDefault"}},
                  "containers": [{"name": "api", "securityContext": {
                      "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}


EXPORTER_SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {
    "name": "exporter", "labels": {"app": "exporter"}}, "spec": {"ports": [{"name": "metrics"}]}}
EXPORTER_MONITOR = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                    "metadata": {"name": "exporter"}, "spec": {
                        "selector": {"matchLabels": {"app": "exporter"}},
                        "endpoints": [{"port": "metrics"}]}}
PROMETHEUS_CR = {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                 "metadata": {"name": "k8s"}, "spec": {"serviceMonitorSelector": {},
                                                       "serviceMonitorNamespaceSelector": {}}}
ALERTS_RULE = resource("kubernetes:monitoring.coreos.com/v1:PrometheusRule", {"metadata": {
    "name": "alerts", "annotations": {"platform.example.org/metric-sources": json.dumps(
        {"ExporterDown": "apps/exporter"})}}}, name="alerts")


NODES = resource("aws:eks/nodeGroup:NodeGroup", {"nodeGroupName": "system", "instanceTypes": [
    "t4g.medium"], "scalingConfig": {"minSize": 3, "maxSize": 3, "desiredSize": 3}}, name="nodes")


def deployment_body(name: str, replicas: int) -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"name": name}, "spec": {"replicas": replicas,
            "template": {"spec": {"containers": [{"name": name, "resources": {
                "requests": {"cpu": "50m", "memory": "64Mi"}}}]}}}}


def team_quota(team: str, cpu: str, memory: str, pods: int = 20,
               namespace: str | None = None) -> GuardResource:
    """A team namespace's ResourceQuota as components/tenancy.py plans it."""
    namespace = namespace or team
    return resource("kubernetes:core/v1:ResourceQuota", {
        "metadata": {"name": "team-quota", "namespace": namespace, "labels": {"team": team}},
        "spec": {"hard": {"requests.cpu": cpu, "requests.memory": memory, "pods": str(pods)}}},
        name=f"{namespace}-quota")


STATEFUL = {"kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {
    "replicas": 2, "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
    "template": {"spec": {"containers": [{"name": "db", "resources": {
        "requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}


def zonal_nodes(name: str, zones: list[str], minimum: int = 1, maximum: int = 2,
                shape: str = "t4g.medium") -> list[GuardResource]:
    """A node group and its subnets (linked, as the engine links them), which sit in `zones`."""
    subnets = [resource("aws:ec2/subnet:Subnet", {"availabilityZone": z}, name=f"{name}-{z}")
               for z in zones]
    return [*subnets, resource("aws:eks/nodeGroup:NodeGroup", {
        "nodeGroupName": name, "instanceTypes": [shape],
        "subnetIds": [f"subnet-{z}" for z in zones],
        "scalingConfig": {"minSize": minimum, "maxSize": maximum, "desiredSize": minimum}},
        name=name, property_dependencies={"subnetIds": [s.urn for s in subnets]})]


def labelled(body: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    """`body` with its pod template labelled (what a PodDisruptionBudget selects)."""
    body["spec"]["template"]["metadata"] = {"labels": labels or {"app": "api"}}
    return body


def budget(rule: dict[str, Any], selector: dict[str, Any] | None = None,
           namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "api"}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": metadata,
            "spec": {**rule, "selector": selector or {"matchLabels": {"app": "api"}}}}


def webhook_server(replicas: int, zone_apart: bool) -> list[dict[str, Any]]:
    """A fail-closed webhook, its Service and the Deployment behind it (`replicas` pods, kept
    one per AZ by a required anti-affinity when `zone_apart`, else one per node)."""
    labels = {"app": "hook"}
    key = "topology.kubernetes.io/zone" if zone_apart else "kubernetes.io/hostname"
    server = labelled(deployment_body("hook", replicas), labels)
    server["spec"]["template"]["spec"]["affinity"] = {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": labels}, "topologyKey": key}]}}
    webhook = json.loads(json.dumps(SERVICE_WEBHOOK))
    webhook["webhooks"][0]["clientConfig"] = {"service": {"namespace": "apps", "name": "hook"}}
    return [webhook, server, {"apiVersion": "v1", "kind": "Service",
                              "metadata": {"name": "hook"}, "spec": {"selector": labels}}]


def vault_identity(actions: list[str]) -> list[GuardResource]:
    """The vault release (its service account rendered), its role with `actions`, the
    association of the role with the service account."""
    vault = release("vault", [{"apiVersion": "v1", "kind": "ServiceAccount",
                               "metadata": {"name": "vault"}}], chart="vault 0.34.1")
    role = resource("aws:iam/role:Role", {"name": "vault"}, name="vault-role")
    document = {"Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    return [vault, role,
            resource("aws:iam/rolePolicy:RolePolicy", {"policy": json.dumps(document)},
                     name="vault-role", property_dependencies={"role": [role.urn]}),
            resource("aws:eks/podIdentityAssociation:PodIdentityAssociation",
                     {"namespace": "apps", "serviceAccount": "vault"}, name="vault-identity",
                     property_dependencies={"roleArn": [role.urn]})]


def nat(name: str) -> GuardResource:
    return resource("aws:ec2/natGateway:NatGateway", {"connectivityType": "public"}, name=name)


def backup_stack(key_users: list[str], via: list[str]) -> list[GuardResource]:
    """A backup selection, its plan, its vault in us-east-1 and the vault key's policy."""
    role = "arn:aws:iam::123456789012:role/backup"
    key = resource("aws:kms/key:Key", {}, name="key")
    vault = resource("aws:backup/vault:Vault", {
        "name": "v", "arn": "arn:aws:backup:us-east-1:123456789012:backup-vault:v"}, name="vault",
        property_dependencies={"kmsKeyArn": [key.urn]})
    plan = resource("aws:backup/plan:Plan", {"rules": [{"targetVaultName": "v"}]}, name="plan")
    selection = resource("aws:backup/selection:Selection", {"iamRoleArn": role},
                         name="selection", property_dependencies={"planId": [plan.urn]})
    document = {"Statement": [{
        "Effect": "Allow", "Principal": {"AWS": key_users}, "Action": [
            "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
            "kms:CreateGrant", "kms:DescribeKey"],
        "Resource": "*", "Condition": {"StringEquals": {
            "kms:ViaService": [f"{s}.us-east-1.amazonaws.com" for s in via]}}}]}
    policy = resource("aws:kms/keyPolicy:KeyPolicy", {"policy": json.dumps(document)},
                      name="key-policy", property_dependencies={"keyId": [key.urn]})
    return [key, vault, plan, selection, policy]


def sleeping_stack(quieted: bool, stops: bool = True) -> list[GuardResource]:
    """A database stopped at night by a schedule, an alarm on it, and maybe the schedule that
    turns the alarm's actions off."""
    target = "arn:aws:scheduler:::aws-sdk:rds:" + ("stopDBInstance" if stops else "startDBInstance")
    found = [
        resource("aws:scheduler/schedule:Schedule", {"target": {
            "arn": target, "input": json.dumps({"DbInstanceIdentifier": "db"})}}, name="stop"),
        resource("aws:cloudwatch/metricAlarm:MetricAlarm", {
            "name": "db-storage", "alarmActions": ["arn:aws:sns:us-east-1:1:t"],
            "dimensions": {"DBInstanceIdentifier": "db"}}, name="db-storage")]
    if quieted:
        found.append(resource("aws:scheduler/schedule:Schedule", {"target": {
            "arn": "arn:aws:scheduler:::aws-sdk:cloudwatch:disableAlarmActions",
            "input": json.dumps({"AlarmNames": ["db-storage"]})}}, name="quiet"))
    return found


DEPLOYER = "arn:aws:iam::123456789012:role/deployer"
BACKUP_ROLE = "arn:aws:iam::123456789012:role/backup"

# policy -> (config, compliant resources, violating resources)
CASES: dict[str, tuple[Any, ...]] = {
    "aws-api-rules": (
        {},
        [resource("aws:ec2/securityGroup:SecurityGroup", {"description": "the nodes"})],
        # What the platform had: an apostrophe, which EC2 refuses at create.
        [resource("aws:ec2/securityGroup:SecurityGroup", {"description": "the cluster's nodes"})],
    ),
    "alarms-quiet-while-asleep": (
        {},
        sleeping_stack(quieted=True),
        sleeping_stack(quieted=False),  # what the platform had: the alarms acted all night
    ),
    "exported-logs-retained": (
        {},
        [resource("aws:rds/instance:Instance", {"identifier": "db", "enabledCloudwatchLogsExports": [
            "postgresql", "upgrade"]}),
         resource("aws:cloudwatch/logGroup:LogGroup", {
             "name": "/aws/rds/instance/db/postgresql", "retentionInDays": 30}, name="pg-log"),
         resource("aws:cloudwatch/logGroup:LogGroup", {
             "name": "/aws/rds/instance/db/upgrade", "retentionInDays": 30}, name="up-log")],
        # What the platform had: the upgrade log exported, its group never made.
        [resource("aws:rds/instance:Instance", {"identifier": "db", "enabledCloudwatchLogsExports": [
            "postgresql", "upgrade"]}),
         resource("aws:cloudwatch/logGroup:LogGroup", {
             "name": "/aws/rds/instance/db/postgresql", "retentionInDays": 30}, name="pg-log")],
    ),
    "backup-key-users": (
        {},
        backup_stack([DEPLOYER, BACKUP_ROLE], ["backup", "ec2"]),
        # What the platform had: only the deploying role may use the key.
        backup_stack([DEPLOYER], ["backup", "ec2"]),
    ),
    "required-tags": (
        {"environment": "dev"},
        [resource("aws:ec2/vpc:Vpc", {"tags": TAGS})],
        [resource("aws:ec2/vpc:Vpc", {"tags": {**TAGS, "owner": ""}})],
    ),
    "kubernetes-labels": (
        {},
        [resource("kubernetes:core/v1:Namespace", {"metadata": {"labels": {"team": "payments"}}}),
         deployment(GOOD_POD)],
        [deployment(GOOD_POD, labels={"app": "api"})],
    ),
    "budget-warning": (
        {"budgetMonthlyUsd": 80, "region": "us-east-1"},
        [resource("aws:kms/key:Key", {})],
        [resource("aws:eks/cluster:Cluster", {"upgradePolicy": {"supportType": "STANDARD"}})],
    ),
    "budget-limit": (
        {"budgetMonthlyUsd": 50, "region": "us-east-1"},
        [resource("aws:kms/key:Key", {})],
        [resource("aws:eks/cluster:Cluster", {"upgradePolicy": {"supportType": "STANDARD"}})],
    ),
    "budget-ceiling": (
        {"budgetCeilingMonthlyUsd": 35, "region": "us-east-1"},
        [resource("aws:eks/nodeGroup:NodeGroup", {
            "instanceTypes": ["m7g.medium"], "labels": {"node-group": "system"},
            "scalingConfig": {"minSize": 1, "desiredSize": 1, "maxSize": 1}})],
        [resource("aws:eks/nodeGroup:NodeGroup", {
            "instanceTypes": ["m7g.medium"], "labels": {"node-group": "system"},
            "scalingConfig": {"minSize": 1, "desiredSize": 1, "maxSize": 3}})],
    ),
    "nat-per-az-outside-prod": (
        {"production": False},
        [nat("nat-a")],
        [nat("nat-a"), nat("nat-b")],
    ),
    "on-demand-nodes-outside-prod": (
        {"production": False},
        [resource("aws:eks/nodeGroup:NodeGroup", {"capacityType": "SPOT"})],
        [resource("aws:eks/nodeGroup:NodeGroup", {"capacityType": "ON_DEMAND"})],
    ),
    "allowed-instance-families": (
        {"families": ["t4g", "m7g"]},
        [resource("aws:eks/nodeGroup:NodeGroup", {"instanceTypes": ["t4g.medium", "m7g.large"]})],
        [resource("aws:eks/nodeGroup:NodeGroup", {"instanceTypes": ["t4g.medium", "m5.large"]})],
    ),
    "no-extended-support": (
        {},
        [resource("aws:eks/cluster:Cluster", {"upgradePolicy": {"supportType": "STANDARD"}}),
         resource("aws:rds/instance:Instance", {
             "engine": "postgres",
             "engineLifecycleSupport": "open-source-rds-extended-support-disabled"})],
        [resource("aws:rds/instance:Instance", {"engine": "postgres"})],
    ),
    "no-gp2": (
        {},
        [resource("aws:rds/instance:Instance", {"storageType": "gp3"})],
        [resource("kubernetes:storage.k8s.io/v1:StorageClass", {"parameters": {"type": "gp2"}})],
    ),
    "storage-encrypted": (
        {},
        [resource("aws:rds/instance:Instance", {"storageEncrypted": True}),
         resource("aws:ec2/launchTemplate:LaunchTemplate", GRAVITON_LT)],
        [resource("aws:rds/instance:Instance", {"storageEncrypted": False})],
    ),
    "rds-not-public": (
        {},
        [resource("aws:rds/instance:Instance", {"publiclyAccessible": False})],
        [resource("aws:rds/instance:Instance", {"publiclyAccessible": True})],
    ),
    "prod-data-protection": (
        {"production": True},
        [resource("aws:rds/instance:Instance", {"deletionProtection": True,
                                                "backupRetentionPeriod": 14,
                                                "skipFinalSnapshot": False}, protect=True)],
        [resource("aws:rds/instance:Instance", {"deletionProtection": True,
                                                "backupRetentionPeriod": 14,
                                                "skipFinalSnapshot": False}, protect=False)],
    ),
    "eks-secrets-encryption": (
        {},
        [resource("aws:eks/cluster:Cluster", {"encryptionConfig": {
            "resources": ["secrets"], "provider": {"keyArn": "arn:aws:kms:k"}}})],
        [resource("aws:eks/cluster:Cluster", {})],
    ),
    "eks-control-plane-logs": (
        {},
        [resource("aws:eks/cluster:Cluster", {
            "enabledClusterLogTypes": ["api", "audit", "authenticator", "scheduler"]})],
        [resource("aws:eks/cluster:Cluster", {"enabledClusterLogTypes": ["api"]})],
    ),
    "eks-public-endpoint-restricted": (
        {},
        [resource("aws:eks/cluster:Cluster", {"vpcConfig": {
            "endpointPublicAccess": True, "publicAccessCidrs": ["198.51.100.0/24"]}}),
         resource("aws:eks/cluster:Cluster", {"vpcConfig": {"endpointPublicAccess": False}},
                  name="private")],
        [resource("aws:eks/cluster:Cluster", {"vpcConfig": {"endpointPublicAccess": True}})],
    ),
    "security-group-open-ingress": (
        {},
        [resource("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", {
            "cidrIpv4": "0.0.0.0/0", "fromPort": 443, "toPort": 443, "ipProtocol": "tcp"}),
         resource("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", {
             "cidrIpv4": "10.0.0.0/16", "fromPort": 22, "toPort": 22, "ipProtocol": "tcp"},
             name="internal-ssh")],
        [resource("aws:ec2/securityGroup:SecurityGroup", {"ingress": [
            {"cidrBlocks": ["0.0.0.0/0"], "fromPort": 22, "toPort": 22, "protocol": "tcp"}]})],
    ),
    "imdsv2-required": (
        {},
        [resource("aws:ec2/launchTemplate:LaunchTemplate", GRAVITON_LT)],
        [resource("aws:ec2/instance:Instance", {"instanceType": "t4g.small"})],
    ),
    "container-images-pinned": (
        {},
        [deployment(GOOD_POD),
         deployment({"containers": [{"name": "api", "image": "nginx:1.27.2"}]})],
        [deployment({"containers": [{"name": "api", "image": "nginx:latest"}]})],
    ),
    "no-privileged-pods": (
        {},
        [deployment(GOOD_POD)],
        [deployment({**GOOD_POD, "volumes": [{"name": "docker", "hostPath": {"path": "/var"}}]})],
    ),
    "webhook-install-order": (
        {},
        [release("lbc", [SERVICE_WEBHOOK]),
         release("app", [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}}],
                 dependencies=(release("lbc", [SERVICE_WEBHOOK]).urn,))],
        [release("lbc", [SERVICE_WEBHOOK]),
         release("app", [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}}])],
    ),
    "workload-identity": (
        {},
        [*vault_identity(["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "iam:GetRole"])],
        [*vault_identity(["kms:Encrypt", "kms:Decrypt", "kms:CreateGrant"])],
    ),
    "scrape-coverage": (
        {},
        [release("exporter", [EXPORTER_SERVICE, EXPORTER_MONITOR, PROMETHEUS_CR]), ALERTS_RULE],
        [release("unscraped", [EXPORTER_SERVICE, PROMETHEUS_CR]), ALERTS_RULE],
    ),
    # (config for the compliant case, compliant, violating, config for the violating case)
    "prod-exception": (
        {"exceptions": []}, [], [],
        {"exceptions": [{"key": "gitops.autoSync", "until": "2999-01-01",
                         "approvedBy": "@lead", "reason": "a migration with an end"}]},
    ),
    "prod-exception-expired": (
        {"exceptions": [{"key": "gitops.autoSync", "until": "2999-01-01",
                         "approvedBy": "@lead", "reason": "a migration with an end"}]}, [], [],
        {"exceptions": [{"key": "gitops.autoSync", "until": "2000-01-01",
                         "approvedBy": "@lead", "reason": "a migration with an end"}]},
    ),
    "node-capacity": (
        {"production": True},
        [NODES, release("small", [deployment_body("api", 10)])],
        [NODES, release("large", [deployment_body("api", 40)])],
    ),
    "quota-capacity": (
        {"production": True},
        [NODES, release("small", [deployment_body("api", 10)]), team_quota("pay", "2", "3Gi")],
        [NODES, release("small", [deployment_body("api", 10)]), team_quota("pay", "4", "3Gi")],
    ),
    "volume-zones": (
        {},
        [*zonal_nodes("a", ["us-east-1a"]), *zonal_nodes("b", ["us-east-1b"]),
         release("db", [STATEFUL])],
        [*zonal_nodes("ab", ["us-east-1a", "us-east-1b"]), release("db", [STATEFUL])],
    ),
    "webhook-availability": (
        {"production": True},
        [release("hook", webhook_server(2, zone_apart=True))],
        [release("hook", webhook_server(2, zone_apart=False))],
    ),
    "disruption-budgets": (
        {},
        [release("two", [labelled(deployment_body("api", 2)), budget({"maxUnavailable": 1})])],
        [release("one", [labelled(deployment_body("api", 1)), budget({"minAvailable": 1})])],
    ),
    "pod-security-admission": (
        {},
        [RESTRICTED_NS, release("good", [
            {"kind": "Deployment", "metadata": {"name": "api"},
             "spec": {"template": {"spec": RESTRICTED_POD}}}])],
        [RESTRICTED_NS, release("bad", [
            {"kind": "Deployment", "metadata": {"name": "api"},
             "spec": {"template": {"spec": {**RESTRICTED_POD, "securityContext": {}}}}}])],
    ),
}


def run(policy_name: str, config: dict[str, Any], resources: list[GuardResource]):
    policy = BY_NAME[policy_name]
    if isinstance(policy, RenderedCheck):
        rendered = {r.urn: r.rendered for r in resources if isinstance(r, RenderedRelease)}
        return check(resources, {policy_name: config}, [], RenderedObjects(rendered), [policy])
    return check(resources, {policy_name: config}, [policy], checks=[])


def test_every_policy_has_a_case():
    assert set(CASES) == {p.name for p in ALL}


@pytest.mark.parametrize("policy_name", sorted(CASES))
def test_compliant_resources_pass(policy_name):
    config, compliant, *_ = CASES[policy_name]
    report = run(policy_name, config, compliant)
    assert report.violations == []
    assert report.cannot_run == []


@pytest.mark.parametrize("policy_name", sorted(CASES))
def test_violations_name_the_resource_and_the_fix(policy_name):
    config, _, violating, *violating_config = CASES[policy_name]
    report = run(policy_name, violating_config[0] if violating_config else config, violating)
    assert report.violations, policy_name
    for verdict in report.violations:
        assert "Fix:" in verdict.message
        policy = BY_NAME[policy_name]
        assert verdict.remediation == policy.remediation_steps and verdict.remediation
        assert verdict.enforcement == policy.enforcement_level.value
        if verdict.resource_name is not None:
            assert f"'{verdict.resource_name}'" in verdict.message or verdict.resource_name in \
                verdict.message


@pytest.mark.parametrize("policy", ALL, ids=lambda p: p.name)
def test_every_policy_has_severity_description_and_remediation(policy):
    assert policy.severity is not None
    assert policy.description and policy.remediation_steps


def test_specific_findings():
    # A tagless image means latest; 0.0.0.0/0 on 443 is fine, on a range that includes 443 not.
    report = run("container-images-pinned", {}, [deployment(
        {"containers": [{"name": "api", "image": "registry.example.com/team/api"}]})])
    assert "has no tag" in report.violations[0].message
    report = run("security-group-open-ingress", {}, [resource(
        "aws:ec2/securityGroup:SecurityGroup", {"ingress": [
            {"cidrBlocks": ["0.0.0.0/0"], "fromPort": 0, "toPort": 65535, "protocol": "-1"}]})])
    assert "ports 0-65535" in report.violations[0].message
    # EKS clusters without a support policy are in extended support by AWS's default.
    report = run("no-extended-support", {}, [resource("aws:eks/cluster:Cluster", {})])
    assert "EXTENDED (AWS default)" in report.violations[0].message
    # The environment tag must be the stack's.
    report = run("required-tags", {"environment": "prod"},
                 [resource("aws:ec2/vpc:Vpc", {"tags": TAGS})])
    assert "environment tag 'dev' is not the stack's environment 'prod'" in \
        report.violations[0].message
    # Types that take no tags are not checked.
    assert run("required-tags", {}, [resource(
        "aws:ec2/routeTableAssociation:RouteTableAssociation", {})]).violations == []


@pytest.mark.parametrize(("users", "via", "refused"), [
    ([DEPLOYER, BACKUP_ROLE], ["backup", "ec2"], False),
    ([BACKUP_ROLE], ["backup", "ec2", "rds"], False),
    ([DEPLOYER], ["backup", "ec2"], True),  # the role the jobs run as is not named
    ([DEPLOYER, BACKUP_ROLE], ["backup"], True),  # EBS copies go through EC2
    ([DEPLOYER, BACKUP_ROLE], ["ec2"], True),
])
def test_backup_key_users_boundary(users, via, refused):
    report = run("backup-key-users", {}, backup_stack(users, via))
    assert bool(report.violations) is refused, report.violations
    if refused:
        assert "role/backup" in report.violations[0].message


def test_the_shipped_backup_keys_let_the_backup_role_use_them(evaluations):
    from platformctl.crossguard import from_recording

    prod = evaluations["prod"]
    resources = [from_recording(r) for r in prod.resources]
    assert run("backup-key-users", {}, resources).violations == []
    # With the key policies of before (the deploying role alone), both vaults are refused.
    admin = prod.config.cluster.admin_role_arn
    older = []
    for r in resources:
        if r.type == "aws:kms/keyPolicy:KeyPolicy" and r.name.endswith("backup"):
            document = json.loads(r.props["policy"])
            for statement in document["Statement"][1:]:
                statement["Principal"]["AWS"] = admin
            r = dataclasses.replace(r, props={**r.props, "policy": json.dumps(document)})
        older.append(r)
    refused = run("backup-key-users", {}, older).violations
    assert {v.resource_name for v in refused} == {"prod-backup", "prod-dr-backup"}
    assert any("copy jobs" in v.message and "us-west-2" in v.message for v in refused)


@pytest.mark.parametrize(("resources", "refused"), [
    ([resource("aws:eks/cluster:Cluster", {"name": "c", "enabledClusterLogTypes": ["api"]}),
      resource("aws:cloudwatch/logGroup:LogGroup", {"name": "/aws/eks/c/cluster",
                                                    "retentionInDays": 90}, name="g")], False),
    ([resource("aws:eks/cluster:Cluster", {"name": "c", "enabledClusterLogTypes": ["api"]}),
      resource("aws:cloudwatch/logGroup:LogGroup", {"name": "/aws/eks/c/cluster"}, name="g")],
     True),  # no retention
    ([resource("aws:eks/cluster:Cluster", {"name": "c", "enabledClusterLogTypes": []})], False),
    ([resource("aws:rds/instance:Instance", {"identifier": "db"})], False),  # exports nothing
])
def test_exported_logs_retained_boundary(resources, refused):
    assert bool(run("exported-logs-retained", {}, resources).violations) is refused


def test_alarms_quiet_while_asleep_boundary(evaluations):
    from platformctl.crossguard import from_recording

    # An alarm on a database no schedule stops: nothing sleeps.
    assert not run("alarms-quiet-while-asleep", {}, sleeping_stack(False, stops=False)).violations
    dev = [from_recording(r) for r in evaluations["dev"].resources]
    assert run("alarms-quiet-while-asleep", {}, dev).violations == []
    # Without the quieting schedules, every alarm on what sleeps is refused: the database's
    # three and the cluster's unschedulable-pods alarm (its nodes go to zero).
    loud = [r for r in dev if r.name not in ("dev-alarms-stop", "dev-alarms-start")]
    refused = run("alarms-quiet-while-asleep", {}, loud).violations
    assert sorted(v.resource_name for v in refused) == [
        "dev-cluster-pods-unschedulable", "dev-database-connections-high", "dev-database-cpu-high",
        "dev-database-storage-low"]


@pytest.mark.parametrize(("replicas", "rule", "refused"), [
    (1, {"maxUnavailable": 0}, True),  # what the vault chart renders for one server
    (3, {"maxUnavailable": 0}, True),
    (3, {"maxUnavailable": 1}, False),
    (1, {"maxUnavailable": 1}, False),
    (2, {"minAvailable": 2}, True),  # every replica must stay: none may go
    (2, {"minAvailable": 1}, False),
    (1, {"minAvailable": 1}, True),
    (3, {"minAvailable": "100%"}, True),
    (3, {"minAvailable": "67%"}, True),  # rounds up: 3 of 3 must stay
    (3, {"minAvailable": "66%"}, False),  # 2 of 3
    (4, {"maxUnavailable": "10%"}, False),  # rounds up to 1
    (4, {"maxUnavailable": "0%"}, True),
    (2, {"minAvailable": 0}, False),
])
def test_disruption_budget_boundary(replicas, rule, refused):
    report = run("disruption-budgets", {}, [release("r", [
        labelled(deployment_body("api", replicas)), budget(rule)])])
    assert bool(report.violations) is refused, report.violations
    if refused:
        assert "never allows an eviction" in report.violations[0].message
        assert f"over {replicas} pod{'' if replicas == 1 else 's'}" in report.violations[0].message


def test_a_disruption_budget_counts_only_the_pods_it_selects():
    # Another workload's replicas do not make a blocking budget allow evictions; a budget
    # whose selector or namespace matches no pod blocks nothing; an HPA's minReplicas counts.
    other = labelled(deployment_body("web", 5), {"app": "web"})
    assert run("disruption-budgets", {}, [release("r", [
        labelled(deployment_body("api", 1)), other, budget({"minAvailable": 1})])]).violations
    assert not run("disruption-budgets", {}, [release("r", [
        labelled(deployment_body("api", 1)), budget({"minAvailable": 1},
                                                    {"matchLabels": {"app": "none"}})])]).violations
    assert not run("disruption-budgets", {}, [release("r", [
        labelled(deployment_body("api", 1)),
        budget({"minAvailable": 1}, namespace="elsewhere")])]).violations
    hpa = {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "api"}, "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "api"}, "minReplicas": 2}}
    assert not run("disruption-budgets", {}, [release("r", [
        labelled(deployment_body("api", 1)), hpa, budget({"minAvailable": 1})])]).violations


@pytest.mark.parametrize(("container", "refused"), [
    ({"requests": {"cpu": "10m", "memory": "16Mi"}}, False),
    ({"requests": {"cpu": "10m"}}, True),
    ({"requests": {"memory": "16Mi"}}, True),
    ({"requests": {"cpu": "0", "memory": "16Mi"}}, True),
    ({"limits": {"cpu": "10m", "memory": "16Mi"}}, False),  # the API server copies them
    ({"limits": {"cpu": "10m"}, "requests": {"memory": "16Mi"}}, False),
    ({"limits": {"memory": "16Mi"}}, True),
    ({}, True),
])
def test_every_container_requests_cpu_and_memory(container, refused):
    # Containers, init containers and Jobs alike; a limit without a request is the request
    # (the API server copies it).
    good = {"name": "ok", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}
    probe = {"name": "probe", "resources": container}
    for pod in ({"containers": [good, probe]},
                {"initContainers": [probe], "containers": [good]}):
        for kind in ("Deployment", "Job", "DaemonSet"):
            body = {"kind": kind, "metadata": {"name": "w"},
                    "spec": {"template": {"spec": pod}}}
            report = run("node-capacity", {"production": False}, [NODES, release("r", [body])])
            messages = [v.message for v in report.violations]
            assert bool(messages) is refused, (kind, pod, messages)
            if refused:
                assert "probe:" in messages[0] and f"{kind} 'r/w'" in messages[0]


def test_quota_capacity_boundary():
    """Two t4g.medium of three left with one lost (3,860m, 7,108 MiB, 34 pods); the platform's
    10 pods request 500m and 640 MiB: the teams have 3,360m, 6,468 MiB and 24 pods between
    them, whichever dimension runs out, and each team is named with the most it could have."""
    platform = release("small", [deployment_body("api", 10)])

    def verdicts(*quotas, production=True, nodes=NODES):
        return run("quota-capacity", {"production": production},
                   [nodes, platform, *quotas]).violations

    assert not verdicts(team_quota("pay", "3360m", "6468Mi", pods=24))
    (cpu,) = verdicts(team_quota("pay", "3361m", "1Gi"))
    assert "short of CPU by 1m" in cpu.message and "Team pay (pay)" in cpu.message
    assert "platform:teams[pay].quota" in cpu.message
    (memory,) = verdicts(team_quota("pay", "1", "6469Mi"))
    assert "short of memory by 1 MiB" in memory.message
    (pods,) = verdicts(team_quota("pay", "1", "1Gi", pods=25))
    assert "short of pods by 1" in pods.message
    # Two teams that fit alone but not together: both named, each with its room beside the
    # other's quota.
    both = verdicts(team_quota("pay", "2", "1Gi", pods=5),
                    team_quota("ship", "2", "1Gi", pods=5))
    assert sorted(v.message.split(": ", 1)[0] for v in both) == ["team 'pay'", "team 'ship'"]
    assert all("it can have at most 1,360m" in v.message for v in both)
    # A team's namespaces add up.
    assert verdicts(team_quota("pay", "2", "1Gi", pods=5, namespace="pay-a"),
                    team_quota("pay", "2", "1Gi", pods=5, namespace="pay-b"))
    # Outside production no node is lost: three nodes hold 5,790m.
    assert not verdicts(team_quota("pay", "5", "1Gi"), production=False)
    # The groups count at maxSize: room to grow is room for quotas.
    grown = resource("aws:eks/nodeGroup:NodeGroup", {"nodeGroupName": "system", "instanceTypes": [
        "t4g.medium"], "scalingConfig": {"minSize": 3, "maxSize": 4, "desiredSize": 3}},
        name="nodes")
    assert not verdicts(team_quota("pay", "5", "1Gi"), nodes=grown)
    # A team's pods count against its quota, not twice as the platform's.
    mine = release("mine", [deployment_body("api", 10)], namespace="pay")
    assert not run("quota-capacity", {"production": True},
                   [NODES, platform, mine, team_quota("pay", "3360m", "1Gi")]).violations
    # No quotas, nothing to judge.
    assert not run("quota-capacity", {"production": True}, [NODES, platform]).violations


def test_volume_zones_boundary():
    one_zone = [*zonal_nodes("a", ["us-east-1a"]), *zonal_nodes("b", ["us-east-1b"])]
    two_zones = zonal_nodes("ab", ["us-east-1a", "us-east-1b"])
    stateless = {**STATEFUL, "spec": {**STATEFUL["spec"], "volumeClaimTemplates": []}}
    prometheus = {"kind": "Prometheus", "metadata": {"name": "p"}, "spec": {
        "replicas": 1, "storage": {"volumeClaimTemplate": {"spec": {}}}}}
    # A StatefulSet without volumes, or no StatefulSet at all, may run on a multi-AZ group.
    assert not run("volume-zones", {}, [*two_zones, release("db", [stateless])]).violations
    assert not run("volume-zones", {}, [*one_zone, release("db", [STATEFUL])]).violations
    (verdict,) = run("volume-zones", {}, [*two_zones, release("db", [STATEFUL])]).violations
    assert "node group ab spans us-east-1a, us-east-1b while StatefulSet db" in verdict.message
    # The operator's storage counts like a volume claim template.
    assert run("volume-zones", {}, [*two_zones, release("mon", [prometheus])]).violations
    # A group whose subnets' AZs are not in the plan is not taken to be of one AZ.
    unknown = [resource("aws:eks/nodeGroup:NodeGroup", {
        "nodeGroupName": "x", "instanceTypes": ["t4g.medium"], "subnetIds": ["subnet-1"],
        "scalingConfig": {"minSize": 1, "maxSize": 2}}, name="x")]
    (verdict,) = run("volume-zones", {}, [*unknown, release("db", [STATEFUL])]).violations
    assert "whose AZs the plan does not name" in verdict.message


def _pods(name: str, replicas: int, memory: str, **spec: Any) -> dict[str, Any]:
    kind = "StatefulSet" if spec.get("volumeClaimTemplates") else "Deployment"
    labels = {"app": name}
    return {"kind": kind, "metadata": {"name": name}, "spec": {
        "replicas": replicas, **spec, "template": {"metadata": {"labels": labels}, "spec": {
            **({"affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {"matchLabels": labels}}]}}}
               if spec.pop("apart", False) else {}),
            "containers": [{"name": name, "resources": {
                "requests": {"cpu": "10m", "memory": memory}}}]}}}}


def _drains(groups: list[GuardResource], objects: list[dict[str, Any]]) -> list[str]:
    report = run("node-capacity", {"production": True}, [*groups, release("r", objects)])
    return [v.message for v in report.violations]


def test_a_drain_places_each_pod_of_the_node_on_another():
    # Two nodes of 3,301 MiB allocatable, one 1,000 MiB pod: its node drained, the other takes it.
    two = zonal_nodes("a", ["us-east-1a"], minimum=2, maximum=3)
    assert _drains(two, [_pods("api", 1, "1000Mi")]) == []
    # Three nodes, one 1,400 MiB pod on each: a drained node's pod fits beside another's.
    three = zonal_nodes("a", ["us-east-1a"], minimum=3, maximum=4)
    assert _drains(three, [_pods("api", 3, "1400Mi")]) == []
    # 2,000 MiB each on three nodes: the sums with one lost (6,000 of 6,602) fit, but no
    # remaining node has 2,000 MiB left beside its own: every drain leaves a pod pending.
    messages = _drains(three, [_pods("api", 3, "2000Mi")])
    assert len(messages) == 3 and all("no node to go to" in m for m in messages)


def test_a_drain_honours_anti_affinity():
    # Three replicas, one per node (hard anti-affinity) on three nodes: a drained node's pod
    # cannot join another replica; without the rule it can.
    three = zonal_nodes("a", ["us-east-1a"], minimum=3, maximum=3)
    apart = _drains(three, [_pods("raft", 3, "100Mi", apart=True)])
    assert len(apart) == 3 and "Deployment raft" in apart[0]
    assert _drains(three, [_pods("raft", 3, "100Mi")]) == []


def test_a_pod_with_a_volume_stays_in_its_zone_and_waits_for_a_node_there():
    data = {"volumeClaimTemplates": [{"metadata": {"name": "data"}}]}
    a, b = zonal_nodes("a", ["us-east-1a"]), zonal_nodes("b", ["us-east-1b"])
    # Two replicas, one per AZ: draining either node, its pod cannot move to the other AZ;
    # its group can grow, so it waits for the autoscaler (not a violation).
    assert _drains([*a, *b], [_pods("db", 2, "100Mi", **data)]) == []
    # The same without room to grow: pending.
    fixed = [*zonal_nodes("a", ["us-east-1a"], 1, 1), *zonal_nodes("b", ["us-east-1b"], 1, 1)]
    messages = _drains(fixed, [_pods("db", 2, "100Mi", **data)])
    assert len(messages) == 2 and all("StatefulSet db" in m for m in messages)
    # One replica: it waits, and nothing else serves meanwhile.
    (message, *_) = _drains([*a, *b], [_pods("db", 1, "100Mi", **data)])
    assert "its only pod, bound to us-east-1" in message
    # Without a volume the pod crosses AZs.
    assert _drains(fixed, [_pods("web", 2, "100Mi")]) == []


@pytest.mark.parametrize("replicas, zone_apart, said", [
    (2, True, None),
    (3, True, None),
    (1, True, "one pod serves them"),
    (2, False, "its 2 pods may share an AZ"),
])
def test_a_fail_closed_webhook_survives_losing_an_az(replicas, zone_apart, said):
    report = run("webhook-availability", {"production": True},
                 [release("hook", webhook_server(replicas, zone_apart))])
    messages = [v.message for v in report.violations]
    if said is None:
        assert messages == []
    else:
        (message,) = messages
        assert said in message and "served by Deployment apps/hook" in message
        assert "fail-closed webhook (mservice) of Helm release 'hook'" in message


def test_webhook_availability_cannot_tell_without_the_service_and_is_for_production():
    objects = webhook_server(2, zone_apart=True)
    without_service = run("webhook-availability", {"production": True},
                          [release("hook", objects[:2])])
    (message,) = [v.message for v in without_service.violations]
    assert "it is not among the rendered objects" in message and "cannot be told" in message
    # A webhook that fails open is not its concern; outside production one replica is fine.
    open_webhook = json.loads(json.dumps(objects))
    open_webhook[0]["webhooks"][0]["failurePolicy"] = "Ignore"
    assert run("webhook-availability", {"production": True},
               [release("hook", open_webhook[:2])]).violations == []
    dev = run("webhook-availability", {"production": False},
              [release("hook", webhook_server(1, zone_apart=True))])
    assert dev.violations == [] and [n[0] for n in dev.not_applicable] == ["webhook-availability"]


def test_a_quota_that_bounds_no_requests_is_not_counted_as_fitting():
    """A ResourceQuota that bounds only limits (or pods) says nothing of what its namespace's
    pods may request: quota-capacity cannot count it, and says so rather than pass."""
    limits_only = resource("kubernetes:core/v1:ResourceQuota", {
        "metadata": {"name": "team-quota", "namespace": "pay", "labels": {"team": "pay"}},
        "spec": {"hard": {"limits.cpu": "4", "requests.memory": "1Gi", "pods": "20"}}},
        name="pay-quota")
    report = run("quota-capacity", {"production": True},
                 [NODES, release("small", [deployment_body("api", 10)]), limits_only])
    (message,) = [v.message for v in report.violations]
    assert "pay/team-quota: no requests.cpu: what its namespace's pods may request is not " \
           "bounded" in message and "cannot be told" in message
    bounded = run("quota-capacity", {"production": True},
                  [NODES, release("small", [deployment_body("api", 10)]),
                   team_quota("pay", "2", "3Gi")])
    assert bounded.violations == []
