"""IAM policy documents the components write, as plain dicts (JSON-serialisable), so tests can
hand every one of them to `parliament`.

A document here names what a principal may do and why; the components attach them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

Document = dict[str, Any]
_ECR_HOST = re.compile(r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")


def to_json(document: Document) -> str:
    return json.dumps(document, sort_keys=True)


def service_trust(service: str, account: str, extra_actions: tuple[str, ...] = (),
                  source_arn: str | None = None) -> Document:
    """Trust policy for an AWS service principal, guarded against the confused deputy: only
    requests made on behalf of this account (and, if given, this resource) may assume it."""
    condition: dict[str, Any] = {"StringEquals": {"aws:SourceAccount": account}}
    if source_arn is not None:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": ["sts:AssumeRole", *extra_actions],
            "Condition": condition,
        }],
    }


def plain_service_trust(service: str) -> Document:
    """Trust policy for a service principal that sends no source context (EC2, EKS)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
        }],
    }


def pod_identity_trust(account: str, cluster_arn: str) -> Document:
    """EKS Pod Identity: the pods.eks.amazonaws.com principal, for this account's cluster only."""
    return service_trust("pods.eks.amazonaws.com", account, ("sts:TagSession",),
                         source_arn=cluster_arn)


def irsa_trust(provider_arn: str, issuer: str, namespace: str, service_account: str) -> Document:
    """IAM Roles for Service Accounts: exactly one service account of this cluster's OIDC issuer."""
    host = issuer.removeprefix("https://")
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                f"{host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                f"{host}:aud": "sts.amazonaws.com",
            }},
        }],
    }


def flow_logs_delivery(log_group_arn: str) -> Document:
    """What VPC Flow Logs needs to write into one log group."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "WriteFlowLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [log_group_arn, f"{log_group_arn}:*"],
        }, {
            "Sid": "FindTheGroup",
            "Effect": "Allow",
            "Action": "logs:DescribeLogGroups",
            "Resource": "*",  # DescribeLogGroups supports no resource-level permissions
        }],
    }


def log_agent(log_group_arns: Sequence[str]) -> Document:
    """What the node log agent (Fluent Bit's cloudwatch_logs output) needs: its own streams in
    the pipeline's log groups. No CreateLogGroup or PutRetentionPolicy: the program owns the
    groups and their retention."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "WriteNodeLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [arn for group in log_group_arns for arn in (group, f"{group}:*")],
        }],
    }


