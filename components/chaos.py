"""Chaos experiments on AWS as code: `ChaosExperiments` (platform:index:ChaosExperiments).

Two AWS Fault Injection Service experiment templates, in the plan, run by a person (`aws fis
start-experiment --experiment-template-id <id>`; `aws fis stop-experiment --id <id>` aborts), each
stopping on its own when one of the platform's CloudWatch alarms fires:

* **database-failover**: the multi-AZ database reboots with a forced failover. Hypothesis: the
  standby takes over within two minutes and the services' connection pools reconnect; the
  availability SLO's fast burn does not fire. Stops on the database's CPU, storage or
  connection alarms.
* **node-termination**: a quarter of the node group's instances are terminated (one of four in
  prod). Hypothesis: the node group replaces them, PodDisruptionBudgets and the spread keep every
  service serving, no pod stays unschedulable; the availability SLO's fast burn does not fire.
  Stops on the cluster's unschedulable-pods alarm (AWS/EKS, 15 minutes) and the database alarms.

The templates cost nothing until run (FIS bills per action-minute of a run). The role FIS runs
them with may reboot this database and terminate this cluster's node instances, nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components import iam
from components.args import ArgsModel
from components.tagging import PlatformComponent


class ChaosArgs(ArgsModel):
    """Chaos experiments (`platform:chaos`): AWS FIS templates, and Chaos Mesh in the cluster."""

    fis: bool = Field(False, description="The database-failover and node-termination experiment "
                      "templates (prod by default); nothing runs until a person starts one.")
    mesh: bool = Field(False, description="Chaos Mesh in the cluster (dev by default): the "
                       "pod-kill, latency and memory-stress experiments of gitops/chaos/ run "
                       "when a person applies one. Its daemon is privileged on every node.")
    node_termination_percentage: int = Field(
        25, ge=1, le=50, description="Share of the node group's instances the node-termination "
        "experiment terminates (at most half: the platform holds with one node lost).")


# What each experiment claims and checks (the readiness review and docs/design.md read these).
EXPERIMENTS: dict[str, dict[str, str]] = {
    "database-failover": {
        "hypothesis": "The standby takes over within 2 minutes and the services' pools "
                      "reconnect.",
        "slo": "platform availability: the fast burn-rate alert does not fire",
        "stop": "the database's CPU, storage and connection alarms",
    },
    "node-termination": {
        "hypothesis": "Lost nodes are replaced; PDBs and the zone spread keep every service "
                      "serving; no pod stays unschedulable.",
        "slo": "platform availability: the fast burn-rate alert does not fire",
        "stop": "the cluster's unschedulable-pods alarm and the database's alarms",
    },
}


RUN = "aws fis start-experiment --experiment-template-id <this template's id>"
ABORT = "aws fis stop-experiment --id <the running experiment's id>"


class ChaosExperiments(PlatformComponent):
    service = "chaos"
    type_token = "platform:index:ChaosExperiments"

    def __init__(self, name: str, args: ChaosArgs, *, cluster_name: pulumi.Input[str],
                 node_groups: Sequence[aws.eks.NodeGroup], database: aws.rds.Instance,
                 alarms: Mapping[str, aws.cloudwatch.MetricAlarm], account: str,
                 partition: str, region: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-fis", description="AWS FIS: the platform's chaos experiments",
            assume_role_policy=iam.to_json(iam.service_trust("fis.amazonaws.com", account)),
            opts=child)
        aws.iam.RolePolicy(
            f"{name}-fis", role=role.id,
            policy=pulumi.Output.all(database.arn, cluster_name, *(g.arn for g in node_groups))
            .apply(lambda v: iam.to_json(iam.fis_experiments(
                partition, region, account, v[0], v[1], v[2:]))),
            opts=pulumi.ResourceOptions(parent=role))
        database_alarms = [a for slug, a in sorted(alarms.items()) if slug.startswith("database")]
        cluster_alarms = [a for slug, a in sorted(alarms.items()) if slug.startswith("cluster")]

        def template(key: str, action: dict[str, Any], target: dict[str, Any],
                     stops: Sequence[aws.cloudwatch.MetricAlarm]) -> aws.fis.ExperimentTemplate:
            claim = EXPERIMENTS[key]
            return aws.fis.ExperimentTemplate(
                f"{name}-{key}",
                description=f"{key}: {claim['hypothesis']}"[:512],
                role_arn=role.arn,
                actions=[aws.fis.ExperimentTemplateActionArgs(**action)],
                targets=[aws.fis.ExperimentTemplateTargetArgs(**target)],
                stop_conditions=[aws.fis.ExperimentTemplateStopConditionArgs(
                    source="aws:cloudwatch:alarm", value=alarm.arn) for alarm in stops],
                tags={"Name": f"{name}-{key}", "hypothesis": claim["hypothesis"][:256],
                      "slo": claim["slo"][:256], "run": RUN, "abort": ABORT},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[role]))

        self.templates = {
            "database-failover": template(
                "database-failover",
                {"name": "failover", "action_id": "aws:rds:reboot-db-instances",
                 "parameters": [aws.fis.ExperimentTemplateActionParameterArgs(
                     key="forceFailover", value="true")],
                 "target": aws.fis.ExperimentTemplateActionTargetArgs(
                     key="DBInstances", value="database")},
                {"name": "database", "resource_type": "aws:rds:db", "selection_mode": "ALL",
                 "resource_arns": [database.arn]},
                database_alarms),
            "node-termination": template(
                "node-termination",
                {"name": "terminate", "action_id": "aws:eks:terminate-nodegroup-instances",
                 "parameters": [aws.fis.ExperimentTemplateActionParameterArgs(
                     key="instanceTerminationPercentage",
                     value=str(args.node_termination_percentage))],
                 "target": aws.fis.ExperimentTemplateActionTargetArgs(
                     key="Nodegroups", value="nodes")},
                {"name": "nodes", "resource_type": "aws:eks:nodegroup", "selection_mode": "ALL",
                 "resource_arns": [g.arn for g in node_groups]},
                [*cluster_alarms, *database_alarms]),
        }
        self.register_outputs({"experimentTemplates": {
            key: t.id for key, t in self.templates.items()}})


MESH_NAMESPACE = "chaos-mesh"
# EKS nodes run containerd; the daemon talks to it through its socket on the host.
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"


def mesh_values() -> dict[str, Any]:
    """chaos-mesh chart values, read against the vendored chart (charts/charts.yaml): one
    controller, the daemon on containerd, webhook certificates from the cluster's cert-manager
    (deterministic renders, rotated), and nothing exposed: no dashboard (its tokens would reach
    every namespace), no DNS server, no bundled Prometheus (the platform's scrapes what it
    needs)."""
    return {
        "controllerManager": {
            "replicaCount": 1,
            "resources": {"requests": {"cpu": "25m", "memory": "128Mi"},
                          "limits": {"memory": "512Mi"}},
        },
        "chaosDaemon": {
            "runtime": "containerd", "socketPath": CONTAINERD_SOCKET,
            "resources": {"requests": {"cpu": "25m", "memory": "64Mi"},
                          "limits": {"memory": "256Mi"}},
        },
        "dashboard": {"create": False},
        "dnsServer": {"create": False},
        "prometheus": {"create": False},
        "webhook": {"certManager": {"enabled": True}},
    }


class ChaosMesh(PlatformComponent):
    """Chaos Mesh (chart chaos-mesh), for the experiments of gitops/chaos/."""

    service = "chaos"
    type_token = "platform:index:ChaosMesh"

    def __init__(self, name: str, target: Any, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        # The daemon needs the host's PID namespace and the container runtime's socket:
        # privileged, in a namespace of its own that nothing else runs in.
        self.namespace = target.platform_namespace(
            f"{name}-chaos-mesh", MESH_NAMESPACE, parent=self, pod_security="privileged")
        self.release = target.helm_release(
            f"{name}-chaos-mesh", parent=self, release="chaos-mesh", chart="chaos-mesh",
            namespace=MESH_NAMESPACE, values=mesh_values(), depends_on=[self.namespace])
        self.register_outputs({})

