"""The AWS API's own rules on what the plan sends (platform_facts/awsapi.py: botocore's service
models, EC2's documented character rules): a value the provider passes and AWS refuses at create
is refused here, before `pulumi up` fails half-way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import ResourceValidationArgs

from platform_facts import awsapi
from platform_guard.policies._base import HIGH, MANDATORY, resource_policy, violation


def _plain(value: Any) -> Any:
    """pulumi_policy's proxies as plain values (reading one unknown in a preview raises, and
    the engine reports the policy as unable to run on that resource)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def _api_rules(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    found = []
    for path, value, member, problem in awsapi.problems(args.resource_type, _plain(args.props)):
        shown = value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
        found.append(violation(
            args.resource_type, args.name,
            f"{path} {shown!r} is refused by the AWS API ({member}): {problem}",
            f"change {path} to a value {member} accepts"))
    return found


aws_api_rules = resource_policy(
    "aws-api-rules",
    "Every input the AWS API constrains (length, pattern, allowed values, EC2's documented "
    "characters) holds a value it accepts.",
    enforcement=MANDATORY, severity=HIGH, check=_api_rules, types=tuple(awsapi.OPERATIONS),
    remediation="Change the value to one the API member accepts (the message names the member "
                "and its rule, from botocore's service model).")

POLICIES = [aws_api_rules]
