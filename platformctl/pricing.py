"""The cost model over an offline evaluation: recorded resources -> engine-shaped cost inputs."""

from __future__ import annotations

from platform_facts.costmodel import CostInput, CostReport, estimate
from platformctl.recording import Evaluation, unwrap_secrets


def cost_inputs(evaluation: Evaluation) -> list[CostInput]:
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
