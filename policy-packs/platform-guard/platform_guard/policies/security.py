"""The security baseline: encryption, private databases, protected production data, a hardened
EKS control plane, no open ingress, IMDSv2, pinned images and no privileged pods."""

from __future__ import annotations

import datetime
import fnmatch
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import ResourceValidationArgs, StackValidationArgs

from platform_guard.policies._base import (
    ADVISORY,
    CRITICAL,
    HIGH,
    MANDATORY,
    MEDIUM,
    PRODUCTION,
    get,
    resource_policy,
    stack_policy,
    violation,
)

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
EBS_VOLUME = "aws:ebs/volume:Volume"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EFS = "aws:efs/fileSystem:FileSystem"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
EC2_INSTANCE = "aws:ec2/instance:Instance"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"

REQUIRED_EKS_LOGS = ("api", "audit", "authenticator")

POD_SPEC_PATHS = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:argoproj.io/v1alpha1:Rollout": ("spec", "template", "spec"),
}


def _encrypted(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    unencrypted = []
    if args.resource_type in (RDS_INSTANCE, RDS_CLUSTER):
        if get(args.props, "storageEncrypted") is not True:
            unencrypted.append("storageEncrypted")
    elif args.resource_type in (EBS_VOLUME, EFS):
        if get(args.props, "encrypted") is not True:
            unencrypted.append("encrypted")
    elif args.resource_type == LAUNCH_TEMPLATE:
        for index, mapping in enumerate(get(args.props, "blockDeviceMappings", default=[])):
            if get(mapping, "ebs") and str(get(mapping, "ebs", "encrypted")).lower() != "true":
                unencrypted.append(f"blockDeviceMappings[{index}].ebs.encrypted")
    if not unencrypted:
        return []
    return [violation(args.resource_type, args.name, f"storage not encrypted ({', '.join(unencrypted)})",
                      "set it to true (with a customer KMS key for databases); encryption can "
                      "only be chosen at creation, so a fix replaces the resource")]


storage_encrypted = resource_policy(
    "storage-encrypted",
    "Databases, volumes and file systems are encrypted at rest.",
    enforcement=MANDATORY, severity=HIGH,
    remediation="Set storageEncrypted (RDS) or encrypted (EBS, EFS, launch-template volumes) to "
                "true, ideally with a customer-managed KMS key.",
    check=_encrypted, types=(RDS_INSTANCE, RDS_CLUSTER, EBS_VOLUME, EFS, LAUNCH_TEMPLATE),
)


def _public_db(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    if get(args.props, "publiclyAccessible") is True:
        return [violation(args.resource_type, args.name, "publicly accessible",
                          "set publiclyAccessible false and reach it from the cluster's nodes "
                          "through its security group")]
    return []


rds_not_public = resource_policy(
    "rds-not-public",
    "Databases are not reachable from the internet.",
    enforcement=MANDATORY, severity=CRITICAL,
    remediation="Set publiclyAccessible: false; place the instance in the database subnets.",
    check=_public_db, types=(RDS_INSTANCE,),
)


_EXCEPTIONS = {"exceptions": {
    "type": "array", "default": [],
    "description": "The stack's prodExceptions (key, until, approvedBy, reason).",
    "items": {"type": "object"}}}


def _live_exceptions(config: dict[str, Any]) -> set[str]:
    """The prod lock's keys a prodExceptions entry weakens until a date still ahead."""
    return {str(e["key"]) for e in config.get("exceptions") or ()
            if _today() < str(e["until"])}


def _protected(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    if not config["production"]:
        args.not_applicable("not a production stack")
    # A control weakened by a live, approved prodExceptions entry is the prod-exception
    # policy's to show (advisory, every review), not a block: the config accepted it.
    excepted = _live_exceptions(config)
    problems = []
    if get(args.props, "deletionProtection") is not True \
            and "database.deletionProtection" not in excepted:
        problems.append("deletionProtection is off")
    retention = get(args.props, "backupRetentionPeriod", default=1)  # RDS's default
    if int(retention) < int(config["minBackupRetentionDays"]) \
            and "database.backupRetentionDays" not in excepted:
        problems.append(f"backups kept {retention} days (< {config['minBackupRetentionDays']})")
    if get(args.props, "skipFinalSnapshot") is True and "database.finalSnapshot" not in excepted:
        problems.append("no final snapshot")
    if not args.opts.protect and "database.protect" not in excepted:
        problems.append("the Pulumi resource is not protected")
    if not problems:
        return []
    return [violation(args.resource_type, args.name, "; ".join(problems),
                      "turn on deletionProtection, finalSnapshot and protect, keep backups at "
                      "least 14 days (platform:database in a prod-preset stack)")]


prod_data_protection = resource_policy(
    "prod-data-protection",
    "Production databases survive `pulumi destroy`, deletion and replacement, with backups.",
    enforcement=MANDATORY, severity=CRITICAL,
    remediation="deletionProtection: true, skipFinalSnapshot: false, backupRetentionPeriod >= "
                "14 and the Pulumi `protect` option on the database.",
    check=_protected, types=(RDS_INSTANCE, RDS_CLUSTER),
    config={**PRODUCTION, **_EXCEPTIONS,
            "minBackupRetentionDays": {"type": "integer", "default": 14, "minimum": 1,
                                       "description": "Fewest days of backups in production."}},
)


def _eks_secrets(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    encryption = get(args.props, "encryptionConfig", default={})
    if isinstance(encryption, Sequence) and not isinstance(encryption, str):  # older shape
        encryption = encryption[0] if encryption else {}
    if "secrets" in (get(encryption, "resources", default=[]) or []) and \
            get(encryption, "provider", "keyArn"):
        return []
    return [violation(args.resource_type, args.name, "Kubernetes secrets are not envelope-encrypted",
                      "set encryptionConfig {resources: [secrets], provider.keyArn: <KMS key>}")]


eks_secrets_encryption = resource_policy(
    "eks-secrets-encryption",
    "EKS envelope-encrypts Kubernetes secrets with a KMS key.",
    enforcement=MANDATORY, severity=HIGH,
    remediation="Give the cluster encryptionConfig with resources [secrets] and a KMS key with "
                "rotation on.",
    check=_eks_secrets, types=(EKS_CLUSTER,),
)


def _eks_logs(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    enabled = set(get(args.props, "enabledClusterLogTypes", default=[]) or [])
    missing = [t for t in REQUIRED_EKS_LOGS if t not in enabled]
    if not missing:
        return []
    return [violation(args.resource_type, args.name,
                      f"control-plane logs off: {', '.join(missing)}",
                      "add them to enabledClusterLogTypes (platform:cluster.logTypes)")]


eks_control_plane_logs = resource_policy(
    "eks-control-plane-logs",
    "EKS sends its api, audit and authenticator logs to CloudWatch.",
    enforcement=MANDATORY, severity=MEDIUM,
    remediation="enabledClusterLogTypes must include api, audit and authenticator.",
    check=_eks_logs, types=(EKS_CLUSTER,),
)


def _eks_endpoint(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    vpc = get(args.props, "vpcConfig", default={})
    if get(vpc, "endpointPublicAccess", default=True) is False:  # AWS's default: public
        return []
    cidrs = get(vpc, "publicAccessCidrs", default=["0.0.0.0/0 (AWS default)"])
    open_to_all = [c for c in cidrs if str(c).startswith("0.0.0.0/0")]
    if not open_to_all:
        return []
    return [violation(args.resource_type, args.name,
                      "public API endpoint open to the whole internet",
                      "list your networks in publicAccessCidrs "
                      "(platform:cluster.publicEndpoint.cidrs) or disable the public endpoint")]


eks_public_endpoint_restricted = resource_policy(
    "eks-public-endpoint-restricted",
    "The EKS API is private, or public only to listed networks.",
    enforcement=MANDATORY, severity=HIGH,
    remediation="Set vpcConfig.publicAccessCidrs to your VPN / CI egress, or "
                "endpointPublicAccess false with a runner inside the VPC.",
    check=_eks_endpoint, types=(EKS_CLUSTER,),
)


def _world(cidr: Any) -> bool:
    try:
        return ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0
    except ValueError:
        return False


def _ports(from_port: Any, to_port: Any, protocol: Any) -> tuple[int, int]:
    if str(protocol) in ("-1", "all"):
        return 0, 65535
    return int(from_port if from_port is not None else 0), int(to_port if to_port is not None
                                                              else 65535)


def _open_ingress(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    allowed = {int(p) for p in config["allowedPorts"]}
    rules: list[tuple[list[Any], Any, Any, Any]] = []
    if args.resource_type == SECURITY_GROUP:
        for rule in get(args.props, "ingress", default=[]):
            rules.append(([*get(rule, "cidrBlocks", default=[]),
                           *get(rule, "ipv6CidrBlocks", default=[])],
                          get(rule, "fromPort"), get(rule, "toPort"), get(rule, "protocol")))
    elif args.resource_type == SG_INGRESS_RULE:
        rules.append(([c for c in (get(args.props, "cidrIpv4"), get(args.props, "cidrIpv6")) if c],
                      get(args.props, "fromPort"), get(args.props, "toPort"),
                      get(args.props, "ipProtocol")))
    elif args.resource_type == SG_RULE and get(args.props, "type") == "ingress":
        rules.append(([*get(args.props, "cidrBlocks", default=[]),
                       *get(args.props, "ipv6CidrBlocks", default=[])],
                      get(args.props, "fromPort"), get(args.props, "toPort"),
                      get(args.props, "protocol")))
    problems = []
    for cidrs, from_port, to_port, protocol in rules:
        if not any(_world(c) for c in cidrs):
            continue
        low, high = _ports(from_port, to_port, protocol)
        if not (low == high and low in allowed):
            problems.append(f"ports {low}-{high}" if low != high else f"port {low}")
    if not problems:
        return []
    return [violation(args.resource_type, args.name,
                      f"open to 0.0.0.0/0 on {', '.join(problems)}",
                      "allow only your networks, or another security group; only load-balancer "
                      f"ports ({', '.join(map(str, sorted(allowed)))}) may face the internet")]


security_group_open_ingress = resource_policy(
    "security-group-open-ingress",
    "No security group admits the whole internet except on load-balancer ports.",
    enforcement=MANDATORY, severity=HIGH,
    remediation="Replace 0.0.0.0/0 and ::/0 with specific networks or a referenced security "
                "group; only 80/443 on load balancers may be public.",
    check=_open_ingress, types=(SECURITY_GROUP, SG_INGRESS_RULE, SG_RULE),
    config={"allowedPorts": {"type": "array", "items": {"type": "integer"}, "default": [80, 443],
                             "description": "Ports that may be open to the internet."}},
)


def _imdsv2(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    tokens = get(args.props, "metadataOptions", "httpTokens", default="optional (AWS default)")
    if tokens == "required":
        return []
    return [violation(args.resource_type, args.name, f"instance metadata tokens are {tokens}",
                      "set metadataOptions.httpTokens required (IMDSv2), hop limit 1 for nodes")]


imdsv2_required = resource_policy(
    "imdsv2-required",
    "Instances require IMDSv2 session tokens.",
    enforcement=MANDATORY, severity=HIGH,
    remediation="metadataOptions: {httpTokens: required, httpPutResponseHopLimit: 1}.",
    check=_imdsv2, types=(LAUNCH_TEMPLATE, EC2_INSTANCE),
)


def pod_spec(resource_type: str, props: Any) -> Mapping[str, Any] | None:
    path = POD_SPEC_PATHS.get(resource_type)
    return get(props, *path) if path else None


def _containers(spec: Any) -> list[Mapping[str, Any]]:
    return [c for key in ("initContainers", "containers", "ephemeralContainers")
            for c in get(spec, key, default=[]) if isinstance(c, Mapping)]


def image_problem(image: str) -> str | None:
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag (means latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return "uses the latest tag"
    return None


def _images(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    spec = pod_spec(args.resource_type, args.props)
    if spec is None:
        return []
    problems = []
    for container in _containers(spec):
        image = str(get(container, "image", default=""))
        problem = image_problem(image) if image else "has no image"
        if problem:
            problems.append(f"container {get(container, 'name', default='?')} image "
                            f"'{image}' {problem}")
    if not problems:
        return []
    return [violation(args.resource_type, args.name, "; ".join(problems),
                      "pin images by digest (image@sha256:...) or at least an immutable "
                      "version tag")]


container_images_pinned = resource_policy(
    "container-images-pinned",
    "Kubernetes workloads pin their images: no latest tag, no tagless image.",
    enforcement=MANDATORY, severity=MEDIUM,
    remediation="Reference images by digest (registry/app@sha256:...) or a version tag.",
    check=_images, types=tuple(POD_SPEC_PATHS),
)


def _privileged(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    spec = pod_spec(args.resource_type, args.props)
    if spec is None:
        return []
    problems = []
    for container in _containers(spec):
        if get(container, "securityContext", "privileged") is True:
            problems.append(f"container {get(container, 'name', default='?')} is privileged")
    for volume in get(spec, "volumes", default=[]):
        if get(volume, "hostPath"):
            problems.append(f"volume {get(volume, 'name', default='?')} mounts a hostPath")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if get(spec, key) is True:
            problems.append(f"{key} is on")
    if not problems:
        return []
    return [violation(args.resource_type, args.name, "; ".join(problems),
                      "drop privileged, hostPath and host namespaces; use a CSI volume or an "
                      "exception with an expiry (Gatekeeper)")]


no_privileged_pods = resource_policy(
    "no-privileged-pods",
    "Workloads run unprivileged, without hostPath volumes or host namespaces.",
    enforcement=MANDATORY, severity=HIGH,
    remediation="Remove securityContext.privileged, hostPath volumes and hostNetwork/hostPID/"
                "hostIPC from the pod spec.",
    check=_privileged, types=tuple(POD_SPEC_PATHS),
)

# -- the prod lock's exceptions ----------------------------------------------------------------

BACKUP_SELECTION = "aws:backup/selection:Selection"
BACKUP_PLAN = "aws:backup/plan:Plan"
BACKUP_VAULT = "aws:backup/vault:Vault"
KMS_KEY = "aws:kms/key:Key"
KMS_KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
# What AWS Backup needs of a vault's key, as the role its jobs run as (a copy job re-encrypts
# EBS snapshots into the destination vault's key through EC2).
BACKUP_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant",
                      "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:DescribeKey")


def _linked(resource: Any, prop: str, kind: str) -> list[Any]:
    """The resources of type `kind` that `prop` of `resource` was computed from (CrossGuard
    links property dependencies as resources)."""
    deps = (getattr(resource, "property_dependencies", None) or {}).get(prop) or ()
    return [d for d in deps if d.resource_type == kind]


def _allows(document: Mapping[str, Any], principal: str, action: str, service: str) -> bool:
    """Whether a key policy lets `principal` call `action` through `service` (kms:ViaService)."""
    statements = document.get("Statement") or ()
    if isinstance(statements, Mapping):
        statements = [statements]
    for st in statements:
        if st.get("Effect") != "Allow":
            continue
        who = (st.get("Principal") or {})
        who = who.get("AWS", ()) if isinstance(who, Mapping) else who
        who = [who] if isinstance(who, str) else list(who)
        if principal not in who and "*" not in who:
            continue
        actions = st.get("Action") or ()
        actions = [actions] if isinstance(actions, str) else list(actions)
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions):
            continue
        via = json.dumps(st.get("Condition") or {})
        if "kms:ViaService" in via and not re.search(
                re.escape(service).replace(r"\*", r"[a-z0-9-]+"), via):
            continue
        return True
    return False


def _region(resource: Any) -> str:
    """The region a resource is made in: its provider's (a second provider for the copy
    region), else what its ARN says; `*` when neither says."""
    provider = getattr(resource, "provider", None)
    region = get(provider.props, "region") if provider is not None else None
    if not region:
        parts = str(get(resource.props, "arn", default="")).split(":")
        region = parts[3] if len(parts) > 3 else None
    return str(region or "*")


def _backup_key_users(args: StackValidationArgs, config: dict[str, Any]):
    vaults = {get(r.props, "name"): r for r in args.resources
              if r.resource_type == BACKUP_VAULT}
    policies = {}
    for r in args.resources:
        if r.resource_type == KMS_KEY_POLICY:
            for key in _linked(r, "keyId", KMS_KEY):
                policies[key.urn] = r
    for selection in args.resources:
        if selection.resource_type != BACKUP_SELECTION:
            continue
        role = get(selection.props, "iamRoleArn")
        for plan in _linked(selection, "planId", BACKUP_PLAN):
            targets = []
            for rule in get(plan.props, "rules", default=()):
                targets.append((get(rule, "targetVaultName"), "backup jobs"))
                for copy in get(rule, "copyActions", default=()):
                    arn = str(get(copy, "destinationVaultArn", default=""))
                    targets.append((arn.rsplit(":", 1)[-1], "copy jobs"))
            for vault_name, what in targets:
                vault = vaults.get(vault_name)
                if vault is None:
                    continue
                region = _region(vault)
                for key in _linked(vault, "kmsKeyArn", KMS_KEY):
                    key_policy = policies.get(key.urn)
                    if key_policy is None:
                        yield violation(
                            BACKUP_VAULT, vault.name, f"its key {key.name} has no key policy of "
                            "the stack, so who may use it is not said here",
                            "give the key a KeyPolicy naming the backup role"), vault.urn
                        continue
                    document = json.loads(str(get(key_policy.props, "policy", default="{}")))
                    missing = [
                        f"{action} via {service}.{region}"
                        for service in ("backup", "ec2") for action in BACKUP_KEY_ACTIONS
                        if not _allows(document, str(role), action,
                                       f"{service}.{region}.amazonaws.com")]
                    if missing:
                        yield violation(
                            KMS_KEY_POLICY, key_policy.name,
                            f"the key of vault {vault_name} does not let the backup role "
                            f"{role}, which AWS Backup's {what} run as, use it: "
                            f"{', '.join(missing)}; the {what} would fail",
                            "name the backup role in the key policy's use statement, through "
                            f"backup.{region} and ec2.{region}"), key_policy.urn


backup_key_users = stack_policy(
    "backup-key-users",
    "Every role an AWS Backup job runs as may use the key of each vault it writes to (its own "
    "vault, and the copy region's), through AWS Backup and EC2.",
    enforcement=MANDATORY, severity=HIGH, check=_backup_key_users,
    remediation="Add the backup selection's role to the vault key's use statement.")


def _today() -> str:
    return datetime.datetime.now(datetime.UTC).date().isoformat()


def _exceptions(active: bool):
    def check(args: StackValidationArgs, config: dict[str, Any]):
        for exception in config.get("exceptions") or ():
            live = _today() < str(exception["until"])
            if live != active:
                continue
            state = (f"until {exception['until']}" if live
                     else f"expired on {exception['until']}")
            yield violation(
                "stack", f"prod exception {exception['key']}",
                f"weakened on purpose, {state}, approved by {exception['approvedBy']}: "
                f"{exception['reason']}",
                "restore the control and remove the prodExceptions entry" if live else
                "restore the control, or renew the entry with a new date and approval"), None
    return check


prod_exception = stack_policy(
    "prod-exception",
    "A control of the prod lock that the stack weakens on purpose (a prodExceptions entry, "
    "named, dated and approved) is shown in every review while it lasts.",
    enforcement=ADVISORY, severity=HIGH, check=_exceptions(active=True), config=_EXCEPTIONS,
    remediation="Restore the control and remove the entry before its date.")
prod_exception_expired = stack_policy(
    "prod-exception-expired",
    "A prodExceptions entry whose date has passed: the weakened control is no longer accepted.",
    enforcement=MANDATORY, severity=HIGH, check=_exceptions(active=False), config=_EXCEPTIONS,
    remediation="Restore the control, or renew the entry with a new date and approval.")

POLICIES = [storage_encrypted, rds_not_public, prod_data_protection, eks_secrets_encryption,
            eks_control_plane_logs, eks_public_endpoint_restricted, security_group_open_ingress,
            imdsv2_required, container_images_pinned, no_privileged_pods, prod_exception,
            prod_exception_expired, backup_key_users]