def trace_gateway() -> Document:
    """What the OpenTelemetry Collector's awsxray exporter needs: putting segments, nothing to
    read. X-Ray supports no resource-level permissions for these actions."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "PutTraces",
            "Effect": "Allow",
            "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
            "Resource": "*",
        }],
    }


def grafana_reader(log_group_arns: Sequence[str], traces: bool) -> Document:
    """What Grafana's CloudWatch and X-Ray data sources need to read the platform's logs and
    traces: queries on these log groups only; X-Ray's reads, listing groups and stopping a query
    support no resource-level permissions (parliament's IAM definitions say which do)."""
    statements: list[dict[str, Any]] = []
    if log_group_arns:
        statements += [{
            "Sid": "QueryThePlatformsLogs",
            "Effect": "Allow",
            "Action": ["logs:StartQuery", "logs:GetQueryResults", "logs:GetLogEvents",
                       "logs:GetLogGroupFields", "logs:DescribeLogStreams",
                       "logs:FilterLogEvents"],
            "Resource": [arn for group in log_group_arns for arn in (group, f"{group}:*")],
        }, {
            "Sid": "ListGroupsAndStopQueries",
            "Effect": "Allow",
            "Action": ["logs:StopQuery", "logs:DescribeLogGroups"],
            "Resource": "*",
        }]
    if traces:
        statements.append({
            "Sid": "ReadTraces",
            "Effect": "Allow",
            "Action": ["xray:BatchGetTraces", "xray:GetTraceSummaries", "xray:GetTraceGraph",
                       "xray:GetGroups", "xray:GetTimeSeriesServiceStatistics",
                       "xray:GetServiceGraph", "xray:GetInsightSummaries", "xray:GetInsight"],
            "Resource": "*",
        })
    return {"Version": "2012-10-17", "Statement": statements}


_CLUSTER_TAG = "elbv2.k8s.aws/cluster"


def load_balancer_controller(partition: str, vpc_id: str) -> Document:
    """The AWS Load Balancer Controller's permissions, written for this platform from the
    controller's documented behaviour: it reads the VPC, creates load balancers, target groups
    and security groups tagged `elbv2.k8s.aws/cluster` in this VPC, and changes or deletes only
    what carries that tag. Every action is scoped to the resource types it acts on, tighter than
    the upstream example policy. WAF and Shield integration are switched off in its Helm values,
    so none of their permissions are granted. The actions are those of upstream's
    docs/install/iam_policy.json at the vendored controller version, less WAF and Shield (the
    `workload-identity` policy compares them: platform_facts/identities.json)."""
    elb = f"arn:{partition}:elasticloadbalancing:*:*"
    ec2 = f"arn:{partition}:ec2:*:*"
    security_groups = f"{ec2}:security-group/*"
    in_this_vpc = {"ArnEquals": {"ec2:Vpc": f"{ec2}:vpc/{vpc_id}"}}
    owned = {"Null": {f"aws:ResourceTag/{_CLUSTER_TAG}": "false"}}
    tagged_at_creation = {"Null": {f"aws:RequestTag/{_CLUSTER_TAG}": "false"}}
    load_balancers = [f"{elb}:loadbalancer/net/*/*", f"{elb}:loadbalancer/app/*/*"]
    target_groups = f"{elb}:targetgroup/*/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ServiceLinkedRoleForElb",
                "Effect": "Allow",
                "Action": "iam:CreateServiceLinkedRole",
                "Resource": f"arn:{partition}:iam::*:role/aws-service-role/"
                            "elasticloadbalancing.amazonaws.com/*",
                "Condition": {"StringEquals": {
                    "iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
            },
            {
                # Describe/List calls support no resource-level permissions: "*" is the only form.
                "Sid": "ReadTheVpcAndLoadBalancers",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeAccountAttributes", "ec2:DescribeAddresses",
                    "ec2:DescribeAvailabilityZones", "ec2:DescribeInternetGateways",
                    "ec2:DescribeVpcs", "ec2:DescribeVpcPeeringConnections",
                    "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeInstances",
                    "ec2:DescribeNetworkInterfaces", "ec2:DescribeTags", "ec2:DescribeRouteTables",
                    "ec2:DescribeCoipPools", "ec2:DescribeIpamPools",
                    "elasticloadbalancing:DescribeLoadBalancers",
                    "elasticloadbalancing:DescribeCapacityReservation",
                    "elasticloadbalancing:DescribeLoadBalancerAttributes",
                    "elasticloadbalancing:DescribeListeners",
                    "elasticloadbalancing:DescribeListenerAttributes",
                    "elasticloadbalancing:DescribeListenerCertificates",
                    "elasticloadbalancing:DescribeSSLPolicies",
                    "elasticloadbalancing:DescribeRules",
                    "elasticloadbalancing:DescribeTargetGroups",
                    "elasticloadbalancing:DescribeTargetGroupAttributes",
                    "elasticloadbalancing:DescribeTargetHealth",
                    "elasticloadbalancing:DescribeTags",
                    "elasticloadbalancing:DescribeTrustStores",
                    "acm:ListCertificates", "iam:ListServerCertificates",
                ],
                "Resource": "*",
            },
            {
                "Sid": "ListSecurityGroupsOfThisVpc",
                "Effect": "Allow",
                "Action": "ec2:GetSecurityGroupsForVpc",
                "Resource": f"{ec2}:vpc/{vpc_id}",
            },
            {
                "Sid": "ReadCertificatesAndUserPools",
                "Effect": "Allow",
                "Action": ["acm:DescribeCertificate", "iam:GetServerCertificate",
                           "cognito-idp:DescribeUserPoolClient", "ec2:GetCoipPoolUsage"],
                "Resource": [f"arn:{partition}:acm:*:*:certificate/*",
                             f"arn:{partition}:iam::*:server-certificate/*",
                             f"arn:{partition}:cognito-idp:*:*:userpool/*",
                             f"{ec2}:coip-pool/*"],
            },
            {
                "Sid": "CreateSecurityGroupsInThisVpc",
                "Effect": "Allow",
                "Action": "ec2:CreateSecurityGroup",
                "Resource": [f"{ec2}:vpc/{vpc_id}", security_groups],
            },
            {
                "Sid": "TagSecurityGroupsItCreates",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": security_groups,
                "Condition": {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"},
                              **tagged_at_creation},
            },
            {
                "Sid": "RetagOnlyItsSecurityGroups",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
                "Resource": security_groups,
                "Condition": {"Null": {f"aws:RequestTag/{_CLUSTER_TAG}": "true",
                                       f"aws:ResourceTag/{_CLUSTER_TAG}": "false"}},
            },
            {
                # Backend rules also go onto the node/cluster security groups, which the
                # controller does not own (rules carry no tags): limited to this VPC instead.
                "Sid": "OpenTargetsToItsLoadBalancers",
                "Effect": "Allow",
                "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
                "Resource": security_groups,
                "Condition": in_this_vpc,
            },
            {
                "Sid": "DeleteOnlyItsSecurityGroups",
                "Effect": "Allow",
                "Action": "ec2:DeleteSecurityGroup",
                "Resource": security_groups,
                "Condition": owned,
            },
            {
                "Sid": "CreateTaggedLoadBalancers",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:CreateLoadBalancer",
                           "elasticloadbalancing:CreateTargetGroup"],
                "Resource": [*load_balancers, target_groups],
                "Condition": tagged_at_creation,
            },
            {
                "Sid": "ManageListenersAndRules",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:CreateListener",
                           "elasticloadbalancing:DeleteListener",
                           "elasticloadbalancing:CreateRule", "elasticloadbalancing:DeleteRule",
                           "elasticloadbalancing:ModifyListener",
                           "elasticloadbalancing:ModifyRule",
                           "elasticloadbalancing:SetRulePriorities",
                           "elasticloadbalancing:AddListenerCertificates",
                           "elasticloadbalancing:RemoveListenerCertificates"],
                "Resource": [*load_balancers,
                             f"{elb}:listener/net/*/*/*", f"{elb}:listener/app/*/*/*",
                             f"{elb}:listener-rule/net/*/*/*", f"{elb}:listener-rule/app/*/*/*"],
            },
            {
                "Sid": "TagAtCreation",
                "Effect": "Allow",
                "Action": "elasticloadbalancing:AddTags",
                "Resource": [target_groups, *load_balancers],
                "Condition": {"StringEquals": {"elasticloadbalancing:CreateAction": [
                    "CreateTargetGroup", "CreateLoadBalancer"]}, **tagged_at_creation},
            },
            {
                "Sid": "RetagOnlyItsLoadBalancers",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                "Resource": [target_groups, *load_balancers],
                "Condition": {"Null": {f"aws:RequestTag/{_CLUSTER_TAG}": "true",
                                       f"aws:ResourceTag/{_CLUSTER_TAG}": "false"}},
            },
            {
                "Sid": "TagListenersAndRules",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                "Resource": [f"{elb}:listener/net/*/*/*", f"{elb}:listener/app/*/*/*",
                             f"{elb}:listener-rule/net/*/*/*", f"{elb}:listener-rule/app/*/*/*"],
            },
            {
                "Sid": "ChangeOnlyItsLoadBalancers",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:ModifyLoadBalancerAttributes",
                           "elasticloadbalancing:SetIpAddressType",
                           "elasticloadbalancing:SetSecurityGroups",
                           "elasticloadbalancing:SetSubnets",
                           "elasticloadbalancing:DeleteLoadBalancer",
                           "elasticloadbalancing:ModifyTargetGroup",
                           "elasticloadbalancing:ModifyTargetGroupAttributes",
                           "elasticloadbalancing:DeleteTargetGroup",
                           "elasticloadbalancing:ModifyListenerAttributes",
                           "elasticloadbalancing:ModifyCapacityReservation",
                           "elasticloadbalancing:ModifyIpPools"],
                "Resource": [*load_balancers, target_groups,
                             f"{elb}:listener/net/*/*/*", f"{elb}:listener/app/*/*/*"],
                "Condition": owned,
            },
            {
                "Sid": "RegisterPods",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:RegisterTargets",
                           "elasticloadbalancing:DeregisterTargets"],
                "Resource": target_groups,
            },
        ],
    }


