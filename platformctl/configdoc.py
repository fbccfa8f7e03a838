"""The configuration reference (`docs/config-reference.md`), generated from the config model and its
presets so it cannot drift: `platformctl generate --write` regenerates it and a test
fails when the committed file differs."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from stacks import config as config_model

DOC_PATH = Path("docs") / "config-reference.md"

_HEADER = """\
# Configuration reference

<!-- Generated from stacks/config.py by `platformctl generate --write`. Do not edit:
     tests/test_docs.py fails when this file and the model disagree. -->

Every key a stack file (`Pulumi.<stack>.yaml`) may set. `<name>` stands for a name you choose
(a node group's); its preset columns show the preset's own entry. Keys are in the `platform:` namespace
(`pulumi config set platform:budgetMonthlyUsd 150`); nested keys are set as objects in the stack
file or with `--path` (`pulumi config set --path platform:network.azCount 3`). Unknown keys are
errors. `platform:preset` picks the defaults below; a stack file sets only what differs.

The region is the AWS provider's own key, `aws:region` (default `{region}`).

| key | type | dev preset | prod preset | description |
|---|---|---|---|---|
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        name = " or ".join(_type_name(a) for a in members)
        return f"{name} (optional)" if len(members) < len(args) else name
    if annotation is SecretStr:
        return "secret string (`pulumi config set --secret`)"
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (tuple, list):
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        inner, _ = config_model.nested_model(annotation)
        return "map of name to object" if inner else f"map of {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        annotation, str(annotation))


MAP_KEY = "<name>"


def _preset_value(preset: str, path: tuple[str, ...]) -> Any:
    node: Any = config_model.PRESETS[preset]
    for part in path:
        if part == MAP_KEY and isinstance(node, dict) and node:
            part = next(iter(node))  # a map's entries: show the preset's first (e.g. `system`)
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if value == "":
        return '`""`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (list, tuple)):
        return "`[" + ", ".join(map(str, value)) + "]`"
    return f"`{value}`"


def _default(field: FieldInfo, preset: str, path: tuple[str, ...]) -> str:
    from_preset = _preset_value(preset, path)
    inner, is_map = config_model.nested_model(field.annotation)
    if is_map and isinstance(from_preset, dict):
        return "`" + ", ".join(from_preset) + "`"
    if from_preset is not None and not isinstance(from_preset, dict):
        return _cell(from_preset)
    if path == ("environment",):
        return f"`{preset}`"
    if inner is not None:
        return ""
    if field.is_required():
        return "" if MAP_KEY in path or any(p.endswith("[]") for p in path) else "**required**"
    default = field.get_default(call_default_factory=True)
    return "`{}`" if default == {} else _cell(default)


def _fields(model: type[BaseModel],
            path: tuple[str, ...] = ()) -> Iterator[tuple[FieldInfo, tuple[str, ...]]]:
    """Every field of a model and of the models it holds, depth first, with its key path
    (a map's entries under MAP_KEY, a list's items as `key[]`)."""
    for field in model.model_fields.values():
        alias = field.alias or ""
        if model is config_model.PlatformConfig and alias == "region":
            continue  # aws:region, described in the header
        here = (*path, alias)
        yield field, here
        inner, is_map = config_model.nested_model(field.annotation)
        if inner is not None:
            yield from _fields(inner, (*here, MAP_KEY) if is_map else here)
        elif typing.get_origin(field.annotation) is tuple:
            item = typing.get_args(field.annotation)[0]
            if isinstance(item, type) and issubclass(item, BaseModel):
                yield from _fields(item, (*here[:-1], f"{here[-1]}[]"))


def _description(field: FieldInfo) -> str:
    return (field.description or "").replace("|", "\\|").replace("\n", " ")


def render() -> str:
    header = _HEADER.replace("{region}", config_model.DEFAULT_REGION)
    rows = [f"| `platform:{'.'.join(here)}` | {_type_name(field.annotation)} | "
            f"{_default(field, 'dev', here)} | {_default(field, 'prod', here)} | "
            f"{_description(field)} |"
            for field, here in _fields(config_model.PlatformConfig)]
    return header + "\n".join(rows) + "\n"


SERVICE_DOC_PATH = Path("docs/service-spec.md")

_SERVICE_HEADER = """# Service spec reference

<!-- Generated from stacks/service.py by `platformctl generate --write`. Do not edit. -->

The golden path's input: one YAML file per service (the example is
[services/checkout.yaml](../services/checkout.yaml)). `platformctl new-service <spec>` turns it
into `gitops/teams/<team>/<name>/` and one Argo CD Application per environment
(`gitops/environments/<env>/<team>-<name>.yaml`). Unknown keys are errors.

| key | type | default | description |
|---|---|---|---|
"""


def _service_default(field: FieldInfo, path: tuple[str, ...]) -> str:
    if field.is_required():
        return "" if any(p.endswith("[]") for p in path) else "**required**"
    value = field.get_default(call_default_factory=True)
    return "" if isinstance(value, (BaseModel, tuple)) and value else _cell(value)


def render_service_spec() -> str:
    from stacks.service import ServiceSpec

    rows = [f"| `{'.'.join(here)}` | {_type_name(field.annotation)} | "
            f"{_service_default(field, here)} | {_description(field)} |"
            for field, here in _fields(ServiceSpec)]
    return _SERVICE_HEADER + "\n".join(rows) + "\n"
