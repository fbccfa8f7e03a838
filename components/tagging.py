"""The one tagging mechanism of the program.

Every AWS resource whose SDK class takes a `tags` map gets the standard tags (docs/harness.md:
`team`, `service`, `environment`, `cost-center`, `owner`, `managed-by`) merged into its own
`tags` input, so a policy sees them in a preview. It is an SDK-side stack transformation
(`register_stack_transformation`): it runs for the real engine and under mocks alike, where the
engine-side `register_resource_transform` is silently skipped (docs/harness.md).

`service` is the owning component's: each :class:`PlatformComponent` names its service, and a
resource takes the service of the nearest component above it. A taggable AWS resource outside
every component is an error, so nothing goes untagged by accident.

Whether a type takes tags is read off its SDK args class the first time the type registers
(:func:`components.sdk_types.tags_shape`, cached).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import ClassVar

import pulumi

from platform_facts import sdk_types


class PlatformComponent(pulumi.ComponentResource):
    """A component of the platform. Subclasses set `service` (the `service` tag of everything
    they create) and `type_token`."""

    service: ClassVar[str]
    type_token: ClassVar[str]

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.type_token, name, None, opts)


class UntaggedResourceError(Exception):
    pass


# The SDK keeps no link from a resource to its parent, so the transformation remembers the
# owning component of every resource it sees; a resource parented to another resource (a route
# to its route table) then belongs to that resource's component.
_OWNERS: weakref.WeakKeyDictionary[pulumi.Resource, PlatformComponent] = (
    weakref.WeakKeyDictionary())


def owner_of(resource: pulumi.Resource | None) -> PlatformComponent | None:
    """The platform component a resource (or a parent) belongs to, as far as seen so far."""
    if isinstance(resource, PlatformComponent):
        return resource
    return _OWNERS.get(resource) if resource is not None else None


def _merge(existing: object, standard: Mapping[str, str]) -> object:
    # The standard keys win: a component's own tags (Name, kubernetes.io/role/elb) are kept, but
    # nothing can override who owns or pays for a resource.
    if existing is None or isinstance(existing, Mapping):
        return {**(existing or {}), **standard}
    return pulumi.Output.from_input(existing).apply(lambda t: {**(t or {}), **standard})


StandardTags = Callable[[str], Mapping[str, str]]
ASG_TYPE = "aws:autoscaling/group:Group"


def _listed_key(tag: object) -> object:
    return tag.get("key") if isinstance(tag, Mapping) else getattr(tag, "key", None)


def _merge_listed(existing: object, standard: Mapping[str, str]) -> object:
    """An Auto Scaling group's `tags` list with the standard tags, propagated at launch; the
    standard keys win, as in _merge."""
    def merged(tags: object) -> list[object]:
        kept = [t for t in (tags or []) if _listed_key(t) not in standard]
        return [*kept, *({"key": k, "value": v, "propagate_at_launch": True}
                         for k, v in standard.items())]
    if existing is None or isinstance(existing, list):
        return merged(existing)
    return pulumi.Output.from_input(existing).apply(merged)


def stack_transformation(standard_tags: StandardTags,
                         type_tags: Mapping[str, Mapping[str, str]] | None = None):
    """A stack transformation that merges `standard_tags(service)` into every AWS resource's
    `tags`, `service` being the owning component's, and `type_tags[type]` into every resource
    of that type (the year a KMS key was created, which the cost model prices it by)."""
    type_tags = type_tags or {}

    def transform(args: pulumi.ResourceTransformationArgs):
        resource = args.resource
        owner = resource if isinstance(resource, PlatformComponent) else owner_of(args.opts.parent)
        if owner is not None:
            _OWNERS[resource] = owner
        service = owner.service if owner is not None else None
        if not isinstance(resource, pulumi.CustomResource) or not args.type_.startswith("aws:"):
            return None
        shape = sdk_types.tags_shape(type(resource))
        if shape is None:
            return None
        if args.type_ == ASG_TYPE and service is not None:
            # Auto Scaling groups take a list of tags, each propagated to the instances or not:
            # the standard tags go to the group and to every instance it launches.
            props = dict(args.props)
            props["tags"] = _merge_listed(props.get("tags"), standard_tags(service))
            return pulumi.ResourceTransformationResult(props=props, opts=args.opts)
        if shape != "map":
            raise UntaggedResourceError(
                f"{args.type_} '{args.name}' takes tags in a shape the tagging mechanism does not "
                "handle; extend components/tagging.py before using it"
            )
        if service is None:
            raise UntaggedResourceError(
                f"{args.type_} '{args.name}' is not inside a platform component, so it has no "
                "`service` tag; create it with parent=<the component that owns it>"
            )
        props = dict(args.props)
        props["tags"] = _merge(props.get("tags"), {**type_tags.get(args.type_, {}),
                                                   **standard_tags(service)})
        return pulumi.ResourceTransformationResult(props=props, opts=args.opts)

    return transform


def install(standard_tags: StandardTags,
            type_tags: Mapping[str, Mapping[str, str]] | None = None) -> None:
    """Tag every AWS resource registered from now on in this stack."""
    pulumi.runtime.register_stack_transformation(stack_transformation(standard_tags, type_tags))
