"""The known cost traps: each is cheap to avoid and expensive to discover on the bill."""

from __future__ import annotations

from typing import Any

from pulumi_policy import ResourceValidationArgs, StackValidationArgs

from platform_guard.policies._base import (
    ADVISORY,
    MANDATORY,
    MEDIUM,
    PRODUCTION,
    get,
    resource_policy,
    stack_policy,
    violation,
)

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EC2_INSTANCE = "aws:ec2/instance:Instance"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
EBS_VOLUME = "aws:ebs/volume:Volume"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"

GRAVITON_FAMILIES = ["t4g", "m7g", "m8g", "c7g", "c8g", "r7g", "r8g"]


def _nat_per_az(args: StackValidationArgs, config: dict[str, Any]):
    if config["production"]:
        args.not_applicable("production stacks may run a NAT gateway per AZ")
    # By name: the plan's order of resources registered in parallel varies from run to run,
    # and the verdict names one of them (the same one every run).
    nats = sorted((r for r in args.resources if r.resource_type == "aws:ec2/natGateway:NatGateway"
                   and get(r.props, "connectivityType", default="public") == "public"),
                  key=lambda r: r.name)
    if len(nats) <= 1:
        return []
    names = ", ".join(r.name for r in nats)
    return [(f"stack: {len(nats)} NAT gateways ({names}) outside prod cost "
             f"${len(nats) * 32.85:.2f}/month before data. Fix: set "
             "platform:network.natStrategy to single (or none with interface endpoints) in this "
             "stack file", nats[1].urn)]


nat_per_az_outside_prod = stack_policy(
    "nat-per-az-outside-prod",
    "Outside production, one NAT gateway serves all AZs.",
    enforcement=ADVISORY, severity=MEDIUM,
    remediation="Use natStrategy: single in non-production stacks; each extra NAT gateway costs "
                "$32.85/month plus data processing.",
    check=_nat_per_az, config=PRODUCTION,
)


