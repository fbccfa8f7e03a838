"""The platform's configuration model: one typed model for a whole environment.

This module is the only code that reads ``pulumi.Config``. Everything else receives a validated
:class:`PlatformConfig`.

How a stack's configuration is built:

1. the stack file's ``platform:*`` keys are read (``aws:region`` too);
2. they are laid over the defaults of the environment *preset* the stack names
   (``platform:preset: dev`` is cheap, ``prod`` is highly available), so a stack file only says
   what differs;
3. the result is validated by pydantic. Unknown keys are errors, so a typo is never ignored.

Any problem stops the program before a single resource is registered, with one message that
names the stack file, each bad key's path, the bad value and what is allowed.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import json
import re
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import pulumi
from pulumi.runtime import config as _runtime_config
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

PROJECT_NAMESPACE = "platform"

# Tag keys every AWS resource carries (PLATFORM.md). `service` is set per component,
# `managed-by` is always "pulumi"; the others come from this model.
REQUIRED_TAG_KEYS = ("team", "service", "environment", "cost-center", "owner", "managed-by")

# What the nodes in private subnets need when there is no NAT gateway: image pulls from ECR
# (plus the S3 gateway endpoint, always created), EC2 and STS for the kubelet and IRSA,
# CloudWatch Logs, and EKS Pod Identity.
# https://docs.aws.amazon.com/eks/latest/userguide/private-clusters.html (read 2026-11-21)
NODE_REQUIRED_INTERFACE_ENDPOINTS = ("ec2", "ecr.api", "ecr.dkr", "sts", "logs", "eks-auth")

# Values CloudWatch Logs accepts for retention_in_days (PutRetentionPolicy API, read 2026-11-21).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip

_PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
VPC_PREFIX_MIN, VPC_PREFIX_MAX = 16, 20


class ConfigError(pulumi.RunError):
    """A user's configuration is wrong. ``RunError`` makes the Pulumi CLI print the message
    without a Python traceback; ``platformctl`` exits 2 with it."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"invalid configuration in {source} ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}):\n{lines}"
        )


# --------------------------------------------------------------------------------------------
# Field types


class _Bad(ValueError):
    """A model-level check that blames one key of the object it validates."""

    def __init__(self, key: str, value: Any, message: str):
        super().__init__(message)
        self.key, self.value, self.message = key, value, message



def _vpc_cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(
            f"not an IPv4 network in CIDR notation with its host bits zero ({exc}); "
            f"allowed: e.g. 10.20.0.0/16"
        ) from None
    if not any(net.subnet_of(r) for r in _PRIVATE_RANGES):
        raise ValueError(
            "not inside a private range; allowed: a network inside 10.0.0.0/8, 172.16.0.0/12 or "
            "192.168.0.0/16"
        )
    if not VPC_PREFIX_MIN <= net.prefixlen <= VPC_PREFIX_MAX:
        raise ValueError(
            f"prefix /{net.prefixlen} is out of range; allowed: /{VPC_PREFIX_MIN} (largest a VPC "
            f"can be) to /{VPC_PREFIX_MAX} (smallest that leaves each AZ's private subnet room "
            f"for EKS pod IPs)"
        )
    return str(net)


def _pattern(regex: str, allowed: str):
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"does not match; allowed: {allowed}")
        return value

    return AfterValidator(check)


VpcCidr = Annotated[str, AfterValidator(_vpc_cidr)]


def _any_cidr(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"not an IPv4 network in CIDR notation ({exc}); allowed: e.g. "
                         "192.168.0.0/16") from None


_AnyCidr = Annotated[str, AfterValidator(_any_cidr)]
# AWS tag values: 0-256 of letters, digits, spaces and + - = . _ : / @. We also forbid empty.
TagValue = Annotated[
    str,
    _pattern(
        r"[\w .:/=+\-@]{1,256}",
        "1 to 256 characters of letters, digits, spaces and + - = . _ : / @",
    ),
]
IngressHost = Annotated[
    str, _pattern(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}",
                  "a DNS name, or *.<name> for every name under it, e.g. checkout.example.com")]


def host_covers(claimed: str, host: str) -> bool:
    """Whether a team's claimed host (exact, or `*.domain`) covers `host` (itself possibly a
    `*.` wildcard). The one rule the config and the admission policy (ingress.rego) share."""
    if claimed == host:
        return True
    if claimed.startswith("*."):
        suffix = claimed[1:]  # ".domain"
        return host.endswith(suffix) and host != suffix[1:]
    return False


