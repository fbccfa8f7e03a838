"""What the Pulumi Python SDKs declare about a resource type, read off the SDKs themselves.

The tagging mechanism asks "does this type take `tags`?" and the offline input check asks
"which inputs does this type declare, of which types?". Both answers come from the generated
`*Args` input classes, looked up per type when it is first needed and cached; nothing here is a
hand-written list, and nothing scans a whole SDK.
"""

from __future__ import annotations

import functools
import importlib
import typing
from collections import abc
from typing import Any

import pulumi
from pulumi import _types
from pulumi.runtime import rpc


@functools.cache
def resource_class(type_token: str) -> type[pulumi.Resource] | None:
    """The SDK class registered for a type token such as `aws:ec2/vpc:Vpc`, or None.

    Generated SDKs register their modules with the Pulumi runtime on import (the same table the
    engine uses to rehydrate resource references)."""
    package, _, rest = type_token.partition(":")
    module_name, _, class_token = rest.partition(":")
    try:
        if package == "pulumi" and module_name == "providers":
            sdk = importlib.import_module(f"pulumi_{class_token.replace('-', '_')}")
            return getattr(sdk, "Provider", None)
        importlib.import_module(f"pulumi_{package.replace('-', '_')}")
    except ImportError:
        return None  # not a package with a Python SDK (e.g. this program's own components)
    module = rpc.get_resource_module(package, module_name, "")
    info = getattr(module, "mod_info", None)
    if not info or type_token not in info.get("classes", {}):
        return None
    return getattr(importlib.import_module(info["fqn"]), info["classes"][type_token])


@functools.cache
def args_class(resource_cls: type) -> type | None:
    """The `@pulumi.input_type` class a resource class takes as its args (`VpcArgs`; Kubernetes
    names some `...InitArgs`)."""
    module = importlib.import_module(resource_cls.__module__)
    # InitArgs first: Kubernetes also has a nested `NamespaceArgs` (the object itself).
    for candidate in (f"{resource_cls.__name__}InitArgs", f"{resource_cls.__name__}Args"):
        cls = getattr(module, candidate, None)
        if isinstance(cls, type) and _types.is_input_type(cls):
            return cls
    return None


@functools.cache
def input_types(input_cls: type) -> dict[str, typing.Any]:
    """Pulumi (wire, camelCase) property name -> declared type, for an input type class."""
    return dict(_types.input_type_types(input_cls))


@functools.cache
def takes_name(type_token: str) -> bool:
    """Whether a type's SDK takes a `name` input, which Pulumi auto-names (`<name>-<7 hex>`)
    when the program leaves it unset."""
    cls = resource_class(type_token)
    args = args_class(cls) if cls else None
    return args is not None and "name" in input_types(args)


@functools.cache
def required_inputs(input_cls: type) -> frozenset[str]:
    """Wire names of the properties an input type's constructor requires."""
    import inspect

    py_to_wire = _types.input_type_py_to_pulumi_names(input_cls)
    signature = inspect.signature(input_cls.__init__)
    return frozenset(
        py_to_wire[name]
        for name, param in signature.parameters.items()
        if name in py_to_wire and param.default is inspect.Parameter.empty
    )


def is_mapping_type(declared: typing.Any) -> bool:
    origin = typing.get_origin(_types.unwrap_type(declared))
    return origin in (dict, abc.Mapping, typing.Mapping)  # noqa: UP006 - what the SDKs use


@functools.cache
def tags_shape(resource_cls: type) -> str | None:
    """How a resource class takes tags: "map" (a `tags` input of string to string), "other"
    (a `tags` input of another shape, e.g. a list), or None (no `tags` input)."""
    args = args_class(resource_cls)
    if args is None:
        return None
    declared = input_types(args).get("tags")
    if declared is None:
        return None
    return "map" if is_mapping_type(declared) else "other"


# Types whose `tags` is a list of {key, value, propagateAtLaunch} (Auto Scaling groups), which
# the platform tags too (components/tagging.py).
LISTED_TAG_TYPES = ("aws:autoscaling/group:Group",)


def tag_map(tags: Any) -> dict[str, Any]:
    """A resource's tags as a map, whether given as one or, for LISTED_TAG_TYPES, as a list of
    {key, value} entries."""
    # Duck-typed: CrossGuard hands policies proxies of maps and lists, not dicts and lists.
    if hasattr(tags, "keys"):
        return {key: tags[key] for key in tags.keys()}
    if tags is None or isinstance(tags, (str, bytes)) or not hasattr(tags, "__iter__"):
        return {}
    found: dict[str, Any] = {}
    for entry in tags:
        if hasattr(entry, "keys") and "key" in entry.keys():
            found[entry["key"]] = entry["value"] if "value" in entry.keys() else None
    return found
