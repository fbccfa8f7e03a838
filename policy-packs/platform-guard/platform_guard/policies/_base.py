"""What every platform-guard policy shares: config with defaults, the violation message shape
(resource, problem, fix) and the resource views the policies read."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

ADVISORY, MANDATORY = EnforcementLevel.ADVISORY, EnforcementLevel.MANDATORY
LOW, MEDIUM, HIGH, CRITICAL = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL

Report = Callable[..., None]


def schema(properties: Mapping[str, Mapping[str, Any]]) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties={k: dict(v) for k, v in properties.items()})


def config_of(args: ResourceValidationArgs | StackValidationArgs,
              policy_schema: PolicyConfigSchema | None) -> dict[str, Any]:
    """The policy's config: the engine fills schema defaults in; so do we, in case it did not."""
    values: dict[str, Any] = {}
    if policy_schema is not None:
        for key, spec in policy_schema.properties.items():
            if "default" in spec:
                values[key] = spec["default"]
    values.update(args.get_config() or {})
    return values


def violation(kind: str, name: str, problem: str, fix: str) -> str:
    """`<type> '<name>': <problem>. Fix: <fix>` -- every message names the resource and the fix."""
    return f"{kind} '{name}': {problem}. Fix: {fix}"


def get(props: Mapping[str, Any] | None, *path: str | int, default: Any = None) -> Any:
    """A nested value, `default` when absent. Props arrive as pulumi_policy proxies (Mapping and
    Sequence, not dict and list), which raise on values unknown during preview."""
    node: Any = props
    for key in path:
        if isinstance(key, int):
            if not isinstance(node, Sequence) or isinstance(node, str) or key >= len(node):
                return default
            node = node[key]
        else:
            if not isinstance(node, Mapping) or key not in node:
                return default
            node = node[key]
    return default if node is None else node


ResourceCheck = Callable[[ResourceValidationArgs, dict[str, Any]], list[str]]
StackCheck = Callable[[StackValidationArgs, dict[str, Any]], list[tuple[str, str | None]]]


def resource_policy(name: str, description: str, *, enforcement: EnforcementLevel,
                    severity: Severity, remediation: str, check: ResourceCheck,
                    config: Mapping[str, Mapping[str, Any]] | None = None,
                    types: tuple[str, ...] | None = None) -> ResourceValidationPolicy:
    """A resource policy whose `check(args, config)` returns problem messages. With `types`, it
    looks only at those resource types."""
    policy_schema = schema(config) if config else None

    def validate(args: ResourceValidationArgs, report_violation: Report) -> None:
        if types is not None and args.resource_type not in types:
            return
        for message in check(args, config_of(args, policy_schema)):
            report_violation(message, args.urn)

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=enforcement,
        config_schema=policy_schema, severity=severity, remediation_steps=remediation,
        tags=["platform-guard"],
    )


def stack_policy(name: str, description: str, *, enforcement: EnforcementLevel,
                 severity: Severity, remediation: str, check: StackCheck,
                 config: Mapping[str, Mapping[str, Any]] | None = None) -> StackValidationPolicy:
    """A stack policy whose `check(args, config)` returns (message, urn or None) pairs."""
    policy_schema = schema(config) if config else None

    def validate(args: StackValidationArgs, report_violation: Report) -> None:
        for message, urn in check(args, config_of(args, policy_schema)):
            report_violation(message, urn)

    return StackValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=enforcement,
        config_schema=policy_schema, severity=severity, remediation_steps=remediation,
        tags=["platform-guard"],
    )


PRODUCTION = {"production": {"type": "boolean", "default": False,
                             "description": "The stack is a production environment."}}
