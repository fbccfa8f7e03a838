"""Budget: the stack's monthly cost (the one cost model) against its budgets: expected against
`budgetMonthlyUsd`, and at the ceiling (every node group at maxSize) against
`budgetCeilingMonthlyUsd`, the stack's share of the organisation's cap (the stacks' shares add up
to at most the cap, which the config model checks across the project's stack files)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from platform_facts.costmodel import (
    CostInput,
    CostReport,
    estimate,
    money,
    node_pools,
    reads_inputs,
)
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


def stack_estimate(args: StackValidationArgs, config: dict[str, Any],
                   ceiling: bool = False) -> CostReport:
    return estimate(cost_inputs(list(args.resources)), config["region"], ceiling)


def _summary(report: CostReport, budget: Decimal, line: str) -> str:
    top = sorted(report.priced, key=lambda line: line.monthly_usd, reverse=True)[:3]
    biggest = "; ".join(f"{line.item} ${money(line.monthly_usd)}" for line in top)
    unpriced = (f"; {len(report.unpriced)} unpriced "
                f"{'line' if len(report.unpriced) == 1 else 'lines'} not included"
                if report.unpriced else "")
    share = (report.total / budget * 100).quantize(Decimal("1"))
    return (f"estimated ${report.total}/month is {share}% of the ${money(budget)} budget, "
            f"{line} (largest: {biggest}{unpriced})")


def _over(fraction: Decimal):
    def check(args: StackValidationArgs, config: dict[str, Any]):
        budget = Decimal(str(config.get("budgetMonthlyUsd") or 0))
        if budget <= 0:
            args.not_applicable("no budget configured (budgetMonthlyUsd)")
        report = stack_estimate(args, config)
        threshold = budget * fraction
        if report.total > threshold:
            line = (f"${money(report.total - budget)} over it" if fraction >= 1 else
                    f"above the {(fraction * 100).normalize():f}% warning line "
                    f"(${money(threshold)}), "
                    + (f"${money(budget - report.total)} left" if report.total <= budget
                       else "and over the budget (budget-limit)"))
            return [(f"stack: {_summary(report, budget, line)}. Fix: shrink the largest lines "
                     "(node count or type, NAT strategy, database class) or raise "
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



CEILING_CONFIG = {
    "budgetCeilingMonthlyUsd": {
        "type": "number", "default": 0, "minimum": 0,
        "description": "The most the stack may cost at its ceiling, in USD a month: its share "
                       "of the organisation's cap (0: not set)."},
    "region": BUDGET_CONFIG["region"],
}


def ceiling_findings(inputs: list[CostInput], region: str, allowance: Decimal) -> list[str]:
    """Why the stack's ceiling breaks its allowance: the figure, the limit, and per node group
    that can grow the largest maxSize that fits (others unchanged); empty when it fits."""
    ceiling = estimate(inputs, region, ceiling=True)
    over = ceiling.total - allowance
    if over <= 0:
        return []
    head = (f"at its ceiling (every node group at maxSize, storage at its autoscaling "
            f"maximum, usage scaled with the nodes) the stack costs ${ceiling.total}/month, "
            f"${money(over)} over its share of the organisation's cap, "
            f"budgetCeilingMonthlyUsd ${money(allowance)}")
    pools = [p for p in node_pools(inputs, region) if p.max_size > p.desired_size]
    fixes = []
    for pool in pools:
        largest = pool.largest_max(over)
        saved = (pool.max_size - largest) * pool.per_node_usd
        key = f"platform:cluster.nodeGroups.{pool.pool}.maxSize"
        if saved >= over:
            fixes.append(f"{key} {pool.max_size} -> at most {largest} (one node adds "
                         f"${money(pool.per_node_usd)} at the ceiling)")
        else:
            fixes.append(f"{key} {pool.max_size}: even at its desired size "
                         f"{pool.desired_size} the ceiling stays over")
    if not any("at most" in fix for fix in fixes):
        fixes.append("lower the expected cost (smaller or fewer nodes, a smaller database "
                     "class), or raise platform:budgetCeilingMonthlyUsd within the cap")
    return [f"{head}. Fix: {'; '.join(fixes)}"]


def _ceiling_check(args: StackValidationArgs, config: dict[str, Any]):
    allowance = Decimal(str(config.get("budgetCeilingMonthlyUsd") or 0))
    if allowance <= 0:
        args.not_applicable("no ceiling budget configured (budgetCeilingMonthlyUsd)")
    return [(f"stack: {finding}", None) for finding in ceiling_findings(
        cost_inputs(list(args.resources)), config["region"], allowance)]


budget_ceiling = stack_policy(
    "budget-ceiling",
    "The stack's cost at its ceiling (every node group and Auto Scaling group at maxSize, "
    "database storage at its autoscaling maximum, usage that grows with nodes scaled with them) "
    "stays within its share of the organisation's cap, so the cap holds however far the "
    "autoscalers go.",
    enforcement=MANDATORY, severity=HIGH,
    remediation="Lower the node groups' maxSize to the largest allowed (the message names it), "
                "or lower the expected cost; platform:budgetCeilingMonthlyUsd may rise only as "
                "far as the organisation's cap leaves once the other stacks' shares are counted "
                "(`platformctl budget`).",
    check=_ceiling_check,
    config=CEILING_CONFIG,
)

POLICIES = [budget_warning, budget_limit, budget_ceiling]
