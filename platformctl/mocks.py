"""Pulumi mocks that answer like AWS would, for the offline evaluation.

`new_resource` echoes the inputs and adds what the provider would compute (ids in AWS's
formats, ARNs, auto-names, a NAT's public address); `call` answers the invokes the program makes.
Ids and addresses are derived from a hash of the type and name, so two evaluations of the same
stack give the same values. An invoke the harness does not know is an error, never an empty
answer: a silent `{}` would hide a wrong program.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Callable
from typing import Any

import pulumi

from platform_facts import sdk_types

ACCOUNT_ID = "123456789012"

# us-east-1 has six zones; other regions are given three (what most have).
_ZONE_COUNT = {"us-east-1": 6}
_REGION_ZONE_ID_PREFIX = {"us-east-1": "use1", "us-east-2": "use2", "us-west-2": "usw2",
                          "eu-west-1": "euw1", "eu-central-1": "euc1"}

# Id formats of the resource types the platform creates (AWS's own prefixes).
_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc-",
    "aws:ec2/subnet:Subnet": "subnet-",
    "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/natGateway:NatGateway": "nat-",
    "aws:ec2/eip:Eip": "eipalloc-",
    "aws:ec2/routeTable:RouteTable": "rtb-",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc-",
    "aws:ec2/securityGroup:SecurityGroup": "sg-",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg-",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr-",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr-",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce-",
    "aws:ec2/flowLog:FlowLog": "fl-",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt-",
    "aws:ec2/networkInterface:NetworkInterface": "eni-",
}
# The ARNs the provider returns, per type: (output, IAM service prefix, IAM resource type, the
# resource part). The prefix and resource type name the ARN format in AWS's service
# authorization reference (the IAM definitions parliament ships: tests/test_mocks.py checks each
# mock ARN against its template); the resource part fills the template's variables from
# `{id}` (the resource's id), `{name}` (its physical name), `{uuid}`, `{group}` (a schedule's
# group) and the inputs (`{clusterName}`, ...). Only types whose SDK class has that output get
# it: a route, a key policy or a Kubernetes object has no ARN.
_ARNS: dict[str, tuple[str, str, str, str]] = {
    "aws:autoscaling/group:Group": (
        "arn", "autoscaling", "autoScalingGroup", "autoScalingGroup:{uuid}:autoScalingGroupName/{id}"),
    "aws:backup/plan:Plan": ("arn", "backup", "backupPlan", "backup-plan:{uuid}"),
    "aws:backup/vault:Vault": ("arn", "backup", "backupVault", "backup-vault:{name}"),
    "aws:budgets/budget:Budget": ("arn", "budgets", "budget", "budget/{name}"),
    "aws:cloudwatch/logGroup:LogGroup": ("arn", "logs", "log-group", "log-group:{name}"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("arn", "cloudwatch", "alarm", "alarm:{name}"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": (
        "arn", "ec2", "security-group", "security-group/{id}"),
    "aws:ec2/eip:Eip": ("arn", "ec2", "elastic-ip", "elastic-ip/{id}"),
    "aws:ec2/flowLog:FlowLog": ("arn", "ec2", "vpc-flow-log", "vpc-flow-log/{id}"),
    "aws:ec2/internetGateway:InternetGateway": (
        "arn", "ec2", "internet-gateway", "internet-gateway/{id}"),
    "aws:ec2/launchTemplate:LaunchTemplate": (
        "arn", "ec2", "launch-template", "launch-template/{id}"),
    "aws:ec2/networkInterface:NetworkInterface": (
        "arn", "ec2", "network-interface", "network-interface/{id}"),
    "aws:ec2/routeTable:RouteTable": ("arn", "ec2", "route-table", "route-table/{id}"),
    "aws:ec2/securityGroup:SecurityGroup": ("arn", "ec2", "security-group", "security-group/{id}"),
    "aws:ec2/subnet:Subnet": ("arn", "ec2", "subnet", "subnet/{id}"),
    "aws:ec2/vpc:Vpc": ("arn", "ec2", "vpc", "vpc/{id}"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("arn", "ec2", "vpc-endpoint", "vpc-endpoint/{id}"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        "arn", "ec2", "security-group-rule", "security-group-rule/{id}"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": (
        "arn", "ec2", "security-group-rule", "security-group-rule/{id}"),
    "aws:eks/accessEntry:AccessEntry": (
        "accessEntryArn", "eks", "access-entry",
        "access-entry/{clusterName}/role/{account}/{principalName}/{uuid}"),
    "aws:eks/addon:Addon": ("arn", "eks", "addon", "addon/{clusterName}/{addonName}/{uuid}"),
    "aws:eks/cluster:Cluster": ("arn", "eks", "cluster", "cluster/{name}"),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": (
        "associationArn", "eks", "podidentityassociation",
        "podidentityassociation/{clusterName}/a-{id}"),
    "aws:iam/instanceProfile:InstanceProfile": (
        "arn", "iam", "instance-profile", "instance-profile/{name}"),
    "aws:iam/role:Role": ("arn", "iam", "role", "role/{name}"),
    "aws:kms/alias:Alias": ("arn", "kms", "alias", "{name}"),
    "aws:kms/key:Key": ("arn", "kms", "key", "key/{id}"),
    "aws:rds/parameterGroup:ParameterGroup": ("arn", "rds", "pg", "pg:{name}"),
    "aws:rds/subnetGroup:SubnetGroup": ("arn", "rds", "subgrp", "subgrp:{name}"),
    "aws:scheduler/schedule:Schedule": ("arn", "scheduler", "schedule", "schedule/{group}/{name}"),
    "aws:sns/topic:Topic": ("arn", "sns", "topic", "{name}"),
    "aws:xray/group:Group": ("arn", "xray", "group", "group/{name}/{uuid}"),
}
# Global services: no region in their ARNs.
_GLOBAL_SERVICES = {"iam", "budgets"}
# Resources whose id is a UUID (KMS keys).
_UUID_IDS = {"aws:kms/key:Key"}


def _digest(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _as_uuid(h: str) -> str:
    """32 hex digits in a UUID's 8-4-4-4-12 groups."""
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _uuid(*parts: str) -> str:
    return _as_uuid(_digest("uuid", *parts, length=32))


