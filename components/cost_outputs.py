"""The stack's monthly cost estimate as stack outputs, computed in the program by the one cost
model (platform_facts.costmodel), so `pulumi stack output costReport` answers "what does this
cost" after every `up`.

An SDK-side stack transformation (it runs for the real engine and under mocks alike: docs/harness.md)
sees every resource as it registers; its inputs are turned into the engine's shape (the SDK's own
Python-to-Pulumi names, nested input types as their Pulumi dicts), resolved, and priced once the
program has built everything. During a preview most values are unknown, so the outputs are too;
after `up` they are the estimate of what was deployed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi import _types

from components.tagging import owner_of
from platform_facts import sdk_types
from platform_facts.costmodel import CostInput, priced_both_ways, reads_inputs


def _engine_shape(value: Any) -> Any:
    if _types.is_input_type(type(value)):
        return {k: _engine_shape(v) for k, v in _types.input_type_to_dict(value).items()}
    if isinstance(value, Mapping):
        return {k: _engine_shape(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_engine_shape(v) for v in value]
    return value


def _wire_names(resource: pulumi.Resource, props: Mapping[str, Any]) -> dict[str, Any]:
    args = sdk_types.args_class(type(resource))
    names = _types.input_type_py_to_pulumi_names(args) if args is not None else {}
    return {names.get(k, k): _engine_shape(v) for k, v in props.items() if v is not None}


class CostCollector:
    """Collects every custom resource of the stack for the cost estimate."""

    def __init__(self) -> None:
        self._seen: list[tuple[pulumi.CustomResource, str, str, str | None, dict[str, Any]]] = []

    def transformation(self, args: pulumi.ResourceTransformationArgs):
        if isinstance(args.resource, pulumi.CustomResource):
            owner = owner_of(args.opts.parent)
            component = type(owner).type_token.rsplit(":", 1)[-1] if owner else None
            # Inputs only where the cost model reads them: resolving every input of every
            # resource (a team's namespaces, policies, bindings: free) doubled the program's
            # own cost under the SDK (docs/review.md, "At scale").
            props = (_wire_names(args.resource, args.props) if reads_inputs(args.type_)
                     else None)
            self._seen.append((args.resource, args.type_, args.name, component, props))
        return None

    def report(self, region: str) -> pulumi.Output[dict[str, Any]]:
        """The cost report of everything registered so far, as a plain (not secret) output: it
        holds prices and resource names, never input values."""
        entries = list(self._seen)
        resolved = pulumi.Output.all(*[
            pulumi.Output.all(pulumi.Output.from_input(props), resource.id)
            if props is not None else ({}, None)
            for resource, _, _, _, props in entries
        ])

        def price(values: list[Any]) -> dict[str, Any]:
            inputs = [
                CostInput(type=type_token, name=name, props=props, component=component,
                          id=resource_id)
                for (_, type_token, name, component, _), (props, resource_id)
                in zip(entries, values, strict=True)
            ]
            return priced_both_ways(inputs, region)

        return pulumi.Output.unsecret(resolved.apply(price))


def install() -> CostCollector:
    """Collect every resource registered from now on in this stack."""
    collector = CostCollector()
    pulumi.runtime.register_stack_transformation(collector.transformation)
    return collector