def alerts_topic_policy(topic_arn: str, account: str) -> Document:
    """Who may publish to the alerts topic: this account's CloudWatch alarms and AWS Budgets."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "CloudWatchAlarms",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        }, {
            "Sid": "Budgets",
            "Effect": "Allow",
            "Principal": {"Service": "budgets.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        }],
    }


def registry_read(partition: str, registries: Sequence[str]) -> Document:
    """Read-only pulls from the approved ECR registries (`<account>.dkr.ecr.<region>.amazonaws.com`
    with an optional repository prefix), for what checks image signatures: cosign signatures are
    OCI artifacts beside the image. Registries outside ECR need no AWS permission."""
    repositories = []
    for registry in registries:
        host, _, prefix = registry.rstrip("/").partition("/")
        match = _ECR_HOST.fullmatch(host)
        if match:
            account, region = match.groups()
            prefix = f"{prefix}/" if prefix else ""
            repositories.append(f"arn:{partition}:ecr:{region}:{account}:repository/{prefix}*")
    statements: list[dict[str, Any]] = []
    if repositories:
        statements = [
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken",
             "Resource": "*"},  # no resource-level permissions for this one
            {"Sid": "PullFromApprovedRegistries", "Effect": "Allow",
             "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                        "ecr:BatchCheckLayerAvailability"],
             "Resource": sorted(set(repositories))},
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def cluster_autoscaler(partition: str, region: str, account: str,
                       cluster_name: str) -> Document:
    """Cluster Autoscaler on EKS managed node groups (ASG auto-discovery): upstream's "full
    features" policy (kubernetes/autoscaler cloudprovider/aws/README.md at
    cluster-autoscaler-1.36.1), scoped. The two writing actions reach only Auto Scaling groups
    EKS made for a managed node group (named `eks-<node group>-<id>`) that carry this cluster's
    tag (`k8s.io/cluster-autoscaler/<cluster>: owned`, put there by EKS); node groups are read in
    this cluster only. The other reads have no resource-level permissions in IAM."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Discover", "Effect": "Allow", "Resource": "*", "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
            ]},
            {"Sid": "ReadThisClustersNodeGroups", "Effect": "Allow",
             "Action": "eks:DescribeNodegroup",
             "Resource": f"arn:{partition}:eks:{region}:{account}:nodegroup/{cluster_name}/*/*"},
            {"Sid": "ScaleThisClustersNodeGroups", "Effect": "Allow",
             "Action": ["autoscaling:SetDesiredCapacity",
                        "autoscaling:TerminateInstanceInAutoScalingGroup"],
             "Resource": f"arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:"
                         "autoScalingGroupName/eks-*",
             "Condition": {"StringEquals": {
                 f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}}},
        ],
    }


