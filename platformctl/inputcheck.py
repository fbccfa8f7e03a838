"""Offline stand-in for the provider's Check step: are a resource's inputs what its SDK declares?

Mocks accept any input; the real provider rejects an unknown property, a wrong type or a missing
required property. This check reads the declarations off each resource's generated `*Args`
class (`pulumi._types.input_type_types`) and walks the recorded inputs against them,
recursively through nested input types and lists of them. Free-form maps (`tags`, labels, Helm
values: any `Mapping[str, ...]`) are taken as they are. Problems name the resource and the
property path, e.g. `aws:eks/cluster:Cluster 'dev' vpcConfig.subnetIds[0]`.
"""

from __future__ import annotations

import enum
import typing
from collections import abc
from collections.abc import Iterable
from typing import Any

import pulumi
from pulumi import _types

from platform_facts import sdk_types
from platformctl.recording import RecordedResource, Secret

_SEQUENCE_ORIGINS = (list, abc.Sequence, typing.Sequence)  # noqa: UP006 - what the SDKs use
_MAPPING_ORIGINS = (dict, abc.Mapping, typing.Mapping)  # noqa: UP006


def check(resources: Iterable[RecordedResource]) -> list[str]:
    problems: list[str] = []
    for resource in resources:
        if not resource.custom:
            continue  # our own components: no provider checks them
        cls = sdk_types.resource_class(resource.type)
        args = sdk_types.args_class(cls) if cls is not None else None
        where = f"{resource.type} '{resource.name}'"
        if args is None:
            if resource.type.startswith("kubernetes:") and "inputs" not in resource.inputs:
                # A custom resource (CustomResource): no SDK class, its CRD is the schema; the
                # tests validate these against the upstream CRDs.
                continue
            problems.append(f"{where}: no Python SDK class declares this type")
            continue
        # Provider resources get every input as a string on the wire (objects as JSON).
        lenient = resource.type.startswith("pulumi:providers:")
        problems.extend(f"{where} {p}" for p in _check_object(args, resource.inputs, "", lenient))
    return problems


def _check_object(input_cls: type, value: Any, path: str, lenient: bool) -> list[str]:
    declared = sdk_types.input_types(input_cls)
    problems: list[str] = []
    for key, item in value.items():
        here = f"{path}.{key}" if path else key
        if key not in declared:
            problems.append(f"{here}: unknown property (not declared by {input_cls.__name__})")
            continue
        problems.extend(_check_value(declared[key], item, here, lenient))
    for key in sorted(sdk_types.required_inputs(input_cls) - set(value)):
        here = f"{path}.{key}" if path else key
        problems.append(f"{here}: missing required property (required by {input_cls.__name__})")
    return problems


def _name(declared: Any) -> str:
    return getattr(declared, "__name__", None) or str(declared).replace("typing.", "")


def _check_value(declared: Any, value: Any, path: str, lenient: bool) -> list[str]:
    if isinstance(value, Secret):
        value = value.value
    if value is None:
        return []
    if lenient and isinstance(value, str):
        return []  # provider inputs travel as strings (JSON for objects) on the wire
    declared = _types.unwrap_type(declared)
    if declared is Any:
        return []
    origin = typing.get_origin(declared)

    if origin is typing.Union or _types._is_union_type(declared):
        members = [m for m in typing.get_args(declared) if m is not type(None)]
        # Input[T] unions also list Awaitable/Output; those never reach the wire.
        members = [m for m in members
                   if typing.get_origin(m) not in (abc.Awaitable, pulumi.Output)]
        attempts = [_check_value(m, value, path, lenient) for m in members]
        if any(not a for a in attempts) or not attempts:
            return []
        return min(attempts, key=len)
    if origin is typing.Literal:
        allowed = typing.get_args(declared)
        return [] if value in allowed else [f"{path}: {value!r} is not one of {allowed}"]
    if origin in _MAPPING_ORIGINS:
        if isinstance(value, dict):
            return []  # free-form map (tags, labels, values): taken as it is
        return [f"{path}: expected a map, got {type(value).__name__} {value!r}"]
    if origin in _SEQUENCE_ORIGINS:
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__} {value!r}"]
        (item_type,) = typing.get_args(declared) or (Any,)
        problems: list[str] = []
        for index, item in enumerate(value):
            problems.extend(_check_value(item_type, item, f"{path}[{index}]", lenient))
        return problems
    if isinstance(declared, type):
        if _types.is_input_type(declared):
            if isinstance(value, dict):
                return _check_object(declared, value, path, lenient)
            return [f"{path}: expected an object ({declared.__name__}), "
                    f"got {type(value).__name__} {value!r}"]
        if issubclass(declared, enum.Enum):
            allowed = [m.value for m in declared]
            return [] if value in allowed else [f"{path}: {value!r} is not one of {allowed}"]
        if declared is bool:
            return [] if isinstance(value, bool) else [_wrong(path, "bool", value)]
        if declared is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
            return [] if ok else [_wrong(path, "int", value)]
        if declared is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return [] if ok else [_wrong(path, "number", value)]
        if declared is str:
            return [] if isinstance(value, str) else [_wrong(path, "string", value)]
        if issubclass(declared, (pulumi.Resource, pulumi.Asset, pulumi.Archive)):
            return []
    return []  # a declaration this check does not model: accept rather than guess


def _wrong(path: str, expected: str, value: Any) -> str:
    return f"{path}: expected {expected}, got {type(value).__name__} {value!r}"
