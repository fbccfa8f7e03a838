"""Budget: the stack's estimated monthly cost (the one cost model) against its budget."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from platform_facts.costmodel import CostInput, CostReport, estimate, money, reads_inputs
from platform_guard.policies._base import (
    ADVISORY,
    HIGH,
    MANDATORY,
    MEDIUM,
    stack_policy,
)

BUDGET_CONFIG = {
    "budgetMonthlyUsd": {"type": "number", "default": 0, "minimum": 0,
                         "description": "The stack's monthly budget in USD (0: no budget set)."},
    "region": {"type": "string", "default": "us-east-1",
               "description": "The stack's AWS region, whose prices apply."},
}


def _component(resource: PolicyResource) -> str | None:
    parent = resource.parent
    while parent is not None:
        if parent.resource_type.startswith("platform:"):
            return parent.resource_type.rsplit(":", 1)[-1]
        parent = parent.parent
    return None


def _dependency_urns(resource: PolicyResource) -> dict[str, list[str]]:
    # Only where the model reads them: the linked graph's URNs for every property of every
    # resource (a team's namespaces, bindings, policies: free) were most of this policy's time
    # at 50 teams (docs/review.md, "At scale").
    if not reads_inputs(resource.resource_type):
        return {}
    return {k: [d.urn for d in v] for k, v in (resource.property_dependencies or {}).items()}


def cost_inputs(resources: list[PolicyResource]) -> list[CostInput]:
    return [
        CostInput(
            type=r.resource_type,
            name=r.name,
            props=r.props,
            urn=r.urn,
            component=_component(r),
            property_dependencies=_dependency_urns(r),
            custom=not (r.resource_type.startswith("platform:")
                        or r.resource_type == "pulumi:pulumi:Stack"),
        )
        for r in resources
    ]


def stack_estimate(args: StackValidationArgs, config: dict[str, Any]) -> CostReport:
    return estimate(cost_inputs(list(args.resources)), config["region"])


def _summary(report: CostReport, budget: Decimal) -> str:
    top = sorted(report.priced, key=lambda line: line.monthly_usd, reverse=True)[:3]
    biggest = "; ".join(f"{line.item} ${money(line.monthly_usd)}" for line in top)
    unpriced = f"; {len(report.unpriced)} unpriced line(s) not included" if report.unpriced else ""
    share = (report.total / budget * 100).quantize(Decimal("1"))
    return (f"estimated ${report.total}/month is {share}% of the ${money(budget)} budget "
            f"(largest: {biggest}{unpriced})")


def _over(fraction: Decimal):
    def check(args: StackValidationArgs, config: dict[str, Any]):
        budget = Decimal(str(config.get("budgetMonthlyUsd") or 0))
        if budget <= 0:
            args.not_applicable("no budget configured (budgetMonthlyUsd)")
        report = stack_estimate(args, config)
        threshold = budget * fraction
        if report.total > threshold:
            return [(f"stack: {_summary(report, budget)}. Fix: shrink the largest lines (node "
                     "count or type, NAT strategy, database class) or raise "
                     "platform:budgetMonthlyUsd", None)]
        return []
    return check


def _warning_check(args: StackValidationArgs, config: dict[str, Any]):
    percent = Decimal(str(config.get("thresholdPercent", 80)))
    return _over(percent / 100)(args, config)


budget_warning = stack_policy(
    "budget-warning",
    "The stack's estimated monthly cost stays under 80% of its budget.",
    enforcement=ADVISORY, severity=MEDIUM,
    remediation="Review the cost table (platformctl review STACK) and trim the largest lines "
                "before the budget is reached.",
    check=_warning_check,
    config={**BUDGET_CONFIG,
            "thresholdPercent": {"type": "number", "default": 80, "minimum": 1, "maximum": 100,
                                 "description": "Warn above this share of the budget."}},
)

budget_limit = stack_policy(
    "budget-limit",
    "The stack's estimated monthly cost stays within its budget.",
    enforcement=MANDATORY, severity=HIGH,
    remediation="Reduce the stack's cost (fewer or smaller nodes, a single NAT gateway outside "
                "prod, a smaller database class) or raise platform:budgetMonthlyUsd, keeping dev "
                "and prod together within the organisation's cap (`platformctl budget`).",
    check=_over(Decimal(1)),
    config=BUDGET_CONFIG,
)

POLICIES = [budget_warning, budget_limit]