def _on_demand(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    if config["production"]:
        args.not_applicable("production stacks run on-demand nodes")
    capacity = get(args.props, "capacityType", default="ON_DEMAND")
    if capacity == "SPOT":
        return []
    return [violation(args.resource_type, args.name,
                      f"capacity type {capacity} outside production",
                      "set capacityType: SPOT for this node group in the stack file (spot is "
                      "about a third of the price)")]


on_demand_nodes_outside_prod = resource_policy(
    "on-demand-nodes-outside-prod",
    "Outside production, node groups run on spot capacity.",
    enforcement=ADVISORY, severity=MEDIUM,
    remediation="Set capacityType: SPOT (and several instance types) on non-production node "
                "groups.",
    check=_on_demand, config=PRODUCTION, types=(NODE_GROUP,),
)


def _families(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    if args.resource_type == NODE_GROUP:
        types = get(args.props, "instanceTypes", default=["t3.medium"])  # EKS's default
    else:
        single = get(args.props, "instanceType")
        types = [single] if single else []
    allowed = list(config["families"])
    outside = [t for t in types if str(t).split(".", 1)[0] not in allowed]
    if not outside:
        return []
    return [violation(args.resource_type, args.name,
                      f"instance type(s) {', '.join(outside)} outside the allowed families",
                      f"use a type of {', '.join(allowed)} (platform:cluster.nodeGroups."
                      "<name>.instanceTypes), or allow the family in "
                      "platform:cluster.allowedInstanceFamilies")]


allowed_instance_families = resource_policy(
    "allowed-instance-families",
    "Compute uses only the instance families allowed for the environment.",
    enforcement=MANDATORY, severity=MEDIUM,
    remediation="Pick an instance type from the allowed families (Graviton by default: cheaper "
                "per vCPU).",
    check=_families, types=(NODE_GROUP, LAUNCH_TEMPLATE, EC2_INSTANCE),
    config={"families": {"type": "array", "items": {"type": "string"},
                         "default": GRAVITON_FAMILIES,
                         "description": "Allowed instance families, e.g. t4g, m7g."}},
)


def _extended_support(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    if args.resource_type == EKS_CLUSTER:
        support = get(args.props, "upgradePolicy", "supportType", default="EXTENDED (AWS default)")
        if support != "STANDARD":
            return [violation(args.resource_type, args.name,
                              f"upgrade support type is {support}: past standard support the "
                              "control plane costs $0.60/hour instead of $0.10",
                              "set upgradePolicy.supportType STANDARD "
                              "(platform:cluster.supportType) and upgrade Kubernetes in time")]
        return []
    engine = str(get(args.props, "engine", default=""))
    if not (engine.startswith("postgres") or engine.startswith("mysql")
            or engine.startswith("aurora")):
        return []
    lifecycle = get(args.props, "engineLifecycleSupport",
                    default="open-source-rds-extended-support (RDS default)")
    if lifecycle != "open-source-rds-extended-support-disabled":
        return [violation(args.resource_type, args.name,
                          f"engine lifecycle support is {lifecycle}: RDS bills extended support "
                          "per vCPU-hour once the major version leaves standard support",
                          "set engineLifecycleSupport open-source-rds-extended-support-disabled "
                          "and plan major upgrades")]
    return []


no_extended_support = resource_policy(
    "no-extended-support",
    "EKS and RDS stay on standard support; extended support is billed on top.",
    enforcement=MANDATORY, severity=MEDIUM,
    remediation="EKS: upgradePolicy.supportType STANDARD. RDS: engineLifecycleSupport "
                "open-source-rds-extended-support-disabled. Then keep versions current.",
    check=_extended_support, types=(EKS_CLUSTER, RDS_INSTANCE, RDS_CLUSTER),
)


def _gp2(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    found = []
    if args.resource_type == RDS_INSTANCE:
        if get(args.props, "storageType", default="gp2 (RDS default)").startswith("gp2"):
            found.append("storageType")
    elif args.resource_type == EBS_VOLUME:
        if get(args.props, "type", default="gp2 (EBS default)").startswith("gp2"):
            found.append("type")
    elif args.resource_type == LAUNCH_TEMPLATE:
        for index, mapping in enumerate(get(args.props, "blockDeviceMappings", default=[])):
            if get(mapping, "ebs", "volumeType") == "gp2":
                found.append(f"blockDeviceMappings[{index}].ebs.volumeType")
    elif args.resource_type == STORAGE_CLASS:
        if get(args.props, "parameters", "type") == "gp2":
            found.append("parameters.type")
    if not found:
        return []
    return [violation(args.resource_type, args.name, f"gp2 storage ({', '.join(found)})",
                      "use gp3: 20% cheaper per GB with a 3000 IOPS baseline")]


no_gp2 = resource_policy(
    "no-gp2",
    "Block storage is gp3, not gp2.",
    enforcement=ADVISORY, severity=MEDIUM,
    remediation="Set gp3 on RDS storageType, EBS volume type, launch-template volumes and "
                "StorageClass parameters.type.",
    check=_gp2, types=(RDS_INSTANCE, EBS_VOLUME, LAUNCH_TEMPLATE, STORAGE_CLASS),
)

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def _exported_logs(args: StackValidationArgs, config: dict[str, Any]):
    """The log groups AWS services create on first export, with no retention: RDS's
    /aws/rds/instance/<id>/<log> for each exported log, EKS's /aws/eks/<name>/cluster."""
    retained = {get(r.props, "name"): get(r.props, "retentionInDays")
                for r in args.resources if r.resource_type == LOG_GROUP}
    for r in args.resources:
        if r.resource_type == RDS_INSTANCE:
            identifier = get(r.props, "identifier", default=r.name)
            wanted = [f"/aws/rds/instance/{identifier}/{log}"
                      for log in get(r.props, "enabledCloudwatchLogsExports", default=())]
        elif r.resource_type == EKS_CLUSTER:
            wanted = ([f"/aws/eks/{get(r.props, 'name', default=r.name)}/cluster"]
                      if get(r.props, "enabledClusterLogTypes", default=()) else [])
        else:
            continue
        for group in wanted:
            if not retained.get(group):
                state = "has no retention" if group in retained else "is not in the stack"
                yield (violation(r.resource_type, r.name,
                                 f"exports logs to {group}, which {state}: AWS creates it on the "
                                 "first export and keeps (and bills) every event forever",
                                 "create the log group in the stack, with retentionInDays, "
                                 "before the resource that exports to it"), r.urn)


exported_logs_retained = stack_policy(
    "exported-logs-retained",
    "Every log group an RDS instance or EKS cluster exports to is in the stack with a retention.",
    enforcement=MANDATORY, severity=MEDIUM, check=_exported_logs,
    remediation="Create each /aws/rds/instance/<id>/<log> and /aws/eks/<name>/cluster log group "
                "with retentionInDays, and make the exporting resource depend on it.")

POLICIES = [nat_per_az_outside_prod, on_demand_nodes_outside_prod, allowed_instance_families,
            no_extended_support, no_gp2, exported_logs_retained]
