"""The CustomResourceDefinitions the platform installs, from its rendered Helm releases.

A custom resource is checked against the CRD shipped in the chart version that installs it, not a
separate copy: the index is built from the rendered objects (:mod:`platformctl.rendering`) of
kind CustomResourceDefinition, each remembering the release and chart it came from.

Validation is `jsonschema`'s Draft 4 on each served version's `openAPIV3Schema` (the structural
schema the API server checks); the `x-kubernetes-*` extensions (int-or-string, preserve unknown
fields, CEL rules) are not evaluated by it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from platformctl.recording import RenderedObject


@dataclass(frozen=True)
class Crd:
    group: str
    kind: str
    scope: str
    release: str  # the Release resource that installs it
    chart: str  # e.g. "argo-cd 10.1.1"
    schemas: dict[str, dict[str, Any]] = field(repr=False)  # served version -> openAPIV3Schema


class UnknownKind(KeyError):
    """No chart of the platform installs a CRD for this apiVersion and kind."""


class CrdIndex:
    def __init__(self, objects: Iterable[RenderedObject], charts: Mapping[str, str] | None = None):
        """`objects`: rendered objects; `charts`: Release resource name -> "chart version"."""
        self.crds: dict[tuple[str, str], Crd] = {}
        self._validators: dict[tuple[str, str], Any] = {}
        for o in objects:
            if o.kind != "CustomResourceDefinition":
                continue
            spec = o.object.get("spec") or {}
            schemas = {v["name"]: (v.get("schema") or {}).get("openAPIV3Schema") or {}
                       for v in spec.get("versions") or () if v.get("served", True)}
            crd = Crd(group=spec["group"], kind=spec["names"]["kind"],
                      scope=spec.get("scope", "Namespaced"), release=o.release,
                      chart=(charts or {}).get(o.release, o.release), schemas=schemas)
            self.crds[(crd.group, crd.kind)] = crd

    @classmethod
    def of(cls, rendered: Iterable[Any]) -> CrdIndex:
        """The index of an evaluation's `rendered` releases."""
        rendered = list(rendered)
        return cls((o for r in rendered for o in r.objects),
                   {r.resource.name: f"{r.chart.name} {r.chart.version}" for r in rendered})

    def _find(self, api_version: str, kind: str) -> Crd | None:
        group, _, version = api_version.rpartition("/")
        crd = self.crds.get((group, kind))
        return crd if crd is not None and version in crd.schemas else None

    def crd(self, api_version: str, kind: str) -> Crd:
        crd = self._find(api_version, kind)
        if crd is None:
            raise UnknownKind(f"{api_version} {kind}: no chart the platform installs serves it "
                              f"(CRDs installed: {len(self.crds)})")
        return crd

    def serves(self, api_version: str, kind: str) -> bool:
        return self._find(api_version, kind) is not None

    def errors(self, body: Mapping[str, Any]) -> list[str]:
        """What the API server's schema check would refuse in `body`, one line each ([] if valid)."""
        import jsonschema

        api_version, kind = str(body.get("apiVersion", "")), str(body.get("kind", ""))
        crd = self.crd(api_version, kind)
        key = (api_version, kind)
        if key not in self._validators:
            self._validators[key] = jsonschema.Draft4Validator(
                crd.schemas[api_version.rpartition("/")[2]])
        return sorted(
            f"{'.'.join(map(str, e.absolute_path)) or '(object)'}: {e.message}"
            for e in self._validators[key].iter_errors(dict(body)))


# A transition rule that freezes a field: the API server evaluates it on every update with the
# stored value as `oldSelf` and refuses the update when it is false.
_FROZEN = re.compile(r"^\s*(?:self\s*==\s*oldSelf|oldSelf\s*==\s*self)\s*$")


def immutable_paths(schema: Mapping[str, Any], path: str = "") -> list[str]:
    """The dotted paths of an openAPIV3Schema that a CEL transition rule `self == oldSelf`
    makes immutable (what `x-kubernetes-validations` says; a list's items are the list's path
    with `[*]`)."""
    found = []
    for rule in schema.get("x-kubernetes-validations") or ():
        if isinstance(rule, Mapping) and _FROZEN.match(str(rule.get("rule", ""))):
            found.append(path or "(object)")
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, Mapping):
            found += immutable_paths(sub, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), Mapping):
        found += immutable_paths(schema["items"], f"{path}[*]")
    return found