def nat_instance(partition: str, region: str, account: str, eni_id: str,
                 allocation_id: str, name_tag: str) -> Document:
    """The fck-nat instance at boot (AndrewGuenther/fck-nat service/fck-nat.sh): take the Elastic
    IP, turn off the source/destination check of its own primary interface, attach the static
    interface the private routes point at. Only that interface and that address, and only onto
    what carries the NAT instance's Name tag (the instance and its own interface, tagged by its
    launch template; the interface and the address, by the Network component)."""
    ec2 = f"arn:{partition}:ec2:{region}:{account}"
    tagged = {"StringEquals": {"aws:ResourceTag/Name": name_tag}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AttachTheStaticInterface", "Effect": "Allow",
             "Action": "ec2:AttachNetworkInterface",
             "Resource": [f"{ec2}:instance/*", f"{ec2}:network-interface/{eni_id}"],
             "Condition": tagged},
            {"Sid": "NoSourceDestCheckOnItsOwnInterface", "Effect": "Allow",
             "Action": "ec2:ModifyNetworkInterfaceAttribute",
             "Resource": f"{ec2}:network-interface/*", "Condition": tagged},
            {"Sid": "TakeTheAddress", "Effect": "Allow", "Action": "ec2:AssociateAddress",
             "Resource": [f"{ec2}:elastic-ip/{allocation_id}", f"{ec2}:instance/*",
                          f"{ec2}:network-interface/*"],
             "Condition": tagged},
            {"Sid": "Describe", "Effect": "Allow", "Resource": "*",
             "Action": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeAddresses"]},
        ],
    }


