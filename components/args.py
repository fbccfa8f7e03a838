"""What component arguments are made of: the strict base model and the field types.

Every component's args are pydantic models on :class:`ArgsModel`: keys are the stack file's
camelCase keys (one spelling, whether a stack file or Python builds them: `NetworkArgs(cidr=...,
azCount=2, ...)`), unknown keys are errors and a model is frozen once valid. A check that blames
one key raises :class:`Invalid`, which the composition (stacks/config.py) turns into a line naming
the stack file, the key, the bad value and what is allowed.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic.alias_generators import to_camel

# Values CloudWatch Logs accepts for retention_in_days (PutRetentionPolicy API, read 2026-11-21).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip


class Invalid(ValueError):
    """A model-level check that blames one key of the object it validates."""

    def __init__(self, key: str, value: Any, message: str):
        super().__init__(message)
        self.key, self.value, self.message = key, value, message


class pattern:  # noqa: N801 - used as a field type's annotation, like pydantic's own
    """A string that must match `regex` entirely: refused with "does not match; allowed:
    <allowed>". Its JSON schema (the service template's form, tools that read the schema)
    carries the same rule, anchored, and the same words."""

    def __init__(self, regex: str, allowed: str):
        self.regex, self.allowed = regex, allowed
        self.compiled = re.compile(regex)

    def check(self, value: str) -> str:
        if not self.compiled.fullmatch(value):
            raise ValueError(f"does not match; allowed: {self.allowed}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> Any:
        json_schema = handler(schema)
        json_schema["pattern"] = f"^(?:{self.regex})$"
        json_schema["x-allowed"] = self.allowed
        return json_schema


def _any_cidr(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"not an IPv4 network in CIDR notation ({exc}); allowed: e.g. "
                         "192.168.0.0/16") from None


AnyCidr = Annotated[str, AfterValidator(_any_cidr)]


def _calendar_date(value: str) -> str:
    import datetime

    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("does not match; allowed: a date YYYY-MM-DD, e.g. 2027-01-31")
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a day of the calendar; allowed: a real date YYYY-MM-DD, e.g. "
                         "2027-02-28") from None
    return value


# A day of the calendar, YYYY-MM-DD (2027-02-31 is refused, not read as 2027-03-03).
CalendarDate = Annotated[str, AfterValidator(_calendar_date)]
# AWS tag values: 0-256 of letters, digits, spaces and + - = . _ : / @. We also forbid empty.
TagValue = Annotated[
    str,
    pattern(
        r"[\w .:/=+\-@]{1,256}",
        "1 to 256 characters of letters, digits, spaces and + - = . _ : / @",
    ),
]


Slug = Annotated[
    str,
    pattern(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", "lower-case letters, digits and '-', 2-32 characters, "
             "starting with a letter"),
]
AwsRegion = Annotated[
    str, pattern(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d", "an AWS region name, e.g. us-east-1")
]
EndpointService = Annotated[
    str,
    pattern(r"[a-z0-9][a-z0-9.-]*[a-z0-9]",
             "an AWS service endpoint short name, e.g. ecr.api, sts, logs"),
]


InstanceType = Annotated[
    str, pattern(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "an EC2 instance type, e.g. t4g.medium")
]
InstanceFamily = Annotated[
    str, pattern(r"[a-z][a-z0-9-]*", "an EC2 instance family, e.g. t4g, m7g")
]
DbInstanceClass = Annotated[
    str, pattern(r"db\.[a-z0-9-]+\.[a-z0-9]+", "an RDS instance class, e.g. db.t4g.micro")
]
IamRoleArn = Annotated[
    str,
    pattern(r"arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}",
             "an IAM role ARN, e.g. arn:aws:iam::123456789012:role/platform-admin"),
]
EksAddonVersion = Annotated[
    str, pattern(r"v\d+\.\d+\.\d+-eksbuild\.\d+", "an EKS add-on version, e.g. v1.22.4-eksbuild.3")
]
PostgresVersion = Annotated[str, pattern(r"\d{2}\.\d+", "a PostgreSQL major.minor, e.g. 18.4")]
PgIdentifier = Annotated[
    str, pattern(r"[a-z][a-z0-9_]{0,62}", "a lower-case PostgreSQL identifier, e.g. platform")
]
LabelKey = Annotated[
    str,
    pattern(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?",
             "a Kubernetes label key, e.g. workload or example.com/tier"),
]
LabelValue = Annotated[
    str,
    pattern(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?",
             "a Kubernetes label value: up to 63 letters, digits, '-', '_' or '.'"),
]
BackupWindow = Annotated[str, pattern(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d",
                                       "hh:mm-hh:mm in UTC, e.g. 03:00-04:00")]
MaintenanceWindow = Annotated[
    str,
    pattern(r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d-"
             r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d",
             "ddd:hh:mm-ddd:hh:mm in UTC, e.g. sun:04:30-sun:05:30"),
]
LogRetention = Annotated[int, AfterValidator(lambda v: _retention(v))]
PromDuration = Annotated[str, pattern(r"\d+[smhdwy]", "a Prometheus duration, e.g. 15d")]
Quantity = Annotated[str, pattern(r"\d+(\.\d+)?(m|Ki|Mi|Gi|Ti)?",
                                   "a Kubernetes quantity, e.g. 500m or 2Gi")]
MetricSelector = Annotated[
    str,
    pattern(r"[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^{}]*\})?",
             "a counter metric with an optional label selector, e.g. "
             "http_requests_total{service=\"checkout\",code=~\"5..\"}"),
]
HttpsUrl = Annotated[str, pattern(r"https://[^\s]+", "an https:// URL")]
RegistryPrefix = Annotated[
    str,
    pattern(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?/([a-z0-9._-]+/)*",
             "a registry prefix ending in '/', e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/"),
]
Capability = Annotated[str, pattern(r"[A-Z][A-Z_]{1,30}", "a Linux capability, e.g. NET_BIND_SERVICE")]
GroupName = Annotated[
    str, pattern(r"[a-z0-9][a-z0-9:._-]{0,62}", "a Kubernetes group name, e.g. checkout-admins")
]
Email = Annotated[str, pattern(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", "an email address")]
SlackChannel = Annotated[str, pattern(r"#[a-z0-9_-]{1,80}", "a Slack channel, e.g. #platform-alerts")]


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


class ArgsModel(BaseModel):
    """Strict base: camelCase keys in the stack file, unknown keys rejected."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=False,
        frozen=True,
        validate_default=True,
    )


class PodResources(ArgsModel):
    """Requests and limits of a workload."""

    cpu_request: Quantity = Field(description="CPU request, e.g. 200m.")
    memory_request: Quantity = Field(description="Memory request, e.g. 1Gi.")
    memory_limit: Quantity = Field(description="Memory limit, e.g. 2Gi.")

    @model_validator(mode="after")
    def _request_within_limit(self) -> PodResources:
        from platform_facts.capacity import memory_mib

        if memory_mib(self.memory_request) > memory_mib(self.memory_limit):
            raise Invalid("memoryRequest", self.memory_request,
                       f"is above memoryLimit ({self.memory_limit}); the API server refuses such "
                       "a pod; allowed: a request at most the limit")
        return self


GitHubHandle = Annotated[str, pattern(r"@[A-Za-z0-9-]{1,39}", "a GitHub handle, e.g. @alice")]


# Instance families whose names end in a `g` generation suffix are AWS Graviton (arm64).
def instance_architecture(instance_type: str) -> str:
    family = instance_type.split(".", 1)[0]
    match = re.fullmatch(r"[a-z]+\d+([a-z-]*)", family)
    return "arm64" if (match and "g" in match.group(1)) or family == "a1" else "x86_64"
