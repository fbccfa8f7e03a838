"""What one offline evaluation of a stack recorded: the resources the program registered (type,
name, inputs, parent, dependencies, options), its outputs, the engine's warnings and, once the
review pipeline rendered them, the objects inside each Helm release. Plain data, read by the
pipeline's every step (the policy adapter, the rendered checks, the cost model, the review
document); `platformctl.harness` makes it, `platformctl.rendering` adds the rendered releases.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from components import charts
from platformctl.runtime_checks import Application
from stacks import config as config_model


@dataclass(frozen=True)
class Secret:
    """A secret value in a recorded input or output. Prints masked."""

    value: Any

    def __repr__(self) -> str:
        return "[secret]"


def unwrap_secrets(value: Any) -> Any:
    if isinstance(value, Secret):
        return unwrap_secrets(value.value)
    if isinstance(value, dict):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def mask_secrets(value: Any) -> Any:
    """The value with every secret replaced by the string `[secret]` (for display and snapshots)."""
    if isinstance(value, Secret):
        return "[secret]"
    if isinstance(value, dict):
        return {k: mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


def secret_digests(value: Any, path: str = "") -> dict[str, str]:
    """{input path: digest} for every secret in `value`, where mask_secrets shows `[secret]`:
    the first 16 hex digits of the SHA-256 of what the offline evaluation holds there, so two
    revisions' secrets can be compared without showing them. Offline, that is never a real
    secret: config secrets are placeholders (each naming its ciphertext's digest), provider
    outputs are the mocks'."""
    if isinstance(value, Secret):
        text = json.dumps(unwrap_secrets(value.value), sort_keys=True, default=str)
        return {path or "(value)": hashlib.sha256(text.encode()).hexdigest()[:16]}
    found: dict[str, str] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            found.update(secret_digests(v, f"{path}.{k}" if path else str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.update(secret_digests(v, f"{path}[{i}]"))
    return found


@dataclass
class RecordedResource:
    type: str
    name: str
    urn: str
    custom: bool
    inputs: dict[str, Any]
    parent: str | None
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    provider: str | None
    protect: bool
    delete_before_replace: bool
    retain_on_delete: bool
    ignore_changes: list[str]
    additional_secret_outputs: list[str]
    id: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    # The `aliases` option as the engine receives it: a former URN ({"urn": ...}) or a spec
    # ({"name", "type", "stack", "project", "parentUrn", "noParent"}; empty means "the same").
    aliases: list[dict[str, Any]] = field(default_factory=list)
    # The `replaceOnChanges` option: input paths whose change the engine makes a replacement.
    replace_on_changes: list[str] = field(default_factory=list)

    @property
    def tags(self) -> dict[str, Any] | None:
        from platform_facts.sdk_types import LISTED_TAG_TYPES, tag_map

        tags = self.inputs.get("tags")
        if self.type in LISTED_TAG_TYPES and isinstance(tags, list):
            return tag_map(unwrap_secrets(tags))
        return unwrap_secrets(tags) if isinstance(tags, (dict, Secret)) else None


@dataclass(frozen=True)
class OutputValue:
    value: Any
    secret: bool

    def shown(self) -> Any:
        return "[secret]" if self.secret else mask_secrets(self.value)


@dataclass
class Evaluation:
    """What one evaluation of a stack registered and returned."""

    stack: str
    source: str
    config: config_model.PlatformConfig | None
    resources: list[RecordedResource]
    outputs: dict[str, OutputValue]
    warnings: list[str]
    seconds: float
    # The objects inside each Helm release, rendered by the real helm (platformctl.rendering);
    # empty until rendered: the policies never see them, as CrossGuard never does for real.
    rendered: list[RenderedRelease] = field(default_factory=list)
    # Whether the releases were rendered (a stack may have none): the checks of rendered objects
    # run only then, and are "not evaluated" otherwise.
    is_rendered: bool = False
    # The team services Argo CD would sync into the cluster (platformctl.synced), read with the
    # rendering: their pods share the nodes.
    synced: list[Application] = field(default_factory=list)

    def by_urn(self) -> dict[str, RecordedResource]:
        """Resources by URN, built once per list of resources (ancestors() asks per resource:
        rebuilding it each time made walking the tree quadratic)."""
        key = (id(self.resources), len(self.resources))
        cached = self.__dict__.get("_by_urn")
        if cached is None or cached[0] != key:
            cached = (key, {r.urn: r for r in self.resources})
            self.__dict__["_by_urn"] = cached
        return cached[1]

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str) -> RecordedResource:
        matches = [r for r in self.resources if r.type == type_token and r.name == name]
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} resources {type_token} '{name}'")
        return matches[0]

    def ancestors(self, resource: RecordedResource) -> Iterator[RecordedResource]:
        known = self.by_urn()
        current = known.get(resource.parent or "")
        while current is not None:
            yield current
            current = known.get(current.parent or "")

    def component_of(self, resource: RecordedResource) -> RecordedResource | None:
        return next((a for a in self.ancestors(resource) if not a.custom), None)

    def former_urns(self) -> dict[str, set[str]]:
        """Per resource URN, the URNs its `aliases` let it take over from state, as the engine
        resolves them: each alias of its own (a URN, or a spec laid over its current name,
        type, stack, project and parent) and, for each URN its parent may have had, the URN it
        had under that parent (the engine carries a parent's aliases down to its children;
        pulumi/pulumi tests/integration/aliases, `adopt_into_component`)."""
        known = self.by_urn()
        formers: dict[str, set[str]] = {}

        def of(resource: RecordedResource) -> set[str]:
            if resource.urn in formers:
                return formers[resource.urn]
            stack, project, _, _ = _urn_parts(resource.urn)
            parent = known.get(resource.parent or "")
            parents = {resource.parent or ""} | (of(parent) if parent else set())
            found: set[str] = set()
            for alias in resource.aliases:
                if alias.get("urn"):
                    found.add(alias["urn"])
                    continue
                if alias.get("noParent"):
                    alias_parents = {""}
                elif alias.get("parentUrn"):
                    alias_parents = {alias["parentUrn"]}
                else:
                    alias_parents = parents
                for alias_parent in alias_parents:
                    found.add(make_urn(alias.get("stack") or stack,
                                       alias.get("project") or project, alias_parent,
                                       alias.get("type") or resource.type,
                                       alias.get("name") or resource.name))
            for parent_urn in parents - {resource.parent or ""}:
                found.add(make_urn(stack, project, parent_urn, resource.type, resource.name))
            found.discard(resource.urn)
            formers[resource.urn] = found
            return found

        for resource in self.resources:
            of(resource)
        return formers


STACK_TYPE = "pulumi:pulumi:Stack"


def _urn_parts(urn: str) -> tuple[str, str, str, str]:
    """(stack, project, qualified type, name) of `urn:pulumi:<stack>::<project>::<type>::<name>`."""
    stack, project, qualified, name = urn.removeprefix("urn:pulumi:").split("::", 3)
    return stack, project, qualified, name


def make_urn(stack: str, project: str, parent_urn: str, type_: str, name: str) -> str:
    """A resource's URN as the engine makes it: its type qualified by its parent's whole type
    chain (the root stack left out), so moving a component under another changes the URNs of
    everything beneath it. (The SDK's mock monitor qualifies by the parent's own type only.)"""
    qualified = type_
    if parent_urn:
        parent_type = _urn_parts(parent_urn)[2]
        if parent_type != STACK_TYPE:
            qualified = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


@dataclass(frozen=True)
class RenderedObject:
    """One object a release would create, as helm rendered it."""

    release: str  # the Release resource's name in the recording
    api_version: str
    kind: str
    namespace: str | None
    name: str
    source: str  # the template that made it, e.g. gatekeeper/templates/gatekeeper-audit-deployment.yaml
    object: dict[str, Any] = field(compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.api_version}/{self.kind}/{self.namespace or ''}/{self.name}"


@dataclass
class RenderedRelease:
    resource: RecordedResource
    release: str
    namespace: str
    chart: charts.VendoredChart
    objects: list[RenderedObject]
    placeholders: list[str]  # value paths rendered with a placeholder
    cached: bool
    seconds: float

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(o.kind for o in self.objects).items()))

    def find(self, kind: str, name: str | None = None) -> list[RenderedObject]:
        return [o for o in self.objects if o.kind == kind and (name is None or o.name == name)]