Slug = Annotated[
    str,
    _pattern(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", "lower-case letters, digits and '-', 2-32 characters, "
             "starting with a letter"),
]
AwsRegion = Annotated[
    str, _pattern(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d", "an AWS region name, e.g. us-east-1")
]
EndpointService = Annotated[
    str,
    _pattern(r"[a-z0-9][a-z0-9.-]*[a-z0-9]",
             "an AWS service endpoint short name, e.g. ecr.api, sts, logs"),
]


InstanceType = Annotated[
    str, _pattern(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "an EC2 instance type, e.g. t4g.medium")
]
InstanceFamily = Annotated[
    str, _pattern(r"[a-z][a-z0-9-]*", "an EC2 instance family, e.g. t4g, m7g")
]
DbInstanceClass = Annotated[
    str, _pattern(r"db\.[a-z0-9-]+\.[a-z0-9]+", "an RDS instance class, e.g. db.t4g.micro")
]
IamRoleArn = Annotated[
    str,
    _pattern(r"arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}",
             "an IAM role ARN, e.g. arn:aws:iam::123456789012:role/platform-admin"),
]
EksAddonVersion = Annotated[
    str, _pattern(r"v\d+\.\d+\.\d+-eksbuild\.\d+", "an EKS add-on version, e.g. v1.22.4-eksbuild.3")
]
PostgresVersion = Annotated[str, _pattern(r"\d{2}\.\d+", "a PostgreSQL major.minor, e.g. 18.4")]
PgIdentifier = Annotated[
    str, _pattern(r"[a-z][a-z0-9_]{0,62}", "a lower-case PostgreSQL identifier, e.g. platform")
]
LabelKey = Annotated[
    str,
    _pattern(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?",
             "a Kubernetes label key, e.g. workload or example.com/tier"),
]
LabelValue = Annotated[
    str,
    _pattern(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?",
             "a Kubernetes label value: up to 63 letters, digits, '-', '_' or '.'"),
]
BackupWindow = Annotated[str, _pattern(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d",
                                       "hh:mm-hh:mm in UTC, e.g. 03:00-04:00")]
MaintenanceWindow = Annotated[
    str,
    _pattern(r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d-"
             r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d",
             "ddd:hh:mm-ddd:hh:mm in UTC, e.g. sun:04:30-sun:05:30"),
]
LogRetention = Annotated[int, AfterValidator(lambda v: _retention(v))]
PromDuration = Annotated[str, _pattern(r"\d+[smhdwy]", "a Prometheus duration, e.g. 15d")]
Quantity = Annotated[str, _pattern(r"\d+(\.\d+)?(m|Ki|Mi|Gi|Ti)?",
                                   "a Kubernetes quantity, e.g. 500m or 2Gi")]
MetricSelector = Annotated[
    str,
    _pattern(r"[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^{}]*\})?",
             "a counter metric with an optional label selector, e.g. "
             "http_requests_total{service=\"checkout\",code=~\"5..\"}"),
]
HttpsUrl = Annotated[str, _pattern(r"https://[^\s]+", "an https:// URL")]
RegistryPrefix = Annotated[
    str,
    _pattern(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?/([a-z0-9._-]+/)*",
             "a registry prefix ending in '/', e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/"),
]
Capability = Annotated[str, _pattern(r"[A-Z][A-Z_]{1,30}", "a Linux capability, e.g. NET_BIND_SERVICE")]
GroupName = Annotated[
    str, _pattern(r"[a-z0-9][a-z0-9:._-]{0,62}", "a Kubernetes group name, e.g. checkout-admins")
]
Email = Annotated[str, _pattern(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", "an email address")]
SlackChannel = Annotated[str, _pattern(r"#[a-z0-9_-]{1,80}", "a Slack channel, e.g. #platform-alerts")]


def _https_secret(value: SecretStr | None) -> SecretStr | None:
    if value is not None and not value.get_secret_value().startswith("https://"):
        raise ValueError("is not an https:// URL")
    return value


SecretUrl = Annotated[SecretStr, AfterValidator(_https_secret)]


def _retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError("not a CloudWatch Logs retention; allowed: "
                         + ", ".join(map(str, LOG_RETENTION_DAYS)))
    return value


class _Model(BaseModel):
    """Strict base: camelCase keys in the stack file, unknown keys rejected."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=False,
        frozen=True,
        validate_default=True,
    )


# --------------------------------------------------------------------------------------------
# The model


class Tags(_Model):
    """Values of the standard tags that come from config (`platform:tags`). The keys are the tag
    keys themselves. `service`, `environment` and `managed-by` are set by the program."""

    team: TagValue = Field(description="Team that owns the environment, e.g. `platform`.")
    cost_center: TagValue = Field(
        alias="cost-center", description="Cost center the spend is booked to, e.g. `cc-1234`."
    )
    owner: TagValue = Field(
        description="Who to ask about a resource: a person or list address, e.g. "
        "`platform-team@example.com`."
    )


class FlowLogs(_Model):
    """VPC flow logs, delivered to a CloudWatch log group (`platform:network.flowLogs`)."""

    enabled: bool = Field(
        True, description="Record VPC flow logs. On by default: they are the network's audit trail."
    )
    retention_days: LogRetention = Field(
        description="Days CloudWatch keeps the flow logs. One of CloudWatch's allowed values."
    )
    traffic_type: Literal["ALL", "ACCEPT", "REJECT"] = Field(
        "ALL", description="Which traffic to record."
    )
    max_aggregation_interval: Literal[60, 600] = Field(
        600, description="Seconds over which a flow is aggregated into one record (60 or 600)."
    )


class Network(_Model):
    """The VPC (`platform:network`)."""

    cidr: VpcCidr = Field(
        description="IPv4 CIDR of the VPC, private range, /16 to /20. Subnets are carved from it: "
        "per AZ a private subnet of a quarter of the VPC, and public and database subnets of a "
        "thirty-second each."
    )
    az_count: Literal[2, 3] = Field(
        description="How many availability zones to span (the first ones `getAvailabilityZones` "
        "returns)."
    )
    nat_strategy: Literal["none", "single", "one-per-az"] = Field(
        description="Egress for private subnets: `single` NAT gateway (cheap, one AZ's failure cuts "
        "egress), `one-per-az` (highly available) or `none` (no default route; the nodes reach AWS "
        "through interface endpoints)."
    )
    interface_endpoints: tuple[EndpointService, ...] = Field(
        (),
        description="AWS services to reach through interface VPC endpoints (short names such as "
        "`ecr.api`). Required when natStrategy is `none`: "
        + ", ".join(f"`{e}`" for e in NODE_REQUIRED_INTERFACE_ENDPOINTS)
        + ". Each costs an hourly fee per AZ.",
    )
    flow_logs: FlowLogs = Field(description="VPC flow logs.")
    avoid_cidrs: tuple[_AnyCidr, ...] = Field(
        (),
        description="Networks the VPC must not overlap: the other environments' VPCs, offices, "
        "VPNs, peered VPCs. Overlap makes peering and VPN routing impossible later, so it is "
        "refused now.",
    )

    @model_validator(mode="after")
    def _no_overlap(self) -> Network:
        vpc = ipaddress.IPv4Network(self.cidr)
        for other in self.avoid_cidrs:
            if vpc.overlaps(ipaddress.IPv4Network(other)):
                raise _Bad("cidr", self.cidr,
                           f"overlaps {other} listed in avoidCidrs; allowed: a network that "
                           f"overlaps none of {', '.join(self.avoid_cidrs)}")
        return self

    @model_validator(mode="after")
    def _egress_is_possible(self) -> Network:
        endpoints = list(self.interface_endpoints)
        if len(set(endpoints)) != len(endpoints):
            raise _Bad("interfaceEndpoints", endpoints,
                       "lists a service twice; allowed: each service once")
        if self.nat_strategy == "none":
            missing = [e for e in NODE_REQUIRED_INTERFACE_ENDPOINTS if e not in endpoints]
            if missing:
                raise _Bad(
                    "interfaceEndpoints", endpoints,
                    "natStrategy 'none' leaves private subnets without internet egress, so the "
                    f"nodes need these interface endpoints; missing: {', '.join(missing)}",
                )
        return self


# Instance families whose names end in a `g` generation suffix are AWS Graviton (arm64).
def instance_architecture(instance_type: str) -> str:
    family = instance_type.split(".", 1)[0]
    match = re.fullmatch(r"[a-z]+\d+([a-z-]*)", family)
    return "arm64" if (match and "g" in match.group(1)) or family == "a1" else "x86_64"


class Taint(_Model):
    """A Kubernetes taint put on every node of a node group."""

    key: LabelKey = Field(description="Taint key.")
    value: LabelValue = Field("", description="Taint value.")
    effect: Literal["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"] = Field(
        description="Taint effect, in EKS's spelling."
    )


class NodeGroup(_Model):
    """An EKS managed node group in the private subnets (`platform:cluster.nodeGroups.<name>`)."""

    instance_types: tuple[InstanceType, ...] = Field(
        min_length=1, max_length=10,
        description="Instance types, one architecture. Several types give spot capacity more "
        "pools; they must share vCPUs and memory (Cluster Autoscaler plans a group as one shape: "
        "the node-capacity check refuses a mix).",
    )
    capacity_type: Literal["ON_DEMAND", "SPOT"] = Field(
        description="`SPOT` is cheap and can be reclaimed with two minutes' notice; `ON_DEMAND` is not."
    )
    min_size: int = Field(ge=0, le=100, description="Fewest nodes.")
    desired_size: int = Field(
        ge=0, le=100,
        description="Nodes at creation. Afterwards the autoscaler owns it: `pulumi up` ignores drift.",
    )
    max_size: int = Field(ge=1, le=100, description="Most nodes.")
    disk_size_gib: int = Field(50, ge=20, le=1000, description="Root volume (gp3, encrypted), GiB.")
    max_pods: int = Field(
        110, ge=8, le=250,
        description="Pods the kubelet admits per node (the launch template's NodeConfig). The "
        "VPC CNI hands out /28 prefixes (prefix delegation), so addresses do not bound it on "
        "Nitro types; memory does: EKS reserves 11 MiB per admitted pod for the kubelet. 110 is "
        "the kubelet's default and EKS's cap below 30 vCPUs.",
    )
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Kubernetes labels on every node."
    )
    taints: tuple[Taint, ...] = Field((), description="Kubernetes taints on every node.")

    @model_validator(mode="after")
    def _sizes_and_architecture(self) -> NodeGroup:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise _Bad("desiredSize", self.desired_size,
                       f"must lie between minSize ({self.min_size}) and maxSize ({self.max_size}); "
                       "allowed: minSize <= desiredSize <= maxSize")
        architectures = {instance_architecture(t) for t in self.instance_types}
        if len(architectures) > 1:
            raise _Bad("instanceTypes", list(self.instance_types),
                       "mixes arm64 (Graviton) and x86_64 types; allowed: one architecture per "
                       "node group (they share one AMI)")
        return self

    @property
    def architecture(self) -> str:
        return instance_architecture(self.instance_types[0])


class PublicEndpoint(_Model):
    """Who may reach the EKS API from the internet (`platform:cluster.publicEndpoint`). The
    private endpoint is always on."""

    enabled: bool = Field(description="Expose the EKS API publicly, restricted to `cidrs`.")
    cidrs: tuple[_AnyCidr, ...] = Field(
        (), description="Networks allowed to reach the public endpoint (offices, VPN, CI runners' "
        "egress). Required when enabled; 0.0.0.0/0 is refused."
    )

    @model_validator(mode="after")
    def _restricted(self) -> PublicEndpoint:
        if self.enabled and not self.cidrs:
            raise _Bad("cidrs", [], "the public endpoint is enabled without restriction; allowed: "
                       "one or more networks, e.g. your VPN's egress 198.51.100.0/24")
        if not self.enabled and self.cidrs:
            raise _Bad("cidrs", list(self.cidrs),
                       "listed while the public endpoint is disabled; allowed: [] or enabled: true")
        wide = [c for c in self.cidrs if ipaddress.IPv4Network(c).prefixlen < 8]
        if wide:
            raise _Bad("cidrs", list(self.cidrs),
                       f"{', '.join(wide)} opens the API to (nearly) the whole internet; allowed: "
                       "networks of prefix /8 or longer")
        return self


class AddonVersions(_Model):
    """Pinned EKS add-on versions (`platform:cluster.addonVersions`), for Kubernetes 1.36.
    Looked up 2026-11-21 from clusters on 1.36; check with `aws eks describe-addon-versions
    --kubernetes-version 1.36 --addon-name <name>` before changing the Kubernetes version."""

    vpc_cni: EksAddonVersion = Field(
        "v1.22.4-eksbuild.3", description="Amazon VPC CNI, with network policy enforcement."
    )
    coredns: EksAddonVersion = Field("v1.14.3-eksbuild.23", description="CoreDNS.")
    kube_proxy: EksAddonVersion = Field(
        "v1.36.0-eksbuild.25", description="kube-proxy; its minor must equal the cluster's."
    )
    aws_ebs_csi_driver: EksAddonVersion = Field(
        "v1.66.0-eksbuild.1", description="Amazon EBS CSI driver (the gp3 StorageClass)."
    )
    eks_pod_identity_agent: EksAddonVersion = Field(
        "v1.3.10-eksbuild.3", description="EKS Pod Identity agent."
    )


EKS_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
REQUIRED_EKS_LOG_TYPES = ("api", "audit", "authenticator")


class Cluster(_Model):
    """The EKS cluster (`platform:cluster`)."""

    kubernetes_version: Literal["1.34", "1.35", "1.36"] = Field(
        # 1.36: on EKS since 2026-06-02, standard support to 2027-08-02 (looked up 2026-11-21).
        "1.36", description="Kubernetes minor version of the control plane and nodes. Versions "
        "in EKS standard support; 1.36 is the newest.",
    )
    support_type: Literal["STANDARD", "EXTENDED"] = Field(
        "STANDARD", description="EKS upgrade support policy. `EXTENDED` keeps an old version "
        "running past standard support at six times the hourly control-plane price.",
    )
    admin_role_arn: IamRoleArn = Field(
        description="IAM role given cluster admin through an EKS access entry; `pulumi up` must "
        "run with this role (it installs the cluster services)."
    )
    read_only_role_arns: tuple[IamRoleArn, ...] = Field(
        (), description="IAM roles given read-only access to the cluster (on-call, auditors, CI "
        "preview roles): `AmazonEKSViewPolicy`, which reads no Secrets.",
    )
    secret_reader_role_arns: tuple[IamRoleArn, ...] = Field(
        (), description="IAM roles given `AmazonEKSAdminViewPolicy`: read-only, Secrets "
        "included (every credential in the cluster). A separate, deliberate choice; prefer "
        "`readOnlyRoleArns`.",
    )
    public_endpoint: PublicEndpoint = Field(description="The EKS API's public endpoint.")
    log_types: tuple[Literal["api", "audit", "authenticator", "controllerManager", "scheduler"],
                     ...] = Field(
        REQUIRED_EKS_LOG_TYPES, description="Control-plane log types sent to CloudWatch; "
        "api, audit and authenticator are required.",
    )
    log_retention_days: LogRetention = Field(
        description="Days CloudWatch keeps the control-plane logs."
    )
    allowed_instance_families: tuple[InstanceFamily, ...] = Field(
        min_length=1, description="Instance families node groups may use. The presets allow "
        "Graviton families only (cheaper per vCPU)."
    )
    node_groups: dict[Slug, NodeGroup] = Field(
        min_length=1, description="Managed node groups by name. Stack files merge into the "
        "preset's by name."
    )
    deletion_protection: bool = Field(
        description="EKS refuses to delete the cluster while this is on."
    )
    addon_versions: AddonVersions = Field(
        default_factory=AddonVersions, description="Pinned EKS add-on versions."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Cluster:
        both = sorted(set(self.read_only_role_arns) & set(self.secret_reader_role_arns))
        if both:
            raise _Bad("secretReaderRoleArns", list(self.secret_reader_role_arns),
                       f"{', '.join(both)} is also in readOnlyRoleArns; allowed: each role in "
                       "one of the two lists (one access entry per role)")
        if self.admin_role_arn in (*self.read_only_role_arns, *self.secret_reader_role_arns):
            raise _Bad("adminRoleArn", self.admin_role_arn,
                       "is also listed as a read-only role; allowed: a role in one list only")
        missing = [t for t in REQUIRED_EKS_LOG_TYPES if t not in self.log_types]
        if missing:
            raise _Bad("logTypes", list(self.log_types),
                       f"misses {', '.join(missing)}; allowed: any of {', '.join(EKS_LOG_TYPES)} "
                       f"that includes {', '.join(REQUIRED_EKS_LOG_TYPES)}")
        for name, group in self.node_groups.items():
            for instance_type in group.instance_types:
                family = instance_type.split(".", 1)[0]
                if family not in self.allowed_instance_families:
                    raise _Bad(f"nodeGroups.{name}.instanceTypes", list(group.instance_types),
                               f"{instance_type} is outside the allowed families; allowed: "
                               + ", ".join(self.allowed_instance_families))
        proxy_minor = ".".join(self.addon_versions.kube_proxy.lstrip("v").split(".")[:2])
        if proxy_minor != self.kubernetes_version:
            raise _Bad("addonVersions.kubeProxy", self.addon_versions.kube_proxy,
                       f"is built for Kubernetes {proxy_minor}, the cluster runs "
                       f"{self.kubernetes_version}; allowed: a v{self.kubernetes_version}.x build")
        return self


# Instance classes that do not offer Performance Insights (RDS for PostgreSQL).
_NO_PERFORMANCE_INSIGHTS = ("db.t3.micro", "db.t3.small", "db.t4g.micro", "db.t4g.small")


def _window_minutes(window: str) -> list[tuple[int, int]]:
    """A daily hh:mm-hh:mm or weekly ddd:hh:mm-ddd:hh:mm window as minute ranges of the week."""
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    def minute(text: str) -> int:
        parts = text.split(":")
        day = days.index(parts[0]) if len(parts) == 3 else 0
        return day * 1440 + int(parts[-2]) * 60 + int(parts[-1])

    start, end = (minute(p) for p in window.split("-"))
    if window.count(":") == 2:  # daily: the same range on each day
        return [(d * 1440 + start, d * 1440 + end + (1440 if end < start else 0)) for d in range(7)]
    return [(start, end)] if end > start else [(start, 7 * 1440), (0, end)]


class Database(_Model):
    """RDS for PostgreSQL (`platform:database`). The safe settings are the defaults in every
    preset; a stack file that turns one off says so explicitly (prod cannot)."""

    engine_version: PostgresVersion = Field(
        # 18.4: PostgreSQL's current minor (2026-08), offered by RDS (looked up 2026-11-21).
        "18.4", description="PostgreSQL major.minor. Minor upgrades are applied automatically in "
        "the maintenance window; a major upgrade is a deliberate change here.",
    )
    instance_class: DbInstanceClass = Field(description="RDS instance class.")
    allocated_storage_gib: int = Field(20, ge=20, le=65536, description="Initial gp3 storage, GiB.")
    max_allocated_storage_gib: int = Field(
        description="Storage autoscaling ceiling, GiB (at least the allocated storage)."
    )
    multi_az: bool = Field(True, description="A synchronous standby in another AZ (fail-over).")
    backup_retention_days: int = Field(
        14, ge=0, le=35, description="Days of automated backups and point-in-time recovery "
        "(prod: at least 14).",
    )
    backup_window: BackupWindow = Field("03:00-04:00", description="Daily backup window, UTC.")
    maintenance_window: MaintenanceWindow = Field(
        "sun:04:30-sun:05:30", description="Weekly maintenance window, UTC; must not overlap the "
        "backup window.",
    )
    deletion_protection: bool = Field(True, description="RDS refuses to delete the instance.")
    final_snapshot: bool = Field(True, description="Take a final snapshot if it is ever deleted.")
    protect: bool = Field(
        True, description="Pulumi `protect`: `pulumi destroy` and any replacement fail instead of "
        "deleting the database.",
    )
    apply_immediately: bool = Field(
        False, description="Apply changes at once instead of in the next maintenance window."
    )
    slow_query_ms: int = Field(
        500, ge=-1, description="Log statements slower than this (ms); -1 turns it off."
    )
    database_name: PgIdentifier = Field("platform", description="The initial database.")
    master_username: PgIdentifier = Field(
        "platform_admin", description="Master user name (a reserved name such as `postgres` or "
        "`rdsadmin` is refused by RDS).",
    )
    master_password_version: int = Field(
        1, ge=1, description="Bump to make `pulumi up` set the master password again from the "
        "generated secret (break-glass after Vault has rotated it).",
    )
    log_retention_days: LogRetention = Field(
        30, description="Days CloudWatch keeps the PostgreSQL logs."
    )
    ca_bundle_file: str | None = Field(
        None, min_length=1, max_length=500,
        description="The RDS CA bundle of the stack's region (PEM file, relative to where "
        "`pulumi up` runs), from AWS's trust store: `curl -o rds-ca.pem https://truststore.pki"
        ".rds.amazonaws.com/<region>/<region>-bundle.pem`. Set: Vault connects with "
        "`sslmode=verify-full` against it. Unset: the connection is encrypted but the "
        "certificate is not verified, and `pulumi up` warns.")

    @model_validator(mode="after")
    def _consistent(self) -> Database:
        if self.ca_bundle_file is not None:
            path = Path(self.ca_bundle_file)
            if not path.is_file():
                raise _Bad("caBundleFile", self.ca_bundle_file,
                           f"is not a file (from {Path.cwd()}); allowed: the path of the PEM "
                           "bundle downloaded from AWS's RDS trust store")
            if "-----BEGIN CERTIFICATE-----" not in path.read_text(errors="replace"):
                raise _Bad("caBundleFile", self.ca_bundle_file,
                           "holds no PEM certificate; allowed: the RDS CA bundle (PEM)")
        if self.max_allocated_storage_gib < self.allocated_storage_gib:
            raise _Bad("maxAllocatedStorageGib", self.max_allocated_storage_gib,
                       f"is below allocatedStorageGib ({self.allocated_storage_gib}); allowed: "
                       "at least the allocated storage")
        if self.master_username in ("postgres", "rdsadmin", "admin", "root"):
            raise _Bad("masterUsername", self.master_username,
                       "is reserved; allowed: another identifier, e.g. platform_admin")
        backup = _window_minutes(self.backup_window)
        maintenance = _window_minutes(self.maintenance_window)
        if any(a < d and c < b for a, b in backup for c, d in maintenance):
            raise _Bad("maintenanceWindow", self.maintenance_window,
                       f"overlaps the backup window {self.backup_window}; allowed: a window "
                       "outside it")
        return self

    @property
    def performance_insights(self) -> bool:
        return self.instance_class not in _NO_PERFORMANCE_INSIGHTS



class SloSpec(_Model):
    """A service level objective, as data: the component turns it into recording rules over the
    standard windows and multiwindow, multi-burn-rate alerts (Google SRE workbook, chapter 5)."""

    service: Slug = Field(description="Service the SLO is about (the `service` label).")
    team: Slug = Field(description="Team that owns it (the `team` label; routes its alerts).")
    description: str = Field(min_length=1, max_length=200, description="What is measured.")
    objective: float = Field(gt=0.5, lt=1, description="Target good-event ratio, e.g. 0.999.")
    window_days: Literal[7, 14, 28, 30] = Field(30, description="SLO window in days.")
    total: MetricSelector = Field(description="Counter of all events (a selector).")
    errors: MetricSelector | None = Field(None, description="Counter of bad events; or `good`.")
    good: MetricSelector | None = Field(None, description="Counter of good events; or `errors`.")

    @model_validator(mode="after")
    def _one_sli(self) -> SloSpec:
        if (self.errors is None) == (self.good is None):
            raise _Bad("errors", self.errors, "set exactly one of errors and good (the SLI is "
                       "errors/total or 1 - good/total)")
        return self

    @property
    def error_budget(self) -> float:
        return round(1 - self.objective, 10)


class PodResources(_Model):
    """Requests and limits of a workload."""

    cpu_request: Quantity = Field(description="CPU request, e.g. 200m.")
    memory_request: Quantity = Field(description="Memory request, e.g. 1Gi.")
    memory_limit: Quantity = Field(description="Memory limit, e.g. 2Gi.")

    @model_validator(mode="after")
    def _request_within_limit(self) -> PodResources:
        from platform_guard.capacity import memory_mib

        if memory_mib(self.memory_request) > memory_mib(self.memory_limit):
            raise _Bad("memoryRequest", self.memory_request,
                       f"is above memoryLimit ({self.memory_limit}); the API server refuses such "
                       "a pod; allowed: a request at most the limit")
        return self


class PrometheusSizing(_Model):
    """Prometheus (`platform:observability.prometheus`)."""

    replicas: int = Field(ge=1, le=3, description="Prometheus replicas (each scrapes everything).")
    retention: PromDuration = Field(description="How long samples are kept, e.g. 15d.")
    storage_gib: int = Field(ge=10, le=1000, description="gp3 volume per replica, GiB.")
    resources: PodResources = Field(description="Requests and limits per replica.")


class AlertmanagerSizing(_Model):
    """Alertmanager (`platform:observability.alertmanager`)."""

    replicas: int = Field(ge=1, le=3, description="Alertmanager replicas (they gossip).")
    storage_gib: int = Field(2, ge=1, le=100, description="gp3 volume per replica, GiB.")


class Observability(_Model):
    """Prometheus, Alertmanager and Grafana (kube-prometheus-stack) and the SLOs
    (`platform:observability`)."""

    namespace: Slug = Field("monitoring", description="Namespace of the monitoring stack.")
    prometheus: PrometheusSizing = Field(description="Prometheus sizing.")
    alertmanager: AlertmanagerSizing = Field(description="Alertmanager sizing.")
    grafana_replicas: int = Field(1, ge=1, le=3, description="Grafana replicas.")
    slos: tuple[SloSpec, ...] = Field(
        (), description="Teams' SLOs (docs/slo-template.yaml is the template); the platform's "
        "own SLOs are built in.",
    )

    @model_validator(mode="after")
    def _unique_slos(self) -> Observability:
        seen = set()
        for slo in self.slos:
            if slo.service in seen:
                raise _Bad("slos", slo.service, "two SLOs for one service; allowed: one each")
            seen.add(slo.service)
        return self


class Receiver(_Model):
    """Where a team's alerts go (`platform:alerting.receivers[]`). Webhook and Slack URLs are
    secrets: `pulumi config set --secret --path 'platform:alerting.receivers[0].slackWebhookUrl'
    <url>`; without one, the receiver drops its alerts and `pulumi up` warns."""

    name: Slug = Field(description="Receiver name.")
    teams: tuple[Slug, ...] = Field(min_length=1, description="Teams (the `team` label) routed here.")
    severities: tuple[Literal["critical", "warning"], ...] = Field(
        ("critical", "warning"), min_length=1, description="Severities routed here.")
    slack_channel: SlackChannel | None = Field(None, description="Slack channel for Slack URLs.")
    slack_webhook_url: SecretUrl | None = Field(None, description="Slack incoming webhook (secret).")
    webhook_url: SecretUrl | None = Field(None, description="Generic webhook, e.g. a pager (secret).")

    @model_validator(mode="after")
    def _one_destination(self) -> Receiver:
        if self.slack_webhook_url is not None and self.webhook_url is not None:
            raise _Bad("webhookUrl", "[secret]", "set only one of slackWebhookUrl and webhookUrl")
        if self.slack_webhook_url is not None and self.slack_channel is None:
            raise _Bad("slackChannel", None, "required with slackWebhookUrl")
        return self


class Alerting(_Model):
    """Alert routing (`platform:alerting`)."""

    receivers: tuple[Receiver, ...] = Field(min_length=1, description="Alert receivers.")
    default_receiver: Slug = Field(description="Receiver for alerts of no listed team.")
    emails: tuple[Email, ...] = Field(
        (), description="Addresses subscribed to the SNS topic of CloudWatch alarms and budget "
        "notifications (each confirms by email).",
    )
    runbook_base_url: HttpsUrl = Field(
        description="Where docs/runbooks/ is browsable, e.g. "
        "https://github.com/<org>/platform/blob/main/docs/runbooks; alerts link there.")

    @model_validator(mode="after")
    def _default_exists(self) -> Alerting:
        names = [r.name for r in self.receivers]
        if self.default_receiver not in names:
            raise _Bad("defaultReceiver", self.default_receiver,
                       f"is not a receiver; allowed: {', '.join(names)}")
        return self


def _vault_address(value: str) -> str:
    if re.match(r"https://[^/:]+", value) is None:
        raise ValueError("is not an https:// URL; allowed: https://..., e.g. "
                         "https://127.0.0.1:8200 through a kubectl port-forward (Vault serves "
                         "TLS only)")
    return value


VaultAddress = Annotated[str, AfterValidator(_vault_address)]


class Vault(_Model):
    """Vault and its configuration (`platform:vault`). The first `pulumi up` deploys Vault; it
    is configured (auth, engines, policies, database roles) once `address` is set: the first
    time with the root token (`token`) after the operator has initialised it, from then on as
    the deploying role through Vault's AWS auth method, with the root token revoked (README,
    "Vault")."""

    replicas: int = Field(ge=1, le=5, description="Vault servers (integrated raft storage); "
                          "odd, so a quorum survives losing a minority.")
    storage_gib: int = Field(10, ge=1, le=500, description="gp3 raft volume per server, GiB.")
    audit_storage_gib: int = Field(10, ge=1, le=500, description="gp3 audit-log volume per "
                                   "server, GiB.")
    address: VaultAddress | None = Field(
        None, description="Where `pulumi up` reaches Vault to configure it, e.g. "
        "https://127.0.0.1:8200 through `kubectl -n vault port-forward svc/vault 8200`. Set: "
        "Vault is configured, logging in as the deploying role (AWS auth, role "
        "`platform-pulumi`) unless `token` is set.")
    ca_cert_file: str | None = Field(
        None, min_length=1, max_length=500,
        description="The Vault CA's certificate (PEM file, relative to where `pulumi up` runs), "
        "which `pulumi up` verifies Vault with: `kubectl -n vault get secret vault-tls -o "
        "jsonpath='{.data.ca\\.crt}' | base64 -d > vault-ca.pem`. Unset: the provider's "
        "VAULT_CACERT, else the system's trust store (which does not know the Vault CA).")
    token: SecretStr | None = Field(
        None, description="The root token, for the one bootstrap `pulumi up` that creates the "
        "AWS auth login the next runs use (secret: `pulumi config set --secret --path "
        "platform:vault.token <token>`); then remove it and revoke the token.")
    credentials_ttl_seconds: int = Field(
        3600, ge=300, le=86400, description="Default lifetime of a service's database "
        "credentials.")
    credentials_max_ttl_seconds: int = Field(
        86400, ge=300, le=86400, description="Longest a service's database credentials may be "
        "renewed to (at most a day).")

    @model_validator(mode="after")
    def _consistent(self) -> Vault:
        if self.replicas % 2 == 0:
            raise _Bad("replicas", self.replicas, "is even; allowed: 1, 3 or 5 (a raft quorum)")
        if self.token is not None and self.address is None:
            raise _Bad("address", None, "a token needs the address of the Vault it is for")
        if self.credentials_ttl_seconds > self.credentials_max_ttl_seconds:
            raise _Bad("credentialsTtlSeconds", self.credentials_ttl_seconds,
                       "exceeds credentialsMaxTtlSeconds")
        return self

    @property
    def configured(self) -> bool:
        return self.address is not None


class SyncWindow(_Model):
    """An Argo CD sync window (`platform:gitops.syncWindows[]`), in UTC."""

    kind: Literal["allow", "deny"] = Field(description="Allow or deny syncs in the window.")
    schedule: str = Field(pattern=r"^(\S+\s+){4}\S+$",
                          description="Cron schedule of the window's start, e.g. `0 9 * * 1-5`.")
    duration: str = Field(pattern=r"^\d+[hm]$", description="How long it lasts, e.g. 7h.")
    manual_sync: bool = Field(True, description="Allow manual syncs while the window denies.")


class Sso(_Model):
    """OIDC single sign-on for Argo CD (`platform:gitops.sso`); the client secret is a secret:
    `pulumi config set --secret --path platform:gitops.sso.clientSecret <secret>`."""

    issuer: HttpsUrl = Field(description="OIDC issuer URL.")
    client_id: str = Field(min_length=1, max_length=200, description="OIDC client ID.")
    client_secret: SecretStr | None = Field(
        None, description="OIDC client secret (secret; set by an operator: SSO login fails, "
        "and `pulumi up` warns, until it is).")
    admin_group: GroupName = Field(description="IdP group that gets Argo CD's admin role.")


class GitOps(_Model):
    """Argo CD, Argo Rollouts and the app-of-apps (`platform:gitops`)."""

    repo_url: HttpsUrl = Field(description="This repository, which Argo CD watches, e.g. "
                               "https://github.com/<org>/platform.git.")
    revision: str = Field("main", min_length=1, max_length=100,
                          description="Branch, tag or commit Argo CD follows.")
    ha: bool = Field(description="Argo CD highly available (replicated components, Redis HA).")
    auto_sync: bool = Field(
        description="Sync automatically with prune and self-heal (dev). Off: every change is "
        "synced by hand (promotion), inside the sync windows (prod).")
    sync_windows: tuple[SyncWindow, ...] = Field(
        (), description="When the team projects may sync (UTC).")
    sso: Sso | None = Field(None, description="OIDC SSO; without it, the local admin (its "
                            "password in the `argocd-initial-admin-secret` Secret).")


# Namespaces the platform's own components run in: never team namespaces, never matched by the
# admission policies (node-exporter, the CNI, Gatekeeper itself need what those policies forbid).
PLATFORM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "default",
                       "gatekeeper-system", "monitoring", "vault", "cosign-system", "argocd",
                       "cert-manager")


GitHubHandle = Annotated[str, _pattern(r"@[A-Za-z0-9-]{1,39}", "a GitHub handle, e.g. @alice")]
# The admission policies' ids (components/admission.py POLICIES; a test keeps them equal).
ADMISSION_POLICY_IDS = ("non-root", "no-privilege-escalation", "drop-capabilities", "resources",
                        "allowed-images", "required-labels", "sandbox", "host-isolation",
                        "monitor-scope", "ingress", "probes")


class Exemption(_Model):
    """One time-limited exemption (`platform:security.gatekeeper.exemptions[]`)."""

    id: Slug = Field(description="What the object's annotation names.")
    policy: Literal[ADMISSION_POLICY_IDS] = Field(  # type: ignore[valid-type]
        description="The one admission policy it exempts from.")
    namespace: Slug = Field(description="The team namespace it holds in.")
    until: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$",
                       description="Last day is the day before (00:00 UTC); at most "
                       "maxExemptionDays ahead, or it is not honoured.")
    approved_by: GitHubHandle = Field(description="Who approved it (one of exemptionApprovers).")
    reason: str = Field(min_length=10, max_length=500, description="Why, and what ends it.")


class Gatekeeper(_Model):
    """OPA Gatekeeper and the platform's admission policies (`platform:security.gatekeeper`).
    The policies apply to team namespaces only; exemptions are annotations that expire
    (README, "Admission policies")."""

    replicas: int = Field(ge=1, le=5, description="Admission webhook replicas.")
    enforcement: Literal["warn", "deny"] = Field(
        description="What a violation does in team namespaces: `warn` admits and warns, `deny` "
        "rejects.")
    fail_closed: bool = Field(
        description="Reject team workloads while the webhook is unreachable (failurePolicy "
        "Fail) instead of admitting them unchecked. The platform's namespaces are exempt either "
        "way, so the cluster can always heal.")
    allowed_registries: tuple[RegistryPrefix, ...] = Field(
        min_length=1, description="Image registries (prefixes ending in '/') team images may "
        "come from.")
    require_digest: bool = Field(description="Team images must be pinned by digest.")
    probes_required: bool = Field(
        description="Deployments and Rollouts must declare readiness and liveness probes.")
    allowed_capabilities: tuple[Capability, ...] = Field(
        (), description="Capabilities a container may add back after dropping ALL.")
    required_labels: tuple[LabelKey, ...] = Field(
        ("team", "app.kubernetes.io/name"), min_length=1,
        description="Labels every team object and pod template carries.")
    max_exemption_days: int = Field(
        30, ge=1, le=90, description="How far ahead an exemption's date may be; a later date is "
        "not honoured.")
    exemption_approvers: tuple[GitHubHandle, ...] = Field(
        (), description="Who may approve an exemption (each entry of `exemptions` names one); "
        "they review the stack files (CODEOWNERS).")
    exemptions: tuple[Exemption, ...] = Field(
        (), description="Time-limited exemptions from one admission policy in one team "
        "namespace. An object opts in with the annotation `exempt.platform.example.org/<policy>: "
        "<id>`; a team cannot grant or extend one from its own manifests.")

    @model_validator(mode="after")
    def _exemptions_approved(self) -> Gatekeeper:
        ids = [e.id for e in self.exemptions]
        for index, exemption in enumerate(self.exemptions):
            if ids.count(exemption.id) > 1:
                raise _Bad(f"exemptions[{index}].id", exemption.id, "is used twice; allowed: "
                           "one entry per id")
            if exemption.approved_by not in self.exemption_approvers:
                raise _Bad(f"exemptions[{index}].approvedBy", exemption.approved_by,
                           "is not an exemption approver; allowed: "
                           + (", ".join(self.exemption_approvers) or "none configured "
                              "(exemptionApprovers)"))
        return self


class ImageSignatures(_Model):
    """Signed images: the Sigstore policy-controller and a ClusterImagePolicy over the approved
    registries (`platform:security.imageSignatures`). Set exactly one of
    `keylessSubjectRegExp` (cosign keyless: the identity of the organisation's CI) and
    `publicKey` (a cosign public key)."""

    mode: Literal["warn", "enforce"] = Field(
        description="An unsigned image in a team namespace: `warn` admits it with a warning, "
        "`enforce` rejects it.")
    replicas: int = Field(ge=1, le=5, description="Webhook replicas.")
    keyless_issuer: HttpsUrl = Field(
        "https://token.actions.githubusercontent.com",
        description="OIDC issuer of the signing identity (GitHub Actions by default).")
    keyless_subject_reg_exp: str | None = Field(
        None, min_length=1, max_length=300,
        description="Regular expression the signing certificate's subject must match, e.g. "
        "`^https://github.com/<org>/.+/.github/workflows/.+@refs/heads/main$`.")
    public_key: str | None = Field(
        None, description="A cosign public key (PEM), instead of keyless signing.")

    @model_validator(mode="after")
    def _one_authority(self) -> ImageSignatures:
        if (self.keyless_subject_reg_exp is None) == (self.public_key is None):
            raise _Bad("keylessSubjectRegExp", self.keyless_subject_reg_exp,
                       "set exactly one of keylessSubjectRegExp and publicKey")
        if self.keyless_subject_reg_exp is not None:
            try:
                re.compile(self.keyless_subject_reg_exp)
            except re.error as error:
                raise _Bad("keylessSubjectRegExp", self.keyless_subject_reg_exp,
                           f"is not a regular expression ({error})") from None
            if not self.keyless_subject_reg_exp.startswith("^"):
                raise _Bad("keylessSubjectRegExp", self.keyless_subject_reg_exp,
                           "must be anchored with ^ (an unanchored pattern matches forks)")
        if self.public_key is not None and not self.public_key.strip().startswith(
                "-----BEGIN PUBLIC KEY-----"):
            raise _Bad("publicKey", self.public_key[:30], "is not a PEM public key "
                       "(-----BEGIN PUBLIC KEY-----)")
        return self


class Security(_Model):
    """Admission control (`platform:security`)."""

    gatekeeper: Gatekeeper = Field(description="Gatekeeper and its policies.")
    image_signatures: ImageSignatures = Field(description="Signed images (Sigstore).")


class TeamQuota(_Model):
    """A team namespace's ResourceQuota (`platform:teams[].quota`)."""

    requests_cpu: Quantity = Field("4", description="Sum of CPU requests.")
    requests_memory: Quantity = Field("8Gi", description="Sum of memory requests.")
    limits_memory: Quantity = Field("16Gi", description="Sum of memory limits.")
    pods: int = Field(50, ge=1, le=1000, description="Pods.")
    persistent_volume_claims: int = Field(10, ge=0, le=200, description="PVCs.")
    requests_storage: Quantity = Field("100Gi", description="Sum of PVC storage requests.")


class Team(_Model):
    """A team: its namespaces get the baseline (Pod Security `restricted`, quota, limits,
    default-deny network policies, RBAC), and the admission policies (`platform:teams[]`)."""

    name: Slug = Field(description="Team name (the `team` label and tag).")
    namespaces: tuple[Slug, ...] = Field(
        min_length=1, description="The team's namespaces; default: one named after the team.")
    admin_groups: tuple[GroupName, ...] = Field(
        description="Kubernetes groups (EKS access entries) of the team's admins: read, "
        "logs, port-forward, restart pods; never deploy (Argo CD does). Default: <name>-admins.")
    viewer_groups: tuple[GroupName, ...] = Field(
        description="Kubernetes groups with read-only access (no Secrets). Default: "
        "<name>-viewers.")
    quota: TeamQuota = Field(default_factory=TeamQuota, description="Per-namespace quota.")
    repos: tuple[HttpsUrl, ...] = Field(
        (), description="Git repositories the team's Argo CD project may deploy from, besides "
        "this one's `gitops/teams/<team>/`.")
    services: tuple[Slug, ...] = Field(
        (), description="The team's services that use the database: each gets short-lived "
        "PostgreSQL credentials from Vault, synced into the Secret `<service>-db` of the team's "
        "first namespace.")
    hosts: tuple[IngressHost, ...] = Field(
        (), description="DNS names the team's services may serve on the shared internet-facing "
        "load balancer (`checkout.example.com`, or `*.checkout.example.com` for every name under "
        "it). Each name belongs to one team; an Ingress for another host, or without one, is "
        "refused, and a team without hosts cannot expose anything to the internet.")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("name"), str):
            name = data["name"]
            data = {"namespaces": [name], "adminGroups": [f"{name}-admins"],
                    "viewerGroups": [f"{name}-viewers"], **data}
        return data

    @model_validator(mode="after")
    def _not_platform(self) -> Team:
        for namespace in self.namespaces:
            if namespace in PLATFORM_NAMESPACES:
                raise _Bad("namespaces", namespace, "is a platform namespace; allowed: any "
                           "other name (platform namespaces: " + ", ".join(PLATFORM_NAMESPACES)
                           + ")")
        return self


# What a prod-preset stack relies on: (key, the safe setting, whether a config keeps it, why).
# A prod stack that weakens one needs a `prodExceptions` entry for that key (named, dated,
# approved), which the review shows as an advisory verdict, and a mandatory one once expired.
PROD_CONTROLS: tuple[tuple[str, str, Callable[[Any], bool], str], ...] = (
    ("database.multiAz", "true", lambda c: c.database.multi_az, "a standby in another AZ"),
    ("database.deletionProtection", "true", lambda c: c.database.deletion_protection,
     "RDS refuses to delete the database"),
    ("database.finalSnapshot", "true", lambda c: c.database.final_snapshot,
     "a snapshot before any deletion"),
    ("database.protect", "true", lambda c: c.database.protect, "Pulumi refuses to delete it"),
    ("database.backupRetentionDays", "14 to 35", lambda c: c.database.backup_retention_days >= 14,
     "two weeks of point-in-time recovery"),
    ("cluster.deletionProtection", "true", lambda c: c.cluster.deletion_protection,
     "EKS refuses to delete the cluster"),
    ("network.flowLogs.enabled", "true", lambda c: c.network.flow_logs.enabled,
     "the network's audit trail"),
    ("security.gatekeeper.enforcement", "deny",
     lambda c: c.security.gatekeeper.enforcement == "deny", "admission policies refuse"),
    ("security.gatekeeper.failClosed", "true", lambda c: c.security.gatekeeper.fail_closed,
     "no object skips the policies while Gatekeeper is down"),
    ("security.gatekeeper.requireDigest", "true", lambda c: c.security.gatekeeper.require_digest,
     "images by digest, so what was signed is what runs"),
    ("security.imageSignatures.mode", "enforce",
     lambda c: c.security.image_signatures.mode == "enforce", "unsigned images are refused"),
    ("gitops.autoSync", "false", lambda c: not c.gitops.auto_sync,
     "changes reach prod when a person syncs them, inside the sync windows"),
    ("gitops.sso", "set", lambda c: c.gitops.sso is not None,
     "no shared local admin holds every deployment"),
)


def _control_value(config: Any, key: str) -> Any:
    """A control's value by its key path (aliases), for the error message."""
    value: Any = config
    for part in key.split("."):
        value = getattr(value, next(n for n, f in type(value).model_fields.items()
                                    if (f.alias or n) == part))
    return value


class ProdException(_Model):
    """A named, dated, approved weakening of one prod control (`platform:prodExceptions[]`)."""

    key: Literal[tuple(k for k, *_ in PROD_CONTROLS)] = Field(  # type: ignore[misc]
        description="The control it weakens (a key of the prod lock, README).")
    until: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$",
                       description="When it ends (YYYY-MM-DD); after it the review refuses the "
                       "stack (a mandatory verdict).")
    approved_by: GitHubHandle = Field(description="Who approved it (one of "
                                      "security.gatekeeper.exemptionApprovers).")
    reason: str = Field(min_length=10, max_length=500, description="Why, and what ends it.")


class PlatformConfig(_Model):
    """A whole environment. The stack file's `platform:<key>` keys, laid over the preset."""

    preset: Literal["dev", "prod"] = Field(
        description="Environment preset whose defaults this stack starts from: `dev` is cheap, "
        "`prod` is highly available."
    )
    environment: Slug = Field(
        description="Environment name: the `environment` tag and the prefix of resource names. "
        "Defaults to the preset's name, so a `staging` stack sets `preset: prod` and "
        "`environment: staging`."
    )
    region: AwsRegion = Field(
        description="AWS region, read from the stack's `aws:region` (default `us-east-1`)."
    )
    budget_monthly_usd: float = Field(
        gt=0, le=500,
        description="The environment's monthly budget in US dollars. Dev and prod together must "
        "stay at or under 500.",
    )
    tags: Tags = Field(description="Values of the standard tags.")
    network: Network = Field(description="The VPC.")
    cluster: Cluster = Field(description="The EKS cluster.")
    database: Database = Field(description="RDS for PostgreSQL.")
    observability: Observability = Field(description="Monitoring stack and SLOs.")
    alerting: Alerting = Field(description="Alert routing and notification.")
    security: Security = Field(description="Admission control.")
    vault: Vault = Field(description="Vault.")
    gitops: GitOps = Field(description="Argo CD and the app-of-apps.")
    prod_exceptions: tuple[ProdException, ...] = Field(
        (), description="Controls a prod-preset stack weakens on purpose, each named, dated and "
        "approved (the prod lock, README); the review shows each as an advisory verdict, and "
        "refuses the stack once one has expired.")
    teams: tuple[Team, ...] = Field(
        (), description="The teams whose workloads run on the platform, each with its own "
        "namespaces.")

    @model_validator(mode="after")
    def _teams_distinct(self) -> PlatformConfig:
        names: set[str] = set()
        namespaces: set[str] = set()
        for index, team in enumerate(self.teams):
            if team.name in names:
                raise _Bad(f"teams[{index}].name", team.name, "is listed twice; allowed: each "
                           "team once")
            names.add(team.name)
            for namespace in team.namespaces:
                if namespace in namespaces or namespace == self.observability.namespace:
                    raise _Bad(f"teams[{index}].namespaces", namespace, "is already taken; "
                               "allowed: a namespace of one team only")
                namespaces.add(namespace)
        services = [s for team in self.teams for s in team.services]
        for service in services:
            if services.count(service) > 1:
                raise _Bad("teams", service, "is a service of two teams; allowed: one owner")
        claimed: list[tuple[str, str]] = []  # (host, team)
        for index, team in enumerate(self.teams):
            for host in team.hosts:
                owner = next((other for h, other in claimed if other != team.name and (
                    host_covers(h, host) or host_covers(host, h))), None)
                if owner is not None:
                    raise _Bad(f"teams[{index}].hosts", host,
                               f"overlaps a host of team {owner!r}; allowed: names no other "
                               "team claims (a team could otherwise take the other's traffic)")
                claimed.append((host, team.name))
        return self

    @model_validator(mode="after")
    def _production_controls(self) -> PlatformConfig:
        """The prod lock: a prod-preset stack keeps every control of PROD_CONTROLS, or names
        the weakening in prodExceptions (approved by an exemption approver)."""
        excepted = {e.key for e in self.prod_exceptions}
        for index, exception in enumerate(self.prod_exceptions):
            if exception.approved_by not in self.security.gatekeeper.exemption_approvers:
                raise _Bad(f"prodExceptions[{index}].approvedBy", exception.approved_by,
                           "is not an approver; allowed: one of "
                           "security.gatekeeper.exemptionApprovers")
        if self.preset != "prod":
            if self.prod_exceptions:
                raise _Bad("prodExceptions", [e.key for e in self.prod_exceptions],
                           "are for prod-preset stacks; allowed: [] here")
            return self
        for key, safe, kept, why in PROD_CONTROLS:
            if kept(self):
                if key in excepted:
                    raise _Bad("prodExceptions", key, "excepts a control the stack keeps; "
                               "allowed: remove the entry")
                continue
            if key not in excepted:
                raise _Bad(key, _control_value(self, key), f"is weakened in a prod-preset "
                           f"stack ({why}); allowed: {safe}, or a prodExceptions entry for "
                           f"{key} (until, approvedBy, reason)")
        return self

    def standard_tags(self, service: str) -> dict[str, str]:
        """The standard tags (PLATFORM.md) of a resource that belongs to `service`."""
        tags = {
            "team": self.tags.team,
            "service": service,
            "environment": self.environment,
            "cost-center": self.tags.cost_center,
            "owner": self.tags.owner,
            "managed-by": "pulumi",
        }
        assert tuple(tags) == REQUIRED_TAG_KEYS
        return tags


# Preset defaults. Stack files override any of them; lists are replaced, objects merged.
GRAVITON_FAMILIES = ["t4g", "m7g", "m8g", "c7g", "c8g", "r7g", "r8g"]

PRESETS: dict[str, dict[str, Any]] = {
    "dev": {
        "network": {
            "azCount": 2,
            "natStrategy": "single",
            "flowLogs": {"retentionDays": 14},
        },
        "cluster": {
            "logRetentionDays": 14,
            "deletionProtection": False,
            "allowedInstanceFamilies": GRAVITON_FAMILIES,
            "nodeGroups": {
                # Two spot pools of one shape (2 vCPU, 4 GiB): the autoscaler plans with one.
                "system": {"instanceTypes": ["t4g.medium", "c7g.large"], "capacityType": "SPOT",
                           "minSize": 2, "desiredSize": 2, "maxSize": 4, "diskSizeGib": 20,
                           "maxPods": 40},
            },
        },
        "database": {"instanceClass": "db.t4g.micro", "maxAllocatedStorageGib": 50,
                     "applyImmediately": True},
        "observability": {
            "prometheus": {"replicas": 1, "retention": "7d", "storageGib": 20, "resources": {
                "cpuRequest": "200m", "memoryRequest": "1Gi", "memoryLimit": "2Gi"}},
            "alertmanager": {"replicas": 1},
        },
        "security": {"gatekeeper": {"replicas": 1, "enforcement": "warn", "failClosed": False,
                                    "requireDigest": False, "probesRequired": False},
                     "imageSignatures": {"mode": "warn", "replicas": 1}},
        "vault": {"replicas": 1},
        "gitops": {"ha": False, "autoSync": True},
    },
    "prod": {
        "network": {
            "azCount": 3,
            "natStrategy": "one-per-az",
            "flowLogs": {"retentionDays": 90},
        },
        "cluster": {
            "logRetentionDays": 90,
            "deletionProtection": True,
            "allowedInstanceFamilies": GRAVITON_FAMILIES,
            "nodeGroups": {
                # Four: the platform still fits with one node lost (the node-capacity check).
                "system": {"instanceTypes": ["t4g.medium"], "capacityType": "ON_DEMAND",
                           "minSize": 4, "desiredSize": 4, "maxSize": 8, "maxPods": 40},
            },
        },
        "database": {"instanceClass": "db.t4g.small", "maxAllocatedStorageGib": 100},
        "observability": {
            "prometheus": {"replicas": 2, "retention": "15d", "storageGib": 50, "resources": {
                "cpuRequest": "500m", "memoryRequest": "2Gi", "memoryLimit": "3Gi"}},
            "alertmanager": {"replicas": 2},
        },
        "security": {"gatekeeper": {"replicas": 3, "enforcement": "deny", "failClosed": True,
                                    "requireDigest": True, "probesRequired": True},
                     "imageSignatures": {"mode": "enforce", "replicas": 2}},
        "vault": {"replicas": 3},
        "gitops": {"ha": True, "autoSync": False, "syncWindows": [
            {"kind": "allow", "schedule": "0 9 * * 1-4", "duration": "7h"}]},
    },
}

DEFAULT_REGION = "us-east-1"


# --------------------------------------------------------------------------------------------
# Reading and validating


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _show(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds, and whether it holds a map of them (`dict[str, Model]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if typing.get_origin(annotation) is dict:
        value = typing.get_args(annotation)[1]
        if isinstance(value, type) and issubclass(value, BaseModel):
            return value, True
    return None, False


def _listed_model(annotation: Any) -> type[BaseModel] | None:
    """The model a `tuple[Model, ...]` field holds."""
    if typing.get_origin(annotation) is tuple:
        item = typing.get_args(annotation)[0]
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item
    return None


def _model_at(loc: tuple[Any, ...], root: type[BaseModel] | None = None
              ) -> type[BaseModel] | None:
    """The model class that owns the key at `loc` (aliases), to list what keys it allows."""
    model: type[BaseModel] = root or PlatformConfig
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        field = next((f for f in model.model_fields.values() if f.alias == part), None)
        if field is None:
            return model
        inner, is_map = nested_model(field.annotation)
        listed = _listed_model(field.annotation)
        if inner is None and listed is None:
            return model
        if is_map or listed is not None:
            if not parts:
                return model
            parts.pop(0)  # the map's key (a node group's name) or the list's index
        model = inner or listed
    return model


def _key_path(loc: tuple[Any, ...], prefix: str = f"{PROJECT_NAMESPACE}:") -> str:
    path = prefix
    for i, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if i else "") + str(part)
    return path


_NOT_SET = "(not set)"


def _is_secret(loc: tuple[Any, ...], root: type[BaseModel] | None = None) -> bool:
    """Whether the key at `loc` holds a secret (its value is never shown)."""
    owner = _model_at(loc[:-1], root) if loc else None
    field = next((f for f in owner.model_fields.values() if f.alias == loc[-1]), None) \
        if owner is not None and loc else None
    return field is not None and "SecretStr" in str(field.annotation)


def _describe(error: Mapping[str, Any], root: type[BaseModel] | None = None,
              prefix: str = f"{PROJECT_NAMESPACE}:") -> str:
    """One line: key path, bad value, what is wrong and what is allowed."""
    root = root or PlatformConfig
    loc = tuple(error["loc"])
    kind = error["type"]
    if _is_secret(loc, root):
        error = {**error, "input": "[secret]"}
    if kind == "extra_forbidden":
        owner = _model_at(loc[:-1], root) or root
        allowed = [f.alias for f in owner.model_fields.values()
                   if f.alias and not (owner is PlatformConfig and f.alias == "region")]
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return (f"{_key_path(loc, prefix)}: {_show(error.get('input'))}: unknown key{hint}; "
                f"allowed keys here: {', '.join(allowed)}")
    if kind == "missing":
        owner = _model_at(loc[:-1], root) or root
        field = next((f for f in owner.model_fields.values() if f.alias == loc[-1]), None)
        what = field.description if field and field.description else "a value"
        return f"{_key_path(loc, prefix)}: {_NOT_SET}: required; {what}"
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _Bad):
        return f"{_key_path(loc + (cause.key,), prefix)}: {_show(cause.value)}: {cause.message}"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message.replace("Input should be ", "allowed: ")
    return f"{_key_path(loc, prefix)}: {_show(error.get('input'))}: {message}"


def validation_problems(exc: ValidationError, root: type[BaseModel] | None = None,
                        prefix: str = f"{PROJECT_NAMESPACE}:") -> list[str]:
    """One line per problem of a failed validation of `root` (the whole config by default)."""
    errors = exc.errors(include_url=False)
    # A list whose item failed also reports itself "too short": the item's error says it.
    inner_locs = [tuple(e["loc"]) for e in errors]
    errors = [e for e in errors if not (e["type"] == "too_short" and any(
        len(other) > len(e["loc"]) and other[:len(e["loc"])] == tuple(e["loc"])
        for other in inner_locs))]
    return [_describe(error, root, prefix) for error in errors]


def build(raw: Mapping[str, Any], region: str | None, source: str) -> PlatformConfig:
    """Validate a stack's raw `platform:*` values (keys without the namespace) into the model.

    Raises :class:`ConfigError` with every problem found."""
    preset = raw.get("preset")
    if preset not in PRESETS:
        shown = _NOT_SET if preset is None else _show(preset)
        raise ConfigError(source, [
            f"{PROJECT_NAMESPACE}:preset: {shown} is not a preset; allowed: "
            + ", ".join(repr(p) for p in PRESETS)
        ])
    extra_problems = []
    if "region" in raw:  # the model's region comes from aws:region, the AWS provider's own key
        extra_problems.append(f"{PROJECT_NAMESPACE}:region: {_show(raw['region'])}: unknown key; "
                              "the region is set with aws:region")
        raw = {k: v for k, v in raw.items() if k != "region"}
    merged = _deep_merge(PRESETS[preset], raw)
    merged.setdefault("environment", preset)
    merged["region"] = region if region is not None else DEFAULT_REGION
    try:
        model = PlatformConfig.model_validate(merged)
    except ValidationError as exc:
        problems = list(extra_problems)
        for line in validation_problems(exc):
            if line.startswith(f"{PROJECT_NAMESPACE}:region:"):  # the one key outside ours
                line = "aws:region" + line.removeprefix(f"{PROJECT_NAMESPACE}:region")
            problems.append(line)
        raise ConfigError(source, problems) from None
    if extra_problems:
        raise ConfigError(source, extra_problems)
    return model


def _decode(value: Any) -> Any:
    """Config values arrive from the Pulumi CLI as strings; objects and lists as JSON text."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _config_keys() -> set[str]:
    """Every config key the engine handed to this program (the SDK has no public listing)."""
    return set(_runtime_config.CONFIG.get()) | set(_runtime_config.get_config_env())


def secret_paths(model: BaseModel, loc: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Where `model` holds a secret value that is set: the key paths (aliases and list indexes)
    of its SecretStr fields that are not None, at any depth."""
    found = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        here = (*loc, info.alias or name)
        if isinstance(value, SecretStr):
            found.append(here)
        elif isinstance(value, BaseModel):
            found += secret_paths(value, here)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    found += secret_paths(item, (*here, index))
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    found += secret_paths(item, (*here, key))
    return found


def plaintext_secrets(model: PlatformConfig, secret_keys: set[str]) -> list[str]:
    """One problem per secret value the stack file holds in plaintext: Pulumi encrypts a value
    only when it is set with `--secret` (and then marks its whole top-level key secret)."""
    problems = []
    for loc in secret_paths(model):
        if f"{PROJECT_NAMESPACE}:{loc[0]}" in secret_keys:
            continue
        path = _key_path(loc)
        problems.append(f"{path}: [secret]: set in plaintext, so the stack file and the state "
                        "hold it readable; allowed: a Pulumi secret, set with `pulumi config set "
                        f"--secret --path '{path}' <value>`")
    return problems


def load(source: str | None = None) -> PlatformConfig:
    """Read and validate this stack's configuration. `source` names the stack file in errors."""
    source = source or f"Pulumi.{pulumi.get_stack()}.yaml"
    config = pulumi.Config(PROJECT_NAMESPACE)
    raw: dict[str, Any] = {}
    for full_key in sorted(_config_keys()):
        namespace, _, key = full_key.partition(":")
        if namespace == PROJECT_NAMESPACE and key:
            raw[key] = _decode(config.get(key))
    region = pulumi.Config("aws").get("region")
    model = build(raw, region, source)
    secret_keys = {k for k in _config_keys() if _runtime_config.is_config_secret(k)} | set(
        _runtime_config.get_config_secret_keys_env())
    problems = plaintext_secrets(model, secret_keys)
    if problems:
        raise ConfigError(source, problems)
    return model
