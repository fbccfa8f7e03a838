"""The cost model over an offline evaluation: recorded resources -> engine-shaped cost inputs."""

from __future__ import annotations

from platform_facts.costmodel import CostInput, CostReport, estimate
from platformctl.recording import Evaluation, unwrap_secrets


def cost_inputs(evaluation: Evaluation) -> list[CostInput]:
    """The evaluation's resources as the cost model reads them; made once per evaluation (the
    expected figure, the ceiling and each node group's next node all price the same inputs)."""
    key = (id(evaluation.resources), len(evaluation.resources))
    cached = evaluation.__dict__.get("_cost_inputs")
    if cached is not None and cached[0] == key:
        return list(cached[1])
    inputs = _cost_inputs(evaluation)
    evaluation.__dict__["_cost_inputs"] = (key, tuple(inputs))
    return inputs


def _cost_inputs(evaluation: Evaluation) -> list[CostInput]:
    inputs = []
    for resource in evaluation.resources:
        component = evaluation.component_of(resource)
        inputs.append(CostInput(
            type=resource.type,
            name=resource.name,
            props=unwrap_secrets(resource.inputs),
            urn=resource.urn,
            component=component.type.rsplit(":", 1)[-1] if component else None,
            property_dependencies=resource.property_dependencies,
            custom=resource.custom,
        ))
    return inputs


def cost_report(evaluation: Evaluation, ceiling: bool = False) -> CostReport:
    """The evaluation priced as expected, or (`ceiling`) at the most its plan can cost."""
    assert evaluation.config is not None
    return estimate(cost_inputs(evaluation), evaluation.config.region, ceiling)


def capacity_inputs(evaluation: Evaluation) -> list:
    """The plan's resources that platform_facts.capacity reads (node groups with their launch
    templates and subnets, add-ons, team quotas), in its shape."""
    from platform_facts import capacity

    known = evaluation.by_urn()
    return [capacity.PlannedResource(
        r.type, r.name, unwrap_secrets(r.inputs),
        {key: [unwrap_secrets(known[u].inputs) for u in urns if u in known]
         for key, urns in r.property_dependencies.items()})
        for r in evaluation.resources if r.type in capacity.ASSESSED_TYPES]


def team_showback(evaluation: Evaluation, ceiling: CostReport):
    """Each team's quota priced as its dominant share of the node groups at maxSize
    (platform_facts.showback); `ceiling`: the evaluation priced at its ceiling. Needs no
    rendering: quotas and node groups are in the plan. None without node groups or quotas."""
    from decimal import Decimal

    from platform_facts import capacity
    from platform_facts.showback import showback

    planned = capacity_inputs(evaluation)
    costs: dict[str, Decimal] = {}
    for line in ceiling.priced:
        if line.resource_type == capacity.NODE_GROUP and not line.usage:
            costs[line.resource_name] = costs.get(line.resource_name, Decimal(0)) + line.monthly_usd
    return showback(capacity.node_groups(planned), costs, capacity.team_quotas(planned),
                    capacity.prefix_delegation(r.props for r in planned
                                               if r.type == capacity.ADDON))