def off_hours(database_arn: str, node_group_arns: Sequence[str],
              nat_group_arn: str | None = None,
              alarm_arns: Sequence[str] = ()) -> Document:
    """EventBridge Scheduler putting a stack to sleep and waking it: resize its node groups (and
    its NAT instance's group), stop and start its database, turn its alarms' actions off and on,
    nothing else."""
    statements: list[dict[str, Any]] = [
        {"Sid": "ResizeTheNodeGroups", "Effect": "Allow",
         "Action": "eks:UpdateNodegroupConfig", "Resource": sorted(node_group_arns)},
        {"Sid": "StopAndStartTheDatabase", "Effect": "Allow",
         "Action": ["rds:StopDBInstance", "rds:StartDBInstance"], "Resource": database_arn},
    ]
    if nat_group_arn is not None:
        statements.append({"Sid": "ResizeTheNatInstance", "Effect": "Allow",
                           "Action": "autoscaling:UpdateAutoScalingGroup",
                           "Resource": nat_group_arn})
    if alarm_arns:
        statements.append({"Sid": "QuietTheAlarmsWhileAsleep", "Effect": "Allow",
                           "Action": ["cloudwatch:DisableAlarmActions",
                                      "cloudwatch:EnableAlarmActions"],
                           "Resource": sorted(alarm_arns)})
    return {"Version": "2012-10-17", "Statement": statements}


# Managing a key without using it: no Encrypt/Decrypt/GenerateDataKey, and no CreateGrant
# (a grant is a way to use it). PutKeyPolicy stays: whoever manages the key can rewrite its
# policy, which is why administrators are only the account and the role `pulumi up` runs as.
KEY_ADMINISTRATION = [
    "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey",
    "kms:DisableKey", "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation",
    "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListAliases", "kms:ListGrants",
    "kms:ListKeyPolicies", "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:RevokeGrant",
    "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource",
    "kms:UpdateAlias", "kms:UpdateKeyDescription",
]


def key_use(sid: str, principal: str | Sequence[str], actions: Sequence[str],
            condition: Document | None = None) -> Document:
    """One statement of a key policy that lets `principal` (one, or several) use the key."""
    who = principal if isinstance(principal, str) else sorted(set(principal))
    statement: Document = {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": who},
                           "Action": list(actions), "Resource": "*"}
    if condition:
        statement["Condition"] = condition
    return statement


def key_policy(administrators: Sequence[str], uses: Sequence[Document]) -> Document:
    """A KMS key policy that keeps administering a key apart from using it. Without one, AWS's
    default policy hands the key to IAM: any principal of the account whose IAM policy allows
    kms:Decrypt on * could use it. `administrators` (the account root, so the account never loses
    the key, and the role `pulumi up` runs as) manage it and never use it; `uses` (key_use) are
    the only ways to use it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AdministerNeverUse", "Effect": "Allow",
             "Principal": {"AWS": sorted(set(administrators))},
             "Action": KEY_ADMINISTRATION, "Resource": "*"},
            *uses,
        ],
    }


def vault_server(key_arn: str, login_role_arns: Sequence[str]) -> Document:
    """Vault's own AWS identity: the auto-unseal (awskms seal) wraps and unwraps its root key with
    one KMS key; the AWS auth method resolves the IAM roles its logins are bound to (the deploying
    role) to their unique IDs, so a role deleted and re-created under the same name is not let
    in."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AutoUnseal", "Effect": "Allow",
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": key_arn},
            {"Sid": "ResolveLoginRoles", "Effect": "Allow", "Action": "iam:GetRole",
             "Resource": sorted(login_role_arns)},
        ],
    }


def fis_experiments(partition: str, region: str, account: str, database_arn: str,
                    cluster_name: str, node_group_arns: Sequence[str]) -> Document:
    """What AWS FIS may do for the platform's experiments (components/chaos.py): reboot this
    database with a failover, and terminate this cluster's node instances through their node
    groups; describe what it acts on."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "FailOverTheDatabase", "Effect": "Allow",
             "Action": ["rds:RebootDBInstance", "rds:DescribeDBInstances"],
             "Resource": [database_arn]},
            {"Sid": "ReadTheNodeGroups", "Effect": "Allow",
             "Action": ["eks:DescribeNodegroup"], "Resource": list(node_group_arns)},
            {"Sid": "DescribeInstances", "Effect": "Allow",
             "Action": ["ec2:DescribeInstances"], "Resource": ["*"]},
            {"Sid": "TerminateTheClustersNodes", "Effect": "Allow",
             "Action": ["ec2:TerminateInstances"],
             "Resource": [f"arn:{partition}:ec2:{region}:{account}:instance/*"],
             "Condition": {"StringEquals": {"aws:ResourceTag/eks:cluster-name": cluster_name}}},
        ],
    }

