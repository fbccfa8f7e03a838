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
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pulumi
from pulumi.runtime import config as _runtime_config
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
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
    retention_days: int = Field(
        description="Days CloudWatch keeps the flow logs. One of CloudWatch's allowed values."
    )
    traffic_type: Literal["ALL", "ACCEPT", "REJECT"] = Field(
        "ALL", description="Which traffic to record."
    )
    max_aggregation_interval: Literal[60, 600] = Field(
        600, description="Seconds over which a flow is aggregated into one record (60 or 600)."
    )

    @model_validator(mode="after")
    def _retention_allowed(self) -> FlowLogs:
        if self.retention_days not in LOG_RETENTION_DAYS:
            raise _Bad("retentionDays", self.retention_days,
                       "not a CloudWatch Logs retention; allowed: "
                       + ", ".join(map(str, LOG_RETENTION_DAYS)))
        return self


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
PRESETS: dict[str, dict[str, Any]] = {
    "dev": {
        "network": {
            "azCount": 2,
            "natStrategy": "single",
            "flowLogs": {"retentionDays": 14},
        },
    },
    "prod": {
        "network": {
            "azCount": 3,
            "natStrategy": "one-per-az",
            "flowLogs": {"retentionDays": 90},
        },
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


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the key at `loc` (aliases), to list what keys it allows."""
    model: type[BaseModel] = PlatformConfig
    for part in loc:
        field = next((f for f in model.model_fields.values() if f.alias == part), None)
        if field is None:
            return model
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return model
    return model


def _key_path(loc: tuple[Any, ...]) -> str:
    path = f"{PROJECT_NAMESPACE}:"
    for i, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if i else "") + str(part)
    return path


_NOT_SET = "(not set)"


def _describe(error: Mapping[str, Any]) -> str:
    """One line: key path, bad value, what is wrong and what is allowed."""
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        owner = _model_at(loc[:-1]) or PlatformConfig
        allowed = [f.alias for f in owner.model_fields.values()
                   if f.alias and not (owner is PlatformConfig and f.alias == "region")]
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return (f"{_key_path(loc)}: {_show(error.get('input'))}: unknown key{hint}; "
                f"allowed keys here: {', '.join(allowed)}")
    if kind == "missing":
        owner = _model_at(loc[:-1]) or PlatformConfig
        field = next((f for f in owner.model_fields.values() if f.alias == loc[-1]), None)
        what = field.description if field and field.description else "a value"
        return f"{_key_path(loc)}: {_NOT_SET}: required; {what}"
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _Bad):
        return f"{_key_path(loc + (cause.key,))}: {_show(cause.value)}: {cause.message}"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message.replace("Input should be ", "allowed: ")
    return f"{_key_path(loc)}: {_show(error.get('input'))}: {message}"


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
        for error in exc.errors(include_url=False):
            line = _describe(error)
            if tuple(error["loc"]) == ("region",):  # the one key outside our namespace
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
    return build(raw, region, source)
