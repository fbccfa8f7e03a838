"""The AWS API's own rules on the values a plan sends, from botocore's service models.

Each AWS resource type the platform creates maps to the API operation the provider calls to create
it and each of its inputs to the request member it becomes (`OPERATIONS`: an input named like
its member, camelCase to PascalCase, maps by itself; the table says the others). A member's rules
come from its shape in the model: `min`/`max` (a string's length, a number's value, a list's or
map's size), `pattern` and `enum`; EC2 states its rules only in the member's documentation
("Constraints: Up to 255 characters in length. Valid characters: a-z, A-Z, 0-9, spaces, and
._-:/()#,@[]+=&;{}!$*"), which is parsed, never typed by hand. The provider checks few of these,
so a value outside them passes a preview and fails `pulumi up` at create.

The review does not load botocore: the rules of the members the mapping can reach are written to
`awsapi_rules.json` by `python -m platform_facts.awsapi --write` (from the pinned botocore's
models; a test regenerates it and fails on any difference), and `problems` reads that table.
Loading fourteen service models costs a review a quarter of a second; the table, milliseconds.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

RULES_FILE = Path(__file__).with_name("awsapi_rules.json")

# type -> (service, operation, {input path: member path}). Paths: `a.b` for nested structures,
# `a[]` for each element of a list, `*` the list a security group rule's peer decides (_peer),
# `Operation:` first when another call of the provider's create sends it; an input mapped to
# None is not sent as a member (said why). A member reached by automatic matching needs no entry.
OPERATIONS: dict[str, tuple[str, str, dict[str, str | None]]] = {
    "aws:autoscaling/group:Group": ("autoscaling", "CreateAutoScalingGroup", {
        "name": "AutoScalingGroupName", "vpcZoneIdentifiers": "VPCZoneIdentifier",
        "instanceRefresh": "StartInstanceRefresh:"}),  # its strategy, preferences: the call's
    "aws:backup/plan:Plan": ("backup", "CreateBackupPlan", {
        "name": "BackupPlan.BackupPlanName", "rules": "BackupPlan.Rules",
        "rules[].targetVaultName": "BackupPlan.Rules[].TargetBackupVaultName",
        "rules[].schedule": "BackupPlan.Rules[].ScheduleExpression"}),
    "aws:backup/selection:Selection": ("backup", "CreateBackupSelection", {
        "name": "BackupSelection.SelectionName", "iamRoleArn": "BackupSelection.IamRoleArn",
        "resources": "BackupSelection.Resources", "conditions": "BackupSelection.Conditions",
        "planId": "BackupPlanId"}),
    "aws:backup/vault:Vault": ("backup", "CreateBackupVault", {
        "name": "BackupVaultName", "kmsKeyArn": "EncryptionKeyArn",
        "forceDestroy": None}),  # the provider's own (empties the vault on delete)
    "aws:backup/vaultLockConfiguration:VaultLockConfiguration": (
        "backup", "PutBackupVaultLockConfiguration", {}),
    "aws:budgets/budget:Budget": ("budgets", "CreateBudget", {
        "name": "Budget.BudgetName", "notifications": "NotificationsWithSubscribers",
        "budgetType": "Budget.BudgetType", "timeUnit": "Budget.TimeUnit",
        "limitAmount": "Budget.BudgetLimit.Amount", "limitUnit": "Budget.BudgetLimit.Unit",
        "costFilters": None}),  # a list of {name, values} made into the CostFilters map
    "aws:cloudwatch/logGroup:LogGroup": ("logs", "CreateLogGroup", {
        "name": "logGroupName", "retentionInDays": None}),  # PutRetentionPolicy, an enum in prose
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("cloudwatch", "PutMetricAlarm", {
        "name": "AlarmName", "alarmActions": "AlarmActions", "okActions": "OKActions",
        "evaluateLowSampleCountPercentiles": "EvaluateLowSampleCountPercentile"}),
    "aws:ec2/defaultCreditSpecification:DefaultCreditSpecification": (
        "ec2", "ModifyDefaultCreditSpecification", {"cpuCredits": "CpuCredits"}),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("ec2", "AuthorizeSecurityGroupIngress", {
        "vpcId": None,  # finds the VPC's default group; the rules name it by its id
        "ingress[].description": "AuthorizeSecurityGroupIngress:IpPermissions[].*[].Description",
        "egress[].description": "AuthorizeSecurityGroupEgress:IpPermissions[].*[].Description"}),
    "aws:ec2/eip:Eip": ("ec2", "AllocateAddress", {}),
    "aws:ec2/flowLog:FlowLog": ("ec2", "CreateFlowLogs", {
        "vpcId": "ResourceIds[]", "iamRoleArn": "DeliverLogsPermissionArn"}),
    "aws:ec2/internetGateway:InternetGateway": ("ec2", "CreateInternetGateway", {
        "vpcId": "AttachInternetGateway:VpcId"}),
    "aws:ec2/launchTemplate:LaunchTemplate": ("ec2", "CreateLaunchTemplate", {
        "name": "LaunchTemplateName", "description": "VersionDescription",
        # The template's data: top-level inputs in the SDK, LaunchTemplateData in the API.
        **{key: f"LaunchTemplateData.{member}" for key, member in (
            ("instanceType", "InstanceType"), ("blockDeviceMappings", "BlockDeviceMappings"),
            ("creditSpecification", "CreditSpecification"),
            ("iamInstanceProfile", "IamInstanceProfile"), ("imageId", "ImageId"),
            ("metadataOptions", "MetadataOptions"), ("networkInterfaces", "NetworkInterfaces"),
            ("userData", "UserData"), ("vpcSecurityGroupIds", "SecurityGroupIds"))},
        "updateDefaultVersion": None}),  # the provider's own (ModifyLaunchTemplate after)
    "aws:ec2/natGateway:NatGateway": ("ec2", "CreateNatGateway", {}),
    "aws:ec2/networkInterface:NetworkInterface": ("ec2", "CreateNetworkInterface", {
        "securityGroups": "Groups",
        "sourceDestCheck": "ModifyNetworkInterfaceAttribute:SourceDestCheck"}),
    "aws:ec2/route:Route": ("ec2", "CreateRoute", {}),
    "aws:ec2/routeTable:RouteTable": ("ec2", "CreateRouteTable", {}),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("ec2", "AssociateRouteTable", {}),
    "aws:ec2/securityGroup:SecurityGroup": ("ec2", "CreateSecurityGroup", {
        "name": "GroupName",
        # Inline rules: AuthorizeSecurityGroupIngress/Egress, per kind of peer (see _peer).
        "ingress[].description": "AuthorizeSecurityGroupIngress:IpPermissions[].*[].Description",
        "egress[].description": "AuthorizeSecurityGroupEgress:IpPermissions[].*[].Description"}),
    "aws:ec2/subnet:Subnet": ("ec2", "CreateSubnet", {
        "mapPublicIpOnLaunch": "ModifySubnetAttribute:MapPublicIpOnLaunch"}),
    "aws:ec2/vpc:Vpc": ("ec2", "CreateVpc", {
        "enableDnsHostnames": "ModifyVpcAttribute:EnableDnsHostnames",
        "enableDnsSupport": "ModifyVpcAttribute:EnableDnsSupport"}),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("ec2", "CreateVpcEndpoint", {}),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        "ec2", "AuthorizeSecurityGroupIngress", {
            "description": "IpPermissions[].*[].Description", "securityGroupId": "GroupId",
            "referencedSecurityGroupId": "IpPermissions[].UserIdGroupPairs[].GroupId"}),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": (
        "ec2", "AuthorizeSecurityGroupEgress", {
            "description": "IpPermissions[].*[].Description", "securityGroupId": "GroupId",
            "referencedSecurityGroupId": "IpPermissions[].UserIdGroupPairs[].GroupId"}),
    "aws:eks/accessEntry:AccessEntry": ("eks", "CreateAccessEntry", {}),
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": (
        "eks", "AssociateAccessPolicy", {}),
    "aws:eks/addon:Addon": ("eks", "CreateAddon", {
        "resolveConflictsOnCreate": "resolveConflicts", "resolveConflictsOnUpdate": None}),
    "aws:eks/cluster:Cluster": ("eks", "CreateCluster", {
        "vpcConfig": "resourcesVpcConfig",
        "enabledClusterLogTypes": "logging.clusterLogging[].types"}),
    "aws:eks/nodeGroup:NodeGroup": ("eks", "CreateNodegroup", {
        "nodeGroupName": "nodegroupName", "nodeRoleArn": "nodeRole", "subnetIds": "subnets"}),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": (
        "eks", "CreatePodIdentityAssociation", {}),
    "aws:fis/experimentTemplate:ExperimentTemplate": ("fis", "CreateExperimentTemplate", {}),
    "aws:iam/instanceProfile:InstanceProfile": ("iam", "CreateInstanceProfile", {
        "name": "InstanceProfileName", "role": "AddRoleToInstanceProfile:RoleName"}),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": (
        "iam", "CreateOpenIDConnectProvider", {"clientIdLists": "ClientIDList"}),
    "aws:iam/role:Role": ("iam", "CreateRole", {
        "name": "RoleName", "assumeRolePolicy": "AssumeRolePolicyDocument"}),
    "aws:iam/rolePolicy:RolePolicy": ("iam", "PutRolePolicy", {
        "name": "PolicyName", "policy": "PolicyDocument", "role": "RoleName"}),  # id = name
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("iam", "AttachRolePolicy", {
        "role": "RoleName"}),
    "aws:kms/alias:Alias": ("kms", "CreateAlias", {"name": "AliasName"}),
    "aws:kms/key:Key": ("kms", "CreateKey", {
        "customerMasterKeySpec": "KeySpec",
        "deletionWindowInDays": "ScheduleKeyDeletion:PendingWindowInDays",
        "enableKeyRotation": None}),  # a flag: EnableKeyRotation is called when it is true
    "aws:kms/keyPolicy:KeyPolicy": ("kms", "PutKeyPolicy", {}),
    "aws:rds/instance:Instance": ("rds", "CreateDBInstance", {
        "identifier": "DBInstanceIdentifier", "instanceClass": "DBInstanceClass",
        "username": "MasterUsername", "passwordWo": "MasterUserPassword",
        "backupWindow": "PreferredBackupWindow",
        "maintenanceWindow": "PreferredMaintenanceWindow",
        "parameterGroupName": "DBParameterGroupName",
        "caCertIdentifier": "CACertificateIdentifier",
        "enabledCloudwatchLogsExports": "EnableCloudwatchLogsExports",
        "performanceInsightsEnabled": "EnablePerformanceInsights",
        "finalSnapshotIdentifier": "DeleteDBInstance:FinalDBSnapshotIdentifier",
        "skipFinalSnapshot": "DeleteDBInstance:SkipFinalSnapshot",
        "deleteAutomatedBackups": "DeleteDBInstance:DeleteAutomatedBackups",
        # The provider's own: when to apply a change, whether a major upgrade may, and the
        # write-only password's version (it sends the password when that changes).
        "applyImmediately": None, "allowMajorVersionUpgrade": None, "passwordWoVersion": None}),
    "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication": (
        "rds", "StartDBInstanceAutomatedBackupsReplication", {
            "retentionPeriod": "BackupRetentionPeriod"}),
    "aws:rds/parameterGroup:ParameterGroup": ("rds", "CreateDBParameterGroup", {
        "name": "DBParameterGroupName", "family": "DBParameterGroupFamily",
        "parameters[].name": "ModifyDBParameterGroup:Parameters[].ParameterName",
        "parameters[].value": "ModifyDBParameterGroup:Parameters[].ParameterValue",
        "parameters[].applyMethod": "ModifyDBParameterGroup:Parameters[].ApplyMethod"}),
    "aws:rds/subnetGroup:SubnetGroup": ("rds", "CreateDBSubnetGroup", {
        "name": "DBSubnetGroupName", "description": "DBSubnetGroupDescription"}),
    "aws:scheduler/schedule:Schedule": ("scheduler", "CreateSchedule", {}),
    "aws:sns/topic:Topic": ("sns", "CreateTopic", {}),
    "aws:sns/topicPolicy:TopicPolicy": ("sns", "SetTopicAttributes", {
        "arn": "TopicArn", "policy": "AttributeValue"}),
    "aws:sns/topicSubscription:TopicSubscription": ("sns", "Subscribe", {"topic": "TopicArn"}),
    "aws:xray/group:Group": ("xray", "CreateGroup", {}),
}

# Constrained members of an operation that no input of the SDK sets (so no value of the plan
# can break them), each with why: the coverage test accepts a constrained member only if an
# input maps to it, an SDK input of the same name would (automatic matching), or it is here.
NOT_FROM_INPUTS: dict[str, dict[str, str]] = {
    "aws:autoscaling/group:Group": {
        "LaunchConfigurationName": "launch configurations are not used (launch templates are)",
        "InstanceId": "a group is not created from an instance",
        "DeletionProtection": "the provider does not send it at create"},
    "aws:budgets/budget:Budget": {"ResourceTags": "the provider tags a budget afterwards"},
    "aws:ec2/flowLog:FlowLog": {"ResourceType": "the provider derives it (VPC, subnet, ENI)"},
    "aws:fis/experimentTemplate:ExperimentTemplate": {"clientToken": "the provider's own"},
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": {
        "IdentityCenterInstanceArn": "not an input of the SDK"},
    "aws:iam/role:Role": {"MaxSigninSessionDuration": "not an input of the SDK"},
    "aws:kms/key:Key": {"Origin": "the provider sends AWS_KMS (a key made in KMS)"},
    "aws:kms/keyPolicy:KeyPolicy": {"PolicyName": "always `default`, set by the provider"},
    "aws:rds/instance:Instance": {
        "DBCapacityReservationIdentifier": "not an input of the SDK",
        "MasterUserAuthenticationType": "not an input of the SDK"},
    "aws:scheduler/schedule:Schedule": {"ClientToken": "the provider's own"},
}

_PROSE_RULE = re.compile(r"(?:Valid characters:|Allowed characters are)\s*(.+?)(?:</p>|$)")
_PROSE_LENGTH = re.compile(r"Up to (\d+) characters")


@dataclass(frozen=True)
class Rule:
    """What the API accepts for one member."""

    member: str  # service.Operation.Member.Path
    kind: str  # string, integer, long, list, map, ...
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    enum: tuple[str, ...] = ()
    characters: frozenset[str] | None = None  # EC2's documented character set
    reserved_prefixes: tuple[str, ...] = ()  # documented: "May not begin with aws:"

    @property
    def constrained(self) -> bool:
        return bool(self.minimum is not None or self.maximum is not None or self.pattern
                    or self.enum or self.characters is not None or self.reserved_prefixes)

    def problems(self, value: Any) -> Iterator[str]:
        """What is wrong with `value` under this rule, one message each."""
        if self.kind in ("list", "map") and isinstance(value, (list, Mapping)):
            if self.kind == "list" and isinstance(value, Mapping):
                value = [value]  # one block in the SDK, a list of one in the API
            if self.maximum is not None and len(value) > self.maximum:
                yield f"{len(value)} entries, more than the {self.maximum:g} allowed"
            if self.minimum is not None and len(value) < self.minimum:
                yield f"{len(value)} entries, fewer than the {self.minimum:g} required"
            return
        if self.kind in ("integer", "long", "float", "double") and isinstance(value, (int, float)) \
                and not isinstance(value, bool):
            if self.maximum is not None and value > self.maximum:
                yield f"above the maximum {self.maximum:g}"
            if self.minimum is not None and value < self.minimum:
                yield f"below the minimum {self.minimum:g}"
            return
        if not isinstance(value, str):
            return
        if self.maximum is not None and len(value) > self.maximum:
            yield f"{len(value)} characters, more than the {self.maximum:g} allowed"
        if self.minimum is not None and len(value) < self.minimum:
            yield f"{len(value)} characters, fewer than the {self.minimum:g} required"
        if self.enum and value not in self.enum:
            shown = ", ".join(self.enum[:8]) + (", ..." if len(self.enum) > 8 else "")
            yield f"not one of {shown}"
        if self.pattern is not None:
            compiled = _compiled(self.pattern)
            if compiled is not None and not compiled.fullmatch(value):
                yield f"does not match the pattern {self.pattern}"
        for prefix in self.reserved_prefixes:
            if value.lower().startswith(prefix.lower()):
                yield f"begins with {prefix!r}, which AWS reserves"
        if self.characters is not None:
            bad = sorted(set(value) - self.characters)
            if bad:
                yield f"has {''.join(bad)!r}, outside the characters EC2 documents"


# A character class with Java's Unicode categories (`[\p{L}\p{Z}\p{N}_.:/=+\-@]`, the tag
# rules of IAM, CloudWatch Logs, RDS): Python's `re` has no `\p{..}`, so the class becomes an
# alternation: letters and numbers as `[^\W_]` (str.isalnum), separators as the Z category's
# code points listed, the rest as written.
_UNICODE_CLASS = re.compile(r"\[((?:\\p\{[LZN]\}|\\.|[^\]\\])*\\p\{[LZN]\}(?:\\p\{[LZN]\}|\\.|[^\]\\])*)\]")
_SEPARATORS = "\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def _unicode_class(match: re.Match[str]) -> str:
    body = match.group(1)
    categories = set(re.findall(r"\\p\{([LZN])\}", body))
    rest = re.sub(r"\\p\{[LZN]\}", "", body)
    if "Z" in categories:
        rest += _SEPARATORS
    options = []
    if categories & {"L", "N"}:
        if categories >= {"L", "N"}:
            options.append(r"[^\W_]")
        else:
            options.append(r"[^\W\d_]" if "L" in categories else r"\d")
    if rest:
        options.append(f"[{rest}]")
    return "(?:" + "|".join(options) + ")"


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    """A model pattern as a Python regex. Java's syntax mostly agrees; a range of the
    supplementary planes written as UTF-16 surrogate pairs (`\uD800\uDC00-\uDBFF\uDFFF`,
    Auto Scaling's) becomes Python's code points. A pattern that still does not compile is not
    judged (the test over every operation of the mapping keeps that list empty)."""
    pattern = pattern.replace(r"\uD800\uDC00-\uDBFF\uDFFF", r"\U00010000-\U0010FFFF")
    pattern = _UNICODE_CLASS.sub(_unicode_class, pattern)
    try:
        return re.compile(pattern)
    except re.error:
        return None


@cache
def _model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def _prose(documentation: str) -> tuple[frozenset[str] | None, int | None]:
    """EC2's rules stated in a member's documentation: the characters and the length."""
    characters: set[str] | None = None
    found = _PROSE_RULE.findall(documentation)
    if found:
        allowed = html.unescape(found[0]).strip().rstrip(".")
        head, _, literal = allowed.partition(", and ")
        characters = set(literal)
        for part in head.split(", "):
            if re.fullmatch(r"\w-\w", part):
                characters |= {chr(c) for c in range(ord(part[0]), ord(part[2]) + 1)}
            elif part == "spaces":
                characters.add(" ")
            else:
                raise ValueError(f"cannot read {part!r} in {allowed!r}")
    length = _PROSE_LENGTH.findall(documentation)
    return (frozenset(characters) if characters is not None else None,
            int(length[0]) if length else None)


def _member(service: str, operation: str, path: str) -> Any:
    """The botocore shape a member path names (`*` picks no branch: see rule_for)."""
    shape = _model(service).operation_model(operation).input_shape
    for part in path.split("."):
        listed = part.endswith("[]")
        name = part.removesuffix("[]")
        members = shape.members
        match = next((m for m in members if m.lower() == name.lower()), None)
        if match is None:
            raise KeyError(f"{service}.{operation}: no member {part!r} in {path!r}")
        shape = members[match]
        if listed:
            if shape.type_name != "list":
                raise KeyError(f"{service}.{operation}: {part!r} of {path!r} is not a list")
            shape = shape.member
    return shape


@cache
def rule_for(service: str, operation: str, path: str) -> Rule:
    return _shape_rule(_member(service, operation, path), f"{service}.{operation}.{path}")


# Rules a tag's documentation states in prose (EC2, RDS): its length in Unicode characters, the
# prefixes AWS reserves, and (RDS) the Java regex it is held to.
_PROSE_UNICODE_MAX = re.compile(r"maximum of (\d+) Unicode characters")
_PROSE_UNICODE_RANGE = re.compile(r"from (\d+) to (\d+) Unicode characters")
_PROSE_PREFIXES = re.compile(r"(?:[Mm]ay not begin with|can't be prefixed with)\s*"
                             r"<code>([^<]+)</code>(?:\s*or\s*<code>([^<]+)</code>)?")
_PROSE_JAVA_REGEX = re.compile(r'Java regex: "(.+?)"\)')


def _shape_rule(shape: Any, member: str) -> Rule:
    """A member's rules: the model's `min`/`max`/`pattern`/`enum`, and what its documentation
    states in prose (EC2's characters and length, a length in Unicode characters, a Java regex,
    prefixes AWS reserves)."""
    meta = shape.metadata
    doc = html.unescape(shape.documentation or "")
    characters, length = _prose(shape.documentation or "")
    minimum, maximum = meta.get("min"), meta.get("max", length)
    if (m := _PROSE_UNICODE_RANGE.search(doc)) and maximum is None:
        minimum, maximum = int(m.group(1)), int(m.group(2))
    if (m := _PROSE_UNICODE_MAX.search(doc)) and maximum is None:
        maximum = int(m.group(1))
    pattern = meta.get("pattern")
    if pattern is None and (m := _PROSE_JAVA_REGEX.search(doc)):
        pattern = m.group(1).replace("\\\\", "\\")
    reserved = _PROSE_PREFIXES.search(shape.documentation or "")
    prefixes = tuple(p for p in reserved.groups() if p) if reserved else ()
    return Rule(member=member, kind=shape.type_name, minimum=minimum, maximum=maximum,
                pattern=pattern, enum=tuple(getattr(shape, "enum", None) or ()),
                characters=characters, reserved_prefixes=prefixes)


@cache
def tag_rules(type_token: str) -> tuple[Rule, Rule] | None:
    """(key rule, value rule) of the tags the create call sends for a type, or None when it
    sends none. Found in the operation's own model: a map or a list of Key/Value structures
    named like tags, or EC2's TagSpecifications[].Tags[]."""
    if type_token not in OPERATIONS:
        return None
    service, operation, _ = OPERATIONS[type_token]
    shape = _model(service).operation_model(operation).input_shape
    for name, member in shape.members.items():
        if "tag" not in name.lower() or member.type_name not in ("map", "list"):
            continue
        where = f"{service}.{operation}.{name}"
        if member.type_name == "map":
            return (_shape_rule(member.key, f"{where} (key)"),
                    _shape_rule(member.value, f"{where} (value)"))
        element = member.member
        if element.type_name != "structure":
            continue
        if "Tags" in element.members and element.members["Tags"].type_name == "list":
            element, where = element.members["Tags"].member, f"{where}[].Tags"
        key = next((element.members[k] for k in ("Key", "TagKey") if k in element.members), None)
        value = next((element.members[k] for k in ("Value", "TagValue")
                      if k in element.members), None)
        if key is not None and value is not None:
            return (_shape_rule(key, f"{where}[].Key"), _shape_rule(value, f"{where}[].Value"))
    return None


def _tags(props: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The tags of a resource's inputs as (key, value): a map, or (Auto Scaling) a list of
    {key, value}."""
    tags = props.get("tags")
    if isinstance(tags, Mapping):
        return list(tags.items())
    if isinstance(tags, list):
        return [(t.get("key"), t.get("value")) for t in tags if isinstance(t, Mapping)]
    return []


def _auto(service: str, operation: str, key: str) -> str | None:
    members = _model(service).operation_model(operation).input_shape.members
    return next((m for m in members if m.lower() == key.lower()), None)


def _values(props: Mapping[str, Any], path: str) -> Iterator[tuple[str, Any, Any]]:
    """(concrete path, value, the list element it sits in) for an input path with `[]`."""
    head, _, rest = path.partition(".")
    key = head.removesuffix("[]")
    value = props.get(key) if isinstance(props, Mapping) else None
    if value is None:
        return
    if head.endswith("[]"):
        for index, item in enumerate(value if isinstance(value, list) else ()):
            if rest:
                for concrete, leaf, _ in _values(item, rest):
                    yield f"{key}[{index}].{concrete}", leaf, item
            else:
                yield f"{key}[{index}]", item, item
    elif rest:
        for concrete, leaf, element in _values(value, rest):
            yield f"{key}.{concrete}", leaf, element
    else:
        yield key, value, props


def _peer(element: Mapping[str, Any]) -> str:
    """Which IpPermissions list a security group rule's description goes into: another group
    (UserIdGroupPairs, which allows no '&'), a prefix list, an IPv6 or an IPv4 range."""
    if element.get("referencedSecurityGroupId") or element.get("securityGroups") \
            or element.get("self"):
        return "UserIdGroupPairs"
    if element.get("prefixListId") or element.get("prefixListIds"):
        return "PrefixListIds"
    if element.get("cidrIpv6") or element.get("ipv6CidrBlocks"):
        return "Ipv6Ranges"
    return "IpRanges"


def mapping(type_token: str, props: Mapping[str, Any]) -> dict[str, str | None]:
    """{input path: member path or None} for the inputs of one resource (top-level inputs
    matched by name, then the table's entries)."""
    service, operation, table = OPERATIONS[type_token]
    found: dict[str, str | None] = {}
    for key in props:
        member = _auto(service, operation, key)
        if member is not None:
            found[key] = member
    found.update(table)
    return found


# -- the review's table ---------------------------------------------------------------------

_PEERS = ("UserIdGroupPairs", "PrefixListIds", "Ipv6Ranges", "IpRanges")  # what _peer picks
_FIELDS = ("kind", "minimum", "maximum", "pattern", "enum", "characters", "reserved_prefixes")


def _as_json(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": rule.kind}
    for field in _FIELDS[1:]:
        value = getattr(rule, field)
        if value is not None and value != ():
            out[field] = "".join(sorted(value)) if field == "characters" else value
    return out


def _from_json(member: str, data: Mapping[str, Any]) -> Rule:
    characters = data.get("characters")
    return Rule(member=member, kind=data["kind"], minimum=data.get("minimum"),
                maximum=data.get("maximum"), pattern=data.get("pattern"),
                enum=tuple(data.get("enum", ())),
                characters=frozenset(characters) if characters is not None else None,
                reserved_prefixes=tuple(data.get("reserved_prefixes", ())))


_NESTED_DEPTH = 6  # EC2's shapes nest (and recurse); no input of the plans goes deeper


def _nested(shape: Any, prefix: str, depth: int, seen: tuple[str, ...]) -> Iterator[
        tuple[str, Any]]:
    """(member path, shape) of every member under a structure, lists as `[]`."""
    if depth == 0 or shape.type_name != "structure" or shape.name in seen:
        return
    for name, member in shape.members.items():
        path = f"{prefix}.{name}" if prefix else name
        yield path, member
        inner, listed = member, ""
        while inner.type_name == "list":
            inner, listed = inner.member, listed + "[]"
            yield path + listed, inner
        yield from _nested(inner, path + listed, depth - 1, (*seen, shape.name))


def build() -> dict[str, Any]:
    """The table the review reads, from botocore's models: per `service.Operation`, the rule of
    every constrained member an input can reach (every member at any depth, lists as `[]`; each
    path of the mapping, `*` spelled out for every kind of peer) and the names of the members
    under each structure (what an input's name is matched against); per type, its tags' key
    and value rules."""
    import botocore

    operations: dict[str, dict[str, Any]] = {}
    names: dict[str, dict[str, list[str]]] = {}
    tags: dict[str, Any] = {}

    def add(op: str, path: str, shape: Any) -> None:
        rule = _shape_rule(shape, f"{op}.{path}")
        if rule.constrained:
            operations.setdefault(op, {})[path] = _as_json(rule)

    def walk(service: str, operation: str) -> None:
        op = f"{service}.{operation}"
        if op in names:
            return
        tree = names.setdefault(op, {})
        root = _model(service).operation_model(operation).input_shape
        for path, shape in _nested(root, "", _NESTED_DEPTH, ()):
            parent, _, name = path.rpartition(".")
            if not name.endswith("[]"):
                tree.setdefault(parent, []).append(
                    name + ("[]" if shape.type_name == "list" else ""))
            add(op, path, shape)

    for type_token, (service, operation, table) in sorted(OPERATIONS.items()):
        walk(service, operation)
        for member_path in table.values():
            if member_path is None:
                continue
            call, _, path = member_path.rpartition(":")
            walk(service, call or operation)
            for concrete in ([path.replace("*", p) for p in _PEERS] if "*" in path else [path]):
                if concrete:  # "Call:" alone: the inputs under it match the call's members
                    rule_for(service, call or operation, concrete)  # a path the model lacks fails
        if (rules := tag_rules(type_token)) is not None:
            tags[type_token] = [{"member": r.member, **_as_json(r)} for r in rules]
    return {"about": "The AWS API's rules on the members the platform's inputs reach. Generated "
                     "by `python -m platform_facts.awsapi --write`; do not edit by hand.",
            "source": f"botocore {botocore.__version__} service models",
            "operations": {k: dict(sorted(v.items())) for k, v in sorted(operations.items())},
            "names": {k: {p: sorted(n) for p, n in sorted(v.items())}
                      for k, v in sorted(names.items())},
            "tags": tags}


@dataclass(frozen=True)
class _Table:
    rules: dict[str, dict[str, Rule]]  # service.Operation -> member path -> rule
    # service.Operation -> structure's member path -> lower-case member -> member (`[]`: list)
    names: dict[str, dict[str, dict[str, str]]]
    tags: dict[str, tuple[Rule, Rule]]


@cache
def _table() -> _Table:
    data = json.loads(RULES_FILE.read_text(encoding="utf-8"))
    rules = {op: {path: _from_json(f"{op}.{path}", rule) for path, rule in paths.items()}
             for op, paths in data["operations"].items()}
    names = {op: {parent: {n.removesuffix("[]").lower(): n for n in members}
                  for parent, members in tree.items()}
             for op, tree in data["names"].items()}
    tags = {t: (_from_json(k.pop("member"), k), _from_json(v.pop("member"), v))
            for t, (k, v) in data["tags"].items()}
    return _Table(rules, names, tags)


def _matched(props: Mapping[str, Any], parent: str, names: Mapping[str, Mapping[str, str]],
             where: str = "") -> Iterator[tuple[str, Any, str]]:
    """(concrete input path, value, member path) for every input, at any depth, whose name
    matches a member's (case aside) under the structure it sits in."""
    children = names.get(parent, {})
    for key, value in props.items():
        name = children.get(str(key).lower())
        if name is None or value is None:
            continue
        base = name.removesuffix("[]")
        path = f"{parent}.{base}" if parent else base
        concrete = f"{where}.{key}" if where else str(key)
        if not where and key == "tags":
            yield concrete, value, path  # tag keys are not members: tag_rules judges them
            continue
        yield from _descend(value, path, name.endswith("[]"), names, concrete)


def _descend(value: Any, path: str, listed: bool, names: Mapping[str, Mapping[str, str]],
             concrete: str) -> Iterator[tuple[str, Any, str]]:
    """The value at a member and what lies under it: a list member's elements as `[]`, a
    structure's inputs matched by name (a single block where the API takes a list of one as
    that list's element)."""
    yield concrete, value, path
    if listed and isinstance(value, list):
        for index, item in enumerate(value):
            yield f"{concrete}[{index}]", item, f"{path}[]"
            if isinstance(item, Mapping):
                yield from _matched(item, f"{path}[]", names, f"{concrete}[{index}]")
    elif isinstance(value, Mapping):
        yield from _matched(value, f"{path}[]" if listed else path, names, concrete)


def judged(type_token: str, props: Mapping[str, Any]) -> Iterator[tuple[str, Any, Rule]]:
    """(input path, value, rule) for every input of a resource a rule of the API holds:
    inputs matched to members by name at any depth, the table's paths (and what lies under
    them, matched the same way), the tags. Members the table lacks are unconstrained. A type
    this module does not know gives nothing (the coverage test keeps it complete)."""
    if type_token not in OPERATIONS:
        return
    service, operation, table = OPERATIONS[type_token]
    known = _table()

    def ruled(op: str, found: Iterable[tuple[str, Any, str]]
              ) -> Iterator[tuple[str, Any, Rule]]:
        rules = known.rules.get(op, {})
        for concrete, value, path in found:
            if (rule := rules.get(path)) is not None:
                yield concrete, value, rule

    own = f"{service}.{operation}"
    yield from ruled(own, _matched({k: v for k, v in props.items() if k not in table}, "",
                                   known.names.get(own, {})))
    for input_path, member_path in table.items():
        if member_path is None:
            continue
        call, _, path = member_path.rpartition(":")
        op = f"{service}.{call or operation}"
        tree = known.names.get(op, {})
        for concrete, value, element in _values(props, input_path):
            where = path.replace("*", _peer(element if isinstance(element, Mapping) else {})) \
                if "*" in path else path
            parent, _, base = where.rpartition(".")
            listed = tree.get(parent, {}).get(base.lower(), "").endswith("[]")
            yield from ruled(op, _descend(value, where, listed, tree, concrete))
    if type_token in known.tags:
        key_rule, value_rule = known.tags[type_token]
        for key, value in _tags(props):
            yield f"tags.{key}", _TagKey(key), key_rule
            yield f"tags.{key}", value, value_rule


class _TagKey(str):
    """A tag's key, judged by the key rule (its problems say "the key ...")."""


def problems(type_token: str, props: Mapping[str, Any]) -> list[tuple[str, Any, str, str]]:
    """(input path, value, member, problem) for every input of a resource the API would refuse."""
    return [(concrete, str(value) if isinstance(value, _TagKey) else value, rule.member,
             f"the key {problem}" if isinstance(value, _TagKey) else problem)
            for concrete, value, rule in judged(type_token, props)
            for problem in rule.problems(value)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write (or check) awsapi_rules.json from the "
                                                 "installed botocore's service models.")
    parser.add_argument("--write", action="store_true", help="write the file (else: check it)")
    args = parser.parse_args(argv)
    text = json.dumps(build(), indent=1, sort_keys=False) + "\n"
    if args.write:
        RULES_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {RULES_FILE.name}", file=sys.stderr)
        return 0
    if RULES_FILE.read_text(encoding="utf-8") != text:
        print(f"{RULES_FILE.name} is not what botocore's models give: run "
              "`python -m platform_facts.awsapi --write`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