class PlatformMocks(pulumi.runtime.Mocks):
    def __init__(self, region: str):
        self.region = region
        # Each explicit AWS provider's region, by the id its resources reference it with.
        self._provider_regions: dict[str, str] = {}
        self._invokes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "aws:index/getAvailabilityZones:getAvailabilityZones": self._availability_zones,
            "aws:index/getCallerIdentity:getCallerIdentity": lambda _: {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline-review",
                "userId": "AIDAOFFLINEREVIEW",
                "id": ACCOUNT_ID,
            },
            "aws:index/getPartition:getPartition": lambda _: {
                "partition": "aws", "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws", "id": "aws",
            },
            # The newest fck-nat image: a plausible id and name of the filter's shape.
            "aws:ec2/getAmi:getAmi": lambda args: {
                "id": "ami-0fc4a7e0a5f3e2d91", "imageId": "ami-0fc4a7e0a5f3e2d91",
                "name": "fck-nat-al2023-hvm-1.3.0-20240501-arm64-ebs", "architecture": "arm64",
                "ownerId": (args.get("owners") or ["self"])[0], "rootDeviceName": "/dev/xvda",
                "mostRecent": True, "owners": args.get("owners") or [],
            },
            "aws:index/getRegion:getRegion": lambda _: {
                "name": self.region, "region": self.region, "id": self.region,
                "endpoint": f"ec2.{self.region}.amazonaws.com",
                "description": self.region,
            },
        }

    # -- invokes ---------------------------------------------------------------------------

    def call(self, args: pulumi.runtime.MockCallArgs):
        answer = self._invokes.get(args.token)
        if answer is None:
            raise NotImplementedError(
                f"the offline harness has no answer for the invoke {args.token}; add a realistic "
                "one to platformctl/mocks.py"
            )
        return answer(args.args)

    def _availability_zones(self, _args: dict[str, Any]) -> dict[str, Any]:
        count = _ZONE_COUNT.get(self.region, 3)
        prefix = _REGION_ZONE_ID_PREFIX.get(self.region, self.region.replace("-", "")[:6])
        names = [f"{self.region}{chr(ord('a') + i)}" for i in range(count)]
        return {
            "names": names,
            "zoneIds": [f"{prefix}-az{i + 1}" for i in range(count)],
            "groupNames": [self.region] * count,
            "id": self.region,
        }

    # -- resources -------------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        token, name, inputs = args.typ, args.name, dict(args.inputs)
        if not args.custom:
            return f"{name}-component", {}
        if token.startswith("pulumi:providers:"):
            if token == "pulumi:providers:aws" and inputs.get("region"):
                self._provider_regions[f"{name}-provider-id"] = str(inputs["region"])
            return f"{name}-provider-id", inputs
        prefix = _ID_PREFIX.get(token)
        state: dict[str, Any] = dict(inputs)
        physical = inputs.get("name") or self._autoname(token, name)
        if physical is not None:
            state.setdefault("name", physical)
        if prefix is not None:
            resource_id = prefix + _digest(token, name)
        elif token in _UUID_IDS:
            resource_id = _as_uuid(_digest(token, name, length=32))
        else:
            resource_id = physical or f"{name}-{_digest(token, name, length=8)}"
        region = self._region_of(args.provider)
        if token == "aws:eks/nodeGroup:NodeGroup":
            # The provider names an unnamed node group after its resource, and its id is
            # `<cluster>:<node group>` (what the off-hours schedules and the cost model use).
            group_name = inputs.get("nodeGroupName") or f"{name}-{_digest(token, name, length=8)}"
            state["nodeGroupName"] = group_name
            resource_id = f"{inputs.get('clusterName')}:{group_name}"
            state["arn"] = (f"arn:aws:eks:{region}:{ACCOUNT_ID}:nodegroup/"
                            f"{inputs.get('clusterName')}/{group_name}/{_uuid('nodegroup', name)}")
        if token == "aws:rds/instance:Instance" and inputs.get("identifier"):
            # An instance's ARN names its identifier, whatever its resource id.
            state["arn"] = f"arn:aws:rds:{region}:{ACCOUNT_ID}:db:{inputs['identifier']}"
        if token == "aws:sns/topicPolicy:TopicPolicy":
            state["arn"] = inputs.get("arn")  # the topic's
        if token == "aws:sns/topicSubscription:TopicSubscription":
            # The topic's ARN and the subscription's id (SNS API reference, Subscribe).
            state["arn"] = f"{inputs.get('topic')}:{_uuid('subscription', name)}"
        known = _ARNS.get(token)
        if known is not None:
            output = known[0]
            state.setdefault(output, self._arn(token, name, resource_id, physical, inputs, region))
        if "tags" in inputs:
            state.setdefault("tagsAll", inputs["tags"])
        extra = _COMPUTED.get(token)
        if extra is not None:
            state.update(getattr(self, extra)(name, inputs, resource_id))
        return resource_id, state

    @staticmethod
    def _autoname(token: str, name: str) -> str | None:
        """What Pulumi's auto-naming gives a resource with a `name` property: `<name>-<7 hex>`."""
        if not sdk_types.takes_name(token):
            return None
        return f"{name}-{_digest(token, name, length=7)}"

    def _region_of(self, provider: str | None) -> str:
        """The region of the provider a resource is registered with (its reference is
        `<urn>::<id>`): a second provider (the backup copy region) is not the stack's."""
        if provider:
            return self._provider_regions.get(provider.rsplit("::", 1)[-1], self.region)
        return self.region

    @staticmethod
    def _arn(token: str, name: str, resource_id: str, physical: str | None,
             inputs: dict[str, Any], region: str) -> str:
        _, service, _, resource = _ARNS[token]
        principal = str(inputs.get("principalArn", ""))
        fields = {
            **{k: v for k, v in inputs.items() if isinstance(v, str)},
            "id": resource_id, "name": physical or resource_id, "uuid": _uuid(token, name),
            "group": inputs.get("groupName") or "default", "account": ACCOUNT_ID,
            "principalName": principal.rsplit("/", 1)[-1],
        }
        where = "" if service in _GLOBAL_SERVICES else region
        return f"arn:aws:{service}:{where}:{ACCOUNT_ID}:{resource.format(**fields)}"

    # Per-type computed outputs (see _COMPUTED).

    def _vpc(self, name, inputs, resource_id):
        return {
            "defaultSecurityGroupId": "sg-" + _digest("default-sg", name),
            "mainRouteTableId": "rtb-" + _digest("main-rtb", name),
            "defaultNetworkAclId": "acl-" + _digest("acl", name),
            "ownerId": ACCOUNT_ID,
        }

    def _eip(self, name, inputs, resource_id):
        # An address from TEST-NET-3 (RFC 5737): realistic shape, never a real host.
        host = int(_digest("eip", name, length=2), 16) % 254 + 1
        address = str(ipaddress.IPv4Address("203.0.113.0") + host)
        return {"publicIp": address, "allocationId": resource_id, "domain": "vpc",
                "publicDns": f"ec2-{address.replace('.', '-')}.compute-1.amazonaws.com"}

    def _nat_gateway(self, name, inputs, resource_id):
        return {"networkInterfaceId": "eni-" + _digest("eni", name),
                "privateIp": "10.0.0." + str(int(_digest("ip", name, length=2), 16) % 250 + 4)}

    def _iam_role(self, name, inputs, resource_id):
        return {"uniqueId": "AROA" + _digest("role", name, length=16).upper()}

    def _random_password(self, name, inputs, resource_id):
        # Deterministic but password-shaped: the value is a secret through
        # additionalSecretOutputs, which the recording monitor applies as the engine would.
        length = int(inputs.get("length", 16))
        alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        seed = hashlib.sha256(f"password/{name}".encode()).digest()
        while len(seed) < length:
            seed += hashlib.sha256(seed).digest()
        result = "".join(alphabet[b % len(alphabet)] for b in seed[:length])
        return {"result": result, "bcryptHash": "$2a$10$" + _digest("bcrypt", name, length=53)}

    def _kms_key(self, name, inputs, resource_id):
        return {"keyId": resource_id}

    def _eks_cluster(self, name, inputs, resource_id):
        oidc = _digest("oidc", name, length=32).upper()
        endpoint = f"https://{_digest('api', name, length=32).upper()}.gr7.{self.region}.eks.amazonaws.com"
        ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIC(offline mock CA)\n"
                              b"-----END CERTIFICATE-----\n").decode()
        vpc_config = dict(inputs.get("vpcConfig") or {})
        vpc_config.update({"clusterSecurityGroupId": "sg-" + _digest("cluster-sg", name),
                           "vpcId": "vpc-" + _digest("vpc-of", name)})
        return {
            "name": inputs.get("name", resource_id),
            "endpoint": endpoint,
            "certificateAuthority": {"data": ca},
            "identities": [{"oidcs": [{
                "issuer": f"https://oidc.eks.{self.region}.amazonaws.com/id/{oidc}"}]}],
            "vpcConfig": vpc_config,
            "platformVersion": "eks.1",
            "status": "ACTIVE",
        }

    def _oidc_provider(self, name, inputs, resource_id):
        url = str(inputs.get("url", "")).removeprefix("https://")
        return {"arn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{url}"}

    def _launch_template(self, name, inputs, resource_id):
        return {"latestVersion": 1, "defaultVersion": 1}

    def _rds_instance(self, name, inputs, resource_id):
        identifier = inputs.get("identifier", resource_id)
        address = f"{identifier}.{_digest('rds', name, length=12)}.{self.region}.rds.amazonaws.com"
        return {"address": address, "endpoint": f"{address}:5432", "port": 5432,
                "resourceId": "db-" + _digest("dbi", name, length=26).upper()}


# What the provider computes per type: type token -> PlatformMocks method.
_COMPUTED = {
    "aws:ec2/vpc:Vpc": "_vpc",
    "aws:ec2/eip:Eip": "_eip",
    "aws:ec2/natGateway:NatGateway": "_nat_gateway",
    "aws:iam/role:Role": "_iam_role",
    "random:index/randomPassword:RandomPassword": "_random_password",
    "aws:kms/key:Key": "_kms_key",
    "aws:eks/cluster:Cluster": "_eks_cluster",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "_oidc_provider",
    "aws:ec2/launchTemplate:LaunchTemplate": "_launch_template",
    "aws:rds/instance:Instance": "_rds_instance",
}
